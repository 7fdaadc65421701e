"""Conformance of every registered output kind: bad input never passes, every rule decides at its
threshold, files hold only checked and shown cells, and what the register keeps checks again.

Parametrised over the registry: a new kind (one module in safepool/disclosure/kinds/) is run here
through the samples it provides, with no test of its own needed to be held to the same standard.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re

import pandas as pd
import pytest

from governed import sign_in
from recorded_outputs import governed_outputs, use_policy
from safepool.disclosure import DisclosureInputError, DisclosureRules, kind_of, registered
from safepool.disclosure.cells import STATUS, is_contributor_column, shown_mask
from safepool.disclosure.kinds import Mitigated

KINDS = {kind.name: kind for kind in registered()}
STRICT = DisclosureRules(min_frequency=10, dominance_n=3, dominance_k=0.8, p_ratio=0.2, min_residual_df=30,
                         zeros="suppress", rounding_base=10, decimals=2)
POLICIES = {"defaults": DisclosureRules(), "strict": STRICT}
OFFSETS = (-1, 0, 1)


def test_every_kind_of_the_design_is_registered():
    assert {"frequency", "magnitude", "quantile", "extreme", "model", "effect", "figure", "document"} <= set(KINDS)
    for kind in KINDS.values():
        assert kind_of(kind.samples().passing(DisclosureRules().model_copy(update=dict(kind.samples().policy)))) \
            is kind


@pytest.mark.parametrize("thing", [None, 42, "table.csv", pd.DataFrame({"count": [1]}), {"title": "t"}])
def test_something_that_is_no_output_has_no_kind(thing):
    with pytest.raises(DisclosureInputError, match="not a statistical output"):
        kind_of(thing)


def bad_cases():
    return [(name, case) for name, kind in KINDS.items() for case in kind.samples().bad]


@pytest.mark.parametrize("kind_name, case", bad_cases())
def test_bad_input_gets_an_invalid_finding_never_a_pass(kind_name, case):
    kind = KINDS[kind_name]
    output = kind.samples().bad[case]()
    report = kind.check(output, DisclosureRules())
    assert report.verdict == "fail" and any(f.rule == "invalid" and f.verdict == "fail" for f in report.findings)
    json.dumps(report.to_record())
    with pytest.raises(DisclosureInputError):
        kind.mitigate(output, DisclosureRules(), margins=False, rounding=False) if kind_name != "document" \
            else kind.suppress(output, DisclosureRules())


@pytest.mark.parametrize("kind_name", list(KINDS))
def test_bad_input_covers_the_basic_cases(kind_name):
    assert {"empty", "text in numbers", "NaN", "inf", "missing column"} <= set(KINDS[kind_name].samples().bad)


def boundary_cases():
    return [(name, index, policy, offset) for name, kind in KINDS.items()
            for index, _ in enumerate(kind.samples().boundaries) for policy in POLICIES for offset in OFFSETS]


@pytest.mark.parametrize("kind_name, index, policy_name, offset", boundary_cases())
def test_each_rule_at_one_below_and_one_above_its_threshold(kind_name, index, policy_name, offset):
    kind = KINDS[kind_name]
    boundary = kind.samples().boundaries[index]
    policy = POLICIES[policy_name].model_copy(update=dict(boundary.policy))
    report = kind.check(boundary.make(policy, offset), policy)
    fails = offset < 0 if boundary.fails == "below" else offset > 0
    deciding = [f.verdict for f in report.findings if f.rule == boundary.rule]
    assert deciding and ("fail" in deciding) == fails, report.to_record()
    assert (report.verdict == "fail") == fails, report.to_record()


def secret_mitigated(kind_name: str, policy_name: str):
    """The kind, the policy, its secret sample mitigated, and the texts that must never be written."""
    kind = KINDS[kind_name]
    policy = POLICIES[policy_name].model_copy(update=dict(kind.samples().policy))
    output, secrets = kind.samples().secret(policy)
    mitigated = kind.mitigate(output, policy, margins=True, rounding=False)
    assert isinstance(mitigated, Mitigated) and mitigated.report.verdict != "fail"
    return kind, policy, mitigated, secrets


@pytest.mark.parametrize("policy_name", list(POLICIES))
@pytest.mark.parametrize("kind_name", list(KINDS))
def test_files_hold_only_checked_and_shown_cells(kind_name, policy_name):
    kind, policy, mitigated, secrets = secret_mitigated(kind_name, policy_name)
    files = kind.files(mitigated.output, "out", policy)
    assert files and all(re.fullmatch(r"out\.[a-z.]+", name) for name in files)
    for name, content in files.items():
        text = content.decode("utf-8") if not name.endswith(".pdf") else ""
        for secret in secrets:
            assert secret not in text, (name, secret)
        if name.endswith(".csv"):
            assert_shown_cells_only(kind, mitigated.output, pd.read_csv(io.BytesIO(content), dtype=str), policy)
        if name.endswith(".json"):
            spec = json.loads(content)
            assert set(spec["data"]) == {"values"} and "datasets" not in spec


def assert_shown_cells_only(kind, output, table: pd.DataFrame, policy: DisclosureRules) -> None:
    """No contributor column, blanks beyond the labels of suppressed rows, whole counts, the policy's decimals."""
    assert not [c for c in table.columns if is_contributor_column(c)]
    labels = set(kind.labels(output) or []) | kind.fixed_labels(output)
    numbers = [c for c in table.columns if c not in labels and c != STATUS]
    hidden = ~shown_mask(table.fillna(""))
    assert table.loc[hidden, numbers].isna().all().all()
    for column in numbers:
        for text in table[column].dropna():
            if column in kind.count_columns(output):
                assert re.fullmatch(r"-?\d+", text), (column, text)
            decimals = re.fullmatch(r"-?\d+\.(\d+)", text)
            assert decimals is None or len(decimals.group(1)) <= policy.decimals, (column, text)


