"""Users, roles and sign-in (safe people).

Every call that touches data takes an `Actor`, which only `UserDirectory.authenticate` makes, so
the role checks here and in the permit layer hold for the command line and any later interface
alike. Passwords are stored as argon2 hashes; every sign-in and every refusal is audited.

Failed sign-ins are limited per account (the governance settings: 5 within 15 minutes by
default). The failure that reaches the limit locks the account for a while (15 minutes by
default), audited as `sign_in_locked` (the `sign_in_locked` alert fires on it); while it is
locked even the right password is refused, and an admin may lift the lock at once with
`UserDirectory.unlock` (audited as `user_unlock`). The state is read from the audit log itself,
inside the log's write lock, so that concurrent sign-ins count every failure: a successful
sign-in, a lock and an unlock start the count afresh. Names that are not accounts are never
locked (there is nothing to lock) and their failures are logged as "(unknown user)"; attempts on
many accounts at once are what the `password_spraying` alert looks for.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass

from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Boolean, Column, Connection, Engine, ForeignKey, String, Table, and_, insert, or_, select

from safepool.faults import Conflict, Invalid, NotFound, Refused
from safepool.governance.audit import AuditLog, audit_records
from safepool.governance.db import metadata
from safepool.governance.roles import ManagerFunction, Role
from safepool.governance.settings import GovernanceSettings

_NAME = re.compile(r"^[a-z][a-z0-9._-]{1,39}$")


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


WRONG_PASSWORD = "wrong user name or password"
LOCKED = "account locked after too many failed sign-ins"
LOGIN, LOCK, UNLOCK = "login", "sign_in_locked", "user_unlock"
UNKNOWN_USER = "(unknown user)"


@dataclass(frozen=True)
class SignInState:
    """Where an account stands: failed sign-ins counted now, and the end of its lock, if locked."""

    failures: int
    locked_until: dt.datetime | None


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UserDirectory:
    def __init__(self, engine: Engine, audit: AuditLog, settings: GovernanceSettings | None = None) -> None:
        self.engine = engine
        self.audit = audit
        self.settings = settings or GovernanceSettings()
        self.clock = _utcnow  # tests move time on

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
            raise Invalid(f"user name {name!r} must be 2-40 lower-case letters, digits, '.', '_' or '-'")
        if len(password) < 10:
            raise Invalid("a password must have at least 10 characters")
        if functions and Role.manager not in roles:
            raise Invalid("only a manager has a management function")
        password_hash = self.settings.password_hasher.hash(password)
        with self.audit.transaction() as tx:
            con = tx.conn
            if by is None and con.execute(select(users_table.c.name).limit(1)).first() is not None:
                raise Conflict("another user was added first; sign in as an admin to add more")
            if con.execute(select(users_table.c.name).where(users_table.c.name == name)).first():
                raise Conflict(f"user {name} exists already")
            con.execute(insert(users_table).values(
                name=name, password_hash=password_hash, active=True,
                created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds")))
            rows = [{"user": name, "role": r.value, "function": ""} for r in roles if r != Role.manager]
            if Role.manager in roles:
                rows += [{"user": name, "role": "manager", "function": f.value} for f in functions] or [
                    {"user": name, "role": "manager", "function": ""}]
            con.execute(insert(user_roles_table), rows)
            tx.append(actor=by_name, role="admin", action="user_add", target=name,
                      detail={"roles": sorted(r.value for r in roles), "functions": sorted(f.value for f in functions)})

    def actor(self, name: str) -> Actor | None:
        with self.engine.connect() as con:
            return _actor(con, name)

    def authenticate(self, name: str, password: str) -> Actor:
        """Check the password and return the actor; a failure says no more than that, except
        that a locked account says it is locked (and until when)."""
        with self.engine.connect() as con:
            row = con.execute(select(users_table).where(users_table.c.name == name)).mappings().first()
        ok = False
        if row is not None and row["active"]:
            try:
                ok = self.settings.password_hasher.verify(row["password_hash"], password)
            except (VerificationError, InvalidHashError):
                ok = False
        known = row is not None
        with self.audit.transaction() as tx:
            now = self.clock()
            state = self._state(tx.conn, name, now) if known else SignInState(0, None)
            if state.locked_until is not None:
                tx.append(actor=name, role="none", action=LOGIN, outcome="refused", at=now,
                          detail={"reason": LOCKED})
                error: Refused | None = Refused(
                    f"login refused: {LOCKED}; try again after "
                    f"{state.locked_until.astimezone(dt.UTC).strftime('%Y-%m-%d %H:%M')} UTC or ask an admin "
                    "to unlock it")
            elif ok:
                actor = _actor(tx.conn, name)
                assert actor is not None
                tx.append(actor=name, role=actor.main_role, action=LOGIN, at=now)
                error = None
            else:
                tx.append(actor=name if known else UNKNOWN_USER, role="none", action=LOGIN, outcome="refused",
                          at=now, detail={"reason": WRONG_PASSWORD})
                error = Refused(f"login refused: {WRONG_PASSWORD}")
                if known and state.failures + 1 >= self.settings.sign_in_failures:
                    until = now + self.settings.sign_in_lockout
                    tx.append(actor=name, role="none", action=LOCK, target=name, at=now, detail={
                        "failures": state.failures + 1, "window_minutes": self.settings.sign_in_window_minutes,
                        "locked_until": until.isoformat(timespec="microseconds")})
        if error is not None:
            raise error
        return actor

    def unlock(self, admin: Actor, name: str) -> bool:
        """An admin lifts the lock of an account (audited); True if it was locked."""
        require_role(self.audit, admin, Role.admin, "user_unlock")
        if not self._exists(name):
            raise NotFound(f"no user {name}")
        with self.audit.transaction() as tx:
            now = self.clock()
            state = self._state(tx.conn, name, now)
            tx.append(actor=admin.name, role=admin.main_role, action=UNLOCK, target=name, at=now,
                      detail={"was_locked": state.locked_until is not None, "failures": state.failures})
        return state.locked_until is not None

    def sign_in_state(self, name: str) -> SignInState:
        """The account's failed sign-ins that count now, and the end of its lock if it is locked."""
        with self.engine.connect() as con:
            return self._state(con, name, self.clock())

    def list(self) -> list[Actor]:
        with self.engine.connect() as con:
            names = [r[0] for r in con.execute(select(users_table.c.name).order_by(users_table.c.name))]
        return [a for a in (self.actor(n) for n in names) if a is not None]

    # -- helpers ---------------------------------------------------------------------------

    def _exists(self, name: str) -> bool:
        with self.engine.connect() as con:
            return con.execute(select(users_table.c.name).where(users_table.c.name == name)).first() is not None

    def _state(self, con: Connection, name: str, now: dt.datetime) -> SignInState:
        """Replay the account's recent sign-in records from the audit log."""
        window, lockout = self.settings.sign_in_window, self.settings.sign_in_lockout
        since = (now - max(window, lockout)).astimezone(dt.UTC).isoformat(timespec="microseconds")
        t = audit_records.c
        rows = con.execute(
            select(t.at, t.action, t.outcome, t.detail)
            .where(t.at >= since, or_(and_(t.actor == name, t.action.in_((LOGIN, LOCK))),
                                      and_(t.action == UNLOCK, t.target == name)))
            .order_by(t.seq)).all()
        failures: list[dt.datetime] = []
        locked_until: dt.datetime | None = None
        for row in rows:
            at = dt.datetime.fromisoformat(row.at)
            if row.action in (LOGIN, UNLOCK) and row.outcome == "ok":
                failures, locked_until = [], None
            elif row.action == LOGIN and row.outcome == "refused" and json.loads(row.detail).get("reason") == WRONG_PASSWORD:
                failures.append(at)
            elif row.action == LOCK and row.outcome == "ok":
                failures = []
                locked_until = dt.datetime.fromisoformat(json.loads(row.detail)["locked_until"])
        if locked_until is not None and locked_until <= now:
            locked_until = None
        return SignInState(failures=sum(at > now - window for at in failures), locked_until=locked_until)


def _actor(con: Connection, name: str) -> Actor | None:
    row = con.execute(select(users_table).where(users_table.c.name == name)).mappings().first()
    if row is None or not row["active"]:
        return None
    grants = con.execute(select(user_roles_table).where(user_roles_table.c.user == name)).mappings().all()
    return Actor(
        name=name,
        roles=frozenset(Role(g["role"]) for g in grants),
        functions=frozenset(ManagerFunction(g["function"]) for g in grants if g["function"]),
    )


def standing(con: Connection, names: list[str]) -> dict[str, Actor | None]:
    """For each name: its actor if it is an active user, None if it is inactive; missing names
    are not in the result."""
    found = {row.name: row.active for row in con.execute(
        select(users_table.c.name, users_table.c.active).where(users_table.c.name.in_(names)))}
    return {name: _actor(con, name) if active else None for name, active in found.items()}
