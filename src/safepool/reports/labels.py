"""What the report calls things: labels and units for the study's outcomes, covariates and subgroups.

A report never prints a column name. When the study runs, `report_context` reads the pool's data
dictionary (the snapshot in its manifest, pool names only) and the study's vocabulary (the cohort's
covariates, outcomes and subgroups, each made of features of the features layer, which say what they
count and in which unit) and writes a plain label book into the report document's settings: for
each outcome its title, unit and scale, for each matcher column its label and unit, for each
subgroup its title and the label of each level. Units of the registers' variables and the labels
of their codes come from the dictionary (EUR, "employed", "Arabic", "A1 beginner"); short titles of
the outcomes are written here, once. The book also says which of the pool's registers are
synthetic, so that every page can say so.

`Labels` reads the book back when the report is drawn. Whatever the book does not name (a study
file from another vocabulary) falls back to words made from the name, never the name itself.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safepool.dictionary import Variable
from safepool.governance.form import mask_identity_codes

if TYPE_CHECKING:
    from safepool.study.studyfile import StudyFile

SHARE, AMOUNT, COUNT = "share", "amount", "count"
PERCENTAGE_POINTS = "percentage points"
ENTRY = "entry"

# Titles of the study's measures (safepool.study.cohort.MEASURES); how each is measured, and its unit,
# come from the cohort vocabulary and the dictionary.
MEASURE_TITLES = {
    "employed": "Employment rate",
    "unemployed": "Unemployment rate",
    "earnings": "Earnings",
    "benefits": "Kela benefits",
    "social_assistance": "Social assistance",
    "employment_services": "Employment-service events",
    "social_health_visits": "Social and health service visits",
}
# Matcher columns that are arithmetic on a feature rather than the feature itself.
COVARIATE_TITLES = {
    "age": ("Age", "years"),
    "age_squared": ("Age, (age − 40)² / 100", ""),
    "years_since_immigration": ("Years since immigration", "years"),
    "immigrated_within_5y": ("Immigrated less than 5 years before", ""),
}
# Columns made from another column of the same covariate: the methods name the covariate once.
SECOND_COLUMNS = {"age_squared", "immigrated_within_5y"}
# Titles of categorical covariates and subgroups (their levels are labelled from the dictionary).
CATEGORICAL = {"permit_grounds": "Residence permit grounds", "native_language": "Native language",
               "education": "Highest degree completed", "sex": "Sex", "age_group": "Age group"}
# Levels that are no code of a register: a feature's value where the variable is empty, the study's
# level for a subgroup value that is missing.
EXTRA_LEVELS = {"none": "none", "unknown": "not recorded", "(missing)": "not recorded"}


def report_context(pool_dir: Path, study: StudyFile) -> dict[str, Any]:
    """What the study report needs besides its checked tables, read from the pool under the permit:
    the label book (from the pool's data dictionary) and the pool's synthetic registers."""
    from safepool.pool.access import dictionary, manifest

    synthetic = manifest(pool_dir, study.permit).get("synthetic") or []
    return {"labels": study_labels(study, dictionary(pool_dir, study.permit)),
            "synthetic": sorted(str(name) for name in synthetic)}


def study_labels(study: StudyFile, dictionary: Mapping[str, Mapping[str, Variable]]) -> dict[str, Any]:
    """The label book of one study (plain data, for a document's settings)."""
    from safepool.study.cohort import COVARIATES, FEATURES, OUTCOMES, SUBGROUPS, TREATMENT_SUBGROUP

    book = _Book(dictionary, FEATURES)
    outcomes = {name: book.outcome(OUTCOMES[name].measure) for name in study.outcomes}
    covariates: dict[str, dict[str, Any]] = {}
    named: dict[str, str] = {}
    for name in study.covariates:
        covariate = COVARIATES[name]
        if covariate.categorical:
            for column in covariate.columns:
                title, codes = book.categorical(column)
                for code, label in codes.items():
                    covariates[f"{column}_{code}".replace(" ", "_")] = {"label": f"{title}: {label}", "unit": ""}
                named[name] = title
            continue
        for column, select in covariate.select.items():
            covariates[column] = book.covariate(column, select)
        named[name] = "; ".join(covariates[column]["label"] for column in covariate.select
                                if column not in SECOND_COLUMNS)
    subgroups = {}
    for name in study.subgroups:
        if name.startswith(TREATMENT_SUBGROUP):
            subgroups[name] = book.treatment_subgroup(study.treatment.table, name.removeprefix(TREATMENT_SUBGROUP))
        elif name in SUBGROUPS:
            title, codes = book.categorical(SUBGROUPS[name], title_of=name)
            subgroups[name] = {"title": title, "levels": codes}
    inference = study.inference
    return {"outcomes": outcomes, "covariates": covariates, "study_covariates": named, "subgroups": subgroups,
            "treatment": study.treatment.label,
            "balance": {"smd_limit": study.balance.smd_limit, "variance_ratio": list(study.balance.variance_ratio)},
            "ci_level": round(100 * (1 - inference.alpha)),
            "exact": {column: covariates.get(column, {}).get("label", words(column)) for column in study.matching.exact}}


class _Book:
    """Labels from the features layer (what each feature is, its unit) and the pool's dictionary (the
    units of the registers' variables, the labels of their codes)."""

    def __init__(self, dictionary: Mapping[str, Mapping[str, Variable]], features: Any) -> None:
        self.dictionary = dictionary
        self.features = features

    def variable(self, source: str) -> Variable | None:
        """A dictionary variable named as table.variable."""
        table, _, name = source.partition(".")
        return self.dictionary.get(table, {}).get(name)

    def code_label(self, source: str, code: object) -> str:
        variable = self.variable(source)
        return (variable.codes or {}).get(str(code), str(code)) if variable is not None else str(code)

    def measure(self, name: str) -> dict[str, Any]:
        """A quarterly feature: a share of persons with some codes (its unit "indicator"), a sum of
        a numeric variable (the variable's unit from the dictionary), or a count of rows."""
        spec = self.features.spec.quarterly[name]
        title = MEASURE_TITLES.get(name) or _title(spec.description)
        if spec.unit == "indicator":
            (variable, codes), *_ = (spec.where or {None: []}).items()
            source = f"{spec.table}.{variable}"
            labels = " or ".join(self.code_label(source, code) for code in codes)
            what = self.variable(source)
            return {"title": title, "scale": SHARE, "unit": "%", "code": labels or title.lower(),
                    "variable": _title(what.description).lower() if what is not None else None}
        if spec.aggregate == "sum":
            variable = self.variable(f"{spec.table}.{spec.of}")
            return {"title": title, "scale": AMOUNT, "unit": (variable.unit if variable else None) or spec.unit}
        return {"title": title, "scale": COUNT, "unit": spec.unit}

    def outcome(self, measure: str) -> dict[str, Any]:
        how = self.measure(measure)
        if how["scale"] == SHARE:
            definition = (f"share of persons whose {how['variable']} was “{how['code']}”" if how["variable"]
                          else f"share of persons: {how['code']}")
            return {"label": how["title"], "unit": PERCENTAGE_POINTS, "level_unit": "%", "scale": SHARE,
                    "definition": definition}
        unit = how["unit"]
        return {"label": how["title"], "unit": f"{unit} per quarter" if unit else "per quarter",
                "level_unit": unit, "scale": how["scale"],
                "definition": self.features.spec.quarterly[measure].description}

    def covariate(self, column: str, select: str) -> dict[str, Any]:
        """A matcher column: a window of a quarterly feature, a flag for a code, or a feature's value."""
        if column in COVARIATE_TITLES:
            label, unit = COVARIATE_TITLES[column]
            return {"label": label, "unit": unit}
        used = [name for name in self.features.names if re.search(rf"\b{name}\b", select)]
        if len(used) != 1:
            return {"label": words(column), "unit": ""}
        feature, kind = used[0], self.features.kind(used[0])
        if kind == "windows":
            measure, quarters = self.features.window_of(feature)
            how = self.measure(measure)
            window = f"in the {quarters} quarters before {ENTRY}"
            if how["scale"] == SHARE:
                label, unit = f"Quarters {how['code']} {window}", "quarters"
            else:
                label, unit = f"{how['title']} {window}", how["unit"]
            if select.strip().startswith("ln("):
                return {"label": f"{label}, log(1 + thousand {unit or 'units'})", "unit": ""}
            return {"label": label, "unit": unit}
        spec = self.features.spec.attributes.get(feature) if kind == "attributes" else None
        if spec is not None and spec.equals:
            (variable, code), *_ = spec.equals.items()
            source = f"{self.features.person_table}.{variable}"
            what = self.variable(source)
            title = _title(what.description) if what is not None else words(variable)
            return {"label": f"{title}: {self.code_label(source, code)}", "unit": ""}
        doc = self.features.describe(feature)
        unit = "" if doc.unit in ("indicator", "code", "label") else doc.unit
        return {"label": _title(doc.description), "unit": unit}

    def categorical(self, feature: str, title_of: str | None = None) -> tuple[str, dict[str, str]]:
        """A categorical feature's title and the label of each of its levels: the codes of the register
        variable it reads as the dictionary labels them, the labels of a derived feature's bins or
        codes, and the value it takes where the variable is empty."""
        name = title_of or feature
        title = CATEGORICAL.get(name)
        try:
            doc = self.features.describe(feature)
        except Exception:  # not a feature: words made from its name
            return title or words(name), {}
        kind = self.features.kind(feature)
        spec = getattr(self.features.spec, kind).get(feature)
        codes: dict[str, str] = {}
        if kind == "derived":
            if getattr(spec, "bins", None) is not None:
                codes = {str(label): str(label) for label in spec.bins.labels}
            elif getattr(spec, "codes", None) is not None:
                codes = {str(label): str(label) for label in [*spec.codes.map.values(), spec.codes.other]}
        else:
            for source in doc.sources:
                variable = self.variable(source)
                if variable is not None and variable.codes:
                    codes = dict(variable.codes)
                    break
        missing = getattr(spec, "missing", None)
        if missing is not None and str(missing) not in codes:
            codes[str(missing)] = EXTRA_LEVELS.get(str(missing), str(missing))
        return title or _title(doc.description), codes

    def treatment_subgroup(self, table: str, column: str) -> dict[str, Any]:
        variable = self.variable(f"{table}.{column}")
        if variable is None:
            return {"title": words(column), "levels": {}}
        return {"title": _title(variable.description), "levels": dict(variable.codes or {})}


@dataclass(frozen=True)
class Outcome:
    """An outcome as the report writes it."""

    name: str
    label: str
    unit: str  # of an effect: "percentage points", "EUR per quarter"
    level_unit: str  # of a mean: "%", "EUR"
    scale: str  # share, amount or count
    definition: str

    @property
    def heading(self) -> str:
        return f"{self.label} ({self.unit})" if self.unit else self.label

    @property
    def short_unit(self) -> str:
        return "pp" if self.unit == PERCENTAGE_POINTS else self.unit

    def factor(self) -> float:
        """What a shown number is multiplied by before it is written (a share as a percentage)."""
        return 100.0 if self.scale == SHARE else 1.0


class Labels:
    """The label book of one report, with a fallback for every name it does not hold."""

    def __init__(self, book: Mapping[str, Any] | None = None) -> None:
        self.book = book if isinstance(book, Mapping) else {}

    def _part(self, name: str) -> Mapping[str, Any]:
        part = self.book.get(name)
        return part if isinstance(part, Mapping) else {}

    def outcome(self, name: str, binary: bool | None = None) -> Outcome:
        entry = self._part("outcomes").get(name)
        if isinstance(entry, Mapping):
            return Outcome(name, _text(entry.get("label"), words(name)), _text(entry.get("unit"), ""),
                           _text(entry.get("level_unit"), ""), _text(entry.get("scale"), AMOUNT),
                           _text(entry.get("definition"), ""))
        if binary:
            return Outcome(name, words(name), PERCENTAGE_POINTS, "%", SHARE, "")
        return Outcome(name, words(name), "", "", AMOUNT, "")

    def covariate(self, column: str) -> str:
        entry = self._part("covariates").get(column)
        if isinstance(entry, Mapping):
            label, unit = _text(entry.get("label"), words(column)), _text(entry.get("unit"), "")
            return f"{label} ({unit})" if unit and unit not in label else label
        return words(column)

    def subgroup(self, name: str) -> str:
        entry = self._part("subgroups").get(name)
        return _text(entry.get("title"), words(name)) if isinstance(entry, Mapping) else words(name)

    def level(self, subgroup: str, level: str) -> str:
        entry = self._part("subgroups").get(subgroup)
        levels = entry.get("levels") if isinstance(entry, Mapping) else None
        if isinstance(levels, Mapping) and level in levels:
            return _text(levels[level], level)
        return EXTRA_LEVELS.get(level, level.replace("_", " "))

    def study_covariates(self) -> list[str] | None:
        named = self._part("study_covariates")
        return [_text(label, words(name)) for name, label in named.items()] or None

    def exact(self) -> list[str] | None:
        named = self._part("exact")
        return [_text(label, words(name)) for name, label in named.items()] or None

    @property
    def treatment(self) -> str:
        return _text(self.book.get("treatment"), "entry")

    @property
    def smd_limit(self) -> float | None:
        value = self._part("balance").get("smd_limit")
        return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None

    @property
    def variance_ratio(self) -> tuple[float, float] | None:
        value = self._part("balance").get("variance_ratio")
        if isinstance(value, Sequence) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
            return float(value[0]), float(value[1])
        return None

    @property
    def ci_level(self) -> int | None:
        value = self.book.get("ci_level")
        return int(value) if isinstance(value, (int, float)) and 50 <= value < 100 else None


def words(name: str) -> str:
    """A name as words, when nothing better is known: no underscores, no dots, a capital first."""
    text = mask_identity_codes(str(name)).replace("treatment.", "").replace("_", " ").replace(".", " ").strip()
    return text[:1].upper() + text[1:]


def _title(description: str) -> str:
    """A dictionary description as a label: the part before its list of codes, capitalised, without
    a note on the code list it uses."""
    head = re.split(r":|;| \(\w+ = ", description, maxsplit=1)[0].strip().rstrip(",")
    head = re.sub(r"\s*\([^)]*\bcodes?\)", "", head)
    return head[:1].upper() + head[1:]


def _text(value: object, default: str) -> str:
    return mask_identity_codes(value) if isinstance(value, str) and value else default
