"""Recorded outputs, their review and release: every refusal audited, releases with checksums."""

import hashlib
import json
import math
import subprocess

import pytest

from governed import sign_in
from recorded_outputs import CONTEXT, by_area, csv_of, governed_outputs, record
from safepool.disclosure.output_files import OutputFileError
from safepool.disclosure.outputs import DisclosureInputError
from safepool.disclosure.register import OutputError, OutputStatus
from safepool.governance.users import Refused

PASSING = {"north": 40, "south": 33}
FAILING = {"north": 40, "south": 3}


@pytest.fixture
def governance(tmp_path):
    return governed_outputs(tmp_path)


def numbers_in(value):
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers_in(v)]
    if isinstance(value, list):
        return [n for v in value for n in numbers_in(v)]
    return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


def last_refusal(governance):
    return governance.audit.records(outcome="refused")[-1]


def approved_output(governance, counts=PASSING, permit="P-1", title="Persons by area"):
    output = record(governance, "anna", permit, by_area(counts, title))
    governance.outputs.request_release(sign_in(governance, "anna"), [output.id], CONTEXT)
    return governance.outputs.review(sign_in(governance, "cecilia"), output.id, "approve", "")


def test_record_request_review_release_with_checksums_and_manifest(governance, tmp_path):
    anna, cecilia = sign_in(governance, "anna"), sign_in(governance, "cecilia")
    output = record(governance, "anna", "P-1", by_area(PASSING))
    assert (output.id, output.status, output.verdict, output.source, output.author) == (
        "P-1-0001", OutputStatus.checked, "pass", "query", "anna")
    stored = tmp_path / "outputs" / "P-1" / "P-1-0001" / "table.csv"
    assert stored.read_bytes() == csv_of(by_area(PASSING))["table.csv"] and output.files == ["table.csv"]
    governance.outputs.request_release(anna, [output.id], CONTEXT)
    assert governance.outputs.show(cecilia, output.id).context == CONTEXT
    approved = governance.outputs.review(cecilia, output.id, "approve", "fine")
    assert approved.status == OutputStatus.approved and approved.reviews[0].reviewer == "cecilia"
    assert not (tmp_path / "release").exists()  # nothing but a release writes there

    folder = governance.outputs.release(cecilia, [output.id])
    assert folder == tmp_path / "release" / "P-1" / "P-1-R001"
    sums = dict(reversed(line.split("  ")) for line in (folder / "SHA256SUMS").read_text().splitlines())
    assert set(sums) == {"P-1-0001/table.csv", "MANIFEST.json"}
    for path, digest in sums.items():
        assert hashlib.sha256((folder / path).read_bytes()).hexdigest() == digest
    assert subprocess.run(["sha256sum", "--check", "--quiet", "SHA256SUMS"], cwd=folder).returncode == 0
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    entry = manifest["outputs"][0]
    assert (manifest["release"], manifest["permit"], manifest["released_by"]) == ("P-1-R001", "P-1", "cecilia")
    assert (entry["id"], entry["title"], entry["checks"]["verdict"]) == ("P-1-0001", "Persons by area", "pass")
    assert entry["checks"]["rules"][0] == {"rule": "min_frequency", "verdict": "pass", "cells_affected": 0}
    assert [r["reviewer"] for r in entry["reviews"]] == ["cecilia"] and entry["reviews"][0]["at"]
    assert entry["files"] == [{"path": "P-1-0001/table.csv", "sha256": sums["P-1-0001/table.csv"],
                               "bytes": stored.stat().st_size}]

    released = governance.outputs.show(cecilia, output.id)
    assert released.status == OutputStatus.released and released.release_id == "P-1-R001"
    assert [c.status for c in released.history] == ["checked", "release_requested", "approved", "released"]
    actions = [r.action for r in governance.audit.records(permit="P-1") if r.action.startswith("output")]
    assert actions == ["output_record", "output_request", "output_review", "output_release"]
    release_record = governance.audit.records(action="output_release")[-1]
    assert release_record.result_hash == sums["MANIFEST.json"] and release_record.target == "P-1-R001"
    assert governance.audit.verify().ok


