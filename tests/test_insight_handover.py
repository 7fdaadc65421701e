"""The handover for preventive services (issue 13, point 5): an analyst hands the linkage authority
the pseudonyms a need prediction scores at or above the file's threshold, only under a permit that
allows re-identification for preventive services; the steward re-identifies them through the
audited path; the analyst never sees a pseudonym of the list, let alone an identity."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

os.environ.setdefault("COLUMNS", "250")  # rich reads the width when the console is made, at import

from governed import PASSWORD, governance_with_users, release_all, sign_in
from safepool.cli import app
from safepool.faults import Invalid, Refused
from safepool.features import load_features
from safepool.governance.assessment import ApprovalRole
from safepool.governance.form import PermitRequest
from safepool.insight import fairness, need
from safepool.insight.handover import ACTION, hand_over, handovers_dir
from safepool.insight.spec import load_insight
from safepool.pool import access, pseudonyms
from safepool.pool.build import build_for_permit
from safepool.session import connect
from safepool.synth.load import synthesise
from safepool.workspace import Workspace

EXAMPLES = Path(__file__).resolve().parents[1] / "src/safepool/examples"
PERMIT, WITHOUT, OTHER_GROUND = "P-2025-CITY-01", "P-2025-CITY-02", "P-2025-CITY-03"
ANALYST, STEWARD = "anna", "stella"  # stella is the linkage authority (tests/governed.py)
SIGNERS = {ApprovalRole.approver: "apu", ApprovalRole.branch_management: "bruno",
           ApprovalRole.city_management: "city", ApprovalRole.data_protection_officer: "dpo"}
WHY = "offer early family support to the children the need prediction found"


def city_request(reidentification: dict) -> PermitRequest:
    data = yaml.safe_load((EXAMPLES / "permit-request-city.yaml").read_text())
    data["expiry"] = (dt.date.today() + dt.timedelta(days=365)).isoformat()
    data["people"] = data["analysis"]["users"] = [ANALYST]
    data["reidentification"] = reidentification
    return PermitRequest.model_validate(data)


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    root = tmp_path_factory.mktemp("handover") / "ws"
    workspace = Workspace.init(root)
    synthesise(root, persons=4000, seed=4)
    governance = governance_with_users(root)
    example = yaml.safe_load((EXAMPLES / "permit-request-city.yaml").read_text())["reidentification"]
    requests = {PERMIT: city_request(example), WITHOUT: city_request({"requested": False}),
                OTHER_GROUND: city_request({**example, "ground": "other"})}
    for permit, request in requests.items():
        governance.permits.request(sign_in(governance, ANALYST), request, permit)
        for role in governance.permits.get(permit).assessment.approvals:
            governance.permits.approve(sign_in(governance, SIGNERS[role]), permit, role)
    release_all(governance, PERMIT)  # the others are refused before anything is read
    person = lambda name: connect(root, user=name, password=PASSWORD)  # noqa: E731
    build_for_permit(workspace, governance, sign_in(governance, STEWARD), PERMIT)
    person(STEWARD).permit(PERMIT).advance("analytic_review", "pool built")
    return root, person


@pytest.fixture(scope="module")
def handed_over(city, tmp_path_factory):
    """A handover of the example file at a lower threshold: the file, what the analyst got, the list."""
    root, person = city
    file = with_threshold(tmp_path_factory.mktemp("files"), 0.02)
    handover = person(ANALYST).permit(PERMIT).handover(file)
    return file, handover, handed(root, handover.name)


def with_threshold(tmp_path: Path, threshold: float, permit: str = PERMIT) -> Path:
    data = yaml.safe_load((EXAMPLES / "insight-need.yaml").read_text())
    data["permit"] = permit
    data["analysis"]["handover"]["threshold"] = threshold
    path = tmp_path / f"need-{permit}-{threshold}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def handed(root: Path, name: str) -> list[str]:
    return (root / "steward" / "handovers" / name).read_text(encoding="utf-8").splitlines()


def expected_list(root: Path, file: Path) -> list[str]:
    """The pseudonyms scored at or above the file's threshold, computed here in the pool itself."""
    insight = load_insight(file)
    settings, features = insight.analysis, load_features()
    con = access.connect(root / "pool", insight.permit)
    try:
        score_t = need.quarter_index(settings.handover.quarter)
        units = need.build_units(con, features, settings, score=score_t)
    finally:
        con.close()
    test = units.frame[units.frame["set"] == "test"]
    screen = fairness.proxy_screen(test, settings.predictors, settings.audit, features, settings.proxy_tolerance)
    pipeline, used = need.train_model(units, need.without_proxies(screen, settings) or settings.predictors,
                                      settings, insight.seed)
    scored = (units.frame["t"] == score_t).to_numpy()
    probability = pipeline.predict_proba(units.frame.loc[scored, used])[:, 1]
    chosen = units.pids[scored][probability >= settings.handover.threshold]
    return sorted({pseudonyms.shown(pid) for pid in chosen.tolist()})


