"""SE 5.4.7.1: a HAN device finds the ESI by a ZDO Match_Desc_req to the coordinator for a Key
Establishment server on the SE profile, and uses the endpoint answered; it does not assume
the usual endpoint 9. The ESI here serves on endpoint 11 (``EnergyServiceInterface(...,
endpoint_id=11)``); the air capture, read by tshark, shows the request, the answer and every
SE frame going to endpoint 11. A coordinator with no such server, or whose answer is an
error status or garbage, gives one :class:`~zse.roles.han.EsiNotFound` saying why."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
import zigpy.types as t
import zigpy.zdo.types as zdo_t

from tests.interpan.tshark_json import dissect
from tests.oracles import zigbee_key_options
from tests.roles.han_builder import EUIS, Han, build, close
from tests.roles.test_roles_ihd_energy import FLAT
from tests.roles.test_roles_load_control_applied import lce
from zse.drlc.service import ReportReceived
from zse.messaging import Message
from zse.messaging.service import MessageConfirmed
from zse.metering.service import MeterNotFound, find_meter
from zse.roles.han import EsiNotFound, Joined, KeyEstablished, Resynced
from zse.se.ids import KEY_ESTABLISHMENT, METERING, TimeAttribute

ESI_ENDPOINT = 11
#: The ihd's SE client clusters, each of which it uses on the ESI's endpoint (Calendar
#: 0x0707: Get Calendar at resync; Device Management 0x0708: its resync asks for the change of
#: tenancy, supplier, site id, CIN).
SE_CLUSTERS = {"0x0800", "0x0700", "0x0701", "0x0703", "0x0707", "0x000a", "0x0708"}


def answer_match_desc(
    monkeypatch: pytest.MonkeyPatch, han: Han, answer: bytes, cluster: int = KEY_ESTABLISHMENT
) -> None:
    """The coordinator answers a Match_Desc_req for ``cluster`` (its one input cluster) with
    ``answer`` after the request's sequence number, on the air (a broken or hostile ESI);
    other ZDO requests as before."""
    node = han.app.radio
    serve = node._zdo_serve

    def hostile(ind: Any) -> bool:
        # sequence number, NWKAddrOfInterest, ProfileID, NumInClusters, InClusterList
        asked = ind.payload[6:8] if ind.payload[5:6] == b"\x01" else b""
        if ind.cluster_id == zdo_t.ZDOCmd.Match_Desc_req and asked == cluster.to_bytes(2, "little"):
            node._spawn(
                node.send_aps(
                    dst_mode=t.AddrMode.NWK,
                    dst_addr=ind.src_nwk,
                    dst_ep=0,
                    src_ep=0,
                    cluster_id=zdo_t.ZDOCmd.Match_Desc_rsp,
                    profile_id=0,
                    payload=ind.payload[:1] + answer,
                )
            )
            return True
        return bool(serve(ind))

    monkeypatch.setattr(node, "_zdo_serve", hostile)


def match_rsp(status: int, endpoints: bytes) -> bytes:
    """A Match_Desc_rsp after its sequence number (ZB 2.4.4.2.7): status, NWKAddrOfInterest
    0x0000, MatchLength, MatchList."""
    return bytes([status, 0x00, 0x00, len(endpoints)]) + endpoints


def match_desc_on_the_air(
    capture: Path, keys: list[str], device: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The one Match_Desc_req ``device`` sent for a Key Establishment server on the SE
    profile and the coordinator's Match_Desc_rsp to it (the same sequence number), as tshark
    dissects them."""
    packets = dissect(capture, keys)
    [request] = [
        p
        for p in packets
        if p.get("zbee_aps.zdp_cluster") == ["0x0006"]
        and p.get("zbee_nwk.src") == [device]
        and p.get("zbee_zdp.profile") == ["0x0109"]
        and p.get("zbee_zdp.in_cluster") == ["0x0800"]
    ]
    [response] = [
        p
        for p in packets
        if p.get("zbee_aps.zdp_cluster") == ["0x8006"]
        and p.get("zbee_nwk.dst") == [device]
        and p.get("zbee_zdp.seqno") == request["zbee_zdp.seqno"]
    ]
    return request, response


