"""A workspace with synthetic Espoo and the city's permit approved, its registers released and its
pool built: what the insight tests run their files in."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import yaml

from safepool.demo import HOLDER_STEWARDS, LINKAGE_AUTHORITY, SIGNERS
from safepool.demo_people import make_users, release_data
from safepool.governance.form import PermitRequest
from safepool.session import Session, connect
from safepool.synth.load import synthesise
from safepool.workspace import Workspace

EXAMPLES = Path(__file__).resolve().parents[1] / "src/safepool/examples"
PERMIT = "P-2025-CITY-01"


def city_workspace(root: Path, persons: int, seed: int) -> Callable[[str], Session]:
    """Make the workspace at `root`; a function that signs a demo person in."""
    Workspace.init(root)
    synthesise(root, persons=persons, seed=seed)
    passwords = make_users(Workspace.open(root))
    person = lambda name: connect(root, user=name, password=passwords[name])  # noqa: E731
    data = yaml.safe_load((EXAMPLES / "permit-request-city.yaml").read_text())
    data["expiry"] = (dt.date.today() + dt.timedelta(days=365)).isoformat()
    permit = person("vtt.analyst1").request_permit(PermitRequest.model_validate(data), PERMIT)
    for role in permit.assessment.approvals:
        person(SIGNERS[role]).permit(PERMIT).approve(role)
    release_data({name: person(name) for name in HOLDER_STEWARDS}, PERMIT)
    person(LINKAGE_AUTHORITY).permit(PERMIT).build()
    person(LINKAGE_AUTHORITY).permit(PERMIT).advance("analytic_review", "pool built")
    return person
