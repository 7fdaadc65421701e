"""Property: on a generated pool with one planted person a reader could name (the only one born
in 1941) whose single payment is a value no one else has, no sequence of generated requests
pins that value: no shown cell, difference of two shown cells, label, note, error, audit record
or recorded file carries it."""

from __future__ import annotations

import itertools
import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governed import sign_in
from safepool.disclosure.mitigation import SHOWN
from safepool.governance.context import Governance
from safepool.query.engine import run_query
from safepool.query.model import QueryRefused
from safepool.query.request import AggregateRequest
from safepool.workspace import Workspace
from test_query_engine import PERMIT, governed_pool, make_pool

PLANTED = "p-planted"
VALUE = 7777.125
# the value as a number in any text: 7777.125, 7777.13, 7,777, 7 777 (not digits inside a hex digest)
SPELLED = re.compile(r"(?<![0-9A-Za-z.])7[ ,]?777(?:\.[0-9]+)?(?![0-9A-Za-z])")

MEASURES = ["persons", "rows", "sum", "mean", "share", "quantiles"]
GROUPS = ["sex", "year(birth_year)", "bin(amount)"]
FILTERS = ["birth_year = 1941", "birth_year != 1941", "amount between 7777,7778", "amount > 400", "amount < 7000",
           "sex = F", "sex = M", "birth_year between 1940,1942", "birth_year >= 1960"]


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    root = tmp_path_factory.mktemp("property") / "ws"
    workspace, _ = governed_pool(root)
    shutil.rmtree(workspace.pool_dir / PERMIT)
    return root


@st.composite
def pools(draw):
    size = draw(st.integers(12, 40))
    rng = np.random.default_rng(draw(st.integers(0, 10_000)))
    pids = [f"p-{i:03d}" for i in range(size)]
    population = pd.DataFrame({"pid": pids + [PLANTED],
                               "birth_year": list(rng.choice([1950, 1960, 1970, 1980], size)) + [1941],
                               "sex": list(rng.choice(["F", "M"], size)) + ["F"]})
    rows = [{"pid": pid, "paid_on": pd.Timestamp(2019, 1 + i, 5).date(), "amount": float(rng.integers(50, 500)),
             "bank": "FI00"} for pid in pids for i in range(int(rng.integers(1, 4)))]
    rows.append({"pid": PLANTED, "paid_on": pd.Timestamp(2019, 6, 5).date(), "amount": VALUE, "bank": "FI00"})
    return {"population": population, "payments": pd.DataFrame(rows),
            "visits": pd.DataFrame({"pid": pids[:5], "month": 201903})}


requests = st.builds(
    lambda measure, by, filters: AggregateRequest(
        table="payments", join=["population"], measure=measure, by=by, filters=filters,
        value=None if measure in ("persons", "rows") else "amount", quantiles=[0.1, 0.5, 0.9]),
    st.sampled_from(MEASURES), st.lists(st.sampled_from(GROUPS), max_size=2, unique=True),
    st.lists(st.sampled_from(FILTERS), max_size=2, unique=True))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tables=pools(), asked=st.lists(requests, min_size=1, max_size=4))
def test_no_answer_pins_the_planted_persons_value(template, tmp_path_factory, tables, asked):
    root = tmp_path_factory.mktemp("example") / "ws"
    shutil.copytree(template, root, symlinks=True)
    workspace = Workspace.open(root)
    make_pool(workspace.pool_dir, tables=tables)
    governance = Governance.open(root)
    anna = sign_in(governance, "anna")
    said, shown = [], []
    for request in asked:
        try:
            answer = run_query(workspace.pool_dir, governance, anna, PERMIT, request)
        except QueryRefused as refusal:
            said.append(str(refusal))
            continue
        said += [answer.table.to_csv(index=False), answer.note]
        measures = [c for c in answer.table.columns if c not in request.by and c != "status"
                    and not c.startswith(("year_", "bin_"))]
        cells = answer.table[answer.table["status"] == SHOWN][measures].to_numpy(dtype=float).ravel()
        shown += [v for v in cells if np.isfinite(v)]
    said += [p.read_text("utf-8", "replace") for p in (root / "outputs").rglob("*.csv")]
    said += [json.dumps(r.detail) for r in governance.audit.records()]
    text = "\n".join(said)
    assert not SPELLED.search(text), "the planted value appears in something said"
    assert not any(abs(v - VALUE) < 0.01 for v in shown), "a shown cell is the planted value"
    assert not any(abs(abs(a - b) - VALUE) < 0.01 for a, b in itertools.combinations(shown, 2)), \
        "two shown cells differ by the planted value"
