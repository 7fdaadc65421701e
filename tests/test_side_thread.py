"""Work beside the caller (`safepool.query.side_thread`): results, errors, and a forked child."""

from __future__ import annotations

import multiprocessing

import pytest

from safepool.query.side_thread import SideThread


def test_the_result_and_the_error_come_back_where_the_caller_waits() -> None:
    assert SideThread("sum", lambda: sum(range(10))).wait() == 45
    failing = SideThread("fails", lambda: 1 / 0)
    failing.join()
    assert isinstance(failing.error, ZeroDivisionError)
    with pytest.raises(ZeroDivisionError):
        failing.wait()


def test_several_at_once_each_give_back_their_own() -> None:
    beside = [SideThread(f"work {k}", lambda k=k: k * k) for k in range(20)]
    assert [work.wait() for work in beside] == [k * k for k in range(20)]


def _in_a_child(results: multiprocessing.Queue) -> None:
    results.put(SideThread("in the child", lambda: "done").wait())


def test_a_forked_child_gets_threads_of_its_own() -> None:
    """The parent's kept threads do not exist in a forked child: work there is not left waiting."""
    assert SideThread("in the parent", lambda: 1).wait() == 1  # the parent's threads made
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_in_a_child, args=(results,))
    child.start()
    child.join(timeout=30)
    assert child.exitcode == 0 and results.get(timeout=5) == "done"
