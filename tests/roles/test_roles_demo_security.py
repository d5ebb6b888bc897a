"""`zse demo --pcap x.pcap --keys x.keys` (#15.1, #15.5): without keys tshark sees NWK
security on every data frame and no ZCL payload; with the key file it decrypts every frame,
nothing malformed, and reads the SE story; the key file is owner-only, complete and the only
place keys appear."""

from __future__ import annotations

import contextlib
import io
import logging
import re
import stat
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from click.testing import CliRunner

from tests.interpan.tshark_json import dissect
from tests.oracles import zigbee_key_options
from zse.cli import main as cli
from zse.cli.demo import START, story
from zse.sim import run

LINE = re.compile(r'^"([0-9A-F]{32})","Normal","([^"]+)"$')
ESI = "00:0d:6f:00:00:00:00:e5"
INTERPAN = "0x0003"  # NWK frame type of inter-PAN frames: no NWK layer, sent in clear (SE B)


class Told(NamedTuple):
    capture: Path
    keys: Path
    stdout: str
    logged: str
    threads: list[str]


@contextlib.contextmanager
def threads_started() -> Iterator[list[str]]:
    """The names of the threads started inside the block (``threading.Thread.start``)."""
    started: list[str] = []
    start = threading.Thread.start

    def recording(thread: threading.Thread) -> None:
        started.append(thread.name)
        start(thread)

    threading.Thread.start = recording  # type: ignore[method-assign]
    try:
        yield started
    finally:
        threading.Thread.start = start  # type: ignore[method-assign]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Told:
    """The demo run through the library, every log record kept (DEBUG and up)."""
    where = tmp_path_factory.mktemp("demo-keys")
    capture, keys = where / "demo.pcap", where / "demo.keys"
    lines: list[str] = []
    logged = io.StringIO()
    handler = logging.StreamHandler(logged)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with threads_started() as threads:
            run(story(5, str(capture), say=lines.append, keys=keys))
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    return Told(capture, keys, "\n".join(lines) + "\n", logged.getvalue(), threads)


def test_the_story_runs_on_one_thread(demo):
    """Nothing of the story works on a thread of its own (the stores' SQLite runs on the loop's
    thread, CBKE's arithmetic inline): a thread's answer lands wherever the loop happens to be
    when it finishes, which would make the capture depend on the machine's timing (the
    Configure Reporting response once overtook a Default Response under load)."""
    assert demo.threads == []


def devices(stdout: str) -> list[str]:
    """The HAN devices the story registered (and then joined), by EUI-64, in order."""
    found = re.findall(r"registered .*: MAC (\S+), install code", stdout)
    assert len(found) >= 3, stdout
    return found


def terminal(stdout: str) -> str:
    """The installer's terminal (issue #20): it never joined, then joined with the install
    code it handed over; it does no CBKE on the network."""
    (found,) = re.findall(r"terminal +((?:[0-9a-f]{2}:){7}[0-9a-f]{2}) never joined", stdout)
    assert "joined the HAN" in stdout
    return found


def key_lines(keys: Path) -> list[tuple[str, str]]:
    lines = keys.read_text().splitlines()
    matches = [LINE.match(line) for line in lines]
    assert all(matches), lines
    return [(m.group(1), m.group(2)) for m in matches if m]


def test_the_key_file_is_owner_only_and_holds_every_key_of_the_run(demo):
    _, keys, stdout, _, _ = demo
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    labels = [label for _, label in key_lines(keys)]
    euis = devices(stdout)
    hht = terminal(stdout)
    assert labels[0] == "network key 0"
    assert sorted(labels[1:]) == sorted(
        [f"install-code link key {eui}" for eui in [*euis, hht]]
        + [f"link key {ESI} {eui}" for eui in euis]  # the CBKE keys
        + [f"inter-PAN link key {ESI} {hht}"]  # key establishment over inter-PAN (#20)
    )
    assert len({key for key, _ in key_lines(keys)}) == len(labels) == 3 + 2 * len(euis)


def test_the_capture_starts_on_the_story_s_date(demo):
    """Timestamps are the virtual clock on the story's own epoch (#15.2): 2025-05-08, the
    ZigBee time its devices are told, not 1970; the same for every run."""
    seconds, micros = struct.unpack_from("<II", demo.capture.read_bytes(), 24)
    assert seconds + micros / 1e6 == START + 946_684_800  # ZigBee time 0 is 2000-01-01 UTC


def test_keys_appear_nowhere_but_in_the_key_file(demo):
    _, keys, stdout, logged, _ = demo
    assert "frames on the air" in stdout
    assert logged  # the stack (zigpy, zse) logged at DEBUG meanwhile
    told = stdout + logged
    for key, _ in key_lines(keys):
        assert key not in told.upper()
        assert "".join(f"{b:02x}" for b in bytes.fromhex(key)) not in told


