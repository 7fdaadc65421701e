"""Register holders keep to their own registers: holder-scoped stewards, the linkage authority, and
each holder's release of its data into a permit.

The seeds' study is run on data that several authorities hold (the City of Espoo, Omnia, Kela, TE
services, Migri, DVV, the Tax Administration, Statistics Finland), and none of them may see the
others' customer data. So a steward acts only within what an admin assigned them:

- the steward of one or more register holders, named as the catalogue names them (`holder` of a
  register in `safepool.yaml`): that steward checks its holders' registers, keeps their source
  credentials, sees their quarantine and linkage counts, and decides their release into permits;
- the linkage authority, the trusted party that links and pseudonymises (Statistics Finland in
  the seeds): it builds pools, holds the permit keys, re-identifies where a permit allows it and
  sees the whole linkage report. The same person may also steward its own registers.

Which steward may do which action is the second part of the Session's access policy table
(`safepool.governance.access_policy.STEWARDS`); this module keeps the assignments and the releases.

A release is a register holder's decision, in the permit's data request phase, on the registers
of that holder the permit names: `release` (all the variables asked for), `release_fewer` (some
variables withheld; a register whose every variable is withheld is left out) or `refuse` (none of
them). A reason is required for the latter two. The pool is built only from what was released,
and a build is refused while a holder in the permit's scope has not decided, naming the holders
still waiting. A refusal narrows the permit's scope (recorded in its transitions, with the reason);
when nothing at all is released, the permit is stopped. Each holder decides once: a second
decision on the same release is refused. Every decision commits with its audit record, is a
transition of the permit, and is shown in the permit's decision document.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Connection, Engine, ForeignKey, String, Table, Text, delete, insert, select

from safepool.faults import Invalid
from safepool.governance.access_policy import HOLDER, LINKAGE, Steward, steward_refusal
from safepool.governance.audit import AuditLog, UnsafeAuditField, _check_plain
from safepool.governance.catalogue_view import CatalogueView
from safepool.governance.db import metadata
from safepool.governance.permits import Permit, PermitOffice, Phase, permits_table, transitions_table
from safepool.governance.users import Actor, Role, refuse, standing
from safepool.identity_pattern import looks_like_identity_code
from safepool.prose import listed

LINKAGE_AUTHORITY = "the linkage authority"
ASSIGN, REVOKE, DECIDE = "steward_assign", "steward_revoke", "release_decide"
STOPPED = "stopped"  # a permit's status once every holder refused its data

steward_holders_table = Table(
    "steward_holders",
    metadata,
    Column("user", String(40), ForeignKey("users.name"), primary_key=True),
    Column("holder", String(200), primary_key=True),  # a holder as the catalogue names it; "" for the linkage authority
    Column("kind", String(10), nullable=False),  # holder or linkage
    Column("assigned_by", String(40), nullable=False),
    Column("assigned_at", String(40), nullable=False),
)

releases_table = Table(
    "permit_releases",
    metadata,
    Column("permit", String(40), primary_key=True),
    Column("holder", String(200), primary_key=True),
    Column("decision", String(20), nullable=False),  # release, release_fewer, refuse
    Column("registers_json", Text, nullable=False),  # the holder's registers the permit names
    Column("withheld_json", Text, nullable=False),  # register -> variables withheld
    Column("reason", Text, nullable=False),
    Column("decided_by", String(40), nullable=False),
    Column("decided_at", String(40), nullable=False),
)


class Decision(StrEnum):
    release = "release"
    release_fewer = "release_fewer"
    refuse = "refuse"

    @property
    def words(self) -> str:
        return {"release": "released", "release_fewer": "released with fewer variables", "refuse": "refused"}[self]


DECISION_NAMES = {"release": Decision.release, "fewer": Decision.release_fewer,
                  "release_fewer": Decision.release_fewer, "refuse": Decision.refuse}


@dataclass(frozen=True)
class StewardScope:
    """What one user stewards: register holders (catalogue names), and whether they are the linkage authority."""

    holders: frozenset[str] = frozenset()
    linkage: bool = False

    @property
    def kinds(self) -> frozenset[Steward]:
        return frozenset({HOLDER} if self.holders else set()) | frozenset({LINKAGE} if self.linkage else set())

    def describe(self) -> str:
        parts = ([f"the steward of {', '.join(sorted(self.holders))}"] if self.holders else []) + (
            [LINKAGE_AUTHORITY] if self.linkage else [])
        return " and ".join(parts) or "not assigned to any register holder"


@dataclass(frozen=True)
class Release:
    """One register holder's decision on its registers in one permit."""

    permit: str
    holder: str
    decision: Decision
    registers: tuple[str, ...]  # the holder's registers the permit names
    withheld: dict[str, list[str]] = field(default_factory=dict)  # register -> variables withheld
    reason: str = ""
    decided_by: str = ""
    at: dt.datetime | None = None

    @property
    def left_out(self) -> list[str]:
        """Registers that reach no pool: all of them when refused, else those whose every variable is withheld."""
        if self.decision == Decision.refuse:
            return list(self.registers)
        return [r for r in self.registers if self.withheld.get(r) == ["*"]]

    def summary(self) -> str:
        """In words: 'Kela released benefits', 'City of Espoo released with fewer variables social_health
        (withheld: icd10_chapter), social_assistance'."""
        if self.decision == Decision.refuse:
            return f"{self.holder} refused {', '.join(self.registers)}"
        shown = []
        for register in self.registers:
            withheld = self.withheld.get(register)
            shown.append(register if not withheld else f"{register} (left out)" if withheld == ["*"]
                         else f"{register} (withheld: {', '.join(withheld)})")
        return f"{self.holder} {self.decision.words}: {', '.join(shown)}"


