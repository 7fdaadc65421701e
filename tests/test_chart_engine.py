"""The chart renderer is started ahead of the report, in a thread that never outlives its use."""

from __future__ import annotations

import threading

import pytest
import vl_convert

from safepool.reports import chart_engine


def test_the_engine_starts_in_a_thread_and_draws_afterwards() -> None:
    thread = chart_engine.start_chart_engine()
    assert thread.daemon and thread.name == "chart engine start"
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert "<svg" in vl_convert.vegalite_to_svg({"mark": "bar", "data": {"values": [{"a": 1}]},
                                                 "encoding": {"x": {"field": "a", "type": "quantitative"}}})


@pytest.mark.parametrize("part, target", [("engine", "vegalite_to_svg"), ("pdf renderer", "import_module")])
def test_a_part_that_fails_to_start_is_left_to_its_first_real_use(monkeypatch: pytest.MonkeyPatch, part: str,
                                                                   target: str) -> None:
    """A chart engine that fails to start is left to the first real chart, a PDF renderer that
    fails to load to the first PDF: the thread raises nothing."""
    seen: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: seen.append(args.exc_value))

    def broken(_argument: object) -> None:
        raise RuntimeError(f"{part} missing")

    module = chart_engine.vl_convert if part == "engine" else chart_engine.importlib
    monkeypatch.setattr(module, target, broken)
    chart_engine.start_chart_engine().join(timeout=60)
    assert seen == []


def test_the_block_starts_the_engine_only_when_needed_and_joins_it(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[threading.Thread] = []
    real = chart_engine.start_chart_engine
    monkeypatch.setattr(chart_engine, "start_chart_engine", lambda: started.append(real()) or started[-1])
    with chart_engine.chart_engine_started(needed=False):
        pass
    assert started == []
    with pytest.raises(ValueError), chart_engine.chart_engine_started():
        raise ValueError("the run failed")
    assert len(started) == 1 and not started[0].is_alive()


def test_the_thread_loads_the_pdf_renderer_after_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    done: list[str] = []
    monkeypatch.setattr(chart_engine.vl_convert, "vegalite_to_svg", lambda _spec: done.append("engine") or "<svg/>")
    monkeypatch.setattr(chart_engine.importlib, "import_module", lambda name: done.append(name))
    chart_engine.start_chart_engine().join(timeout=60)
    assert done == ["engine", "weasyprint"]
