"""Monitoring rules over the audit log: the alert report of the safe setting.

`run_alerts(log)` reads the whole audit log and returns one `Alert` per suspicious episode:

  refusal_burst   (warning)  many refused requests by one user in a short time;
  unusual_hours   (warning)  data access outside working hours, at weekends or on holidays;
  differencing    (high)     answers with cells hidden by the differencing ledger, again and
                             again, for one user under one permit: someone combining answers to
                             isolate persons (the ledger hid the cells; the alert says who tried);
  ledger_mismatch (critical) a permit's query ledger did not match its record (moved away,
                             replaced or rolled back): its queries are stopped until a data
                             security officer investigates;
  expired_permit  (high)     anything done under a permit after its expiry date;
  broken_chain    (critical) the audit log's hash chain does not verify;
  sign_in_locked  (high)     an account was locked after too many failed sign-ins (see
                             safepool.governance.users): someone guessing its password;
  password_spraying (high)   failed sign-ins on several accounts within a short time: someone
                             trying a few passwords on many accounts, under every account's limit.

`group_alerts(alerts)` puts them together for a report: one `AlertGroup` per rule, user and local
day, with how many alerts and records it stands for and their time span (`safepool audit alerts`
prints one line per group, and every alert with `--every`).

Each rule's thresholds live in `AlertSettings` (defaults below); a rule can be switched off by
leaving its name out of `AlertSettings.rules`. Alerts name the user (`actor`) and the permit
in their own fields so that they can be routed (an alert about several users, password
spraying, lists them all in `actors`); their `message` holds counts, times and dates only, never
an identifier, a query or a value.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from zoneinfo import ZoneInfo

from safepool.governance.audit import AuditLog, AuditRecord

REFUSAL_BURST = "refusal_burst"
UNUSUAL_HOURS = "unusual_hours"
DIFFERENCING = "differencing"
LEDGER_MISMATCH = "ledger_mismatch"
EXPIRED_PERMIT = "expired_permit"
BROKEN_CHAIN = "broken_chain"
SIGN_IN_LOCKED = "sign_in_locked"
PASSWORD_SPRAYING = "password_spraying"
LEDGER_MISMATCH_ACTION = "query_ledger_mismatch"  # safepool.query.ledger.MISMATCH_ACTION
LOGIN_ACTION = "login"  # safepool.governance.users.LOGIN
LOCK_ACTION = "sign_in_locked"  # safepool.governance.users.LOCK
RULES = (REFUSAL_BURST, UNUSUAL_HOURS, DIFFERENCING, LEDGER_MISMATCH, EXPIRED_PERMIT, BROKEN_CHAIN, SIGN_IN_LOCKED,
         PASSWORD_SPRAYING)

WARNING = "warning"
HIGH = "high"
CRITICAL = "critical"

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclasses.dataclass(frozen=True)
class AlertSettings:
    """Thresholds of the monitoring rules; every default can be changed per environment.

    rules
        The rules to run (all of `RULES` by default).
    refusal_count, refusal_window
        refusal_burst: at least `refusal_count` (5) records with outcome 'refused' by one user
        whose first and last lie at most `refusal_window` (10 minutes) apart, under any
        permits. Overlapping bursts of one user are reported as one alert.
    timezone, working_hours, weekend_days, holidays, non_access_actions
        unusual_hours: a record whose action is not in `non_access_actions` ({'login'}), whatever
        its outcome, made on a weekend day (`weekend_days`, Monday = 0: Saturday and Sunday),
        on a date in `holidays` (none by default), or outside `working_hours` (07:00 to 19:00
        inclusive, at minute resolution: 19:00:59 is inside, 19:01 is not), all in local time
        of `timezone` ('Europe/Helsinki', daylight saving included). One alert per user, permit
        and local day.
    differencing_actions, differencing_count, differencing_window
        differencing: records whose action is in `differencing_actions` ({'query', 'study',
        'insight'}) with outcome 'withheld' and a non-empty `withheld` list in their detail (what
        the query engine writes when the differencing ledger hides cells, see
        safepool.query.ledger, a study it withholds, see safepool.study.differencing, and an
        insight run's cells it hides, see safepool.insight.differencing),
        at least `differencing_count` (3) of them by one user under one permit whose first and
        last lie at most `differencing_window` (24 hours) apart. Overlapping episodes are
        reported as one alert.
    (ledger_mismatch has no thresholds: every record with action 'query_ledger_mismatch' is
    part of one critical alert per permit.)
    (expired_permit has no thresholds: any record under a permit whose local date in
    `timezone` is after the permit's expiry date, whatever its outcome; the expiry day itself
    is still valid. One alert per user and permit.)
    (broken_chain has none either: one critical alert naming the first broken record.)
    (sign_in_locked has none: one alert per `sign_in_locked` record, i.e. per lock; the lock's
    own limits are governance settings, see safepool.governance.settings.)
    spraying_accounts, spraying_window
        password_spraying: refused sign-ins (action 'login') on at least `spraying_accounts` (3)
        distinct accounts whose first and last lie at most `spraying_window` (10 minutes) apart,
        however few guesses each account got. Names that are not accounts count as one
        account, "(unknown user)" (they are not logged: a password typed into the name field
        would be). Overlapping episodes are reported as one alert listing every account.
    """

    rules: frozenset[str] = frozenset(RULES)
    refusal_count: int = 5
    refusal_window: dt.timedelta = dt.timedelta(minutes=10)
    timezone: str = "Europe/Helsinki"
    working_hours: tuple[dt.time, dt.time] = (dt.time(7, 0), dt.time(19, 0))
    weekend_days: frozenset[int] = frozenset({5, 6})
    holidays: frozenset[dt.date] = frozenset()
    non_access_actions: frozenset[str] = frozenset({LOGIN_ACTION, LOCK_ACTION})
    differencing_actions: frozenset[str] = frozenset({"query", "study", "insight"})
    differencing_count: int = 3
    differencing_window: dt.timedelta = dt.timedelta(hours=24)
    spraying_accounts: int = 3
    spraying_window: dt.timedelta = dt.timedelta(minutes=10)

    def __post_init__(self) -> None:
        unknown = set(self.rules) - set(RULES)
        if unknown:
            raise ValueError(f"unknown alert rules: {', '.join(sorted(unknown))}")
        if self.refusal_count < 1 or self.differencing_count < 1 or self.spraying_accounts < 2:
            raise ValueError("alert counts must be at least 1 (2 accounts for password spraying)")
        if min(self.refusal_window, self.differencing_window, self.spraying_window) < dt.timedelta(0):
            raise ValueError("alert windows must not be negative")
        ZoneInfo(self.timezone)  # fails early on an unknown zone


@dataclasses.dataclass(frozen=True)
class Alert:
    """One suspicious episode: which rule, how serious, whose, and the audit records it spans."""

    rule: str
    severity: str
    actor: str | None
    permit: str | None
    first_seq: int
    last_seq: int
    message: str
    actors: tuple[str, ...] = ()  # every user it concerns, when that is more than `actor`
    first_at: dt.datetime | None = None  # the time of its first and last record (None: a broken chain)
    last_at: dt.datetime | None = None
    records: int = 0  # how many audit records it is made of


def _alert(rule: str, severity: str, actor: str | None, permit: str | None, records: Sequence[AuditRecord],
           message: str, actors: tuple[str, ...] = ()) -> Alert:
    """An alert over `records`: their first and last sequence numbers and times, and their number."""
    return Alert(rule, severity, actor, permit, min(r.seq for r in records), max(r.seq for r in records), message,
                 actors, min(r.at for r in records), max(r.at for r in records), len(records))


def run_alerts(
    log: AuditLog,
    *,
    permit_expiry: dict[str, dt.date] | None = None,
    settings: AlertSettings = AlertSettings(),
) -> list[Alert]:
    """Run the monitoring rules over the whole log.

    `permit_expiry` maps permit ids to their last valid day; permits not in it are not checked
    for expiry. A broken chain comes first in the result; the other alerts follow in the order
    of their first record.
    """
    alerts: list[Alert] = []
    if BROKEN_CHAIN in settings.rules:
        verdict = log.verify()
        if not verdict.ok:
            seq = verdict.first_broken or 0
            alerts.append(
                Alert(BROKEN_CHAIN, CRITICAL, None, None, seq, seq, f"the audit log's hash chain is broken: {verdict.reason}")
            )
    records = log.records()
    found: list[Alert] = []
    if REFUSAL_BURST in settings.rules:
        found += refusal_bursts(records, settings)
    if UNUSUAL_HOURS in settings.rules:
        found += unusual_hours(records, settings)
    if DIFFERENCING in settings.rules:
        found += differencing(records, settings)
    if LEDGER_MISMATCH in settings.rules:
        found += ledger_mismatches(records)
    if EXPIRED_PERMIT in settings.rules and permit_expiry:
        found += expired_permits(records, permit_expiry, settings)
    if SIGN_IN_LOCKED in settings.rules:
        found += sign_in_locks(records)
    if PASSWORD_SPRAYING in settings.rules:
        found += password_spraying(records, settings)
    found.sort(key=lambda a: (a.first_seq, RULES.index(a.rule), a.last_seq))
    return alerts + found


# --------------------------------------------------------------------------- the report

# What each rule's alerts are about, in words, for a line that stands for several of them.
RULE_WORDS = {
    REFUSAL_BURST: "bursts of refused requests",
    UNUSUAL_HOURS: "data access outside working hours, at weekends or on holidays",
    DIFFERENCING: "answers with cells hidden by the differencing checks, again and again",
    LEDGER_MISMATCH: "a query ledger that did not match its record",
    EXPIRED_PERMIT: "use of a permit after its expiry",
    BROKEN_CHAIN: "a broken audit hash chain",
    SIGN_IN_LOCKED: "accounts locked after failed sign-ins",
    PASSWORD_SPRAYING: "failed sign-ins on several accounts",
}


@dataclasses.dataclass(frozen=True)
class AlertGroup:
    """The alerts of one rule about one user (or none) on one local day, as a report shows them on
    one line: a night's work under two permits is one line, not one per permit and rule episode.
    Every alert stays in `alerts` (and in the log); only the report is shorter."""

    rule: str
    severity: str
    actor: str | None
    day: dt.date | None  # in the rules' time zone; None for an alert without records (a broken chain)
    alerts: tuple[Alert, ...]

    @property
    def permits(self) -> list[str]:
        return sorted({a.permit for a in self.alerts if a.permit})

    @property
    def actors(self) -> list[str]:
        return sorted({name for a in self.alerts for name in a.actors})

    @property
    def records(self) -> int:
        return sum(a.records for a in self.alerts)

    @property
    def first_seq(self) -> int:
        return min(a.first_seq for a in self.alerts)

    @property
    def last_seq(self) -> int:
        return max(a.last_seq for a in self.alerts)

    def span(self, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime] | None:
        """The local times of its first and last record."""
        times = [t for a in self.alerts for t in (a.first_at, a.last_at) if t is not None]
        return (min(times).astimezone(zone), max(times).astimezone(zone)) if times else None

    def message(self) -> str:
        """The one alert's message, or what its alerts are about with their number and records."""
        if len(self.alerts) == 1:
            return self.alerts[0].message
        return f"{len(self.alerts)} alerts of {RULE_WORDS[self.rule]}, over {_plural(self.records, 'audit record')}"


def group_alerts(alerts: Sequence[Alert], settings: AlertSettings = AlertSettings()) -> list[AlertGroup]:
    """The alerts grouped by rule, user and local day (of their first record), in the order of each
    group's first alert (a broken chain first, as `run_alerts` gives it)."""
    zone = ZoneInfo(settings.timezone)
    groups: dict[tuple[str, str, str | None, dt.date | None], list[Alert]] = {}
    for alert in alerts:
        day = alert.first_at.astimezone(zone).date() if alert.first_at is not None else None
        groups.setdefault((alert.rule, alert.severity, alert.actor, day), []).append(alert)
    return [AlertGroup(rule, severity, actor, day, tuple(found))
            for (rule, severity, actor, day), found in groups.items()]


# --------------------------------------------------------------------------- the rules


def _shared_permit(records: Iterable[AuditRecord]) -> str | None:
    permits = {r.permit for r in records}
    return permits.pop() if len(permits) == 1 else None


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def _bursts(records: Sequence[AuditRecord], count: int, window: dt.timedelta) -> list[list[AuditRecord]]:
    """Episodes of at least `count` records (one user's, in time order) whose first and last lie
    at most `window` apart; overlapping episodes are merged into one."""
    return _episodes(records, count, window, key=lambda record: record.seq)


def _episodes(records: Iterable[AuditRecord], needed: int, window: dt.timedelta,
              key: Callable[[AuditRecord], object]) -> list[list[AuditRecord]]:
    """Episodes in which at least `needed` distinct `key`s occur within `window` (in time order);
    overlapping episodes are merged into one."""
    ordered = sorted(records, key=lambda r: (r.at, r.seq))
    episodes: list[list[int]] = []  # [first index, last index] in `ordered`
    in_window: collections.Counter[object] = collections.Counter()
    start = 0
    for end, record in enumerate(ordered):
        in_window[key(record)] += 1
        while record.at - ordered[start].at > window:
            leaving = key(ordered[start])
            in_window[leaving] -= 1
            if not in_window[leaving]:
                del in_window[leaving]
            start += 1
        if len(in_window) >= needed:
            if episodes and start <= episodes[-1][1]:
                episodes[-1][1] = end
            else:
                episodes.append([start, end])
    return [ordered[first : last + 1] for first, last in episodes]


def _window_text(window: dt.timedelta) -> str:
    minutes = window.total_seconds() / 60
    return f"{minutes / 60:g} hours" if minutes >= 120 and minutes % 60 == 0 else f"{minutes:g} minutes"


def refusal_bursts(records: Sequence[AuditRecord], settings: AlertSettings = AlertSettings()) -> list[Alert]:
    """Rule refusal_burst: see `AlertSettings.refusal_count` and `refusal_window`."""
    by_actor: dict[str, list[AuditRecord]] = defaultdict(list)
    for record in records:
        if record.outcome == "refused":
            by_actor[record.actor].append(record)
    alerts = []
    for actor, refused in by_actor.items():
        for burst in _bursts(refused, settings.refusal_count, settings.refusal_window):
            alerts.append(
                _alert(
                    REFUSAL_BURST,
                    WARNING,
                    actor,
                    _shared_permit(burst),
                    burst,
                    f"{len(burst)} refused requests by one user, at least {settings.refusal_count} "
                    f"of them within {_window_text(settings.refusal_window)}",
                )
            )
    return alerts


def _outside_hours(local: dt.datetime, settings: AlertSettings) -> str | None:
    if local.weekday() in settings.weekend_days:
        return "at a weekend"
    if local.date() in settings.holidays:
        return "on a holiday"
    start, end = settings.working_hours
    minute = local.time().replace(second=0, microsecond=0, tzinfo=None)
    if minute < start or minute > end:
        return "outside working hours"
    return None


def unusual_hours(records: Sequence[AuditRecord], settings: AlertSettings = AlertSettings()) -> list[Alert]:
    """Rule unusual_hours: see `AlertSettings.working_hours`, `weekend_days` and `holidays`."""
    zone = ZoneInfo(settings.timezone)
    groups: dict[tuple[str, str | None, dt.date], list[tuple[AuditRecord, str]]] = defaultdict(list)
    for record in records:
        if record.action in settings.non_access_actions:
            continue
        local = record.at.astimezone(zone)
        why = _outside_hours(local, settings)
        if why:
            groups[(record.actor, record.permit, local.date())].append((record, why))
    alerts = []
    start, end = (t.strftime("%H:%M") for t in settings.working_hours)
    for (actor, permit, day), hits in groups.items():
        reasons = sorted({why for _, why in hits})
        alerts.append(
            _alert(
                UNUSUAL_HOURS,
                WARNING,
                actor,
                permit,
                [r for r, _ in hits],
                f"{_plural(len(hits), 'data access', 'data accesses')} {' and '.join(reasons)} "
                f"({_WEEKDAYS[day.weekday()]} {day.isoformat()}; working hours {start}-{end} "
                f"{settings.timezone}, Monday to Friday)",
            )
        )
    return alerts


def _withheld_checks(record: AuditRecord) -> list[str] | None:
    """The checks of a withheld answer's columns, or None when the record is not one."""
    if record.outcome != "withheld":
        return None
    withheld = record.detail.get("withheld")
    if not isinstance(withheld, list) or not withheld:
        return None
    return [str(entry.get("check", "differencing")) if isinstance(entry, dict) else "differencing"
            for entry in withheld]


def differencing(records: Sequence[AuditRecord], settings: AlertSettings = AlertSettings()) -> list[Alert]:
    """Rule differencing: see `AlertSettings.differencing_*`."""
    groups: dict[tuple[str, str | None], list[AuditRecord]] = defaultdict(list)
    checks: dict[int, list[str]] = {}
    for record in records:
        if record.action not in settings.differencing_actions:
            continue
        found = _withheld_checks(record)
        if found is not None:
            groups[(record.actor, record.permit)].append(record)
            checks[record.seq] = found
    alerts = []
    for (actor, permit), withheld in groups.items():
        for episode in _bursts(withheld, settings.differencing_count, settings.differencing_window):
            kinds = sorted({check for r in episode for check in checks[r.seq]})
            columns = sum(len(checks[r.seq]) for r in episode)
            alerts.append(
                _alert(
                    DIFFERENCING,
                    HIGH,
                    actor,
                    permit,
                    episode,
                    f"{len(episode)} answers by one user had cells hidden by the differencing "
                    f"checks (in {_plural(columns, 'column')}: {', '.join(kinds)}), at least "
                    f"{settings.differencing_count} of them within {_window_text(settings.differencing_window)}: "
                    "a possible differencing attempt",
                )
            )
    return alerts


def ledger_mismatches(records: Sequence[AuditRecord]) -> list[Alert]:
    """Rule ledger_mismatch: one critical alert per permit whose query ledger did not match its record."""
    groups: dict[str | None, list[AuditRecord]] = defaultdict(list)
    for record in records:
        if record.action == LEDGER_MISMATCH_ACTION:
            groups[record.permit].append(record)
    return [
        _alert(
            LEDGER_MISMATCH,
            CRITICAL,
            mismatched[0].actor if len({r.actor for r in mismatched}) == 1 else None,
            permit,
            mismatched,
            f"the query ledger of a permit did not match its record ({_plural(len(mismatched), 'query', 'queries')} "
            "refused): the permit's queries stay stopped until a data security officer investigates",
        )
        for permit, mismatched in groups.items()
    ]


def expired_permits(
    records: Sequence[AuditRecord], permit_expiry: dict[str, dt.date], settings: AlertSettings = AlertSettings()
) -> list[Alert]:
    """Rule expired_permit: any record under a permit after its expiry date (local time)."""
    zone = ZoneInfo(settings.timezone)
    groups: dict[tuple[str, str], list[AuditRecord]] = defaultdict(list)
    for record in records:
        expiry = permit_expiry.get(record.permit) if record.permit is not None else None
        if expiry is not None and record.at.astimezone(zone).date() > expiry:
            groups[(record.actor, record.permit)].append(record)
    alerts = []
    for (actor, permit), late in groups.items():
        refused = sum(r.outcome in ("refused", "error") for r in late)
        alerts.append(
            _alert(
                EXPIRED_PERMIT,
                HIGH,
                actor,
                permit,
                late,
                f"{_plural(len(late), 'record')} under a permit after its expiry on "
                f"{permit_expiry[permit].isoformat()} ({refused} of them refused or failed)",
            )
        )
    return alerts


def sign_in_locks(records: Sequence[AuditRecord]) -> list[Alert]:
    """Rule sign_in_locked: one alert per account lock."""
    alerts = []
    for record in records:
        if record.action != LOCK_ACTION:
            continue
        detail = record.detail
        until = str(detail.get("locked_until", ""))[:16].replace("T", " ")
        minutes = detail.get("window_minutes")
        within = f"{minutes:g} minutes" if isinstance(minutes, (int, float)) else "the sign-in window"
        alerts.append(
            _alert(
                SIGN_IN_LOCKED,
                HIGH,
                record.actor,
                None,
                [record],
                f"an account was locked after {_plural(int(detail.get('failures', 0)), 'failed sign-in')} within "
                f"{within}" + (f", until {until} UTC" if until else ""),
            )
        )
    return alerts


def password_spraying(records: Sequence[AuditRecord], settings: AlertSettings = AlertSettings()) -> list[Alert]:
    """Rule password_spraying: see `AlertSettings.spraying_accounts` and `spraying_window`."""
    failed = [r for r in records if r.action == LOGIN_ACTION and r.outcome == "refused"]
    alerts = []
    for episode in _episodes(failed, settings.spraying_accounts, settings.spraying_window, key=lambda r: r.actor):
        accounts = sorted({r.actor for r in episode})
        alerts.append(
            _alert(
                PASSWORD_SPRAYING,
                HIGH,
                None,
                None,
                episode,
                f"{len(episode)} failed sign-ins on {len(accounts)} accounts, at least "
                f"{settings.spraying_accounts} accounts within {_window_text(settings.spraying_window)}: "
                "a possible password spraying attack",
                actors=tuple(accounts),
            )
        )
    return alerts
