"""Loading YAML files into pydantic models with errors that name the field and its line.

Steward and analyst files (catalogue, scope, later permits and studies) are hand-written, so
each mistake is reported where the person made it rather than as one validation dump.
"""

from __future__ import annotations

import weakref
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from safepool.faults import Invalid

ModelT = TypeVar("ModelT", bound=BaseModel)


class _TextDatesLoader(yaml.CSafeLoader):
    """Leaves dates as text so that pydantic validates them and an impossible date gets a line.
    libyaml's parser (CSafeLoader): the pure-Python one took seconds per large catalogue, which the
    permit office reads on every check."""


_TextDatesLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class FileProblem(Invalid):
    """One or more problems in a hand-written file, each with its field and line."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        if len(problems) == 1:
            super().__init__(f"{path}: {problems[0]}")
        else:
            super().__init__(f"{path}: {len(problems)} problems:\n  " + "\n  ".join(problems))


def load_model(path: Path, model: type[ModelT]) -> ModelT:
    """Parse `path` as YAML and validate it as `model`."""
    return _parsed(path, _read_bytes(path), model)


def load_frozen_model(path: Path, model: type[ModelT]) -> ModelT:
    """`load_model` for a frozen model that is read again and again (the workspace's catalogue,
    on nearly every step of a session): parsed once per content of the file, so an edit is seen
    at once and an unchanged file costs one read."""
    return _parsed_once(path, _read_bytes(path), model)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise FileProblem(path, ["file not found"]) from None


def _parsed(path: Path, content: bytes, model: type[ModelT]) -> ModelT:
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileProblem(path, [f"not UTF-8 text (byte {exc.start})"]) from None
    return parse_model(text, model, path)


@lru_cache(maxsize=8)
def _parsed_once(path: Path, content: bytes, model: type[ModelT]) -> ModelT:
    if not model.model_config.get("frozen"):
        raise TypeError(f"{model.__name__} is not frozen: a shared parsed copy could be changed")
    return _parsed(path, content, model)


def parse_model(text: str, model: type[ModelT], path: Path) -> ModelT:
    try:
        root = yaml.compose(text, Loader=yaml.CSafeLoader)
        data = yaml.load(text, Loader=_TextDatesLoader)  # noqa: S506 - a CSafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise FileProblem(path, [f"{where}not valid YAML ({getattr(exc, 'problem', exc)})"]) from None

    if not isinstance(data, dict):
        raise FileProblem(path, ["line 1: expected a mapping of fields"])
    try:
        loaded = model.model_validate(data)
    except ValidationError as exc:
        raise FileProblem(path, [_describe(error, root) for error in exc.errors()]) from None
    _remember(loaded, path, root)
    return loaded


# Where each loaded model came from, so that a later check (e.g. a permit request checked
# against the workspace) can name the line of a field too. Kept beside the model, not in it, so
# that two equal models stay equal; forgotten when the model is.
_ORIGINS: dict[int, tuple[Path, yaml.Node | None]] = {}


def _remember(loaded: BaseModel, path: Path, root: yaml.Node | None) -> None:
    key = id(loaded)
    _ORIGINS[key] = (path, root)
    weakref.finalize(loaded, _ORIGINS.pop, key, None)


def loaded_from(loaded: BaseModel) -> Path | None:
    """The file a model was loaded from by `load_model`/`parse_model`, or None."""
    origin = _ORIGINS.get(id(loaded))
    return origin[0] if origin else None


def field_problem(loaded: BaseModel, location: tuple[Any, ...], message: str) -> str:
    """One problem found in a loaded model after loading, worded like the loading problems:
    "line N, field a.b: message" (without the line for a model not loaded from a file)."""
    origin = _ORIGINS.get(id(loaded))
    return _problem(origin[1] if origin else None, location, message)


def _describe(error: dict[str, Any], root: yaml.Node | None) -> str:
    return _problem(root, tuple(error["loc"]), error["msg"])


def _problem(root: yaml.Node | None, location: tuple[Any, ...], message: str) -> str:
    field = ".".join(str(part) for part in location) or "(file)"
    line = _line_of(root, location)
    where = f"line {line}, " if line is not None else ""
    return f"{where}field {field}: {message}"


def _line_of(node: yaml.Node | None, location: tuple[Any, ...]) -> int | None:
    """Follow `location` through the composed YAML tree to the deepest node that exists."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in location:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    child = value
                    line = key.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


def dump_model(model: BaseModel, path: Path) -> None:
    """Write atomically so a crash never leaves a half-written configuration."""
    data = model.model_dump(mode="json", exclude_none=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    tmp.replace(path)
