"""The access policy: which role may do which action, as one table of data.

Every method of the Session (safepool.session), read or write, names one action of this table
and is checked against it before the library is called; a refusal goes through the governance
refusal path (audited) and reads are audited as views. The library keeps its own finer checks
(separation of duties, the people a permit names, phases, expiry): this table is the first
gate, the same for the command line, notebooks and any later web or HTTP interface.

A role missing from an action's set may not do it. Changing who may do what is changing this
table (and the test that walks every role through every action reads it too).
"""

from __future__ import annotations

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
    # permits
    "permit_list": EVERYONE,
    "permit_show": EVERYONE,
    "permit_request": frozenset({analyst, steward, manager}),
    "permit_approve": frozenset({approver, manager}),
    "permit_reject": frozenset({approver, manager}),
    "permit_advance": frozenset({steward, analyst}),
    # the pool of a permit
    "pool_build": frozenset({steward}),
    "pool_show": frozenset({steward, analyst}),
    "pool_variables": frozenset({steward, analyst}),
    "query": frozenset({analyst}),
    "study_run": frozenset({analyst}),
    "insight_run": frozenset({analyst}),
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
    "permit_list": "list permits", "permit_show": "read a permit", "permit_request": "request permits",
    "permit_approve": "approve permits", "permit_reject": "reject permits",
    "permit_advance": "move permits to their next phase",
    "pool_build": "build pools", "pool_show": "inspect pools", "pool_variables": "read a pool's variables",
    "query": "query pools", "study_run": "run studies", "insight_run": "run customer-information analyses",
    "output_list": "list outputs", "output_show": "read outputs", "output_request": "ask for output release",
    "output_review": "review outputs", "output_release": "release outputs",
    "keys_destroy": "destroy keys", "reidentify": "re-identify persons", "doctor": "examine the workspace's files",
})

# Reads of data or metadata: the Session audits each as a view (the others are audited by the
# library call that changes the state, or refused).
VIEWS = frozenset({"user_list", "audit_show", "audit_verify", "audit_alerts", "policy_show", "registers_list",
                   "permit_list", "permit_show", "pool_show", "pool_variables", "output_list", "output_show"})


def allowed(roles: frozenset[Role] | set[Role], action: str) -> bool:
    """Whether any of `roles` may do `action` (an unknown action is allowed to nobody)."""
    return bool(POLICY.get(action, frozenset()) & set(roles))


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
