"""Watching whether Python's cycle collector runs while some work is done."""

from __future__ import annotations

import gc

import pytest


def collector_states(monkeypatch: pytest.MonkeyPatch, owner: object, method: str) -> list[bool]:
    """`owner.method` patched to note, at each call, whether the cycle collector is on; the notes."""
    during: list[bool] = []
    real = getattr(owner, method)

    def watched(self, *args, **kwargs):
        during.append(gc.isenabled())
        return real(self, *args, **kwargs)

    monkeypatch.setattr(owner, method, watched)
    return during