@dataclass(frozen=True)
class ReleasedScope:
    """What may be built into a permit's pool: the registers released (with the permit's variable
    choice) and, per register, the variables withheld."""

    sources: dict[str, list[str] | str]
    withheld: dict[str, list[str]]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")  # decisions in one second keep their order


class HolderOffice:
    """The stewards' assignments and the holders' releases, in the workspace's metadata database."""

    def __init__(self, engine: Engine, audit: AuditLog, permits: PermitOffice,
                 catalogue: Callable[[], CatalogueView | None]) -> None:
        self.engine = engine
        self.audit = audit
        self.permits = permits
        self.catalogue = catalogue

    # -- the catalogue's holders ----------------------------------------------------------

    def holders(self) -> dict[str, list[str]]:
        """Each register holder the catalogue names, with its registers (in catalogue order)."""
        catalogue = self.catalogue()
        found: dict[str, list[str]] = {}
        for name, view in (catalogue.registers.items() if catalogue else ()):
            found.setdefault(view.holder, []).append(name)
        return found

    def holder_of(self, register: str) -> str | None:
        catalogue = self.catalogue()
        view = catalogue.registers.get(register) if catalogue else None
        return view.holder if view else None

    def resolve_holder(self, name: str) -> str | None:
        """A holder as the catalogue names it, from its full name, the part before its parentheses
        or the part inside them, in any case ('Kela', 'DVV', 'TE Services'); None if none or several."""
        wanted = " ".join(str(name).split()).casefold()
        matches = [holder for holder in self.holders() if wanted in _spellings(holder)]
        return matches[0] if len(matches) == 1 else None

    # -- who stewards what ----------------------------------------------------------------

    def scope(self, user: str) -> StewardScope:
        """What `user` stewards (nothing, for a user who is not an assigned steward)."""
        with self.engine.connect() as con:
            rows = con.execute(select(steward_holders_table.c.holder, steward_holders_table.c.kind)
                               .where(steward_holders_table.c.user == user)).all()
        return StewardScope(holders=frozenset(r.holder for r in rows if r.kind == HOLDER),
                            linkage=any(r.kind == LINKAGE for r in rows))

    def assignments(self) -> dict[str, StewardScope]:
        """Every assigned steward's scope, by user name."""
        with self.engine.connect() as con:
            rows = con.execute(select(steward_holders_table).order_by(steward_holders_table.c.user)).mappings().all()
        users = sorted({r["user"] for r in rows})
        return {user: StewardScope(frozenset(r["holder"] for r in rows if r["user"] == user and r["kind"] == HOLDER),
                                   any(r["user"] == user and r["kind"] == LINKAGE for r in rows)) for user in users}

    def assign(self, admin: Actor, user: str, holders: list[str] | tuple[str, ...] = (), linkage: bool = False
               ) -> StewardScope:
        """An admin makes a steward the steward of register holders (as the catalogue names them)
        and/or the linkage authority. Every refusal is audited and changes nothing."""
        chosen, before = self._assignment(ASSIGN, admin, user, holders, linkage)
        again = [f"the steward of {h}" for h in chosen if h in before.holders]
        again += [LINKAGE_AUTHORITY] if linkage and before.linkage else []
        if again:
            raise refuse(self.audit, admin.name, admin.main_role, ASSIGN, f"user {user} is already {' and '.join(again)}",
                         target=_plain(user))
        rows = [{"user": user, "holder": h, "kind": HOLDER.value} for h in chosen]
        rows += [{"user": user, "holder": "", "kind": LINKAGE.value}] if linkage else []
        with self.audit.transaction() as tx:
            at = _now()
            tx.conn.execute(insert(steward_holders_table), [{**row, "assigned_by": admin.name, "assigned_at": at}
                                                            for row in rows])
            tx.append(actor=admin.name, role=admin.main_role, action=ASSIGN, target=user,
                      detail={"holders": chosen, "linkage_authority": linkage})
        return self.scope(user)

    def revoke(self, admin: Actor, user: str, holders: list[str] | tuple[str, ...] = (), linkage: bool = False
               ) -> StewardScope:
        """An admin takes register holders (and/or the linkage authority) away from a steward, who
        may act for them no more from the next call on. Refused (audited, nothing changed) for what
        the steward does not hold."""
        chosen, before = self._assignment(REVOKE, admin, user, holders, linkage, active_only=False)
        missing = [f"the steward of {h}" for h in chosen if h not in before.holders]
        missing += [LINKAGE_AUTHORITY] if linkage and not before.linkage else []
        if missing:
            raise refuse(self.audit, admin.name, admin.main_role, REVOKE, f"user {user} is not {' or '.join(missing)}",
                         target=_plain(user))
        kinds = [(h, HOLDER.value) for h in chosen] + ([("", LINKAGE.value)] if linkage else [])
        with self.audit.transaction() as tx:
            for holder, kind in kinds:
                tx.conn.execute(delete(steward_holders_table).where(
                    steward_holders_table.c.user == user, steward_holders_table.c.holder == holder,
                    steward_holders_table.c.kind == kind))
            tx.append(actor=admin.name, role=admin.main_role, action=REVOKE, target=user,
                      detail={"holders": chosen, "linkage_authority": linkage})
        return self.scope(user)

    def _assignment(self, action: str, admin: Actor, user: str, holders: list[str] | tuple[str, ...], linkage: bool,
                    *, active_only: bool = True) -> tuple[list[str], StewardScope]:
        """The holders named (as the catalogue names them, each once) and the user's scope now,
        after the checks an assignment and a revocation share; each refusal is audited. A revocation
        may name a user who is no longer active: their assignments must still be taken away."""
        def refused(reason: str) -> Exception:
            return refuse(self.audit, admin.name, admin.main_role, action, reason, target=_plain(user))

        if not admin.has(Role.admin):
            raise refused(f"user {admin.name} is not an admin")
        if not holders and not linkage:
            raise Invalid("name a register holder (--holder) or the linkage authority (--linkage-authority)")
        with self.engine.connect() as con:
            found = standing(con, [user])
        if user not in found:
            raise refused(f"no user {_plain(user)}")
        actor = found[user]
        if active_only and actor is None:
            raise refused(f"user {_plain(user)} is not active")
        if active_only and not actor.has(Role.steward):
            raise refused(f"user {_plain(user)} is not a steward; only a steward stewards register holders")
        known = self.holders()
        chosen: list[str] = []
        for name in holders:
            holder = self.resolve_holder(name)
            if holder is None:
                raise refused(f"no register holder {_plain(name)!r} in the catalogue; it names "
                              + ("; ".join(known) if known else "no register holder yet"))
            chosen.append(holder)
        return list(dict.fromkeys(chosen)), self.scope(user)

    def require_linkage_authority(self, actor: Actor, action: str, *, permit: str | None = None,
                                  audited_as: str | None = None) -> None:
        """Refuse (audited as `audited_as`, else `action`) anyone but a steward who is the linkage authority."""
        if not (actor.has(Role.steward) and self.scope(actor.name).linkage):
            raise refuse(self.audit, actor.name, actor.main_role, audited_as or action,
                         steward_refusal(actor.name, action), permit=permit)

    def require_holders(self, actor: Actor, action: str, registers: list[str], *, permit: str | None = None) -> None:
        """Refuse (audited) a steward who does not steward the holder of every one of `registers`."""
        scope = self.scope(actor.name) if actor.has(Role.steward) else StewardScope()
        foreign = {register: self.holder_of(register) for register in registers}
        foreign = {register: holder for register, holder in foreign.items() if holder not in scope.holders}
        if foreign:
            named = "; ".join(f"register {register} is held by {holder}" if holder
                              else f"register {register} is not in the catalogue" for register, holder in foreign.items())
            raise refuse(self.audit, actor.name, actor.main_role, action,
                         f"user {actor.name} is {scope.describe()}: {named}", permit=permit)

    # -- releases ---------------------------------------------------------------------------

    def in_scope(self, permit: Permit) -> dict[str, list[str]]:
        """The register holders whose registers the permit names, each with those registers."""
        found: dict[str, list[str]] = {}
        for register in permit.request.data.sources:
            holder = self.holder_of(register) or f"the holder of {register}"
            found.setdefault(holder, []).append(register)
        return found

    def releases(self, permit_id: str) -> list[Release]:
        """The holders' decisions on a permit, in the order they were made."""
        with self.engine.connect() as con:
            rows = con.execute(select(releases_table).where(releases_table.c.permit == permit_id)
                               .order_by(releases_table.c.decided_at, releases_table.c.holder)).mappings().all()
        return [_release(row) for row in rows]

    def waiting(self, permit: Permit) -> list[str]:
        """The holders in the permit's scope that have not decided yet."""
        decided = {release.holder for release in self.releases(permit.id)}
        return [holder for holder in self.in_scope(permit) if holder not in decided]

    def decide(self, actor: Actor, permit_id: str, decision: Decision | str, *, holder: str | None = None,
               withhold: list[str] | tuple[str, ...] = (), reason: str = "") -> Release:
        """As the steward of a holder whose registers the permit names, in its data request phase:
        release them, release them with some variables withheld ("register.variable"), or refuse,
        with a reason (required unless everything is released). Refusals are audited and change nothing."""
        def refused(why: str) -> Exception:
            return refuse(self.audit, actor.name, actor.main_role, DECIDE, why, permit=permit_id)

        decision = _decision(decision)
        permit = self.permits.get(permit_id)
        scope = self.scope(actor.name)
        if not actor.has(Role.steward) or not scope.holders:
            raise refused(f"user {actor.name} is not the steward of any register holder")
        if permit.status != "approved" or permit.phase != Phase.data_request:
            state = (f"is {permit.status}" if permit.status != "approved" else f"is in phase {permit.phase.name}")
            raise refused(f"permit {permit_id} {state}; holders release their data in its data_request phase")
        in_scope = self.in_scope(permit)
        if holder is None:
            mine = [h for h in in_scope if h in scope.holders]
            if len(mine) != 1:
                raise refused(f"permit {permit_id} names registers of {len(mine)} of the holders user {actor.name} "
                              "stewards; name the holder (--holder)" if mine else
                              f"permit {permit_id} names no register of a holder user {actor.name} stewards "
                              f"({', '.join(sorted(scope.holders))})")
            chosen = mine[0]
        else:
            resolved = self.resolve_holder(holder)
            if resolved is None:
                raise refused(f"no register holder {_plain(holder)!r} in the catalogue")
            chosen = resolved
        if chosen not in scope.holders:
            raise refused(f"user {actor.name} is not the steward of {chosen} (they steward "
                          f"{', '.join(sorted(scope.holders))}); only its own steward decides its release")
        if chosen not in in_scope:
            raise refused(f"permit {permit_id} names no register of {chosen}")
        if any(r.holder == chosen for r in self.releases(permit_id)):
            raise refused(f"{chosen} has decided on permit {permit_id} already; a release is decided once")
        registers = in_scope[chosen]
        withheld = self._withheld(permit, registers, decision, withhold)
        reason = " ".join((reason or "").split())
        if decision != Decision.release and not reason:
            raise Invalid(f"a reason is required to {'refuse' if decision == Decision.refuse else 'withhold variables'}")
        if looks_like_identity_code(reason):
            raise refused("the reason looks like it holds a personal identity code; it must not")
        try:
            _check_plain("reason", reason, required=False)
        except UnsafeAuditField:
            raise refused("the reason holds a string that looks like a key or secret; it must not") from None
        release = Release(permit_id, chosen, decision, tuple(registers), withheld, reason, actor.name)
        with self.audit.transaction() as tx:
            con = tx.conn
            if con.execute(select(releases_table.c.holder).where(releases_table.c.permit == permit_id,
                                                                 releases_table.c.holder == chosen)).first():
                raise tx.conflict(actor.name, actor.main_role, DECIDE, f"the release of {chosen}", permit=permit_id)
            if not tx.compare_and_set(permits_table, {"id": permit_id}, {"version": permit.version},
                                      {"version": permit.version + 1}):
                raise tx.conflict(actor.name, actor.main_role, DECIDE, f"permit {permit_id}", permit=permit_id)
            at = _now()
            con.execute(insert(releases_table).values(
                permit=permit_id, holder=chosen, decision=decision.value, registers_json=json.dumps(registers),
                withheld_json=json.dumps(withheld, sort_keys=True), reason=reason, decided_by=actor.name,
                decided_at=at))
            note = release.summary() + (f"; reason: {reason}" if reason else "")
            if release.left_out:
                note += f"; scope narrowed: {', '.join(release.left_out)} left out"
            self._transition(con, permit_id, actor, note, at)
            detail: dict[str, Any] = {"holder": chosen, "decision": decision.value, "registers": registers}
            if withheld:
                detail["withheld"] = withheld
            if reason:
                detail["reason"] = reason
            tx.append(actor=actor.name, role=actor.main_role, action=DECIDE, permit=permit_id, target=chosen,
                      detail=detail)
            decided = [_release(row) for row in con.execute(
                select(releases_table).where(releases_table.c.permit == permit_id)).mappings()]
            if {r.holder for r in decided} >= set(in_scope) and all(
                    len(r.left_out) == len(r.registers) for r in decided):
                if not tx.compare_and_set(permits_table, {"id": permit_id}, {"version": permit.version + 1},
                                          {"status": STOPPED, "version": permit.version + 2}):
                    raise tx.conflict(actor.name, actor.main_role, DECIDE, f"permit {permit_id}", permit=permit_id)
                self._transition(con, permit_id, actor, "permit stopped: every register holder refused its data", at)
                tx.append(actor=actor.name, role=actor.main_role, action="permit_transition", permit=permit_id,
                          target=Phase.data_request.name, detail={"stopped": True})
        return next(r for r in self.releases(permit_id) if r.holder == chosen)

    def released_scope(self, actor: Actor, permit: Permit, action: str) -> ReleasedScope:
        """What the pool of `permit` may be built from; refused (audited) while a holder in its scope
        has not decided, naming the holders still waiting."""
        waiting = self.waiting(permit)
        if waiting:
            raise refuse(self.audit, actor.name, actor.main_role, action,
                         f"permit {permit.id} waits for the release of {listed(waiting)}: each holder's steward "
                         f"decides with `safepool permit release {permit.id} --decision ...`", permit=permit.id)
        sources: dict[str, list[str] | str] = {}
        withheld: dict[str, list[str]] = {}
        left_out = {register for release in self.releases(permit.id) for register in release.left_out}
        chosen = {register: release.withheld.get(register, []) for release in self.releases(permit.id)
                  for register in release.registers}
        for register, wanted in permit.request.data.sources.items():
            if register in left_out:
                continue
            sources[register] = wanted
            if chosen.get(register):
                withheld[register] = chosen[register]
        return ReleasedScope(sources, withheld)

    # -- helpers ----------------------------------------------------------------------------

    def _withheld(self, permit: Permit, registers: list[str], decision: Decision,
                  withhold: list[str] | tuple[str, ...]) -> dict[str, list[str]]:
        """register -> the variables withheld (["*"]: the register is left out whole)."""
        if decision != Decision.release_fewer:
            if withhold:
                raise Invalid(f"variables are withheld only with the decision fewer, not {decision.value}")
            return {}
        if not withhold:
            raise Invalid("name the variables withheld (--withhold REGISTER.VARIABLE, repeat for more)")
        catalogue = self.catalogue()
        withheld: dict[str, list[str]] = {}
        for item in withhold:
            register, _, variable = str(item).partition(".")
            if register not in registers:
                raise Invalid(f"{_plain(item)!r} is not a variable of the holder's registers in permit {permit.id} "
                              f"({', '.join(registers)}); write REGISTER.VARIABLE")
            asked = permit.request.data.sources[register]
            offered = (sorted(catalogue.registers[register].variables) if asked == "*" and catalogue
                       else list(asked) if asked != "*" else [])
            if variable not in offered:
                raise Invalid(f"permit {permit.id} asks for no variable {_plain(variable)!r} of register {register}")
            withheld.setdefault(register, [])
            if variable not in withheld[register]:
                withheld[register].append(variable)
        for register in list(withheld):
            asked = permit.request.data.sources[register]
            everything = (set(catalogue.registers[register].variables) if asked == "*" and catalogue else set(asked))
            if set(withheld[register]) >= everything:
                withheld[register] = ["*"]
        return withheld

    def _transition(self, con: Connection, permit_id: str, actor: Actor, note: str, at: str) -> None:
        con.execute(insert(transitions_table).values(permit=permit_id, phase=int(Phase.data_request), actor=actor.name,
                                                     role=actor.main_role, at=at, note=note))


