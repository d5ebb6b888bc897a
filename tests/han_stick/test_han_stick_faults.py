"""What goes wrong between a stick and a meter, at the same boundary as the join test: the
meter refuses the install code, CBKE ends with a terminate status, the parent disappears."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path

import pytest
import zigpy.types as t
from zigpy.exceptions import DeliveryError

from tests.han_stick.stick_builder import STICK, close_stick, meter_and_stick, open_ihd
from tests.roles.han_builder import CA
from zse.cbke import SUITE1, SUITE2
from zse.cbke.ca import TestCA
from zse.cbke.machine import Established, Initiator, Terminated
from zse.cbke.messages import TerminateStatus
from zse.cbke.service import (
    KEY_ESTABLISHMENT,
    KeyEstablishmentEvent,
    KeyEstablishmentFailed,
    eui64_bytes,
)
from zse.installcode import InstallCode
from zse.radios.han import JoinFailed
from zse.roles.han import Joined, KeyEstablished, Left
from zse.zcl.se_endpoint import SE_ENDPOINT_ID

#: Another CA with its own issuer id, and one that reuses the meter CA's issuer id.
OTHER_CA = TestCA.generate(b"OTHERCA1", rng=random.Random(99))
IMPOSTOR_CA = TestCA.generate(CA.issuer, rng=random.Random(98))
ELSEWHERE = bytes.fromhex("000d6f00ffffffff")


async def test_a_wrong_install_code_is_refused_with_what_to_check(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    other = InstallCode.generate(rng=random.Random(1))
    sh = await meter_and_stick(tmp_path, serial_link, registered_code=other)
    ihd = await open_ihd(sh)
    try:
        with pytest.raises(JoinFailed, match=r"refused the join.*install code") as info:
            await ihd.start()
        assert info.value.status == 0x94  # EMBER_JOIN_FAILED, from stackStatusHandler
        assert str(sh.code) not in str(info.value)  # no secret in the message
        assert not sh.ncp.node.joined
        assert sh.ncp.node.network_key is None
    finally:
        await close_stick(sh)


@pytest.mark.parametrize(
    ("credentials", "status"),
    [
        # the stick's certificate is from another CA than the meter's
        (OTHER_CA.issue(eui64_bytes(STICK), SUITE1, rng=random.Random(2)), "UNKNOWN_ISSUER"),
        # same issuer id, another CA key: the keys differ and the MACs do not match
        (IMPOSTOR_CA.issue(eui64_bytes(STICK), SUITE1, rng=random.Random(5)), "BAD_KEY_CONFIRM"),
        # a certificate issued to another device: its subject is not the sender
        (CA.issue(ELSEWHERE, SUITE1, rng=random.Random(3)), "BAD_MESSAGE"),
        # suite 2 only, against a suite-1 meter: no common suite, nothing sent
        (CA.issue(eui64_bytes(STICK), SUITE2, rng=random.Random(4)), "UNSUPPORTED_SUITE"),
        # a suite-2 certificate not for key agreement, to a meter offering suite 2
        (
            CA.issue(eui64_bytes(STICK), SUITE2, key_usage=0x00, rng=random.Random(6)),
            "INVALID_CERTIFICATE",
        ),
    ],
)
async def test_cbke_terminated_leaves_no_key_and_says_why(
    tmp_path: Path, serial_link: Callable[..., None], credentials: object, status: str
) -> None:
    suites = (SUITE1, SUITE2) if status == "INVALID_CERTIFICATE" else (SUITE1,)
    sh = await meter_and_stick(tmp_path, serial_link, suites=suites)
    ihd = await open_ihd(sh, credentials=credentials)
    events: list[object] = []
    ihd.on_event(events.append)
    try:
        with pytest.raises(KeyEstablishmentFailed) as info:
            await ihd.start()
        assert info.value.status == TerminateStatus[status]
        assert any(isinstance(e, Joined) for e in events)
        assert not any(isinstance(e, KeyEstablished) for e in events)
        tc = sh.han.app.state.node_info.ieee
        assert sh.ncp.node.link_keys[tc] == sh.code.link_key  # still the install-code key
    finally:
        await close_stick(sh)


@pytest.mark.parametrize("version", [12, 18])
async def test_the_parent_disappears_and_the_stick_rejoins(
    tmp_path: Path, serial_link: Callable[..., None], version: int
) -> None:
    sh = await meter_and_stick(tmp_path, serial_link, version=version)
    ihd = await open_ihd(sh)
    events: list[object] = []
    ihd.on_event(events.append)
    try:
        await ihd.start()
        assert sh.device is not None
        meter = sh.han.app.state.node_info.ieee
        # the meter goes off the air: the next request is not delivered, the NCP reports the
        # network down, the secure rejoin and the Trust Center rejoin both fail: Left
        sh.han.air.silence(meter)
        with pytest.raises(DeliveryError, match="no APS acknowledgement"):
            await ihd.read_time()
        await asyncio.sleep(60)
        assert sh.ncp.rejoin_requests == [True, False]
        assert sh.device.rejoins == ["secure rejoin failed", "Trust Center rejoin failed"]
        assert Left(device=str(STICK)) in events
        # the meter is back: a rejoin (secure, with the network key the NCP kept) works
        sh.han.air.restore(meter)
        assert await sh.device.rejoin()
        assert sh.device.rejoins[-1] == "secure rejoin"
        assert sh.ncp.rejoin_requests[-1] is True
        rejoins = [r for name, r in sh.ncp.requests if name == "findAndRejoinNetwork"]
        assert all(("nodeType" in r) == (version >= 14) for r in rejoins)  # EZSP 14 added it
        reading = await ihd.read_time()  # and the meter answers again
        assert reading.values
    finally:
        await close_stick(sh)


async def test_a_busy_meter_answers_no_resources(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    """Four other devices have started key establishment and stall: every session of the
    meter's (four) is taken and none has stalled long enough to be evicted, so the stick's
    Initiate is answered with Terminate NO_RESOURCES and a wait time.

    Changed requirement (audit cbke-security, finding 4): the display used to give up at
    that first NO_RESOURCES. A busy meter's wait time means "try again after this" (SE
    C.3.1.3.4), and Silicon Labs' registration retries after it: the display now waits as
    told, tries again, and establishes the key once a session is free."""
    sh = await meter_and_stick(tmp_path, serial_link)
    han = sh.han
    ihd = await open_ihd(sh)
    assert sh.device is not None
    await sh.device.join()  # the stick is on the network, CBKE not started yet
    tc = eui64_bytes(han.app.state.node_info.ieee)
    clusters = [KEY_ESTABLISHMENT]
    for n in range(4):
        eui = t.EUI64.convert(f"00:0d:6f:00:0b:00:00:{n:02x}")
        code = InstallCode.generate(rng=random.Random(n))
        await han.esi.provision(eui, code, label=f"busy {n}")
        other = han.air.device(eui, install_code=code, channel=15)
        await other.join()
        endpoint = other.add_endpoint(1, in_clusters=clusters, out_clusters=clusters)
        stalled = Initiator(CA.issue(eui64_bytes(eui), SUITE1, rng=random.Random(n)), tc)
        (initiate,) = stalled.start(0.0).send
        await endpoint.send(0x0000, SE_ENDPOINT_ID, KEY_ESTABLISHMENT, initiate.command_id,
                            initiate.encode(), encrypt=False)  # fmt: skip
    await asyncio.sleep(1)  # the meter answers each, then waits for their Ephemeral Data
    outcomes: list[KeyEstablishmentEvent] = []
    han.esi.key_establishment.on_event(outcomes.append)
    seen: list[object] = []
    ihd.on_event(seen.append)
    loop = asyncio.get_running_loop()
    began = loop.time()
    try:
        await ihd.start()
        mine = [o.result for o in outcomes if o.partner == STICK]
        first, *_, last = mine
        assert isinstance(first, Terminated)
        assert first.status == TerminateStatus.NO_RESOURCES
        assert first.wait_time > 0
        assert isinstance(last, Established)
        assert loop.time() - began >= first.wait_time  # it waited as the meter said
        assert KeyEstablished(device=ihd.name, suite=1) in seen
    finally:
        await close_stick(sh)
