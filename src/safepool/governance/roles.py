"""The roles a user can hold, and the management bodies a manager speaks for.

Apart from the user directory (safepool.governance.users), which needs the database, so that
what only names a role (the demo's list of its people, before the analyses are loaded) does not
load the database layer."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    steward = "steward"
    analyst = "analyst"
    checker = "checker"
    approver = "approver"
    manager = "manager"
    admin = "admin"


class ManagerFunction(StrEnum):
    """Which management body a manager speaks for when a permit is routed upwards."""

    branch_management = "branch_management"
    city_management = "city_management"
    data_protection_officer = "data_protection_officer"
