"""The documentation runs as written.

Every command of the README's fenced examples (all but the two set-up commands at the top) and
of docs/permit-walkthrough.md runs on a fresh copy of a demo workspace, in a terminal 80
columns wide, with the exit code the text gives (0 unless a comment says `# exits N`); the
README's Python example runs; every option the README and the docs name exists on its command;
the access policy table in docs/architecture.md is the one the code uses; nothing points outside
the repository.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from typer.main import get_command
from typer.testing import CliRunner

from governed import PASSWORD
from safepool.cli import app
from safepool.governance import access_policy
from safepool.governance.users import Role
from test_cli import readable

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
WALKTHROUGH = DOCS / "permit-walkthrough.md"
SET_UP_COMMANDS = 2  # the first block of the README installs and runs the demo or the tests
_FENCE = re.compile(r"^( *)```([^\n]*)\n(.*?)^\1```[ \t]*$", re.MULTILINE | re.DOTALL)
_EXITS = re.compile(r"exits (\d+)( when| if)?")


@dataclass(frozen=True)
class Block:
    info: str  # the fence's info string: "", "python", "yaml request.yaml", ...
    text: str

    @property
    def file(self) -> str | None:
        """The file a block shows (its info string's second word), e.g. request.yaml."""
        words = self.info.split()
        return words[1] if len(words) > 1 else None


def blocks(path: Path) -> list[Block]:
    found = []
    for match in _FENCE.finditer(path.read_text(encoding="utf-8")):
        indent = len(match.group(1))
        text = "\n".join(line[indent:] for line in match.group(3).splitlines())
        found.append(Block(match.group(2).strip(), text))
    return found


def shell_lines(text: str) -> list[str]:
    """The block's commands: a line ending in a backslash, or inside an open quote, goes on."""
    lines, current = [], ""
    for line in text.splitlines():
        current = f"{current}\n{line}" if current else line
        if current.endswith("\\"):
            current = current[:-1].rstrip() + " "
            continue
        try:
            shlex.split(current, comments=True)
        except ValueError:  # no closing quotation: the command goes on
            continue
        if current.strip():
            lines.append(current.strip())
        current = ""
    assert not current.strip(), f"unfinished command: {current}"
    return lines


def _comment_start(line: str) -> int:
    """Where a shell comment starts: a # at the start of a word, outside quotes."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return i
    return len(line)


@dataclass(frozen=True)
class Command:
    line: str
    words: list[str]  # the command's words, without "safepool"
    expected: set[int]

    @classmethod
    def parse(cls, line: str) -> Command:
        tokens = shlex.split(line, comments=True)
        comment = line[_comment_start(line):]
        expected = {0}
        if (said := _EXITS.search(comment)) is not None:
            code = int(said.group(1))
            expected = {0, code} if said.group(2) else {code}
        return cls(line, tokens[1:], expected)

    @property
    def user(self) -> str | None:
        words = self.words
        for i, word in enumerate(words[:-1]):
            if word in ("--user", "-u"):
                return words[i + 1]
        return None


def examples(path: Path, skip: int = 0) -> tuple[list[str], dict[str, str], list[str]]:
    """A document's shell lines in order, the files its blocks show, and its Python examples."""
    lines: list[str] = []
    files: dict[str, str] = {}
    python: list[str] = []
    for block in blocks(path):
        kind = block.info.split()[0] if block.info else ""
        if block.file:
            files[block.file] = block.text + "\n"
        elif kind == "python":
            python.append(block.text)
        elif kind in ("", "sh", "bash", "console"):
            lines += shell_lines(block.text)
    return lines[skip:], files, python


@pytest.fixture(scope="module")
def demo(cli_demo):
    """`safepool demo --persons 2000`, in a terminal 80 columns wide (shared: tests/conftest.py)."""
    root, output = cli_demo
    readable(output)
    assert "Headline:" in output and f"  {root / 'pool' / 'SKILLS-DEMO'}" in output.splitlines()
    return root


@pytest.fixture
def checkout(demo, tmp_path, monkeypatch):
    """A folder like the repository's after `safepool demo`: a fresh copy of the demo's workspace
    beside the sources (src/ for the shipped examples)."""
    shutil.copytree(demo, tmp_path / "safepool-demo", symlinks=True)
    (tmp_path / "src").symlink_to(ROOT / "src")
    monkeypatch.chdir(tmp_path)
    for name in ("SAFEPOOL_WORKSPACE", "SAFEPOOL_USER", "SAFEPOOL_PASSWORD", "SAFEPOOL_METADATA_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def passwords(checkout: Path) -> dict[str, str]:
    return yaml.safe_load((checkout / "safepool-demo" / "steward" / "demo-users.yaml").read_text())


def run_document(checkout: Path, path: Path, skip: int = 0) -> list[str]:
    """Run a document's commands in order; returns the commands run."""
    lines, files, _ = examples(path, skip)
    for name, text in files.items():
        (checkout / name).write_text(text, encoding="utf-8")
    known = passwords(checkout)
    env: dict[str, str] = {"COLUMNS": "80", "SAFEPOOL_NEW_PASSWORD": PASSWORD}
    ran = []
    for line in lines:
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            env[name.strip()] = value.strip()
            continue
        command = Command.parse(line)
        assert line.startswith("safepool "), f"{path.name}: only safepool commands and exports run here: {line}"
        password = {"SAFEPOOL_PASSWORD": known[command.user]} if command.user in known else {}
        result = CliRunner().invoke(app, command.words, env={**env, **password}, catch_exceptions=False)
        assert result.exit_code in command.expected, f"{path.name}: {line}\n{result.output}"
        readable(result.output)
        ran.append(line)
    return ran


def test_the_readme_runs_as_written(checkout):
    ran = run_document(checkout, README, skip=SET_UP_COMMANDS)
    assert len(ran) >= 15
    for command in ("safepool variables", "safepool query", "safepool study run", "safepool outputs show",
                    "safepool audit verify", "safepool reidentify", "safepool policy set"):
        assert any(line.startswith(command) for line in ran), command


def test_the_readme_skips_only_the_set_up_commands():
    first = blocks(README)[0]
    assert len(shell_lines(first.text)) == SET_UP_COMMANDS
    assert all("install-system-packages" in line for line in shell_lines(first.text))


def test_the_walkthrough_takes_a_permit_from_request_to_release(checkout):
    ran = run_document(checkout, WALKTHROUGH)
    release = checkout / "safepool-demo" / "release" / "FOLLOWUP-1" / "FOLLOWUP-1-R001"
    assert (release / "MANIFEST.json").is_file() and (release / "SHA256SUMS").is_file()
    assert not (checkout / "safepool-demo" / "steward" / "keys" / "FOLLOWUP-1.key").exists()
    phases = [line.split()[4] for line in ran if line.startswith("safepool permit advance")]
    assert phases == ["analytic_review", "analysis", "analysis", "reporting"]


def test_the_python_example_runs(checkout, monkeypatch):
    _, _, python = examples(README)
    assert len(python) == 1 and "safepool.connect(" in python[0]
    monkeypatch.setenv("SAFEPOOL_PASSWORD", passwords(checkout)["vtt.analyst1"])
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(python[0], "README.md", "exec"), {})
    text = printed.getvalue()
    assert "male" in text and "SKILLS-DEMO-0001" in text


def command_spans(text: str) -> list[str]:
    """Every `safepool ...` of a document: inline code and the lines of its shell examples."""
    spans = [m.group(1) for m in re.finditer(r"`(safepool [^`]+)`", text)]
    for match in _FENCE.finditer(text):
        if not match.group(2).strip() or match.group(2).split()[0] in ("sh", "bash"):
            spans += [line for line in shell_lines(match.group(3)) if line.strip().startswith("safepool ")]
    return spans


def test_every_option_in_the_documents_exists():
    root = get_command(app)
    checked = 0
    for path in (README, *sorted(DOCS.glob("*.md"))):
        for span in command_spans(path.read_text(encoding="utf-8")):
            span = span.split(" #")[0].replace("\\|", "|")
            words = span.split()[1:]
            command, i = root, 0
            while i < len(words) and hasattr(command, "commands") and words[i] in command.commands:
                command, i = command.commands[words[i]], i + 1
            assert i > 0 or not words or words[0].startswith("-"), f"{path.name}: no command in `{span}`"
            options = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
            for option in re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-[a-z])\b", span):
                assert option in options, f"{path.name}: `{span}`: {option} is not an option of it"
                checked += 1
    assert checked > 60


