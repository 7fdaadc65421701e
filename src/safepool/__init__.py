"""safepool: a secure virtual data pool for register-based studies.

    import safepool
    session = safepool.connect("WORKSPACE", user="NAME")   # password: SAFEPOOL_PASSWORD or a prompt
    session.permit("PERMIT").variables()

`connect` and `Session` come from safepool.session, the one way in. They are loaded when first
asked for, so that importing an analyst-side module (which imports this package) does not load
the Session and, through it, the steward zone.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["connect", "Session"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("safepool.session"), name)
    raise AttributeError(f"module 'safepool' has no attribute {name!r}")
