"""The analyst side of safepool has no code path to the steward zone.

Walks the package's imports (statically, including imports inside functions) from every
analyst-facing module and fails if any path reaches identity codes, keys or credentials.
"""

import ast
from functools import cache
from pathlib import Path

import safepool

PACKAGE_ROOT = Path(safepool.__file__).parent
STEWARD_ZONE = ("safepool.identity", "safepool.registers", "safepool.pool.build", "safepool.synth", "safepool.demo")
ANALYST_ZONE = ("safepool.pool.access", "safepool.study", "safepool.insight", "safepool.disclosure", "safepool.query",
                "safepool.reports", "safepool.web")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE_ROOT.rglob("*.py")}


@cache
def imported_names(path: Path) -> frozenset[str]:
    """Every module name a file imports (parsed once: each analyst module's walk meets the same files)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(names)
    return frozenset(found)


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    return {name for name in imported_names(path) if name in modules}


def reachable(start: str, modules: dict[str, Path]) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(imports_of(modules[name], modules))
        parent = name.rpartition(".")[0]
        if parent in modules:
            todo.append(parent)
    return seen


def in_zone(name: str, zone: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in zone)


def test_analyst_modules_cannot_reach_the_steward_zone():
    modules = all_modules()
    analyst = [name for name in modules if in_zone(name, ANALYST_ZONE)]
    assert "safepool.pool.access" in analyst
    for name in analyst:
        leaks = sorted(m for m in reachable(name, modules) if in_zone(m, STEWARD_ZONE))
        assert leaks == [], f"{name} reaches the steward zone through {leaks}"


def test_the_walker_does_see_steward_imports():
    modules = all_modules()
    assert "safepool.identity.keystore" in reachable("safepool.pool.build", modules)
