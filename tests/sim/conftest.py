"""Fixtures for the simulator tests: the tshark oracle."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.oracles import require
from tests.virtual_time import pytest_asyncio_loop_factories

__all__ = ["pytest_asyncio_loop_factories", "tshark_json", "tshark_malformed"]


def _run_tshark(path: Path, *args: str) -> str:
    result = subprocess.run(
        [require("tshark"), "-r", str(path), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout


@pytest.fixture
def tshark_json() -> Callable[..., list[dict[str, Any]]]:
    """Dissect a pcap with tshark (``options``: e.g. ZigBee keys) and return the list of
    packets' ``layers`` dicts."""

    def dissect(path: Path, options: Sequence[str] = ()) -> list[dict[str, Any]]:
        packets = json.loads(_run_tshark(path, *options, "-T", "json"))
        return [p["_source"]["layers"] for p in packets]

    return dissect


@pytest.fixture
def tshark_malformed() -> Callable[..., str]:
    """tshark's summary line of every malformed or bad-FCS packet in a pcap ("" if none)."""

    def malformed(path: Path, options: Sequence[str] = ()) -> str:
        return _run_tshark(path, *options, "-Y", "_ws.malformed or wpan.fcs_ok == 0").strip()

    return malformed