@pytest.mark.parametrize("policy_name", list(POLICIES))
@pytest.mark.parametrize("kind_name", list(KINDS))
def test_what_the_register_keeps_checks_again_the_same_way(kind_name, policy_name):
    kind, policy, mitigated, secrets = secret_mitigated(kind_name, policy_name)
    kept = json.loads(json.dumps(kind.keep(mitigated.output, policy)))
    assert not [s for s in secrets if s in json.dumps(kept)]
    again = kind.recheck(kept, policy, policy)
    assert again.verdict != "fail" and again.kind == kind.name
    passing = kind.mitigate(kind.samples().passing(policy), policy, margins=True, rounding=False).output
    kept = json.loads(json.dumps(kind.keep(passing, policy)))
    assert kind.recheck(kept, policy, policy).verdict == kind.check(passing, policy).verdict != "fail"
    stricter = policy.model_copy(update={"min_frequency": 10_000})
    assert kind.recheck(kept, policy, stricter).verdict == "fail"  # every sample has persons to count


@pytest.mark.parametrize("kind_name", list(KINDS))
def test_rounding_rounds_every_shown_count_to_the_base(kind_name):
    kind = KINDS[kind_name]
    samples = kind.samples()
    policy = DisclosureRules(rounding_base=10).model_copy(update=dict(samples.policy))
    mitigated = kind.mitigate(samples.passing(policy), policy, margins=False, rounding=True)
    output = mitigated.output
    assert mitigated.report.verdict != "fail"
    if not kind.has_counts(output):
        assert kind.rounded_to(output) is None
        return
    assert kind.rounded_to(output) == 10
    shown = kind.shown_table(output, policy) if kind_name != "document" else None
    for column in kind.count_columns(output) if shown is not None else []:
        values = shown.loc[shown_mask(shown), column].dropna()
        assert (values.astype(int) % 10 == 0).all(), column
    always = policy.model_copy(update={"round_counts": True})
    assert kind.check(samples.passing(always), always).verdict == "fail"  # exact counts under a rounding policy
    assert kind.check(output, always).verdict != "fail"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return governed_outputs(tmp_path_factory.mktemp("kinds"))


