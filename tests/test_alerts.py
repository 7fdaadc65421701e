"""Monitoring rules over the audit log: each rule fires on its pattern and not on near misses."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from safepool.governance.alerts import (
    BROKEN_CHAIN,
    DIFFERENCING,
    EXPIRED_PERMIT,
    LEDGER_MISMATCH,
    REFUSAL_BURST,
    RULES,
    UNUSUAL_HOURS,
    Alert,
    AlertSettings,
    group_alerts,
    run_alerts,
)
from safepool.governance.audit import AuditLog
from safepool.governance.db import connect_engine, create_schema

HEL = ZoneInfo("Europe/Helsinki")
ACTORS = ("ana", "ben", "cai")
PERMITS = ("P-2024-017", "P-2024-018")


def hel(day: str, clock: str) -> dt.datetime:
    """A Helsinki wall-clock time, e.g. hel('2024-05-06', '10:00:30')."""
    return dt.datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=HEL)


MON = "2024-05-06"  # a Monday in summer time (UTC+3)
WINTER_MON = "2024-01-08"  # a Monday in winter time (UTC+2)
SAT = "2024-05-11"


@pytest.fixture
def log(tmp_path):
    engine = connect_engine(f"sqlite:///{tmp_path}/m.sqlite")
    create_schema(engine)
    yield AuditLog(engine)
    engine.dispose()


def add(log: AuditLog, at: dt.datetime, *, actor="ana", permit="P-2024-017", action="query", outcome="ok", **detail):
    return log.append(actor=actor, role="analyst", action=action, permit=permit, outcome=outcome, detail=detail or None, at=at)


def alerts_of(log: AuditLog, rule: str, **kwargs) -> list[Alert]:
    found = run_alerts(log, **kwargs)
    for alert in found:  # messages never carry identifiers
        assert not any(name in alert.message for name in ACTORS + PERMITS), alert.message
    return [a for a in found if a.rule == rule]


def test_an_ordinary_working_day_raises_nothing(log):
    add(log, hel(MON, "06:30"), action="login")
    for minute in range(0, 600, 7):
        at = hel(MON, "07:00") + dt.timedelta(minutes=minute)
        add(log, at, actor=ACTORS[minute % 3], persons=100 + (minute % 20) * 10, query_signature="sig")
    add(log, hel(MON, "09:00"), outcome="refused")
    assert run_alerts(log, permit_expiry={"P-2024-017": dt.date(2024, 12, 31)}) == []


# --------------------------------------------------------------------------- (a) refusal burst


def test_five_refusals_within_ten_minutes(log):
    add(log, hel(MON, "09:00"))
    for i in range(5):  # 09:00:30 ... 09:10:30: exactly ten minutes from first to last
        add(log, hel(MON, "09:00:30") + dt.timedelta(seconds=150 * i), outcome="refused")
        add(log, hel(MON, "09:01") + dt.timedelta(seconds=150 * i))  # ok records do not count
    [alert] = alerts_of(log, REFUSAL_BURST)
    assert (alert.actor, alert.permit, alert.severity) == ("ana", "P-2024-017", "warning")
    assert (alert.first_seq, alert.last_seq) == (2, 10)
    assert alert.message.startswith("5 refused requests")


@pytest.mark.parametrize(
    "times",
    [
        [f"09:0{i}" for i in range(4)],  # only four
        ["09:00:00", "09:02:30", "09:05:00", "09:07:30", "09:10:01"],  # five, but over 10 min 1 s
    ],
)
def test_near_misses_of_a_refusal_burst(log, times):
    for clock in times:
        add(log, hel(MON, clock), outcome="refused")
    assert alerts_of(log, REFUSAL_BURST) == []


def test_refusals_of_different_users_are_not_pooled(log):
    for i in range(6):
        add(log, hel(MON, f"09:0{i}"), actor=ACTORS[i % 2], outcome="refused")
    assert alerts_of(log, REFUSAL_BURST) == []


def test_bursts_are_merged_while_they_overlap_and_split_when_apart(log):
    for i in range(8):  # one long burst, one per minute
        add(log, hel(MON, "09:00") + dt.timedelta(minutes=i), outcome="refused", permit=PERMITS[i % 2])
    for i in range(5):  # a second one an hour later
        add(log, hel(MON, "10:30") + dt.timedelta(minutes=i), outcome="refused")
    first, second = alerts_of(log, REFUSAL_BURST)
    assert (first.first_seq, first.last_seq, first.permit) == (1, 8, None)  # several permits
    assert first.message.startswith("8 refused")
    assert (second.first_seq, second.last_seq, second.permit) == (9, 13, "P-2024-017")


def test_refusal_threshold_is_configurable(log):
    for i in range(4):
        add(log, hel(MON, f"09:0{i}"), outcome="refused")
    assert alerts_of(log, REFUSAL_BURST, settings=AlertSettings(refusal_count=4))
    assert not alerts_of(log, REFUSAL_BURST, settings=AlertSettings(refusal_count=4, refusal_window=dt.timedelta(minutes=2)))


# --------------------------------------------------------------------------- (b) unusual hours


@pytest.mark.parametrize("day", [MON, WINTER_MON])
@pytest.mark.parametrize(
    ("clock", "fires"),
    [("07:00", False), ("06:59:59", True), ("19:00", False), ("19:00:59", False), ("19:01", True), ("23:30", True), ("03:00", True), ("12:00", False)],
)
def test_working_hours_are_helsinki_time(log, day, clock, fires):
    add(log, hel(day, clock))
    found = alerts_of(log, UNUSUAL_HOURS)
    assert bool(found) == fires
    if fires:
        [alert] = found
        assert (alert.actor, alert.permit, alert.first_seq, alert.severity) == ("ana", "P-2024-017", 1, "warning")
        assert "outside working hours" in alert.message


def test_utc_evening_inside_helsinki_hours_and_vice_versa(log):
    add(log, dt.datetime(2024, 5, 6, 15, 30, tzinfo=dt.timezone.utc))  # 18:30 in Helsinki: fine
    assert alerts_of(log, UNUSUAL_HOURS) == []
    add(log, dt.datetime(2024, 5, 6, 16, 30, tzinfo=dt.timezone.utc))  # 19:30 in Helsinki (18:30 UTC+2 would be fine)
    [alert] = alerts_of(log, UNUSUAL_HOURS)
    assert alert.first_seq == 2


def test_weekends_and_holidays(log):
    add(log, hel(SAT, "12:00"))
    add(log, hel("2024-05-12", "10:00"))  # Sunday
    add(log, hel("2024-05-09", "10:00"))  # Ascension Day, a Thursday
    found = alerts_of(log, UNUSUAL_HOURS)
    assert [(a.first_seq, "at a weekend" in a.message) for a in found] == [(1, True), (2, True)]
    found = alerts_of(log, UNUSUAL_HOURS, settings=AlertSettings(holidays=frozenset({dt.date(2024, 5, 9)})))
    assert [a.first_seq for a in found] == [1, 2, 3] and "on a holiday" in found[2].message


def test_logins_are_not_data_access_but_refused_access_is(log):
    add(log, hel(MON, "23:00"), action="login")
    add(log, hel(SAT, "09:00"), action="login")
    assert alerts_of(log, UNUSUAL_HOURS) == []
    add(log, hel(MON, "23:05"), action="query", outcome="refused")
    [alert] = alerts_of(log, UNUSUAL_HOURS)
    assert alert.first_seq == 3


def test_one_alert_per_user_permit_and_night(log):
    add(log, hel(MON, "20:00"))
    add(log, hel(MON, "21:00"), action="read")
    add(log, hel(MON, "21:30"), actor="ben")
    add(log, hel(MON, "22:00"), permit=PERMITS[1])
    add(log, hel(MON, "23:59:59"))
    add(log, hel("2024-05-07", "00:30"))  # after midnight: the next local day
    found = alerts_of(log, UNUSUAL_HOURS)
    assert [(a.actor, a.permit, a.first_seq, a.last_seq) for a in found] == [
        ("ana", "P-2024-017", 1, 5),
        ("ben", "P-2024-017", 3, 3),
        ("ana", "P-2024-018", 4, 4),
        ("ana", "P-2024-017", 6, 6),
    ]
    assert found[0].message.startswith("3 data accesses outside working hours (Monday 2024-05-06")


def test_working_hours_are_configurable(log):
    add(log, hel(MON, "20:00"))
    settings = AlertSettings(working_hours=(dt.time(6, 0), dt.time(21, 0)))
    assert alerts_of(log, UNUSUAL_HOURS, settings=settings) == []
    assert alerts_of(log, UNUSUAL_HOURS, settings=AlertSettings(timezone="UTC")) == []  # 17:00 UTC


def test_alerts_of_one_rule_user_and_day_are_one_group_with_their_records_and_span(log):
    """A night's work under two permits is two alerts (routed by permit) and one line of the report."""
    add(log, hel(MON, "20:00"))
    add(log, hel(MON, "21:00"), permit=PERMITS[1])
    add(log, hel(MON, "22:15"), action="read")
    add(log, hel(MON, "21:30"), actor="ben")
    add(log, hel("2024-05-07", "00:30"))  # after midnight: the next local day
    found = run_alerts(log)
    assert [(a.actor, a.permit, a.records) for a in found] == [
        ("ana", PERMITS[0], 2), ("ana", PERMITS[1], 1), ("ben", PERMITS[0], 1), ("ana", PERMITS[0], 1)]
    assert (found[0].first_at, found[0].last_at) == (hel(MON, "20:00"), hel(MON, "22:15"))
    groups = group_alerts(found)
    assert [(g.rule, g.actor, g.day.isoformat(), len(g.alerts), g.records, g.permits) for g in groups] == [
        (UNUSUAL_HOURS, "ana", MON, 2, 3, list(PERMITS)),
        (UNUSUAL_HOURS, "ben", MON, 1, 1, [PERMITS[0]]),
        (UNUSUAL_HOURS, "ana", "2024-05-07", 1, 1, [PERMITS[0]])]
    assert [t.strftime("%H:%M") for t in groups[0].span(HEL)] == ["20:00", "22:15"]
    assert (groups[0].first_seq, groups[0].last_seq) == (1, 3)
    assert groups[0].message() == ("2 alerts of data access outside working hours, at weekends or on holidays, "
                                   "over 3 audit records")
    assert groups[1].message() == found[2].message  # one alert: its own message