def _release(row: Any) -> Release:
    return Release(permit=row["permit"], holder=row["holder"], decision=Decision(row["decision"]),
                   registers=tuple(json.loads(row["registers_json"])), withheld=json.loads(row["withheld_json"]),
                   reason=row["reason"], decided_by=row["decided_by"],
                   at=dt.datetime.fromisoformat(row["decided_at"]))


def _decision(value: Decision | str) -> Decision:
    if isinstance(value, Decision):
        return value
    found = DECISION_NAMES.get(str(value).strip().lower())
    if found is None:
        raise Invalid(f"unknown decision {str(value)[:40]!r}; choose from release, fewer or refuse")
    return found


def _spellings(holder: str) -> set[str]:
    """The ways a holder may be named: 'TE Services (Uusimaa ... Office)' -> its full name, 'TE Services'
    and 'Uusimaa ... Office' (case folded)."""
    full = " ".join(holder.split())
    names = {full}
    if full.endswith(")") and " (" in full:
        before, _, inside = full[:-1].partition(" (")
        names |= {before, inside}
    return {name.casefold() for name in names}


def _plain(text: str) -> str:
    """A name as given, safe for a refusal and its audit record: nothing long, and nothing the audit
    log would refuse (an identity code, a secret-looking string) is echoed."""
    text = " ".join(str(text).split())[:80]
    try:
        _check_plain("name", text, required=False)
    except (UnsafeAuditField, ValueError):
        return "(a name not shown)"
    return "(a name not shown)" if looks_like_identity_code(text) else text


__all__ = ["Decision", "HolderOffice", "LINKAGE_AUTHORITY", "Release", "ReleasedScope", "StewardScope"]
