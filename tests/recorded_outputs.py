"""A governed workspace ready for outputs: users of every role, a permit in analysis, tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from governed import PASSWORD, approved_permit, governance_with_users, sign_in
from safepool.disclosure.outputs import FrequencyTable
from safepool.disclosure.policy import set_policy, workspace_policy
from safepool.disclosure.rules import DisclosureRules
from safepool.governance.context import Governance
from safepool.governance.permits import Phase
from safepool.governance.users import Role

CONTEXT = "Persons by area for the skills centre report; counts from the pool's population view."


def governed_outputs(root: Path) -> Governance:
    """Users of every role plus a second checker and an analyst who is also a checker;
    permit P-1 (one checker) and P-2 (two checkers), both with their data ready."""
    governance = governance_with_users(root)
    admin = sign_in(governance, "admin")
    governance.users.add(admin, "cedric", PASSWORD, [Role.checker])
    governance.users.add(admin, "anton", PASSWORD, [Role.analyst, Role.checker])
    stella = sign_in(governance, "stella")
    for permit, checkers in (("P-1", 1), ("P-2", 2)):
        approved_permit(governance, permit, people=["anna", "anton"], output_checkers=checkers)
        governance.permits.advance(stella, permit, Phase.preparing_data)
        governance.permits.advance(stella, permit, Phase.analytic_review)
    return governance


def use_policy(governance: Governance, **settings) -> DisclosureRules:
    """The workspace's own policy, set the only way there is: by its admin, audited."""
    admin = sign_in(governance, "admin")
    for setting, value in settings.items():
        if getattr(workspace_policy(governance), setting) != value:
            set_policy(governance, admin, setting, value)
    return workspace_policy(governance)


def by_area(counts: dict[str, float], title: str = "Persons by area") -> FrequencyTable:
    return FrequencyTable(title, pd.DataFrame({"area": list(counts), "count": list(counts.values())}), ["area"])


def csv_of(table: FrequencyTable) -> dict[str, bytes]:
    """The file the register writes for a passing table recorded as "table"."""
    return {"table.csv": table.public_table().astype({"count": "Int64"}).to_csv(index=False).encode()}


def record(governance: Governance, author: str, permit: str, table: FrequencyTable, **options):
    return governance.outputs.record(sign_in(governance, author), permit, table, "query", "table", **options)