def test_the_documents_point_inside_the_repository():
    for path in (README, *DOCS.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        assert "../" not in text and "DESIGN.md" not in text, path.name
        for target in re.findall(r"\]\(([^)#]+)\)", text):
            if not target.startswith("http"):
                assert (path.parent / target).exists(), f"{path.name} links to {target}"


def test_the_architecture_shows_the_access_policy_the_code_uses():
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    header = next(line for line in text.splitlines() if line.startswith("| action | what it is |"))
    roles = [cell.strip() for cell in header.strip("|").split("|")][2:]
    assert roles == [role.value for role in Role]
    shown = {}
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            if len(cells) == len(roles) + 2:
                shown[cells[0].strip("`")] = (cells[1], {Role(r) for r, c in zip(roles, cells[2:]) if c == "yes"})
    assert shown == {action: (access_policy.WORDS[action], set(allowed))
                     for action, allowed in access_policy.POLICY.items()}


def test_the_architecture_shows_which_stewards_may_do_what():
    """The table's second part (access_policy.STEWARDS) as docs/architecture.md shows it."""
    lines = (DOCS / "architecture.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| steward's action |"))
    shown = {}
    for line in lines[start + 2:]:
        if not line.startswith("| `"):
            break
        action, holder, linkage = [cell.strip() for cell in line.strip("|").split("|")]
        shown[action.strip("`")] = {kind for kind, cell in ((access_policy.HOLDER, holder),
                                                             (access_policy.LINKAGE, linkage)) if cell == "yes"}
    assert shown == {action: set(kinds) for action, kinds in access_policy.STEWARDS.items()}


def test_readme_names_the_exit_codes_the_cli_uses():
    from safepool.cli.common import EXIT_CODES, PROBLEMS_FOUND

    text = README.read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| (\d+) \| (.+) \|$", text, re.MULTILINE))
    for kind, code, _ in EXIT_CODES[:-1]:
        assert kind.__name__ in rows[str(code)], (kind, code)
    assert "found problems" in rows[str(PROBLEMS_FOUND)] and "any other error" in rows[str(EXIT_CODES[-1][1])]
