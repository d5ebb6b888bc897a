"""examples/headend_sim.py runs, so it never rots: what it prints is what happened."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tests.interpan.tshark_json import dissect
from tests.oracles import zigbee_key_options

EXAMPLE = Path(__file__).parents[2] / "examples" / "headend_sim.py"


def load_example():
    spec = importlib.util.spec_from_file_location("headend_sim", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_headend_example(tmp_path):
    lines: list[str] = []
    capture, keys = tmp_path / "headend.pcap", tmp_path / "headend.keys"
    result = await load_example().headend(str(capture), keys=str(keys), say=lines.append)
    assert len(result["errors"]) == 1
    assert result["errors"][0].startswith("line 5: EUI-64 000D6F000B000004: install code CRC mis")
    assert set(result["states"].values()) == {"meter ready"}
    away = result["away"]
    for sent in (result["message"], result["event"]):
        assert sent.pop(away) == "offline"
        assert set(sent.values()) == {"delivered"}
    assert result["shown"] == 1  # the thermostat that was away got the message on resync
    assert result["statuses"] == {
        "flat 1 display": [1, 2, 3],
        "flat 1 thermostat": [1, 2, 3],
        "flat 2 thermostat": [1, 2, 3],
    }
    assert result["signed"]
    assert "    flat 2 thermostat  offline" in lines
    packets = dissect(capture, zigbee_key_options(keys.read_text().splitlines()))  # none malformed
    assert any("zbee_zcl_se.msg.cmd.srv_tx.id" in p for p in packets)
