"""A register's identity codes are counted by status, rows and distinct codes (a missing code is one
code), in the order of the status names."""

from safepool.registers.check import check_registers
from tiny_registers import make_workspace


def test_rows_and_distinct_codes_by_status(tmp_path):
    workspace = make_workspace(tmp_path / "ws")
    [checked] = check_registers(workspace, ["payments"])
    assert list(checked.rows_by_status.items()) == [("missing", 1), ("normalised", 1), ("valid", 4),
                                                    ("wrong_check_character", 1)]
    assert list(checked.codes_by_status.items()) == [("missing", 1), ("normalised", 1), ("valid", 3),
                                                     ("wrong_check_character", 1)]
