"""Cells of a family only: a study's rows as the sums a query would add up.

A study's row shows a mean over the clients it follows; times its count it is a sum of their
values. Queries can add up the same values over every client, one entry quarter at a time, and
the difference is the values of the clients the row leaves out (a review read one client's
benefits so). The ledger takes such a row as a cell of a family only: set against sums of the
same values by the group audit of families, either way round, and nowhere else, so that a
study's many rows of other quarters of the same clients do not single each other out.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from governed import sign_in
from safepool.governance.context import Governance
from safepool.query import ledger as ledger_module, ledger_memory
from safepool.query.ledger import ALL_ANSWERS, Ledger, Verdict
from test_ledger import MIN_FREQUENCY, PERMIT, cell, ledger_file, template, ws  # noqa: F401 (fixtures)

VALUES = 100.0 + 7.0 * np.arange(20)  # each client's value at entry


def _quarters() -> pd.DataFrame:
    """Two query cells: the clients who entered in each of two quarters, with their values then."""
    return pd.concat([cell(range(10), VALUES[:10]), cell(range(10, 20), VALUES[10:], number=1)])


def _row(persons: range, values: np.ndarray, number: int = 0) -> pd.DataFrame:
    return cell(persons, values, number=number)


@pytest.mark.parametrize("read_again", [False, True])
def test_a_row_over_every_client_but_one_after_the_queries_is_found(ws, read_again):
    """Queries over every client, one cell per entry quarter, then a row over all clients but one
    with the same values: the row is found, by the families' audit (it is no pair of any cell).
    With `read_again` the queries' cells come from the file."""
    root, governance, anna = ws
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.check(_quarters(), {0: 0, 1: 1}, MIN_FREQUENCY) == {}
    if read_again:
        ledger_memory.keep(str(ledger_file(root)), None)
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.check(_row(range(19), VALUES[:19]), {0: 0}, MIN_FREQUENCY, family=[0]) == {0: ALL_ANSWERS}


@pytest.mark.parametrize("decoy", [False, True])
def test_the_query_that_completes_the_difference_is_found_after_the_row(ws, decoy):
    """The row first, then the queries, each in a process of its own (the ledger read from the
    file): the one that completes the difference is found. With `decoy`, an earlier study's row
    of other clients, numbered first, adds up the second quarter's clients' values too; it must
    not take the place of the row in the query's family (an attacking review read a value so)."""
    root, governance, anna = ws
    earlier = _row([*range(10, 20), *range(30, 40)], np.r_[VALUES[10:], VALUES[:10]])
    rows = [earlier] if decoy else []
    for row in [*rows, _row(range(19), VALUES[:19])]:
        with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
            assert ledger.check(row, {0: 0}, MIN_FREQUENCY, family=[0]) == {}
    for query, found in ((cell(range(10), VALUES[:10]), {}), (cell(range(10, 20), VALUES[10:]), {0: ALL_ANSWERS})):
        ledger_memory.keep(str(ledger_file(root)), None)  # a process of its own: read from the file
        with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
            assert ledger.check(query, {0: 0}, MIN_FREQUENCY) == found
            ledger.verify_contents()


@pytest.mark.parametrize("row", [
    _row(range(19), VALUES[:19] + 1.0),        # the same clients' values of another quarter
    _row(range(15), VALUES[:15]),              # five clients of the second quarter in, five out
])
def test_a_row_of_other_values_or_of_enough_fewer_clients_passes(ws, row):
    root, governance, anna = ws
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.check(_quarters(), {0: 0, 1: 1}, MIN_FREQUENCY) == {}
        assert ledger.check(row, {0: 0}, MIN_FREQUENCY, family=[0]) == {}


@pytest.mark.parametrize("read_again", [False, True])
def test_a_row_of_an_indicator_is_set_against_counts_of_the_same_clients(ws, read_again):
    """A row's share of employed clients times its count is the number of employed clients it
    follows; queries counting the employed clients of each entry quarter are counts. Count
    queries first, then the row over every employed client but one: the row is found."""
    root, governance, anna = ws
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.check(pd.concat([cell(range(10)), cell(range(10, 20), number=1)]), {0: 0, 1: 1},
                            MIN_FREQUENCY) == {}
    if read_again:
        ledger_memory.keep(str(ledger_file(root)), None)
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.check(_row(range(19), np.ones(19)), {0: 0}, MIN_FREQUENCY, family=[0]) == {0: ALL_ANSWERS}


