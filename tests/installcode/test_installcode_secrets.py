"""No install code in reprs or error messages (#12.23): a code is the device's link key in all
but name, so zse shows a size and a short fingerprint instead, and a CRC mismatch gives the
two CRCs only."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

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
def test_a_crc_mismatch_names_the_two_crcs_only(data: bytes, flip: int) -> None:
    code = InstallCode.from_data(data)
    wrong = (code.crc ^ flip).to_bytes(2, "little")
    with pytest.raises(InvalidInstallCode) as info:
        InstallCode.parse((data + wrong).hex())
    message = str(info.value)
    assert message.startswith(
        f"install code CRC mismatch: the code ends in {wrong.hex().upper()} but its data's "
        f"CRC is {code.crc_bytes.hex().upper()}"
    )
    assert data.hex() not in message.lower()
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
