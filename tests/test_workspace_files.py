"""Files (issue 11, point 7): owner-only zones whatever the umask, a build audited before it reads,
and no scratch of a killed build (identity-bearing or not) outliving the next build or the doctor."""

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml

from governed import EXAMPLE, approved_permit, governance_with_users, sign_in
from safepool.disclosure.outputs import FrequencyTable
from safepool.doctor import doctor, examine
from safepool.governance.permits import Phase
from safepool.governance.users import Refused
from safepool.pool import access
from safepool.pool.build import build_for_permit, build_pool
from safepool.pool.publish import BUILDS, Scratch, sweep
from safepool.pool.scope import Scope
from safepool.synth.load import synthesise
from safepool.workspace import ZONES, Workspace
from tiny_registers import TEMPORARY, WRONG_CHECK, make_workspace

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"


def modes_outside_owner_only(root: Path) -> list[str]:
    """Every folder that is not 0700 and every file that is not 0600 in the zones."""
    wrong = []
    for zone in ZONES:
        for folder, _, files in os.walk(root / zone):
            for path in [Path(folder)] + [Path(folder) / name for name in files]:
                if path.is_symlink():
                    continue
                mode = stat.S_IMODE(path.lstat().st_mode)
                if mode != (0o700 if path.is_dir() else 0o600):
                    wrong.append(f"{path.relative_to(root)} {mode:o}")
    return wrong


@pytest.fixture
def umask_000():
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_every_zone_is_owner_only_under_umask_000(tmp_path, umask_000):
    root = tmp_path / "ws"
    workspace = Workspace.init(root)
    synthesise(root, persons=400, seed=2)
    governance = governance_with_users(root)
    data = yaml.safe_load(EXAMPLE.read_text())["data"]
    approved_permit(governance, "P-1", data=data)
    stella = sign_in(governance, "stella")
    build_for_permit(workspace, governance, stella, "P-1")
    governance.permits.advance(stella, "P-1", Phase.analytic_review)
    table = FrequencyTable("Persons by area", pd.DataFrame({"area": ["north", "south"], "count": [40, 60]}), ["area"])
    record = governance.outputs.record(sign_in(governance, "anna"), "P-1", table, "query", "table")
    assert governance.outputs.folder(record).is_dir()

    for zone in ZONES:
        assert (root / zone).is_dir(), zone
    for expected in ("steward/keys/P-1.key", "steward/key-passphrase", "steward/truth/truth.json",
                     "pool/P-1/pool.duckdb", "steward/quarantine/P-1"):
        assert (root / expected).exists(), expected
    assert any((root / "registers").rglob("*.csv")) and any((root / "governance").iterdir())
    assert modes_outside_owner_only(root) == []
    assert examine(workspace).not_owner_only == []


def test_the_doctor_reports_and_fixes_what_is_not_owner_only(tmp_path):
    workspace = make_workspace(tmp_path / "ws")
    governance = governance_with_users(workspace.root)
    loose = workspace.registers_dir / "kela" / "payments.csv"
    os.chmod(loose, 0o644)
    os.chmod(workspace.registers_dir, 0o755)
    report = doctor(workspace, governance, sign_in(governance, "stella"))
    assert dict(report.not_owner_only) == {"registers": 0o755, "registers/kela/payments.csv": 0o644}
    assert not report.ok and report.fixed == []
    with pytest.raises(Refused, match="neither a steward nor an admin"):
        doctor(workspace, governance, sign_in(governance, "anna"))
    fixed = doctor(workspace, governance, sign_in(governance, "admin"), fix=True)
    assert fixed.ok and sorted(fixed.fixed) == ["registers", "registers/kela/payments.csv"]
    assert modes_outside_owner_only(workspace.root) == []
    records = governance.audit.records(action="doctor")
    assert [r.outcome for r in records] == ["error", "refused", "ok"]
    assert records[-1].detail == {"removed": 0, "not_owner_only": 2, "fixed": 2}


def test_a_build_audits_its_start_before_it_reads(tmp_path, monkeypatch):
    workspace = make_workspace(tmp_path / "ws")
    governance = governance_with_users(workspace.root)
    approved_permit(governance, "P-1")
    seen = []
    from safepool.registers import sources

    original = sources.FileReader.__init__

    def opening(self, register, path):
        seen.append([r.action for r in governance.audit.records(permit="P-1")])
        original(self, register, path)

    monkeypatch.setattr(sources.FileReader, "__init__", opening)
    build_for_permit(workspace, governance, sign_in(governance, "stella"), "P-1")
    assert seen and seen[0][-1] == "pool_build_started"
    actions = [r.action for r in governance.audit.records(permit="P-1")]
    assert actions.index("pool_build_started") < actions.index("pool_build")


