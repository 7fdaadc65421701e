"""Outputs are checked again under the workspace's current policy when their release is asked for,
when a checker approves them and when they are released; what cannot be checked again from what
the register keeps is refused with a message to record it again. A "review" verdict needs a
checker's comment. One rounding policy per release."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from governed import sign_in
from recorded_outputs import CONTEXT, by_area, governed_outputs, record, use_policy
from safepool.disclosure import EffectTable, MagnitudeTable, QuantileTable
from safepool.disclosure.register import OutputStatus
from safepool.governance.users import Refused

SEVEN = {"north": 40, "south": 7}


@pytest.fixture
def governance(tmp_path):
    return governed_outputs(tmp_path)


def ask(governance, output_id, author="anna"):
    governance.outputs.request_release(sign_in(governance, author), [output_id], CONTEXT)


def approve(governance, output_id, comment=""):
    return governance.outputs.review(sign_in(governance, "cecilia"), output_id, "approve", comment)


def earnings(n: int = 40) -> MagnitudeTable:
    cells = pd.DataFrame({"area": ["north", "south"], "value": [5000.0, 6000.0], "n": [n, 50],
                          "top": [[100.0, 90.0], [120.0, 110.0]], "abs_total": [5000.0, 6000.0]})
    return MagnitudeTable("Earnings by area", cells, ["area"], "sum")


def test_a_count_that_fails_a_raised_threshold_is_refused_at_the_request(governance):
    output = record(governance, "anna", "P-1", by_area(SEVEN))
    use_policy(governance, min_frequency=10)
    with pytest.raises(Refused, match="fails the disclosure checks under the workspace's current policy "
                                      r"\(failed rules: min_frequency\); mitigate it and record it again"):
        ask(governance, output.id)
    assert governance.outputs.show(sign_in(governance, "anna"), output.id).status == OutputStatus.checked
    assert governance.audit.records(outcome="refused")[-1].target == output.id


def test_approval_is_refused_when_the_output_now_fails(governance):
    output = record(governance, "anna", "P-1", by_area(SEVEN))
    ask(governance, output.id)
    use_policy(governance, min_frequency=10)
    with pytest.raises(Refused, match="output_review refused: output P-1-0001 fails the disclosure checks"):
        approve(governance, output.id, "fine")
    returned = governance.outputs.review(sign_in(governance, "cecilia"), output.id, "return", "The policy changed.")
    assert returned.status == OutputStatus.returned


def test_release_is_refused_when_the_output_now_fails(governance):
    output = record(governance, "anna", "P-1", by_area(SEVEN))
    ask(governance, output.id)
    approve(governance, output.id)
    use_policy(governance, min_frequency=8)
    with pytest.raises(Refused, match="output_release refused: output P-1-0001 fails"):
        governance.outputs.release(sign_in(governance, "cecilia"), [output.id])
    use_policy(governance, min_frequency=7)  # at the threshold again: re-checked and released
    assert governance.outputs.release(sign_in(governance, "cecilia"), [output.id]).is_dir()


def test_a_looser_policy_lets_an_output_through_after_its_recheck(governance):
    output = record(governance, "anna", "P-1", by_area(SEVEN))
    use_policy(governance, min_frequency=3, zeros="suppress")
    ask(governance, output.id)
    assert approve(governance, output.id).status == OutputStatus.approved
    assert governance.audit.records(action="output_review")[-1].detail["recheck"] == "pass"


def test_a_rule_on_contributors_that_are_not_kept_cannot_be_run_again(governance):
    output = governance.outputs.record(sign_in(governance, "anna"), "P-1", earnings(), "query", "earnings")
    with governance.outputs.engine.connect() as con:
        kept = con.exec_driver_sql("SELECT public_cells_json FROM outputs").one()[0]
    assert "top" not in json.loads(kept)["kept"]["columns"] and "90.0" not in kept and "110.0" not in kept
    use_policy(governance, min_frequency=6)  # read from the kept persons per cell: re-checked
    ask(governance, output.id)
    use_policy(governance, dominance_k=0.8)  # read from the contributors, which are not kept
    with pytest.raises(Refused, match="cannot be checked again under the workspace's current disclosure policy: "
                                      "the policy's dominance_k changed since it was checked.*record it again"):
        approve(governance, output.id, "looks fine")


def test_fewer_decimals_than_the_files_hold_cannot_be_rechecked(governance):
    output = governance.outputs.record(sign_in(governance, "anna"), "P-1", earnings(), "query", "earnings")
    use_policy(governance, decimals=1)
    with pytest.raises(Refused, match="decimals changed.*record it again"):
        ask(governance, output.id)


def test_an_output_recorded_before_rechecks_is_refused_once_the_policy_changed(governance):
    output = record(governance, "anna", "P-1", by_area(SEVEN))
    legacy = {"groups": ["area"], "rows": [[["north"], 40], [["south"], 7]]}  # what the register kept before
    with governance.outputs.engine.begin() as con:
        con.exec_driver_sql("UPDATE outputs SET public_cells_json = ?", (json.dumps(legacy),))
    ask(governance, output.id)  # the policy it was checked under: its checks stand
    use_policy(governance, zeros="suppress")
    with pytest.raises(Refused, match=r"checked under an earlier disclosure policy \(zeros changed since\) and the "
                                      "register keeps nothing to check it again from; record it again"):
        approve(governance, output.id)


def test_a_review_verdict_can_be_asked_for_and_needs_a_checkers_comment(governance):
    medians = QuantileTable("Median earnings by area", pd.DataFrame(
        {"area": ["north", "south"], "quantile": [0.5, 0.5], "value": [2500.0, 2700.0], "n": [40, 50]}), ["area"])
    output = governance.outputs.record(sign_in(governance, "anna"), "P-1", medians, "analysis", "medians")
    assert (output.verdict, output.status) == ("review", OutputStatus.checked)
    assert [f["rule"] for f in output.checks["findings"] if f["verdict"] == "review"] == ["dominance"]
    ask(governance, output.id)
    with pytest.raises(Refused, match="an output whose checks ask for a person's review \\(verdict review\\) needs "
                                      "a comment"):
        approve(governance, output.id)
    approved = approve(governance, output.id, "Windows of 40 and 50 earners; no outlier in the groups.")
    assert approved.status == OutputStatus.approved
    folder = governance.outputs.release(sign_in(governance, "cecilia"), [output.id])
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    assert manifest["outputs"][0]["checks"]["verdict"] == "review"


def test_one_rounding_policy_per_release(governance):
    anna, cecilia = sign_in(governance, "anna"), sign_in(governance, "cecilia")
    _, rounded = governance.outputs.publish(anna, "P-1", by_area({"north": 41, "south": 33}), "analysis", "rounded",
                                            rounding=True)
    assert rounded.counts_rounded_to == 5
    assert (governance.outputs.folder(rounded) / "rounded.csv").read_text().splitlines()[1:] == [
        "north,40,rounded to base 5", "south,35,rounded to base 5", "Total,75,rounded to base 5"]
    exact = record(governance, "anna", "P-1", by_area({"east": 40, "west": 33}, "Persons by quarter"))
    assert exact.counts_rounded_to is None
    ids = [rounded.id, exact.id]
    governance.outputs.request_release(anna, ids, CONTEXT)
    for output_id in ids:
        approve(governance, output_id, "Checked; totals differ by design.")
    with pytest.raises(Refused, match="one rounding policy per release: a count rounded in one output would be shown "
                                      "exact in another"):
        governance.outputs.release(cecilia, ids)
    assert governance.outputs.release(cecilia, [rounded.id]).is_dir()
    assert governance.outputs.release(cecilia, [exact.id]).is_dir()


def test_a_policy_that_rounds_counts_rounds_every_published_count_and_fails_exact_ones(governance):
    use_policy(governance, round_counts=True, rounding_base=10)
    mitigated, published = governance.outputs.publish(sign_in(governance, "anna"), "P-1", earnings(n=44),
                                                      "analysis", "earnings")
    assert published.counts_rounded_to == 10 and mitigated.output.cells["n"].tolist()[:2] == [40, 50]
    exact = record(governance, "anna", "P-1", by_area({"north": 40, "south": 33}))
    assert exact.verdict == "fail" and "rounding" in {f["rule"] for f in exact.checks["findings"]
                                                      if f["verdict"] == "fail"}


def test_a_failing_table_that_is_rounded_rounds_every_count_of_its_release(governance):
    flow = by_area({"eligible": 1322, "entered": 243, "removed: moved away": 3}, "Cohort flow")
    effects = EffectTable("Effects", pd.DataFrame({"horizon": [4, 8], "estimate": [0.0512, 0.0734],
                                                   "n_treated": [241, 238], "n_control": [1201, 1187],
                                                   "n_clusters": [241, 238]}), ["horizon"])
    published = governance.outputs.publish_all(sign_in(governance, "anna"), "P-1", {"flow": flow, "effects": effects},
                                               "study", round_if_failing={"flow"})
    (flow_out, flow_record), (effect_out, effect_record) = published["flow"], published["effects"]
    assert flow_out.output.cells["count"].tolist() == [1320, 245, 5]  # rounded, not suppressed
    assert effect_out.output.cells[["n_treated", "n_control", "n_clusters"]].values.tolist() == [
        [240, 1200, 240], [240, 1185, 240]]
    assert flow_record.counts_rounded_to == effect_record.counts_rounded_to == 5
    written = (governance.outputs.folder(effect_record) / "effects.csv").read_text().splitlines()
    assert written == ["horizon,estimate,n_treated,n_control,n_clusters,status",
                       "4,0.051,240,1200,240,rounded to base 5", "8,0.073,240,1185,240,rounded to base 5"]
    passing = governance.outputs.publish_all(sign_in(governance, "anna"), "P-1", {"effects": effects}, "study",
                                             round_if_failing={"flow"})
    assert passing["effects"][1].counts_rounded_to is None  # nothing failed, nothing rounded


def test_subgroups_check_each_arm_and_the_dominance_of_the_means_they_show(governance):
    cells = pd.DataFrame({"subgroup": ["sex", "sex", "language"], "level": ["women", "men", "somali"],
                          "estimate": [0.1, 0.2, 0.3], "mean_treated": [0.4, 0.5, 0.6], "mean_control": [0.3, 0.3, 0.3],
                          "top:mean_treated": [[1.0, 1.0], [50.0, 45.0], [1.0, 1.0]],
                          "abs_total:mean_treated": [40.0, 100.0, 40.0],
                          "top:mean_control": [[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]],
                          "abs_total:mean_control": [40.0, 40.0, 40.0],
                          "n_treated": [40, 40, 40], "n_control": [40, 40, 4]})
    mitigated, published = governance.outputs.publish(sign_in(governance, "anna"), "P-1", EffectTable(
        "Subgroups", cells, ["subgroup", "level"]), "study", "subgroups", margins=False)
    assert mitigated.output.cells["status"].tolist() == [
        "shown", "suppressed (primary: dominance)", "suppressed (primary: min_frequency)"]
    written = (governance.outputs.folder(published) / "subgroups.csv").read_text()
    assert "top" not in written and "abs_total" not in written and "50.0" not in written
    assert written.splitlines()[2] == "sex,men,,,,,,suppressed (primary: dominance)"
