"""#15.2: MAC acknowledgements on the air (IEEE 802.15.4-2006 7.2.2.3, 7.5.6.4): each unicast
attempt that arrives is answered with an Ack frame carrying its sequence number, retries of a
lost attempt are on the air too, broadcasts are not acknowledged; tshark reads them."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest
from zigpy.exceptions import DeliveryError

from tests.interpan.tshark_json import dissect
from tests.sim.test_sim_faults_capture import DISPLAY_MESSAGE, MESSAGING, esi_send, han
from zse.sim._air import OCTET_TIME, PHY_OVERHEAD_OCTETS, TURNAROUND


def _frames(path: Path) -> list[dict[str, list[str]]]:
    return dissect(path)


def _kind(packet: dict[str, list[str]]) -> str:
    return {"0x0001": "data", "0x0002": "ack"}.get(packet["wpan.frame_type"][0], "other")


async def test_each_unicast_frame_is_acknowledged_on_the_air(tmp_path: Path) -> None:
    path = tmp_path / "acks.pcap"
    air, esi, (dev, _) = await han(40, capture=str(path))
    acks, frames = air.stats.acknowledgements, air.stats.frames
    await esi_send(esi, dev, MESSAGING, 0x00, DISPLAY_MESSAGE, 1)
    await asyncio.sleep(1)
    # the command, the frame the device answers with and the ESI's APS acknowledgement of
    # that answer (the device asks for one, ZB 2.2.8.4.1), each with its MAC acknowledgement
    assert air.stats.acknowledgements == acks + 3
    assert air.stats.frames == frames + 6
    air.close()
    packets = _frames(path)
    assert len(packets) == air.stats.frames
    data, ack = packets[-6:-4]
    assert [_kind(p) for p in packets[-6:]] == ["data", "ack"] * 3
    assert data["wpan.ack_request"] == ["1"]
    assert ack["wpan.seq_no"] == data["wpan.seq_no"]
    assert ack["frame.len"] == ["5"]  # frame control, sequence number, FCS
    # every unicast data frame with an acknowledgement request is followed by its Ack; a
    # broadcast (no request) by none
    for first, second in itertools.pairwise(packets):
        if _kind(first) == "data" and first["wpan.ack_request"] == ["1"]:
            assert _kind(second) == "ack"
            assert second["wpan.seq_no"] == first["wpan.seq_no"]
        if _kind(second) == "ack":
            assert first["wpan.ack_request"] == ["1"]
    assert any(_kind(p) == "data" and p["wpan.ack_request"] == ["0"] for p in packets)


async def test_retries_are_on_the_air_and_only_the_one_that_arrives_is_acknowledged(
    tmp_path: Path,
) -> None:
    path = tmp_path / "retries.pcap"
    air, esi, (dev, _) = await han(41, capture=str(path))
    start = air.stats.frames
    air.set_link_faults(esi.radio, dev, loss=1.0)
    with pytest.raises(DeliveryError):
        await esi_send(esi, dev, MESSAGING, 0x00, DISPLAY_MESSAGE, 2)
    lost = air.stats.frames - start
    assert lost == 1 + air.mac_retries  # every attempt on the air, none acknowledged
    air.set_link_faults(esi.radio, dev)
    await esi_send(esi, dev, MESSAGING, 0x00, DISPLAY_MESSAGE, 3)
    await asyncio.sleep(1)
    air.close()
    packets = _frames(path)[start:]
    kinds = [_kind(p) for p in packets]
    assert kinds[:lost] == ["data"] * lost
    assert len({p["wpan.seq_no"][0] for p in packets[:lost]}) == 1  # the same frame again
    # and the device's answer, and the ESI's APS acknowledgement of it
    assert kinds[lost:] == ["data", "ack"] * 3


async def test_with_air_time_the_ack_follows_the_turnaround_and_the_next_frame_waits(
    tmp_path: Path,
) -> None:
    """aTurnaroundTime (12 symbols, 192 µs) after the frame's last octet the Ack starts; it
    takes 11 octets on the air (PHY header and 5 octets), and the channel is busy until then."""
    path = tmp_path / "airtime.pcap"
    air, esi, (dev, _) = await han(42, capture=str(path), airtime=True)
    start = air.stats.frames
    await esi_send(esi, dev, MESSAGING, 0x00, DISPLAY_MESSAGE, 4)
    await asyncio.sleep(1)
    air.close()
    packets = _frames(path)[start:]
    # the command, its Ack, the device's answer, its Ack, the APS ack of the answer, its Ack
    assert [_kind(p) for p in packets] == ["data", "ack"] * 3
    times = [float(p["frame.time_epoch"][0]) for p in packets]
    first_end = times[0] + (PHY_OVERHEAD_OCTETS + int(packets[0]["frame.len"][0])) * OCTET_TIME
    assert times[1] == pytest.approx(first_end + TURNAROUND, abs=2e-6)
    ack_end = times[1] + (PHY_OVERHEAD_OCTETS + 5) * OCTET_TIME
    assert times[2] >= ack_end - 2e-6
