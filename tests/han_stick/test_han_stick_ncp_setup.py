"""What the HAN path asks of the EmberZNet NCP itself (audit han-radios): CBKE's key as the
Trust Center link key, the SE configuration before the join, a router refusal, a certificate
without the CBKE library, firmware it does not support and beacons of another stack profile.
The fake NCP keeps the Trust Center link key apart from its key table and starts from the
firmware's configuration defaults, as EmberZNet does (tests/han_stick/fake_han_ncp.py)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path

import bellows.types as bt
import pytest

from tests.han_stick.stick_builder import STICK, close_stick, meter_and_stick, open_ihd
from tests.han_stick.test_han_stick_cli import options
from tests.roles.han_builder import CA, close
from zse.cbke import SUITE1
from zse.cbke.service import eui64_bytes
from zse.cli.han import run_han
from zse.radios.ezsp import EzspHanRadio, UnsupportedFirmware
from zse.radios.han import JoinFailed
from zse.roles.han import KeyEstablished
from zse.roles.han_stick import NoCredentials

TC_LINK = bt.SecurityManagerKeyType.TC_LINK


@pytest.mark.parametrize("version", [12, 13, 14, 18])
async def test_the_host_s_cbke_key_becomes_the_trust_center_link_key(
    tmp_path: Path, serial_link: Callable[..., None], version: int
) -> None:
    """The key CBKE computed in the host went into the NCP's key table, which EmberZNet does
    not use with the Trust Center: the stick kept encrypting with the install-code key while
    the meter used the new one. It is now imported as the TC link key (``importKey``)."""
    sh = await meter_and_stick(tmp_path, serial_link, version=version)
    ihd = await open_ihd(sh)
    events: list[object] = []
    ihd.on_event(events.append)
    try:
        await ihd.start()
        assert KeyEstablished(device=ihd.name, suite=1) in events
        tc = sh.han.app.state.node_info.ieee
        assert sh.ncp.node.link_keys[tc] != sh.code.link_key  # the TC link key is CBKE's
        assert sh.ncp.app_keys == {}  # nothing in the key table
        (imported,) = [r for name, r in sh.ncp.requests if name == "importKey"]
        assert imported["context"].core_key_type == TC_LINK
        assert imported["context"].eui64 == tc
        reading = await ihd.read_time()  # APS-encrypted both ways with the new key
        assert reading.values
    finally:
        await close_stick(sh)


async def test_below_ezsp_12_cbke_in_the_host_is_refused_before_joining(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    """EZSP 4-11 have no command that replaces the Trust Center link key: zse used to join,
    run CBKE and write a key the stack never used. It now says so before joining."""
    sh = await meter_and_stick(tmp_path, serial_link, version=8)
    try:
        with pytest.raises(NoCredentials, match=r"EZSP 8\).*Trust Center link key.*EZSP 12"):
            await open_ihd(sh)
        assert "joinNetwork" not in [name for name, _ in sh.ncp.requests]
    finally:
        await close_stick(sh)


async def test_the_ncp_is_configured_as_an_se_device_before_the_join(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    """Nothing was configured: the NCP joined with the firmware's stack profile 0 (not ZigBee
    PRO), no key table and without the SE profile's extended security bitmask."""
    sh = await meter_and_stick(tmp_path, serial_link)
    ihd = await open_ihd(sh)
    try:
        await ihd.start()
        assert sh.ncp.at_join is not None
        assert sh.ncp.at_join["CONFIG_STACK_PROFILE"] == 2
        assert sh.ncp.at_join["CONFIG_SECURITY_LEVEL"] == 5
        assert sh.ncp.at_join["CONFIG_KEY_TABLE_SIZE"] >= 1
        assert sh.ncp.at_join["CONFIG_MULTICAST_TABLE_SIZE"] >= 8
        assert sh.ncp.at_join["extended_security"] & 0x0100  # NWK_LEAVE_REQUEST_NOT_ALLOWED
        names = [name for name, _ in sh.ncp.requests]
        assert names.index("setConfigurationValue") < names.index("addEndpoint")
    finally:
        await close_stick(sh)


@pytest.mark.parametrize("version", [12, 13])
async def test_a_meter_refusing_routers_is_said_at_once(
    tmp_path: Path, serial_link: Callable[..., None], version: int
) -> None:
    """EZSP < 14 reports CANNOT_JOIN_AS_ROUTER (0x98), which zse ignored: it waited 30 s and
    said "no answer to joinNetwork"."""
    sh = await meter_and_stick(tmp_path, serial_link, version=version)
    sh.ncp.refuse_routers = True
    ihd = await open_ihd(sh)
    assert sh.device is not None
    sh.device.router = True
    loop = asyncio.get_running_loop()
    began = loop.time()
    try:
        with pytest.raises(JoinFailed, match=r"does not accept routers.*end device") as info:
            await ihd.start()
        assert info.value.status == 0x98
        assert loop.time() - began < 5
    finally:
        await close_stick(sh)


async def test_a_certificate_without_the_cbke_library_falls_back_to_the_file(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    """A stick whose tokens hold a certificate but whose firmware has no CBKE library was
    taken for "CBKE in the radio", which then failed with status 0xB5 ("check the USB
    link"). ``getLibraryStatus`` now says the library is missing: the credentials file is
    used."""
    held = CA.issue(eui64_bytes(STICK), SUITE1, rng=random.Random(21))
    sh = await meter_and_stick(tmp_path, serial_link, tokens=[held], libraries=set())
    ihd = await open_ihd(sh)
    events: list[object] = []
    ihd.on_event(events.append)
    try:
        assert sh.mode == "in the host (credentials file)"
        await ihd.start()
        assert KeyEstablished(device=ihd.name, suite=1) in events
        assert sh.ncp.cbke_log == []  # the NCP's CBKE commands were never tried
    finally:
        await close_stick(sh)


async def test_unsupported_firmware_is_one_line_and_the_port_is_closed(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    """EZSP 15 (no bellows table: bellows borrows another version's) was accepted; a refused
    version was reported as "cannot open the stick ... check the port"; a failed open left
    the port open."""
    sh = await meter_and_stick(tmp_path, serial_link, version=14)
    sh.ncp.version = 15  # what the firmware answers to the version command
    errors: list[str] = []
    try:
        with pytest.raises(UnsupportedFirmware, match=r"EZSP 15.*4-14, 16-19"):
            await EzspHanRadio.open("/dev/fake-ncp")
        assert sh.ncp.port.is_closing()
        status = await run_han(options(tmp_path, sh), watch=False, err=errors.append)
        assert status == 1
        assert errors == [
            "error: /dev/fake-ncp: the stick's firmware speaks EZSP 15, which zse does not "
            "support for a HAN device (supported: EZSP 4-14, 16-19)"
        ]
    finally:
        for task in list(sh.ncp.tasks):
            task.cancel()
        await close(sh.han)


async def test_a_network_of_another_stack_profile_is_not_joined(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    """Beacons were taken whatever their stack profile; a Smart Energy network is ZigBee
    PRO (stack profile 2)."""
    sh = await meter_and_stick(tmp_path, serial_link)
    sh.ncp.beacon_stack_profile = 1
    ihd = await open_ihd(sh)
    try:
        with pytest.raises(JoinFailed, match=r"no network permitting joins.*heard: none"):
            await ihd.start()
        assert "joinNetwork" not in [name for name, _ in sh.ncp.requests]
    finally:
        await close_stick(sh)
