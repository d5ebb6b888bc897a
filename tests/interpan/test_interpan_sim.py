"""Inter-PAN on the simulator: the transport, the service with its window, and the HHT example
(a link dropping mid-sequence, then the resume), with the capture checked by tshark."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest
from zigpy.types import EUI64

from tests.interpan.tshark_json import dissect
from zse.interpan.service import InterPanService
from zse.interpan.transports.sim import NoAcknowledgement, SimTransport
from zse.interpan.window import InterPanWindow, Verdict
from zse.sim import Air, run

EXAMPLE = Path(__file__).parents[2] / "examples" / "hht.py"
GET_CURRENT_PRICE = bytes([0x01, 0x01, 0x00, 0x00])
PUBLISH_PRICE = bytes([0x09, 0x01, 0x00]) + bytes(28)


def test_price_request_and_answer_through_the_window() -> None:
    async def main() -> dict[str, Any]:
        air = Air(seed=3)
        esi = await air.coordinator(channel=20, pan_id=0x1111)
        hht = await air.coordinator(channel=20, pan_id=0x2222)
        window = InterPanWindow(default_duration=60)
        esi_svc = InterPanService(
            SimTransport(esi), ieee=esi.state.node_info.ieee, pan_id=0x1111, window=window
        )
        hht_svc = InterPanService(SimTransport(hht), ieee=hht.state.node_info.ieee, pan_id=0x2222)
        out: dict[str, Any] = {}
        request = hht_svc.frame(cluster_id=0x0700, payload=GET_CURRENT_PRICE)
        await hht_svc.send(request)  # broadcast while the ESI's window is closed
        out["closed"] = await esi_svc.receive(timeout=1.0)
        window.open(esi_svc.now())
        await hht_svc.send(request)
        got = await esi_svc.receive(timeout=1.0)
        assert got is not None
        out["request"] = got
        await esi_svc.reply(got, cluster_id=0x0700, payload=PUBLISH_PRICE)
        out["answer"] = await hht_svc.receive(timeout=1.0)
        with pytest.raises(PermissionError, match="not whitelisted"):
            # Price Acknowledgement (client to server): not an inter-PAN command
            await hht_svc.send(hht_svc.frame(cluster_id=0x0700, payload=b"\x01\x02\x02\x00"))
        # a unicast to an address nobody has is not acknowledged
        ghost = hht_svc.frame(
            cluster_id=0x0700, payload=GET_CURRENT_PRICE, dst=EUI64(bytes(range(8)))
        )
        with pytest.raises(NoAcknowledgement):
            await hht_svc.transport.send(ghost)
        out["counts"] = dict(window.counts)
        out["esi_ieee"], out["hht_ieee"] = esi.state.node_info.ieee, hht.state.node_info.ieee
        await esi_svc.close()
        await hht_svc.close()
        await esi.shutdown()
        await hht.shutdown()
        return out

    out = run(main())
    assert out["closed"] is None
    assert out["request"].payload == GET_CURRENT_PRICE
    assert out["request"].src_ieee == out["hht_ieee"]
    assert out["request"].src_pan_id == 0x2222
    answer = out["answer"]
    assert answer is not None
    assert answer.payload == PUBLISH_PRICE
    assert answer.src_ieee == out["esi_ieee"]
    assert answer.dst_address == out["hht_ieee"]
    assert answer.dst_pan_id == 0x2222
    assert out["counts"][Verdict.CLOSED] == 1
    assert out["counts"][Verdict.ACCEPTED] == 1


def test_hht_example_drops_mid_sequence_and_resumes(tmp_path: Path) -> None:
    demo = runpy.run_path(str(EXAMPLE))["demo"]
    capture = tmp_path / "hht.pcap"
    lines: list[str] = []
    out = run(demo(str(capture), say=lines.append))
    assert out["stopped_at"] == 2  # the answer to the third command was lost with the link
    assert out["resumed_at"] == 3  # the meter had executed it: the terminal goes on at the fourth
    said = "\n".join(lines)  # counted from 1, as docs/interpan.md says it
    assert "no answer to command 3 of 6 (read register 2)" in said
    assert "resumed at command 4 of 6 (read register 3)" in said
    assert sorted(out["resumed_results"]) == [0x5EC0_0004, 0x5EC0_0005, 0x5EC0_0006]
    assert out["executions"] == 6
    assert out["reads"] == [1, 2, 3, 4, 5]
    assert out["utc"] == 0x2F00_0000
    assert out["window"][Verdict.ACCEPTED] == 8  # price, 3 executes, resume query, 3 executes
    assert any("terminal gave up" in line for line in lines)
    assert out["hht_joined"] is False
    assert out["price"].rate_label == b"DAY"
    assert out["price"].price == 2_1530

    packets = dissect(capture)
    inter_pan = [p for p in packets if p.get("zbee_nwk.fcf") == ["0x000b"]]
    assert len(inter_pan) >= 17
    assert {p["zbee_aps.cluster"][0] for p in inter_pan} == {"0xfc5e", "0x0700"}
    assert {p["zbee_aps.profile"][0] for p in inter_pan} == {"0x0109"}
    terminal = "00:0d:6f:00:00:00:00:77"
    from_terminal = [p for p in inter_pan if p["wpan.src64"] == [terminal]]
    assert {p["wpan.src_pan"][0] for p in from_terminal} == {"0xffff"}  # never joined
    (publish,) = [p for p in inter_pan if "zbee_zcl_se.price.provider_id" in p]
    assert publish["wpan.dst64"] == [terminal]
    assert publish["zbee_zcl_se.price.rate_label"] == ["DAY"]
    assert publish["zbee_zcl_se.price.price"] == ["21530"]