def test_the_analyst_hands_over_and_the_steward_reidentifies_audited(city, handed_over, tmp_path):
    root, person = city
    file, handover, listed = handed_over
    assert listed == expected_list(root, file) and len(listed) >= 3  # the file's threshold, no other
    assert all(len(p) == 19 and p.isascii() and p.isdigit() for p in listed)  # as people see pseudonyms
    path = handovers_dir(person(ANALYST).governance) / handover.name
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert sorted(p.name for p in path.parent.iterdir()) == [handover.name]  # no scratch left behind
    assert person(ANALYST).outputs.list() == []  # the list is no output

    record = [r for r in person("admin").audit_records(permit=PERMIT) if r.action == ACTION][-1]
    assert (record.action, record.actor, record.outcome, record.rows, record.target) == \
        (ACTION, ANALYST, "ok", len(listed), handover.name)
    assert not any(p in record.detail_json for p in listed)

    steward = person(STEWARD).permit(PERMIT).reidentify(listed, WHY)
    assert (steward.requested, steward.matched, steward.unmatched) == (len(listed), len(listed), 0)
    last = person("admin").audit_records(permit=PERMIT)[-1]
    assert (last.action, last.actor, last.rows) == ("reidentify", STEWARD, len(listed))

    higher = handed(root, person(ANALYST).permit(PERMIT).handover(with_threshold(tmp_path, 0.2)).name)
    assert set(higher) < set(listed)  # a higher threshold in the file hands over fewer


def test_the_analyst_never_sees_a_pseudonym_or_an_identity(city, handed_over, monkeypatch):
    root, person = city
    file, handover, listed = handed_over
    codes = person(STEWARD).permit(PERMIT).reidentify(listed, WHY).path.read_text().splitlines()[1:]
    identities = [line.split(",")[1] for line in codes]
    assert identities and not any(p in repr(handover) for p in listed + identities)
    with pytest.raises(Refused, match="not a steward"):  # the analyst cannot take the list on
        person(ANALYST).permit(PERMIT).reidentify(listed, WHY)

    monkeypatch.setenv("SAFEPOOL_PASSWORD", PASSWORD)
    shown = CliRunner().invoke(app, ["insight", "handover", str(file), "-w", str(root), "--user", ANALYST],
                               catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    said = " ".join(shown.output.split())
    assert "Handed over to the linkage authority under permit P-2025-CITY-01" in said
    assert f"safepool reidentify P-2025-CITY-01 --pseudonyms {root / 'steward/handovers'}" in said
    assert not any(text in shown.output for text in listed + identities)
    helped = " ".join(CliRunner().invoke(app, ["insight", "handover", "--help"]).output.replace("│", " ").split())
    assert "re-identification for preventive services" in helped and "never a pseudonym or an identity" in helped


def test_a_permit_without_reidentification_for_preventive_services_is_refused_audited(city, tmp_path):
    root, person = city
    session = person(ANALYST)
    before = sorted(handovers_dir(session.governance).iterdir())
    for permit, why in ((WITHOUT, "no re-identification"), (OTHER_GROUND, "re-identification on another ground")):
        insight = load_insight(with_threshold(tmp_path, 0.02, permit))
        with pytest.raises(Refused, match=f"permit {permit} does not allow re-identification for preventive"):
            hand_over(root / "pool", session.governance, session.actor, insight)
        records = person("admin").audit_records(permit=permit)
        assert (records[-1].action, records[-1].actor, records[-1].outcome) == (ACTION, ANALYST, "refused"), why
        assert not [r for r in records if r.action == "pool_access"]  # refused before the pool opens
    assert sorted(handovers_dir(session.governance).iterdir()) == before


def test_a_file_without_a_handover_is_named(city, tmp_path):
    _, person = city
    data = yaml.safe_load((EXAMPLES / "insight-need.yaml").read_text())
    del data["analysis"]["handover"]
    (tmp_path / "need.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(Invalid, match="analysis.handover"):
        person(ANALYST).permit(PERMIT).handover(tmp_path / "need.yaml")
    with pytest.raises(Invalid, match="analysis.handover"):
        person(ANALYST).permit(PERMIT).handover(EXAMPLES / "insight-paths.yaml")
    assert np.isclose(load_insight(EXAMPLES / "insight-need.yaml").analysis.handover.threshold, 0.05)
