"""A governed tiny workspace: users of every role and an approved permit, for governance tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml
from argon2 import PasswordHasher

from safepool.governance import settings as settings_module
from safepool.governance.assessment import ApprovalRole
from safepool.governance.context import Governance
from safepool.governance.form import PermitRequest
from safepool.governance.users import ManagerFunction, Role

PASSWORD = "correct horse battery"

# Still argon2, at the lowest cost, whatever the profile: the tests sign in hundreds of times.
# The profiles' own costs are checked with PROFILE_HASHERS put back (tests/test_sign_in.py).
PROFILE_HASHERS = dict(settings_module.HASHERS)
settings_module.HASHERS = dict.fromkeys(PROFILE_HASHERS, PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))

USERS = {
    "admin": ([Role.admin], []),
    "stella": ([Role.steward], []),
    "anna": ([Role.analyst], []),
    "aaro": ([Role.analyst], []),
    "cecilia": ([Role.checker], []),
    "apu": ([Role.approver], []),
    "bruno": ([Role.manager], [ManagerFunction.branch_management]),
    "city": ([Role.manager], [ManagerFunction.city_management]),
    "dpo": ([Role.manager], [ManagerFunction.data_protection_officer]),
}

EXAMPLE = Path(__file__).resolve().parents[1] / "src" / "safepool" / "examples" / "permit-request.yaml"


def tiny_request(**changes) -> PermitRequest:
    """The example request, narrowed to the tiny registers and the test users."""
    data = yaml.safe_load(EXAMPLE.read_text())
    data["data"]["sources"] = {"population": "*", "payments": ["paid_on", "amount"], "visits": ["month"]}
    data["people"] = ["anna"]
    data["analysis"]["users"] = ["anna"]
    data["expiry"] = (dt.date.today() + dt.timedelta(days=365)).isoformat()
    for key, value in changes.items():
        data[key] = value
    return PermitRequest.model_validate(data)


def governance_with_users(root: Path) -> Governance:
    """Users of every role; stella is the linkage authority and the steward of every register
    holder the workspace's catalogue names (if it has one yet)."""
    governance = Governance.open(root)
    governance.users.add(None, "admin", PASSWORD, [Role.admin])
    admin = governance.users.authenticate("admin", PASSWORD)
    for name, (roles, functions) in USERS.items():
        if name != "admin":
            governance.users.add(admin, name, PASSWORD, roles, functions)
    governance.holders.assign(admin, "stella", list(governance.holders.holders()), linkage=True)
    return governance


def sign_in(governance: Governance, name: str):
    return governance.users.authenticate(name, PASSWORD)


def approved_permit(governance: Governance, permit_id: str = "P-1", *, released: bool = True, **changes) -> str:
    """Request as anna, approve with every role the assessment asks for; with `released`, stella
    releases every register holder's data into it (the pool can then be built)."""
    governance.permits.request(sign_in(governance, "anna"), tiny_request(**changes), permit_id)
    signers = {ApprovalRole.approver: "apu", ApprovalRole.branch_management: "bruno",
               ApprovalRole.city_management: "city", ApprovalRole.data_protection_officer: "dpo"}
    for role in governance.permits.get(permit_id).assessment.approvals:
        governance.permits.approve(sign_in(governance, signers[role]), permit_id, role)
    if released:
        release_all(governance, permit_id)
    return permit_id


def release_all(governance: Governance, permit_id: str, steward: str = "stella") -> None:
    """Every register holder in the permit's scope releases its data into it (as `steward`); a
    workspace without a catalogue has no holders to release anything."""
    if not governance.holders.holders():
        return
    actor = sign_in(governance, steward)
    for holder in governance.holders.waiting(governance.permits.get(permit_id)):
        governance.holders.decide(actor, permit_id, "release", holder=holder)
