"""ZB 3.2.2.1: the stick's active scan hears two networks and :class:`NetworkChoice` picks the
meter's by extended PAN id, channel or the meter's EUI-64 as Trust Center (checked once joined:
a beacon does not carry it). The meter is the simulated ESI on channel 15; another coordinator
on the same air, admitting the stick's install code too, is the neighbour's network."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zigpy.types as t

from tests.han_stick.stick_builder import STICK, StickHan, close_stick, meter_and_stick
from zse.radios.ezsp import EzspHanRadio
from zse.radios.han import JoinFailed
from zse.roles.han_stick import NetworkChoice, StickDevice

NEIGHBOUR_EPID = t.ExtendedPanId.convert("aa:bb:cc:dd:ee:ff:00:11")
NEIGHBOUR_TC = t.EUI64.convert("00:0d:6f:00:0e:00:00:99")
NEIGHBOUR_PAN = 0x4242
ELSEWHERE = t.EUI64.convert("00:0d:6f:00:0e:00:00:01")


async def two_networks(
    tmp_path: Path,
    serial_link: Callable[..., None],
    *,
    channel: int,
    neighbour_permits: bool = True,
) -> tuple[StickHan, Any]:
    """The meter on channel 15 and the neighbour's network on ``channel``, both admitting the
    stick (the neighbour only if ``neighbour_permits``)."""
    sh = await meter_and_stick(tmp_path, serial_link)
    neighbour = await sh.han.air.coordinator(
        channel=channel, pan_id=NEIGHBOUR_PAN, extended_pan_id=NEIGHBOUR_EPID, ieee=NEIGHBOUR_TC
    )
    if neighbour_permits:
        await neighbour.permit_with_link_key(STICK, t.KeyData(sh.code.link_key), 600)
    sh.radio = await EzspHanRadio.open("/dev/fake-ncp")
    return sh, neighbour


def stick(sh: StickHan, choice: NetworkChoice) -> StickDevice:
    assert sh.radio is not None
    sh.device = StickDevice(sh.radio, link_key=sh.code.link_key, choice=choice)
    return sh.device


async def end(sh: StickHan, neighbour: Any) -> None:
    await neighbour.shutdown()
    await close_stick(sh)


def meter_of(sh: StickHan) -> tuple[t.ExtendedPanId, t.EUI64]:
    return sh.han.app.state.network_info.extended_pan_id, sh.han.app.state.node_info.ieee


def requests(sh: StickHan, name: str) -> list[dict[str, Any]]:
    return [request for sent, request in sh.ncp.requests if sent == name]


async def scanned(sh: StickHan, channels: tuple[int, ...]) -> list[tuple[int, t.ExtendedPanId]]:
    assert sh.radio is not None
    return sorted((n.channel, n.extended_pan_id) for n in await sh.radio.scan(channels))


@pytest.mark.parametrize("neighbour_is_chosen", [False, True])
async def test_two_networks_on_one_channel_the_extended_pan_id_chooses(
    tmp_path: Path, serial_link: Callable[..., None], neighbour_is_chosen: bool
) -> None:
    sh, neighbour = await two_networks(tmp_path, serial_link, channel=15)
    try:
        meter_epid, meter = meter_of(sh)
        assert await scanned(sh, (15,)) == sorted([(15, meter_epid), (15, NEIGHBOUR_EPID)])
        epid, tc = (NEIGHBOUR_EPID, NEIGHBOUR_TC) if neighbour_is_chosen else (meter_epid, meter)
        device = stick(sh, NetworkChoice(extended_pan_id=epid, channels=(15,)))
        await device.join()
        assert device.state is not None
        assert (device.state.extended_pan_id, device.state.trust_center) == (epid, tc)
        assert len(requests(sh, "joinNetwork")) == 1  # the other network was never tried
    finally:
        await end(sh, neighbour)


@pytest.mark.parametrize("neighbour_is_chosen", [False, True])
async def test_two_networks_on_two_channels_the_channel_chooses(
    tmp_path: Path, serial_link: Callable[..., None], neighbour_is_chosen: bool
) -> None:
    sh, neighbour = await two_networks(tmp_path, serial_link, channel=20)
    try:
        meter_epid, meter = meter_of(sh)
        assert await scanned(sh, (15, 20)) == [(15, meter_epid), (20, NEIGHBOUR_EPID)]
        channel, tc = (20, NEIGHBOUR_TC) if neighbour_is_chosen else (15, meter)
        device = stick(sh, NetworkChoice(channels=(channel,)))
        await device.join()
        assert device.state is not None
        assert (device.state.channel, device.state.trust_center) == (channel, tc)
        assert len(requests(sh, "joinNetwork")) == 1
    finally:
        await end(sh, neighbour)


async def test_the_meter_s_eui64_accepts_the_meter_s_network_heard_first(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    sh, neighbour = await two_networks(tmp_path, serial_link, channel=20)
    try:
        meter_epid, meter = meter_of(sh)
        device = stick(sh, NetworkChoice(channels=(15, 20), meter=meter))
        await device.join()
        assert device.state is not None
        assert (device.state.extended_pan_id, device.state.trust_center) == (meter_epid, meter)
        assert (len(requests(sh, "joinNetwork")), requests(sh, "leaveNetwork")) == (1, [])
    finally:
        await end(sh, neighbour)


async def test_the_meter_s_eui64_rejects_the_other_trust_center_and_the_next_is_joined(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    # the neighbour on channel 11 is heard first (as loud as the meter): joined, found to be
    # run by another Trust Center, left; then the meter's network on channel 15
    sh, neighbour = await two_networks(tmp_path, serial_link, channel=11)
    try:
        meter_epid, meter = meter_of(sh)
        device = stick(sh, NetworkChoice(channels=(11, 15), meter=meter))
        await device.join()
        assert device.state is not None
        assert (device.state.extended_pan_id, device.state.trust_center) == (meter_epid, meter)
        joins = requests(sh, "joinNetwork")
        assert [int(j["parameters"].radioChannel) for j in joins] == [11, 15]
        assert len(requests(sh, "leaveNetwork")) == 1
    finally:
        await end(sh, neighbour)


async def test_the_meter_s_eui64_can_choose_the_network_heard_second(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    sh, neighbour = await two_networks(tmp_path, serial_link, channel=20)
    try:
        device = stick(sh, NetworkChoice(channels=(15, 20), meter=NEIGHBOUR_TC))
        await device.join()
        assert device.state is not None
        assert (device.state.channel, device.state.trust_center) == (20, NEIGHBOUR_TC)
        assert device.state.extended_pan_id == NEIGHBOUR_EPID
        assert len(requests(sh, "leaveNetwork")) == 1  # the meter, heard first, was left
    finally:
        await end(sh, neighbour)


async def test_no_trust_center_is_the_meter_names_the_last_one_and_stays_off(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    sh, neighbour = await two_networks(tmp_path, serial_link, channel=20)
    try:
        device = stick(sh, NetworkChoice(channels=(15, 20), meter=ELSEWHERE))
        with pytest.raises(JoinFailed, match=rf"PAN 0x{NEIGHBOUR_PAN:04X} is run by") as info:
            await device.join()
        assert f"{NEIGHBOUR_TC}, not the meter {ELSEWHERE}" in str(info.value)
        assert device.state is None
        assert len(requests(sh, "joinNetwork")) == 2
        assert len(requests(sh, "leaveNetwork")) == 2
        assert not sh.ncp.node.joined
    finally:
        await end(sh, neighbour)


async def test_no_network_matches_the_extended_pan_id_and_both_heard_are_named(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    sh, neighbour = await two_networks(tmp_path, serial_link, channel=20)
    try:
        other = t.ExtendedPanId.convert("01:02:03:04:05:06:07:08")
        device = stick(sh, NetworkChoice(extended_pan_id=other, channels=(15, 20)))
        with pytest.raises(JoinFailed, match="no network permitting joins") as info:
            await device.join()
        meter_pan = sh.han.app.state.network_info.pan_id
        assert f"PAN 0x{meter_pan:04X} on 15, PAN 0x{NEIGHBOUR_PAN:04X} on 20" in str(info.value)
        assert requests(sh, "joinNetwork") == []
        assert device.state is None
    finally:
        await end(sh, neighbour)


async def test_no_network_on_the_chosen_channel(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    sh, neighbour = await two_networks(tmp_path, serial_link, channel=20)
    try:
        device = stick(sh, NetworkChoice(channels=(25,)))
        with pytest.raises(JoinFailed, match=r"on channels \[25\] \(heard: none\)"):
            await device.join()
        assert requests(sh, "joinNetwork") == []
    finally:
        await end(sh, neighbour)


async def test_a_closed_network_is_heard_but_not_chosen(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    # the neighbour on channel 11, heard first, does not permit joining: the meter is joined
    sh, neighbour = await two_networks(tmp_path, serial_link, channel=11, neighbour_permits=False)
    try:
        _meter_epid, meter = meter_of(sh)
        device = stick(sh, NetworkChoice(channels=(11, 15)))
        await device.join()
        assert device.state is not None
        assert (device.state.channel, device.state.trust_center) == (15, meter)
        assert len(requests(sh, "joinNetwork")) == 1
    finally:
        await end(sh, neighbour)


async def test_two_networks_that_both_match_the_loudest_is_joined(
    tmp_path: Path, serial_link: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    # nothing tells the two apart: the network heard with the best link quality is tried first
    sh, neighbour = await two_networks(tmp_path, serial_link, channel=11)
    scan = sh.ncp.node.scan

    async def louder_meter(channels: tuple[int, ...] | None = None) -> list[Any]:
        return [
            dataclasses.replace(b, lqi=255 if b.channel == 15 else 120)
            for b in await scan(channels)
        ]

    monkeypatch.setattr(sh.ncp.node, "scan", louder_meter)
    try:
        _meter_epid, meter = meter_of(sh)
        device = stick(sh, NetworkChoice(channels=(11, 15)))
        await device.join()
        assert device.state is not None
        assert (device.state.channel, device.state.trust_center) == (15, meter)
        assert len(requests(sh, "joinNetwork")) == 1
    finally:
        await end(sh, neighbour)


async def test_a_new_join_starts_with_an_empty_key_table(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    """A stick that had been on meter A's network kept A's link keys in its key table when
    it joined meter B (Silicon Labs' framework clears the table before any join,
    ``emAfClearLinkKeyTable``): ``clearKeyTable`` now precedes every new join; a resume keeps
    the table, the network's own."""
    sh, neighbour = await two_networks(tmp_path, serial_link, channel=20)
    try:
        meter_epid, meter = meter_of(sh)
        first = stick(sh, NetworkChoice(extended_pan_id=NEIGHBOUR_EPID, channels=(20,)))
        await first.join()
        # meter A's key in the key table, where zse wrote CBKE's key before it became the TC
        # link key (and any other program using the stick may have written one)
        sh.ncp.key_table[NEIGHBOUR_TC] = 0
        sh.ncp.app_keys[NEIGHBOUR_TC] = bytes(range(16))
        assert sh.radio is not None
        await sh.radio.close()  # the host restarts; the NCP keeps its network in its tokens
        sh.radio = await EzspHanRadio.open("/dev/fake-ncp")
        resumed = stick(sh, NetworkChoice(extended_pan_id=NEIGHBOUR_EPID, channels=(20,)))
        await resumed.join()  # the same network, from the NCP's tokens: nothing cleared
        assert resumed.tc_ieee == NEIGHBOUR_TC
        assert NEIGHBOUR_TC in sh.ncp.app_keys
        await resumed.leave()
        second = stick(sh, NetworkChoice(extended_pan_id=meter_epid, channels=(15,)))
        await second.join()
        assert second.tc_ieee == meter
        assert (sh.ncp.app_keys, sh.ncp.key_table) == ({}, {})  # nothing of meter A's
        names = [name for name, _request in sh.ncp.requests]
        last = len(names) - names[::-1].index("setInitialSecurityState") - 1
        assert names[last - 1] == "clearKeyTable"  # just before the install-code key is set
    finally:
        await end(sh, neighbour)


async def test_a_closed_device_no_longer_rejoins(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    """A StickDevice given up stayed subscribed to its radio for good: when the network went
    down it rejoined, under the join of the device that replaced it (which then failed).
    ``close()`` unsubscribes it and cancels a rejoin under way."""
    sh, neighbour = await two_networks(tmp_path, serial_link, channel=20)
    try:
        meter_epid, meter = meter_of(sh)
        first = stick(sh, NetworkChoice(extended_pan_id=NEIGHBOUR_EPID, channels=(20,)))
        await first.join()
        await first.close()
        await sh.ncp.node.leave()  # the network goes down under the closed device
        second = stick(sh, NetworkChoice(extended_pan_id=meter_epid, channels=(15,)))
        await second.join()
        assert second.tc_ieee == meter
        assert (requests(sh, "findAndRejoinNetwork"), first.rejoins) == ([], [])
    finally:
        await end(sh, neighbour)
