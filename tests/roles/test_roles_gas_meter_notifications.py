"""SE 1.2 mirror notifications on the simulated air: a sleepy gas meter configures its mirror,
the ESI raises flags, the meter learns them from the mirror's answer to its next report and
acts on them; the flags survive an ESI restart; tshark reads the frames."""

from __future__ import annotations

import asyncio
import subprocess

import pytest
import zigpy.types as t
from zigpy.zcl import foundation

from tests.events.test_events_store_failure import FailingStore
from tests.oracles import require, zigbee_key_options
from tests.roles.han_builder import CA, build, close
from tests.roles.test_roles_gas_meter_mirror import GAS_EUI, NAMESPACE, meter
from zse.cbke import SUITE1
from zse.cbke.service import eui64_bytes
from zse.errors import InvalidEui64, StoreError
from zse.metering.core import Readings
from zse.metering.notification import (
    FUNCTIONAL_FLAGS,
    PRICE_FLAGS,
    FunctionalFlag,
    MirrorConfigured,
    NotifiedMessageRequested,
    PriceFlag,
)
from zse.pcap import PcapWriter
from zse.roles.esi import EnergyServiceInterface
from zse.roles.gas_meter import STAY_AWAKE_SECONDS, NotificationsReceived
from zse.se.ids import METERING, MeteringClientCommand
from zse.store import Store

S = foundation.Status
GAS = t.EUI64.convert(GAS_EUI)
SERVER_TO_CLIENT = foundation.Direction.Server_to_Client


def received(han) -> list[NotificationsReceived]:
    return [e for e in han.device_events[GAS_EUI] if isinstance(e, NotificationsReceived)]


async def test_the_meter_acts_on_the_flags_after_its_next_report(tmp_path):
    han = await build(tmp_path, mirrors=1)
    try:
        gas = await meter(han, GAS_EUI, notifications=2)  # scheme B
        configured = [e for e in han.events if isinstance(e, MirrorConfigured)]
        assert configured == [
            MirrorConfigured(
                device=GAS,
                endpoint=10,
                command_id=MeteringClientCommand.CONFIGURE_MIRROR,
                reporting=True,
                scheme=2,
                reporting_interval=1800,
            )
        ]
        # nothing raised: the answer carries no flag, the meter does nothing
        assert await gas.wake_up(Readings(summation_delivered=1_000)) == S.SUCCESS
        assert received(han) == []
        mirrors = han.esi.mirrors
        assert mirrors is not None
        wanted = FunctionalFlag.TIME_SYNC | FunctionalFlag.STAY_AWAKE_REQUEST_HAN
        await mirrors.raise_flags(GAS_EUI, wanted)
        await mirrors.raise_flags(GAS, PriceFlag.PUBLISH_PRICE, PRICE_FLAGS)
        # persisted before raise_flags returned: a kill -9 now keeps them
        stored = await han.registry.store.load(NAMESPACE)
        assert stored["10"]["notify"]["flags"] == {"0000": int(wanted), "0001": 1}
        assert gas.awake_until is None
        now = han.clock()
        assert await gas.wake_up(Readings(summation_delivered=1_100)) == S.SUCCESS
        (event,) = received(han)
        assert event.flags == {FUNCTIONAL_FLAGS: int(wanted), PRICE_FLAGS: 1}
        assert event.names == ("TIME_SYNC", "STAY_AWAKE_REQUEST_HAN", "PUBLISH_PRICE")
        assert event.actions == ("time_sync", "stay_awake", "get_current_price")
        assert gas.awake_until is not None
        assert now + STAY_AWAKE_SECONDS <= gas.awake_until <= han.clock() + STAY_AWAKE_SECONDS
        # the meter asked for what is behind them: the ESI's application is told, flags cleared
        asked = [e for e in han.events if isinstance(e, NotifiedMessageRequested)]
        assert [(e.attribute, e.flags) for e in asked] == [
            (FUNCTIONAL_FLAGS, int(wanted)),
            (PRICE_FLAGS, 1),
        ]
        assert mirrors.pool.notifications(10).flags == {}
        await gas.wake_up(Readings(summation_delivered=1_200))
        assert len(received(han)) == 1  # nothing new to act on
        # the mirror still holds the reports
        assert mirrors.pool.values(10)[0x0000][1] == 1_200
    finally:
        await close(han)


