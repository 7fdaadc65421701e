"""Predicted service needs with a fairness audit (issue 13, points 5 and 8): metrics on known cases,
the planted proxy found on a small synthetic pool, small groups never shown, the same numbers
under another permit's key and row order, and no person's value in any output."""

from __future__ import annotations

import hashlib
import html
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import false_negative_rate, false_positive_rate, selection_rate
from scipy.stats import rankdata
from sklearn.metrics import brier_score_loss, precision_score, roc_auc_score

from safepool.disclosure import DisclosureRules, kind_of
from safepool.disclosure.cells import shown_mask
from safepool.disclosure.kinds.rates import RateTable
from safepool.features import load_features
from safepool.insight import fairness, need
from safepool.insight.analysis import InsightContext
from safepool.disclosure.register import mitigated_release
from safepool.insight.need import (NeedAnalysis, NeedResult, NeedSettings, analyse, derived_outputs, fast_auc,
                                   hanley_mcneil, outputs, select_top)
from safepool.insight.model_card import sections, summary_line
from safepool.insight.report import render_html
from safepool.insight.run import definitions
from safepool.insight.spec import analysis_of, load_insight
from safepool.yaml_files import FileProblem

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from study_validity import synthetic_pool  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "src/safepool/examples/insight-need.yaml"
SETTINGS = NeedSettings(bootstrap=40, permutation_repeats=2)
POLICY = DisclosureRules()


# -- metrics on a tiny known case ----------------------------------------------------------------


def test_group_metrics_on_a_known_confusion_table():
    # group a: TP 2, FP 1, FN 1, TN 5; group b: TP 0, FP 2, FN 2, TN 3
    y = np.array([1, 1, 0, 1, 0, 0, 0, 0, 0] + [1, 1, 0, 0, 0, 0, 0])
    s = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0] + [0, 0, 1, 1, 0, 0, 0])
    g = pd.Series(["a"] * 9 + ["b"] * 7)
    table = fairness.group_metrics(y, s, g).set_index("group")
    a, b = table.loc["a"], table.loc["b"]
    assert (a["n_true_positive"], a["n_false_positive"], a["n_false_negative"], a["n_true_negative"]) == (2, 1, 1, 5)
    assert a["selection_rate"] == pytest.approx(3 / 9) and a["precision"] == pytest.approx(2 / 3)
    assert a["false_positive_rate"] == pytest.approx(1 / 6) and a["false_negative_rate"] == pytest.approx(1 / 3)
    assert (b["n"], b["n_positive"], b["n_selected"]) == (7, 2, 2)
    assert b["precision"] == 0 and b["false_negative_rate"] == 1 and b["false_positive_rate"] == pytest.approx(2 / 5)
    for name, group in (("a", slice(0, 9)), ("b", slice(9, 16))):  # the same as fairlearn's and sklearn's own
        row = table.loc[name]
        assert row["selection_rate"] == pytest.approx(selection_rate(y[group], s[group]))
        assert row["false_positive_rate"] == pytest.approx(false_positive_rate(y[group], s[group]))
        assert row["false_negative_rate"] == pytest.approx(false_negative_rate(y[group], s[group]))
        assert row["precision"] == pytest.approx(precision_score(y[group], s[group], zero_division=0))
    nobody = fairness.group_metrics(np.array([0, 1, 0]), np.array([0, 0, 0]), pd.Series(["c"] * 3))
    assert np.isnan(nobody.loc[0, "precision"]) and nobody.loc[0, "false_negative_rate"] == 1


def test_auc_brier_and_selection_on_known_cases():
    y = np.array([0, 0, 1, 1, 0, 1])
    score = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    assert fast_auc(y, score) == pytest.approx(roc_auc_score(y, score))
    assert fast_auc(y, np.array([0.5] * 6)) == pytest.approx(0.5)  # ties share their rank
    assert fast_auc(np.array([0, 1]), np.array([0.2, 0.7])) == 1.0
    rng = np.random.default_rng(3)  # with many ties: exactly the AUC of each positive's mean rank
    for digits in (1, 2, 6):
        y, score = rng.random(5000) < 0.1, np.round(rng.random(5000), digits)
        n1 = int(y.sum())
        assert fast_auc(y, score) == (rankdata(score)[y].sum() - n1 * (n1 + 1) / 2) / (n1 * (5000 - n1))
    assert 0 < hanley_mcneil(0.8, np.array([1] * 30 + [0] * 300)) < 0.1
    assert select_top(np.array([0.1, 0.9, 0.5, 0.9, 0.2]), 0.2).tolist() == [False, True, False, True, False]
    assert select_top(np.array([0.1, 0.2]), 0.1).sum() == 0
    assert brier_score_loss(y, score) > 0


