"""zse.cbke takes an EUI-64 as printed, as zigpy holds it or as certificates carry it
(eui64_bytes, TestCA.issue), and says which forms it takes when given another; importing it
stays sans-IO."""

from __future__ import annotations

import subprocess
import sys

import pytest
import zigpy.types as t

from zse.cbke import SUITE1, SUITE2, TestCA, eui64_bytes
from zse.errors import InvalidEui64

PRINTED = "00:1B:C5:00:07:00:05:2B"
OCTETS = bytes.fromhex("001BC5000700052B")  # most significant first, as in certificates


@pytest.mark.parametrize(
    "form", [OCTETS, bytearray(OCTETS), PRINTED, "001bc5000700052b", t.EUI64.convert(PRINTED)]
)
def test_every_form_gives_the_certificate_octets(form: object) -> None:
    assert eui64_bytes(form) == OCTETS  # type: ignore[arg-type]


@pytest.mark.parametrize("suite", [SUITE1, SUITE2])
def test_issue_takes_a_printed_eui64_and_a_zigpy_one(test_ca: TestCA, suite: object) -> None:
    for form in (PRINTED, t.EUI64.convert(PRINTED)):
        assert test_ca.issue(form, suite).eui64 == OCTETS  # type: ignore[arg-type]


def test_the_asyncio_layer_s_conversion_agrees() -> None:
    from zse.cbke.service import eui64_bytes as service_eui64_bytes  # noqa: PLC0415

    ieee = t.EUI64.convert(PRINTED)
    assert eui64_bytes(ieee) == service_eui64_bytes(ieee)


@pytest.mark.parametrize(
    ("form", "words"),
    [
        (0x001BC5000700052B, "subject EUI-64 as int; give 8 bytes"),
        (OCTETS[:7], "subject EUI-64 of 7 bytes; give 8 bytes"),
        ("00:1B:C5", "subject EUI-64 has 6 hex digits"),
    ],
)
def test_another_form_is_refused_naming_what_is_taken(
    test_ca: TestCA, form: object, words: str
) -> None:
    with pytest.raises(InvalidEui64) as error:
        test_ca.issue(form, SUITE1)  # type: ignore[arg-type]
    assert str(error.value).startswith(words)
    if not isinstance(form, str):
        assert "a printed EUI-64" in str(error.value)
        assert "zigpy EUI64" in str(error.value)


def test_importing_zse_cbke_imports_no_asyncio() -> None:
    code = "import sys, zse.cbke; print('asyncio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
