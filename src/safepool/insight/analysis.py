"""What every customer-information analysis provides, so that one runner publishes and reports them all.

An analysis (service paths, need prediction, customer segments) reads the pool through the
features layer and returns statistical outputs, never rows: the runner publishes them as one
release through the output kinds registry (checked and mitigated under the workspace policy) and
writes the report from the outputs as checked. The report's text around the outputs comes from
the analysis's settings, never from values read from the data; the one console line of a run is
made from the checked outputs only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import duckdb
from pydantic import BaseModel, ConfigDict

from safepool.dictionary import Variable
from safepool.disclosure.kinds.base import Mitigated
from safepool.disclosure.rules import DisclosureRules
from safepool.features.compile import FeatureSet
from safepool.insight.differencing import PersonsBehind


class Settings(BaseModel):
    """An analysis's own part of an insight file; unknown fields are mistakes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class InsightContext:
    """What an analysis may use: the pool opened for analysis under the permit (only the tables
    and columns the analysis declared), the features layer and the pool's data dictionary."""

    con: duckdb.DuckDBPyConnection
    features: FeatureSet
    dictionary: Mapping[str, Mapping[str, Variable]]
    policy: DisclosureRules  # the workspace's: e.g. rare paths are merged below its minimum frequency
    seed: int
    say: Callable[[str], None] = lambda _stage: None
    release: Callable[[], None] = lambda: None  # the runner's: closes the pool it opened (see done_reading)

    def done_reading(self) -> None:
        """Called by an analysis once it has read all it needs from the pool: the runner closes the
        pool then, and its engine gives back the memory its queries held (hundreds of MB at 300,000
        persons) before the models are fitted. A caller keeping its own connection releases nothing."""
        self.release()


@dataclass(frozen=True)
class Section:
    """A part of the report: a heading, text written from the settings, and the outputs under it."""

    heading: str
    text: str
    outputs: list[str] = field(default_factory=list)


@dataclass
class Findings:
    """An analysis's result: outputs to publish as one release, the report's sections, and the
    persons behind each table it shows (checked in the differencing ledger before anything is
    recorded: see `safepool.insight.differencing`)."""

    outputs: dict[str, Any]
    sections: list[Section]
    persons: dict[str, PersonsBehind]
    # outputs made from the others as their checks leave them (the register's `derived`)
    derived: dict[str, Callable[[Mapping[str, Mitigated]], Any]] = field(default_factory=dict)


class Analysis(ABC):
    """One kind of analysis; a subclass names its `kind`, its `Settings` model, and computes (a
    kind that leaves out a method cannot be made, rather than failing halfway through a run)."""

    kind: ClassVar[str]
    settings_model: ClassVar[type[Settings]]

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @abstractmethod
    def tables(self, features: FeatureSet) -> dict[str, list[str]]:
        """The pool tables and columns the analysis reads, for the permit check before the pool opens."""

    @abstractmethod
    def features_used(self) -> list[str]:
        """The features of the features layer the analysis names, whose definitions the report shows."""

    @abstractmethod
    def run(self, context: InsightContext) -> Findings:
        """The outputs and sections of the analysis."""

    @abstractmethod
    def summary(self, checked: Mapping[str, Mitigated]) -> str:
        """One line for the console, from the outputs as checked (a suppressed cell stays unsaid)."""


ANALYSES: dict[str, type[Analysis]] = {}


def register_analysis(cls: type[Analysis]) -> type[Analysis]:
    """Make an analysis kind available to insight files (`analysis: {kind: ...}`)."""
    ANALYSES[cls.kind] = cls
    return cls
