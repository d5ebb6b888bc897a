"""Inter-PAN on the simulator: the transport, the service with its window, and the HHT example
(a link dropping mid-sequence, then the resume), with the capture checked by tshark."""

from __future__ import annotations

import json
import runpy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from zigpy.types import EUI64

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
            await hht_svc.send(hht_svc.frame(cluster_id=0x0700, payload=b"\x01\x02\x01\x00"))
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
    assert out["stopped_at"] == 2  # the answer to command 2 was lost with the link
    assert out["resumed_at"] == 3  # the meter had executed it: the terminal goes on at 3
    assert sorted(out["resumed_results"]) == [0x5EC0_0004, 0x5EC0_0005, 0x5EC0_0006]
    assert out["executions"] == 6
    assert out["reads"] == [1, 2, 3, 4, 5]
    assert out["utc"] == 0x2F00_0000
    assert out["window"][Verdict.ACCEPTED] == 7  # 3 executes, then resume query + 3 executes
    assert any("terminal gave up" in line for line in lines)

    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.fail("tshark is required (installed by `make test`)")
    dissected = subprocess.run(
        [tshark, "-r", str(capture), "-T", "json", "--no-duplicate-keys"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "_ws.malformed" not in dissected
    packets = [p["_source"]["layers"] for p in json.loads(dissected)]
    inter_pan = [p for p in packets if p.get("zbee_nwk", {}).get("zbee_nwk.fcf") == "0x000b"]
    assert len(inter_pan) >= 15
    assert {p["zbee_aps"]["zbee_aps.cluster"] for p in inter_pan} == {"0xfc5e"}
    assert {p["zbee_aps"]["zbee_aps.profile"] for p in inter_pan} == {"0x0109"}