def test_the_count_that_completes_the_difference_is_found_after_the_row(ws):
    """The row of an indicator first, then one count per entry quarter, each in a process of its
    own: the count that completes the difference is found, the first is shown, and a count of
    other clients (sharing no one with the row) is shown too."""
    root, governance, anna = ws
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.check(_row(range(19), np.ones(19)), {0: 0}, MIN_FREQUENCY, family=[0]) == {}
    for persons, found in ((range(40, 50), {}), (range(10), {}), (range(10, 20), {0: ALL_ANSWERS})):
        ledger_memory.keep(str(ledger_file(root)), None)
        with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
            assert ledger.check(cell(persons), {0: 0}, MIN_FREQUENCY) == found
            ledger.verify_contents()


@pytest.mark.parametrize("counts", [
    [range(10), range(10, 20)],  # every client counted, the row leaves five out
    [range(10), range(10, 15)],  # the row over the same clients as the counts
])
def test_counts_and_a_row_that_leave_no_small_group_pass(ws, counts):
    root, governance, anna = ws
    queries = pd.concat([cell(persons, number=number) for number, persons in enumerate(counts)])
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.check(queries, {0: 0, 1: 1}, MIN_FREQUENCY) == {}
        assert ledger.check(_row(range(15), np.ones(15)), {0: 0}, MIN_FREQUENCY, family=[0]) == {}


def test_rows_of_one_study_are_never_set_against_each_other_as_sums(ws):
    """Two rows over clients who differ by one, whose shared clients take the same values (an
    indicator that did not change between two quarters), are not one family: the values are of
    other quarters. Nor do rows take part in the algebra, where one person's values in a hundred
    rows would count as telling every client apart."""
    root, governance, anna = ws
    rows = pd.concat([_row(range(20), VALUES), _row(range(19), VALUES[:19], number=1),
                      _row(range(1, 20), 3.0 * VALUES[1:], number=2)])
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.check(rows, {0: 0, 1: 1, 2: 2}, MIN_FREQUENCY, family=[0, 1, 2]) == {}
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:  # nor with later rows
        assert ledger.check(_row(range(18), VALUES[:18]), {0: 0}, MIN_FREQUENCY, family=[0]) == {}
        ledger.verify_contents()


def test_the_file_knows_which_cells_are_of_a_family_only(ws):
    """The mark is in the file and in its digest: the same rows without it are another ledger."""
    from safepool.query.ledger import chain_digest, genesis_digest

    root, governance, anna = ws
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.check(pd.concat([cell(range(10), VALUES[:10]), _row(range(20), VALUES, number=1)]),
                            {0: 0, 1: 1}, MIN_FREQUENCY, family=[1]) == {}
        frame, defined, known, withheld, family, owners = ledger.contents()
        assert family == [2] and owners.empty
        assert chain_digest(genesis_digest(ledger.name), frame, defined, known, withheld, family) == ledger.digest
        assert chain_digest(genesis_digest(ledger.name), frame, defined, known, withheld, []) != ledger.digest


def _parts(persons: range, owners: dict[int, int]) -> pd.DataFrame:
    """A row over the given members at their values, with the person each is part of (`owners`;
    itself otherwise): a control matched in two sets at other times, its rows in two quarters."""
    row = _row(persons, VALUES[list(persons)])
    return row.assign(owner=[owners.get(int(member), int(member)) for member in row["person"]])


QUARTER = cell(range(15), VALUES[:15])  # a query over one quarter: each client one member, a person