def test_bootstrap_is_seeded_and_its_intervals_hold_the_estimate():
    rng = np.random.default_rng(7)
    y, s = rng.random(4000) < 0.1, rng.random(4000) < 0.2
    groups = pd.DataFrame({"sex": rng.choice(["female", "male"], 4000)})
    first, again = fairness.audit(y, s, groups, 100, seed=3), fairness.audit(y, s, groups, 100, seed=3)
    pd.testing.assert_frame_equal(first.groups, again.groups)
    for metric in fairness.METRICS:
        assert (first.groups[f"{metric}_low"] <= first.groups[metric]).all()
        assert (first.groups[metric] <= first.groups[f"{metric}_high"]).all()
    other = fairness.audit(y, s, groups, 100, seed=4)
    assert not other.groups["selection_rate_low"].equals(first.groups["selection_rate_low"])


def test_disparities_flag_a_difference_beyond_tolerance_and_skip_small_groups():
    rng = np.random.default_rng(1)
    n = 6000
    group = rng.choice(["finnish", "foreign", "swedish"], n, p=[0.6, 0.397, 0.003])
    y = rng.random(n) < 0.2
    s = rng.random(n) < np.where(group == "foreign", 0.3, 0.1)  # selected three times as often
    audited = fairness.audit(y, s, pd.DataFrame({"native language": group}), 100, seed=1)
    table = fairness.disparities(audited, tolerance=0.05, ratio_tolerance=0.8).set_index("metric")
    assert table.loc["selection_rate", "flag"] == "beyond tolerance"
    assert table.loc["selection_rate", "highest / lowest"] == "foreign / finnish"
    assert table.loc["selection_rate", "difference"] == pytest.approx(0.2, abs=0.03)
    assert table.loc["selection_rate", "n"] >= fairness.MIN_GROUP  # swedish (about 18) is not compared
    fair = fairness.audit(y, rng.random(n) < 0.1, pd.DataFrame({"native language": group}), 100, seed=1)
    assert (fairness.disparities(fair, 0.05, 0.5)["flag"] == "within tolerance").all()


# -- disclosure of small groups ----------------------------------------------------------------


def test_a_rate_over_fewer_persons_than_the_minimum_is_never_shown():
    rng = np.random.default_rng(2)
    n = 3000
    group = np.where(np.arange(n) < 3, "tiny", rng.choice(["large", "medium"], n, p=[0.7, 0.3]))
    y, s = rng.random(n) < 0.3, rng.random(n) < 0.3
    s[np.arange(n) >= 2990] = True  # the medium group keeps every count above the minimum
    audited = fairness.audit(y, s, pd.DataFrame({"group kind": group}), 50, seed=1)
    table = fairness.released_table("audit", audited)
    mitigated = kind_of(table).mitigate(table, POLICY, margins=True, rounding=False)
    shown = kind_of(table).shown_table(mitigated.output, POLICY)
    tiny, medium = shown[shown["group"] == "tiny"], shown[shown["group"] == "medium"]
    assert tiny["status"].str.startswith("suppressed").all()  # every rate of each kind, not only the failing
    assert (medium["status"] == "suppressed (secondary)").all()  # else tiny = total - large
    assert shown.loc[shown["group"] != "large", ["estimate", "low", "high", "n", "n_events"]].isna().all().all()
    visible = shown.loc[shown_mask(shown)]
    assert (visible["n"] >= POLICY.min_frequency).all() and (visible["n_events"] >= POLICY.min_frequency).all()
    assert (visible["n"] - visible["n_events"] >= POLICY.min_frequency).all()  # nor the rest of the group
    assert mitigated.report.verdict == "pass"


