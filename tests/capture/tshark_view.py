"""What tshark sees in a capture, field by field, next to what zse capture sees in it."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.oracles import require
from zse.capture import CaptureDecoder, Decoded, KeyRing, read_records

#: tshark fields compared for every frame (multi-valued fields joined with ",")
FIELDS = (
    "frame.number",
    "zbee_nwk.src",
    "zbee_nwk.dst",
    "zbee.sec.counter",
    "zbee.sec.key_id",
    "zbee_aps.counter",
    "zbee_zcl.cmd.tsn",
    "zbee_zdp.seqno",
)


def key_options(keys: dict[str, bytes]) -> list[str]:
    """tshark's ZigBee key table, one ``-o`` per key (label -> key)."""
    options = []
    for label, key in keys.items():
        options += ["-o", f'uat:zigbee_pc_keys:"{key.hex().upper()}","Normal","{label}"']
    return options


def tshark_fields(
    capture: Path, options: Sequence[str], fields: Sequence[str] = FIELDS
) -> list[dict[str, str]]:
    """One dict per frame: field -> value (all occurrences, comma-joined)."""
    command = [require("tshark"), "-r", str(capture), *options, "-T", "fields"]
    command += ["-E", "occurrence=a", "-E", "aggregator=,", "-E", "separator=\t"]
    for name in fields:
        command += ["-e", name]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return [dict(zip(fields, line.split("\t"), strict=True)) for line in out.splitlines()]


def tshark_decrypted(capture: Path, options: Sequence[str]) -> dict[int, list[bytes]]:
    """The "Decrypted ZigBee Payload" data sources tshark shows (``-x``), by frame number."""
    command = [require("tshark"), "-r", str(capture), *options, "-x"]
    text = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    frames: dict[int, list[bytearray]] = {}
    number = 0
    current: bytearray | None = None
    blank = True
    for line in text.splitlines():
        if not line.strip():  # packets are separated by one blank line
            blank = True
            continue
        if blank:
            number += 1
            frames[number] = []
            current = None
            blank = False
        if line.startswith("Decrypted ZigBee Payload"):
            current = bytearray()
            frames[number].append(current)
        elif not re.match(r"^[0-9a-f]{4}  ", line):
            current = None  # another data source
        elif current is not None:
            current += bytes.fromhex(line[6:53].replace(" ", ""))
    return {n: [bytes(p) for p in payloads] for n, payloads in frames.items()}


def zse_frames(capture: Path, keys: KeyRing) -> list[Decoded]:
    """zse capture's decoding of every frame."""
    decoder = CaptureDecoder(keys)
    with capture.open("rb") as file:
        return [decoder.decode(record) for record in read_records(file)]


def zse_row(frame: Decoded) -> dict[str, str]:
    """FIELDS from zse capture's decoding of ``frame``, in tshark's notation."""
    nwk, command = frame.nwk, frame.command or {}
    counters = [aps.counter for aps in (frame.aps, frame.tunnelled) if aps is not None]
    return {
        "frame.number": str(frame.record.number),
        "zbee_nwk.src": f"0x{nwk.src:04x}" if nwk and nwk.src is not None else "",
        "zbee_nwk.dst": f"0x{nwk.dst:04x}" if nwk and nwk.dst is not None else "",
        "zbee.sec.counter": ",".join(str(s.aux.counter) for s in frame.security),
        "zbee.sec.key_id": ",".join(f"0x{int(s.aux.key_id):02x}" for s in frame.security),
        "zbee_aps.counter": ",".join(str(c) for c in counters if c is not None),
        "zbee_zcl.cmd.tsn": str(command["tsn"]) if command.get("layer") == "zcl" else "",
        "zbee_zdp.seqno": str(command["tsn"]) if command.get("layer") == "zdo" else "",
    }


def compare(capture: Path, keys: KeyRing, tshark_keys: dict[str, bytes]) -> list[Decoded]:
    """Assert zse capture and tshark agree on FIELDS and on every decrypted payload of
    every frame; return zse's frames for further checks."""
    options = key_options(tshark_keys)
    theirs = tshark_fields(capture, options)
    ours = zse_frames(capture, keys)
    assert len(ours) == len(theirs)
    for frame, their_row in zip(ours, theirs, strict=True):
        assert zse_row(frame) == their_row, frame.record.number
    decrypted = tshark_decrypted(capture, options)
    for frame in ours:
        # an empty payload (an APS-secured APS ack's) has no "Decrypted ZigBee Payload" in
        # tshark: Wireshark's dissector stops before the MIC check when nothing is encrypted
        payloads = [s.payload for s in frame.security if s.payload]
        assert payloads == decrypted[frame.record.number], frame.record.number
    return ours


def command_fields(frame: Decoded) -> dict[str, Any]:
    """The decoded command's fields (empty if none)."""
    return dict((frame.command or {}).get("fields") or {})
