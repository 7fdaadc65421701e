import os
from pathlib import Path

import pytest

from safepool import yaml_files

from safepool.pool.scope import Scope
from safepool.yaml_files import FileProblem, load_model

GOOD = """permit: P-1
window:
  start: 2009Q1
  end: 2024Q4
registers:
  population: "*"
  payments: [amount]
"""


def test_good_scope_loads(tmp_path):
    path = tmp_path / "scope.yaml"
    path.write_text(GOOD)
    scope = load_model(path, Scope)
    assert scope.registers["payments"] == ["amount"]


def test_each_bad_field_is_named_with_its_line(tmp_path):
    path = tmp_path / "scope.yaml"
    path.write_text(GOOD.replace("start: 2009Q1", "start: 2009Q5").replace("permit: P-1", "permit: ../x"))
    with pytest.raises(FileProblem) as caught:
        load_model(path, Scope)
    problems = caught.value.problems
    assert len(problems) == 2
    assert problems[0].startswith("line 1, field permit:")
    assert problems[1].startswith("line 3, field window.start:") and "2009Q5" in problems[1]


def test_window_backwards_and_unknown_field(tmp_path):
    path = tmp_path / "scope.yaml"
    path.write_text(GOOD.replace("end: 2024Q4", "end: 2008Q1") + "colour: blue\n")
    with pytest.raises(FileProblem) as caught:
        load_model(path, Scope)
    text = str(caught.value)
    assert "line 2, field window: Value error, the time frame starts (2009Q1) after it ends (2008Q1)" in text
    assert "line 8, field colour: Extra inputs are not permitted" in text


def test_broken_yaml_and_missing_file(tmp_path):
    path = tmp_path / "scope.yaml"
    path.write_text("permit: [unclosed\n")
    with pytest.raises(FileProblem, match="line 2: not valid YAML"):
        load_model(path, Scope)
    with pytest.raises(FileProblem, match="file not found"):
        load_model(tmp_path / "nope.yaml", Scope)
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(FileProblem, match="not UTF-8"):
        load_model(path, Scope)


def test_a_folder_a_device_a_pipe_and_an_oversized_file_are_refused_before_reading(tmp_path, monkeypatch):
    with pytest.raises(FileProblem, match="a folder, not a file") as caught:
        load_model(tmp_path, Scope)
    assert str(caught.value).startswith(str(tmp_path))
    with pytest.raises(FileProblem, match="not a regular file"):
        load_model(Path("/dev/zero"), Scope)  # read without a limit, it filled the memory
    pipe = tmp_path / "pipe.yaml"
    os.mkfifo(pipe)
    with pytest.raises(FileProblem, match="not a regular file"):  # no writer: opened without waiting for one
        load_model(pipe, Scope)
    monkeypatch.setattr(yaml_files, "MAX_FILE_BYTES", 64)
    big = tmp_path / "big.yaml"
    big.write_text(GOOD + "#" * 64)
    with pytest.raises(FileProblem, match="larger than"):
        load_model(big, Scope)
    exact = tmp_path / "exact.yaml"
    exact.write_text(GOOD[:64 - 1] + "\n")
    with pytest.raises(FileProblem) as caught:  # at the limit it is read (and then checked as usual)
        load_model(exact, Scope)
    assert "larger than" not in str(caught.value)