@pytest.mark.parametrize("row_first", [False, True])
@pytest.mark.parametrize("read_again", [False, True])
def test_a_row_that_adds_five_members_of_four_persons_to_a_quarter_is_found(ws, row_first, read_again):
    """A row holds a quarter's fifteen clients and five members more: a control's rows in two other
    quarters (members 15 and 16, both of person 16) and three others. The row less the quarter's
    sum tells the sum of those five members: four persons' values. Counted as members they were a
    group of five (the minimum frequency) and passed; counted as persons they are found, either way
    round, and with the ledger read from its file, which keeps each member's person."""
    root, governance, anna = ws
    first, then = (_parts(range(20), {15: 16}), QUARTER)[::1 if row_first else -1]
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.check(first, {0: 0}, MIN_FREQUENCY, family=[0] if row_first else []) == {}
    if read_again:
        ledger_memory.keep(str(ledger_file(root)), None)
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.check(then, {0: 0}, MIN_FREQUENCY, family=[] if row_first else [0]) == {0: ALL_ANSWERS}
        ledger.verify_contents()


def test_a_row_that_adds_five_persons_to_a_quarter_passes(ws):
    """The same row whose five more members are five persons: a group of the minimum frequency."""
    root, governance, anna = ws
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.check(QUARTER, {0: 0}, MIN_FREQUENCY) == {}
        assert ledger.check(_parts(range(20), {}), {0: 0}, MIN_FREQUENCY, family=[0]) == {}


def test_the_file_keeps_each_members_person_in_its_digest(ws):
    """The owners are in the file and in its digest: an owner edited in the file stops the ledger."""
    from safepool.query.ledger import LedgerTampered, chain_digest, genesis_digest

    root, governance, anna = ws
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.check(_parts(range(20), {15: 16, 17: 16}), {0: 0}, MIN_FREQUENCY, family=[0]) == {}
        frame, defined, known, withheld, family, owners = ledger.contents()
        assert owners[["member", "owner"]].to_numpy().tolist() == [[15, 16], [17, 16]]
        assert chain_digest(genesis_digest(ledger.name), frame, defined, known, withheld, family,
                            owners) == ledger.digest
        assert chain_digest(genesis_digest(ledger.name), frame, defined, known, withheld, family) != ledger.digest
        ledger._con().execute("UPDATE member_owners SET owner = 17 WHERE member = 17")
        with pytest.raises(LedgerTampered):
            ledger.verify_contents()


@pytest.mark.parametrize("read_again", [False, True])
def test_two_open_ended_counts_that_rebuild_a_hidden_one_are_found_after_the_row(ws, read_again):
    """A review's route: the row of an indicator (every employed client but one, the study's),
    then a count of one entry quarter's clients, then two open-ended counts whose difference is the
    other quarter's clients: the earlier clients plus ten who entered later, and those ten alone.
    The last count shares no one with the row; it meets it only through the other counts, so the
    row takes part in the count audit of every later query as the count it is."""
    root, governance, anna = ws
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.check(_row(range(19), np.ones(19)), {0: 0}, MIN_FREQUENCY, family=[0]) == {}
    later = range(30, 40)  # entered after the study's last quarter
    for persons, found in ((range(10), {}), ([*range(10, 20), *later], {}), (later, {0: ALL_ANSWERS})):
        if read_again:
            ledger_memory.keep(str(ledger_file(root)), None)
        with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
            assert ledger.check(cell(persons), {0: 0}, MIN_FREQUENCY) == found
            ledger.verify_contents()


def test_counts_after_a_row_that_leave_no_small_group_pass(ws):
    """The same counts after a row over every client: every difference holds ten."""
    root, governance, anna = ws
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.check(_row(range(20), np.ones(20)), {0: 0}, MIN_FREQUENCY, family=[0]) == {}
    for persons in (range(10), [*range(10, 20), *range(30, 40)], range(30, 40)):
        with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
            assert ledger.check(cell(persons), {0: 0}, MIN_FREQUENCY) == {}


@pytest.mark.parametrize("every_client", [False, True])
def test_a_row_after_two_open_ended_counts_that_leave_one_client_is_found(ws, every_client):
    """The same route the other way round: the counts first, then the row over every client but
    one, which shares no one with the last count. Over every client, the row is shown."""
    root, governance, anna = ws
    for persons in (range(10), [*range(10, 20), *range(30, 40)], range(30, 40)):
        with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
            assert ledger.check(cell(persons), {0: 0}, MIN_FREQUENCY) == {}
    clients = 20 if every_client else 19
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        assert ledger.check(_row(range(clients), np.ones(clients)), {0: 0}, MIN_FREQUENCY, family=[0]) \
            == ({} if every_client else {0: ALL_ANSWERS})