@pytest.mark.parametrize("seed", range(6))
def test_a_group_with_few_true_positives_still_shows_whom_the_selection_reaches(seed):
    """The selection rate rests on a group's persons and selected alone; the error rates on the four
    cells of its confusion table. A group with too few true positives (rare starts: the demo's test
    quarter) loses its error rates, not its selection rate, and whatever a table shows, no cell of
    a group's confusion table below the minimum can be worked out from its shown rows: a group
    shows error rates only when all four cells pass."""
    rng = np.random.default_rng(seed)
    n = 4000
    group = rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.2, 0.1])
    started = rng.random(n) < 0.02  # rare: true positives by group are a few to a dozen
    selected = rng.random(n) < np.where(started, 0.4, 0.08)
    audited = fairness.audit(started, selected, pd.DataFrame({"group kind": group}), 50, seed=1)
    table = fairness.released_table("audit", audited)
    mitigated = kind_of(table).mitigate(table, POLICY, margins=True, rounding=False)
    shown = kind_of(table).shown_table(mitigated.output, POLICY)
    assert mitigated.report.verdict == "pass"
    counts = audited.groups.set_index("group")
    cells = ["n_true_positive", "n_false_positive", "n_false_negative", "n_true_negative"]
    few = counts.index[counts["n_true_positive"] < POLICY.min_frequency]
    visible = shown.loc[shown_mask(shown)]
    for name, rows in visible.groupby("group"):
        if (rows["rates"] == "errors").any():
            assert (counts.loc[name, cells] >= POLICY.min_frequency).all()
            assert set(rows["metric"]) >= {"false_positive_rate", "false_negative_rate", "precision"}
    selection = shown[shown["metric"] == "selection_rate"].set_index("group")["status"]
    if 0 < len(few) < 4 and (counts["n_selected"] >= 2 * POLICY.min_frequency).all() \
            and (counts["n"] - counts["n_selected"] >= POLICY.min_frequency).all():
        assert (selection == "shown").all()  # the groups' error rates hidden, their selection rates not
        assert not visible.loc[visible["group"].isin(few), "rates"].eq("errors").any()


def test_the_rest_of_a_group_counts_too():
    cells = pd.DataFrame({"group": ["a", "b"], "selection_rate": [0.99, 0.5], "n": [300, 300],
                          "n_selected": [297, 150]})
    report = kind_of(RateTable("r", cells, ["group"])).check(RateTable("r", cells, ["group"]), POLICY)
    assert report.verdict == "fail" and any(f.cells == [{"group": "a"}] for f in report.findings if f.verdict == "fail")


def test_a_small_count_of_positives_suppresses_the_row():
    cells = pd.DataFrame({"attribute": ["sex"] * 3, "group": ["female", "male", "other"],
                          "false_negative_rate": [0.5, 0.25, 0.2], "n": [400, 500, 300],
                          "n_positive": [4, 40, 30], "n_false_negative": [2, 10, 6]})
    table = RateTable("fnr", cells, ["attribute", "group"], partition="attribute")
    report = kind_of(table).check(table, POLICY)
    assert report.verdict == "fail"
    shown = kind_of(table).shown_table(kind_of(table).suppress(table, POLICY).output, POLICY)
    assert shown.loc[0, "status"].startswith("suppressed") and pd.isna(shown.loc[0, "false_negative_rate"])
    assert shown.loc[2, "status"] == "suppressed (secondary)"  # the smallest other group of the partition


# -- on a small synthetic pool -------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool():
    con, truth = synthetic_pool(seed=5, persons=8000, clients_per_year=10)
    yield con, truth
    con.close()


@pytest.fixture(scope="module")
def result(pool):
    con, _ = pool
    return analyse(con, load_features(), SETTINGS, seed=1)