@pytest.mark.oracle
async def test_the_display_finds_the_esi_on_endpoint_11_and_uses_it_there(
    tmp_path: Path,
) -> None:
    capture = tmp_path / "air.pcap"
    han = await build(tmp_path, capture=capture, endpoint_id=ESI_ENDPOINT)
    await han.esi.price.publish(FLAT)
    await han.esi.provision(EUIS["ihd"])
    ihd = han.add("ihd")
    try:
        await ihd.start()
        events = han.device_events["ihd"]
        assert [e.esi_endpoint for e in events if isinstance(e, Joined)] == [ESI_ENDPOINT]
        assert [e.suite for e in events if isinstance(e, KeyEstablished)] == [1]
        resynced = [e for e in events if isinstance(e, Resynced)]
        assert [e.price_issuer_event_id for e in resynced] == [FLAT.issuer_event_id]
        # Messaging: shown, confirmed, and the ESI records the confirmation
        await han.esi.send_message(
            Message(message_id=7, text="Peak at 5 pm", confirmation_required=True),
            device=EUIS["ihd"],
        )
        await asyncio.sleep(2)
        assert await ihd.confirm(7)
        await asyncio.sleep(1)
        confirmed = [e.message.message_id for e in han.events if isinstance(e, MessageConfirmed)]
        assert confirmed == [7]
        # DRLC: the event's reports reach the ESI, signed
        await han.esi.send_load_control(lce(601, 0x0FFF), device=EUIS["ihd"])
        await asyncio.sleep(5)
        reports = {
            (r.report.issuer_event_id, r.signed)
            for r in han.events
            if isinstance(r, ReportReceived)
        }
        assert reports == {(601, True)}
        # Time: read from the ESI's endpoint
        reading = await ihd.read_time()
        assert abs(reading.values[TimeAttribute.TIME] - han.clock()) <= 1
        nwk = f"0x{int(ihd.device.nwk):04x}"
    finally:
        await close(han)
    keys = zigbee_key_options(entry.line() for entry in han.air.keys)
    request, response = match_desc_on_the_air(capture, keys, nwk)
    assert request["zbee_nwk.dst"] == ["0x0000"]
    assert request["zbee_zdp.nwk_addr"] == ["0x0000"]
    assert response["zbee_nwk.src"] == ["0x0000"]
    assert response["zbee_zdp.status"] == ["0"]  # SUCCESS
    assert response["zbee_zdp.endpoint"] == [str(ESI_ENDPOINT)]
    # every ZCL frame the display sent the coordinator went to endpoint 11, on each cluster
    sent = [
        p
        for p in dissect(capture, keys)
        if p.get("zbee_nwk.src") == [nwk]
        and p.get("zbee_nwk.dst") == ["0x0000"]
        and p.get("zbee_aps.profile") == ["0x0109"]
        and p.get("zbee_aps.type") == ["0x00"]  # data, not an APS acknowledgement
    ]
    assert {p["zbee_aps.dst"][0] for p in sent} == {str(ESI_ENDPOINT)}
    assert {p["zbee_aps.cluster"][0] for p in sent} == SE_CLUSTERS


async def test_no_key_establishment_server_on_the_coordinator_is_esi_not_found(
    tmp_path: Path,
) -> None:
    """The coordinator's SE endpoint does not list Key Establishment: its Match_Desc_rsp
    is SUCCESS with no endpoint, and the device says so instead of guessing one."""
    han = await build(tmp_path)
    han.esi.endpoint.descriptor.input_clusters.remove(KEY_ESTABLISHMENT)
    await han.esi.provision(EUIS["ihd"])
    ihd = han.add("ihd")
    try:
        with pytest.raises(EsiNotFound, match=r"no Key Establishment server on the coordinator$"):
            await ihd.start()
        assert not [e for e in han.device_events["ihd"] if isinstance(e, Joined)]
    finally:
        await close(han)


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (match_rsp(0x80, b""), r"answered Match_Desc_req with status INV_REQUESTTYPE \(0x80\)$"),
        (match_rsp(0x42, b""), r"answered Match_Desc_req with status 0x42$"),
        (bytes([0x89]), r"Match_Desc_rsp does not decode \(bad ZDO response: "),  # status only
        (match_rsp(0x00, b"\x0b")[:-1], r"Match_Desc_rsp does not decode"),  # list cut short
        (b"", r"Match_Desc_rsp does not decode"),  # the sequence number alone
        (match_rsp(0x00, b"\x00\xff"), r"no Key Establishment server .* \(it listed \[0, 255\]\)$"),
    ],
    ids=["error-status", "unknown-status", "status-only", "short-list", "empty", "zdo-and-all"],
)
async def test_a_bad_match_desc_rsp_is_esi_not_found_and_the_device_can_start_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: bytes, error: str
) -> None:
    han = await build(tmp_path, endpoint_id=ESI_ENDPOINT)
    await han.esi.provision(EUIS["ihd"])
    ihd = han.add("ihd")
    try:
        answer_match_desc(monkeypatch, han, answer)
        with pytest.raises(EsiNotFound, match=error):
            await ihd.start()
        assert ihd.esi_endpoint is None
        # no state left behind: the coordinator answers properly again, the device starts
        monkeypatch.undo()
        await ihd.start()
        assert ihd.esi_endpoint == ESI_ENDPOINT
        assert [e.suite for e in han.device_events["ihd"] if isinstance(e, KeyEstablished)] == [1]
    finally:
        await close(han)


async def test_several_endpoints_answered_the_first_listed_is_the_esi(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The ESI on endpoint 12 lists 12 then 11: the device takes the first, in the
    coordinator's order (not the lowest), keys there and says which it ignored."""
    han = await build(tmp_path, endpoint_id=12)
    await han.esi.provision(EUIS["ihd"])
    ihd = han.add("ihd")
    caplog.set_level(logging.INFO, logger="zse.roles.han")
    try:
        answer_match_desc(monkeypatch, han, match_rsp(0x00, bytes([12, 11])))
        await ihd.start()
        events = han.device_events["ihd"]
        assert [e.esi_endpoint for e in events if isinstance(e, Joined)] == [12]
        assert [e.suite for e in events if isinstance(e, KeyEstablished)] == [1]
        assert "Key Establishment server on endpoints [12, 11]: the first, 12" in caplog.text
    finally:
        await close(han)


async def test_a_match_desc_rsp_for_the_meter_that_does_not_decode_is_meter_not_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """find_meter (a display's Metering client) says so in its named error, as for the ESI."""
    han = await build(tmp_path)
    await han.esi.provision(EUIS["ihd"])
    ihd = han.add("ihd")
    try:
        await ihd.start()
        answer_match_desc(monkeypatch, han, match_rsp(0x00, b"\x09")[:-1], cluster=METERING)
        with pytest.raises(MeterNotFound, match=r"0x0000's Match_Desc_rsp does not decode"):
            await find_meter(ihd.device)
    finally:
        await close(han)
