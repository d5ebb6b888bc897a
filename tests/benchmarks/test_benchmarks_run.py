"""Every ``benchmarks/`` script still runs in its quick form and prints its figures, each with
the ratio to a reference measured in the same run (docs/performance.md); a tool it needs that
is missing ends it with one line and a non-zero status. Shapes only, never timings.

``meter_reports.py``, ``drlc_scale.py`` and ``capture_decode.py`` have theirs beside their
features (``tests/metering``, ``tests/drlc``, ``tests/capture``); ``utility.py``,
``meter_cpu.py``, ``utility_headend.py`` and ``interpan_flood.py`` take more than a few seconds
even at their smallest (worker processes, a warm-up), and are not run here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.oracles import require

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
RATIO = r"[\d,.]+x"  # a thousands separator where it is large

Done = subprocess.CompletedProcess[str]


def finished(script: str, *args: str, env: dict[str, str] | None = None) -> Done:
    """The script run to its end (bounded), in a process of its own."""
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=env,
    )


def run(script: str, *args: str) -> str:
    """The script's output, once it has exited 0."""
    done = finished(script, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_jsontext_prints_both_readers_and_their_ratio() -> None:
    out = run("jsontext.py", "--rounds", "200")
    for payload in ("report event (175 bytes)", "batch response (324 bytes)"):
        assert re.search(
            rf"{re.escape(payload)}: json.loads [\d.]+ µs, zse.jsontext.loads [\d.]+ µs, "
            rf"ratio {RATIO}",
            out,
        ), out


def test_installcode_prints_the_ratio_to_zigpy_and_the_csv_run() -> None:
    out = run("installcode.py", "--rows", "50", "--repeat", "1")
    assert re.search(r"zse +[\d.]+ us\n +zigpy +[\d.]+ us\n +ratio +[\d.]+x faster", out), out
    assert re.search(r"zse installcode --csv, 50 rows, \d+ CPUs: [\d.]+ s", out), out


def test_interpan_prints_its_three_ratios_and_the_limiter() -> None:
    """``--sources``: a flood of 40, timed over its first and last 20 frames."""
    out = run("interpan.py", "--repeat", "1", "--sources", "40")
    assert re.search(r"ratio: zse is [\d.]+x faster than scapy", out), out
    assert re.search(r"ratio: zse is [\d.]+x faster than zigpy's ZCLHeader", out), out
    assert "spoofed Publish Price, 40 sources, us/frame (first 20 -> last 20):" in out
    assert re.search(rf"ratio last/first: bounded {RATIO}, unbounded {RATIO}", out), out
    assert re.search(r"ESI reply limiter, 40 new sources: [\d.]+ us/decision", out), out


def test_sim_prints_the_ratio_to_real_time() -> None:
    out = run("sim.py", "--devices", "3", "--seed", "1")
    assert "devices: 3, interviewed by zigpy: 3, ZCL responses: 3" in out
    assert re.search(r"frames on the air: \d+ in [\d.]+ s wall -> [\d,]+ frames/s", out), out
    assert re.search(rf"ratio to real time: {RATIO}", out), out
    assert re.search(r"peak memory \(tracemalloc\): [\d.]+ MiB", out), out


def test_sim_scale_prints_each_size_against_the_smallest() -> None:
    out = run("sim_scale.py", "--meters", "2,3", "--han", "2")
    rows = re.findall(rf"^ +(\d+) \| +(\d+) \| +[\d.]+ \(({RATIO})\)", out, re.M)
    assert [(size, devices) for size, devices, _ in rows] == [("2", "6"), ("3", "9"), ("2", "2")]
    assert rows[0][2] == rows[2][2] == "1.00x", out  # each shape against its smallest size


def test_headend_records_prints_the_ratio_to_a_bare_insert() -> None:
    """``--no-goal``: at a few devices the fixed costs decide the ratio, not the goal."""
    out = run("headend_records.py", "--small", "10", "--large", "20", "--no-goal")
    assert re.search(r"bare aiosqlite INSERT \+ COMMIT +[\d.]+ ms/row", out), out
    assert re.search(r"zse report, +20 devices +[\d.]+ ms/report", out), out
    assert re.search(rf"zse / bare insert: {RATIO} \(goal <= 3.0x\)", out), out
    assert re.search(rf"20 / 10 devices, per report: {RATIO}", out), out


def test_store_open_prints_its_checks_and_their_ratio_to_quick_check() -> None:
    out = run("store_open.py", "--records", "200")
    assert "store: 200 records + 200 journal entries" in out
    assert re.search(r"\| whole Store.open \| \d+ ms \|", out), out
    assert re.search(rf"integrity_check {RATIO}, whole Store.open {RATIO}", out), out
    assert "goal: Store.open <= 3 s: met" in out


def test_cbke_prints_openssl_and_the_rows_ratio() -> None:
    require("openssl")
    out = run("cbke.py", "--only", "decode_point")
    assert re.search(r"OpenSSL ecdhk163: [\d.]+ ms/op\nOpenSSL ecdhk283: [\d.]+ ms/op", out), out
    assert re.search(rf"sect163k1 decode_point \(full validation\) +[\d.]+ +[\d.]+ +{RATIO}", out)


def test_store_engines_prints_both_engines_against_their_drivers() -> None:
    out = run("store_engines.py", "--commits", "10")
    for engine in ("SQLite", "PostgreSQL"):
        assert re.search(
            rf"{engine}: zse.store commits at {RATIO} and loads at {RATIO} its raw", out
        ), out


def test_headend_queue_prints_swap_over_transaction() -> None:
    out = run("headend_queue.py", "--devices", "10")
    modes = re.findall(r"^ +(transaction|swap) +[\d.]+ +[\d.]+ +[\d.]+$", out, re.M)
    assert modes == ["transaction", "transaction", "swap", "swap"], out
    ratio = rf"(?:{RATIO}|-)"  # "-": a CPU time under /proc's clock tick, at 10 devices
    assert re.search(rf"swap / tx +{ratio} +{ratio} +{ratio}$", out, re.M), out


def test_mqtt_bridge_prints_the_ratio_to_mosquitto_pub() -> None:
    require("mosquitto")
    out = run("mqtt_bridge.py", "--events", "20")
    assert re.search(r"zse: ESI event .* [\d,]+ events/s", out), out
    assert re.search(r"reference: mosquitto_pub .* [\d,]+ messages/s", out), out
    assert re.search(rf"ratio: zse at {RATIO} the reference", out), out


def test_mqtt_floor_prints_each_layer_against_the_floor() -> None:
    require("mosquitto")
    out = run("mqtt_floor.py", "--messages", "40", "--rounds", "1", "--layers")
    layers = re.findall(rf"^ *(\w+): +[\d.]+ µs CPU a message .*, +({RATIO}) the floor$", out, re.M)
    assert [layer for layer, _ in layers] == ["floor", "aiomqtt", "link", "worker"], out
    assert layers[0][1] == "1.0x"


def test_headend_load_prints_both_phases_against_bare_aiohttp() -> None:
    out = run("headend_load.py", "--seconds", "0.2", "--clients", "1")
    assert re.search(r"reference \(bare aiohttp\) +\d+ req/s", out), out
    for phase in ("status reads", "by-group sends"):
        assert re.search(rf"ratio {phase} / reference: [\d.]+ of the rate, p99 x[\d.]+", out)


@pytest.mark.parametrize(
    ("script", "args", "tool"),
    [
        ("mqtt_floor.py", ["--messages", "10"], "mosquitto"),
        ("cbke.py", ["--only", "decode_point"], "openssl"),
        ("capture_decode.py", ["--frames", "10", "--no-goal"], "tshark"),
    ],
)
def test_a_missing_tool_ends_the_run_with_one_line(
    script: str, args: list[str], tool: str, tmp_path: Path
) -> None:
    """With nothing on PATH the script says which tool it needs, in one line, and exits 1;
    it used to end in a traceback (tshark's also quoted the capture's keys)."""
    done = finished(script, *args, env={**os.environ, "PATH": str(tmp_path)})
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"{script}: needs {tool}"), done.stderr


def test_calendar_reading_prints_both_calendars_and_their_ratio() -> None:
    out = run("calendar_reading.py", "--readings", "4")
    for name in ("worst", "GB TOU"):
        assert re.search(
            rf"{name}: cold reading [\d.]+ ms, later the same day [\d.]+ ms, ratio {RATIO}", out
        ), out
