"""tshark as the oracle for captures: every packet as a flat map of field name to values."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.oracles import require


def dissect(capture: Path, options: Sequence[str] = ()) -> list[dict[str, list[str]]]:
    """Every packet as tshark's field name -> shown values; fails on any malformed packet.
    ``options``: extra tshark arguments, e.g. ZigBee keys (``zigbee_key_options``)."""
    raw = subprocess.run(
        [require("tshark"), "-r", str(capture), *options, "-T", "json", "--no-duplicate-keys"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "_ws.malformed" not in raw
    packets = []
    for packet in json.loads(raw):
        fields: dict[str, list[str]] = {}
        _flatten(packet["_source"]["layers"], fields)
        packets.append(fields)
    return packets


def _flatten(node: Any, into: dict[str, list[str]]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str):
                into.setdefault(key, []).append(value)
            elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                into.setdefault(key, []).extend(value)
            else:
                _flatten(value, into)
    elif isinstance(node, list):
        for item in node:
            _flatten(item, into)
