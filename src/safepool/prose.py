"""Pieces of running text that messages and printed summaries share."""

from __future__ import annotations

from collections.abc import Sequence


def listed(words: Sequence[str]) -> str:
    """Words as a sentence lists them: 'a', 'a and b', 'a, b and c' ('' for none)."""
    return " and ".join(filter(None, [", ".join(words[:-1]), words[-1]])) if words else ""
