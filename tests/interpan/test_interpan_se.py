"""SE over inter-PAN on the simulator: a device that never joined asks the ESI for the price and
hears its messages; the exchange's capture is dissected by tshark (Publish Price field by field);
decoding errors, the whitelist, the window and the message transmission bits are enforced."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import zigpy.types as t
from hypothesis import given, settings
from hypothesis import strategies as st
from zigpy.types import EUI64

from tests.interpan.tshark_json import dissect
from zse.errors import InvalidFrame
from zse.installcode import InstallCode
from zse.interpan import DeliveryMode, InterPanFrame
from zse.interpan.se import (
    InterPanEsi,
    InterPanMessage,
    InterPanMessageCancelled,
    InterPanPriceReceived,
    InterPanSeClient,
    PriceRequested,
    decode_se,
    encode_se,
    message_control,
)
from zse.interpan.service import InterPanService
from zse.interpan.transports.sim import SimTransport
from zse.interpan.window import SE_INTERPAN_COMMANDS, CommandWhitelist, InterPanWindow, Verdict
from zse.messaging.wire import Messaging
from zse.price import PriceEvent
from zse.price.service import PriceClient, PriceServer
from zse.price.wire import Price
from zse.se.types import MessageImportance, MessageTransmission
from zse.sim import Air, run
from zse.zcl.se_endpoint import SE_ENDPOINT_ID, SeEndpoint

START = 800_000_000  # ZigBee time at the simulation's start
ESI_PAN = 0x1A2B
IHD_EUI = "00:0d:6f:00:00:00:99:01"
PRICE_7 = PriceEvent(
    provider_id=0x00ABCDEF,
    rate_label=b"PEAK",
    issuer_event_id=7,
    unit_of_measure=0,  # kWh
    currency=826,  # GBP
    price_trailing_digit=4,
    price_tier=2,
    number_of_price_tiers=3,
    register_tier=2,
    start_time=0,
    duration_in_minutes=0xFFFF,
    price=2_4567,
)


def clock_of(loop: asyncio.AbstractEventLoop) -> Any:
    return lambda: START + int(loop.time())


async def esi_with_price_server(air: Air) -> tuple[Any, PriceServer, InterPanService, InterPanEsi]:
    """A zigpy ESI whose network Price server and inter-PAN responder share one schedule."""
    app = await air.coordinator(channel=15, pan_id=ESI_PAN)
    clock = clock_of(asyncio.get_running_loop())
    se = SeEndpoint(app, in_clusters=[0x0700])
    await se.start()
    server = PriceServer(se, clock=clock)
    server.start()
    window = InterPanWindow(default_duration=3600)
    service = InterPanService(
        SimTransport(app), ieee=app.state.node_info.ieee, pan_id=ESI_PAN, window=window
    )
    window.open(service.now())  # an ESI serving displays keeps its window open
    esi = InterPanEsi(service, schedule=server.schedule, clock=clock)
    return app, server, service, esi


def test_price_request_from_a_device_that_never_joined(tmp_path: Path) -> None:
    capture = tmp_path / "interpan-price.pcap"

    async def main() -> dict[str, Any]:
        air = Air(seed=11, capture=str(capture))
        app, server, esi_service, esi = await esi_with_price_server(air)
        serving = asyncio.get_running_loop().create_task(esi.serve())
        requests: list[PriceRequested] = []
        esi.on_event(requests.append)

        # A joined display gets the price over the network from the same Price server.
        code = InstallCode.generate(rng=air.rng)
        joined = air.device("00:0d:6f:00:00:00:99:02", install_code=code, channel=15)
        endpoint = joined.add_endpoint(1, device_type=0x0502, out_clusters=[0x0700])
        await app.permit_with_link_key(joined.ieee, t.KeyData(code.link_key), 60)
        await joined.join()
        network_client = PriceClient(endpoint, server_ep=SE_ENDPOINT_ID, clock=esi.clock)
        network_client.start()

        # The display that never joined: on channel 15, on no PAN.
        ihd = air.device(IHD_EUI, channel=15)
        ihd.listen()
        ihd_service = InterPanService(SimTransport(ihd), ieee=ihd.ieee, pan_id=0xFFFF)
        client = InterPanSeClient(ihd_service, clock=esi.clock)
        heard: list[Any] = []
        client.on_event(heard.append)

        out: dict[str, Any] = {"joined": ihd.joined, "nwk": ihd.nwk, "pan": ihd.pan_id}
        out["no_price_yet"] = await client.get_current_price()
        out["published_at"] = esi.clock()
        await server.publish(PRICE_7)
        esi_service.window.close()  # type: ignore[union-attr]
        out["window_closed"] = await client.get_current_price()
        esi_service.window.open(esi_service.now())  # type: ignore[union-attr]
        out["price"] = await client.get_current_price()
        out["network_price"] = await network_client.get_current_price()
        out["unicast_price"] = await client.get_current_price(
            dst=app.state.node_info.ieee, dst_pan_id=ESI_PAN
        )

        await esi.display_message(
            0x0102,
            "Peak price from 17:00",
            control=message_control(importance=MessageImportance.High),
        )
        await esi.cancel_message(0x0102, dst=ihd.ieee)
        with pytest.raises(
            ValueError, match=r"transmission Normal \(D.5.2.3.1.1.2\) does not allow"
        ):
            await esi.display_message(
                0x0103, "network only", control=message_control(MessageTransmission.Normal)
            )
        with pytest.raises(ValueError, match="do not fit one inter-PAN frame"):
            await esi.display_message(0x0104, "x" * 79)
        await asyncio.sleep(1)
        out["heard"] = heard
        out["requests"] = requests
        out["counts"] = dict(esi_service.window.counts)  # type: ignore[union-attr]
        out["esi_ieee"] = app.state.node_info.ieee
        out["current"] = client.current()
        await client.close()
        await ihd_service.close()
        await esi_service.close()
        await serving
        await app.shutdown()
        air.close()
        return out

    out = run(main())
    assert (out["joined"], out["nwk"], out["pan"]) == (False, None, None)
    assert out["no_price_yet"] is None  # the ESI has no price: silence, not Default Response
    assert out["window_closed"] is None
    # a price published for "now" is answered with the time it started (SE D.4.2.4.1)
    answered = dataclasses.replace(PRICE_7, start_time=out["published_at"])
    assert out["price"] == answered == out["network_price"] == out["unicast_price"]
    assert out["current"] == answered
    assert [r.answered for r in out["requests"]] == [False, True, True]
    assert {r.source_ieee for r in out["requests"]} == {EUI64.convert(IHD_EUI)}
    assert out["counts"][Verdict.CLOSED] == 1
    prices = [e for e in out["heard"] if isinstance(e, InterPanPriceReceived)]
    assert [(p.price, p.new, p.source_ieee) for p in prices] == [
        (answered, True, out["esi_ieee"]),
        (answered, False, out["esi_ieee"]),
    ]
    (message,) = [e for e in out["heard"] if isinstance(e, InterPanMessage)]
    assert (message.message_id, message.message, message.source_pan_id) == (
        0x0102,
        "Peak price from 17:00",
        ESI_PAN,
    )
    assert message.message_control.transmission is MessageTransmission.Anonymous_InterPAN_Only
    assert message.message_control.importance is MessageImportance.High
    assert (message.start_time, message.duration_in_minutes) == (0, 0xFFFF)
    (cancel,) = [e for e in out["heard"] if isinstance(e, InterPanMessageCancelled)]
    assert cancel.message_id == 0x0102

    packets = dissect(capture)
    inter_pan = [p for p in packets if p.get("zbee_nwk.fcf") == ["0x000b"]]  # stub NWK
    publish = [p for p in inter_pan if "zbee_zcl_se.price.provider_id" in p]
    assert len(publish) == 2  # the answers to the broadcast and to the unicast request
    for p in publish:
        assert p["zbee_aps.profile"] == ["0x0109"]
        assert p["zbee_zcl_se.price.cmd.srv_tx.id"] == ["0x00"]  # Publish Price
        assert p["wpan.dst64"] == [IHD_EUI]
        assert p["wpan.dst_pan"] == ["0xffff"]
        assert p["zbee_zcl_se.price.provider_id"] == [str(0x00ABCDEF)]
        assert p["zbee_zcl_se.price.rate_label"] == ["PEAK"]
        assert p["zbee_zcl_se.price.issuer_event_id"] == ["7"]
        assert p["zbee_zcl_se.price.unit_of_measure"] == ["0x00"]
        assert p["zbee_zcl_se.price.currency"] == ["0x033a"]  # 826
        assert p["zbee_zcl_se.price.trailing_digit"] == ["0x04"]
        assert p["zbee_zcl_se.price.tier"] == ["0x02"]
        assert p["zbee_zcl_se.price.number_of_price_tiers"] == ["0x03"]
        assert p["zbee_zcl_se.price.register_tier"] == ["0x02"]
        # current time: ZigBee time START (+ a few virtual seconds) = 2025-05-08 06:13:20 UTC
        assert p["zbee_zcl_se.price.current_time"][0].startswith("May  8, 2025 06:13:")
        assert p["zbee_zcl_se.price.start_time"][0].startswith("May  8, 2025 06:13:")
        assert p["zbee_zcl_se.price.duration_in_minutes"] == ["65535"]
        assert p["zbee_zcl_se.price.price"] == ["24567"]
    requests = [p for p in inter_pan if p.get("zbee_zcl_se.price.cmd.srv_rx.id") == ["0x00"]]
    assert len(requests) == 4
    assert all(p["wpan.src_pan"] == ["0xffff"] for p in requests)
    (display,) = [p for p in inter_pan if "zbee_zcl_se.msg.message" in p]
    assert display["zbee_zcl_se.msg.message"] == ["Peak price from 17:00"]
    assert display["zbee_zcl_se.msg.message.id"] == ["0x00000102"]
    assert display["zbee_zcl_se.msg.message.ctrl.tx"] == ["0x02"]  # inter-PAN only
    assert display["zbee_zcl_se.msg.message.ctrl.importance"] == ["0x02"]  # high
    assert display["zbee_zcl_se.msg.message.duration"] == ["65535"]


def test_rules_at_the_device_and_clear_errors() -> None:
    """A display forbidding inter-PAN is refused, a malformed answer fails the request with
    the field and offset, and the device sends only what its whitelist allows."""

    async def main() -> dict[str, Any]:
        air = Air(seed=12)
        rogue = air.device("00:0d:6f:00:00:00:66:01", channel=20)
        rogue.listen()
        rogue_svc = InterPanService(SimTransport(rogue), ieee=rogue.ieee, pan_id=0xFFFF)
        ihd = air.device(IHD_EUI, channel=20)
        ihd.listen()
        ihd_svc = InterPanService(SimTransport(ihd), ieee=ihd.ieee, pan_id=0xFFFF)
        client = InterPanSeClient(ihd_svc, clock=clock_of(asyncio.get_running_loop()))
        client.start()
        heard: list[Any] = []
        client.on_event(heard.append)
        out: dict[str, Any] = {}

        display = Messaging.ClientCommandDefs.display_message
        fields = {
            "message_id": 9,
            "message_control": message_control(MessageTransmission.Normal),
            "start_time": 0,
            "duration_in_minutes": 5,
            "message": "not for inter-PAN",
        }
        await rogue_svc.send(
            rogue_svc.frame(
                cluster_id=0x0703, payload=encode_se(display, fields, tsn=1, from_server=True)
            )
        )

        async def answer_badly() -> None:
            request = await rogue_svc.receive(timeout=5)
            assert request is not None
            tsn = request.payload[1]
            publish_truncated = bytes([0x19, tsn, 0x00]) + bytes(9)
            await rogue_svc.reply(request, cluster_id=0x0700, payload=publish_truncated)

        answering = asyncio.get_running_loop().create_task(answer_badly())
        with pytest.raises(InvalidFrame) as bad:
            await client.get_current_price(timeout=5)
        await answering
        out["error"] = str(bad.value)

        strict = InterPanService(
            SimTransport(ihd),
            ieee=ihd.ieee,
            pan_id=0xFFFF,
            whitelist=CommandWhitelist([c for c in SE_INTERPAN_COMMANDS if c.command_id != 0]),
        )
        with pytest.raises(PermissionError, match="not whitelisted for inter-PAN"):
            await InterPanSeClient(strict).get_current_price()
        out["refused"], out["malformed"], out["heard"] = client.refused, client.malformed, heard
        await client.close()
        for svc in (strict, ihd_svc, rogue_svc):
            await svc.close()
        return out

    out = run(main())
    assert out["refused"] == 1
    assert out["malformed"] == 1
    assert out["heard"] == []
    assert "inter-PAN frame from 00:0d:6f:00:00:00:66:01 (PAN 0xFFFF)" in out["error"]
    assert "Price publish_price" in out["error"]
    assert "field current_time at byte offset 9 of 9" in out["error"]


def test_decode_se_errors_say_what_and_where() -> None:
    def frame(payload: bytes, cluster: int = 0x0700) -> InterPanFrame:
        return InterPanFrame(
            src_pan_id=0xFFFF,
            src_ieee=EUI64.convert(IHD_EUI),
            dst_pan_id=0xFFFF,
            dst_address=0xFFFF,
            delivery_mode=DeliveryMode.BROADCAST,
            cluster_id=cluster,
            payload=payload,
        )

    get = Price.ServerCommandDefs.get_current_price
    good = decode_se(frame(encode_se(get, {"command_options": 1}, tsn=5, from_server=False)))
    assert (good.name, good.from_server, good.header.tsn) == ("get_current_price", False, 5)
    assert int(good.fields.command_options) == 1
    for payload, cluster, message in [
        (b"\x01\x05\x00\x01", 0x0701, "cluster 0x0701 is not Price or Messaging"),
        (b"\x00\x05\x00", 0x0700, "global ZCL command"),
        (b"\x05\x34\x12\x05\x00\x01", 0x0700, r"manufacturer-specific command \(code 0x1234"),
        (b"\x01\x05\x11", 0x0700, "no command 0x11 sent by the client"),
        (b"\x01\x05\x00", 0x0700, "command_options at byte offset 0 of 0"),
        (
            b"\x09\x05\x00" + bytes(8),
            0x0703,
            "display_message: cannot decode field start_time at byte offset 5 of 8",
        ),
        (b"\x02", 0x0700, "reserved frame type"),
    ]:
        with pytest.raises(InvalidFrame, match=message) as exc:
            decode_se(frame(payload, cluster))
        assert "inter-PAN frame from 00:0d:6f:00:00:00:99:01 (PAN 0xFFFF)" in str(exc.value)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([0x0700, 0x0703]), st.binary(max_size=60))
def test_decode_se_garbage_raises_only_invalid_frame(cluster: int, payload: bytes) -> None:
    frame = InterPanFrame(
        src_pan_id=1,
        src_ieee=EUI64.convert(IHD_EUI),
        dst_pan_id=0xFFFF,
        dst_address=0xFFFF,
        delivery_mode=DeliveryMode.BROADCAST,
        cluster_id=cluster,
        payload=payload,
    )
    try:
        command = decode_se(frame)
    except InvalidFrame:
        return
    assert command.header.length <= len(payload)


def test_default_whitelist_is_exactly_the_cluster_definitions_for_inter_pan() -> None:
    """SE_INTERPAN_COMMANDS (data in the sans-IO window) names the zse.clusters commands."""
    from zse.interpan._zcl import Direction  # noqa: PLC0415

    expected = {
        (0x0700, Direction.Client_to_Server, Price.ServerCommandDefs.get_current_price.id),
        (0x0700, Direction.Client_to_Server, Price.ServerCommandDefs.get_scheduled_prices.id),
        (0x0700, Direction.Server_to_Client, Price.ClientCommandDefs.publish_price.id),
        (0x0703, Direction.Server_to_Client, Messaging.ClientCommandDefs.display_message.id),
        (0x0703, Direction.Server_to_Client, Messaging.ClientCommandDefs.cancel_message.id),
    }
    got = {(c.cluster_id, c.direction, c.command_id) for c in SE_INTERPAN_COMMANDS}
    assert got == expected
    assert all(c.manufacturer_code is None for c in SE_INTERPAN_COMMANDS)


def test_listen_puts_a_device_that_never_joined_on_a_channel() -> None:
    async def main() -> None:
        air = Air(seed=13)
        many = air.device("00:0d:6f:00:00:00:55:01")
        with pytest.raises(ValueError, match="give the channel"):
            many.listen()
        with pytest.raises(ValueError, match=r"not a 2\.4 GHz channel"):
            many.listen(27)
        many.listen(25)
        assert (many.channel, many.pan_id, many.nwk, many.joined) == (25, None, None, False)
        app = await air.coordinator(channel=25)
        code = InstallCode.generate(rng=air.rng)
        member = air.device("00:0d:6f:00:00:00:55:02", install_code=code, channel=25)
        await app.permit_with_link_key(member.ieee, t.KeyData(code.link_key), 60)
        await member.join()
        with pytest.raises(ValueError, match="has joined a network"):
            member.listen()
        await app.shutdown()

    run(main())
