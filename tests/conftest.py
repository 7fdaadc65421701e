"""Shared pytest fixtures.

PostgreSQL (see tests/pg_server.py):
  postgres_server    session: a loopback server with password authentication, started on
                     first use (or SAFEPOOL_TEST_POSTGRES_URL). Attributes: url (no password),
                     password, url_with_password, host, port, user, dbname.
  postgres_database  function: a fresh empty database on that server for one test, dropped
                     afterwards; same attributes as postgres_server.

Tests that use them should be marked `@pytest.mark.postgres`. If the server cannot be
provided the tests error out; they are never skipped.

Under pytest-xdist (pyproject.toml runs two processes) every test of a file runs in the same
process, so module fixtures are made once; the files that share `cli_demo` run together.

The demo:
  cli_demo           session: `safepool demo --persons 2000 --seed 3` run once through the CLI in
                     a terminal 80 columns wide; (workspace root, console output). Read it, or
                     copy it before changing anything (several test files share it).

Hypothesis runs derandomized (profile "repeatable"), so a test run gives the same verdict on
every machine and a red CI run can be replayed; HYPOTHESIS_PROFILE=explore searches afresh.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import sys
from pathlib import Path
from typing import Iterator

import pytest
from hypothesis import settings

import pg_server

settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture(scope="session")
def postgres_server(request: pytest.FixtureRequest) -> pg_server.PostgresServer:
    capture = request.config.pluginmanager.getplugin("capturemanager")

    def log(message: str) -> None:
        # Shown straight away, even under output capture (e.g. "installing PostgreSQL").
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            print(message, file=sys.stderr, flush=True)

    cluster = pg_server.start_test_server(log)
    request.addfinalizer(cluster.stop)
    return cluster.server


@pytest.fixture(scope="session")
def _postgres_admin(postgres_server: pg_server.PostgresServer) -> Iterator[pg_server.DatabaseAdmin]:
    admin = pg_server.DatabaseAdmin(postgres_server)
    yield admin
    admin.close()


@pytest.fixture
def postgres_database(
    _postgres_admin: pg_server.DatabaseAdmin, request: pytest.FixtureRequest
) -> Iterator[pg_server.PostgresServer]:
    test_name = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")[:40]
    name = f"t_{test_name}_{secrets.token_hex(4)}"
    yield _postgres_admin.create(name)
    _postgres_admin.drop(name)


@pytest.fixture(scope="session")
def cli_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The demo is the slowest set-up in the suite; the files that check it as a whole (README,
    privacy scan, study run) share one run instead of making their own."""
    from typer.testing import CliRunner

    from safepool.cli import app

    root = tmp_path_factory.mktemp("demo") / "safepool-demo"
    result = CliRunner().invoke(app, ["demo", "--workspace", str(root), "--persons", "2000", "--seed", "3"],
                                env={"COLUMNS": "80"}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return root, result.output


SHARES_THE_DEMO = frozenset({"test_readme.py", "test_demo_privacy.py", "test_study_run.py"})
THE_DEMO = "the demo"
# The longest work, started first (a run of 3 December: the demo's files 500 s, the other two 280 s):
# pytest-xdist starts the files with the most tests first, and the demo processes' two tests (80 s)
# came last, alone on one process while the other had nothing left.
STARTED_FIRST = (THE_DEMO, "test_query_attacks.py", "test_demo_processes.py")


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """pytest-xdist sends whole files to a process, so each module fixture is made once, and sends the
    files that share `cli_demo` to the same one, so the demo is made once; the longest start first
    (`STARTED_FIRST`). (A scheduler of our own:
    `--dist=loadgroup` marks no longer take under pytest 9.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ByFile(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = nodeid.split("::", 1)[0]
            return THE_DEMO if Path(file).name in SHARES_THE_DEMO else file

        def _assign_work_unit(self, node: object) -> None:
            for first in reversed(STARTED_FIRST):
                for scope in [scope for scope in self.workqueue if Path(scope).name == first]:
                    self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)

    return ByFile(config, log)
