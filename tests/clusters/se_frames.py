"""Helpers for cluster tests: wrap ZCL in MAC/NWK/APS frames and dissect them with tshark."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.oracles import require
from zse.pcap import PcapWriter
from zse.sim import _frames as frames

SE_PROFILE = 0x0109


def zcl_frame(command_id: int, payload: bytes, *, from_server: bool, tsn: int) -> bytes:
    """A cluster-specific ZCL frame (ZCL 2.4.1), default response disabled."""
    frame_control = 0x01 | (0x08 if from_server else 0x00) | 0x10
    return bytes((frame_control, tsn, command_id)) + payload


def air_frame(cluster_id: int, zcl: bytes, seq: int) -> bytes:
    """``zcl`` on the SE profile from the coordinator (0x0000) to 0x1234, as on the air."""
    aps = frames.encode_aps(
        frames.ApsHeader(
            frames.APS_DATA, 0, seq, dst_ep=1, cluster=cluster_id, profile=SE_PROFILE, src_ep=1
        ),
        zcl,
    )
    nwk = frames.encode_nwk(frames.NwkHeader(dst=0x1234, src=0x0000, radius=30, seq=seq), aps)
    return frames.encode_mac(
        frames.MacHeader(frames.MAC_DATA, seq, 0x1A62, 0x1234, 0x1A62, 0x0000, True), nwk
    )


@dataclass
class Dissected:
    """One packet as tshark sees it: every field's ``show`` and raw ``value``, in order."""

    fields: list[tuple[str, str, str]]
    malformed: bool
    #: Each field's name and full label (``showname``), in order.
    labels: list[tuple[str, str]] = field(default_factory=list)

    def show(self, name: str) -> list[str]:
        return [show for field, show, _ in self.fields if field == name]

    def raw(self, name: str) -> list[str]:
        return [value for field, _, value in self.fields if field == name]

    def label(self, name: str) -> list[str]:
        return [label for field, label in self.labels if field == name]


def tshark() -> str:
    return require("tshark")


def dissect(frames: list[bytes], tmp_path: Path, options: Sequence[str] = ()) -> list[Dissected]:
    """Write ``frames`` to a capture and return tshark's dissection of each (PDML);
    ``options`` are extra tshark arguments (``-o`` preferences such as ZigBee keys)."""
    capture = tmp_path / "frames.pcap"
    with PcapWriter(capture) as pcap:
        for index, frame in enumerate(frames):
            pcap.write(frame, float(index))
    pdml = subprocess.run(
        [tshark(), "-r", str(capture), *options, "-T", "pdml"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    packets = []
    for packet in ET.fromstring(pdml).iter("packet"):
        fields = [
            (f.get("name", ""), f.get("show", ""), f.get("value", "")) for f in packet.iter("field")
        ]
        malformed = any(
            name.startswith("_ws.malformed") or name == "_ws.expert" for name, _, _ in fields
        )
        labels = [(f.get("name", ""), f.get("showname", "")) for f in packet.iter("field")]
        packets.append(Dissected(fields, malformed, labels))
    return packets
