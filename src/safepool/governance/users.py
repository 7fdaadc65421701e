"""Users, roles and sign-in (safe people).

Every call that touches data takes an `Actor`, which only `UserDirectory.authenticate` makes, so
the role checks here and in the permit layer hold for the command line and any later interface
alike. Passwords are stored as argon2 hashes; every sign-in and every refusal is audited.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Boolean, Column, Engine, ForeignKey, String, Table, insert, select

from safepool.errors import SafepoolError
from safepool.faults import Refused
from safepool.governance.audit import AuditLog
from safepool.governance.db import metadata

_NAME = re.compile(r"^[a-z][a-z0-9._-]{1,39}$")
_hasher = PasswordHasher()


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


users_table = Table(
    "users",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("password_hash", String(200), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", String(40), nullable=False),
)

user_roles_table = Table(
    "user_roles",
    metadata,
    Column("user", String(40), ForeignKey("users.name"), primary_key=True),
    Column("role", String(20), primary_key=True),
    Column("function", String(40), primary_key=True, default=""),
)


@dataclass(frozen=True)
class Actor:
    name: str
    roles: frozenset[Role]
    functions: frozenset[ManagerFunction]

    def has(self, role: Role) -> bool:
        return role in self.roles

    @property
    def main_role(self) -> str:
        return ",".join(sorted(self.roles)) or "none"


def refuse(audit: AuditLog, actor: str, role: str, action: str, reason: str, *, permit: str | None = None,
           target: str | None = None) -> Refused:
    """Log a refusal and return the error to raise."""
    audit.append(actor=actor, role=role, action=action, permit=permit, target=target, outcome="refused",
                 detail={"reason": reason})
    return Refused(f"{action} refused: {reason}")


def require_role(audit: AuditLog, actor: Actor, role: Role, action: str, *, permit: str | None = None) -> None:
    if not actor.has(role):
        raise refuse(audit, actor.name, actor.main_role, action, f"user {actor.name} is not a {role}", permit=permit)


class UserDirectory:
    def __init__(self, engine: Engine, audit: AuditLog) -> None:
        self.engine = engine
        self.audit = audit

    def is_empty(self) -> bool:
        with self.engine.connect() as con:
            return con.execute(select(users_table.c.name).limit(1)).first() is None

    def add(self, by: Actor | None, name: str, password: str, roles: list[Role],
            functions: list[ManagerFunction] | None = None) -> None:
        """Add a user; only an admin may, except for the first admin of an empty directory."""
        functions = functions or []
        if by is None:
            if not self.is_empty() or Role.admin not in roles:
                raise refuse(self.audit, "(nobody)", "none", "user_add",
                             "only the first user may be added without signing in, and it must be an admin")
            by_name = name
        else:
            require_role(self.audit, by, Role.admin, "user_add")
            by_name = by.name
        if not _NAME.match(name):
            raise SafepoolError(f"user name {name!r} must be 2-40 lower-case letters, digits, '.', '_' or '-'")
        if len(password) < 10:
            raise SafepoolError("a password must have at least 10 characters")
        if functions and Role.manager not in roles:
            raise SafepoolError("only a manager has a management function")
        with self.engine.begin() as con:
            if con.execute(select(users_table.c.name).where(users_table.c.name == name)).first():
                raise SafepoolError(f"user {name} exists already")
            con.execute(insert(users_table).values(
                name=name, password_hash=_hasher.hash(password), active=True,
                created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds")))
            rows = [{"user": name, "role": r.value, "function": ""} for r in roles if r != Role.manager]
            if Role.manager in roles:
                rows += [{"user": name, "role": "manager", "function": f.value} for f in functions] or [
                    {"user": name, "role": "manager", "function": ""}]
            con.execute(insert(user_roles_table), rows)
        self.audit.append(actor=by_name, role="admin", action="user_add", target=name,
                          detail={"roles": sorted(r.value for r in roles), "functions": sorted(f.value for f in functions)})

    def actor(self, name: str) -> Actor | None:
        with self.engine.connect() as con:
            row = con.execute(select(users_table).where(users_table.c.name == name)).mappings().first()
            if row is None or not row["active"]:
                return None
            grants = con.execute(select(user_roles_table).where(user_roles_table.c.user == name)).mappings().all()
        return Actor(
            name=name,
            roles=frozenset(Role(g["role"]) for g in grants),
            functions=frozenset(ManagerFunction(g["function"]) for g in grants if g["function"]),
        )

    def authenticate(self, name: str, password: str) -> Actor:
        """Check the password and return the actor; a failure says no more than that."""
        with self.engine.connect() as con:
            row = con.execute(select(users_table).where(users_table.c.name == name)).mappings().first()
        ok = False
        if row is not None and row["active"]:
            try:
                ok = _hasher.verify(row["password_hash"], password)
            except (VerificationError, InvalidHashError):
                ok = False
        known = row is not None
        if not ok:
            raise refuse(self.audit, name if known else "(unknown user)", "none", "login",
                         "wrong user name or password")
        actor = self.actor(name)
        assert actor is not None
        self.audit.append(actor=name, role=actor.main_role, action="login")
        return actor

    def list(self) -> list[Actor]:
        with self.engine.connect() as con:
            names = [r[0] for r in con.execute(select(users_table.c.name).order_by(users_table.c.name))]
        return [a for a in (self.actor(n) for n in names) if a is not None]
