"""`safepool study run` on the demo workspace: as the analyst under the permit, every output
checked and recorded as one release, no pseudonym in any of them, every count rounded alike when
the policy rounds, files at the policy's precision, and nobody else may run it."""

from __future__ import annotations

import os

import re
import shutil
import subprocess
import threading
import warnings

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from safepool.demo import DEMO_PERMIT
from safepool.disclosure import DisclosureRules, check
from safepool.disclosure.cells import is_contributor_column, shown_mask
from safepool.errors import SafepoolError
from safepool.governance.context import Governance
from safepool.query.engine import run_query
from safepool.reports import OUTPUT_NAMES
import safepool.study.run as run_module
from safepool.study.differencing import StudyWithheld, cohort_definition, study_groups
from safepool.study.run import EstimandWarning, analyse, balance_counts, outputs_of, run_study
from safepool.study.row_persons import shown_row_cells
from safepool.study.studyfile import load_study
from safepool.workspace import Workspace
from privacy_scan import decoded_text
from test_studyfile import EXAMPLE

os.environ["COLUMNS"] = "250"
from safepool.cli import app  # noqa: E402  (the width above is read at import)


@pytest.fixture(scope="module")
def demo(cli_demo, tmp_path_factory):
    """A copy of the shared demo workspace (tests/conftest.py), which this file changes."""
    root = tmp_path_factory.mktemp("study") / "ws"
    shutil.copytree(cli_demo[0], root, symlinks=True)
    passwords = yaml.safe_load((root / "steward" / "demo-users.yaml").read_text())
    return Workspace.open(root), passwords


