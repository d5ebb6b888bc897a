"""CBKE inside the NCP (mode b): the stick holds its certificate and private key in its tokens,
zse picks that over a credentials file, and the EZSP CBKE commands do the arithmetic (the fake
NCP's "firmware" is zse's hazmat code); suite 1 and suite 2, and the NCP refusing the partner."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.han_stick.stick_builder import STICK, close_stick, meter_and_stick, open_ihd
from tests.roles.han_builder import CA
from tests.roles.test_roles_load_control_applied import lce
from zse.cbke import SUITE1, SUITE2
from zse.cbke.messages import TerminateStatus
from zse.cbke.service import KeyEstablishmentFailed, eui64_bytes
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
        # load control reports go out, unsigned: the private key is the NCP's (dsaSign unused)
        reports: list[ReportReceived] = []
        sh.han.esi.on_event(lambda e: reports.append(e) if isinstance(e, ReportReceived) else None)
        await sh.han.esi.settle()  # the ESI's lifecycle: the stick METER_READY
        await sh.han.esi.send_load_control(lce(77, 0x0FFF), device=str(STICK))
        await asyncio.sleep(5)
        assert [(r.report.event_status, r.signed) for r in reports][:2] == [(1, False), (2, False)]
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
        assert sh.ncp.cbke_log == NCP_CBKE[1]  # cleared with storeLinkKey=False
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
