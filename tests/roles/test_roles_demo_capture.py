"""`zse demo`: the main job runs, tells its story, and its capture is what tshark says it is."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from tests.interpan.tshark_json import dissect
from tests.oracles import zigbee_key_options
from zse.cli.demo import runnable_command, story
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
        # #14: metering, time, block tariff and cost, mirroring, load profile
        "ESI         mirror for gas on endpoint 10 (Request Mirror answered)",
        "gas         mirrored by the ESI on endpoint 10",
        "ihd         found the meter on endpoint 9 (Match Descriptor)",
        "(Time cluster): 2025-05-08 17:01:00 local (UTC+01:00, daylight saving in force)",
        "gas         wakes up and pushes its register to the mirror (Report Attributes): SUCCESS",
        "ihd         reads the gas meter's mirror on endpoint 10: 1234.567 m³",
        "Publish Block Period (a day; blocks from 1 and 3 kWh at 0.2000, 0.2450, 0.3000 GBP/kWh)"
        " to registry group 'elm-street': ihd delivered, thermostat delivered, heater delivered",
        "Get Profile: 2 intervals of 15 min, newest first: 0.512 kWh, 1.026 kWh",
        # SE 1.2 Metering: snapshot, sampling through the load control event, supply control
        "[  4:39] ihd         Start Sampling: the demand every 5 min through the event, "
        "8 samples from 5:09: session 1",
        "[ 40:39] ihd         Take Snapshot: the meter took snapshot 1",
        "[ 40:39] ihd         Get Snapshot: snapshot 1 of 40:39 (general, manually triggered "
        "from client): 1.961 kWh delivered",
        "[ 40:39] headend     the utility arms the supply (Change Supply to Off/Armed)",
        "[ 40:39] ESI         supply On -> Off/Armed (change supply)",
        "[ 40:39] ihd         reads Supply Status: Off/Armed; asks the user to press OK to "
        "restore it",
        "[ 41:09] ihd         the user presses OK: Local Change Supply",
        "[ 41:09] ESI         supply Off/Armed -> On (local change supply)",
        "[ 41:09] ihd         Local Change Supply: SUCCESS",
        # #20: the installer terminal, GB style
        "terminal    00:0d:6f:00:0f:00:00:42 never joined; key establishment over inter-PAN",
        "ESI         device log: 00:0d:6f:00:0f:00:00:42 admitted with its install code",
        "terminal    no answer to command 2: out of range; will resume",
        "terminal    command 2 (set time): DUPLICATE (its answer was lost: not run twice)",
        "attacker    replays command 2: DUPLICATE, not run",
        "attacker    a signed command with old counter 1: STALE_COUNTER",
        "attacker    a command signed for another hub, counter 4: WRONG_TARGET",
        "terminal    a command it signed itself: BAD_SIGNATURE",
    ):
        assert line in out, line


def test_the_display_shows_demand_drop_during_load_control_and_the_cost(demo_run):
    """#14.7: the household draws 350 W + the air conditioner's 2000 W + the water heater's
    3000 W; while the event runs the thermostat is 3.0 C up (75 % less) and the heater at 40 %
    duty: 350 + 500 + 1200 = 2050 W. The cost is the block tariff's: the first kWh of the
    block period at 0.2000, the rest (below 3 kWh) at 0.2450."""
    _, out = demo_run
    screens = [line.split("screen: ", 1)[1] for line in out.splitlines() if "screen: " in line]
    demands = [re.search(r"demand (\S+ kW)", screen)[1] for screen in screens]  # type: ignore[index]
    assert demands == ["5.350 kW", "5.350 kW", "2.050 kW", "5.350 kW", "5.350 kW"]
    assert screens[2].endswith("(load control event running)")
    assert screens[3].endswith("(back to normal)")
    used, cost = re.search(
        r"used (\S+) kWh this block period, cost (\S+) GBP", screens[-1]
    ).groups()  # type: ignore[union-attr]
    kwh = float(used)
    assert kwh > 1
    assert cost == f"{0.2 + (kwh - 1) * 0.245 + 1e-9:.2f}"


def test_the_display_s_samples_show_the_demand_through_the_load_control_event(demo_run):
    """SE 1.2 Start Sampling / Get Sampled Data: the display asked for the demand every 5 min
    from 4.5 min before the event (5:09) to half a minute after it (40:09): 5350 W before and
    after, 2050 W while it ran (the meter's 30 s readings, so each sample is the reading
    before it). The session is asked for in the load control chapter and read back in the
    snapshots chapter, after the load profile and before the supply is armed."""
    _, out = demo_run
    lines = out.splitlines()
    (sampled,) = [line for line in lines if "Get Sampled Data:" in line]
    assert sampled == (
        "[ 40:39] ihd         Get Sampled Data: session 1, 8 samples every 5 min from 5:09: "
        + ", ".join(["5.350 kW"] + ["2.050 kW"] * 6 + ["5.350 kW"])
    )
    chapters = [line for line in lines if line.startswith("== ")]
    at = chapters.index("== Snapshots and sampling (Take Snapshot, Get Snapshot, Get Sampled Data)")
    assert chapters[at - 1] == "== The load profile (Get Profile)"
    assert chapters[at + 1] == (
        "== Supply control: the utility arms the supply, the consumer restores it"
    )
    assert chapters[at + 2].startswith("== Inter-PAN")


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
    # the words of the second column, for a reader who never saw SE (ESI, HAN, ihd, CBKE)
    assert lines[1].startswith("  who's who: headend = the utility; ESI = the meter")
    assert "CBKE = certificate-based key establishment" in lines[3]
    for name in ("ihd", "thermostat", "heater", "gas"):
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
        "00:0d:6f:00:0a:00:00:04",
    ]
    assert not re.search(r"\b[0-9A-F]{16}\b", out)  # the registry's 16-digit form
    # the metering chapter follows the joins at once, and the price the mirror's read
    last_join = next(line for line in lines if "gas         joined as" in line)
    meter = next(line for line in lines if "(Metering server)" in line)
    assert last_join[:8] == meter[:8] == "[  0:00]"
    mirror = next(line for line in lines if "reads the gas meter's mirror" in line)
    price = next(line for line in lines if "ihd         price PEAK" in line)
    assert price[:8] == mirror[:8]
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


def test_without_pcap_the_end_points_to_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # zse on PATH
    lines: list[str] = []
    run(story(5, say=lines.append))
    assert lines[-2:] == [
        f"\n{lines[-2].split()[0]} frames on the air",
        "Run `zse demo --pcap han.pcap --keys han.keys` to write them to a pcap file for"
        " Wireshark, with the keys that decrypt them.",
    ]


def test_the_command_named_is_one_the_reader_can_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """After `make demo` the `zse` command is in .venv/bin only, not on PATH: the end names
    the interpreter with -m zse (relative to where the reader is when below it); `zse` when
    this installation's is on PATH (another installation's zse is not this one)."""
    here = Path(sys.executable)
    monkeypatch.setenv("PATH", str(here.parent))
    assert runnable_command() == "zse"
    other = tmp_path / "bin"
    other.mkdir()
    (other / "zse").write_text("#!/bin/sh\n")
    (other / "zse").chmod(0o755)
    monkeypatch.setenv("PATH", str(other))
    monkeypatch.chdir(tmp_path)
    assert runnable_command() == f"{here} -m zse"  # the cwd is not above the interpreter
    monkeypatch.chdir(here.parent.parent)
    assert runnable_command() == f"{here.parent.name}/{here.name} -m zse"
    completed = subprocess.run(
        [*runnable_command().split()[:-2], "-m", "zse", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr


def test_the_interpreter_named_is_this_one_from_its_own_directory_or_a_spaced_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """From the interpreter's own directory the command named was ``python3 -m zse``, which
    a shell looks up on PATH (another Python, or none); a path with a space was cut in two.
    Both now name this interpreter, one word for a shell."""
    monkeypatch.setenv("PATH", str(tmp_path))  # no zse, no python there
    here = Path(sys.executable)
    monkeypatch.chdir(here.parent)
    assert runnable_command() == f"./{here.name} -m zse"
    monkeypatch.setattr(sys, "executable", str(tmp_path / "my venv" / "python"))
    monkeypatch.chdir(tmp_path.parent)
    assert shlex.split(runnable_command()) == [f"{tmp_path.name}/my venv/python", "-m", "zse"]


def test_a_capture_without_its_keys_is_said_to_be_encrypted(demo_run, tmp_path):
    """Wireshark shows no SE command of the capture without the keys: the end says so, and
    says nothing when they were written (the demo_run)."""
    lines: list[str] = []
    run(story(5, str(tmp_path / "han.pcap"), say=lines.append))
    assert lines[-1] == (
        "The frames are encrypted: add `--keys han.keys` for the keys Wireshark needs."
    )
    _, printed = demo_run
    assert printed.rstrip().endswith("(open it in Wireshark)")


def test_tshark_finds_every_chapter_in_the_capture_and_nothing_malformed(demo_run):
    capture, _ = demo_run
    packets = dissect(capture, keys(capture))  # fails on any malformed packet

    def having(field: str, value: str | None = None) -> list[dict[str, list[str]]]:
        return [p for p in packets if field in p and (value is None or value in p[field])]

    # Key establishment, both directions, for each of the four devices on the network, and
    # once over inter-PAN with the installer's terminal (#20).
    for field, commands in (
        ("zbee_zcl_se.ke.cmd.srv_rx.id", KE_CLIENT),
        ("zbee_zcl_se.ke.cmd.srv_tx.id", KE_SERVER),
    ):
        network = [p[field][0] for p in having(field) if p["zbee_nwk.frame_type"] != ["0x0003"]]
        interpan = [p[field][0] for p in having(field) if p["zbee_nwk.frame_type"] == ["0x0003"]]
        assert sorted(network) == sorted(list(commands) * 4)
        assert sorted(interpan) == sorted(commands)
    # The installer's tunnel (#20): Request Tunnel and its response, Transfer Data both ways
    # with Ack Transfer Data (flow control), the tunnel closed by the terminal.
    assert having("zbee_zcl_se.tun.cmd.srv_rx.id", "0x00")
    assert having("zbee_zcl_se.tun.cmd.srv_tx.id", "0x00")
    assert len(having("zbee_zcl_se.tun.cmd.srv_rx.id", "0x02")) >= 3
    assert len(having("zbee_zcl_se.tun.cmd.srv_tx.id", "0x01")) >= 3
    assert having("zbee_zcl_se.tun.cmd.srv_rx.id", "0x04")
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
    # #14: Metering Report Attributes with CurrentSummationDelivered and InstantaneousDemand,
    # a Get Profile and its response, Publish Block Period, the Time attributes read.
    reports = [
        p
        for p in packets
        if p.get("zbee_aps.cluster") == ["0x0702"] and p.get("zbee_zcl.cmd.id") == ["0x0a"]
    ]
    reported = {attr for p in reports for attr in p.get("zbee_zcl_se.met.attr_id", [])}
    assert {"0x0000", "0x0400"} <= reported
    (request,) = having("zbee_zcl_se.met.cmd.srv_rx.id", "0x00")
    assert request["zbee_zcl_se.met.get_profile.number_of_periods"] == ["4"]
    (response,) = having("zbee_zcl_se.met.cmd.srv_tx.id", "0x00")
    assert response["zbee_zcl_se.met.get_profile_response.status"] == ["0x00"]
    assert response["zbee_zcl_se.met.get_profile_response.intervals"] == ["512", "1026"]
    assert len(having("zbee_zcl_se.price.cmd.srv_tx.id", "0x01")) == 3  # Publish Block Period
    # SE 1.2 Metering (the snapshots and supply chapters): Start Sampling and its response,
    # Take Snapshot and its response, Get Snapshot answered by one Publish Snapshot whose TOU
    # sub-payload is the summation the story printed, Get Sampled Data and its samples, the
    # Supply Status read (Off/Armed) and Local Change Supply (On) answered SUCCESS.
    (sampling,) = having("zbee_zcl_se.met.cmd.srv_rx.id", "0x07")
    assert sampling["zbee_zcl_se.met.start_sampling.sample_request_interval"] == ["300"]
    assert sampling["zbee_zcl_se.met.start_sampling.max_number_of_samples"] == ["8"]
    (started,) = having("zbee_zcl_se.met.cmd.srv_tx.id", "0x0d")
    assert started["zbee_zcl_se.met.start_sampling_response.sample_id"] == ["1"]
    (snapshot,) = having("zbee_zcl_se.met.cmd.srv_rx.id", "0x05")
    assert snapshot["zbee_zcl_se.met.take_snapshot.snapshot_cause"] == ["0x00000001"]
    (taken,) = having("zbee_zcl_se.met.cmd.srv_tx.id", "0x05")
    assert taken["zbee_zcl_se.met.take_snapshot_response.snapshot_id"] == ["1"]
    assert taken["zbee_zcl_se.met.take_snapshot_response.snapshot_confirmation"] == ["0x00"]
    assert len(having("zbee_zcl_se.met.cmd.srv_rx.id", "0x06")) == 1  # Get Snapshot
    (published,) = having("zbee_zcl_se.met.cmd.srv_tx.id", "0x06")
    assert published["zbee_zcl_se.met.publish_snapshot.snapshot_cause"] == ["0x00000401"]
    assert published["zbee_zcl_se.met.publish_snapshot.payload_type"] == ["4"]  # TOU no billing
    sub = bytes.fromhex(
        published["zbee_zcl_se.met.publish_snapshot.sub_payload"][0].replace(":", "")
    )
    assert int.from_bytes(sub[:6], "little") == 1961  # Wh: "1.961 kWh delivered"
    assert len(having("zbee_zcl_se.met.cmd.srv_rx.id", "0x08")) == 1  # Get Sampled Data
    (samples,) = having("zbee_zcl_se.met.cmd.srv_tx.id", "0x07")
    assert samples["zbee_zcl_se.met.get_sampled_data_rsp.samples"] == (
        ["5350"] + ["2050"] * 6 + ["5350"]
    )
    (restore,) = having("zbee_zcl_se.met.cmd.srv_rx.id", "0x0c")
    assert restore["zbee_zcl_se.met.local_change_supply.proposed_supply_status"] == ["2"]
    answered = [
        p
        for p in having("zbee_zcl.cmd.id.rsp", "0x0c")
        if p.get("zbee_aps.cluster") == ["0x0702"] and p["zbee_zcl.dir"] == ["1"]
    ]
    assert [p["zbee_zcl.attr.status"] for p in answered] == [["0x00"]]
    supply_read = [
        p
        for p in packets
        if p.get("zbee_aps.cluster") == ["0x0702"]
        and p.get("zbee_zcl.cmd.id") == ["0x01"]
        and p.get("zbee_zcl_se.met.attr_id") == ["0x0014"]
    ]
    assert [p["zbee_zcl.attr.uint8"] for p in supply_read] == [["1"]]  # Off/Armed
    time_read = [
        p
        for p in packets
        if p.get("zbee_aps.cluster") == ["0x000a"] and p.get("zbee_zcl.cmd.id") == ["0x01"]
    ]
    # the ten Time attributes, answered in the frames they fit (nine, then ValidUntilTime)
    assert [sorted(p["zbee_zcl_general.time.attr_id"]) for p in time_read] == [
        [f"0x{attr:04x}" for attr in range(9)],
        ["0x0009"],
    ]
    assert time_read[0]["zbee_zcl_general.time.attr.time_status"] == ["0x0d"]


def test_each_han_device_asks_for_the_key_establishment_server(demo_run):
    """SE 5.4.7.1: a HAN device finds the ESI's Key Establishment server by a ZDO
    Match_Desc_req (profile 0x0109, input cluster 0x0800), as tshark reads it; the device
    does not assume the ESI's endpoint."""
    capture, _ = demo_run
    asks = [
        p
        for p in dissect(capture, keys(capture))
        if p.get("zbee_aps.zdp_cluster") == ["0x0006"]  # Match_Desc_req
        and p.get("zbee_zdp.profile") == ["0x0109"]
        and "0x0800" in p.get("zbee_zdp.in_cluster", [])
    ]
    # the ihd, the thermostat and the heater at least (the gas meter sleeps, the terminal
    # is not on the network)
    assert len({p["zbee_nwk.src"][0] for p in asks}) >= 3


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
        "gas": "meter ready",
    }
    assert happened["gas"] == "1234.567 m³"
    assert happened["profile"] == (512, 1026)
    assert happened["view"] == {name: [1, 2, 3] for name in ("ihd", "thermostat", "heater")}
    assert happened["confirmations"] == ["ihd"]
    assert happened["interpan_price"] == 1001
    assert happened["snapshot"] == (1, 0x401, 1961)  # General + Manually Triggered; Wh
    assert happened["samples"] == (5350, *[2050] * 6, 5350)
    assert happened["supply"] == [(2, 1, "change supply"), (1, 2, "local change supply")]
    assert happened["local_change_supply"] == "SUCCESS"
    assert happened["installer"] == {
        "statuses": ["EXECUTED", "DUPLICATE", "EXECUTED"],  # command 2's answer was lost
        "broken_at": [2],
        "executed": [1, 2, 3],  # each once
        "refused": ["DUPLICATE", "STALE_COUNTER", "WRONG_TARGET", "BAD_SIGNATURE"],
        "time_set": [820_000_000],
    }
