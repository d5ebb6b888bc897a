"""Install codes as printed by a utility's provisioning guide, and EUI-64 parsing."""

from __future__ import annotations

import contextlib
import random
import re
import string

import pytest
import zigpy.types as t
import zigpy.util
from hypothesis import given
from hypothesis import strategies as st

from zse.errors import DecodeError
from zse.installcode import (
    InstallCode,
    InvalidEui64,
    InvalidInstallCode,
    canonical_eui64,
    crc16,
    format_eui64,
    oui,
    parse_eui64,
)

CODE_128 = "83FED3407A939723A5C639B26916D505C3B5"


def crc16_bitwise(data: bytes) -> int:
    """CRC-16/X-25 straight from its definition, one bit at a time."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def test_crc16_catalogue_check_value():
    # The CRC catalogue's check value of CRC-16/X-25 (a.k.a. CRC-16/IBM-SDLC).
    assert crc16(b"123456789") == 0x906E


@given(st.binary(max_size=64))
def test_crc16_matches_definition(data):
    assert crc16(data) == crc16_bitwise(data)


def test_printed_examples(installcode_vectors):
    for example in installcode_vectors["printed_examples"]:
        code = InstallCode.parse(example["printed"])
        assert code.bits == example["bits"]
        assert f"{code.crc:04X}" == example["crc"]
        assert str(code) == example["printed"]
        assert crc16(code.data) == code.crc
        assert len(code.link_key) == 16


def test_link_key_vector(installcode_vectors):
    for printed, key in installcode_vectors["link_keys"].items():
        assert InstallCode.parse(printed).link_key.hex().upper() == key


def test_link_keys_agree_with_zigpy(installcode_vectors):
    for example in installcode_vectors["printed_examples"]:
        code = InstallCode.parse(example["printed"])
        assert code.link_key == bytes(zigpy.util.convert_install_code(bytes(code)))


@pytest.mark.parametrize(
    "text",
    [
        "83FED3407A932B70",
        "83fed3407a932b70",
        "83FED3407A93 2B70",
        "83FE D340 7A93 2B70",
        "83-FE-D3-40-7A-93-2B-70",
        "83:fe:d3:40:7a:93:2b:70",
        "  83FE-D340-7A93-2B70\n",
        "0x83FED3407A932B70",
        "83FE\u00a0D340\u00a07A93\u00a02B70",  # no-break spaces, as copied from a PDF
    ],
)
def test_accepted_spellings(text):
    code = InstallCode.parse(text)
    assert str(code) == "83FED3407A932B70"
    assert code.crc == 0x702B
    assert code.crc_bytes == bytes.fromhex("2B70")


def test_grouped_and_bytes():
    code = InstallCode.parse(CODE_128)
    assert code.grouped() == "83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5"
    assert code.grouped(2, ":").startswith("83:FE:D3")
    assert bytes(code) == bytes.fromhex(CODE_128)
    assert repr(code) == f"<InstallCode 128-bit, fingerprint {code.fingerprint}>"
    assert len(code.fingerprint) == 4
    assert InstallCode.from_bytes(bytes(code)) == code


def test_from_data_and_generate():
    code = InstallCode.from_data(bytes.fromhex("83FED3407A93"))
    assert str(code) == "83FED3407A932B70"
    for bits in (48, 64, 96, 128):
        generated = InstallCode.generate(bits, random.Random(bits))
        assert generated.bits == bits
        assert InstallCode.parse(str(generated)) == generated
    assert InstallCode.generate(128, random.Random(1)) == InstallCode.generate(
        128, random.Random(1)
    )
    assert InstallCode.generate().bits == 128  # system CSPRNG by default
    with pytest.raises(InvalidInstallCode, match="48, 64, 96 or 128 bits, not 80"):
        InstallCode.generate(80)
    with pytest.raises(InvalidInstallCode, match="got 7 bytes"):
        InstallCode.from_data(bytes(7))


def test_constructor_checks_crc():
    with pytest.raises(InvalidInstallCode) as info:
        InstallCode(bytes.fromhex("83FED3407A93"), 0x702C)
    # neither CRC (each is 16 bits of the secret code), in either octet order
    assert str(info.value) == "install code CRC does not match its data"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "83FED3407A932B71",
            "^"
            + re.escape(
                "install code CRC mismatch: the last 4 digits are not the CRC of the digits "
                "before them (a digit is mistyped, or the code was read from the wrong label; "
                "or is it a 64-bit code typed without its 4-digit CRC?)"
            )
            + "$",
        ),
        ("83FED3407A93", r"12 hex digits.*16, 20, 28 or 36 .*is the 4-digit CRC missing"),
        ("83FED3407A932B", r"14 hex digits"),
        ("83FED3407A932B7", r"15 hex digits"),
        ("83FED3407A9X2B70", r"non-hex character 'X' at position 12"),
        ("83FE D340 7A9X 2B70", r"non-hex character 'X' at position 14"),
        ("  0x83G", r"non-hex character 'G' at position 7"),
        ("83FED3407A93_2B70", r"non-hex character '_' at position 13"),
        ("83FED3407A93\u0662B70", r"non-hex character '\u0662' at position 13"),
        ("", "is empty"),
        ("   ", "is empty"),
        ("0x", "is empty"),
    ],
)
def test_errors_say_what_and_where(text, message):
    with pytest.raises(InvalidInstallCode, match=message) as info:
        InstallCode.parse(text)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, DecodeError)


def test_sixteen_digits_whose_crc_fails_may_be_a_64_bit_code_without_its_crc(
    installcode_vectors,
):
    """16 hex digits are a 48-bit code with its CRC or a 64-bit code without one; the CRC
    error said only "a digit is mistyped". It now asks whether the CRC was left out, and
    says when the CRC's two octets look swapped. The printed forms are still accepted."""
    (example,) = [e for e in installcode_vectors["printed_examples"] if e["bits"] == 64]
    data = example["printed"][:16]  # the 64-bit code as typed without its CRC
    with pytest.raises(InvalidInstallCode, match="64-bit code typed without its 4-digit CRC"):
        InstallCode.parse(data)
    assert InstallCode.parse(example["printed"]).bits == 64
    with pytest.raises(InvalidInstallCode, match="two octets look swapped") as swapped:
        InstallCode.parse("83FED3407A93 702B")
    assert "64-bit code" in str(swapped.value)  # 16 digits: both readings are offered
    assert InstallCode.parse("83FED3407A93 2B70").bits == 48
    with pytest.raises(InvalidInstallCode) as longer:  # 20 digits: no 64-bit question
        InstallCode.parse(example["printed"][:-1] + "0")
    assert "64-bit code" not in str(longer.value)


