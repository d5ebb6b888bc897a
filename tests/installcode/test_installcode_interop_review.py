"""Install codes other projects publish in their tests (tests/vectors/installcode-interop.json,
each entry naming its source), read by zse and checked against the definitions: the CRC-16/X-25
of 05-3474 §4.6.3.4.1.1 computed bit by bit, and the AES-MMO hash (Annex B.6) as zigpy computes
it. Lookalike and invisible characters in a code are named by their code point."""

from __future__ import annotations

import json
from typing import Any

import pytest
import zigpy.util
from click.testing import CliRunner

from tests.conftest import load_vectors
from tests.installcode.test_installcode import crc16_bitwise  # CRC-16/X-25 bit by bit
from zse.cli import main
from zse.installcode import (
    InstallCode,
    InvalidEui64,
    InvalidInstallCode,
    canonical_eui64,
    parse_label,
)

VECTORS: Any = load_vectors("installcode-interop.json")


def raw(printed: str) -> bytes:
    return bytes.fromhex("".join(c for c in printed if c not in " :-"))


@pytest.mark.parametrize("entry", VECTORS["valid"], ids=lambda e: f"{e['source']}:{e['printed']}")
def test_published_valid_codes_read_with_their_crc_and_key(entry: dict[str, Any]) -> None:
    code = InstallCode.parse(entry["printed"])
    data = raw(entry["printed"])
    assert code.bits == entry["bits"]
    assert bytes(code) == data
    assert code.crc == crc16_bitwise(data[:-2]) == int.from_bytes(data[-2:], "little")
    assert code.link_key == zigpy.util.convert_install_code(data).serialize()
    if entry["link_key"] is not None:
        assert code.link_key.hex().upper() == entry["link_key"]


@pytest.mark.parametrize("entry", VECTORS["refused"], ids=lambda e: f"{e['source']}:{e['printed']}")
def test_published_bad_codes_are_refused_as_the_definition_says(entry: dict[str, Any]) -> None:
    data = raw(entry["printed"])
    if len(data) - 2 in (6, 8, 12, 16):  # a length with a CRC: the CRC is the wrong one
        assert crc16_bitwise(data[:-2]) != int.from_bytes(data[-2:], "little")
    with pytest.raises(InvalidInstallCode):
        InstallCode.parse(entry["printed"])


def test_every_source_is_cited_and_used() -> None:
    used = {entry["source"] for entry in VECTORS["valid"] + VECTORS["refused"]}
    assert used == set(VECTORS["sources"])
    assert all("commit" in cite for cite in VECTORS["sources"].values())


def test_the_cli_gives_the_published_keys() -> None:
    stated = [e for e in VECTORS["valid"] if e["link_key"] is not None]
    result = CliRunner().invoke(main, ["installcode", "--json", *(e["printed"] for e in stated)])
    assert result.exit_code == 0, result.output
    assert [r["link_key"] for r in json.loads(result.output)] == [e["link_key"] for e in stated]


@pytest.mark.parametrize(
    ("char", "named"),
    [
        ("\u0410", "U+0410 CYRILLIC CAPITAL LETTER A"),
        ("\uff18", "U+FF18 FULLWIDTH DIGIT EIGHT"),
        ("\u200b", "U+200B ZERO WIDTH SPACE"),
        ("\u200f", "U+200F RIGHT-TO-LEFT MARK"),
        ("\u202e", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("\ufeff", "U+FEFF ZERO WIDTH NO-BREAK SPACE"),
        ("\ud800", "U+D800"),
    ],
)
def test_a_lookalike_or_invisible_character_is_named_by_its_code_point(
    char: str, named: str
) -> None:
    for parse, text, error in (
        (InstallCode.parse, f"83FE{char}D3407A932B70", InvalidInstallCode),
        (parse_label, f"83FE{char}D3407A932B70", InvalidInstallCode),
        (canonical_eui64, f"001B{char}C5007000052B", InvalidEui64),
    ):
        with pytest.raises(error) as info:
            parse(text)
        assert str(info.value).endswith(f"at position 5 ({named}: not an ASCII hex digit)")


def test_ascii_characters_are_quoted_as_before() -> None:
    with pytest.raises(InvalidInstallCode) as info:
        InstallCode.parse("83FED3407A9X2B70\x00")
    assert str(info.value) == "install code has a non-hex character 'X' at position 12"
    with pytest.raises(InvalidInstallCode) as info:
        InstallCode.parse("83FED3407A932B70\x00")
    assert str(info.value) == "install code has a non-hex character '\\x00' at position 17"


def test_a_very_long_code_is_refused_in_bounded_time() -> None:
    for text in ("8" * 5_000_000, "8 " * 2_500_000):
        with pytest.raises(InvalidInstallCode, match=r"has (5000000|2500000) hex digits"):
            InstallCode.parse(text)