@pytest.mark.parametrize("kind_name", list(KINDS))
def test_every_kind_is_published_and_recorded_through_one_call(workspace, kind_name):
    kind = KINDS[kind_name]
    samples = kind.samples()
    before = workspace.outputs.policy()
    policy = use_policy(workspace, **samples.policy)  # e.g. extremes allowed: by the admin, audited
    output, secrets = samples.secret(policy)
    try:
        mitigated, record = workspace.outputs.publish(sign_in(workspace, "anna"), "P-1", output, "analysis",
                                                      f"{kind_name}-out")
    finally:
        use_policy(workspace, **{setting: getattr(before, setting) for setting in samples.policy})
    assert record.kind == kind_name and record.verdict == mitigated.report.verdict != "fail"
    folder = workspace.outputs.folder(record)
    assert sorted(p.name for p in folder.iterdir()) == sorted(record.files) and record.files
    for path in folder.iterdir():
        data = path.read_bytes()
        assert not [s for s in secrets if s.encode() in data], path.name
    with workspace.outputs.engine.connect() as con:
        row = con.exec_driver_sql("SELECT checks_json, public_cells_json FROM outputs WHERE id = ?",
                                  (record.id,)).one()
    assert not [s for s in secrets if s in row.checks_json + row.public_cells_json]


@pytest.mark.parametrize("policy_name", list(POLICIES))
@pytest.mark.parametrize("kind_name", ["magnitude", "quantile"])
def test_persons_not_shown_are_checked_kept_and_never_written(kind_name, policy_name):
    """A table that does not show its persons (a query's mean, sum or quantile: its answer shows the
    value only, all the differencing ledger knows) checks them, keeps them for checking again, and
    writes, counts, rounds and compares for the release none of them."""
    kind, policy, _, secrets = secret_mitigated(kind_name, policy_name)
    output, _ = kind.samples().secret(policy)
    quiet = dataclasses.replace(output, persons_shown=False)
    mitigated = kind.mitigate(quiet, policy, margins=True, rounding=False)
    shown = kind.mitigate(output, policy, margins=True, rounding=False)
    assert (mitigated.output.cells[STATUS] == shown.output.cells[STATUS]).all()  # checked the same way
    assert "n" not in kind.public_table(mitigated.output).columns
    table = pd.read_csv(io.BytesIO(kind.files(mitigated.output, "out", policy)["out.csv"]), dtype=str)
    assert "n" not in table.columns and not kind.count_columns(mitigated.output)
    assert not kind.differencing_cells(mitigated.output) and not kind.has_counts(mitigated.output)
    kept = json.loads(json.dumps(kind.keep(mitigated.output, policy)))
    assert not [s for s in secrets if s in json.dumps(kept)]
    hidden = ~shown_mask(mitigated.output.cells)
    assert all(n is None for n, gone in zip(kept["unshown"]["n"], hidden) if gone)  # only shown cells' persons
    assert kind.recheck(kept, policy, policy).verdict != "fail"
    stricter = kind.recheck(kept, policy, policy.model_copy(update={"min_frequency": 10_000}))
    assert {f.rule for f in stricter.findings if f.verdict == "fail"} == {"min_frequency"}
    assert "n" not in kind.public_table(kind.restore(kept)).columns