def test_a_failed_output_keeps_only_labels_and_cannot_be_requested(governance):
    failed = record(governance, "anna", "P-1", by_area(FAILING))
    assert failed.status == OutputStatus.failed and failed.verdict == "fail"
    finding = next(f for f in failed.checks["findings"] if f["rule"] == "min_frequency")
    assert finding["verdict"] == "fail" and finding["cells"] == [{"area": "south"}]
    with governance.outputs.engine.connect() as con:
        row = con.exec_driver_sql("SELECT checks_json, public_cells_json FROM outputs WHERE id = ?",
                                  (failed.id,)).one()
    assert row.public_cells_json is None and FAILING["south"] not in numbers_in(json.loads(row.checks_json))
    assert all(set(cell) <= {"area"} for f in json.loads(row.checks_json)["findings"] for cell in f["cells"])
    with pytest.raises(Refused, match="failed its disclosure checks"):
        governance.outputs.request_release(sign_in(governance, "anna"), [failed.id], CONTEXT)
    assert last_refusal(governance).target == failed.id
    assert governance.outputs.show(sign_in(governance, "anna"), failed.id).status == OutputStatus.failed


def test_only_an_analyst_of_the_permit_records(governance):
    for user, reason in (("aaro", "user aaro is not named in permit P-1"), ("cecilia", "user cecilia is not a analyst"),
                         ("stella", "user stella is not a analyst")):
        with pytest.raises(Refused, match=reason):
            record(governance, user, "P-1", by_area(PASSING))
    with pytest.raises(OutputError, match="source 'notes' must be one of study, query, analysis"):
        governance.outputs.record(sign_in(governance, "anna"), "P-1", by_area(PASSING), "notes", "table")


@pytest.mark.parametrize("name", ["", "../escape", "sub/t", ".hidden", "a" * 101, 7])
def test_output_names_are_plain_names_inside_the_output_folder(governance, name, tmp_path):
    with pytest.raises(OutputFileError, match="output name .* must be a plain name"):
        governance.outputs.record(sign_in(governance, "anna"), "P-1", by_area(PASSING), "study", name)
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "escape.csv").exists()


def test_only_the_author_requests_release_and_only_with_context(governance):
    output = record(governance, "anton", "P-1", by_area(PASSING))
    with pytest.raises(Refused, match="only its author anton may ask for the release of P-1-0001"):
        governance.outputs.request_release(sign_in(governance, "anna"), [output.id], CONTEXT)
    with pytest.raises(Refused, match="needs context for the checker"):
        governance.outputs.request_release(sign_in(governance, "anton"), [output.id], "  table  ")
    with pytest.raises(Refused, match="user cecilia is not a analyst"):
        governance.outputs.request_release(sign_in(governance, "cecilia"), [output.id], CONTEXT)
    assert governance.outputs.show(sign_in(governance, "anton"), output.id).status == OutputStatus.checked
    governance.outputs.request_release(sign_in(governance, "anton"), [output.id], CONTEXT)
    with pytest.raises(Refused, match="is release_requested and cannot be asked for"):
        governance.outputs.request_release(sign_in(governance, "anton"), [output.id], CONTEXT)


def test_only_a_checker_reviews_and_never_the_author(governance):
    output = record(governance, "anton", "P-1", by_area(PASSING))
    with pytest.raises(Refused, match="P-1-0001 is checked, not awaiting review"):
        governance.outputs.review(sign_in(governance, "cecilia"), output.id, "approve", "")
    governance.outputs.request_release(sign_in(governance, "anton"), [output.id], CONTEXT)
    with pytest.raises(Refused, match="user anna is not a checker"):
        governance.outputs.review(sign_in(governance, "anna"), output.id, "approve", "")
    with pytest.raises(Refused, match="user anton is the author of P-1-0001 and may not review it"):
        governance.outputs.review(sign_in(governance, "anton"), output.id, "approve", "")
    with pytest.raises(Refused, match="a decision to reject needs a comment"):
        governance.outputs.review(sign_in(governance, "cecilia"), output.id, "reject", " ")
    with pytest.raises(OutputError, match="decision 'maybe'"):
        governance.outputs.review(sign_in(governance, "cecilia"), output.id, "maybe", "hm")
    assert governance.outputs.show(sign_in(governance, "anton"), output.id).reviews == []
    assert last_refusal(governance).action == "output_review"


