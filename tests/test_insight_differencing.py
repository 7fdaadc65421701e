"""Insight runs in the differencing ledger (issue 10, point 11): an attacking review read two named
residents' use of the city's services from two segments runs whose ages differed by one year
(the runs' customer groups, counts and mean costs subtracted), and every output had passed its own
checks. Now each run's shown cells enter the ledger, and a cell that with earlier ones tells a few
persons is hidden; the numbers a run hands its shell carry the released precision only."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml
from city_workspace import EXAMPLES, PERMIT, city_workspace

from safepool.disclosure.cells import shown_mask
from safepool.disclosure.margins import TOTAL
from safepool.disclosure.policy import workspace_policy
from safepool.governance.alerts import AlertSettings
from safepool.governance.context import Governance
from safepool.insight.segments import person_table
from safepool.insight.spec import analysis_of, load_insight
from safepool.pool.access import POOL_FILE
from safepool.workspace import Workspace


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    root = tmp_path_factory.mktemp("city") / "ws"
    return root, city_workspace(root, persons=3000, seed=5)


def _segments_file(tmp_path, ages: list[int], name: str):
    """The shipped segments file with other ages."""
    data = yaml.safe_load((EXAMPLES / "insight-segments.yaml").read_text())
    data["analysis"]["ages"] = ages
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _upper_age_leaving_out_a_few(root, tmp_path, min_frequency: int) -> int:
    """An upper age whose run leaves out 1 to min_frequency - 1 persons of the run one year older
    (found in the pool as its steward could, to set the attack up)."""
    settings = analysis_of(load_insight(_segments_file(tmp_path, [18, 64], "probe"))).settings
    with duckdb.connect(str(Workspace.open(root).pool_dir / PERMIT / POOL_FILE), read_only=True) as con:
        sizes = {upper: len(person_table(con, settings.model_copy(update={"ages": [18, upper]})))
                 for upper in range(70, 101)}
    return next(upper for upper in range(71, 101) if 0 < sizes[upper] - sizes[upper - 1] < min_frequency)


def _nested_cells(result) -> dict[tuple, float]:
    """Each shown count (or a mean's persons) of the cells whose persons are one run's within the
    other's: every cell but a customer group's (groups are numbered by size in each run)."""
    found = {}
    for name, mitigated in result.checked.items():
        cells = getattr(mitigated.output, "cells", None)
        if cells is None:
            continue
        if "cluster" in cells.columns:
            cells = cells[cells["cluster"].astype(str) == TOTAL]
        count = "count" if "count" in cells.columns else "n"
        for row, shown in zip(cells.to_dict("records"), shown_mask(cells)):
            if shown:
                found[(name, *(str(row[g]) for g in mitigated.output.groups))] = float(row[count])
    return found


def test_two_segment_runs_whose_ages_leave_out_a_few_do_not_tell_them(city, tmp_path):
    root, person = city
    policy = workspace_policy(Governance.open(root))
    upper = _upper_age_leaving_out_a_few(root, tmp_path, policy.min_frequency)
    analyst = person("vtt.analyst1").permit(PERMIT)
    older = analyst.insight(_segments_file(tmp_path, [18, upper], "older"))
    younger = analyst.insight(_segments_file(tmp_path, [18, upper - 1], "younger"))
    a, b = _nested_cells(older), _nested_cells(younger)
    assert len(a) > 20  # the first run shows its cells
    differences = {key: a[key] - b[key] for key in set(a) & set(b)}
    assert not [key for key, d in differences.items() if 0 < abs(d) < policy.min_frequency], differences
    # a cell the same in both runs is hidden too (it tells that the few are not in it), so which cells
    # are hidden does not tell where they are
    assert not [key for key, d in differences.items() if d == 0], differences
    # the ledger hid what would have told them, audited as withheld, which the alert counts
    governance = Governance.open(root)
    withheld = [r for r in governance.audit.records() if r.action == "insight" and r.outcome == "withheld"]
    assert withheld and all(entry["check"].startswith("differencing") for r in withheld
                            for entry in r.detail["withheld"])
    hidden = {name: int((~shown_mask(m.output.cells)).sum()) for name, m in younger.checked.items()
              if hasattr(m.output, "cells")}
    assert sum(hidden.values()) > sum(int((~shown_mask(m.output.cells)).sum()) for m in older.checked.values()
                                      if hasattr(m.output, "cells"))
    assert "insight" in AlertSettings().differencing_actions


def test_the_same_run_again_shows_nothing_the_first_hid(city, tmp_path):
    root, person = city
    analyst = person("vtt.analyst1").permit(PERMIT)
    path = _segments_file(tmp_path, [20, 50], "again")
    first, again = analyst.insight(path), analyst.insight(path)
    for name, mitigated in first.checked.items():
        if hasattr(mitigated.output, "cells"):
            cells, later = mitigated.output.cells, again.checked[name].output.cells
            shown, shown_again = shown_mask(cells), shown_mask(later)
            assert not (shown_again & ~shown).any(), name  # a cell hidden for the ledger stays hidden
            pd.testing.assert_frame_equal(cells[shown & shown_again], later[shown & shown_again])


def test_a_run_hands_its_shell_the_released_precision_only(city, tmp_path):
    root, person = city
    decimals = workspace_policy(Governance.open(root)).decimals
    result = person("vtt.analyst1").permit(PERMIT).insight(_segments_file(tmp_path, [25, 45], "precision"))
    values = result.checked["cluster_value"].output.cells["value"].dropna().to_numpy(dtype=float)
    assert len(values) and np.allclose(values, np.round(values, decimals), rtol=0, atol=0)
    assert all(v is None or v != v for v in result.checked["cluster_value"].output.cells.loc[
        ~shown_mask(result.checked["cluster_value"].output.cells), "value"])