@pytest.mark.parametrize("policy_name", sorted(POLICIES))
def test_a_hidden_part_of_a_total_shown_elsewhere_hides_more_until_its_persons_are_many(policy_name):
    """A study's subgroups split the matched clients of its effect at that horizon: a level hidden for
    its few persons was the effect's mean times its count less the levels shown. Each split of a
    total hides more rows, the fewest persons first, until the hidden ones hold the minimum
    frequency in each arm; a split with nothing hidden, and a table without parts, hide no more."""
    from safepool.disclosure import EffectTable

    policy, k = POLICIES[policy_name], POLICIES[policy_name].min_frequency
    cells = pd.DataFrame({
        "subgroup": ["sex", "sex", "grounds", "grounds", "grounds", "grounds", "age", "age"],
        "level": ["female", "male", "family", "work", "other", "studies", "young", "old"],
        "estimate": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
        "mean_treated": [0.31, 0.42, 0.53, 0.64, 0.75, 0.86, 0.97, 0.18],
        "n_treated": [70, 54, 62, k + 1, k - 2, 1, 60, 64],
        "n_control": [60, 50, 59, k + 30, k + 2, 3, 55, k - 2]})
    parts = EffectTable("Effects by subgroup", cells, ["subgroup", "level"], parts=["level"])
    hidden = KINDS["effect"].suppress(parts, policy).output.public_table()
    shown = dict(zip(hidden["level"], shown_mask(hidden)))
    assert shown == {"female": True, "male": True, "family": True, "work": False, "other": False,
                     "studies": False, "young": False, "old": False}
    assert (cells.loc[~cells["level"].map(shown), ["n_treated", "n_control"]]
            .groupby(cells["subgroup"]).sum() >= k).all().all()
    alone = EffectTable("Effects by subgroup", cells, ["subgroup", "level"])
    only_failing = KINDS["effect"].suppress(alone, policy).output.public_table()
    assert list(shown_mask(only_failing)) == [True, True, True, True, False, False, True, False]
    with pytest.raises(DisclosureInputError, match="parts must name group columns"):
        KINDS["effect"].suppress(EffectTable("e", cells, ["subgroup", "level"], parts=["estimate"]), policy)


@pytest.mark.parametrize("policy_name", sorted(POLICIES))
def test_a_part_hidden_for_one_large_contributor_hides_another_so_the_two_pass_together(policy_name):
    """The demo's subgroup "C1" had 9 clients but one dominated its mean, and the effect less the
    levels shown was that mean. The rows hidden together must pass what a row must, contributors
    merged: the next smallest level is hidden with it, and the larger one stays shown."""
    from safepool.disclosure import EffectTable

    policy = POLICIES[policy_name]
    n = policy.min_frequency + 4
    cells = pd.DataFrame({"subgroup": "language level", "level": ["A1", "B1", "C1"],
                          "estimate": [0.1, 0.2, 0.3], "mean_treated": [0.4, 0.5, 0.6],
                          "top:mean_treated": [[10.0, 10.0, 10.0], [20.0, 20.0, 20.0], [900.0, 10.0, 5.0]],
                          "abs_total:mean_treated": [4000.0, 3000.0, 950.0],
                          "n_treated": [40, 30, n], "n_control": [38, 30, n]})
    table = EffectTable("Effects by subgroup", cells, ["subgroup", "level"], parts=["level"])
    mitigated = KINDS["effect"].suppress(table, policy).output.public_table()
    assert list(shown_mask(mitigated)) == [True, False, False]
    assert "dominance" in mitigated["status"].iloc[2] and "secondary" in mitigated["status"].iloc[1]


@pytest.mark.parametrize("kind_name", sorted(KINDS))
def test_what_a_run_hands_its_shell_holds_no_contributor_and_no_unshown_column(kind_name):
    """A study run handed back its outputs as checked, contributors and all: the largest of them are
    single persons' values, read by an analyst in a notebook. `Mitigated.shown` is what a run hands
    back: every kind's output with its public table for cells (a figure's table, a document's parts)."""
    kind, policy = KINDS[kind_name], DisclosureRules()
    sample = kind.samples().passing(policy.model_copy(update=dict(kind.samples().policy)))
    shown = Mitigated(sample, "none", "", kind.check(sample, policy), policy).shown().output
    outputs = list(shown.parts.values()) if kind_name == "document" else [shown]
    for output in outputs:
        inner = kind_of(output)
        cells = inner.cells_of(output)
        assert not [c for c in cells.columns if is_contributor_column(c)]
        assert not set(inner.unshown_columns(output)) & set(cells.columns)
        pd.testing.assert_frame_equal(cells, inner.public_table(output))
