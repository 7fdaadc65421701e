"""What the permit office needs to know of the workspace's register catalogue, read without the
steward zone: each register's name, its holder, its variables (the data dictionary) and the years
its time variables cover.

The catalogue itself (`safepool.registers.catalogue`) belongs to the steward zone, which the
analyst's side may not import; the permit office is imported from there, so it reads the same
file (`safepool.yaml`) through this narrow view instead. Only the fields below are read; the
steward's side validates the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from safepool.dictionary import Variable
from safepool.yaml_files import load_model, parse_model

CATALOGUE_FILE = "safepool.yaml"  # safepool.workspace.CONFIG_NAME


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Time(_Lenient):
    variable: str
    end_variable: str | None = None


class _Register(_Lenient):
    name: str
    holder: str = ""
    time: _Time | None = None
    variables: list[Variable]


class _Catalogue(_Lenient):
    registers: list[_Register] = []


@dataclass(frozen=True)
class RegisterView:
    name: str
    variables: frozenset[str]
    years: tuple[int, int] | None  # the years its time variables cover; None: not a time series
    holder: str = ""  # the register holder, as the catalogue names it


@dataclass(frozen=True)
class CatalogueView:
    registers: dict[str, RegisterView]


def read_catalogue(workspace_root: Path) -> CatalogueView | None:
    """The catalogue of the workspace at `workspace_root`; None when it has none (or lists no
    register yet): then there is nothing to check a permit's registers against."""
    path = workspace_root / CATALOGUE_FILE
    if not path.is_file():
        return None
    return _view_of(path, path.read_bytes())


@lru_cache(maxsize=4)
def _view_of(path: Path, content: bytes) -> CatalogueView | None:
    """The view of one content of the catalogue, parsed once: the permit office reads the
    catalogue on every check of a permit (about 140 times in one demo)."""
    try:
        catalogue = parse_model(content.decode("utf-8"), _Catalogue, path)
    except UnicodeDecodeError:
        catalogue = load_model(path, _Catalogue)  # raises the problem as it is worded for every file
    if not catalogue.registers:
        return None
    return CatalogueView({register.name: _view(register) for register in catalogue.registers})


def _view(register: _Register) -> RegisterView:
    by_name = {variable.name: variable for variable in register.variables}
    spans = []
    if register.time is not None:
        for name in (register.time.variable, register.time.end_variable):
            variable = by_name.get(name) if name else None
            if variable is not None and variable.years is not None:
                spans.append(variable.years)
    years = (min(first for first, _ in spans), max(last for _, last in spans)) if spans else None
    return RegisterView(register.name, frozenset(by_name), years, register.holder)
