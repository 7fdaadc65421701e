"""The demo: everything safepool can do so far, on synthetic Espoo, in a fresh workspace.

It takes the real path, through the Session as each person would (safepool.connect): demo users
are made, among them a steward for each register holder of the seeds (the City of Espoo, Omnia,
Kela, TE services, Migri, DVV, the Tax Administration and Statistics Finland, whose steward is also
the linkage authority); an analyst requests a permit with the handbook's form and the approvers
the assessment routes it to approve it, as soon as synthesis has saved the catalogue (a permit is
decided on the catalogue, not the data); each holder's steward checks its own registers, each as
soon as synthesis has written it; each holder releases its registers into the permit, and
Statistics Finland builds the pool from what was released; the
analyst looks at the pool for the analytic review after the reassessment, runs the shipped impact
study (its tables and report published through the output register under the workspace's
disclosure policy, one release with one rounding policy), and asks for its outputs to be
released; the checker reviews them (commenting on each, as a report's "review" verdict asks) and
releases them; an admin verifies the audit log. Beside all this, the city's own use: its permit
asked for and approved with the study's, then, from the moment synthesis ends, in a process of its
own (its people signed in there) its releases and pool and the shipped insight files.
"""

from __future__ import annotations

import datetime as dt
import queue
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import yaml

from safepool.beside import Beside
from safepool.faults import Invalid
from safepool.governance.assessment import ApprovalRole
from safepool.governance.form import PermitRequest
from safepool.governance.roles import ManagerFunction, Role
from safepool.registers.catalogue import Register
from safepool.synth.load import CATALOGUED, WRITTEN, synthesise
from safepool.workspace import Workspace

MARKER = ".safepool-demo"
SYNTHETIC = "synthetic Espoo"  # the progress messages' name for synthesis
DEMO_STUDY = Path(str(files("safepool.examples").joinpath("study.yaml")))
RELEASE_CONTEXT = ("The skills-centre impact study on synthetic Espoo: cohort flow, balance, effects, event study, "
                   "subgroups, placebo, sensitivity, the naive comparison and the report made of them, all from the "
                   "study file shipped with safepool; needed for the demo's report.")
DEMO_PERMIT = "SKILLS-DEMO"
CITY_PERMIT = "P-2025-CITY-01"  # the city's own use; the shipped insight files name it
CITY_STARTED, CITY_WAITED = "running beside the study", "finishing"  # the city's progress, as the demo sees it
CITY_PRELOAD = ("weasyprint",)  # imported only when a PDF is written: the city's interpreter loads it early
CITY_INSIGHTS = ("insight-paths.yaml", "insight-need.yaml", "insight-segments.yaml")
DEMO_USERS: dict[str, tuple[list[Role], list[ManagerFunction]]] = {
    "demo.admin": ([Role.admin], []),
    "espoo.steward": ([Role.steward], []),
    "omnia.steward": ([Role.steward], []),
    "kela.steward": ([Role.steward], []),
    "te.steward": ([Role.steward], []),
    "migri.steward": ([Role.steward], []),
    "dvv.steward": ([Role.steward], []),
    "tax.steward": ([Role.steward], []),
    "sf.steward": ([Role.steward], []),
    "vtt.analyst1": ([Role.analyst], []),
    "vtt.analyst2": ([Role.analyst], []),
    "sf.checker": ([Role.checker], []),
    "espoo.privacy": ([Role.approver], []),
    "espoo.branch": ([Role.manager], [ManagerFunction.branch_management]),
    "espoo.city": ([Role.manager], [ManagerFunction.city_management]),
    "espoo.dpo": ([Role.manager], [ManagerFunction.data_protection_officer]),
}
# Each register holder's own steward (the holder as the catalogue names it, or its short name);
# Statistics Finland's steward is also the linkage authority, which builds the pool and holds the keys.
HOLDER_STEWARDS = {
    "espoo.steward": "City of Espoo",
    "omnia.steward": "Omnia",
    "kela.steward": "Kela",
    "te.steward": "TE Services",
    "migri.steward": "Migri",
    "dvv.steward": "DVV",
    "tax.steward": "Finnish Tax Administration",
    "sf.steward": "Statistics Finland",
}
LINKAGE_AUTHORITY = "sf.steward"
SIGNERS = {
    ApprovalRole.approver: "espoo.privacy",
    ApprovalRole.branch_management: "espoo.branch",
    ApprovalRole.city_management: "espoo.city",
    ApprovalRole.data_protection_officer: "espoo.dpo",
}


