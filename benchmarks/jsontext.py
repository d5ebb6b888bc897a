"""``zse.jsontext.loads`` against ``json.loads`` on the payloads the headend's workers read most:
a device's ReportReceived event and a batch response, as bytes from the broker.

Usage: .venv/bin/python benchmarks/jsontext.py [--rounds N]

Each payload is parsed N times (default 200,000) by each reader, best of five batches (the
readers' batches alternate); the ratio is zse.jsontext's time over json.loads' (same run, same
interpreter). The extra work: a strict UTF-8 decode, a parse_float hook (none of these
payloads has a float), a regex search for a surrogate escape.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from zse.jsontext import loads

REPORT = json.dumps(
    {
        "event": "ReportReceived",
        "device": "00:0d:6f:00:0a:00:00:01",
        "time": 1_796_424_074,
        "new": True,
        "report": {"issuer_event_id": 1_796_424_000, "event_status": 2, "signed": True},
    }
).encode()
BATCH = json.dumps(
    {
        "command": "batch",
        "correlation_id": "zse-headend:w1:123",
        "responses": [
            {"command": "load_control", "correlation_id": f"k{i}", "status": "ok", "sent": True}
            for i in range(3)
        ],
    }
).encode()


def best(parsers: list[Callable[[bytes], Any]], payload: bytes, rounds: int) -> list[float]:
    """Seconds per parse of each parser, best of five batches of ``rounds``; the parsers'
    batches alternate, so that a shared machine's drift falls on all of them."""
    times: list[list[float]] = [[] for _ in parsers]
    for _ in range(5):
        for parse, batches in zip(parsers, times, strict=True):
            start = time.perf_counter()
            for _ in range(rounds):
                parse(payload)
            batches.append((time.perf_counter() - start) / rounds)
    return [min(batches) for batches in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200_000)
    rounds = parser.parse_args().rounds
    for name, payload in (("report event", REPORT), ("batch response", BATCH)):
        reference, ours = best([json.loads, loads], payload, rounds)
        print(
            f"{name} ({len(payload)} bytes): json.loads {reference * 1e6:.2f} µs, "
            f"zse.jsontext.loads {ours * 1e6:.2f} µs, ratio {ours / reference:.2f}x"
        )


if __name__ == "__main__":
    main()