async def test_the_flags_are_served_as_the_mirrors_client_attributes(tmp_path):
    han = await build(tmp_path, mirrors=1)
    try:
        gas = await meter(han, GAS_EUI, notifications=1)
        assert han.esi.mirrors is not None
        await han.esi.mirrors.raise_flags(GAS_EUI, FunctionalFlag.DISPLAY_MESSAGE)
        reply = await gas.endpoint.request(
            0x0000,
            10,
            METERING,
            foundation.GeneralCommand.Read_Attributes,
            t.List[t.uint16_t]([0x0000, 0x0001]).serialize(),
            cluster_specific=False,
            direction=SERVER_TO_CLIENT,  # the Metering client's attributes (ZCL 2.4.1.1.3)
            encrypt=True,
        )
        records, _ = t.List[foundation.ReadAttributeRecord].deserialize(reply.payload)
        assert [(r.attrid, r.value.type, r.value.value) for r in records] == [
            (0x0000, 0x1B, FunctionalFlag.DISPLAY_MESSAGE),
            (0x0001, 0x1B, 0),
        ]
    finally:
        await close(han)


async def test_a_restarted_esi_keeps_the_settings_and_flags(tmp_path):
    han = await build(tmp_path, mirrors=1)
    try:
        gas = await meter(han, GAS_EUI, notifications=1)
        assert han.esi.mirrors is not None
        await han.esi.mirrors.raise_flags(GAS_EUI, FunctionalFlag.STAY_AWAKE_REQUEST_HAN)
        await han.esi.stop()
        loop = asyncio.get_running_loop()
        han.esi = EnergyServiceInterface(
            han.app,
            credentials=CA.issue(eui64_bytes(han.app.state.node_info.ieee), SUITE1),
            registry=han.registry,
            clock=lambda: 800_000_000 + int(loop.time()),
            mirrors=1,
        )
        han.esi.on_event(han.events.append)
        await han.esi.start()
        await gas.wake_up(Readings(summation_delivered=7))
        (event,) = received(han)
        assert event.actions == ("stay_awake",)
    finally:
        await close(han)


