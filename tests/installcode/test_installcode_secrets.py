"""No install code in reprs or error messages (#12.23): a code is the device's link key in all
but name, so zse shows a size and a short fingerprint instead, and a CRC mismatch quotes no
digit of it, not even a CRC."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from tests.security.test_security_secrets import assert_hidden as assert_no_run
from zse.cli import main
from zse.device_csv import DeviceCsvError, decode_lines, read_devices
from zse.errors import InvalidInstallCode
from zse.installcode import DATA_LENGTHS, InstallCode
from zse.provisioning import DeviceRecord, LifecycleState

CODES = st.sampled_from(DATA_LENGTHS).flatmap(lambda n: st.binary(min_size=n, max_size=n))


def assert_hidden(code: InstallCode, text: str) -> None:
    """Neither the code nor its data appears in ``text``, in any case."""
    for secret in (bytes(code), code.data):
        assert secret.hex() not in text.lower()


@given(CODES)
def test_repr_shows_the_size_and_a_fingerprint_only(data: bytes) -> None:
    code = InstallCode.from_data(data)
    assert repr(code) == f"<InstallCode {code.bits}-bit, fingerprint {code.fingerprint}>"
    assert_hidden(code, repr(code))
    assert_hidden(code, repr([code]))


@given(CODES, st.integers(min_value=1, max_value=0xFFFF))
def test_a_crc_mismatch_names_no_crc(data: bytes, flip: int) -> None:
    code = InstallCode.from_data(data)
    wrong = (code.crc ^ flip).to_bytes(2, "little")
    with pytest.raises(InvalidInstallCode) as info:
        InstallCode.parse((data + wrong).hex())
    message = str(info.value)
    assert message.startswith(
        "install code CRC mismatch: the last 4 digits are not the CRC of the digits before them ("
    )
    assert data.hex() not in message.lower()
    for crc in (wrong, code.crc_bytes):  # the one typed, the one it should be (the code's end)
        assert crc.hex() not in message.lower()
    with pytest.raises(InvalidInstallCode) as info:
        InstallCode.from_bytes(data + wrong)
    assert data.hex() not in str(info.value).lower()


@given(CODES, st.data())
def test_malformed_codes_are_not_echoed(data: bytes, draw: st.DataObject) -> None:
    code = InstallCode.from_data(data)
    text = str(code)
    at = draw.draw(st.integers(min_value=0, max_value=len(text) - 1))
    bad = draw.draw(st.sampled_from("gxZ_!?"))
    for typo in (text[:at] + bad + text[at:], text[:at] + text[at + 1 :], text + text[at]):
        with pytest.raises(InvalidInstallCode) as info:
            InstallCode.parse(typo)
        assert_hidden(code, str(info.value))


@given(CODES)
def test_device_record_repr_and_str_leave_the_code_out(data: bytes) -> None:
    code = InstallCode.from_data(data)
    record = DeviceRecord(
        eui64="000D6F000A000001",
        install_code=str(code),
        state=LifecycleState.METER_READY,
        label="kitchen",
        groups=frozenset({"street-7"}),
    )
    for text in (repr(record), str(record)):
        assert "000D6F000A000001" in text
        assert_hidden(code, text)
    assert record.install_code == str(code)  # still there for the Trust Center


def _header_error(text: str) -> str:
    with pytest.raises(DeviceCsvError) as refused:
        list(read_devices(decode_lines([text.encode()])))
    return str(refused.value)


@given(CODES, st.integers(min_value=1, max_value=0xFFFF), st.sampled_from(["", " ", ":"]))
def test_a_headerless_csv_with_a_mistyped_code_is_not_echoed(
    data: bytes, flip: int, separator: str
) -> None:
    """A first row of data that does not parse (a code whose CRC is wrong, an EUI-64 a digit
    short) is taken for a header: its cells were quoted as "unknown column '...'"."""
    code = InstallCode.from_data(data)
    wrong = data + (code.crc ^ flip).to_bytes(2, "little")
    printed = separator.join(wrong.hex().upper()[i : i + 4] for i in range(0, len(wrong) * 2, 4))
    message = _header_error(f"{printed},000D6F000A00001,ihd\n")
    assert_no_run(wrong, message)
    assert message.startswith(
        ("line 1: the first row is not a header: its cell 1 is not a column", "line 1: no header")
    )  # a 64-bit code with its CRC is 16 digits: it may be read as an EUI-64, data all the same
    assert "eui64,install_code" in message


def test_a_misspelt_column_name_is_still_named() -> None:
    message = _header_error("eui64,install_code,lable\n000D6F000A000001,x,y\n")
    assert message.startswith("line 1: unknown column 'lable' in the header (known: ")


def test_zse_installcode_csv_does_not_echo_a_headerless_code(tmp_path: Path) -> None:
    """The audit's file, through ``zse installcode --csv``: one line, exit 1, no digits."""
    code = InstallCode.parse("83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5")
    typo = str(code)[:-1] + ("4" if str(code)[-1] != "4" else "5")
    source = tmp_path / "headerless.csv"
    source.write_text(f"{typo},000D6F000A00001,ihd\n")
    result = CliRunner().invoke(
        main, ["installcode", "--csv", str(source), "-o", str(tmp_path / "out.csv")]
    )
    assert result.exit_code != 0
    assert "the first row is not a header" in result.output
    assert_no_run(bytes(code), result.output)
