"""An output is checked once per object and policy: mitigation reads the check it made of its
input, publishing records the mitigated output with the check made as it was mitigated, and an
output asked for, reviewed and released under one policy is checked again once, not at each step.
What each check finds is unchanged (the other disclosure tests say what it is)."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest

from governed import sign_in
from recorded_outputs import CONTEXT, by_area, governed_outputs, use_policy
from safepool.disclosure import DisclosureRules, FrequencyTable, kind_of
from safepool.disclosure import register as register_module
from safepool.disclosure.kinds import kind_named
from safepool.disclosure.outputs import DisclosureInputError
from safepool.governance.users import Refused

RULES = DisclosureRules()
SMALL = {"north": 40, "south": 3, "east": 25}


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """How often each kind checks an output (what it checks, by title)."""
    seen: Counter = Counter()
    kind = kind_named("frequency")
    real = type(kind).check

    def check(self, output, policy, *, kept=False):  # type: ignore[no-untyped-def]
        seen[output.title] += 1
        return real(self, output, policy, kept=kept)

    monkeypatch.setattr(type(kind), "check", check)
    return seen


def test_suppression_checks_its_input_once_and_its_result_once(counted: Counter) -> None:
    mitigated = kind_of(by_area(SMALL)).mitigate(by_area(SMALL), RULES, margins=False, rounding=False)
    assert mitigated.output.cells["status"].str.startswith("suppressed").sum() == 1
    assert counted["Persons by area"] == 2


def test_suppression_with_totals_checks_the_table_with_its_totals_and_its_result_once(counted: Counter) -> None:
    mitigated = kind_of(by_area(SMALL)).mitigate(by_area(SMALL), RULES, margins=True, rounding=False)
    assert list(mitigated.output.cells["area"]) == ["north", "south", "east", "Total"]
    assert list(mitigated.output.cells["status"].str.split(" ").str[0]) == ["shown", "suppressed", "suppressed",
                                                                              "shown"]
    assert counted["Persons by area"] == 2  # the table with its totals, then as mitigated


def test_suppression_with_totals_still_refuses_a_table_that_cannot_be_checked(counted: Counter) -> None:
    table = by_area({"north": 40, "south": -3})
    with pytest.raises(DisclosureInputError, match="cannot be mitigated"):
        kind_of(table).mitigate(table, RULES, margins=True, rounding=False)
    assert counted["Persons by area"] == 0


def test_rounding_that_leaves_nothing_failing_checks_the_rounded_table_once(counted: Counter) -> None:
    table = by_area({"north": 40, "south": 31})
    kind_of(table).mitigate(table, RULES, margins=False, rounding=True)
    assert counted["Persons by area"] == 2  # the table as given, then as rounded


def test_publishing_records_the_mitigated_output_without_checking_it_again(tmp_path, counted: Counter) -> None:
    governance = governed_outputs(tmp_path)
    published = governance.outputs.publish_all(sign_in(governance, "anna"), "P-1", {"areas": by_area(SMALL)},
                                               "query")
    mitigated, record = published["areas"]
    assert record.verdict == "pass" and mitigated.report.verdict == "pass"
    assert counted["Persons by area"] == 2


def test_an_output_is_checked_again_once_under_one_policy(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    governance = governed_outputs(tmp_path)
    register_module._RECHECKED.clear()
    kind = kind_named("frequency")
    rechecks: list[str] = []
    real = type(kind).recheck

    def recheck(self, kept, recorded, policy):  # type: ignore[no-untyped-def]
        rechecks.append(kept["title"])
        return real(self, kept, recorded, policy)

    monkeypatch.setattr(type(kind), "recheck", recheck)
    anna, cecilia = sign_in(governance, "anna"), sign_in(governance, "cecilia")
    (_, first), = governance.outputs.publish_all(anna, "P-1", {"areas": by_area(SMALL)}, "query").values()
    governance.outputs.request_release(anna, [first.id], CONTEXT)
    governance.outputs.review(cecilia, first.id, "approve", "")
    governance.outputs.release(cecilia, [first.id])
    assert rechecks == ["Persons by area"]

    (_, second), = governance.outputs.publish_all(anna, "P-1", {"areas": by_area(SMALL, "Persons again")},
                                                  "query").values()
    governance.outputs.request_release(anna, [second.id], CONTEXT)
    use_policy(governance, min_frequency=6)  # a new policy: the output is checked again under it
    governance.outputs.review(cecilia, second.id, "approve", "")
    assert rechecks == ["Persons by area", "Persons again", "Persons again"]


def test_an_output_that_fails_on_its_recheck_is_still_refused_at_every_step(tmp_path) -> None:
    governance = governed_outputs(tmp_path)
    anna = sign_in(governance, "anna")
    cells = pd.DataFrame({"area": ["north", "south"], "count": [40, 7]})
    (_, record), = governance.outputs.publish_all(anna, "P-1", {"areas": FrequencyTable("Seven", cells, ["area"])},
                                                  "query").values()
    use_policy(governance, min_frequency=10)
    for _ in range(2):
        with pytest.raises(Refused, match="fails the disclosure checks under the workspace's current policy"):
            governance.outputs.request_release(anna, [record.id], CONTEXT)