def fresh_folder(path: Path) -> None:
    """Empty a previous demo workspace; refuse to touch any other non-empty folder."""
    if path.exists() and any(path.iterdir()):
        if not (path / MARKER).exists():
            raise Invalid(f"{path} exists and is not a demo workspace; choose another --workspace")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)


def demo_request(form: str = "permit-request.yaml") -> PermitRequest:
    """A shipped request (the skills-centre study's by default), valid for a year from today."""
    data = yaml.safe_load(files("safepool.examples").joinpath(form).read_text(encoding="utf-8"))
    data["expiry"] = (dt.date.today() + dt.timedelta(days=365)).isoformat()
    return PermitRequest.model_validate(data)


@dataclass(frozen=True)
class Synthesis:
    """Synthesis under way, as the demo's people see it: its registers once it is done, and the name of
    each register whose source is in place (`written`, as synthesis says so)."""

    registers: Future[list[Register]]
    written: queue.SimpleQueue[str]


Summary = list[str | tuple[str, Path]]  # sentences, and (label, path) pairs: a path is shown on its own line


def run_demo(
    path: Path,
    *,
    persons: int,
    seed: int,
    progress: Callable[[str, str, int], None] | None = None,
    city: bool = True,
) -> Summary:
    """The whole path on synthetic Espoo (see the module docstring); `city` adds the city's own
    use, run beside the study in a process of its own (its permit and the shipped insight files).

    Synthesis runs in a child process forked first, while this process loads the analyses, the
    Session and the report (seconds of CPU that would otherwise come before it); the city's
    process is forked once they are loaded, so it starts with them, and before this process opens
    the workspace's database or starts a thread."""
    notify = progress or (lambda stage, register, rows: None)
    catalogued, written = threading.Event(), queue.SimpleQueue[str]()

    def synthesis_said(stage: str) -> None:
        if stage == CATALOGUED:
            catalogued.set()
        elif stage.startswith(WRITTEN):
            written.put(stage.removeprefix(WRITTEN))
        notify(stage, SYNTHETIC, 0)

    # the waiting thread is left last: on an error (or Ctrl-C) synthesis is stopped first, which ends
    # that thread's wait, instead of the thread being waited for until synthesis had ended
    with ThreadPoolExecutor(1) as waiting, Beside() as beside:
        synthesis = beside.ready(synthesise, on_progress=synthesis_said)
        fresh_folder(path)
        workspace = Workspace.init(path)
        (path / MARKER).write_text("made by `safepool demo`; the next demo run replaces this folder\n")
        synthesising = synthesis.start(path, persons=persons, seed=seed)
        notify("started", SYNTHETIC, 0)
        from safepool import demo_people  # the analyses: loaded while synthesis runs

        # the city runs at the lowest priority: on the core the study leaves idle, never slowing it down
        city_ready = (beside.ready(demo_people.city_in_own_process, preload=CITY_PRELOAD, background=True)
                      if city else None)
        # no thread before the city's fork; from here one waits for synthesis, showing its progress
        synthesised = waiting.submit(synthesising.result)
        passwords = demo_people.add_users(workspace)  # argon2 hashes, with the GIL released
        wait_for_catalogue(catalogued, synthesised)
        return demo_people.with_people(workspace, Synthesis(synthesised, written), passwords, city_ready, notify,
                                       persons=persons, seed=seed)


def wait_for_catalogue(catalogued: threading.Event, synthesised: Future[object]) -> None:
    """Until synthesis has saved the catalogue; a synthesis that failed before raises its error here."""
    while not catalogued.wait(0.05):
        if synthesised.done():
            synthesised.result()  # its error; or it ended without saying so, and the catalogue is there
            return
