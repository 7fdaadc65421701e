from hypothesis import given, strategies as st
from stdnum.fi import hetu as stdnum_hetu

from safepool.identity.hetu import CodeStatus, classify, classify_array
from tiny_registers import ANNA, BO, TEMPORARY, WRONG_CHECK, hetu

import pyarrow as pa


def test_valid_codes_of_every_century_sign_link():
    for sign in "+-YXWVUABCDEF":
        code = hetu("010101", sign, 123)
        assert classify(code) == (code, CodeStatus.valid), sign


def test_same_digits_different_sign_are_different_people():
    one, other = hetu("100190", "-", 999)[:-1], hetu("100190", "Y", 999)[:-1]
    assert one != other


def test_case_and_whitespace_are_repaired_not_dropped():
    assert classify(" " + ANNA.lower() + "\t") == (ANNA, CodeStatus.normalised)
    assert classify(BO[:6] + " " + BO[6:]) == (BO, CodeStatus.normalised)


def test_each_fault_has_its_reason():
    assert classify(WRONG_CHECK) == (None, CodeStatus.wrong_check_character)
    assert classify(TEMPORARY) == (None, CodeStatus.temporary)
    assert classify(None) == (None, CodeStatus.missing)
    assert classify("   ") == (None, CodeStatus.missing)
    assert classify("12345") == (None, CodeStatus.malformed)
    assert classify(hetu("280285", "-", 202))[1] == CodeStatus.valid
    assert classify(hetu("300285", "-", 202)) == (None, CodeStatus.invalid_date)
    assert classify(hetu("010185", "-", 1)) == (None, CodeStatus.invalid_individual_number)


def test_classify_array_keeps_raw_for_joining_back():
    table = classify_array(pa.array([ANNA, None, WRONG_CHECK]))
    assert table.column("raw").to_pylist() == [ANNA, None, WRONG_CHECK]
    assert table.column("status").to_pylist() == ["valid", "missing", "wrong_check_character"]


@given(st.text(alphabet="0123456789-+ABCDEFUVWXYabc \t", min_size=0, max_size=14))
def test_links_exactly_when_stdnum_accepts_a_permanent_code(text):
    code, status = classify(text)
    compact = "".join(text.split()).upper()
    accepted = stdnum_hetu.is_valid(compact)  # stdnum refuses temporary codes by default
    assert status.links == accepted
    if status.links:
        assert code == compact


@given(st.dates(), st.integers(min_value=2, max_value=999))
def test_generated_valid_codes_agree_with_stdnum(day, individual):
    sign = {18: "+", 19: "-", 20: "A"}.get(day.year // 100)
    if sign is None:
        return
    code = hetu(day.strftime("%d%m%y"), sign, individual)
    _, status = classify(code)
    assert (status == CodeStatus.temporary) == (individual >= 900)
    assert status.links == (individual < 900)
    assert stdnum_hetu.is_valid(code) == status.links