def test_returned_outputs_are_revised_and_asked_for_again_and_rejected_ones_never(governance):
    anna, cecilia = sign_in(governance, "anna"), sign_in(governance, "cecilia")
    output = record(governance, "anna", "P-1", by_area(PASSING))
    governance.outputs.request_release(anna, [output.id], CONTEXT)
    returned = governance.outputs.review(cecilia, output.id, "return", "Label the areas in words, please.")
    assert returned.status == OutputStatus.returned and returned.reviews[0].comment.startswith("Label")
    revised = governance.outputs.revise(anna, output.id, by_area(PASSING, "Persons by home area"))
    assert revised.status == OutputStatus.checked and revised.title == "Persons by home area"
    assert revised.files == ["table.csv"]
    governance.outputs.request_release(anna, [output.id], CONTEXT)
    rejected = governance.outputs.review(cecilia, output.id, "reject", "Not within the permit's purpose.")
    assert rejected.status == OutputStatus.rejected and rejected.request_round == 2
    assert rejected.current_reviews()[0].decision == "reject"
    with pytest.raises(Refused, match="is rejected and cannot be asked for"):
        governance.outputs.request_release(anna, [output.id], CONTEXT)
    with pytest.raises(Refused, match="only a checked, failed or returned output can be revised"):
        governance.outputs.revise(anna, output.id, by_area(PASSING))


def test_a_permit_can_require_two_different_checkers(governance):
    output = record(governance, "anna", "P-2", by_area(PASSING))
    governance.outputs.request_release(sign_in(governance, "anna"), [output.id], CONTEXT)
    once = governance.outputs.review(sign_in(governance, "cecilia"), output.id, "approve", "")
    assert once.status == OutputStatus.release_requested
    with pytest.raises(Refused, match="cecilia has reviewed P-2-0001 already"):
        governance.outputs.review(sign_in(governance, "cecilia"), output.id, "approve", "")
    with pytest.raises(Refused, match="P-2-0001 is release_requested; only approved outputs are released"):
        governance.outputs.release(sign_in(governance, "cecilia"), [output.id])
    twice = governance.outputs.review(sign_in(governance, "cedric"), output.id, "approve", "")
    assert twice.status == OutputStatus.approved
    assert {r.reviewer for r in twice.current_reviews()} == {"cecilia", "cedric"}
    folder = governance.outputs.release(sign_in(governance, "cedric"), [output.id])
    reviewers = json.loads((folder / "MANIFEST.json").read_text())["outputs"][0]["reviews"]
    assert [r["reviewer"] for r in reviewers] == ["cecilia", "cedric"]


def test_release_refusals(governance, tmp_path):
    output = approved_output(governance)
    other_permit = approved_output(governance, permit="P-2")  # one approval of two: still requested
    with pytest.raises(Refused, match="user anna is not a checker"):
        governance.outputs.release(sign_in(governance, "anna"), [output.id])
    with pytest.raises(Refused, match="a release holds the outputs of one permit, not of P-1, P-2"):
        governance.outputs.release(sign_in(governance, "cecilia"), [output.id, other_permit.id])
    (tmp_path / "outputs" / "P-1" / output.id / "table.csv").write_text("area,count\nsouth,3\n")
    with pytest.raises(Refused, match="file table.csv changed after it was checked"):
        governance.outputs.release(sign_in(governance, "cecilia"), [output.id])
    assert not (tmp_path / "release").exists()
    own = record(governance, "anton", "P-1", by_area(PASSING, "Another"))
    governance.outputs.request_release(sign_in(governance, "anton"), [own.id], CONTEXT)
    governance.outputs.review(sign_in(governance, "cecilia"), own.id, "approve", "")
    with pytest.raises(Refused, match="user anton is the author of P-1-0002 and may not release it"):
        governance.outputs.release(sign_in(governance, "anton"), [own.id])
    assert [r.action for r in governance.audit.records(outcome="refused")][-4:] == ["output_release"] * 4