def test_the_audit_flags_the_planted_proxy_and_shows_the_model_without_it(result, pool):
    _, truth = pool
    planted = truth["city"]["proxy"]["variable"].split(".")[1]  # population.district
    screen = result.proxies.set_index(["feature", "attribute"])
    assert screen.loc[(planted, "native language"), "role"] == fairness.PROXY
    language = screen.xs("native language", level="attribute")
    assert language.index[language["role"] == fairness.PROXY].tolist() == [planted]  # nothing else
    assert screen.loc[("female", "sex"), "role"] == fairness.DIRECT
    assert screen.loc[("age", "age group"), "role"] == fairness.DIRECT
    assert [m.label for m in result.models] == ["with every predictor", "without the proxies"]
    assert planted in result.models[0].predictors and planted not in result.models[1].predictors
    assert set(result.audits) == {m.label for m in result.models}
    assert result.models[0].auc > 0.5  # the bench measures it on 300,000 persons
    checked = released(result, hide={name: every_row(result) for name in ("fairness_1", "fairness_2")})
    assert {"fairness_1", "fairness_2", "proxies", "performance", "calibration", "importance", "coefficients_1",
            "coefficients_2", "cohort"} <= set(checked)
    # no rate of the fairness tables shown (as if the checks hid them all), so no difference between two
    assert not any(shown_mask(checked[name].output.cells).any() for name in ("fairness_1", "fairness_2"))
    assert not [name for name in checked if name.startswith("disparities")]
    # not "0 beyond tolerance", nor a bare "none shown": the reader is told the checks hid them all
    starts = int(checked["performance"].output.cells["n_positive"].iloc[0])
    assert summary_line(checked).endswith(f"no rate by group shown (the checks suppressed every one: too few "
                                          f"persons behind them; {starts:,} starts in the test set)")
    compared = released(_with_audit(result, _language_audit()))
    assert {"disparities_1", "disparities_2"} <= set(compared)
    assert "differences between groups: " in summary_line(compared) and " beyond tolerance, " in summary_line(compared)
    rates_only = {name: part for name, part in compared.items() if not name.startswith("disparities")}
    assert summary_line(rates_only).endswith("fewer than two groups of an attribute shown, so no difference "
                                             "between groups compared")
    assert all(m.report.verdict in ("pass", "review") for m in checked.values())
    assert f"proxies: {planted} for native language" in summary_line(checked)
    texts = [s.text for s in sections(result, load_features(), set(checked))]
    assert any("Intended use" in text and "Limitations" in text for text in texts)


