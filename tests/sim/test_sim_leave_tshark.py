"""A simulated NWK Leave (ZB 3.4.4) in a capture, read by tshark: a device leaving on its own
(no flags, broadcast to the routers) and the coordinator removing one (Request set, unicast),
which the device obeys by leaving in turn; each a NWK command 0x04 with the right Rejoin,
Request and Remove Children flags (ZB 3.4.4.3.1), and no malformed packet."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.oracles import zigbee_key_options
from tests.sim.test_sim_faults_capture import han

LEAVE = "0x04"  # NWK command identifier (ZB 3.4.1, Table 3.40)


@pytest.mark.oracle
async def test_tshark_reads_device_leave_and_forced_remove(
    tmp_path: Path,
    tshark_json: Callable[..., list[dict[str, Any]]],
    tshark_malformed: Callable[..., str],
) -> None:
    path = tmp_path / "leave.pcap"
    air, esi, (a, b) = await han(71, capture=path)
    assert a.nwk is not None
    assert b.nwk is not None
    a_nwk, b_nwk = a.nwk, b.nwk
    await a.leave()
    await asyncio.sleep(1)
    await esi.force_remove(esi.get_device(ieee=b.ieee))
    await asyncio.sleep(1)
    assert not a.joined
    assert not b.joined
    air.close()
    keys = zigbee_key_options(entry.line() for entry in air.keys)  # NWK security
    assert tshark_malformed(path, keys) == ""
    leaves = [
        p["zbee_nwk"]
        for p in tshark_json(path, keys)
        if p.get("zbee_nwk", {}).get("Command Frame: Leave", {}).get("zbee_nwk.cmd.id") == LEAVE
    ]
    seen = [
        (
            leave["zbee_nwk.src"],
            leave["zbee_nwk.dst"],
            leave["zbee_nwk.src64"],
            {
                flag: leave["Command Frame: Leave"][f"zbee_nwk.cmd.leave.{flag}"]
                for flag in ("rejoin", "request", "children")
            },
        )
        for leave in leaves
    ]
    no_flags = {"rejoin": "0", "request": "0", "children": "0"}
    assert seen == [
        (f"0x{a_nwk:04x}", "0xfffd", str(a.ieee), no_flags),  # a leaves on its own
        ("0x0000", f"0x{b_nwk:04x}", str(esi.state.node_info.ieee), no_flags | {"request": "1"}),
        (f"0x{b_nwk:04x}", "0xfffd", str(b.ieee), no_flags),  # b obeys, and says it left
    ]
