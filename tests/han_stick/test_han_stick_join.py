"""A HAN device on an EZSP stick joins the simulated meter by install code, runs CBKE in the
host (mode a) and uses the meter: bellows' real EZSP/ASH code over a fake serial link to a fake
NCP whose radio is a node on the simulator's air (tests/han_stick/fake_han_ncp.py), and the
ESI's own events on the other side say the same."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.han_stick.stick_builder import STICK, close_stick, meter_and_stick, open_ihd
from tests.oracles import require, zigbee_key_options
from tests.price.test_price_block import period
from tests.roles.han_builder import START
from tests.roles.test_roles_find_esi import (
    ESI_ENDPOINT,
    SE_CLUSTERS,
    answer_match_desc,
    match_desc_on_the_air,
    match_rsp,
)
from tests.roles.test_roles_ihd_energy import CONFIG, FLAT, serve_meter
from tests.roles.test_roles_load_control_applied import lce
from zse.drlc.service import ReportReceived
from zse.messaging import Message
from zse.messaging.service import MessageConfirmed
from zse.provisioning.lifecycle import LifecycleState
from zse.roles.han import EsiNotFound, Joined, KeyEstablished, Resynced
from zse.se.ids import TimeAttribute

RECEIVED, STARTED, OPTED_OUT = 0x01, 0x02, 0x04
FIELDS = [
    "zbee_aps.cluster",
    "zbee_zcl.cmd.id",
    "zbee_zcl_se.ke.cmd.srv_rx.id",
    "zbee_zcl_se.msg.cmd.srv_rx.id",
    "zbee_zcl_se.msg.message.id",
    "zbee_zcl_se.drlc.cmd.srv_rx.id",
    "zbee_zcl_se.drlc.report_event.issuer_id",
    "zbee_zcl_se.drlc.report_event.event_status",
    "zbee_aps.security",
]


def tshark(path: Path, *args: str) -> str:
    return subprocess.run(
        [require("tshark"), "-r", str(path), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout


@pytest.mark.oracle
@pytest.mark.parametrize("version", [12, 13, 14, 18])
async def test_the_stick_joins_keys_in_the_host_reads_prices_confirms_and_reports(
    tmp_path: Path, serial_link: Callable[..., None], version: int
) -> None:
    """EZSP 12 and 13 (EmberZNet 7.x: the key goes in as the Trust Center link key by
    ``importKey``), 14 and 18 (the Simplicity SDK's: renamed message fields, sl_status_t
    statuses). Below 12 CBKE in the host is refused (test_han_stick_ncp_setup.py)."""
    capture = tmp_path / "air.pcap"
    sh = await meter_and_stick(tmp_path, serial_link, capture=capture, version=version)
    han = sh.han
    serve_meter(han, 1_000_000, 1500)
    await han.esi.price.publish(FLAT)
    ihd = await open_ihd(sh, metering=True, metering_config=CONFIG)
    events: list[object] = []
    ihd.on_event(events.append)
    esi_events: list[object] = []
    han.esi.on_event(esi_events.append)
    try:
        await ihd.start()
        await asyncio.sleep(5)
        # joined by install code, the ESI found by Match_Desc, CBKE suite 1 in the host
        joined = [e for e in events if isinstance(e, Joined)]
        assert joined == [Joined(device=str(STICK), nwk=sh.ncp.node.nwk, esi_endpoint=9)]
        assert [e.suite for e in events if isinstance(e, KeyEstablished)] == [1]
        # the ESI's own record of the stick: admitted by install code, joined, keyed
        assert han.registry.get(str(STICK)).state == LifecycleState.METER_READY
        tc = han.app.state.node_info.ieee
        assert sh.ncp.node.link_keys[tc] != sh.code.link_key  # the TC link key is CBKE's
        key_commands = {name for name, _ in sh.ncp.requests if "Key" in name}
        assert key_commands == {"clearKeyTable", "importKey"}  # the table emptied, not written
        assert sh.ncp.security_bitmask is not None
        assert sh.ncp.security_bitmask & 0x0900 == 0x0900
        # the price at resync, then summation and demand from the meter
        resynced = [e for e in events if isinstance(e, Resynced)]
        assert resynced
        assert resynced[0].price_issuer_event_id == FLAT.issuer_event_id
        screen = ihd.showing_energy()
        assert (screen.consumption, screen.demand) == ("1000.000 kWh", "1.500 kW")
        assert screen.price == "0.2450/kWh"
        # a message needing confirmation: shown, confirmed, and the ESI records who confirmed
        await han.esi.send_message(
            Message(message_id=77, text="Peak at 5 pm", confirmation_required=True),
            device=str(STICK),
        )
        await asyncio.sleep(2)
        shown = ihd.showing()
        assert shown is not None
        assert shown.message_id == 77
        assert await ihd.confirm(77)
        await asyncio.sleep(1)
        confirmed = [e for e in esi_events if isinstance(e, MessageConfirmed)]
        assert [(e.device, e.message.message_id) for e in confirmed] == [(str(STICK), 77)]
        # a load control event: received and started, reported (signed) to the ESI
        await han.esi.send_load_control(lce(501, 0x0FFF), device=str(STICK))
        await asyncio.sleep(5)
        reports = [
            (r.report.issuer_event_id, r.report.event_status, r.signed)
            for r in esi_events
            if isinstance(r, ReportReceived) and r.device == str(STICK)
        ]
        assert (501, RECEIVED, True) in reports
        assert (501, STARTED, True) in reports
        # the user opts out: Report Event Status 0x04, signed
        await ihd.opt_out(501)
        await asyncio.sleep(2)
        opted = [
            r.report.event_status
            for r in esi_events
            if isinstance(r, ReportReceived) and r.report.event_status == OPTED_OUT
        ]
        assert opted == [OPTED_OUT]
        # a block period published to the stick (Publish Block Period, D.4.2.4.5)
        now = START + int(asyncio.get_running_loop().time())
        await han.esi.price.publish(period(21, start=now), dst=sh.ncp.node.nwk, dst_ep=1)
        await asyncio.sleep(2)
        current = ihd.price.block_periods.current(now + 60)
        assert current is not None
        assert current.issuer_event_id == 21
        # the stick's time: the ESI's Time cluster, read over the stick
        reading = await ihd.read_time()
        now = START + int(asyncio.get_running_loop().time())
        assert abs(reading.values[TimeAttribute.TIME] - now) <= 1
    finally:
        await close_stick(sh)
    # tshark on the air capture (keys from the air's key table) sees the stick's frames
    keys = zigbee_key_options(entry.line() for entry in han.air.keys)
    assert tshark(capture, *keys, "-Y", "zbee_zcl and (_ws.malformed or _ws.expert)") == ""
    stick = f"0x{sh.ncp.node.nwk:04x}"
    rows = tshark(
        capture,
        *keys,
        "-Y",
        f"zbee_nwk.src == {stick} and (zbee_zcl or zbee_zdp)",
        "-T",
        "fields",
        *[x for f in FIELDS for x in ("-e", f)],
    ).splitlines()
    zcl = [row.split("\t") for row in rows if row.split("\t")[0]]
    key_establishment = [row for row in zcl if row[0] == "0x0800"]
    # Read KeyEstablishmentSuite, Initiate, Ephemeral Data, Confirm Key: never APS-encrypted
    assert [row[2] for row in key_establishment if row[2]] == ["0x00", "0x01", "0x02"]
    assert {row[-1] for row in key_establishment} == {"0"}
    # everything else the stick sent in ZCL is APS-encrypted with the CBKE key
    assert {row[-1] for row in zcl if row[0] != "0x0800"} == {"1"}
    assert ["0x0703", "", "", "0x01", "0x0000004d", "", "", "", "1"] in zcl  # confirmation
    reports = [(row[6], row[7]) for row in zcl if row[0] == "0x0701" and row[5] == "0x00"]
    assert reports == [("0x000001f5", f"0x0{n}") for n in (1, 2, 4)]  # event 501, opted out
    assert any(row[0] == "0x000a" for row in zcl)  # the Time cluster read


async def test_group_messages_reach_the_stick_through_its_multicast_table(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    sh = await meter_and_stick(tmp_path, serial_link)
    ihd = await open_ihd(sh, zigbee_groups=[0x0101])
    try:
        await ihd.start()
        assert sh.ncp.multicast == {0x0101: 1}  # setMulticastTableEntry
        await sh.han.esi.send_message(
            Message(message_id=5, text="other street"), zigbee_group=0x0202
        )
        await asyncio.sleep(2)
        assert ihd.showing() is None  # not in the table: dropped by the NCP
        await sh.han.esi.send_message(Message(message_id=6, text="our street"), zigbee_group=0x0101)
        await asyncio.sleep(2)
        shown = ihd.showing()
        assert shown is not None
        assert shown.message_id == 6
    finally:
        await close_stick(sh)


@pytest.mark.oracle
async def test_the_stick_finds_the_meter_on_endpoint_11_by_match_desc_and_uses_it_there(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    """SE 5.4.7.1 over the stick: the meter serves on endpoint 11, not the usual 9. The
    display asks for its Key Establishment server (Match_Desc_req, as tshark reads it), keys
    there and uses the meter's Price, Messaging, DRLC, Time and Metering servers there."""
    capture = tmp_path / "air.pcap"
    sh = await meter_and_stick(tmp_path, serial_link, capture=capture, endpoint_id=ESI_ENDPOINT)
    han = sh.han
    serve_meter(han, 1_000_000, 1500)
    await han.esi.price.publish(FLAT)
    ihd = await open_ihd(sh, metering=True, metering_config=CONFIG)
    events: list[object] = []
    ihd.on_event(events.append)
    esi_events: list[object] = []
    han.esi.on_event(esi_events.append)
    try:
        await ihd.start()
        await asyncio.sleep(5)
        assert [e.esi_endpoint for e in events if isinstance(e, Joined)] == [ESI_ENDPOINT]
        assert [e.suite for e in events if isinstance(e, KeyEstablished)] == [1]
        resynced = [e.price_issuer_event_id for e in events if isinstance(e, Resynced)]
        assert resynced == [FLAT.issuer_event_id]
        screen = ihd.showing_energy()
        assert (screen.consumption, screen.demand) == ("1000.000 kWh", "1.500 kW")
        await han.esi.send_message(
            Message(message_id=78, text="Peak at 6 pm", confirmation_required=True),
            device=str(STICK),
        )
        await asyncio.sleep(2)
        assert await ihd.confirm(78)
        await asyncio.sleep(1)
        confirmed = [e for e in esi_events if isinstance(e, MessageConfirmed)]
        assert [e.message.message_id for e in confirmed] == [78]
        await han.esi.send_load_control(lce(502, 0x0FFF), device=str(STICK))
        await asyncio.sleep(5)
        reports = {
            (r.report.issuer_event_id, r.signed)
            for r in esi_events
            if isinstance(r, ReportReceived)
        }
        assert reports == {(502, True)}
        reading = await ihd.read_time()
        now = START + int(asyncio.get_running_loop().time())
        assert abs(reading.values[TimeAttribute.TIME] - now) <= 1
    finally:
        await close_stick(sh)
    keys = zigbee_key_options(entry.line() for entry in han.air.keys)
    stick = f"0x{sh.ncp.node.nwk:04x}"
    request, response = match_desc_on_the_air(capture, keys, stick)
    assert (request["zbee_nwk.dst"], request["zbee_zdp.nwk_addr"]) == (["0x0000"], ["0x0000"])
    assert (response["zbee_zdp.status"], response["zbee_zdp.endpoint"]) == (["0"], ["11"])
    rows = tshark(
        capture,
        *keys,
        "-Y",
        f"zbee_nwk.src == {stick} and zbee_nwk.dst == 0x0000 and zbee_aps.profile == 0x0109"
        " and zbee_aps.type == 0",
        "-T",
        "fields",
        "-e",
        "zbee_aps.dst",
        "-e",
        "zbee_aps.cluster",
    ).splitlines()
    assert {row.split("\t")[0] for row in rows} == {str(ESI_ENDPOINT)}
    assert {row.split("\t")[1] for row in rows} == {*SE_CLUSTERS, "0x0702"}  # and Metering


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (match_rsp(0x80, b""), r"status INV_REQUESTTYPE \(0x80\)$"),
        (bytes([0x00, 0x00, 0x00, 0x03, 0x0B]), r"Match_Desc_rsp does not decode"),
    ],
    ids=["error-status", "list-cut-short"],
)
async def test_a_bad_match_desc_rsp_to_the_stick_is_esi_not_found(
    tmp_path: Path,
    serial_link: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
    answer: bytes,
    error: str,
) -> None:
    """The meter's answer, not the stick, is at fault: EsiNotFound (``zse han`` prints it
    in one line), not an OSError blaming the USB link."""
    sh = await meter_and_stick(tmp_path, serial_link)
    ihd = await open_ihd(sh)
    try:
        answer_match_desc(monkeypatch, sh.han, answer)
        with pytest.raises(EsiNotFound, match=error):
            await ihd.start()
    finally:
        await close_stick(sh)
