"""Insight runs in the differencing ledger (issue 10, point 11): an attacking review read two named
residents' use of the city's services from two segments runs whose ages differed by one year
(the runs' customer groups, counts and mean costs subtracted), and every output had passed its own
checks. Now each run's shown cells enter the ledger, and a cell that with earlier ones tells a few
persons is hidden; the numbers a run hands its shell carry the released precision only. Service
paths (two periods a day apart) and predicted needs (two horizons a quarter apart) are held the
same way, and every count a run shows is, person by person, what the ledger is given."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml
from city_workspace import EXAMPLES, PERMIT, city_workspace

from safepool.disclosure.cells import shown_mask
from safepool.disclosure.margins import TOTAL
from safepool.disclosure.policy import workspace_policy
from safepool.governance.alerts import AlertSettings
from safepool.governance.context import Governance
from safepool.features.compile import load_features
from safepool.insight import run as insight_run
from safepool.insight.differencing import ledger_entries
from safepool.insight.need import build_units
from safepool.insight.paths import _timing
from safepool.insight.segments import person_table
from safepool.insight.spec import analysis_of, load_insight
from safepool.pool.access import POOL_FILE
from safepool.workspace import Workspace


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    root = tmp_path_factory.mktemp("city") / "ws"
    return root, city_workspace(root, persons=3000, seed=5)


def _insight_file(tmp_path, shipped: str, name: str, **settings):
    """A shipped insight file with other analysis settings."""
    data = yaml.safe_load((EXAMPLES / shipped).read_text())
    data["analysis"].update(settings)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _segments_file(tmp_path, ages: list[int], name: str):
    """The shipped segments file with other ages."""
    return _insight_file(tmp_path, "insight-segments.yaml", name, ages=ages)


def _pool(root):
    return duckdb.connect(str(Workspace.open(root).pool_dir / PERMIT / POOL_FILE), read_only=True)


def _upper_age_leaving_out_a_few(root, tmp_path, min_frequency: int) -> int:
    """An upper age whose run leaves out 1 to min_frequency - 1 persons of the run one year older
    (found in the pool as its steward could, to set the attack up)."""
    settings = analysis_of(load_insight(_segments_file(tmp_path, [18, 64], "probe"))).settings
    with _pool(root) as con:
        sizes = {upper: len(person_table(con, settings.model_copy(update={"ages": [18, upper]})))
                 for upper in range(70, 101)}
    return next(upper for upper in range(71, 101) if 0 < sizes[upper] - sizes[upper - 1] < min_frequency)


def _nested_cells(result) -> dict[tuple, float]:
    """Each shown count (or a mean's persons) of the cells whose persons are one run's within the
    other's: every cell but a customer group's (groups are numbered by size in each run), each
    count column of a rate table."""
    found = {}
    for name, mitigated in result.checked.items():
        cells = getattr(mitigated.output, "cells", None)
        if cells is None:
            continue
        if "cluster" in cells.columns:
            cells = cells[cells["cluster"].astype(str) == TOTAL]
        counts = [c for c in cells.columns if c == "count" or c == "n" or c.startswith("n_")]
        for row, shown in zip(cells.to_dict("records"), shown_mask(cells)):
            for count in counts if shown else ():
                found[(name, count, *(str(row[g]) for g in mitigated.output.groups))] = float(row[count])
    return found


def _told(a: dict[tuple, float], b: dict[tuple, float], min_frequency: int) -> dict[tuple, float]:
    """Cells shown in both runs whose difference tells a few persons, or that the few are not in
    them (equal and not zero: a cell of nobody holds no one)."""
    differences = {key: a[key] - b[key] for key in set(a) & set(b) if a[key] or b[key]}
    return {key: d for key, d in differences.items() if abs(d) < min_frequency}


def test_two_segment_runs_whose_ages_leave_out_a_few_do_not_tell_them(city, tmp_path):
    root, person = city
    policy = workspace_policy(Governance.open(root))
    upper = _upper_age_leaving_out_a_few(root, tmp_path, policy.min_frequency)
    analyst = person("vtt.analyst1").permit(PERMIT)
    older = analyst.insight(_segments_file(tmp_path, [18, upper], "older"))
    younger = analyst.insight(_segments_file(tmp_path, [18, upper - 1], "younger"))
    a, b = _nested_cells(older), _nested_cells(younger)
    assert len(a) > 20  # the first run shows its cells
    # a cell the same in both runs is hidden too (it tells that the few are not in it), so which cells
    # are hidden does not tell where they are
    assert not _told(a, b, policy.min_frequency)
    # the ledger hid what would have told them, audited as withheld, which the alert counts
    governance = Governance.open(root)
    withheld = [r for r in governance.audit.records() if r.action == "insight" and r.outcome == "withheld"]
    assert withheld and all(entry["check"].startswith("differencing") for r in withheld
                            for entry in r.detail["withheld"])
    hidden = {name: int((~shown_mask(m.output.cells)).sum()) for name, m in younger.checked.items()
              if hasattr(m.output, "cells")}
    assert sum(hidden.values()) > sum(int((~shown_mask(m.output.cells)).sum()) for m in older.checked.values()
                                      if hasattr(m.output, "cells"))
    assert "insight" in AlertSettings().differencing_actions


def test_the_same_run_again_shows_nothing_the_first_hid(city, tmp_path):
    root, person = city
    analyst = person("vtt.analyst1").permit(PERMIT)
    path = _segments_file(tmp_path, [20, 50], "again")
    first, again = analyst.insight(path), analyst.insight(path)
    for name, mitigated in first.checked.items():
        if hasattr(mitigated.output, "cells"):
            cells, later = mitigated.output.cells, again.checked[name].output.cells
            shown, shown_again = shown_mask(cells), shown_mask(later)
            assert not (shown_again & ~shown).any(), name  # a cell hidden for the ledger stays hidden
            pd.testing.assert_frame_equal(cells[shown & shown_again], later[shown & shown_again])


def test_a_run_hands_its_shell_the_released_precision_only(city, tmp_path):
    root, person = city
    decimals = workspace_policy(Governance.open(root)).decimals
    result = person("vtt.analyst1").permit(PERMIT).insight(_segments_file(tmp_path, [25, 45], "precision"))
    values = result.checked["cluster_value"].output.cells["value"].dropna().to_numpy(dtype=float)
    assert len(values) and np.allclose(values, np.round(values, decimals), rtol=0, atol=0)
    assert all(v is None or v != v for v in result.checked["cluster_value"].output.cells.loc[
        ~shown_mask(result.checked["cluster_value"].output.cells), "value"])


def _last_day_leaving_out_a_few(root, min_frequency: int) -> str:
    """A last day of the shipped paths period whose run has 1 to min_frequency - 1 persons fewer
    than the run a day longer (their first notification is on the day after), found in the pool
    as its steward could."""
    time = _timing(load_features(), "child_protection")
    with _pool(root) as con:
        firsts = con.execute(f"""SELECT day, count(*) AS n FROM (
            SELECT pid, min(CAST("{time}" AS DATE)) AS day FROM child_protection
            WHERE event_type = 'notification' AND CAST("{time}" AS DATE) >= DATE '2012-01-01' GROUP BY pid)
            WHERE day BETWEEN DATE '2016-01-01' AND DATE '2022-12-31' GROUP BY day ORDER BY day""").fetchall()
    day = next(day for day, n in firsts if n < min_frequency)
    return (day - pd.Timedelta(days=1)).isoformat()[:10]


def test_two_path_runs_a_day_apart_do_not_tell_who_came_in_between(city, tmp_path):
    root, person = city
    policy = workspace_policy(Governance.open(root))
    before = _last_day_leaving_out_a_few(root, policy.min_frequency)
    later = (pd.Timestamp(before) + pd.Timedelta(days=1)).isoformat()[:10]
    analyst = person("vtt.analyst1").permit(PERMIT)
    longer = analyst.insight(_insight_file(tmp_path, "insight-paths.yaml", "longer", period=["2012-01-01", later]))
    shorter = analyst.insight(_insight_file(tmp_path, "insight-paths.yaml", "shorter", period=["2012-01-01", before]))
    a, b = _nested_cells(longer), _nested_cells(shorter)
    assert len([v for v in a.values() if v]) > 10
    # variants and transitions merged into "other" may move between runs; the rest are nested
    told = {key: d for key, d in _told(a, b, policy.min_frequency).items() if "other" not in " ".join(key)}
    assert not told
    # the flow chart hides what the transitions table hides
    table, flow = (shorter.checked[n].output for n in ("paths_transitions", "paths_flow"))
    assert (shown_mask(table.cells) == shown_mask(flow.table.cells)).all()


def _horizon_telling_a_few(root, min_frequency: int) -> int:
    """A horizon of the shipped need file whose units that started (training person-quarters and
    test persons, as the cohort's total shows them) are 1 to min_frequency - 1 fewer than with the
    horizon a quarter longer (found in the pool as its steward could)."""
    settings = analysis_of(load_insight(EXAMPLES / "insight-need.yaml")).settings
    features = load_features()
    started = {}
    with _pool(root) as con:
        for horizon in range(1, 9):  # the training window (to 2020Q1) ends before the test quarter
            started[horizon] = int(build_units(con, features, settings.model_copy(update={"horizon": horizon}))
                                   .frame["outcome"].sum())
    return next(h for h in range(1, 8) if started[h] >= min_frequency and 0 < started[h + 1] - started[h] < min_frequency)


def test_two_need_runs_a_quarter_apart_do_not_tell_who_started_in_between(city, tmp_path):
    root, person = city
    policy = workspace_policy(Governance.open(root))
    horizon = _horizon_telling_a_few(root, policy.min_frequency)
    analyst = person("vtt.analyst1").permit(PERMIT)
    runs = [analyst.insight(_insight_file(tmp_path, "insight-need.yaml", f"need-{h}", horizon=h, handover=None))
            for h in (horizon + 1, horizon)]
    a, b = (_nested_cells(run) for run in runs)
    # the test persons are the same question in both runs (the horizon does not decide who they
    # are): the proxy screen, over them alone, is shown again
    over_test = [key for key in a if key[0] == "proxies"]
    assert over_test and all(b.get(key) == a[key] for key in over_test)
    # who started by the horizon: the counts that would tell the few are hidden in the second run
    started = {key for key in a if key[0] == "cohort" and key[-1] != TOTAL
               or key[0] == "performance" and key[1] in ("n_positive", "n_negative")}
    assert started & set(a) and ("cohort", "count", TOTAL, "started") in a
    assert not _told({k: a[k] for k in started}, b, policy.min_frequency)


def test_a_need_run_selecting_a_few_more_shows_the_calibration_again_and_not_who_was_added(city, tmp_path):
    """The share selected decides who is selected, not the models' scores: the calibration bins are
    the same questions again, and the selections, nested, never differ by a few shown persons."""
    root, person = city
    policy = workspace_policy(Governance.open(root))
    analyst = person("vtt.analyst1").permit(PERMIT)
    a, b = (_nested_cells(analyst.insight(_insight_file(tmp_path, "insight-need.yaml", f"share-{k}",
                                                        selected_share=share, handover=None)))
            for k, share in enumerate((0.06, 0.059)))
    bins = [key for key in a if key[0] == "calibration"]
    assert bins and all(b.get(key) == a[key] for key in bins)
    selections = {key: a[key] for key in a if key[0].startswith(("fairness", "disparities"))}
    assert not {key: d for key, d in _told(selections, b, policy.min_frequency).items() if d}


@pytest.mark.parametrize("shipped", ["insight-paths.yaml", "insight-need.yaml", "insight-segments.yaml"])
def test_every_count_a_run_shows_is_what_the_ledger_is_given(city, tmp_path, monkeypatch, shipped):
    """Person by person: the entries of each count cell add up to the count the table shows, so the
    ledger checks what is published and not something near it."""
    root, person = city
    checked = []

    def recording(ledger, governance, actor, keys, behind, mitigated):
        checked.append((keys, behind, mitigated))
        return check(ledger, governance, actor, keys, behind, mitigated)

    check = insight_run.check_insight
    monkeypatch.setattr(insight_run, "check_insight", recording)
    person("vtt.analyst1").permit(PERMIT).insight(EXAMPLES / shipped)
    keys, behind, mitigated = checked[-1]
    entries = ledger_entries(keys, mitigated, behind)
    counted = [(number, place) for number, places in entries.places.items() for place in places if place[2]]
    assert len(counted) > 10
    for number, (name, labels, count) in counted:
        cells = mitigated[name].output.cells
        row = cells[[tuple(r) == labels for r in cells[mitigated[name].output.groups].itertuples(index=False)]]
        assert entries.cells[number]["value"].sum() == float(row[count].iloc[0]), (name, count, labels)
    assert set(behind) >= {n for n, m in mitigated.items() if hasattr(m.output, "cells")}