def _rekeyed_copy(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """The same pool under another key (every pseudonym replaced, parents' too) with rows shuffled."""
    other = duckdb.connect()
    tables = [t for (t,) in con.sql("SELECT table_name FROM duckdb_tables()").fetchall()]
    pids = con.sql(" UNION ".join(f"SELECT pid FROM {t}" for t in tables)).df()["pid"].astype(str)
    rng = np.random.default_rng(99)
    rekeyed = [str(int(hashlib.sha256(b"another permit's key" + p.encode()).hexdigest()[:15], 16)) for p in pids]
    mapping = pd.DataFrame({"old": pids.to_numpy(), "new": rekeyed})
    con.register("rekey", mapping)
    try:
        for t in tables:
            columns = [c for (c,) in con.sql(f"SELECT column_name FROM duckdb_columns() WHERE table_name = '{t}'")
                       .fetchall()]
            linked = [c for c in columns if c in ("pid", "mother_id", "father_id")]
            select = ", ".join(f"k_{c}.new AS {c}" if c in linked else f'x."{c}"' for c in columns)
            joins = " ".join(f"LEFT JOIN rekey k_{c} ON k_{c}.old = x.{c}" for c in linked)
            frame = con.sql(f"SELECT {select} FROM {t} x {joins}").df()
            frame = frame.sample(frac=1.0, random_state=int(rng.integers(1 << 30))).reset_index(drop=True)
            other.register("frame", frame)
            other.execute(f"CREATE TABLE {t} AS SELECT * FROM frame")
            other.unregister("frame")
    finally:
        con.unregister("rekey")
    return other


def every_row(result: NeedResult) -> set[tuple[str, ...]]:
    """The labels of every row of the first model's fairness table (to hide them all)."""
    table = outputs(result)["fairness_1"]
    return {tuple(str(v) for v in row) for row in table.cells[table.groups].to_numpy()}


def released(result: NeedResult, hide: dict | None = None) -> dict:
    """Every output checked and mitigated under POLICY as a run publishes them (the disparities made
    from the fairness tables as mitigated)."""
    return mitigated_release(outputs(result), POLICY, margins=True, rounding=False, hide=hide,
                             derived=derived_outputs(result))


def _public(result: NeedResult) -> dict[str, pd.DataFrame]:
    return {name: kind_of(m.output).shown_table(m.output, POLICY) for name, m in released(result).items()}


def test_the_same_numbers_under_another_key_and_row_order(pool, result):
    con, _ = pool
    other = _rekeyed_copy(con)
    try:
        again = analyse(other, load_features(), SETTINGS, seed=1)
    finally:
        other.close()
    assert not set(result.units.pids) & set(again.units.pids)
    first, second = _public(result), _public(again)
    assert first.keys() == second.keys()
    for name in first:
        pd.testing.assert_frame_equal(first[name], second[name], check_exact=True, obj=name)


def test_no_person_level_value_leaves(result):
    units = len(result.units.frame)
    pids = set(map(str, result.units.pids))
    for name, mitigated in released(result).items():
        kind = kind_of(mitigated.output)
        table = kind.public_table(mitigated.output)
        assert "pid" not in table.columns and len(table) < 100, name  # aggregates, never a row per person
        text = kind.files(mitigated.output, name, POLICY)
        body = b"".join(text.values()).decode("utf-8")
        assert not any(p in body for p in pids), name
        assert len(table) < units


def test_the_example_file_and_the_report_made_of_checked_outputs(result):
    insight = load_insight(EXAMPLE)
    analysis = analysis_of(insight)
    assert analysis.kind == "need" and insight.analysis.predictors == SETTINGS.predictors
    assert set(analysis.tables(load_features())) == {"population", "child_protection", "city_services"}
    result = _with_audit(result, _language_audit())  # groups large enough for their differences to be shown
    checked = released(result)
    parts = sections(result, load_features(), set(checked))
    assert {name for s in parts for name in s.outputs} == set(checked)  # every output is shown, under a heading
    about = {"title": insight.title, "permit": insight.permit, "synthetic": True,
             "sections": [{"heading": s.heading, "text": s.text, "outputs": s.outputs} for s in parts],
             "features": definitions(load_features(), analysis.features_used())}
    page = render_html(insight.title, about, checked, POLICY)
    assert "Model card" in page and "Intended use" in page and "Fairness audit" in page
    # the card holds the whole run together: features, training window, metrics, the audit, intended use
    card = page[page.index("<h2>Model card</h2>"):page.index("<h2>Calibration</h2>")]
    assert all(f"<li>{p}:" in card for p in insight.analysis.predictors)
    assert "Training: index quarters 2012Q1, 2013Q1" in card and "Intended use:" in card
    assert card.count("<table>") == 1 + sum(name.startswith("disparities") for name in checked)
    assert "Discrimination and calibration on the test quarter" in card and "Largest differences" in card
    # the definitions of every feature the analysis used, as the features layer gives them
    definitions_part = page[page.index("<h2>Feature definitions</h2>"):].replace("<wbr>", "")
    for name in analysis.features_used():
        doc = load_features().describe(name)
        assert f"<td>{name}</td>" in definitions_part and html.escape(doc.definition) in definitions_part
    assert analysis.summary(checked).startswith("need prediction: test AUC")


def test_a_table_the_checks_blank_whole_is_told_in_a_sentence_not_printed_as_empty_rows(result):
    checked = released(result, hide={"fairness_1": every_row(result)})  # every rate suppressed
    fairness_table = checked["fairness_1"].output.cells
    about = {"title": "t", "permit": "P", "sections": [{"heading": "Fairness", "text": "x",
                                                         "outputs": ["fairness_1", "performance"]}]}
    page = render_html("t", about, checked, POLICY)
    part = page[page.index("<h2>Fairness</h2>"):]
    assert f"Every cell of this table ({len(fairness_table):,} rows) was suppressed" in part
    assert "Its rows: attribute: sex, native language" in part and "metric: selection_rate" in part
    assert part.count("<table>") == 1  # the performance table only, whose cells are shown
    assert "Disclosure control: Suppressed" in part  # the checks' own note stays under it


def test_the_pool_is_released_once_read_before_any_model_is_fitted(pool, result, monkeypatch):
    con, _ = pool
    events: list[str] = []
    fitted = need.fit
    monkeypatch.setattr(need, "fit", lambda *args: events.append("fit") or fitted(*args))
    context = InsightContext(con, load_features(), {}, POLICY, 1, release=lambda: events.append("released"))
    findings = NeedAnalysis(SETTINGS).run(context)
    assert events == ["released", "fit", "fit"]
    assert set(findings.outputs) == set(outputs(result)) and set(findings.derived) == set(derived_outputs(result))


def test_a_rate_the_checks_hide_does_not_come_back_through_a_difference(result):
    """A disparity names its highest and lowest group and their difference: beside the other
    group's rate shown in the fairness table, a difference from a hidden rate would give that rate
    away. Disparities are made from the rates the fairness table shows once checked, so a group
    whose rates the checks hide (here as the differencing ledger hides cells) is compared in none,
    and each n repeats a count of a group still shown."""
    result = _with_audit(result, _language_audit())
    first = released(result)
    disparities = first["disparities_1"].output.cells.set_index(["attribute", "metric"])
    attribute, metric = disparities.index[0]
    highest = disparities.loc[(attribute, metric), "highest / lowest"].split(" / ")[0]
    fairness_rows = first["fairness_1"].output.cells
    hidden_group = fairness_rows.loc[(fairness_rows["attribute"] == attribute) & (fairness_rows["group"] == highest)]
    hide = {tuple(str(v) for v in row) for row in hidden_group[["attribute", "group", "rates", "metric"]].to_numpy()}
    again = released(result, hide={"fairness_1": hide})
    shown = again["fairness_1"].output.cells
    assert not shown_mask(shown.loc[(shown["attribute"] == attribute) & (shown["group"] == highest)]).any()
    made = again["disparities_1"].output.cells if "disparities_1" in again else pd.DataFrame(
        columns=["attribute", "highest / lowest"])
    compared = made.loc[made["attribute"] == attribute, "highest / lowest"].str.split(" / ")
    assert not any(highest in pair for pair in compared)
    # each difference is of two rates the table shows, and its n is a count of a shown group
    rates = shown.loc[shown_mask(shown)].set_index(["attribute", "group", "metric"])["estimate"]
    for row in made.loc[shown_mask(made)].to_dict("records"):
        top, bottom = row["highest / lowest"].split(" / ")
        top_rate, bottom_rate = rates[(row["attribute"], top, row["metric"])], rates[(row["attribute"], bottom,
                                                                                    row["metric"])]
        assert row["difference"] == pytest.approx(top_rate - bottom_rate, abs=2e-3)
    fewest = derived_outputs(result)["disparities_1"]
    fewest(again)
    assert all(key[0] != attribute or group != highest for key, (group, _) in fewest.fewest().items())


def _language_audit() -> fairness.Audit:
    """An audit of 6,000 persons in three language groups, the foreign one selected three times as
    often: every group large enough for its rates to be shown."""
    rng = np.random.default_rng(2)
    group = rng.choice(["finnish", "foreign", "swedish"], 6000, p=[0.5, 0.3, 0.2])
    selected = rng.random(6000) < np.where(group == "foreign", 0.3, 0.1)
    return fairness.audit(rng.random(6000) < 0.2, selected, pd.DataFrame({"native language": group}), 50, seed=1)


def _with_audit(result: NeedResult, audited: fairness.Audit) -> NeedResult:
    """The result with `audited` as every model's fairness audit."""
    return NeedResult(result.settings, result.units, result.models, result.proxies,
                      {model.label: audited for model in result.models}, min_group=result.min_group)


def test_disparities_compare_only_the_groups_shown():
    audited = _language_audit()
    every = {("native language", g, m) for g in ("finnish", "foreign", "swedish") for m in fairness.METRICS}
    rate = fairness.disparities(audited, 0.05, 0.8, shown=every).set_index("metric").loc["selection_rate"]
    assert rate["highest / lowest"].startswith("foreign / ")
    without = every - {("native language", "foreign", "selection_rate")}
    rate = fairness.disparities(audited, 0.05, 0.8, shown=without).set_index("metric").loc["selection_rate"]
    assert "foreign" not in rate["highest / lowest"] and rate["difference"] < 0.05
    assert fairness.fewest(audited, shown=without)[("native language", "selection_rate")][0] != "foreign"
    alone = {("native language", "finnish", "selection_rate")}
    assert "selection_rate" not in set(fairness.disparities(audited, 0.05, 0.8, shown=alone)["metric"])


def test_no_table_of_differences_when_no_two_groups_can_be_compared(result):
    small = NeedResult(result.settings, result.units, result.models, result.proxies, result.audits, min_group=10 ** 6)
    checked = released(small)
    assert not [name for name in checked if name.startswith("disparities")]
    assert all(name in checked for s in sections(small, load_features(), set(checked)) for name in s.outputs)


def test_a_setting_that_cannot_work_is_named(tmp_path):
    text = EXAMPLE.read_text().replace("test: 2022Q1", "test: 2020Q3")
    (tmp_path / "need.yaml").write_text(text)
    with pytest.raises(FileProblem, match="test quarter"):
        load_insight(tmp_path / "need.yaml")
