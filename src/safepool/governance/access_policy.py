"""The access policy: which role may do which action, as one table of data.

Every method of the Session (safepool.session), read or write, names one action of this table
and is checked against it before the library is called; a refusal goes through the governance
refusal path (audited) and reads are audited as views. The library keeps its own finer checks
(separation of duties, the people a permit names, phases, expiry): this table is the first
gate, the same for the command line, notebooks and any later web or HTTP interface.

A role missing from an action's set may not do it. Changing who may do what is changing this
table (and the test that walks every role through every action reads it too).

A steward acts only within what an admin assigned them (safepool.governance.holders): the steward
of one or more register holders, named as in the catalogue, or the linkage authority, the trusted
party that links and pseudonymises. `STEWARDS` is the second part of the table: for each action a
steward may do, which stewards may do it. A holder's steward checks its own registers, keeps their
credentials, sees their quarantine and linkage counts and releases its data into a permit; the
linkage authority builds pools, holds the permit keys, re-identifies where a permit allows it and
sees the whole linkage report. An action a steward may do that is not in `STEWARDS` is open to
every steward (reading the catalogue, the permits, the policy, who stewards what).
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType

from safepool.governance.users import Role

steward, analyst, checker = Role.steward, Role.analyst, Role.checker
approver, manager, admin = Role.approver, Role.manager, Role.admin
EVERYONE = frozenset(Role)

# action -> the roles that may do it. Actions are also the audit log's action names.
POLICY: MappingProxyType[str, frozenset[Role]] = MappingProxyType({
    # people
    "user_list": frozenset({admin}),
    "user_add": frozenset({admin}),
    "user_unlock": frozenset({admin}),
    # the audit log and its monitoring
    "audit_show": frozenset({admin, approver, manager}),
    "audit_verify": frozenset({admin, approver, manager}),
    "audit_alerts": frozenset({admin, approver, manager}),
    # the workspace's disclosure policy
    "policy_show": EVERYONE,
    "policy_set": frozenset({admin}),
    "policy_restore": frozenset({admin}),
    # the register catalogue and its sources
    "registers_list": EVERYONE,
    "registers_check": frozenset({steward}),
    "credentials_list": frozenset({steward}),
    "credentials_set": frozenset({steward}),
    # who stewards which register holder, and the linkage authority
    "steward_list": EVERYONE,
    "steward_assign": frozenset({admin}),
    "steward_revoke": frozenset({admin}),
    # permits
    "permit_list": EVERYONE,
    "permit_show": EVERYONE,
    "permit_request": frozenset({analyst, steward, manager}),
    "permit_approve": frozenset({approver, manager}),
    "permit_reject": frozenset({approver, manager}),
    "permit_advance": frozenset({steward, analyst}),
    "release_decide": frozenset({steward}),
    # the pool of a permit
    "pool_build": frozenset({steward}),
    "pool_ledger_keys": frozenset({steward}),
    "pool_show": frozenset({steward, analyst}),
    "pool_variables": frozenset({steward, analyst}),
    "linkage_show": frozenset({steward}),
    "query": frozenset({analyst}),
    "study_run": frozenset({analyst}),
    "insight_run": frozenset({analyst}),
    "insight_handover": frozenset({analyst}),
    # outputs
    "output_list": frozenset({analyst, checker}),
    "output_show": frozenset({analyst, checker}),
    "output_request": frozenset({analyst}),
    "output_review": frozenset({checker}),
    "output_release": frozenset({checker}),
    # the steward zone
    "keys_destroy": frozenset({steward}),
    "reidentify": frozenset({steward}),
    # the workspace's files: stale scratch removed, modes reported (or fixed)
    "doctor": frozenset({steward, admin}),
})

# What each action is, in words, for refusals ("... may not <words>").
WORDS: MappingProxyType[str, str] = MappingProxyType({
    "user_list": "list users", "user_add": "add users", "user_unlock": "unlock users",
    "audit_show": "read the audit log", "audit_verify": "verify the audit log",
    "audit_alerts": "run the audit alerts",
    "policy_show": "read the disclosure policy", "policy_set": "change the disclosure policy",
    "policy_restore": "restore the disclosure policy",
    "registers_list": "list the registers", "registers_check": "check the register sources",
    "credentials_list": "list the source credentials held", "credentials_set": "set source credentials",
    "steward_list": "list the stewards", "steward_assign": "assign stewards to register holders",
    "steward_revoke": "revoke stewards' assignments",
    "permit_list": "list permits", "permit_show": "read a permit", "permit_request": "request permits",
    "permit_approve": "approve permits", "permit_reject": "reject permits",
    "permit_advance": "move permits to their next phase",
    "release_decide": "release a register holder's data into permits",
    "pool_build": "build pools", "pool_ledger_keys": "give pools their ledger keys", "pool_show": "inspect pools", "pool_variables": "read a pool's variables",
    "linkage_show": "read linkage reports",
    "query": "query pools", "study_run": "run studies", "insight_run": "run customer-information analyses",
    "insight_handover": "hand predicted needs over for preventive services",
    "output_list": "list outputs", "output_show": "read outputs", "output_request": "ask for output release",
    "output_review": "review outputs", "output_release": "release outputs",
    "keys_destroy": "destroy keys", "reidentify": "re-identify persons", "doctor": "examine the workspace's files",
})

# Reads of data or metadata: the Session audits each as a view (the others are audited by the
# library call that changes the state, or refused).
VIEWS = frozenset({"user_list", "audit_show", "audit_verify", "audit_alerts", "policy_show", "registers_list",
                   "permit_list", "permit_show", "pool_show", "pool_variables", "output_list", "output_show",
                   "credentials_list", "steward_list", "linkage_show"})


class Steward(StrEnum):
    """Which kind of steward an action is for."""

    holder = "holder"  # the steward of a register holder, for that holder's own registers
    linkage = "linkage"  # the linkage authority


HOLDER, LINKAGE = Steward.holder, Steward.linkage

# action -> the stewards who may do it (of the actions a steward may do at all). A holder's steward
# is further held to its own holders' registers by the Session (which registers, which release).
STEWARDS: MappingProxyType[str, frozenset[Steward]] = MappingProxyType({
    "registers_check": frozenset({HOLDER}),
    "credentials_list": frozenset({HOLDER}),
    "credentials_set": frozenset({HOLDER}),
    "release_decide": frozenset({HOLDER}),
    "linkage_show": frozenset({HOLDER, LINKAGE}),  # a holder its own registers' part, the linkage authority all
    "permit_request": frozenset({HOLDER, LINKAGE}),
    "permit_advance": frozenset({LINKAGE}),
    "pool_build": frozenset({LINKAGE}),
    "pool_ledger_keys": frozenset({LINKAGE}),
    "pool_show": frozenset({LINKAGE}),
    "pool_variables": frozenset({LINKAGE}),
    "keys_destroy": frozenset({LINKAGE}),
    "reidentify": frozenset({LINKAGE}),
    "doctor": frozenset({LINKAGE}),
})

_STEWARD_WORDS = {frozenset({HOLDER}): "a register holder's steward", frozenset({LINKAGE}): "the linkage authority",
                  frozenset({HOLDER, LINKAGE}): "a register holder's steward or the linkage authority"}


def allowed(roles: frozenset[Role] | set[Role], action: str) -> bool:
    """Whether any of `roles` may do `action` (an unknown action is allowed to nobody)."""
    return bool(POLICY.get(action, frozenset()) & set(roles))


def steward_allowed(roles: frozenset[Role] | set[Role], kinds: frozenset[Steward] | set[Steward],
                    action: str) -> bool:
    """Whether a person with `roles`, who as a steward is of `kinds` (holder: the steward of at least
    one register holder; linkage: the linkage authority), passes the table for `action`: through a
    role other than steward, or as a steward of a kind the action is for."""
    roles = set(roles)
    if bool(POLICY.get(action, frozenset()) & (roles - {Role.steward})):
        return True
    if Role.steward not in roles or Role.steward not in POLICY.get(action, frozenset()):
        return False
    wanted = STEWARDS.get(action)
    return wanted is None or bool(wanted & set(kinds))


def steward_refusal(user: str, action: str) -> str:
    """Why the table refuses a steward an action that is for other stewards, e.g. 'user kela.steward is
    not the linkage authority (only the linkage authority may build pools)'."""
    wanted = _STEWARD_WORDS[STEWARDS[action]]
    return f"user {user} is not {wanted} (only {wanted} may {WORDS.get(action, action)})"


def roles_for(action: str) -> list[Role]:
    """The roles that may do `action`, in the order of the Role enumeration."""
    return [role for role in Role if role in POLICY.get(action, frozenset())]


def refusal(user: str, action: str) -> str:
    """Why the table refuses `user` an action, e.g. 'user anna is not a steward (only a steward may build pools)'."""
    named = [_article(role) for role in roles_for(action)]
    named = (", ".join(named[:-1]) + " or " + named[-1]) if len(named) > 1 else (named[0] if named else "anyone")
    return f"user {user} is not {named} (only {named} may {WORDS.get(action, action)})"


def _article(role: Role) -> str:
    return ("an " if role.value[0] in "aeiou" else "a ") + role.value
