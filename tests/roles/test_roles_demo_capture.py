"""`zse demo`: the main job runs, tells its story, and its capture is what tshark says it is."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from tests.interpan.tshark_json import dissect
from tests.oracles import zigbee_key_options
from zse.cli.demo import story
from zse.sim import run

KE_CLIENT = {"0x00", "0x01", "0x02"}  # Initiate KE, Ephemeral Data, Confirm Key Data requests
KE_SERVER = {"0x00", "0x01", "0x02"}  # ... and their responses


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> tuple[Path, str]:
    """One run through the command line, as `make demo` does it; its keys (#15.5) next to
    the capture, see :func:`keys`."""
    capture = tmp_path_factory.mktemp("demo") / "demo.pcap"
    keyed = ["--keys", str(capture.with_suffix(".keys"))]  # #15.5
    done = subprocess.run(
        [sys.executable, "-m", "zse", "demo", "--seed", "5", "--pcap", str(capture), *keyed],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return capture, done.stdout


def keys(capture: Path) -> list[str]:
    """tshark options with the run's keys: the frames are NWK- and APS-secured (#15.1)."""
    return zigbee_key_options(capture.with_suffix(".keys").read_text().splitlines())


def test_the_story_is_told(demo_run):
    _, out = demo_run
    for line in (
        "registered kitchen in-home display",
        "ihd        new -> pending provisioning (provision)",
        "CBKE with thermostat done (suite 1)",
        "heater     pending provisioning -> meter ready (key_established)",
        "Publish Price to registry group 'elm-street': ihd delivered, thermostat delivered, "
        "heater delivered",
        'screen shows message 42: "Peak price 17:00-19:00: please save energy"',
        "message 42 confirmed by ihd",
        "report from thermostat event 0x0E0E0001: received (signature verified)",
        "report from heater     event 0x0E0E0001: started (signature verified)",
        "report from ihd        event 0x0E0E0001: completed (signature verified)",
        "cooling set point 27.0 C (load control)",
        "duty cycle 40% (load control)",
        "ihd         price PEAK: 0.2450 GBP/kWh",
        "heard Publish Price: PEAK 0.2450 GBP/kWh",
        "heater     pending de-provisioning -> de-provision complete (left)",
    ):
        assert line in out, line


def test_the_story_is_told_in_causal_order_with_one_mac_spelling(demo_run):
    """Issue 12 item 15: each device joins, then runs CBKE, then resyncs (it used to say
    "CBKE done" two seconds before "joined"); MACs are written one way, zigpy's; the time
    column is said to be virtual; no unexplained pause (the price follows the joins at once);
    the end names the capture."""
    capture, out = demo_run
    lines = out.splitlines()
    assert lines[0] == (
        "zse demo (seed 5): a Smart Energy HAN on the simulator; "
        "times are virtual (m:ss since the start)"
    )
    for name in ("ihd", "thermostat", "heater"):
        told = [
            next(i for i, line in enumerate(lines) if f"] {what}" in line)
            for what in (
                f"{name:<11} switched on: joins with its install code",
                f"{name:<11} joined as 0x",
                f"ESI         CBKE with {name} done (suite 1)",
                f"registry    {name:<10} pending provisioning -> meter ready (key_established)",
            )
        ]
        assert told == sorted(told), (name, told)
    assert re.findall(r"MAC (\S+),", out) == [
        "00:0d:6f:00:0a:00:00:01",
        "00:0d:6f:00:0a:00:00:02",
        "00:0d:6f:00:0a:00:00:03",
    ]
    assert not re.search(r"\b[0-9A-F]{16}\b", out)  # the registry's 16-digit form
    price = next(line for line in lines if "ihd         price PEAK" in line)
    last_join = next(line for line in lines if "heater      joined as" in line)
    assert price[:8] == last_join[:8] == "[  0:00]"
    assert lines[-1] == f"{len(dissect(capture))} frames on the air, written to {capture} " + (
        "(open it in Wireshark)"
    )


def test_the_price_is_a_realistic_one_in_the_currency_of_the_frame(demo_run):
    """24.50 p/kWh: Publish Price carries price 2450 with trailing digit 4 in GBP (ISO 4217
    826) per kWh (unit of measure 0); tshark reads the same fields the story prints."""
    capture, _ = demo_run
    prices = [
        p
        for p in dissect(capture, keys(capture))
        if "0x00" in p.get("zbee_zcl_se.price.cmd.srv_tx.id", [])
    ]
    assert len(prices) == 4  # to each device, and over inter-PAN to the visitor
    for packet in prices:
        assert packet["zbee_zcl_se.price.currency"] == ["0x033a"]  # 826
        assert packet["zbee_zcl_se.price.price"] == ["2450"]
        assert packet["zbee_zcl_se.price.trailing_digit"] == ["0x04"]
        assert packet["zbee_zcl_se.price.unit_of_measure"] == ["0x00"]


def test_without_pcap_the_end_points_to_it():
    lines: list[str] = []
    run(story(5, say=lines.append))
    assert lines[-2:] == [
        f"\n{lines[-2].split()[0]} frames on the air",
        "Run `zse demo --pcap han.pcap` to write them to a pcap file for Wireshark.",
    ]


def test_tshark_finds_every_chapter_in_the_capture_and_nothing_malformed(demo_run):
    capture, _ = demo_run
    packets = dissect(capture, keys(capture))  # fails on any malformed packet

    def having(field: str, value: str | None = None) -> list[dict[str, list[str]]]:
        return [p for p in packets if field in p and (value is None or value in p[field])]

    # Key establishment, both directions, for each of the three devices.
    ke_requests = having("zbee_zcl_se.ke.cmd.srv_rx.id")
    ke_responses = having("zbee_zcl_se.ke.cmd.srv_tx.id")
    assert sorted(p["zbee_zcl_se.ke.cmd.srv_rx.id"][0] for p in ke_requests) == sorted(
        list(KE_CLIENT) * 3
    )
    assert sorted(p["zbee_zcl_se.ke.cmd.srv_tx.id"][0] for p in ke_responses) == sorted(
        list(KE_SERVER) * 3
    )
    # Publish Price (on the network and over inter-PAN), Display Message, Message Confirmation.
    assert having("zbee_zcl_se.price.cmd.srv_tx.id", "0x00")
    assert having("zbee_zcl_se.msg.cmd.srv_tx.id", "0x00")
    assert having("zbee_zcl_se.msg.cmd.srv_rx.id", "0x01")
    # Load Control Event to each device, and each device's reports: received, started, completed.
    assert len(having("zbee_zcl_se.drlc.cmd.srv_tx.id", "0x00")) >= 3
    statuses: dict[str, list[int]] = defaultdict(list)
    for packet in having("zbee_zcl_se.drlc.report_event.event_status"):
        source = packet["zbee_nwk.src"][0]
        statuses[source] += [
            int(v, 16) for v in packet["zbee_zcl_se.drlc.report_event.event_status"]
        ]
    assert len(statuses) == 3
    assert all(s == [0x01, 0x02, 0x03] for s in statuses.values()), statuses
    # An inter-PAN frame (NWK frame type 3): the request and the answer.
    interpan = having("zbee_nwk.frame_type", "0x0003")
    assert {
        p["zbee_zcl_se.price.cmd.srv_rx.id"][0]
        for p in interpan
        if "zbee_zcl_se.price.cmd.srv_rx.id" in p
    } == {"0x00"}
    assert any("zbee_zcl_se.price.cmd.srv_tx.id" in p for p in interpan)


def test_same_seed_same_capture_other_seed_other_capture(demo_run, tmp_path):
    capture, _ = demo_run
    again, other = tmp_path / "again.pcap", tmp_path / "other.pcap"
    lines: list[str] = []
    happened = run(story(5, str(again), say=lines.append))
    assert again.read_bytes() == capture.read_bytes()
    run(story(6, str(other), say=lambda _: None))
    assert other.read_bytes() != capture.read_bytes()
    assert happened["states"] == {
        "ihd": "meter ready",
        "thermostat": "meter ready",
        "heater": "de-provision complete",
    }
    assert happened["view"] == {name: [1, 2, 3] for name in ("ihd", "thermostat", "heater")}
    assert happened["confirmations"] == ["ihd"]
    assert happened["interpan_price"] == 1001