@pytest.mark.oracle
async def test_the_notification_frames_on_the_air_as_tshark_reads_them(tmp_path):
    """Configure Mirror, the report and its Mirror Report Attribute Response, Get Notified
    Message: captured on the simulator, dissected by tshark 4.0 with no malformed packet."""
    capture = tmp_path / "notify.pcap"
    han = await build(tmp_path, mirrors=1)
    try:
        han.air.capture = PcapWriter(capture)
        gas = await meter(han, GAS_EUI, notifications=1)
        assert han.esi.mirrors is not None
        await han.esi.mirrors.raise_flags(GAS_EUI, FunctionalFlag.STAY_AWAKE_REQUEST_HAN)
        await gas.wake_up(Readings(summation_delivered=5))
        await asyncio.sleep(1)
    finally:
        await close(han)
    tshark = require("tshark")
    keys = zigbee_key_options(entry.line() for entry in han.air.keys)
    fields = [
        "zbee_zcl_se.met.cmd.srv_tx.id",
        "zbee_zcl_se.met.cmd.srv_rx.id",
        "zbee_zcl_se.met.configure_mirror.notification_scheme",
        "zbee_zcl_se.met.mirror_report_attribute_response.notification_scheme",
        "zbee_zcl_se.met.attr.func_noti_flag.stay_awake_request_han",
        "zbee_zcl_se.met.get_notified_msg.notification_flag_attribute_id",
    ]

    def run(*args: str) -> str:
        return subprocess.run(
            [tshark, "-r", str(capture), *keys, *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout

    assert run("-Y", "zbee_zcl and (_ws.malformed or _ws.expert)") == ""
    rows = [
        line.split("\t")
        for line in run(
            "-Y",
            "zbee_aps.cluster == 0x0702 and zbee_zcl.type == 1",
            "-T",
            "fields",
            *[x for f in fields for x in ("-e", f)],
        ).splitlines()
    ]
    assert rows == [
        ["0x01", "", "", "", "", ""],  # Request Mirror
        ["", "0x01", "", "", "", ""],  # Request Mirror Response
        ["0x08", "", "0x01", "", "", ""],  # Configure Mirror, scheme A
        ["", "0x09", "", "0x01", "1", ""],  # Mirror Report Attribute Response: stay awake
        ["0x0b", "", "", "", "1", "0"],  # Get Notified Message for it
    ]


async def test_a_get_notified_message_whose_write_fails_clears_nothing(tmp_path):
    """The mirror's store write fails (a full disk) at the meter's Get Notified Message: it is
    answered FAILURE, the flags stay raised and the application is told nothing; the meter's
    next Get Notified Message hands the application what is behind them. The flags were
    cleared in memory, so the retry found none and the notification was lost."""
    han = await build(tmp_path, mirrors=1)
    failing = await FailingStore.open(tmp_path / "failing.db")
    try:
        gas = await meter(han, GAS_EUI, notifications=1)
        mirrors = han.esi.mirrors
        assert mirrors is not None
        wanted = int(FunctionalFlag.DISPLAY_MESSAGE)
        await mirrors.raise_flags(GAS_EUI, wanted)
        mirrors.store = failing  # the mirrors' next write fails
        failing.fail_next = True
        assert await gas.get_notified_message(1, FUNCTIONAL_FLAGS, wanted) == S.FAILURE
        assert mirrors.pool.notifications(10).flags == {FUNCTIONAL_FLAGS: wanted}
        assert [e for e in han.events if isinstance(e, NotifiedMessageRequested)] == []
        assert await gas.get_notified_message(1, FUNCTIONAL_FLAGS, wanted) == S.SUCCESS
        asked = [e for e in han.events if isinstance(e, NotifiedMessageRequested)]
        assert [(e.attribute, e.flags) for e in asked] == [(FUNCTIONAL_FLAGS, wanted)]
        assert mirrors.pool.notifications(10).flags == {}
    finally:
        await Store.close(failing)
        await close(han)


async def test_flags_whose_write_fails_are_not_raised(tmp_path):
    """raise_flags / clear_flags whose store write fails raise StoreError and change nothing:
    the mirror serves what the store holds (the flags were changed in memory)."""
    han = await build(tmp_path, mirrors=1)
    failing = await FailingStore.open(tmp_path / "failing.db")
    try:
        await meter(han, GAS_EUI, notifications=1)
        mirrors = han.esi.mirrors
        assert mirrors is not None
        await mirrors.raise_flags(GAS_EUI, FunctionalFlag.TIME_SYNC)
        mirrors.store = failing
        failing.fail_next = True
        with pytest.raises(StoreError):
            await mirrors.raise_flags(GAS_EUI, FunctionalFlag.DISPLAY_MESSAGE)
        assert mirrors.pool.notifications(10).flags == {FUNCTIONAL_FLAGS: FunctionalFlag.TIME_SYNC}
        failing.fail_next = True
        with pytest.raises(StoreError):
            await mirrors.clear_flags(GAS_EUI, FunctionalFlag.TIME_SYNC)
        assert mirrors.pool.notifications(10).flags == {FUNCTIONAL_FLAGS: FunctionalFlag.TIME_SYNC}
    finally:
        await Store.close(failing)
        await close(han)


async def test_flags_for_a_malformed_eui64_are_an_invalid_eui64(tmp_path):
    """``raise_flags`` / ``clear_flags`` of a device given as text of the wrong length let
    zigpy's ``EUI64.convert`` assert (AssertionError; under ``python -O``, an EUI64 of that
    length); it is an InvalidEui64 (a ValueError) naming the problem, nothing changed."""
    han = await build(tmp_path, mirrors=1)
    try:
        mirrors = han.esi.mirrors
        assert mirrors is not None
        for device in ("", "00:0d", "00:0d:6f:00:0a:00:00:01:02"):
            for change in (mirrors.raise_flags, mirrors.clear_flags):
                with pytest.raises(InvalidEui64, match=r"EUI-64 (is empty|has .* hex digits)"):
                    await change(device, FunctionalFlag.TIME_SYNC)
        assert await han.registry.store.load(NAMESPACE) == {}
    finally:
        await close(han)