def test_the_report_prints_one_line_per_rule_user_and_day_and_every_alert_on_demand(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from governed import PASSWORD, governance_with_users
    from safepool.cli import app
    from safepool.cli.common import PROBLEMS_FOUND
    from safepool.workspace import Workspace
    from test_cli import readable

    Workspace.init(tmp_path / "ws")
    governance = governance_with_users(tmp_path / "ws")
    for minute in range(0, 120, 10):  # a night under two permits: twelve alerts' worth of records, two users
        for permit in PERMITS:
            governance.audit.append(actor="anna", role="analyst", action="query", permit=permit, outcome="ok",
                                    at=hel(SAT, "01:00") + dt.timedelta(minutes=minute))
    governance.audit.append(actor="aaro", role="analyst", action="query", permit=PERMITS[0], outcome="ok",
                            at=hel(SAT, "02:00"))
    monkeypatch.setenv("SAFEPOOL_PASSWORD", PASSWORD)

    def alerts(*more: str) -> str:
        result = CliRunner().invoke(app, ["audit", "alerts", "--user", "admin", "-w", str(tmp_path / "ws"), *more],
                                    env={"COLUMNS": "80"})
        assert result.exit_code == PROBLEMS_FOUND, result.output
        return readable(result.output)

    grouped = alerts()  # (the users were added now: at night, the admin's own records raise one more line)
    assert "one per rule, user and day" in " ".join(grouped.split())
    night = grouped[grouped.index("Saturday 2024-05-11"):].splitlines()
    assert [line.split()[:5] for line in night if line.startswith("warning")] == [
        ["warning", "unusual_hours", "anna", "01:00-02:50", "24"],
        ["warning", "unusual_hours", "aaro", "02:00-02:00", "1"]]
    assert f"{PERMITS[0]}, {PERMITS[1]}" in night[3]
    every = alerts("--every")
    assert every.count("user anna, permit") == 2 and every.count("user aaro, permit") == 1
    assert "12 data accesses at a weekend" in every


# --------------------------------------------------------------------------- (c) differencing

PAIRS_CHECK = {"column": 1, "measure": "sum", "cells": 1, "check": "differencing (pairs)"}
ALGEBRA_CHECK = {"column": 2, "measure": "persons", "cells": 3, "check": "differencing (all answers)"}


def withheld(log: AuditLog, minutes: list[int], *, start="09:00", withheld=(PAIRS_CHECK,), **kwargs) -> None:
    """Queries answered with cells hidden by the ledger, shaped as the query engine writes them."""
    for i, minute in enumerate(minutes):
        add(log, hel(MON, start) + dt.timedelta(minutes=minute), outcome="withheld", query_sha256=f"{i:064x}",
            withheld=list(withheld), ledger_cells=10 + i, ledger_digest=f"{i + 1:064x}", **kwargs)


@pytest.mark.parametrize(
    ("minutes", "involved"),
    [
        ([0, 1, 2], (1, 3)),
        ([0, 1], None),  # only two
        ([0, 1, 60 * 24], (1, 3)),  # exactly 24 hours from first to last
        ([0, 60 * 12, 60 * 24 + 1], None),  # three, but over 24 hours 1 minute
        ([0, 1, 2, 3, 60 * 30, 60 * 30 + 1], (1, 4)),  # a later pair does not make a second episode
    ],
)
def test_differencing_fires_on_withheld_answers(log, minutes, involved):
    withheld(log, minutes)
    found = alerts_of(log, DIFFERENCING)
    if involved is None:
        assert found == []
    else:
        [alert] = found
        assert (alert.first_seq, alert.last_seq) == involved
        assert (alert.actor, alert.permit, alert.severity) == ("ana", "P-2024-017", "high")
        assert "differencing" in alert.message and "cells hidden" in alert.message


def test_differencing_names_the_checks_and_counts_columns(log):
    withheld(log, [0, 1], withheld=(PAIRS_CHECK, ALGEBRA_CHECK))
    withheld(log, [2], withheld=(ALGEBRA_CHECK,))
    [alert] = alerts_of(log, DIFFERENCING)
    assert alert.message.startswith("3 answers by one user had cells hidden by the differencing checks "
                                    "(in 5 columns: differencing (all answers), differencing (pairs))")


def test_differencing_needs_one_user_one_permit_and_withheld_answers(log):
    withheld(log, [0, 1], actor="ana")
    withheld(log, [2], actor="ben")
    withheld(log, [3, 4], permit=PERMITS[1])
    withheld(log, [5], action="read")
    add(log, hel(MON, "10:00"), query_sha256="0" * 64, withheld=[])  # answered in full
    add(log, hel(MON, "10:01"), outcome="withheld", query_sha256="0" * 64)  # no withheld list
    add(log, hel(MON, "10:02"), withheld=[PAIRS_CHECK])  # outcome ok: not a withheld answer
    # the old signature fields mean nothing any more
    for i, n in enumerate([812, 813, 814]):
        add(log, hel(MON, "11:00") + dt.timedelta(minutes=i), persons=n, query_signature="count by age")
    assert alerts_of(log, DIFFERENCING) == []
    withheld(log, [120])  # now ana has three withheld answers under one permit
    [alert] = alerts_of(log, DIFFERENCING)
    assert (alert.first_seq, alert.last_seq) == (1, 13)


def test_differencing_thresholds_are_configurable(log):
    withheld(log, [0, 90])
    assert alerts_of(log, DIFFERENCING) == []
    assert alerts_of(log, DIFFERENCING, settings=AlertSettings(differencing_count=2))
    narrow = AlertSettings(differencing_count=2, differencing_window=dt.timedelta(hours=1))
    assert not alerts_of(log, DIFFERENCING, settings=narrow)
    with pytest.raises(ValueError):
        AlertSettings(differencing_count=0)


# --------------------------------------------------------------------------- ledger mismatch


def test_a_ledger_mismatch_is_one_critical_alert_per_permit(log):
    add(log, hel(MON, "10:00"), query_sha256="0" * 64)
    add(log, hel(MON, "10:05"), action="query_ledger_mismatch", outcome="refused", reason="the ledger file is missing")
    add(log, hel(MON, "10:06"), action="query_ledger_mismatch", outcome="refused", actor="ben",
        reason="stopped earlier: the ledger file is missing")
    add(log, hel(MON, "10:07"), action="query_ledger_mismatch", outcome="refused", permit=PERMITS[1],
        reason="a ledger file exists without a record")
    found = alerts_of(log, LEDGER_MISMATCH)
    assert [(a.permit, a.actor, a.first_seq, a.last_seq, a.severity) for a in found] == [
        ("P-2024-017", None, 2, 3, "critical"),
        ("P-2024-018", "ana", 4, 4, "critical"),
    ]
    assert found[0].message.startswith("the query ledger of a permit did not match its record (2 queries refused)")


# --------------------------------------------------------------------------- (d) expired permit

EXPIRY = {"P-2024-017": dt.date(2024, 6, 30)}


def test_the_expiry_day_itself_is_still_valid(log):
    add(log, hel("2024-06-30", "12:00"))
    add(log, hel("2024-06-30", "23:59:59"))  # 20:59:59 UTC
    assert alerts_of(log, EXPIRED_PERMIT, permit_expiry=EXPIRY) == []


def test_use_after_expiry_whatever_the_outcome(log):
    add(log, hel("2024-06-30", "12:00"))
    add(log, hel("2024-07-01", "00:00"))  # still 30 June in UTC
    add(log, hel("2024-07-02", "10:00"), outcome="refused")
    add(log, hel("2024-07-02", "10:05"), actor="ben", action="release", outcome="error")
    add(log, hel("2024-07-02", "10:10"), permit="P-other")  # expiry unknown: not checked
    add(log, hel("2024-07-02", "10:15"), permit=None)
    found = alerts_of(log, EXPIRED_PERMIT, permit_expiry=EXPIRY)
    assert [(a.actor, a.permit, a.first_seq, a.last_seq, a.severity) for a in found] == [
        ("ana", "P-2024-017", 2, 3, "high"),
        ("ben", "P-2024-017", 4, 4, "high"),
    ]
    assert found[0].message == "2 records under a permit after its expiry on 2024-06-30 (1 of them refused or failed)"
    assert alerts_of(log, EXPIRED_PERMIT) == []  # no expiry dates given: nothing to check


# --------------------------------------------------------------------------- (e) broken chain


def test_broken_chain_is_one_critical_alert_first(log):
    for i in range(6):
        add(log, hel(MON, "10:00") + dt.timedelta(minutes=i))
    add(log, hel(MON, "23:00"))
    assert alerts_of(log, BROKEN_CHAIN) == []
    with log._engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER audit_records_no_update")
        conn.exec_driver_sql("UPDATE audit_records SET outcome = 'refused' WHERE seq = 3")
    found = run_alerts(log)
    assert [a.rule for a in found] == [BROKEN_CHAIN, UNUSUAL_HOURS]
    alert = found[0]
    assert (alert.severity, alert.first_seq, alert.last_seq, alert.actor, alert.permit) == ("critical", 3, 3, None, None)
    assert alert.message == "the audit log's hash chain is broken: record 3 was edited"


def test_rules_can_be_switched_off(log):
    add(log, hel(SAT, "12:00"))
    assert alerts_of(log, UNUSUAL_HOURS)
    assert run_alerts(log, settings=AlertSettings(rules=frozenset(RULES) - {UNUSUAL_HOURS})) == []
    with pytest.raises(ValueError):
        AlertSettings(rules=frozenset({"no_such_rule"}))


def test_the_demo_says_what_the_rules_found_in_its_own_log(log):
    """The demo runs whenever it is started: its summary says that its own accesses raised the
    unusual_hours warnings, and leaves them standing; any other alert is named without that excuse."""
    from safepool.demo_people import monitoring

    assert monitoring([]) == "Monitoring rules: no alerts."
    add(log, hel(SAT, "03:00"))
    add(log, hel(SAT, "03:05"), actor="ben")
    night = run_alerts(log)
    assert monitoring(night) == ("Monitoring rules: 2 unusual_hours alerts (`safepool audit alerts`); the demo's own "
                                 "accesses, made outside working hours (07:00-19:00 Europe/Helsinki, Monday to "
                                 "Friday).")
    for minute in range(5):
        add(log, hel(MON, "10:00") + dt.timedelta(minutes=minute), outcome="refused")
    said = monitoring(run_alerts(log))
    assert said.startswith("Monitoring rules: 2 unusual_hours alerts, 1 refusal_burst alert (") and "demo's" not in said