def test_without_keys_tshark_sees_nwk_security_everywhere_and_no_zcl(demo):
    capture = demo.capture
    joined = len(devices(demo.stdout)) + len([terminal(demo.stdout)])  # the terminal joins too
    packets = [p for p in dissect(capture) if "zbee_nwk.frame_type" in p]
    secured = [p for p in packets if p["zbee_nwk.security"] == ["1"]]
    clear = [
        p
        for p in packets
        if p["zbee_nwk.security"] != ["1"] and INTERPAN not in p["zbee_nwk.frame_type"]
    ]
    # In clear at the NWK layer: only the Transport Keys to the joining devices (they hold no
    # network key yet), APS-secured with the key-transport key (key id 2) and unreadable: no
    # key field shown.
    assert len(clear) == joined
    for packet in clear:
        assert packet["zbee_aps.security"] == ["1"]
        assert packet["zbee.sec.key_id"] == ["0x02"]
        assert "zbee_sec.encrypted_payload" in packet
        assert not any(name.startswith("zbee_aps.cmd.key") for name in packet)
    assert len(secured) > 90
    assert all("zbee_sec.encrypted_payload" in p for p in secured)
    hidden = [p for p in packets if INTERPAN not in p["zbee_nwk.frame_type"]]
    assert not any(name.startswith("zbee_zcl") for p in hidden for name in p)
    assert not any(name.startswith("zbee_zdp") for p in hidden for name in p)


def test_with_the_key_file_tshark_decrypts_every_frame_and_reads_the_story(demo):
    capture, keys, stdout, _, _ = demo
    packets = dissect(capture, zigbee_key_options(keys.read_text().splitlines()))  # none malformed
    assert not any("zbee_sec.encrypted_payload" in p for p in packets)  # no MIC failure
    assert not any("_ws.expert.message" in p for p in packets)
    # The Transport Keys now show the network key they carry.
    network_key = key_lines(keys)[0][0]
    carried = [p["zbee_aps.cmd.key"][0] for p in packets if "zbee_aps.cmd.key" in p]
    euis = devices(stdout)
    joined = len(euis) + len([terminal(stdout)])  # the installer's terminal joins too (#20)
    assert [k.replace(":", "").upper() for k in carried] == [network_key] * joined
    # SE frames after key establishment are APS-secured with the CBKE keys.
    aps_secured = [p for p in packets if p.get("zbee_aps.security") == ["1"]]
    cbke = {f"link key {ESI} {eui}" for eui in euis}
    used = {k for p in aps_secured for k in p.get("zbee.sec.decryption_key", []) if k in cbke}
    assert used == cbke
    # The installer's handover over inter-PAN (#20) decrypts with the inter-PAN link key.
    handover = [p for p in packets if p.get("zbee_aps.cluster") == ["0xfc5f"]]
    assert len(handover) == 2  # the handover and its answer
    assert all(
        p["zbee.sec.decryption_key"] == [f"inter-PAN link key {ESI} {terminal(stdout)}"]
        for p in handover
    )
    # The same story as the demo printed: each price it shows came in a Publish Price on the
    # air (to each device, and over inter-PAN to the visitor).
    shown = stdout.count("price PEAK: 0.2450 GBP/kWh") + stdout.count("Price: PEAK 0.2450 GBP/kWh")
    prices = [p for p in packets if p.get("zbee_zcl_se.price.price") == ["2450"]]
    assert len(prices) == shown >= 4
    assert "message 42 confirmed by ihd" in stdout
    assert any(p.get("zbee_zcl_se.msg.cmd.srv_rx.id") == ["0x01"] for p in packets)


def test_the_command_line_writes_the_same_capture_and_keys_owner_only(demo, tmp_path):
    """`zse demo --seed 5 --pcap --keys` is the library's run, byte for byte; a key file that
    was readable by all is owner-only afterwards."""
    capture, keys = tmp_path / "again.pcap", tmp_path / "again.keys"
    keys.write_text("an older file, readable by all\n")
    keys.chmod(0o644)
    done = CliRunner().invoke(
        cli, ["demo", "--seed", "5", "--pcap", str(capture), "--keys", str(keys)]
    )
    assert done.exit_code == 0, done.output
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert keys.read_bytes() == demo.keys.read_bytes()
    assert capture.read_bytes() == demo.capture.read_bytes()
    # the same story, line for line: the registry's changes are told where the story waits
    # for the registry, not from its database thread's callbacks
    told = demo.stdout.replace(str(demo.capture), str(capture))
    assert done.output.splitlines() == told.splitlines()


def test_an_unwritable_key_file_is_a_one_line_usage_error(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "zse", "demo", "--keys", str(tmp_path / "no" / "such.keys")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"error: cannot write {tmp_path / 'no' / 'such.keys'}: No such file or directory"
    ]
