"""One person, one pseudonym, however their identity code is spelled; and no spelling ever shows.

A code written with a Unicode dash or with digits of another script links to the person's one
canonical code (counted as `normalised`) or is quarantined; it never makes a second pseudonym.
Every place that shows text finds codes in any spelling through the one pattern, and a broken
source line is named by register, file, line and field, never shown.
"""

import re

import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest

from safepool.errors import SourceError, redact
from safepool.governance.form import looks_like_identity_code, mask_identity_codes
from safepool.identity.keystore import KeyStore
from safepool.identity.pseudonym import Pseudonymiser
from safepool.identity_pattern import IDENTITY_CODE
from safepool.pool import access
from safepool.pool.build import build_pool
from safepool.pool.scope import Scope
from safepool.registers.check import check_registers
from test_hetu import all_dashes, digit_scripts, spelled
from tiny_registers import ANNA, BO, make_workspace

SCRIPTS = ("FULLWIDTH DIGIT ZERO", "ARABIC-INDIC DIGIT ZERO", "EXTENDED ARABIC-INDIC DIGIT ZERO",
           "DEVANAGARI DIGIT ZERO", "BENGALI DIGIT ZERO", "THAI DIGIT ZERO", "MATHEMATICAL BOLD DIGIT ZERO")


def anna_spellings() -> list[str]:
    """Anna's code with every dash, in several digit scripts, and the two mixed."""
    scripts = digit_scripts()
    by_dash = [spelled(ANNA, dash=dash) for dash in all_dashes() if dash != "-"]
    by_digits = [spelled(ANNA, scripts[name]) for name in SCRIPTS]
    mixed = [spelled(ANNA, scripts[name], dash) for name, dash in zip(SCRIPTS, "\u2013\u2212\u2010\u2011\u2012\uff0d\u2014")]
    return by_dash + by_digits + mixed


def scope(permit="P-1"):
    return Scope(permit=permit, window={"start": "2009Q1", "end": "2024Q4"},
                 registers={"population": "*", "payments": "*"})


def test_every_spelling_in_a_real_build_is_one_person_with_one_pseudonym(tmp_path):
    workspace = make_workspace(tmp_path / "ws")
    spellings = anna_spellings()
    codes = [ANNA] + spellings + [BO]
    payments = pa.table({"hetu": codes,
                         "maksupaiva": pa.array(["2019-01-05"] * len(codes)).cast(pa.date32()),
                         "euroa": [float(i) for i in range(len(codes))]})
    pa_csv.write_csv(payments, workspace.registers_dir / "kela" / "payments.csv")

    built = build_pool(workspace, scope())

    pseudonymiser = Pseudonymiser(KeyStore(workspace.steward_dir / "keys").get("P-1"))
    con = access.connect(workspace.pool_dir, "P-1")
    try:
        per_person = dict(con.execute("SELECT pid, count(*) FROM payments GROUP BY pid").fetchall())
        population = {r[0] for r in con.execute("SELECT pid FROM population").fetchall()}
    finally:
        con.close()
    anna = pseudonymiser.pseudonym(ANNA)
    assert per_person == {anna: 1 + len(spellings), pseudonymiser.pseudonym(BO): 1}
    assert anna in population
    counts = built.linkage.registers["payments"]
    assert counts.rows_by_status == {"valid": 2, "normalised": len(spellings)}
    assert counts.codes_by_status == {"valid": 2, "normalised": len(set(spellings))}
    assert (counts.rows_quarantined, counts.persons) == (0, 2)
    assert built.linkage.persons_total == 3  # Anna, Bo and Chen: no second Anna


def test_the_register_check_counts_respellings_as_normalised(tmp_path):
    workspace = make_workspace(tmp_path / "ws")
    spellings = anna_spellings()
    pa_csv.write_csv(pa.table({"hetu": spellings, "maksupaiva": ["2019-01-05"] * len(spellings),
                               "euroa": [1.0] * len(spellings)}), workspace.registers_dir / "kela" / "payments.csv")
    checked = {c.register: c for c in check_registers(workspace)}["payments"]
    assert checked.rows_by_status == {"normalised": len(spellings)}