def test_a_live_builds_scratch_is_never_swept(tmp_path):
    parent = tmp_path / "pool"
    with Scratch(parent, "P-1") as live:
        (live.path / "pool.duckdb").write_bytes(b"half")
        assert sweep(parent) == []
        assert live.path.is_dir()
    assert not live.path.exists() and list((parent / BUILDS).iterdir()) == []


def test_a_published_build_is_kept_and_a_dead_ones_scratch_is_not(tmp_path):
    parent = tmp_path / "pool"
    with Scratch(parent, "P-1") as published:
        published.publish(parent / "P-1")
    dead = parent / BUILDS / "P-2-20240101T000000-deadbeef"  # as a killed build leaves it, lock and all
    dead.mkdir()
    (dead / "pool.duckdb").write_bytes(b"half")
    (parent / BUILDS / (dead.name + ".lock")).touch()
    orphan_lock = parent / BUILDS / "P-3-20240101T000000-cafebabe.lock"
    orphan_lock.touch()
    assert sorted(p.name for p in sweep(parent)) == sorted([dead.name, dead.name + ".lock", orphan_lock.name])
    assert [p.name for p in (parent / BUILDS).iterdir()] == [published.path.name]
    assert (parent / "P-1").resolve() == published.path.resolve()


# --- a build killed with SIGKILL in the middle of reading ---------------------------------

PAUSED = """
import sys, time
from pathlib import Path
sys.path[:0] = [{tests!r}, {src!r}]

marker = Path({marker!r})

def progress(stage, register, rows):
    if stage == "read" and register == "visits" and rows:
        marker.write_text("reading")
        time.sleep(120)
"""
CHILD = PAUSED + """
from safepool.pool.build import build_pool
from safepool.pool.scope import Scope
from safepool.workspace import Workspace

scope = Scope(permit="P-2", window={{"start": "2009Q1", "end": "2024Q4"}},
              registers={{"population": "*", "payments": "*", "visits": "*"}})
build_pool(Workspace.open(Path({root!r})), scope, progress=progress)
"""
SESSION_CHILD = PAUSED + """
import safepool

safepool.connect(Path({root!r}), user="stella", password={password!r}).permit("P-2").build(progress=progress)
"""

FULL = {"population": "*", "payments": "*", "visits": "*"}


def kill_a_build_mid_read(workspace: Workspace, tmp_path: Path, child_script: str = CHILD, **fields: str) -> None:
    """Run `child_script` (a build that pauses in its read of visits) and SIGKILL it there."""
    marker = tmp_path / "reading"
    script = child_script.format(tests=str(TESTS), src=str(SRC), marker=str(marker), root=str(workspace.root),
                                 **fields)
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)])
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.poll() is None, "the build ended before it was killed"
            assert time.monotonic() < deadline, "the build never reached the read"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL


def scratch_left(workspace: Workspace) -> list[str]:
    """Everything under a .builds folder that no published name points at."""
    left = []
    for parent in (workspace.pool_dir, workspace.steward_dir / "quarantine", workspace.steward_dir / "tmp"):
        published = {p.resolve() for p in parent.iterdir() if p.is_symlink()}
        builds = parent / BUILDS
        left += [str(p.relative_to(workspace.root)) for p in (builds.iterdir() if builds.exists() else [])
                 if p.resolve() not in published]
    return sorted(left)


def codes_in_parquet(folder: Path) -> set[str]:
    """Every value in the Parquet files under `folder`, as text."""
    values = set()
    for path in folder.rglob("*.parquet"):
        values.update(str(v) for row in duckdb.sql(f"SELECT * FROM read_parquet('{path}')").fetchall() for v in row)
    return values


def payments_rows(workspace: Workspace, permit: str):
    con = access.connect(workspace.pool_dir, permit)
    try:
        return con.execute("SELECT * FROM payments ORDER BY ALL").fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("cleaner", ["next build of another permit", "doctor"])
