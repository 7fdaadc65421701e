"""The features in the variables browser: what a pool's variables let an analysis ask for."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

from safepool.features.compile import FeatureSet, load_features


def feature_lines(tables: Mapping[str, Mapping[str, object]], width: int = 80,
                  features: FeatureSet | None = None) -> list[str]:
    """The features whose every source variable is in `tables` ({table: {variable: ...}}), each
    with its unit, description, definition and sources, as lines no wider than `width` (at most
    80: prose reads best there however wide the terminal)."""
    width = min(width, 80)
    features = features or load_features()
    present = {table: set(variables) for table, variables in tables.items()}
    names = features.available(present)

    def wrapped(text: str, indent: str, hanging: str = "") -> list[str]:
        return textwrap.wrap(text, width=width, initial_indent=indent, subsequent_indent=indent + hanging,
                             break_long_words=True, break_on_hyphens=False) or [indent]

    lines = wrapped(f"Features ({len(names)} of {len(features.names)} defined in the features configuration "
                    "have all their sources in this pool):", "")
    for name in names:
        doc = features.describe(name)
        lines += wrapped(f"{doc.name} ({doc.kind}, {doc.unit}): {doc.description}", "  ", "    ")
        lines += wrapped(doc.definition, "      ")
        lines += wrapped("from: " + ", ".join(doc.sources), "      ", "      ")
    return lines
