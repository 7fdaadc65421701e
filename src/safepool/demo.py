"""The demo: everything safepool can do so far, on synthetic Espoo, in a fresh workspace."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from safepool.errors import SafepoolError
from safepool.pool.build import build_pool
from safepool.pool.scope import Scope, Window
from safepool.registers.check import check_registers
from safepool.synth.load import synthesise
from safepool.workspace import Workspace

MARKER = ".safepool-demo"
DEMO_PERMIT = "DEMO-1"


def fresh_folder(path: Path) -> None:
    """Empty a previous demo workspace; refuse to touch any other non-empty folder."""
    if path.exists() and any(path.iterdir()):
        if not (path / MARKER).exists():
            raise SafepoolError(f"{path} exists and is not a demo workspace; choose another --workspace")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)


def run_demo(
    path: Path,
    *,
    persons: int,
    seed: int,
    progress: Callable[[str, str, int], None] | None = None,
) -> list[str]:
    notify = progress or (lambda stage, register, rows: None)
    fresh_folder(path)
    Workspace.init(path)
    (path / MARKER).write_text("made by `safepool demo`; the next demo run replaces this folder\n")
    registers = synthesise(path, persons=persons, seed=seed, progress=lambda stage: notify(stage, "synthetic Espoo", 0))
    notify("linked", "synthetic Espoo", 0)
    workspace = Workspace.open(path)
    checks = check_registers(workspace)
    failing = [c for c in checks if not c.ok]
    if failing:
        raise SafepoolError("register check failed: " + "; ".join(c.error or "; ".join(c.drift) for c in failing))
    scope = Scope(
        permit=DEMO_PERMIT,
        window=Window(start="2009Q1", end="2024Q4"),
        registers={register.name: "*" for register in registers},
    )
    built = build_pool(workspace, scope, progress=progress)
    linkage = built.linkage
    quarantined = sum(linkage.quarantined_rows_by_reason.values())
    return [
        f"Synthetic Espoo: {persons:,} persons, seed {seed}, {len(registers)} registers "
        f"({', '.join(sorted({r.source.kind.value for r in registers}))} sources) in {workspace.registers_dir}",
        f"Register check: {len(checks)} sources match their data dictionary; "
        f"{sum(c.rows or 0 for c in checks):,} rows in all",
        f"Pool for permit {DEMO_PERMIT}: {linkage.persons_total:,} pseudonymised persons, "
        f"{linkage.persons_linked_across_registers:,} linked across registers, built in {built.seconds:.1f} s",
        f"Quarantined in the steward zone: {quarantined:,} rows "
        f"({', '.join(f'{k} {v:,}' for k, v in linkage.quarantined_rows_by_reason.items())})",
        f"Pool (pseudonyms only): {built.path}",
        f"Linkage report: {built.path / 'linkage.json'}",
        f"Steward zone (keys, quarantine, planted truth): {workspace.steward_dir}",
    ]