def test_non_text_input_is_still_an_install_code_error():
    with pytest.raises(InvalidInstallCode, match="as text, not bytes"):
        InstallCode.parse(b"83FED3407A932B70")  # type: ignore[arg-type]
    with pytest.raises(InvalidInstallCode, match="8, 10, 14 or 18 bytes"):
        InstallCode.from_bytes(bytes(9))


codes = st.sampled_from([6, 8, 12, 16]).flatmap(
    lambda n: st.binary(min_size=n, max_size=n).map(InstallCode.from_data)
)


@given(codes)
def test_round_trip_through_printed_forms(code):
    assert InstallCode.parse(str(code)) == code
    assert InstallCode.parse(code.grouped()) == code
    assert InstallCode.parse(str(code).lower()) == code
    assert InstallCode.parse(code.grouped(2, "-")) == code


@given(codes, st.data())
def test_any_single_corrupted_digit_is_caught(code, data):
    text = str(code)
    position = data.draw(st.integers(min_value=0, max_value=len(text) - 1))
    replacement = data.draw(st.sampled_from([c for c in "0123456789ABCDEF" if c != text[position]]))
    corrupted = text[:position] + replacement + text[position + 1 :]
    with pytest.raises(InvalidInstallCode, match="CRC mismatch"):
        InstallCode.parse(corrupted)


@given(st.text(max_size=60))
def test_arbitrary_text_raises_only_the_documented_error(text):
    try:
        code = InstallCode.parse(text)
    except InvalidInstallCode:
        return
    assert crc16(code.data) == code.crc


@given(st.text(alphabet=string.hexdigits + " -:", max_size=40))
def test_hex_looking_text_raises_only_the_documented_error(text):
    with contextlib.suppress(InvalidInstallCode):
        InstallCode.parse(text)


@given(st.binary(max_size=24))
def test_arbitrary_bytes_raise_only_the_documented_error(raw):
    try:
        code = InstallCode.from_bytes(raw)
    except InvalidInstallCode:
        return
    assert bytes(code) == raw


# EUI-64 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "001BC5007000052B",
        "001bc5007000052b",
        "00:1B:C5:00:70:00:05:2B",
        "00-1b-c5-00-70-00-05-2b",
        "001B C500 7000 052B",
        "001B.C500.7000.052B",
    ],
)
def test_eui64_spellings(text, installcode_vectors):
    eui64 = parse_eui64(text)
    assert isinstance(eui64, t.EUI64)
    assert eui64 == t.EUI64.convert("00:1b:c5:00:70:00:05:2b")
    assert format_eui64(eui64) == installcode_vectors["example_mac_addresses"][0]
    assert format_eui64(eui64, ":") == "00:1B:C5:00:70:00:05:2B"
    assert oui(eui64) == "00-1B-C5"
    assert canonical_eui64(text) == "001BC5007000052B"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0000000000000000", "all zeros"),
        ("FF:FF:FF:FF:FF:FF:FF:FF", "all ones"),
        ("001BC5007000052", "15 hex digits; it must have 16"),
        ("001BC5007000052B00", "18 hex digits"),
        ("001BC50070Z0052B", "non-hex character 'Z' at position 11"),
        ("00:1B\udcff", re.escape("a byte that is not UTF-8 text (0xFF) at position 6")),
        ("", "EUI-64 is empty"),
    ],
)
def test_eui64_errors(text, message):
    with pytest.raises(InvalidEui64, match=message):
        parse_eui64(text)


@given(st.text(max_size=40))
def test_eui64_garbage_raises_only_the_documented_error(text):
    with contextlib.suppress(InvalidEui64):
        parse_eui64(text)


@given(st.binary(min_size=8, max_size=8).filter(lambda b: b not in (bytes(8), b"\xff" * 8)))
def test_eui64_round_trip(raw):
    eui64 = t.EUI64(raw[::-1])
    assert parse_eui64(format_eui64(eui64, ":")) == eui64
