"""Loading YAML files into pydantic models with errors that name the field and its line.

Steward and analyst files (catalogue, scope, later permits and studies) are hand-written, so
each mistake is reported where the person made it rather than as one validation dump.

A file is handed over by whoever runs safepool and may be any file the process can read, so a
message echoes no text of the file but the names the model declares: a field is named by its
line, and by its name only when that is a plain name (`PLAIN_NAME`, e.g. a typo such as
`matchng`); a key that is not one (`root:*:20228:...`, an identity code) is "an unknown field"
of its line, and a value a validator's message quotes is shown only when it is a plain name, a
period or a short number (`2009Q5`, `0.25`), else replaced by "(a value of the file)". YAML
syntax errors quote no text of the file either.
"""

from __future__ import annotations

import os
import re
import stat
import weakref
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from safepool.faults import Invalid

ModelT = TypeVar("ModelT", bound=BaseModel)

# A key of the file shown in a message: a plain identifier, as every field a model declares is.
PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,39}")
# A value of the file a validator's message may quote: a plain name, a period or date
# (2009Q1, 2023-01, 2023-01-31) or a short number; anything else is replaced.
_PLAIN_VALUE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,39}|\d{4}(?:Q\d|-?\d{1,2}(?:-?\d{1,2})?)?"
                          r"|[-+]?\d{1,6}(?:\.\d{1,6})?|[<>=!]{1,2}")
HIDDEN_VALUE = "(a value of the file)"
MAX_FILE_BYTES = 16 * 2**20  # a hand-written file (catalogue, permit, study, request) is far smaller
HIDDEN_KEY = "(a key not shown)"


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
    """The file's bytes, if it is a regular file of at most MAX_FILE_BYTES: a device (/dev/zero),
    a pipe or a directory handed over as a file is refused before anything is read (opened without
    waiting, so that a pipe with no writer does not hang the reader)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise FileProblem(path, ["file not found"]) from None
    except PermissionError:
        raise FileProblem(path, ["the file cannot be read (permission denied)"]) from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        raise FileProblem(path, ["a folder, not a file" if stat.S_ISDIR(mode) else
                                 "not a regular file (a device, pipe or socket)"])
    with os.fdopen(descriptor, "rb") as handle:
        content = handle.read(MAX_FILE_BYTES + 1)
    if len(content) > MAX_FILE_BYTES:
        raise FileProblem(path, [f"larger than {MAX_FILE_BYTES // 2**20} MB, more than a hand-written file holds"])
    return content


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
        problem = _without_quoted_text(str(getattr(exc, "problem", None) or type(exc).__name__))
        raise FileProblem(path, [f"{where}not valid YAML ({problem})"]) from None

    if not isinstance(data, dict):
        raise FileProblem(path, ["line 1: expected a mapping of fields"])
    try:
        loaded = model.model_validate(data)
    except ValidationError as exc:
        raise FileProblem(path, [_describe(error, root, text) for error in exc.errors()]) from None
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


def _describe(error: dict[str, Any], root: yaml.Node | None, text: str) -> str:
    location = tuple(error["loc"])
    message = _without_values(str(error["msg"]), error.get("input"))
    if error.get("type") == "extra_forbidden" and location and not _plain_name(location[-1]):
        line = _line_of(root, location)
        where = f"line {line}, " if line is not None else ""
        within = f" in {_field_name(root, location[:-1], text)}" if location[:-1] else ""
        return f"{where}an unknown field{within} (its name is not shown, not being a plain name): {message}"
    return _problem(root, location, message, text)


def _problem(root: yaml.Node | None, location: tuple[Any, ...], message: str, text: str | None = None) -> str:
    field = _field_name(root, location, text) or "(file)"
    line = _line_of(root, location)
    where = f"line {line}, " if line is not None else ""
    return f"{where}field {field}: {message}"


def _plain_name(part: Any) -> bool:
    return isinstance(part, str) and PLAIN_NAME.fullmatch(part) is not None


def _field_name(root: yaml.Node | None, location: tuple[Any, ...], text: str | None) -> str:
    """`location` as "a.b.0.c", each part that is a key read from the file and not a plain name
    replaced: a key of a mapping in the file, or (where the tree does not reach, e.g. after a
    validator reshaped a value) a part whose text the file holds. Parts pydantic adds (union
    members such as `function-after[...]`) are shown."""
    keys = _keys_along(root, location)
    shown = []
    for index, part in enumerate(location):
        if _plain_name(part) or (isinstance(part, int) and not keys[index]):
            shown.append(str(part))
        elif keys[index] or text is None or str(part) in text:
            shown.append(HIDDEN_KEY)
        else:
            shown.append(str(part))
    return ".".join(shown)


def _keys_along(node: yaml.Node | None, location: tuple[Any, ...]) -> list[bool]:
    """For each part of `location`: whether it is a key of a mapping of the file."""
    found = [False] * len(location)
    for index, part in enumerate(location):
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    child, found[index] = value, True
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node = child
    return found


def _without_values(message: str, given: Any) -> str:
    """`message` with every text of the value it is about (`given`, the input pydantic checked)
    that it quotes and that is not a plain value replaced."""
    texts: set[str] = set()
    _texts_of(given, texts, budget=[2000])
    quoted = sorted((piece for piece in texts if piece in message and _PLAIN_VALUE.fullmatch(piece) is None),
                    key=len, reverse=True)
    if not quoted:
        return message
    return re.sub("|".join(re.escape(piece) for piece in quoted), HIDDEN_VALUE, message)


def _texts_of(value: Any, into: set[str], budget: list[int]) -> None:
    """Every string (and its whitespace- or comma-separated pieces) within `value`, keys too."""
    if budget[0] <= 0:
        return
    budget[0] -= 1
    if isinstance(value, str):
        for piece in (value, value.strip(), *re.split(r"[\s,;]+", value)):
            if len(piece) > 1:
                into.add(piece)
    elif isinstance(value, dict):
        for key, item in value.items():
            _texts_of(key, into, budget)
            _texts_of(item, into, budget)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            _texts_of(item, into, budget)


_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"")


def _without_quoted_text(problem: str) -> str:
    """A YAML parser's problem without the text of the file it may quote (a tag, an alias, a
    scalar); one character (as in "found character '\\t'") is kept."""

    def hide(match: re.Match[str]) -> str:
        quoted = match.group(1) if match.group(1) is not None else match.group(2)
        if len(quoted) <= 1 or re.fullmatch(r"\\(?:.|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4})", quoted):
            return match.group(0)
        return HIDDEN_VALUE if PLAIN_NAME.fullmatch(quoted) is None else match.group(0)

    return _QUOTED.sub(hide, problem)


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