def test_a_killed_build_leaves_nothing_behind(tmp_path, cleaner):
    workspace = make_workspace(tmp_path / "ws")
    governance = governance_with_users(workspace.root)
    first = build_pool(workspace, Scope(permit="P-1", window={"start": "2009Q1", "end": "2024Q4"}, registers=FULL))
    before = payments_rows(workspace, "P-1")

    kill_a_build_mid_read(workspace, tmp_path)

    left = scratch_left(workspace)
    assert any(p.startswith("pool/.builds/P-2-") for p in left), left
    quarantine = [workspace.root / p for p in left if p.startswith("steward/quarantine/.builds/P-2-")
                  and not p.endswith(".lock")]
    assert quarantine and {TEMPORARY, WRONG_CHECK} <= codes_in_parquet(quarantine[0])  # identity-bearing
    assert any(p.startswith("steward/tmp/.builds/P-2-") for p in left), left

    if cleaner == "doctor":
        report = doctor(workspace, governance, sign_in(governance, "stella"))
        assert sorted(report.removed) == left and report.ok
    else:
        build_pool(workspace, Scope(permit="P-3", window={"start": "2009Q1", "end": "2024Q4"}, registers=FULL))

    assert scratch_left(workspace) == []
    assert not (workspace.pool_dir / "P-2").exists()
    for folder in (workspace.steward_dir / "quarantine" / BUILDS, workspace.steward_dir / "tmp" / BUILDS):
        published = {p.resolve() for p in folder.parent.iterdir() if p.is_symlink()}
        for path in folder.rglob("*"):
            assert any(path.resolve().is_relative_to(p) for p in published), path
    assert (workspace.pool_dir / "P-1").resolve() == first.path.resolve()
    assert payments_rows(workspace, "P-1") == before


def test_a_build_killed_through_the_session_is_on_record_and_its_scratch_goes_with_the_next(tmp_path):
    """As the steward would run it (through the Session): the killed build leaves its start on
    record and no `pool_build`; the next build, of another permit, removes its scratch (the
    identity-bearing quarantine first) and counts what it removed in its own record."""
    from governed import PASSWORD
    from safepool.session import connect

    workspace = make_workspace(tmp_path / "ws")
    governance = governance_with_users(workspace.root)
    for permit in ("P-2", "P-3"):
        approved_permit(governance, permit)
    kill_a_build_mid_read(workspace, tmp_path, SESSION_CHILD, password=PASSWORD)

    killed = [(r.action, r.outcome) for r in governance.audit.records(permit="P-2")]
    assert ("pool_build_started", "ok") in killed and not any(action == "pool_build" for action, _ in killed)
    left = scratch_left(workspace)
    assert any(p.startswith("steward/quarantine/.builds/P-2-") for p in left), left
    assert any(p.startswith("pool/.builds/P-2-") for p in left), left

    connect(workspace.root, user="stella", password=PASSWORD).permit("P-3").build()
    assert scratch_left(workspace) == []
    built = governance.audit.records(permit="P-3", action="pool_build")[-1]
    assert built.outcome == "ok" and built.detail["stale_scratch_removed"] == len(left)
    assert governance.audit.verify().ok


def test_the_doctor_command(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from governed import PASSWORD
    from safepool.cli import app

    workspace = make_workspace(tmp_path / "ws")
    governance = governance_with_users(workspace.root)
    monkeypatch.setenv("SAFEPOOL_PASSWORD", PASSWORD)
    os.chmod(workspace.registers_dir / "kela" / "payments.csv", 0o644)

    def doctor_command(*options):
        return CliRunner().invoke(app, ["doctor", *options, "-w", str(workspace.root)], catch_exceptions=False)

    found = doctor_command("--user", "stella")
    assert found.exit_code == 1 and "registers/kela/payments.csv (mode 644)" in found.output
    assert "safepool doctor --fix" in found.output
    fixed = doctor_command("--user", "stella", "--fix")
    assert fixed.exit_code == 0 and "1 made owner-only" in fixed.output and "-> fixed" in fixed.output
    clean = doctor_command("--user", "admin")
    assert clean.exit_code == 0 and "Not owner-only: 0" in clean.output
    refused = doctor_command("--user", "anna")  # through the Session: the access policy's refusal, audited
    assert refused.exit_code == 5 and "user anna is not a steward or an admin" in refused.output
    assert [(r.action, r.outcome) for r in governance.audit.records(user="anna")][-1] == ("doctor", "refused")
    assert all(len(line) <= 80 for result in (found, fixed, clean) for line in result.output.splitlines())
