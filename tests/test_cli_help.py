"""Every command's help reads well at 80 columns: its description is one set of wrapped
paragraphs (a line of the source is not a line of the help), and nothing is wider than the
terminal."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from safepool.cli import app

WIDTH = 80


def command_paths() -> list[list[str]]:
    def walk(command, path: list[str]):  # noqa: ANN001, ANN202 (click's command classes)
        yield path
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            yield from walk(sub, path + [name])

    return list(walk(typer.main.get_command(app), []))


def description(help_text: str) -> list[list[str]]:
    """The paragraphs above the first box of the help (usage line left out), as lists of lines."""
    prose = help_text.split("╭", 1)[0].splitlines()
    paragraphs: list[list[str]] = [[]]
    for line in prose:
        if line.strip():
            paragraphs[-1].append(line.rstrip())
        elif paragraphs[-1]:
            paragraphs.append([])
    return [p for p in paragraphs if p and not p[0].lstrip().startswith("Usage:")]


@pytest.mark.parametrize("path", command_paths(), ids=lambda path: " ".join(path) or "safepool")
def test_help_paragraphs_are_filled_and_fit(path):
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": str(WIDTH), "TERM": "dumb"})
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= WIDTH
    for paragraph in description(result.output):
        for line, following in zip(paragraph, paragraph[1:]):
            next_word = re.match(r"\s*(\S+)", following).group(1)
            assert len(line) + 1 + len(next_word) > WIDTH - 2, \
                f"`safepool {' '.join(path)} --help` breaks a paragraph early:\n{line}\n{following}"
