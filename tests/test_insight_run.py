"""An insight file run through the Session (issue 13, point 6): only under its permit, every
output and the report recorded through the output registry, nothing below the policy shown."""

from __future__ import annotations

import subprocess

import pandas as pd
import pytest
from city_workspace import EXAMPLES, PERMIT, city_workspace
from threadpoolctl import threadpool_info

from safepool.disclosure.cells import is_contributor_column
from safepool.disclosure.policy import workspace_policy
from safepool.faults import Invalid, Refused
from safepool.governance.context import Governance
from safepool.insight.analysis import Analysis, Settings
from safepool.insight.paths import ServicePaths
from safepool.reports import chart_engine



@pytest.fixture(scope="module")
def city(tmp_path_factory):
    root = tmp_path_factory.mktemp("city") / "ws"
    return root, city_workspace(root, persons=4000, seed=4)


def test_a_run_records_every_output_and_a_report_made_of_them(city, monkeypatch):
    root, person = city
    threads = []  # BLAS and OpenMP pools while the analysis computes: one thread each (see one_thread)
    computed = ServicePaths.run
    monkeypatch.setattr(ServicePaths, "run", lambda self, context: threads.extend(
        pool["num_threads"] for pool in threadpool_info()) or computed(self, context))
    engines = []  # the chart renderer's engine, started while the outputs are checked (a figure is drawn)
    started = chart_engine.start_chart_engine
    monkeypatch.setattr(chart_engine, "start_chart_engine", lambda: engines.append(started()) or engines[-1])
    result = person("vtt.analyst1").permit(PERMIT).insight(EXAMPLES / "insight-paths.yaml")
    assert threads and set(threads) == {1}
    assert len(engines) == 1 and not engines[0].is_alive()  # joined before the run returned
    assert set(result.records) == {"paths_transitions", "paths_variants", "paths_time_to_next", "paths_flow",
                                   "paths_reach", "insight_report"}
    assert result.records["insight_report"].verdict == "review"  # a person reads a report before release
    assert "persons reached it in the period" in result.summary and len(result.summary) < 200
    policy = workspace_policy(Governance.open(root))
    for name, mitigated in result.checked.items():
        shown = mitigated.output
        cells = shown.table.cells if hasattr(shown, "table") else shown.cells
        assert not [c for c in cells.columns if is_contributor_column(c)], name  # as the shell may hold it
        counts = pd.to_numeric(cells["count"], errors="coerce").dropna()
        assert ((counts == 0) | (counts >= policy.min_frequency)).all(), name
    report = root / "outputs"
    written = sorted(p.name for p in report.rglob("insight_report.*"))
    assert written == ["insight_report.html", "insight_report.pdf"]
    html = next(report.rglob("insight_report.html")).read_text()
    assert "Synthetic data" in html and "Paths into child protection" in html and "<svg" in html
    assert "<h2>Feature definitions</h2>" in html and "<td>family_language_group</td>" in html.replace("<wbr>", "")


def test_every_page_of_the_report_says_the_data_are_synthetic(city):
    root, _ = city
    pdf = next((root / "outputs").rglob("insight_report.pdf"))
    pages = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True,
                           text=True).stdout.split("\f")
    pages = [page for page in pages if page.strip()]
    assert 1 <= len(pages) <= 12
    for page in pages:
        assert "Synthetic data" in page, "a page without the synthetic note"
        assert "<NA>" not in page and "nan" not in page.split()


def test_a_file_of_another_permit_and_a_user_outside_it_are_refused(city, tmp_path):
    _, person = city
    other = tmp_path / "other.yaml"
    other.write_text((EXAMPLES / "insight-paths.yaml").read_text().replace(PERMIT, "P-2025-OTHER"))
    with pytest.raises(Invalid, match="names permit P-2025-OTHER"):
        person("vtt.analyst1").permit(PERMIT).insight(other)
    with pytest.raises(Refused):
        person("sf.checker").permit(PERMIT).insight(EXAMPLES / "insight-paths.yaml")


def test_an_analysis_kind_that_leaves_out_a_method_cannot_be_made():
    class TablesOnly(Analysis):
        kind = "tables-only"
        settings_model = Settings

        def tables(self, features):
            return {}

    with pytest.raises(TypeError, match="features_used"):
        TablesOnly(Settings())
