"""CBKE inside the NCP (mode b): the stick holds its certificate and private key in its tokens,
zse picks that over a credentials file, and the EZSP CBKE commands do the arithmetic (the fake
NCP's "firmware" is zse's hazmat code); suite 1 and suite 2, and the NCP refusing the partner.
Load control reports are signed by the NCP (EZSP ``dsaSign``) and verified by the ESI."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.han_stick.stick_builder import STICK, close_stick, meter_and_stick, open_ihd
from tests.roles.han_builder import CA
from tests.roles.test_roles_load_control_applied import lce
from zse.cbke import SUITE1, SUITE2
from zse.cbke.messages import TerminateStatus
from zse.cbke.service import KEY_ESTABLISHMENT_ATTEMPTS, KeyEstablishmentFailed, eui64_bytes
from zse.drlc.service import ReportReceived
from zse.roles.han import KeyEstablished

NCP_CBKE = {
    1: ["generateCbkeKeys", "calculateSmacs", "clearTemporaryDataMaybeStoreLinkKey"],
    2: [
        "generateCbkeKeys283k1",
        "calculateSmacs283k1",
        "clearTemporaryDataMaybeStoreLinkKey283k1",
    ],
}


@pytest.mark.parametrize(("suite", "version"), [(1, 8), (2, 8), (2, 13), (1, 18)])
async def test_cbke_runs_in_the_ncp_with_its_own_certificate(
    tmp_path: Path, serial_link: Callable[..., None], suite: int, version: int
) -> None:
    held = CA.issue(eui64_bytes(STICK), {1: SUITE1, 2: SUITE2}[suite], rng=random.Random(7))
    sh = await meter_and_stick(
        tmp_path, serial_link, tokens=[held], suites=(SUITE1, SUITE2), version=version
    )
    meter = sh.han.app.state.node_info.ieee
    ihd = await open_ihd(sh)
    events: list[object] = []
    ihd.on_event(events.append)
    try:
        assert sh.mode == f"in the radio (its own certificate, suite {suite})"
        await ihd.start()
        assert [e.suite for e in events if isinstance(e, KeyEstablished)] == [suite]
        assert sh.ncp.cbke_log == NCP_CBKE[suite]
        assert sh.device is not None
        assert sh.device.cbke_mode == f"in the radio (suite {suite})"
        # the key the NCP stored is the one the meter computed
        assert sh.ncp.node.link_keys[meter] != sh.code.link_key
        reading = await ihd.read_time()  # APS-encrypted with that key, both ways
        assert reading.values
        # load control reports: signed by the NCP's own suite-1 key (dsaSign), and the ESI's
        # check of the signature against the certificate it got in CBKE passes; a suite-2
        # key cannot sign them (no EZSP command, and the field holds 42 bytes): unsigned
        reports: list[ReportReceived] = []
        sh.han.esi.on_event(lambda e: reports.append(e) if isinstance(e, ReportReceived) else None)
        await sh.han.esi.settle()  # the ESI's lifecycle: the stick METER_READY
        sh.ncp.cbke_log.clear()
        await sh.han.esi.send_load_control(lce(77, 0x0FFF), device=str(STICK))
        await asyncio.sleep(5)
        signed = suite == 1
        assert [(r.report.event_status, r.signed) for r in reports][:2] == [
            (1, signed),
            (2, signed),
        ]
        assert sh.ncp.cbke_log[:2] == (["dsaSign", "dsaSign"] if signed else [])
    finally:
        await close_stick(sh)


async def started_with_a_suite1_token(
    tmp_path: Path, serial_link: Callable[..., None]
) -> tuple[Any, list[ReportReceived]]:
    """A stick holding a suite-1 certificate, keyed with the ESI, and the reports it records."""
    held = CA.issue(eui64_bytes(STICK), SUITE1, rng=random.Random(7))
    sh = await meter_and_stick(tmp_path, serial_link, tokens=[held])
    reports: list[ReportReceived] = []
    try:
        await (await open_ihd(sh)).start()
        sh.han.esi.on_event(lambda e: reports.append(e) if isinstance(e, ReportReceived) else None)
        await sh.han.esi.settle()
    except BaseException:
        await close_stick(sh)
        raise
    return sh, reports


async def test_a_report_the_ncp_signed_with_another_key_does_not_verify_at_the_esi(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    sh, reports = await started_with_a_suite1_token(tmp_path, serial_link)
    other = CA.issue(eui64_bytes(STICK), SUITE1, rng=random.Random(9))
    try:
        sh.ncp.dsa_key = other.private_key  # firmware signing with a key not the certificate's
        await sh.han.esi.send_load_control(lce(78, 0x0FFF), device=str(STICK))
        await asyncio.sleep(5)
        assert sh.ncp.cbke_log.count("dsaSign") >= 2  # the reports were signed and sent ...
        assert reports == []  # ... and the ESI refused each signature: nothing recorded
    finally:
        await close_stick(sh)


@pytest.mark.parametrize(
    "failure",
    [
        {"dsa_status": 0x70},  # EMBER_INVALID_CALL: e.g. another ECC operation pending
        {"dsa_reply": b"\x01" * 43},  # a handler that does not carry the message sent
        {"dsa_reply": b""},
    ],
)
async def test_the_ncp_failing_to_sign_holds_the_report_back_until_it_signs(
    tmp_path: Path, serial_link: Callable[..., None], failure: dict[str, Any]
) -> None:
    sh, reports = await started_with_a_suite1_token(tmp_path, serial_link)
    try:
        for name, value in failure.items():
            setattr(sh.ncp, name, value)
        await sh.han.esi.send_load_control(lce(79, 0x0FFF), device=str(STICK))
        await asyncio.sleep(5)
        assert reports == []  # never sent unsigned
        assert "dsaSign" in sh.ncp.cbke_log
        sh.ncp.dsa_status, sh.ncp.dsa_reply = 0x00, None
        await sh.han.esi.send_load_control(lce(79, 0x0FFF), device=str(STICK))  # any input
        await asyncio.sleep(5)
        assert [(r.report.event_status, r.signed) for r in reports][:2] == [(1, True), (2, True)]
    finally:
        await close_stick(sh)


async def test_the_ncp_refusing_the_meters_data_terminates_and_clears_its_cbke_state(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    held = CA.issue(eui64_bytes(STICK), SUITE1, rng=random.Random(8))
    sh = await meter_and_stick(tmp_path, serial_link, tokens=[held])
    sh.ncp.smacs_status = 0x3A  # the handler reports a failure (e.g. a bad partner certificate)
    ihd = await open_ihd(sh)
    try:
        with pytest.raises(KeyEstablishmentFailed) as info:
            await ihd.start()
        assert info.value.status == TerminateStatus.BAD_MESSAGE
        # BAD_MESSAGE may be a garbled frame: tried again, as many times as a HAN device
        # tries, each attempt's CBKE state cleared with storeLinkKey=False
        assert len(info.value.attempts) == KEY_ESTABLISHMENT_ATTEMPTS
        assert sh.ncp.cbke_log == NCP_CBKE[1] * KEY_ESTABLISHMENT_ATTEMPTS
        assert sh.ncp.stored_keys == []
        meter = sh.han.app.state.node_info.ieee
        assert sh.ncp.node.link_keys[meter] == sh.code.link_key
    finally:
        await close_stick(sh)


async def test_without_a_certificate_in_the_ncp_the_file_is_used_and_said_so(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    sh = await meter_and_stick(tmp_path, serial_link)
    await open_ihd(sh)
    try:
        assert sh.mode == "in the host (credentials file)"
        assert sh.ncp.cbke_log == []
    finally:
        await close_stick(sh)
