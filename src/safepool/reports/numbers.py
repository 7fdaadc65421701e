"""Numbers written for people: effects with a sign in their unit, intervals, p-values, counts, shares.

Never scientific notation; a minus sign that is a minus sign; p-values below 0.001 as "< 0.001";
a share's effect in percentage points with one decimal. The numbers are the shown cells of a
checked output (already at the policy's precision): formatting scales and rounds them for reading,
it never adds precision the policy did not release.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

MINUS = "−"
DASH = "–"
MAX_DECIMALS = 3


def is_blank(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)


def as_float(value: object) -> float | None:
    """A shown cell as a number (numbers carried as text too), or None when it is not one."""
    if is_blank(value) or isinstance(value, (bool, np.bool_)):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def fixed(value: float, decimals: int, signed: bool = False) -> str:
    """`value` with `decimals` decimals and thousands separated; zero never carries a sign."""
    decimals = max(0, min(decimals, MAX_DECIMALS + 2))
    text = f"{abs(value):,.{decimals}f}"
    if float(text.replace(",", "")) == 0:
        return text
    if value < 0:
        return MINUS + text
    return "+" + text if signed else text


def decimals_for(half_widths: Iterable[float], most: int = MAX_DECIMALS) -> int:
    """Decimals that show an interval's half-width with two significant digits (at most `most`)."""
    widths = sorted(w for w in half_widths if w is not None and math.isfinite(w) and w > 0)
    if not widths:
        return min(2, most)
    typical = widths[len(widths) // 2]
    return max(0, min(most, 1 - math.floor(math.log10(typical))))


def number(value: object, decimals: int = 2, signed: bool = False, factor: float = 1.0) -> str:
    """A shown number for people, or a dash when there is none."""
    x = as_float(value)
    return DASH if x is None else fixed(x * factor, decimals, signed)


def interval(low: object, high: object, decimals: int, factor: float = 1.0) -> str:
    lo, hi = as_float(low), as_float(high)
    if lo is None or hi is None:
        return DASH
    return f"{fixed(lo * factor, decimals, True)} to {fixed(hi * factor, decimals, True)}"


def p_value(value: object) -> str:
    x = as_float(value)
    if x is None:
        return DASH
    return "< 0.001" if x < 0.001 else f"{x:.3f}"


def count(value: object) -> str:
    x = as_float(value)
    return DASH if x is None else f"{round(x):,}"


def share(part: float, whole: float) -> str:
    """A share of persons in whole per cent ("99%"); "< 1%" and "> 99%" rather than 0% or 100% of a part."""
    if whole <= 0:
        return DASH
    value = 100 * part / whole
    if 0 < value < 1:
        return "< 1%"
    if 99 < value < 100:
        return "> 99%" if round(value) == 100 else f"{value:.0f}%"
    return f"{value:.0f}%"


def short(value: float) -> str:
    """A setting such as a limit (0.1, 2) with no trailing zeros."""
    text = fixed(value, MAX_DECIMALS)
    return text.rstrip("0").rstrip(".") if "." in text else text


def plain(value: object) -> str:
    """Any shown number without a unit (a variance ratio, an E-value), never in scientific notation."""
    x = as_float(value)
    if x is None:
        return DASH if is_blank(value) else str(value)
    size = abs(x)
    decimals = 0 if size >= 1000 else 1 if size >= 100 else 2 if size >= 10 else 3
    return fixed(x, decimals)
