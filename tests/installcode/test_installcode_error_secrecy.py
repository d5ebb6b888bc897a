"""A CRC mismatch quotes no digit of the install code (found by a review): the message said
"the code ends in XXXX but its data's CRC is YYYY", XXXX the CRC as typed (for a 64-bit code
typed without its CRC, the last four digits of its secret data) and YYYY the real code's last
four printed digits. It reached HTTP 422s, the devices CSV report, ``zse esi`` config errors,
``zse capture --install-code`` and headend import reports. The hints stay, in words."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from zse.cli import main
from zse.device_csv import DeviceCsvError, read_devices
from zse.errors import InvalidInstallCode
from zse.installcode import DATA_LENGTHS, InstallCode, crc16, parse_label
from zse.mqtt.core import CommandError, parse_command

MISMATCH = "install code CRC mismatch: the last 4 digits are not the CRC of the digits before them"
MISTYPED = "a digit is mistyped, or the code was read from the wrong label"
SWAPPED = "the CRC's two octets look swapped: it is printed least significant first"
NO_CRC = "; or is it a 64-bit code typed without its 4-digit CRC?"
#: the 128-bit code of the 05-3474 example, its CRC (C3B5) mistyped as C3B6
WRONG = "83FED3407A939723A5C639B26916D505C3B6"
EUI64 = "001BC5007000052B"


def expected(raw: bytes) -> str:
    """The whole message for ``raw``, a code whose CRC does not match: words only."""
    data, received = raw[:-2], raw[-2:]
    why = SWAPPED if int.from_bytes(received, "big") == crc16(data) else MISTYPED
    return f"{MISMATCH} ({why}{NO_CRC if len(raw) == 8 else ''})"


def assert_no_digits_of(code: str, text: str) -> None:
    """No four hex digits in a row in ``text`` at all (a CRC is four), so none of ``code``;
    the message's words have at most three (``bef``, ``ead``)."""
    assert not re.findall(r"[0-9A-Fa-f]{4,}", text), f"{code}: digits in {text!r}"


@given(
    st.sampled_from(DATA_LENGTHS).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    st.integers(min_value=1, max_value=0xFFFF),
)
def test_the_message_is_the_same_for_every_code(data: bytes, flip: int) -> None:
    """The message depends on the kind of mistake only (and the length), never on a digit."""
    typed = (crc16(data) ^ flip).to_bytes(2, "little")
    with pytest.raises(InvalidInstallCode) as info:
        InstallCode.parse((data + typed).hex())
    assert str(info.value) == expected(data + typed)
    assert_no_digits_of((data + typed).hex(), str(info.value))


def test_the_hints_stay_in_words() -> None:
    swapped = bytes.fromhex("83FED3407A93") + crc16(bytes.fromhex("83FED3407A93")).to_bytes(
        2, "big"
    )
    with pytest.raises(InvalidInstallCode) as info:
        InstallCode.from_bytes(swapped)
    assert str(info.value) == f"{MISMATCH} ({SWAPPED}{NO_CRC})"
    # a 64-bit code typed without its CRC: the "CRC" is the last four digits of its data
    with pytest.raises(InvalidInstallCode) as info:
        InstallCode.parse("0011223344556677")
    assert str(info.value) == f"{MISMATCH} ({MISTYPED}{NO_CRC})"
    assert "6677" not in str(info.value)
    with pytest.raises(InvalidInstallCode) as info:
        InstallCode.parse(WRONG)
    assert str(info.value) == f"{MISMATCH} ({MISTYPED})"
    assert_no_digits_of(WRONG, str(info.value))


def test_the_constructor_names_no_crc() -> None:
    with pytest.raises(InvalidInstallCode) as info:
        InstallCode(bytes.fromhex("83FED3407A93"), 0x702C)
    assert str(info.value) == "install code CRC does not match its data"


def test_a_label_names_its_form_and_no_digit() -> None:
    with pytest.raises(InvalidInstallCode) as info:
        parse_label(f"Z:{EUI64}$I:{WRONG}")
    assert str(info.value) == f"Z:<EUI-64>$I:<code> label: {MISMATCH} ({MISTYPED})"


def test_the_devices_csv_report_quotes_no_digit() -> None:
    lines = ["eui64,install_code\n", f"{EUI64},{WRONG}\n"]
    [row] = read_devices(lines)
    assert isinstance(row, DeviceCsvError)
    assert str(row) == f"line 2: EUI-64 {EUI64}: {MISMATCH} ({MISTYPED})"
    assert_no_digits_of(WRONG, str(row).replace(EUI64, ""))


def test_mqtt_says_the_library_s_words() -> None:
    body = {"correlation_id": "p", "mac": EUI64, "install_code": WRONG}
    with pytest.raises(CommandError) as info:
        parse_command("provision", json.dumps(body).encode())
    assert info.value.field == "install_code"
    assert f"{MISMATCH} ({MISTYPED})" in str(info.value)
    assert_no_digits_of(WRONG, str(info.value).replace(EUI64, ""))


def test_the_cli_quotes_no_digit(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["installcode", WRONG])
    assert result.exit_code == 2
    assert result.stderr == f"error: CODE #1: {MISMATCH} ({MISTYPED})\n"
    capture = tmp_path / "none.pcap"
    capture.write_bytes(b"")
    result = CliRunner().invoke(main, ["capture", str(capture), "--install-code", WRONG])
    assert result.exit_code == 2
    assert result.stderr == f"error: install code #1: {MISMATCH} ({MISTYPED})\n"
