"""Typed errors (issue 11, point 2): every error the package raises for a person is one of the
five kinds an interface maps (NotFound, Refused, Invalid, Conflict, Unavailable), so that the
command line gives each its own exit code and a later HTTP layer its status code; nothing ends in
the catch-all code 8."""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
from pathlib import Path

import pytest

import safepool
from safepool.cli.common import EXIT_CODES, exit_code
from safepool.errors import SafepoolError, SchemaDrift, SourceError
from safepool.faults import Conflict, Invalid, NotFound, Refused, Unavailable

KINDS = (NotFound, Refused, Invalid, Conflict, Unavailable)
ROOT = Path(safepool.__file__).parent
CATCH_ALL = EXIT_CODES[-1][1]


@functools.cache
def raised_classes() -> list[tuple[str, int, type]]:
    """(module file, line, class) of every `raise Name(...)` / `raise module.Name(...)` in the
    package whose Name is an exception class the module can see."""
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        if "migrations" in path.parts:  # Alembic's scripts, run by Alembic only
            continue
        relative = path.relative_to(ROOT.parent).with_suffix("")
        name = ".".join(relative.parts).removesuffix(".__init__")
        try:
            module = importlib.import_module(name)
        except ImportError:  # an optional extra (none today): nothing of it can reach a person
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Raise) or not isinstance(node.exc, ast.Call):
                continue
            func = node.exc.func
            parts = []
            while isinstance(func, ast.Attribute):
                parts.insert(0, func.attr)
                func = func.value
            if not isinstance(func, ast.Name) or func.id == "self":
                continue
            target = getattr(module, func.id, None)
            for part in parts:
                target = getattr(target, part, None)
            if inspect.isclass(target) and issubclass(target, BaseException):
                found.append((str(path.relative_to(ROOT)), node.lineno, target))
    return found


def test_every_error_raised_for_a_person_is_one_of_the_five_kinds():
    raised = raised_classes()
    assert len(raised) > 100  # the scan does see the package's raises
    untyped = sorted({f"{where}:{line} {cls.__name__}" for where, line, cls in raised
                      if issubclass(cls, SafepoolError) and not issubclass(cls, KINDS)})
    assert untyped == []


def test_every_error_class_of_the_package_is_typed_or_only_a_base():
    """A SafepoolError subclass that is not itself typed may only be a base whose raised
    subclasses all are (the key store's, the policy's)."""
    raised = {cls for _, _, cls in raised_classes()}
    seen: list[type] = []
    stack = [SafepoolError]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("safepool.") and sub not in seen:
                seen.append(sub)
                stack.append(sub)
    bare = [cls for cls in seen if not issubclass(cls, KINDS)]
    assert not [cls.__name__ for cls in bare if cls in raised]
    assert all(all(issubclass(sub, KINDS) for sub in cls.__subclasses__()) for cls in bare)


@pytest.mark.parametrize("error, kind", [
    (SourceError("payments", "csv file payments.csv does not exist"), Unavailable),
    (SchemaDrift("payments", ["column summa (variable amount) is missing"]), Unavailable),
])
def test_a_source_that_cannot_be_read_is_unavailable(error, kind):
    assert isinstance(error, kind) and exit_code(error) != CATCH_ALL


def test_the_key_stores_errors_are_typed(tmp_path, monkeypatch):
    from safepool.identity.keystore import PASSPHRASE_ENV, KeyStore, KeyStoreError

    store = KeyStore(tmp_path / "keys", tmp_path / "no-passphrase-file")
    monkeypatch.setenv(PASSPHRASE_ENV, "the right passphrase")
    store.create("P-1")
    cases = [
        (lambda: store.get("P-2"), NotFound, "no key for permit P-2"),
        (lambda: store.create("P-1"), Conflict, "exists already"),
        (lambda: store.get("../P-1"), Invalid, "holds only"),
    ]
    for call, kind, words in cases:
        with pytest.raises(kind, match=words) as caught:
            call()
        assert isinstance(caught.value, KeyStoreError) and exit_code(caught.value) != CATCH_ALL
    monkeypatch.setenv(PASSPHRASE_ENV, "a wrong passphrase")
    with pytest.raises(Unavailable, match="wrong"):
        store.get("P-1")