@pytest.fixture(scope="module")
def ran(demo):
    workspace, passwords = demo
    rounding = CliRunner().invoke(app, ["policy", "set", "round_counts", "true", "--workspace", str(workspace.root),
                                        "--user", "demo.admin"], env={"SAFEPOOL_PASSWORD": passwords["demo.admin"]})
    assert rounding.exit_code == 0, rounding.output
    result = CliRunner().invoke(app, ["study", "run", str(EXAMPLE), "--workspace", str(workspace.root),
                                      "--user", "vtt.analyst1"],
                                env={"SAFEPOOL_PASSWORD": passwords["vtt.analyst1"]}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_every_output_is_checked_and_recorded(demo, ran):
    workspace, passwords = demo
    governance = Governance.open(workspace.root)
    analyst = governance.users.authenticate("vtt.analyst1", passwords["vtt.analyst1"])
    per_run = len(OUTPUT_NAMES) + 1  # every table and figure, and the report made of them
    records = governance.outputs.list(analyst, DEMO_PERMIT)  # the demo's own run, then this one
    assert {r.title for r in records} and len(records) == 2 * per_run
    assert all(r.source == "study" and r.author == "vtt.analyst1" for r in records)
    reports = [r for r in records if r.kind == "document"]
    assert all(r.verdict == "pass" for r in records if r.kind != "document")
    assert [r.verdict for r in reports] == ["review", "review"]  # a person reads a report's text
    assert len(reports) == 2 and all(set(r.files) == {"study-report.html", "study-report.pdf"} for r in reports)
    assert "of the clients were matched" in ran and f"{DEMO_PERMIT}-{2 * per_run:04d}" in ran
    assert governance.audit.records(user="vtt.analyst1", action="pool_access")
    assert len(governance.audit.records(user="vtt.analyst1", action="output_record", permit=DEMO_PERMIT)) == 2 * per_run


def test_no_pseudonym_in_any_recorded_file(demo, ran):
    workspace, _ = demo
    con = duckdb.connect(str(workspace.pool_dir / DEMO_PERMIT / "pool.duckdb"), read_only=True)
    # the number's digits, which the 19-digit form shown to people holds too
    pids = {str(row[0]) for row in con.sql("SELECT DISTINCT pid FROM population").fetchall()}
    con.close()
    written = [p for p in (workspace.root / "outputs").rglob("*") if p.is_file()]
    assert len(written) >= len(OUTPUT_NAMES)
    for path in written:
        data, text = path.read_bytes(), decoded_text(path)
        assert not [pid for pid in pids if pid.encode() in data or pid in text], path.name
    assert not [pid for pid in pids if pid in ran]


def test_the_demo_and_the_run_say_how_many_clients_were_matched(cli_demo, ran):
    """Both say the share of clients matched with the reasons for the others, and the estimand; this
    small demo matches fewer than the study file's 90%, so both warn, in words, that the estimate
    is the effect on the matched clients, not the ATT."""
    for said in (cli_demo[1], ran):
        flat = " ".join(said.split())
        counts = re.search(r"\d+% of the clients were matched \(([\d,]+) of ([\d,]+); counts rounded to "
                           r"multiples of 5\)", flat)
        assert counts, flat
        # as published: both runs round counts to base 5, say so, and say no count otherwise
        assert all(int(n.replace(",", "")) % 5 == 0 for n in counts.groups()), counts.group(0)
        assert "Warning: Only" in flat and "not the effect on all clients (ATT)" in flat
        assert "EstimandWarning" not in flat


def test_only_an_analyst_of_the_permit_may_run_it(demo):
    workspace, passwords = demo
    governance = Governance.open(workspace.root)
    checker = governance.users.authenticate("sf.checker", passwords["sf.checker"])
    made: list[str] = []
    with pytest.MonkeyPatch.context() as patch:  # nothing is made in the pool zone before the refusal
        patch.setattr("safepool.study.run.Scratch", lambda *args: made.append(str(args)))
        with pytest.raises(SafepoolError, match="analyst"):
            run_study(workspace.pool_dir, governance, checker, load_study(EXAMPLE))
    assert made == []
    # the chart engine started for the report is joined on every way out
    assert not [t for t in threading.enumerate() if t.name == "chart engine start"]


def second_run(workspace, passwords):
    governance = Governance.open(workspace.root)
    analyst = governance.users.authenticate("vtt.analyst1", passwords["vtt.analyst1"])
    return governance, governance.outputs.list(analyst, DEMO_PERMIT)[len(OUTPUT_NAMES) + 1:]


def test_when_the_policy_rounds_every_count_of_the_release_is_rounded(demo, ran):
    workspace, passwords = demo
    governance, records = second_run(workspace, passwords)
    assert records and {r.counts_rounded_to for r in records} == {5}  # the report too: all its parts
    counted = 0
    for record in records:
        for path in governance.outputs.folder(record).glob("*.csv"):
            table = pd.read_csv(path)
            for column in [c for c in table.columns if c in ("count", "n") or c.startswith("n_")]:
                values = table[column].dropna()
                assert (values % 5 == 0).all(), (path.name, column)
                counted += len(values)
    assert counted > 50


def test_released_files_carry_the_policys_precision(demo, ran):
    workspace, passwords = demo
    governance, records = second_run(workspace, passwords)
    decimals = {path.name: [len(d) for d in re.findall(r"(?<![\w.])-?\d+\.(\d+)(?![\w.])", path.read_text())]
                for record in records for path in governance.outputs.folder(record).glob("*.csv")}
    assert max(max(found) for found in decimals.values() if found) == 3, decimals


def test_each_arms_mean_is_checked_with_its_contributors_which_are_never_kept(demo):
    workspace, _ = demo
    con = duckdb.connect(str(workspace.pool_dir / DEMO_PERMIT / "pool.duckdb"), read_only=True)
    try:
        with pytest.warns(EstimandWarning, match="effect on the matched clients"):  # 85% matched: see below
            analysis = analyse(con, load_study(EXAMPLE), DisclosureRules().min_frequency)
    finally:
        con.close()
    subgroups = outputs_of(analysis)["subgroups"]
    assert {"top:mean_treated", "abs_total:mean_control"} <= set(subgroups.cells.columns)
    assert not {"top:mean_treated", "abs_total:mean_treated"} & set(subgroups.public_table().columns)
    report = check(subgroups, DisclosureRules())
    rules = [f.message for f in report.findings if f.rule == "dominance"]
    assert any("(mean_treated)" in m for m in rules) and any("(mean_control)" in m for m in rules)
    assert any("treated or the control arm" in f.message for f in report.findings if f.rule == "min_frequency")
    assert not any(":" in c for c in analysis.subgroups.columns)  # the analysis frames hold no contributors
    # The tenth review's routes: the naive comparison (the effects' clients) and the sensitivity of an
    # effect showed what the effects suppressed for one large contributor, and the placebo test its
    # own unchecked means of the event study's pre-entry rows. Each is checked as its effect is now.
    outputs = outputs_of(analysis)
    for name in ("naive", "sensitivity"):
        assert {"top:mean_treated", "abs_total:mean_control"} <= set(outputs[name].cells.columns), name
    strict = DisclosureRules(dominance_k=0.2, p_ratio=0.0)  # many means fail: the same ones in each table

    effect_failing = {f"{c['outcome']}/{c['horizon']}" for f in check(outputs["effects"], strict).findings
                      if f.rule == "dominance" for c in f.cells if c.get("method") == "att"}
    assert effect_failing
    found = {name: {f"{c['outcome']}/{c['horizon']}" for f in check(outputs[name], strict).findings
                    if f.rule == "dominance" for c in f.cells} for name in ("naive", "sensitivity")}
    assert found["sensitivity"] == effect_failing  # the effect's own contributors
    assert found["naive"]  # its own (unweighted) contributors, over the same clients
    placebo = outputs["placebo"].cells
    assert not {"estimate", "mean_treated", "mean_control", "ci_low", "p_value"} & set(placebo.columns)
    assert {"wald_chi2", "joint_p_value", "n_treated"} <= set(placebo.columns)


def test_clients_not_matched_are_told_by_no_pair_of_tables_unless_they_are_many(demo):
    """The ninth review's route inside one run: the balance before matching (all clients) and after
    it (the matched ones), each mean times its count, subtracted, gave the means of the shipped
    study's 4 clients not matched. Under a minimum frequency above the number not matched they are
    left out of the tables before matching too, so every client-side table describes the matched
    clients; at or below it, their group is large enough to be told. The unmatched comparison at
    each horizon follows the clients the effect follows then (the demo's had 54 to 74 more)."""
    workspace, _ = demo
    study = load_study(EXAMPLE)
    con = duckdb.connect(str(workspace.pool_dir / DEMO_PERMIT / "pool.duckdb"), read_only=True)
    try:
        with pytest.warns(EstimandWarning):
            told = analyse(con, study, 1)
        not_matched = told.n_treated - told.n_matched
        assert not_matched > 0
        with pytest.warns(EstimandWarning):
            kept = analyse(con, study, not_matched + 1)
    finally:
        con.close()

    def clients(analysis, stage):
        table = analysis.balance.loc[analysis.balance["stage"] == stage].set_index("covariate")
        return table["mean_treated"] * balance_counts(analysis)[stage]["n_treated"]

    difference = clients(told, "before") - clients(told, "after")
    assert (difference.abs() > 1e-6).any()  # the route: a group of `not_matched` clients' sums
    assert (kept.n_treated, kept.n_matched) == (told.n_treated, told.n_matched)  # the flow is as it was
    assert balance_counts(kept)["before"]["n_treated"] == kept.n_matched
    assert np.allclose(clients(kept, "before"), clients(kept, "after"))
    for analysis in (told, kept):  # the unmatched comparison follows the clients each effect follows
        att = analysis.effects.loc[analysis.effects["method"] == "att"].set_index(["outcome", "horizon"])
        pd.testing.assert_series_equal(analysis.naive.set_index(["outcome", "horizon"])["n_treated"],
                                       att["n_treated"].loc[analysis.naive.set_index(["outcome", "horizon"]).index])
    assert set(kept.groups) == {"clients", "controls", "matched controls"}
    assert len(kept.groups["clients"]) == kept.n_matched and len(told.groups["clients"]) == told.n_treated
    assert "matched clients" in told.groups


def test_the_report_names_labels_and_units_and_says_the_data_are_synthetic_on_every_page(demo, ran):
    workspace, passwords = demo
    governance, records = second_run(workspace, passwords)
    report = next(r for r in records if r.kind == "document")
    text = subprocess.run(["pdftotext", "-layout", str(governance.outputs.folder(report) / "study-report.pdf"), "-"],
                          check=True, capture_output=True, text=True).stdout
    pages = [page for page in text.split("\f") if page.strip()]
    assert len(pages) > 8 and all("Synthetic data: made from synthetic registers" in page for page in pages)
    assert "Main results" in pages[0] and "Data and methods" not in pages[0]
    for raw in ("social_health_visits_4", "treatment.language_level", "permit_grounds_", "native_language_",
                "n_clusters", "e_value"):
        assert raw not in text, raw
    for label in ("Social and health service visits", "EUR per quarter", "percentage points", "Native language: ",
                  "Finnish language level at entry"):
        assert label in text, label
    assert not re.search(r"(?<![\w#.])\d+(\.\d+)?[eE][-+]?\d", text)


def test_the_study_engine_is_bounded_spills_in_the_pool_zone_and_runs_again_unbounded_when_short(demo, monkeypatch):
    """The study's engine is bounded so that it lets go of the memory its cohort queries used
    (safepool.study.run.study_engine_mb); beyond the bound it spills into a scratch folder of the
    pool zone, gone afterwards; a study that does not fit runs once more unbounded, with the same
    numbers as an engine that was never bounded."""
    import safepool.study.run as run

    workspace, passwords = demo
    governance = Governance.open(workspace.root)
    analyst = governance.users.authenticate("vtt.analyst1", passwords["vtt.analyst1"])
    pool_file = workspace.pool_dir / DEMO_PERMIT / "pool.duckdb"
    assert run.study_engine_mb(workspace.pool_dir, DEMO_PERMIT) == max(
        run.STUDY_ENGINE_FLOOR_MB, int(run.STUDY_ENGINE_PER_POOL_BYTE * pool_file.stat().st_size) >> 20)
    opened: list[tuple[int | None, str, str]] = []
    real_open = run.open_for_analysis

    def recording(*args, **kwargs):
        con = real_open(*args, **kwargs)
        limit, spill = con.sql("SELECT current_setting('memory_limit'), current_setting('temp_directory')").fetchall()[0]
        opened.append((kwargs["memory_limit_mb"], limit, spill))
        return con

    monkeypatch.setattr(run, "open_for_analysis", recording)
    monkeypatch.setattr(run, "STUDY_ENGINE_FLOOR_MB", 8)  # far too little for the demo's cohort
    monkeypatch.setattr(run, "STUDY_ENGINE_PER_POOL_BYTE", 0.0)
    study = load_study(EXAMPLE)
    with pytest.warns(EstimandWarning):
        bounded = run.analyse_in_pool(workspace.pool_dir, governance, analyst, study, lambda _stage: None)
    assert [bound for bound, _, _ in opened] == [8, None]
    assert opened[0][1].replace(" ", "") in {"8.0MiB", "7.6MiB"}
    spill = opened[0][2]
    assert spill == opened[1][2] and spill.startswith(str(workspace.pool_dir / ".builds" / f"spill-{DEMO_PERMIT}-"))
    assert not os.path.exists(spill)
    con = duckdb.connect(str(pool_file), read_only=True)
    try:
        with pytest.warns(EstimandWarning):
            unbounded = analyse(con, study, DisclosureRules().min_frequency)
    finally:
        con.close()
    for name in ("effects", "balance", "cohort_flow", "subgroups"):
        pd.testing.assert_frame_equal(getattr(bounded, name), getattr(unbounded, name))


def study_with(tmp_path, ages: tuple[int, int], *changes: tuple[str, str]):
    """The shipped study file with other ages of eligibility and the other `changes` (text, new
    text), and fewer replications, for speed."""
    text = EXAMPLE.read_text().replace("age: [18, 64]", f"age: [{ages[0]}, {ages[1]}]")
    for old, new in (*changes, ("replications: 500", "replications: 50")):
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / f"study-{ages[0]}-{ages[1]}-{len(list(tmp_path.glob('study-*')))}.yaml"
    path.write_text(text)
    return load_study(path)


def analyst_in_copy(demo_root, tmp_path):
    """A copy of the demo workspace, its governance, and its analyst signed in."""
    root = tmp_path / "ws"
    shutil.copytree(demo_root, root, symlinks=True)
    passwords = yaml.safe_load((root / "steward" / "demo-users.yaml").read_text())
    governance = Governance.open(root)
    return Workspace.open(root), governance, governance.users.authenticate("vtt.analyst1", passwords["vtt.analyst1"])


def test_two_runs_whose_clients_differ_by_one_person_are_not_both_recorded(cli_demo, tmp_path, monkeypatch):
    """The eighth review's route: the shipped study with ages 18-62 and again with 18-61 differ by
    one client aged 62, whose benefits, children and permit grounds the two balance tables told
    (n times each mean, the exact n pinned by the 0/1 covariates' means despite rounded counts).
    The cohort's groups are in the differencing ledger: the shipped study (which the demo ran:
    the same persons) passes again, and a run whose clients lack one of them is withheld,
    audited, and records nothing."""
    workspace, governance, analyst = analyst_in_copy(cli_demo[0], tmp_path)
    study = study_with(tmp_path, (18, 64))
    first = run_study(workspace.pool_dir, governance, analyst, study)
    assert first.records and first.published_matching().n_treated > 5
    # What the analyst's shell gets is what the checks let out: no frame of the analysis (they held the
    # means of suppressed rows and exact counts), and outputs without contributors or suppressed numbers.
    assert not [name for name, value in vars(first).items() if isinstance(value, (pd.DataFrame, np.ndarray))]
    for name, mitigated in first.checked.items():
        cells = getattr(mitigated.output, "cells", None)
        if isinstance(cells, pd.DataFrame):
            assert not [c for c in cells.columns if is_contributor_column(c)], name
            hidden = cells.loc[~shown_mask(cells)].drop(columns=["status"] + list(getattr(mitigated.output, "groups", [])))
            assert hidden.isna().all().all() or hidden.empty, name
    recorded = len(governance.outputs.list(analyst, DEMO_PERMIT))

    def one_client_fewer(described, matched, person):  # as a narrower age range leaves out one client
        groups = study_groups(described, matched, person)
        return {**groups, "clients": groups["clients"][1:]}

    monkeypatch.setattr("safepool.study.run.study_groups", one_client_fewer)
    with pytest.raises(StudyWithheld, match="study withheld") as refused:
        run_study(workspace.pool_dir, governance, analyst, study)
    assert not re.search(r"\d{3}", str(refused.value))  # no count of the data
    assert len(governance.outputs.list(analyst, DEMO_PERMIT)) == recorded
    withheld = governance.audit.records(action="study")[-1]
    assert withheld.outcome == "withheld" and withheld.detail["withheld"][0]["measure"] == "persons"


def test_two_runs_whose_rows_follow_clients_who_differ_by_a_few_are_not_both_recorded(cli_demo, tmp_path):
    """The tenth review's route: the shipped study with horizon 0 (subgroups there too), then the
    same file without refining the matching. The clients and the matched clients are the same, so
    the run's groups passed the ledger, but other controls are matched, and a client enters a
    horizon's row only where a control of its set is observed: the rows at entry followed clients
    who differ by a few, and n times the clients' mean, subtracted, told those few's values. Each
    shown row's values are in the ledger now: the same run passes again, the other is withheld,
    audited, and records nothing."""
    workspace, governance, analyst = analyst_in_copy(cli_demo[0], tmp_path)
    at_entry = (("horizons: [4, 8, 12]", "horizons: [0, 4, 8, 12]"), ("subgroup_horizon: 8", "subgroup_horizon: 0"))
    refined = study_with(tmp_path, (18, 64), *at_entry)
    not_refined = study_with(tmp_path, (18, 64), *at_entry, ("refine: true ", "refine: false"))
    con = duckdb.connect(str(workspace.pool_dir / DEMO_PERMIT / "pool.duckdb"), read_only=True)
    try:
        with pytest.warns(EstimandWarning):
            one, other = (analyse(con, study, 5) for study in (refined, not_refined))
    finally:
        con.close()
    # the route: the same groups, rows at entry over clients who differ by 1 to 4, whose sums differ
    assert {name: set(persons) for name, persons in one.groups.items()} == \
        {name: set(persons) for name, persons in other.groups.items() if name != "matched controls"} | \
        {"matched controls": set(one.groups["matched controls"])}
    at_zero = [(analysis.effects["method"] == "att") & (analysis.effects["horizon"] == 0) for analysis in (one, other)]
    followed = [analysis.effects.loc[rows, "n_treated"].to_numpy() for analysis, rows in zip((one, other), at_zero)]
    assert 0 < np.abs(followed[0] - followed[1]).max() < 5
    sums = [analysis.effects.loc[rows, "n_treated"].to_numpy() * analysis.effects.loc[rows, "mean_treated"].to_numpy()
            for analysis, rows in zip((one, other), at_zero)]
    assert (np.abs(sums[0] - sums[1]) > 1e-6).any()
    # the difference in differences shows means of the same levels as the effect (a review read a client
    # from the two rows at horizon 0 of one run): the same persons stand for the same values in both
    effects, members = one.effects, one.row_persons["effects"]
    for outcome in refined.outcomes:
        att, did = ({int(p): int(c) for p, c in zip(members[i]["clients"].persons, members[i]["clients"].values)}
                    for i in (np.flatnonzero((effects["outcome"] == outcome) & (effects["horizon"] == 0)
                                             & (effects["method"] == method))[0] for method in ("att", "did")))
        assert {p: att[p] for p in att.keys() & did.keys()} == {p: did[p] for p in att.keys() & did.keys()}

    run_study(workspace.pool_dir, governance, analyst, refined)
    recorded = len(governance.outputs.list(analyst, DEMO_PERMIT))
    run_study(workspace.pool_dir, governance, analyst, refined)  # the same rows again: nothing new is told
    assert len(governance.outputs.list(analyst, DEMO_PERMIT)) > recorded
    recorded = len(governance.outputs.list(analyst, DEMO_PERMIT))
    with pytest.raises(StudyWithheld, match="at 0 quarters") as refused:
        run_study(workspace.pool_dir, governance, analyst, not_refined)
    assert not re.search(r"\d{2}", re.sub(r"at 0 quarters|and \d+ more", "", str(refused.value)))  # no count of data
    assert len(governance.outputs.list(analyst, DEMO_PERMIT)) == recorded
    withheld = governance.audit.records(action="study")[-1]
    assert withheld.outcome == "withheld" and {entry["measure"] for entry in withheld.detail["withheld"]} == {"mean"}


def test_rows_of_a_difference_in_differences_tell_no_few_clients_baselines(cli_demo, tmp_path, monkeypatch):
    """A difference in differences' estimate less the difference of its means is the arms' baseline
    difference over the clients the row follows, the same baseline values at every horizon. On the
    test demo the event study's rows at two quarters before entry follow clients who differ by a
    few (sets of one client and one control, observed before entry alike), so n times that
    difference, subtracted, told those few clients' baseline values less their controls'. Now the
    rows that would tell it are hidden (the disclosure checks suppress them), the shipped study
    passes twice, and shown, they are withheld by the ledger, whose message names them and no number."""
    workspace, governance, analyst = analyst_in_copy(cli_demo[0], tmp_path)
    study = study_with(tmp_path, (18, 64))
    kept: dict[str, pd.DataFrame] = {}
    weighted = run_module.weighted_cells

    def keeping(matched, outcome, horizons, method, *rest):  # the event study's cells, for the truth below
        cells = weighted(matched, outcome, horizons, method, *rest)
        if method == "did" and len(horizons) > len(study.horizons):
            kept[outcome] = cells
        return cells

    monkeypatch.setattr(run_module, "weighted_cells", keeping)
    con = duckdb.connect(str(workspace.pool_dir / DEMO_PERMIT / "pool.duckdb"), read_only=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EstimandWarning)
            analysis = analyse(con, study, 5)
    finally:
        con.close()
    outcome = study.outcomes[0]
    cells = kept[outcome]
    sets = {int(h): set(group["set"]) for h, group in cells.loc[cells["treated"]].groupby("horizon")}
    before = [h for h in sets if h <= 0]  # no censoring weights before entry: the means are plain
    pairs = [(a, b) for a in before for b in before if sets[b] < sets[a] and len(sets[a] - sets[b]) < 5]
    assert pairs  # the route: two rows whose clients differ by 1 to 4 sets
    a, b = pairs[0]
    event = analysis.event_study
    row = {h: np.flatnonzero(((event["outcome"] == outcome) & (event["horizon"] == h)).to_numpy())[0] for h in (a, b)}
    told = {h: event.loc[row[h], "n_treated"] * (event.loc[row[h], "mean_treated"] - event.loc[row[h], "mean_control"]
                                                 - event.loc[row[h], "estimate"]) for h in (a, b)}
    assert event.loc[row[a], "n_treated"] - event.loc[row[b], "n_treated"] == len(sets[a] - sets[b])
    few = cells.loc[(cells["horizon"] == a).to_numpy() & cells["set"].isin(sets[a] - sets[b]).to_numpy()]
    signed = np.where(few["treated"], 1.0, -1.0) * few["w"] * (few["level"] - few["y"])  # level - change = baseline
    assert told[a] - told[b] == pytest.approx(float(signed.sum()), abs=1e-6)

    hidden = analysis.baseline_hidden["event_study"]
    assert hidden[row[a]] or hidden[row[b]]
    for _ in range(2):  # the shipped study, its rows hidden alike, is released again and again
        published = run_study(workspace.pool_dir, governance, analyst, study).checked["event_study"].output.cells
        assert not shown_mask(published)[[row[a], row[b]]].all()
        assert not shown_mask(published)[hidden].any() and published["status"].str.contains("differencing").any()
    recorded = len(governance.outputs.list(analyst, DEMO_PERMIT))
    monkeypatch.setattr(run_module, "baseline_hidden",
                        lambda tables, *_: {name: np.zeros(len(table), dtype=bool) for name, table in tables.items()})
    with pytest.raises(StudyWithheld, match="baseline") as refused:
        run_study(workspace.pool_dir, governance, analyst, study)
    assert "event study" in str(refused.value)
    assert not re.search(r"\d{2}", re.sub(r"at -?\d+ quarters|and \d+ more", "", str(refused.value)))
    assert len(governance.outputs.list(analyst, DEMO_PERMIT)) == recorded


def test_a_query_over_every_client_does_not_take_the_balance_tables_clients_away(cli_demo, tmp_path):
    """The eleventh review's route: when fewer clients than the minimum frequency are not matched,
    the balance table's means before matching leave them out, and a query over every client of the
    study's period adds up the same covariate over those few more (the demo's release and a few
    queries told its four unmatched clients' children, marital status and benefits before entry).
    Each balance mean is in the ledger as the sum it is, its persons keyed as a query's are: after
    the run, the query over every client is hidden."""
    workspace, governance, analyst = analyst_in_copy(cli_demo[0], tmp_path)
    # (with the effects up to a year after entry only: later rows would follow clients who differ by a few
    # from the demo's study's)
    study = study_with(tmp_path, (18, 64), ("end: 2024Q4", "end: 2022Q4"), ("caliper: 0.2", "caliper: 0.5"),
                       ("last: 12", "last: 4"), ("horizons: [4, 8, 12]", "horizons: [4]"),
                       ("subgroup_horizon: 8", "subgroup_horizon: 4"))
    every_client = ("SELECT sum(children) FROM population JOIN skills_centre USING (pid) "
                    "WHERE entry_date < '2023-01-01'")
    con = duckdb.connect(str(workspace.pool_dir / DEMO_PERMIT / "pool.duckdb"), read_only=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EstimandWarning)
            analysis = analyse(con, study, 5)
        clients, children = con.execute(every_client.replace("sum(children)", "count(DISTINCT pid), sum(children)")
                                        ).fetchone()
    finally:
        con.close()
    # the route: the study's clients are every client of the period, its balance describes all but 1 to 4,
    # and the query's sum less the balance's tells those few's children
    assert clients == analysis.n_treated and 0 < analysis.n_treated - analysis.n_described < 5
    balance = analysis.balance
    mean = balance.loc[(balance["stage"] == "before") & (balance["covariate"] == "children"), "mean_treated"].iloc[0]
    assert children - mean * analysis.n_described > 0.5

    run_study(workspace.pool_dir, governance, analyst, study)
    answer = run_query(workspace.pool_dir, governance, analyst, DEMO_PERMIT, every_client)
    assert not answer.table["status"].eq("shown").any()
    assert governance.audit.records(action="query")[-1].outcome == "withheld"


def test_balance_rows_the_ledger_finds_are_hidden_in_the_love_plot_too_and_show_no_variance_ratio(demo, ran):
    """On the tests' demo the ledger finds balance rows within the run (the means before matching less
    those after tell the 18 clients not matched, and a few of them have tertiary education or
    earnings): they are hidden in the balance table, and in the love plot drawn from it, which had
    shown their means; a hidden row's variance ratio (a label before) is hidden with it."""
    workspace, _ = demo
    hidden = {}
    for name in ("balance", "love_plot"):
        files = list((workspace.root / "outputs").rglob(f"{name}.csv"))
        assert files
        frames = [pd.read_csv(path, dtype=str) for path in files]
        rows = pd.concat([frame.loc[frame["status"].str.startswith("suppressed")] for frame in frames])
        assert rows.drop(columns=["stage", "covariate", "status"]).isna().all().all(), name
        hidden[name] = set(zip(rows["stage"], rows["covariate"]))
    assert hidden["balance"] and hidden["balance"] == hidden["love_plot"]


@pytest.mark.parametrize(("outcome", "measure"), [
    ("earnings", "sum(earnings)"),
    # a share times its count is a count: each employed client adds one, as to a count query
    ("employment", "count(*) FILTER (WHERE CAST(main_activity AS VARCHAR) = '11')"),
])
def test_an_effect_rows_clients_enter_the_ledger_with_the_values_a_query_adds_up(cli_demo, tmp_path, outcome, measure):
    """The thirteenth review's route: at entry every weight is one, so an effect row's mean times its
    count is the sum of its clients' outcome in their entry quarter, and queries over every client,
    one entry quarter at a time, add up the same values over the few clients more that the row does
    not follow (one client's benefits came out so). Each level arm of a shown row enters the ledger
    as a sum of a family only (`safepool.query.ledger.Ledger.check`), its persons with exactly the
    amounts such a query adds up for them, so the families' audit sets the two against each other
    (tests/test_ledger_family.py shows the audit find both orders); a baseline's arm, told only less
    the row's own, does not."""
    study = study_with(tmp_path, (18, 64), ("horizons: [4, 8, 12]", "horizons: [0, 4]"),
                       ("subgroup_horizon: 8", "subgroup_horizon: 0"))
    con = duckdb.connect(str(cli_demo[0] / "pool" / DEMO_PERMIT / "pool.duckdb"), read_only=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EstimandWarning)
            analysis = analyse(con, study, 5)
        at_entry = con.execute(
            f"SELECT pid, {measure} FROM employment JOIN skills_centre USING (pid) "
            "WHERE quarter = CAST(year(entry_date) AS VARCHAR) || 'Q' || CAST(quarter(entry_date) AS VARCHAR) "
            "GROUP BY pid").fetchall()
    finally:
        con.close()
    queried = dict(at_entry)
    effects = analysis.effects
    for method in ("att", "did"):
        row = np.flatnonzero(((effects["outcome"] == outcome) & (effects["horizon"] == 0)
                              & (effects["method"] == method)).to_numpy())[0]
        arms = analysis.row_persons["effects"].iloc[row]
        clients = arms["clients"].sums()
        assert len(clients.persons) == round(effects["n_treated"].iloc[row]) > 20
        assert clients.values.sum() == pytest.approx(effects["mean_treated"].iloc[row] * len(clients.persons))
        assert {int(p): v for p, v in zip(clients.persons, clients.values) if v} == pytest.approx(
            {int(p): queried[int(p)] for p in clients.persons if queried.get(int(p))})
        others = arms["clients"].others()  # a share's complement: the clients a count of those not employed adds up
        assert (others is None) == (outcome == "earnings")
        if others is not None:
            assert {int(p): v for p, v in zip(others.persons, others.values) if v} == {
                int(p): 1.0 for p in clients.persons if not queried.get(int(p))}
        labels = pd.Series([f"row {n}" for n in range(len(effects))])
        shown = np.zeros(len(effects), dtype=bool)
        shown[row] = True
        _, sums = shown_row_cells({"effects": analysis.row_persons["effects"]}, {"effects": shown},
                                  {"effects": labels})
        assert all(arm.family and arm.position == row for arm in sums.values())
        assert {label.split(", ", 1)[1] for label in sums} == {"clients (sum)", "controls (sum)"} | (
            set() if others is None else {"clients (others)", "controls (others)"})


def test_the_ledger_knows_each_member_of_a_rows_person(cli_demo, tmp_path):
    """A study's rows name a control matched in two sets at other times by its parts: its rows in
    two quarters, or two values, each a member of the row. The workspace ledger keeps, for each
    such member, the ledger key of its person (tests/test_ledger_family.py shows the group audit
    count five members of four persons as four), and the demo's study has such controls."""
    from safepool.pool.ledger_keys import LEDGER_DIR, WORKSPACE_LEDGER, ledger_keys

    root = cli_demo[0]
    for suffix in (".duckdb", ".duckdb.wal"):  # a copy: this process may hold the file attached
        source = root / "pool" / LEDGER_DIR / f"{WORKSPACE_LEDGER}{suffix}"
        if source.exists():
            shutil.copy(source, tmp_path / f"ledger{suffix}")
    with duckdb.connect(str(tmp_path / "ledger.duckdb"), read_only=True) as con:
        owners = con.sql("SELECT cell, member, owner FROM member_owners").df()
        members = con.sql("SELECT count(*) FROM contributions c JOIN member_owners o "
                          "ON c.cell = o.cell AND c.person = o.member").fetchall()[0][0]
    with duckdb.connect(str(root / "pool" / DEMO_PERMIT / "pool.duckdb"), read_only=True) as con:
        pids = con.sql("SELECT pid FROM population").df()["pid"].to_numpy()
    keys = ledger_keys(root / "pool", DEMO_PERMIT).of(pids)
    assert len(owners) and members == len(owners)  # every owner is of a remembered member
    assert set(owners["owner"].tolist()) <= set(keys.tolist())
    assert not set(owners["member"].tolist()) & set(keys.tolist())  # a part is never a person's own key
    twice = owners.groupby(["cell", "owner"]).size()
    assert (twice > 1).any()  # some control is two members of one row


def test_a_run_of_another_cohort_with_the_same_persons_is_withheld_as_one_of_fewer_would_be(cli_demo, tmp_path,
                                                                                           monkeypatch):
    """A narrower cohort is withheld when it leaves out one to four persons; if it passed when it
    leaves out no one, whether it is withheld would tell which. So the run's groups carry their
    cohort's definition, as a query's cells carry theirs: the shipped study again passes (the same
    question), and the same persons in every group and row under another cohort's definition (as a
    narrower eligibility that leaves out no one gives) are withheld, with the message a cohort of
    one client fewer gets, and nothing recorded."""
    workspace, governance, analyst = analyst_in_copy(cli_demo[0], tmp_path)
    study = study_with(tmp_path, (18, 64))
    assert run_study(workspace.pool_dir, governance, analyst, study).records
    recorded = len(governance.outputs.list(analyst, DEMO_PERMIT))
    monkeypatch.setattr("safepool.study.run.cohort_definition", lambda study: cohort_definition(
        study_with(tmp_path, (18, 63))))
    with pytest.raises(StudyWithheld) as empty:
        run_study(workspace.pool_dir, governance, analyst, study)
    assert len(governance.outputs.list(analyst, DEMO_PERMIT)) == recorded
    withheld = governance.audit.records(action="study")[-1]
    assert withheld.outcome == "withheld" and withheld.detail["withheld"][0]["measure"] == "persons"
    monkeypatch.undo()
    monkeypatch.setattr("safepool.study.run.study_groups", lambda described, matched, person: {
        name: persons[1:] if name == "clients" else persons
        for name, persons in study_groups(described, matched, person).items()})
    with pytest.raises(StudyWithheld) as fewer:  # the shipped cohort, one client fewer
        run_study(workspace.pool_dir, governance, analyst, study)
    assert str(fewer.value) == str(empty.value)


def test_a_cohorts_definition_is_what_chooses_its_persons(tmp_path):
    shipped = cohort_definition(study_with(tmp_path, (18, 64)))
    assert cohort_definition(study_with(tmp_path, (18, 64), ("horizons: [4, 8, 12]", "horizons: [0, 4]"),
                                        ("subgroup_horizon: 8", "subgroup_horizon: 0"))) == shipped
    assert cohort_definition(study_with(tmp_path, (18, 63))) != shipped
    assert cohort_definition(study_with(tmp_path, (18, 64), ("start: 2019Q1", "start: 2018Q3"))) != shipped
    assert cohort_definition(study_with(tmp_path, (18, 64), ("refine: true ", "refine: false"))) == shipped
