"""Report Event Status signatures (D.2.3.3.1.1.10-11) checked by the OpenSSL CLI: ECDSA over
the AES-MMO digest of the command's first ten fields, exactly as they are on the wire."""

from __future__ import annotations

import pytest

from tests.cbke_hazmat.test_cbke_hazmat_openssl import OpenSSL, openssl, signature_to_der
from zse.cbke import SUITE1, TestCA
from zse.drlc import StatusReport
from zse.drlc.service import _report_payload
from zse.drlc.wire import Drlc
from zse.installcode import mmo_hash
from zse.zcl.codec import decode_command

pytestmark = pytest.mark.oracle
__all__ = ["openssl"]


def test_signature_covers_the_first_ten_wire_fields_and_openssl_verifies_it(openssl: OpenSSL):
    credentials = TestCA.generate().issue(bytes.fromhex("000D6F000D000011"), SUITE1)
    report = StatusReport(
        issuer_event_id=0x01020304,
        event_status=0x02,
        event_status_time=800_000_123,
        criticality_level_applied=0x04,
        cooling_temperature_set_point_applied=2700,
        heating_temperature_set_point_applied=-0x8000,
        average_load_adjustment_percentage_applied=-20,
        duty_cycle_applied=50,
        event_control=0x03,
    )
    payload = _report_payload(report, credentials)
    assert len(payload) == 18 + 42
    assert payload[:18] == report.signed_bytes(0x01)
    command, rest = decode_command(Drlc, 0x00, payload, from_server=False)
    assert rest == b""
    assert int(command.signature_type) == 0x01
    signature = bytes(command.signature)
    r, s = int.from_bytes(signature[:21]), int.from_bytes(signature[21:])
    d = int.from_bytes(credentials.private_key)
    key = openssl.key_from_scalar(SUITE1.curve, d)
    assert openssl.compressed_public_key(key, SUITE1.curve) == credentials.public_key
    digest = openssl.write(mmo_hash(payload[:18]))
    sig = openssl.write(signature_to_der(r, s))
    out = openssl.run(
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        openssl.public_pem(key),
        "-in",
        digest,
        "-sigfile",
        sig,
    )
    assert b"Signature Verified Successfully" in out
    tampered = openssl.write(mmo_hash(payload[:17] + b"\x02"))
    with pytest.raises(AssertionError, match="failed"):
        openssl.run(
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            openssl.public_pem(key),
            "-in",
            tampered,
            "-sigfile",
            sig,
        )


def test_unsigned_report_has_type_zero_and_42_bytes_of_ff():
    report = StatusReport(
        issuer_event_id=1, event_status=1, event_status_time=1, criticality_level_applied=1
    )
    payload = _report_payload(report, None)
    assert payload[17] == 0x00
    assert payload[18:] == b"\xff" * 42
