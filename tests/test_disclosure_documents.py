"""Reports as outputs, and effect tables with text remarks: a document fails when a part fails,
and otherwise needs a person's review (its text is not checked automatically); suppressing an
effect cell blanks its remarks along with its numbers."""

from __future__ import annotations

import pandas as pd
import pytest

from safepool.disclosure import (
    DisclosureInputError,
    DisclosureRules,
    Document,
    EffectTable,
    Figure,
    FrequencyTable,
    check,
    suppress,
)

RULES = DisclosureRules()


def counts(*values: int) -> FrequencyTable:
    return FrequencyTable("persons by group", pd.DataFrame({"group": list("abc")[: len(values)], "count": values}),
                          ["group"])


def effects(n_treated: list[int]) -> EffectTable:
    cells = pd.DataFrame({"subgroup": [f"s{i}" for i in range(len(n_treated))], "estimate": [0.1] * len(n_treated),
                          "p_value": ["0.0312", "not defined"][: len(n_treated)],
                          "n_treated": n_treated, "n_control": [50] * len(n_treated)})
    return EffectTable("effects by subgroup", cells, ["subgroup"], ["p_value"])


def test_a_document_fails_when_a_part_fails_and_otherwise_needs_review():
    passing = Document("report", {"table": counts(10, 12), "figure": Figure("chart", counts(7, 9), {})})
    report = check(passing, RULES)
    assert report.verdict == "review"
    assert [f.rule for f in report.findings if f.verdict == "review"] == ["text"]
    failing = Document("report", {"table": counts(10, 12), "figure": Figure("chart", counts(7, 3), {})})
    report = check(failing, RULES)
    assert report.verdict == "fail"
    assert any(f.verdict == "fail" and f.message.startswith("part 'figure'") for f in report.findings)


@pytest.mark.parametrize("document", [
    Document("report", {}), Document("report", {"nested": Document("inner", {"t": counts(10, 12)})}),
    Document("report", {"text": "not a table"}), Document("report", {"t": counts(10, 12)}, layout="poster"),
    Document("report", {"t": counts(10, 12)}, about={"question": "what about 010190-123A?"})])
def test_a_document_without_checkable_parts_or_plain_settings_fails_as_invalid(document):
    report = check(document, RULES)
    assert report.verdict == "fail" and any(f.rule == "invalid" for f in report.findings)
    assert "010190-123A" not in str(report.to_record())


def test_a_document_is_mitigated_through_its_parts_not_as_a_whole():
    with pytest.raises(DisclosureInputError, match="through its parts"):
        suppress(Document("report", {"table": counts(10, 2)}), RULES)


def test_remarks_are_not_checked_as_numbers_but_are_blanked_with_their_cell():
    assert check(effects([40, 30]), RULES).verdict == "pass"
    mitigated = suppress(effects([3, 30]), RULES, margins=False)
    shown = mitigated.output.public_table()
    hidden = shown[shown["status"].str.startswith("suppressed")]
    assert list(hidden["subgroup"]) == ["s0"]
    assert hidden["p_value"].isna().all() and hidden["estimate"].isna().all()
    assert "0.0312" not in shown.to_csv()
    assert mitigated.report.verdict == "pass"
