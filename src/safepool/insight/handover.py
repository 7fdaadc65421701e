"""Handing the steward the persons a need prediction finds in need, for preventive services.

The handbook's guiding analyses are pseudonymised and re-identified by the steward only, to focus
preventive services (issue 13, point 5). Where the permit asked for re-identification on the
ground of preventive services, an analyst of the permit may hand the linkage authority the
pseudonyms of the persons whose predicted probability of starting the service, at the index
quarter `analysis.handover.quarter`, is at least `analysis.handover.threshold`; both are written
in the need-prediction file. The model is the one the report shows without the proxies the
screen finds (else the one with every predictor), fitted on the file's training quarters.

The list holds pseudonyms only, one a line in pseudonym order (nothing of the data's order or
the scores), and is written straight into the steward zone (`steward/handovers/`, file 0600,
folder 0700). It is no output and nothing of it is shown to the analyst, who learns the
handover's file name only; the steward re-identifies it through the audited path
(`safepool reidentify PERMIT --pseudonyms FILE`), which checks the permit again. A handover is
audited with its count; a permit that does not allow it is refused, and the refusal audited.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safepool.faults import Invalid
from safepool.features.compile import FeatureSet, load_features
from safepool.governance.context import STEWARD_DIR, Governance
from safepool.governance.form import ReidentificationGround
from safepool.governance.users import Actor, refuse
from safepool.insight import fairness
from safepool.insight.need import WITH, WITHOUT, NeedSettings, build_units, quarter_index, train_model, \
    without_proxies
from safepool.insight.spec import analysis_of
from safepool.one_thread import one_thread
from safepool.pool.access import open_for_analysis
from safepool.pool.pseudonyms import shown

ACTION = "insight_handover"
FOLDER = "handovers"


@dataclass(frozen=True)
class Handover:
    """What the analyst learns of a handover: where the steward finds it, and the file's settings."""

    permit: str
    name: str  # the file's name under steward/handovers/
    quarter: str
    threshold: float
    model: str


def handovers_dir(governance: Governance) -> Path:
    """The steward-zone folder the linkage authority picks handovers up from."""
    return governance.root / STEWARD_DIR / FOLDER


def hand_over(pool_dir: Path, governance: Governance, actor: Actor, insight: Any,
              progress: Callable[[str], None] | None = None, features: FeatureSet | None = None) -> Handover:
    """Score the persons of the handover quarter and hand those at or above the threshold to the steward."""
    say = progress or (lambda _stage: None)
    analysis = analysis_of(insight)
    settings = analysis.settings
    if analysis.kind != "need" or settings.handover is None:
        raise Invalid("a handover needs a need-prediction file (analysis.kind: need) with analysis.handover "
                      "(quarter, threshold)")
    permit_id = insight.permit
    allowed = governance.permits.get(permit_id).request.reidentification
    if not allowed.requested or allowed.ground is not ReidentificationGround.preventive_services:
        raise refuse(governance.audit, actor.name, actor.main_role, ACTION,
                     f"permit {permit_id} does not allow re-identification for preventive services", permit=permit_id)
    features = features or load_features()
    say("opening the pool")
    con = open_for_analysis(pool_dir, governance, actor, permit_id, wanted=analysis.tables(features))
    try:
        with one_thread():  # as the run that published the model: the same fit to the last digit
            pseudonyms, model = _in_need(con, features, settings, insight.seed, say)
    finally:
        con.close()
    name = _write(handovers_dir(governance), permit_id, pseudonyms, lambda file: governance.audit.append(
        actor=actor.name, role=actor.main_role, action=ACTION, permit=permit_id, target=file, rows=len(pseudonyms),
        detail={"quarter": settings.handover.quarter, "threshold": settings.handover.threshold, "model": model}))
    return Handover(permit_id, name, settings.handover.quarter, settings.handover.threshold, model)


def _in_need(con: Any, features: FeatureSet, settings: NeedSettings, seed: int,
             say: Callable[[str], None]) -> tuple[list[int], str]:
    """The distinct pseudonyms scored at or above the threshold, sorted, and the model's label."""
    handover = settings.handover
    score_t = quarter_index(handover.quarter)
    units = build_units(con, features, settings, say, score=score_t)
    frame = units.frame
    say("proxies")
    test = frame[frame["set"] == "test"]
    fairer = without_proxies(fairness.proxy_screen(test, settings.predictors, settings.audit, features,
                                                   settings.proxy_tolerance), settings)
    say("model")
    pipeline, used = train_model(units, fairer or settings.predictors, settings, seed)
    scored = (frame["t"] == score_t).to_numpy()
    probability = pipeline.predict_proba(frame.loc[scored, used])[:, 1]
    chosen = units.pids[scored][probability >= handover.threshold]
    return sorted(set(chosen.tolist())), WITH if fairer is None else WITHOUT


def _write(folder: Path, permit: str, pseudonyms: list[int], audit: Callable[[str], object]) -> str:
    """Write the list, as shown, to a new private file, audit it by name, then give it its name (so
    a failed audit leaves no handover). The file's name."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)  # whatever the umask was
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    name = f"{permit}-{stamp}.txt"
    temporary = folder / f".{secrets.token_hex(8)}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("".join(f"{shown(p)}\n" for p in pseudonyms))
            handle.flush()
            os.fsync(handle.fileno())
        audit(name)
        os.link(temporary, folder / name)  # never replaces an earlier handover
    finally:
        temporary.unlink(missing_ok=True)
    return name