BLOCKS = 10  # clients 20k..20k+19; a row over all but the last of each block, two counts of ten each


def _many_hidden(root, governance, anna) -> tuple[dict[int, str], list[frozenset[int]], int]:
    """An answer counting the first five clients of each block, rows over every client of a block
    but one, then one answer counting each block's clients in two cells of ten: the second cell of
    each block completes a row's difference. What the check hides, the remembered families it
    audited (cells numbered at most the highest remembered), and how many audits it took."""
    with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
        fives = pd.concat([cell(range(20 * block, 20 * block + 5), number=block) for block in range(BLOCKS)])
        assert ledger.check(fives, {block: 0 for block in range(BLOCKS)}, MIN_FREQUENCY) == {}
    for block in range(BLOCKS):
        with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
            assert ledger.check(_row(range(20 * block, 20 * block + 19), np.ones(19)), {0: 0}, MIN_FREQUENCY,
                                family=[0]) == {}
    counts = pd.concat([cell(range(20 * block + 10 * half, 20 * block + 10 * half + 10), number=2 * block + half)
                        for block in range(BLOCKS) for half in (0, 1)])
    audited, audits = [], []
    memory_family_pinned = ledger_memory.LedgerMemory._family_pinned
    gives_away = Ledger._gives_away

    def family_pinned(self, cells, *args):
        if max(cells) <= self.highest:
            audited.append(cells)
        return memory_family_pinned(self, cells, *args)

    def counted(self, *args, **kwargs):
        audits.append(1)
        return gives_away(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ledger_memory.LedgerMemory, "_family_pinned", family_pinned)
        patch.setattr(Ledger, "_gives_away", counted)
        with Ledger.open(root / "pool", governance, anna, PERMIT) as ledger:
            found = ledger.check(counts, {number: 0 for number in range(2 * BLOCKS)}, MIN_FREQUENCY)
    return found, audited, len(audits)


def test_cells_hidden_one_after_another_are_found_in_few_audits(template, tmp_path):
    """Half the cells of one answer are hidden, each by a study's row with the cell before it: each
    is found, as taking the cells one by one finds them, in fewer audits than a bisection for each
    (the search tries the prefix through the cell the audits guess first), and each family of
    remembered cells is audited once for the whole check."""
    first_failing = ledger_module._first_failing
    runs = {}
    for guided in (True, False):
        root = tmp_path / f"guided-{guided}"
        shutil.copytree(template, root)
        governance = Governance.open(root)
        with pytest.MonkeyPatch.context() as patch:
            if not guided:  # a bisection for every hidden cell
                patch.setattr(ledger_module, "_GUESSES", 0)
                patch.setattr(ledger_module, "_first_failing", lambda *args, near=False, **kw: first_failing(*args, **kw))
            runs[guided] = _many_hidden(root, governance, sign_in(governance, "anna"))
        governance.permits.engine.dispose()
    (found, audited, audits), (bisected, _, bisections) = runs[True], runs[False]
    assert found == bisected == {2 * block + 1: ALL_ANSWERS for block in range(BLOCKS)}
    assert audited and len(audited) == len(set(audited))
    assert audits < bisections


def test_the_search_finds_the_first_failing_group_whichever_way_it_looks():
    """Adding cells never makes the audit find less: for every place of the first failing group
    (or none), the search finds it, trying the next groups first or bisecting, whatever the audits
    guess (right, too early, too late, or nothing); a right guess finds it in three audits when
    the search does not try the next groups first."""
    for size in range(1, 18):
        for first in range(size + 1):  # `size`: none fails
            for guess in {None, first, max(first - 3, 0), min(first + 2, size - 1)}:
                audits = []

                def gives_away(cells: list[int]) -> Verdict:
                    audits.append(1)
                    fails = any(cell >= first for cell in cells)
                    return Verdict(fails, guess if fails else None)

                for near in (True, False):
                    audits.clear()
                    found = ledger_module._first_failing([], [[number] for number in range(size)], gives_away,
                                                         near=near)
                    assert found == (None if first == size else first)
                    if guess == first < size and not near:
                        assert len(audits) <= 3