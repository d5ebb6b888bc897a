"""The simulator's ZDO bind services: Bind_req and Unbind_req (ZB 2.4.3.2.2, 2.4.3.2.3) change
a bounded per-node binding table that Mgmt_Bind_req (ZB 2.4.3.3.4) reports, in octets zigpy
and tshark both read. The node answered SUCCESS and kept nothing before, and Mgmt_Bind_req
got a bare NOT_SUPPORTED."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zigpy.types as t
import zigpy.zdo.types as zdo_t

from tests.oracles import zigbee_key_options
from tests.sim.test_sim_network import admitted, ihd
from zse.installcode import InstallCode
from zse.sim import Air, BindingTable, SimControllerApplication, SimDevice

METERING = 0x0702
PRICE = 0x0700
METER_EUI = "00:0d:6f:00:0b:00:00:01"
EPOCH = 1_767_225_600.0
Status = zdo_t.Status
Cmd = zdo_t.ZDOCmd


def unicast(ieee: t.EUI64, endpoint: int = 1) -> zdo_t.MultiAddress:
    return zdo_t.MultiAddress(addrmode=0x03, ieee=ieee, endpoint=endpoint)


def group(address: int) -> zdo_t.MultiAddress:
    return zdo_t.MultiAddress(addrmode=0x01, nwk=address)


async def bound_pair(
    seed: int, capture: Any = None
) -> tuple[Air, SimControllerApplication, SimDevice, SimDevice]:
    """A meter (endpoint 1: Metering server, Price client) and a display on one network."""
    air = Air(seed=seed, capture=capture, epoch=EPOCH)
    esi = await air.coordinator(channel=15)
    meter = air.device(METER_EUI, install_code=InstallCode.generate(rng=air.rng), channel=15)
    meter.add_endpoint(1, in_clusters=[METERING], out_clusters=[PRICE])
    meter = await admitted(air, esi, meter)
    display = await admitted(air, esi, ihd(air))
    return air, esi, meter, display


async def request(display: SimDevice, meter: SimDevice, cmd: Cmd, *args: Any) -> list[Any]:
    assert meter.nwk is not None
    return await display.zdo_request(meter.nwk, cmd, *args)


async def bind(
    display: SimDevice,
    meter: SimDevice,
    dst: zdo_t.MultiAddress,
    *,
    cluster: int = METERING,
    endpoint: int = 1,
    cmd: Cmd = Cmd.Bind_req,
    src: t.EUI64 | None = None,
) -> Status:
    rsp = await request(display, meter, cmd, src or meter.ieee, endpoint, cluster, dst)
    assert len(rsp) == 1
    return Status(rsp[0])


async def test_a_binding_is_kept_and_reported_to_zigpy() -> None:
    """A unicast (64-bit) and a group binding are listed by Mgmt_Bind_rsp, read by zigpy's
    own ZDO layer on the coordinator (a request zigpy's device object sends)."""
    _, esi, meter, display = await bound_pair(61)
    assert await bind(display, meter, unicast(display.ieee)) == Status.SUCCESS
    assert await bind(display, meter, group(0x1234), cluster=PRICE) == Status.SUCCESS
    assert await bind(display, meter, group(0x1234), cluster=PRICE) == Status.SUCCESS  # again
    rsp = await esi.get_device(ieee=meter.ieee).zdo.Mgmt_Bind_req(0)
    status, total, start, entries = rsp
    assert (status, total, start) == (Status.SUCCESS, 2, 0)
    assert [(e.SrcAddress, e.SrcEndpoint, e.ClusterId, e.DstAddress.addrmode) for e in entries] == [
        (meter.ieee, 1, METERING, 0x03),
        (meter.ieee, 1, PRICE, 0x01),
    ]
    assert (entries[0].DstAddress.ieee, entries[0].DstAddress.endpoint) == (display.ieee, 1)
    assert entries[1].DstAddress.nwk == 0x1234
    assert meter.bindings.entries == tuple(entries)


async def test_unbind_removes_the_entry_and_then_finds_none() -> None:
    _, _, meter, display = await bound_pair(62)
    assert await bind(display, meter, unicast(display.ieee)) == Status.SUCCESS
    assert await bind(display, meter, group(0x0042), cluster=PRICE) == Status.SUCCESS
    unbind = Cmd.Unbind_req
    assert await bind(display, meter, unicast(display.ieee), cmd=unbind) == Status.SUCCESS
    assert await bind(display, meter, unicast(display.ieee), cmd=unbind) == Status.NO_ENTRY
    assert await bind(display, meter, group(0x0043), cluster=PRICE, cmd=unbind) == (Status.NO_ENTRY)
    _, total, _, entries = await request(display, meter, Cmd.Mgmt_Bind_req, 0)
    assert total == 1
    assert [(e.ClusterId, e.DstAddress.nwk) for e in entries] == [(PRICE, 0x0042)]


async def test_a_full_table_answers_table_full() -> None:
    _, _, meter, display = await bound_pair(63)
    meter.bindings = BindingTable(capacity=2)
    assert await bind(display, meter, group(1)) == Status.SUCCESS
    assert await bind(display, meter, group(2)) == Status.SUCCESS
    assert await bind(display, meter, group(3)) == Status.TABLE_FULL
    assert await bind(display, meter, group(2)) == Status.SUCCESS  # already held: no room used
    assert await bind(display, meter, group(1), cmd=Cmd.Unbind_req) == Status.SUCCESS
    assert await bind(display, meter, group(3)) == Status.SUCCESS
    assert [e.DstAddress.nwk for e in meter.bindings.entries] == [2, 3]


async def test_requests_the_node_cannot_hold_are_refused_as_the_spec_says() -> None:
    """ZB 2.4.4.2.2 / 2.4.4.2.3: NOT_SUPPORTED when SrcAddress is another node, INVALID_EP
    for an endpoint out of range or not the node's; NOT_SUPPORTED for a cluster the source
    endpoint does not have. Nothing is bound."""
    _, _, meter, display = await bound_pair(64)
    dst = unicast(display.ieee)
    for cmd in (Cmd.Bind_req, Cmd.Unbind_req):
        assert await bind(display, meter, dst, src=display.ieee, cmd=cmd) == Status.NOT_SUPPORTED
        assert await bind(display, meter, dst, endpoint=0, cmd=cmd) == Status.INVALID_EP
        assert await bind(display, meter, dst, endpoint=0xFF, cmd=cmd) == Status.INVALID_EP
        assert await bind(display, meter, dst, endpoint=7, cmd=cmd) == Status.INVALID_EP
        assert await bind(display, meter, unicast(display.ieee, 0), cmd=cmd) == Status.INVALID_EP
        assert await bind(display, meter, dst, cluster=0x0006, cmd=cmd) == Status.NOT_SUPPORTED
    assert len(meter.bindings) == 0


async def test_mgmt_bind_pages_by_start_index() -> None:
    """Three 64-bit bindings (21 octets each) and one group binding (14) fill one frame; the
    rest come from a later StartIndex, and a StartIndex past the end lists none."""
    _, _, meter, display = await bound_pair(65)
    for endpoint in (1, 2, 3):
        assert await bind(display, meter, unicast(display.ieee, endpoint)) == Status.SUCCESS
    for address in (0x0A, 0x0B, 0x0C):
        assert await bind(display, meter, group(address)) == Status.SUCCESS
    status, total, start, first = await request(display, meter, Cmd.Mgmt_Bind_req, 0)
    assert (status, total, start, len(first)) == (Status.SUCCESS, 6, 0, 4)
    _, total, start, rest = await request(display, meter, Cmd.Mgmt_Bind_req, 4)
    assert (total, start, [e.DstAddress.nwk for e in rest]) == (6, 4, [0x0B, 0x0C])
    assert list(meter.bindings.entries) == [*first, *rest]
    assert await request(display, meter, Cmd.Mgmt_Bind_req, 9) == [Status.SUCCESS, 6, 9, []]


def test_the_capacity_fits_mgmt_bind_rsp() -> None:
    for capacity in (0, 256):
        with pytest.raises(ValueError, match="capacity"):
            BindingTable(capacity)


@pytest.mark.oracle
async def test_tshark_dissects_bind_and_mgmt_bind(
    tmp_path: Path,
    tshark_json: Callable[..., list[dict[str, Any]]],
    tshark_malformed: Callable[..., str],
) -> None:
    path = tmp_path / "bind.pcap"
    air, _, meter, display = await bound_pair(66, capture=path)
    assert await bind(display, meter, unicast(display.ieee)) == Status.SUCCESS
    assert await bind(display, meter, group(0x0777), cluster=PRICE) == Status.SUCCESS
    assert await bind(display, meter, group(0x0778), cmd=Cmd.Unbind_req) == Status.NO_ENTRY
    await request(display, meter, Cmd.Mgmt_Bind_req, 0)
    await asyncio.sleep(0.1)
    air.close()
    keys = zigbee_key_options(entry.line() for entry in air.keys)
    assert tshark_malformed(path, keys) == ""
    packets = tshark_json(path, [*keys, "--no-duplicate-keys"])
    zdp = [
        (p["zbee_aps"]["zbee_aps.zdp_cluster"], p["zbee_zdp"]) for p in packets if "zbee_zdp" in p
    ]

    def of(cluster: int) -> list[dict[str, Any]]:
        return [z for c, z in zdp if c == f"0x{cluster:04x}"]

    requests = of(Cmd.Bind_req)
    assert [r["zbee_zdp.bind.src64"] for r in requests] == [str(meter.ieee)] * 2
    assert [r["zbee_zdp.cluster"] for r in requests] == ["0x0702", "0x0700"]
    assert [r["zbee_zdp.addr_mode"] for r in requests] == ["3", "1"]
    assert (requests[0]["zbee_zdp.bind.dst64"], requests[0]["zbee_zdp.bind.dst_ep"]) == (
        str(display.ieee),
        "1",
    )
    assert requests[1]["zbee_zdp.bind.dst"] == "0x0777"
    assert [r["zbee_zdp.status"] for r in of(Cmd.Bind_rsp)] == ["0", "0"]
    assert [r["zbee_zdp.bind.dst"] for r in of(Cmd.Unbind_req)] == ["0x0778"]
    assert [r["zbee_zdp.status"] for r in of(Cmd.Unbind_rsp)] == [str(int(Status.NO_ENTRY))]
    assert [r["zbee_zdp.index"] for r in of(Cmd.Mgmt_Bind_req)] == ["0"]
    (table,) = of(Cmd.Mgmt_Bind_rsp)
    assert (table["zbee_zdp.status"], table["zbee_zdp.table_size"]) == ("0", "2")
    assert (table["zbee_zdp.index"], table["zbee_zdp.table_count"]) == ("0", "2")
    first, second = table["Binding Table"]["Bind"]
    assert (first["zbee_zdp.cluster"], first["zbee_zdp.bind.dst64"]) == (
        "0x0702",
        str(display.ieee),
    )
    assert (second["zbee_zdp.cluster"], second["zbee_zdp.bind.dst"]) == ("0x0700", "0x0777")