SPELLED_IN_TEXT = [
    "010185-202W", "010185-202w", "010185\u2013202W", "010185\u2212202W", "010185\uff0d202W", "010185\u2010202W",
    "\uff10\uff11\uff10\uff11\uff18\uff15-\uff12\uff10\uff12\uff37",  # fullwidth throughout
    "\u0660\u0661\u0660\u0661\u0668\u0665-\u0662\u0660\u0662W",  # Arabic-Indic digits
    "\u0966\u0967\u0966\u0967\u096e\u096b\u2013\u0968\u0966\u0968W",  # Devanagari digits, en dash
    "010185 - 202 W", "0 1 0 1 8 5 - 2 0 2 W", "010185202W", "010185 202W", "0101\u200b85-202W",
    "150790Y311K", "150790y311k", "030305B4228",
]


@pytest.mark.parametrize("code", SPELLED_IN_TEXT)
def test_the_one_pattern_finds_a_code_in_any_spelling(code):
    text = f"row of 'x' for {code}, Anna Aalto"
    assert looks_like_identity_code(text)
    assert IDENTITY_CODE.search(text) is not None
    masked = mask_identity_codes(text)
    assert masked == "row of 'x' for [identity code removed], Anna Aalto"
    assert "<identity code>" in redact(f"failed at {code}")
    assert not re.search(r"\d{3}", redact(f"failed at {code}"))


@pytest.mark.parametrize("text", [
    "2019Q1-2024Q4", "600 clients a year", "123e4567-e89b-12d3-a456-426614174000", "permit SKILLS-DEMO",
    "sha256 " + "ab" * 32, "pseudonym 0123456789012345678", "2019-01-05",
])
def test_ordinary_text_is_not_taken_for_a_code(text):
    assert not looks_like_identity_code(text)


def test_no_module_keeps_a_hetu_pattern_of_its_own():
    """The pattern lives in safepool.identity_pattern; the others import it."""
    from pathlib import Path

    import safepool

    root = Path(safepool.__file__).parent
    pattern = re.compile(r"\[-\+A|A-FU-Y|U-Ya-fu-y")  # a class of century signs
    owners = sorted(str(p.relative_to(root)) for p in root.rglob("*.py") if pattern.search(p.read_text()))
    # governance/audit.py keeps its own until the audit's owner imports the shared one
    assert set(owners) <= {"identity_pattern.py", "governance/audit.py"}, owners


# --- broken source lines -----------------------------------------------------------------

ODD = ["010185202W", "010185\u2013202W", "\uff10\uff11\uff10\uff11\uff18\uff15-202W",
       "\u0660\u0661\u0660\u0661\u0668\u0665-\u0662\u0660\u0662W", "150790y311k"]


def good_lines(rows=30_000):
    """Enough good lines that the CSV reader settles on the types before it meets the bad one."""
    return "hetu,maksupaiva,euroa\n" + "".join(f"{ANNA},2019-01-05,{i}\n" for i in range(rows))


def broken_files():
    for code in ODD:
        yield f"a name where the amount is ({code})", good_lines() + f"{code},2019-01-05,Anna Aalto\n"
        yield f"an extra field ({code})", good_lines() + f"{code},Anna Aalto,2019-01-05,1\n"
        yield f"a name where the date is ({code})", good_lines() + f"{code},Anna Aalto,1\n"
        yield f"an open quote ({code})", good_lines() + f'{code},2019-01-05,"Anna Aalto\n'


def assert_no_content(message):
    lowered = message.lower()
    for text in ("anna", "aalto", "202w", "311k"):
        assert text not in lowered, message
    assert not looks_like_identity_code(message), message
    plain = "".join(ch for ch in message if not ch.isspace())
    for code in ODD:
        assert code.lower() not in plain.lower(), message


@pytest.mark.parametrize("what,content", list(broken_files()), ids=lambda v: v if len(v) < 60 else "")
def test_a_broken_csv_line_is_named_never_shown(tmp_path, what, content):
    workspace = make_workspace(tmp_path / "ws")
    (workspace.registers_dir / "kela" / "payments.csv").write_text(content, encoding="utf-8")
    messages = []
    try:
        build_pool(workspace, scope())
    except SourceError as error:
        messages.append(str(error))
        assert str(error).startswith("register payments: ")
        assert "csv file payments.csv" in str(error) and "line 30002" in str(error), str(error)
    messages += [problem for c in check_registers(workspace) for problem in c.problems]
    assert messages, what
    for message in messages:
        assert_no_content(message)