def test_who_may_list_and_show(governance):
    output = record(governance, "anna", "P-1", by_area(PASSING))
    record(governance, "anna", "P-2", by_area(FAILING))
    assert [o.id for o in governance.outputs.list(sign_in(governance, "cecilia"))] == ["P-1-0001", "P-2-0001"]
    failed = governance.outputs.list(sign_in(governance, "anna"), status=OutputStatus.failed)
    assert [o.id for o in failed] == ["P-2-0001"]
    assert governance.outputs.list(sign_in(governance, "aaro")) == []
    with pytest.raises(Refused, match="user aaro is not named in permit P-1"):
        governance.outputs.show(sign_in(governance, "aaro"), output.id)
    with pytest.raises(Refused, match="user stella is not a analyst"):
        governance.outputs.list(sign_in(governance, "stella"))
    with pytest.raises(OutputError, match="no output P-1-0099"):
        governance.outputs.show(sign_in(governance, "cecilia"), "P-1-0099")


@pytest.mark.parametrize("permit", ["P-1", "P-2"])
def test_differencing_with_a_released_table_is_flagged_to_the_checker(governance, permit):
    """Whether the released table is of the same permit or of another one: released tables are
    public, and a reader can set any two side by side."""
    cecilia = sign_in(governance, "cecilia")
    everyone = approved_output(governance, PASSING)
    governance.outputs.release(cecilia, [everyone.id])
    adults = record(governance, "anna", permit, by_area({"north": 40, "south": 30}, "Adults by area"))
    governance.outputs.request_release(sign_in(governance, "anna"), [adults.id], CONTEXT)
    requested = governance.outputs.show(cecilia, adults.id)
    assert [(f.output, f.other) for f in requested.differencing] == [(adults.id, everyone.id)]
    assert governance.audit.records(action="output_request")[-1].detail["differencing_flags"] == 1
    with pytest.raises(Refused, match="differencing flags needs a comment"):
        governance.outputs.review(cecilia, adults.id, "approve", "")
    returned = governance.outputs.review(cecilia, adults.id, "return", "Three persons differ from P-1-0001.")
    assert {"by": ["area"], "group": {"area": "south"}, "how": "difference"} in returned.reviews[-1].differencing[0].cells
    far = record(governance, "anna", permit, by_area({"north": 30, "south": 20}, "Employed by area"))
    governance.outputs.request_release(sign_in(governance, "anna"), [far.id], CONTEXT)
    assert governance.outputs.show(cecilia, far.id).differencing == []
    reviewed = governance.outputs.review(cecilia, far.id, "approve", "")  # no flag: no comment needed
    second_checker = permit == "P-2"  # P-2 asks two checkers to approve
    assert reviewed.status == (OutputStatus.release_requested if second_checker else OutputStatus.approved)


def test_a_mitigated_table_keeps_its_suppressed_cells_out_of_the_record(governance):
    table = by_area({"north": 40, "south": math.nan, "east": math.nan})
    table.cells["status"] = ["shown", "suppressed (primary: min_frequency)", "suppressed (secondary)"]
    output = record(governance, "anna", "P-1", table, mitigation_note="Small cells suppressed.")
    assert output.status == OutputStatus.checked and output.mitigation == "Small cells suppressed."
    with governance.outputs.engine.connect() as con:
        cells = json.loads(con.exec_driver_sql("SELECT public_cells_json FROM outputs").one()[0])
    assert cells["differencing"][0]["rows"] == [[["north"], 40], [["south"], None], [["east"], None]]
    assert cells["kept"]["rows"] == [["north", 40, "shown"], ["south", None, "suppressed (primary: min_frequency)"],
                                     ["east", None, "suppressed (secondary)"]]
    written = (governance.outputs.folder(output) / "table.csv").read_text()
    assert written == "area,count,status\nnorth,40,shown\nsouth,,suppressed (primary: min_frequency)\n" \
                      "east,,suppressed (secondary)\n"


def test_bad_input_is_a_failed_record_or_a_clear_error_never_a_pass(governance, tmp_path):
    empty = record(governance, "anna", "P-1", by_area({}))
    assert empty.status == OutputStatus.failed and empty.checks["findings"][0]["rule"] == "invalid"
    assert empty.files == [] and not any((tmp_path / "outputs" / "P-1" / empty.id).iterdir())
    with pytest.raises(DisclosureInputError, match="not a statistical output"):
        governance.outputs.record(sign_in(governance, "anna"), "P-1", "not a table", "study", "t")
    assert [p.name for p in (tmp_path / "outputs" / "P-1").iterdir()] == [empty.id]
