"""The registry of output kinds: one module per kind, each registered when this package loads.

Adding a kind is adding one module here that defines its dataclass and an `OutputKind` subclass
decorated with `@register` (see base.py for what a kind provides); the conformance suite
(tests/test_output_kinds.py) runs over every registered kind.
"""

from importlib import import_module
from pkgutil import iter_modules

from safepool.disclosure.kinds.base import (
    Boundary,
    Mitigated,
    NotRecheckable,
    OutputBase,
    OutputKind,
    Samples,
    kind_named,
    kind_of,
    register,
    registered,
)

_HELPERS = {"base", "tables"}

for _module in iter_modules(__path__):
    if _module.name not in _HELPERS and not _module.name.startswith("_"):
        import_module(f"{__name__}.{_module.name}")

__all__ = ["Boundary", "Mitigated", "NotRecheckable", "OutputBase", "OutputKind", "Samples", "kind_named", "kind_of",
           "register", "registered"]
