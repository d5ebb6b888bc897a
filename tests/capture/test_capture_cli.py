"""``zse capture`` on the command line (#15.3), as subprocesses with a timeout: the timeline
and JSON lines, keys from options, install codes and Wireshark key files, keys shown only
with --show-keys, --write for Wireshark without keys, and one-line errors with exit status
1 (the capture) or 2 (options, key file) and never a traceback (the bad options but the
first in this process: what the command says, without an interpreter's start each)."""

from __future__ import annotations

import json
import os
import selectors
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.capture import scapy_air as air
from tests.capture.tshark_view import tshark_fields, zse_frames
from tests.zse_cli import invoke_zse
from zse.capture import KeyRing, read_key_file

EUI = "000D6F000A000001"


def zse(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zse", "capture", *args],
        capture_output=True,
        text=stdin is None,
        input=stdin,
        timeout=120,
        check=False,
    )


@pytest.fixture
def conversation(tmp_path: Path) -> Path:
    path = tmp_path / "scapy.pcapng"
    air.write_pcapng(path)
    return path


def in_process(*args: str) -> subprocess.CompletedProcess[str]:
    return invoke_zse("capture", *args)


def _one_line_error(result: subprocess.CompletedProcess[str], status: int) -> str:
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    return lines[0]


def test_timeline_with_an_install_code_learns_and_hides_the_network_key(conversation: Path):
    result = zse(str(conversation), "--install-code", f"{EUI}={air.INSTALL_CODE}")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 6
    assert "APS transport key key_type=standard network key key=(hidden)" in lines[0]
    assert "[install code of 000D6F000A000001]" in lines[0]
    assert "learned network key from frame 1" in lines[0]
    assert "ZCL Price publish_price tsn 5 provider_id=2603 rate_label=PEAK" in lines[1]
    assert "0x3c1d -> 0x0000" in lines[2]
    assert "ZCL Price get_current_price" in lines[2]
    assert "NOT DECRYPTED (MIC fails with every key)" in lines[5]
    assert result.stderr == "6 frames, 5 decrypted, 1 not decrypted; 1 keys learned\n"
    assert air.NETWORK_KEY.hex() not in (result.stdout + result.stderr).lower()
    assert air.LINK_KEY.hex() not in (result.stdout + result.stderr).lower()


def test_show_keys_prints_the_keys_as_a_key_table(conversation: Path):
    result = zse(str(conversation), "--install-code", air.INSTALL_CODE, "--show-keys")
    assert result.returncode == 0, result.stderr
    assert f"key={air.NETWORK_KEY.hex()}" in result.stdout
    table = result.stderr.splitlines()[1:]
    assert table == [f'"{air.NETWORK_KEY.hex().upper()}","Normal","network key from frame 1"']
    assert [key.key for key in read_key_file(table)] == [air.NETWORK_KEY]


def test_key_file_and_json_lines(conversation: Path, tmp_path: Path):
    keys = tmp_path / "han.keys"
    keys.write_text(
        "# keys of the test HAN\n\n"
        f'"{air.NETWORK_KEY[::-1].hex(":").upper()}","Reverse","nwk"\n'
        f'"{air.LINK_KEY.hex()}", "Normal", "device link key"\n'
    )
    result = zse(str(conversation), "--keys", str(keys), "--json")
    assert result.returncode == 0, result.stderr
    frames = [json.loads(line) for line in result.stdout.splitlines()]
    assert [f["frame"] for f in frames] == [1, 2, 3, 4, 5, 6]
    assert frames[0]["command"]["key"] == "(hidden)"
    assert frames[2]["security"] == [
        {
            "layer": "nwk",
            "key_id": "network",
            "counter": 500,
            "key_seq": 0,
            "source": "00:0d:6f:00:0a:00:00:01",
            "decrypted_with": "nwk",
        },
        {
            "layer": "aps",
            "key_id": "data",
            "counter": 77,
            "source": "00:0d:6f:00:0a:00:00:01",
            "decrypted_with": "device link key",
        },
    ]
    assert frames[1]["command"]["fields"]["rate_label"] == "PEAK"
    assert frames[1]["time"] == "2023-11-14 22:13:20.750000"
    assert "learned_keys" not in frames[0]  # the network key was given already


def test_write_keeps_the_target_until_frames_come_and_is_the_owner_s_alone(
    conversation: Path, tmp_path: Path
):
    """--write truncated its target before the input was read (a file that is no capture left
    a 24-byte pcap header where the previous file was) and wrote decrypted frames, keys
    among them, 0644; a device was replaced by a file (as root)."""
    out = tmp_path / "clear.pcap"
    out.write_bytes(b"precious")
    garbage = tmp_path / "garbage.pcap"
    garbage.write_bytes(bytes(range(256)))
    _one_line_error(zse(str(garbage), "--write", str(out)), 1)
    assert out.read_bytes() == b"precious"
    result = zse(str(conversation), "--install-code", air.INSTALL_CODE, "--write", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:4] == bytes.fromhex("d4c3b2a1")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert list(tmp_path.glob(".zse-*")) == []
    truncated = tmp_path / "truncated.pcap"
    truncated.write_bytes(conversation.read_bytes()[:-5])  # the last record cut short
    _one_line_error(zse(str(truncated), "--write", str(out)), 1)
    frames = zse(str(out), "--json").stdout.splitlines()
    assert len(frames) == 5  # the frames before the cut are kept, as they were printed
    assert zse(str(conversation), "--write", "/dev/null").returncode == 0
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.oracle
def test_write_gives_wireshark_the_frames_without_security(conversation: Path, tmp_path: Path):
    out = tmp_path / "clear.pcap"
    result = zse(str(conversation), "--install-code", air.INSTALL_CODE, "--write", str(out))
    assert result.returncode == 0, result.stderr
    assert f"written to {out} without NWK/APS security" in result.stderr
    fields = ("zbee_nwk.security", "zbee_aps.security", "zbee_zcl_se.price.provider_id")
    seen = tshark_fields(out, (), fields)  # no keys given to tshark
    assert [row["zbee_nwk.security"] for row in seen] == ["0", "0", "0", "0", "0", "1"]
    assert [row["zbee_aps.security"] for row in seen[:5]] == ["0", "0", "0", "0", "0"]
    assert seen[1]["zbee_zcl_se.price.provider_id"] == "2603"
    again = zse(str(out), "--json")  # and zse reads it back without keys
    frames = [json.loads(line) for line in again.stdout.splitlines()]
    commands = [f.get("command", {}).get("command") for f in frames]
    assert commands == [
        "transport key",
        "publish_price",
        "get_current_price",
        "Read_Attributes",
        "Active_EP_req",
        None,
    ]


def test_standard_input(conversation: Path):
    result = zse("-", "--network-key", air.NETWORK_KEY.hex(), stdin=conversation.read_bytes())
    assert result.returncode == 0
    assert result.stdout.count(b"[network key #1]") == 4  # frames 2 to 5; 6 is broken


def test_bad_captures_give_one_line_and_status_1(tmp_path: Path, conversation: Path):
    """The cut capture, its frames shown before the error, as a process; the others say
    what the command says, in this process."""
    text = tmp_path / "notes.txt"
    text.write_text("not a capture\n")
    assert _one_line_error(in_process(str(text)), 1) == (
        "error: not a pcap or pcapng capture: the file starts with 6e6f7420"
    )
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(conversation.read_bytes()[:-10])
    result = zse(str(cut))
    message = _one_line_error(result, 1)
    assert message.startswith("error: block 8 at byte offset")
    assert message.endswith("truncated: the file ends 126 bytes into it")
    assert len(result.stdout.splitlines()) == 5  # the frames before it were shown
    wifi = tmp_path / "wifi.pcap"  # 802.11
    wifi.write_bytes(
        bytes.fromhex("d4c3b2a1020004000000000000000000ffff000069000000")
        + bytes.fromhex("00000000000000000400000004000000")
        + b"abcd"
    )
    assert _one_line_error(in_process(str(wifi)), 1) == (
        "error: record 1: link type 105 is not IEEE 802.15.4 (zse capture reads link "
        "types 195, 230, 283 and 215, and ZEP over UDP in 0, 1, 101, 108, 113, 228, 229 and 276)"
    )


def test_bad_options_and_key_files_give_one_line_and_status_2(tmp_path: Path, conversation):
    """The first as a process; the others say what the command says, in this process."""
    assert _one_line_error(zse(str(tmp_path / "missing.pcap")), 2) == (
        f"error: cannot read {tmp_path / 'missing.pcap'}: No such file or directory"
    )
    secret = "00112233445566778899AABBCCDDEE"  # 15 bytes: one short
    keys = tmp_path / "bad.keys"
    keys.write_text(f'"{air.NETWORK_KEY.hex()}","Normal","ok"\n"{secret}","Normal","short"\n')
    message = _one_line_error(in_process(str(conversation), "--keys", str(keys)), 2)
    assert message == (f"error: {keys} line 2: a key is 32 hex digits, got 30 characters")
    keys.write_text(f'"{air.NETWORK_KEY.hex()}","Sideways","x"\n')
    message = _one_line_error(in_process(str(conversation), "--keys", str(keys)), 2)
    assert message == f"error: {keys} line 1: byte order must be Normal or Reverse, not 'Sideways'"
    assert air.NETWORK_KEY.hex() not in message
    # a label's U+2028 or form feed ends no line (Wireshark's reading): the bad line is 3
    keys.write_text(
        f'"{air.NETWORK_KEY.hex()}","Normal","kit\u2028chen"\r\n'
        f'"{air.NETWORK_KEY.hex()}","Normal","hall\x0cway"\r"{secret}","Normal","short"\n',
        newline="",
    )
    message = _one_line_error(in_process(str(conversation), "--keys", str(keys)), 2)
    assert message == (f"error: {keys} line 3: a key is 32 hex digits, got 30 characters")
    keys.write_bytes(b"\xff\xfe")
    message = _one_line_error(in_process(str(conversation), "--keys", str(keys)), 2)
    assert message == f"error: cannot read key file {keys}: not UTF-8 text"
    result = in_process(str(conversation), "--write", str(tmp_path / "no" / "such.pcap"))
    assert _one_line_error(result, 2) == (
        f"error: cannot write --write {tmp_path / 'no' / 'such.pcap'}: "
        f"no such directory {tmp_path / 'no'}"
    )
    message = _one_line_error(in_process(str(conversation), "--network-key", "zz" * 16), 2)
    assert message == "error: --network-key #1: a key is hex digits only"
    message = _one_line_error(in_process(str(conversation), "--install-code", "1234"), 2)
    assert message.startswith("error: install code #1: install code has 4 hex digits")
    result = in_process(str(conversation), "--write", str(conversation))
    assert _one_line_error(result, 2).endswith(
        "is the input file: writing it would destroy the input; choose another name"
    )


def test_decoded_frames_never_show_a_key(conversation: Path):
    ring = KeyRing()
    ring.add_install_code(air.INSTALL_CODE)
    frames = zse_frames(conversation, ring)
    shown = " ".join(repr(part) for f in frames for part in (f, f.link, f.record, *f.security))
    for key in (air.NETWORK_KEY, air.LINK_KEY):
        assert key.hex() not in shown.lower()
        assert repr(key) not in shown
    assert repr(frames[0]) == (
        "Decoded(frame=1, src=0x0000, dst=0x3c1d, command='transport key', error=None)"
    )


def test_the_key_ring_never_shows_a_key():
    ring = KeyRing()
    key = ring.add_install_code(air.INSTALL_CODE, "meter")
    assert repr(key) == "Key(label='meter')"
    assert repr(ring) == "KeyRing(1 keys: meter)"
    assert key.key.hex() not in repr(ring).lower()


#: ``zse capture`` in a process that receives SIGINT while ``zse.capture`` is being imported:
#: a Ctrl-C while the command is still starting.
_INTERRUPTED_WHILE_STARTING = """
import os, signal, sys

class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == "zse.capture":
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, Interrupt())
from zse.cli import main
main(["capture", *sys.argv[1:]])
"""


def _sigint_as_usual() -> None:
    """In the child before it runs: SIGINT handled as a terminal's Ctrl-C is. A shell's
    background job (the other interpreters' runs of `make test`) starts with SIGINT ignored,
    and Python then never raises KeyboardInterrupt for it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_while_starting_is_interrupted_130(conversation: Path, tmp_path: Path):
    """A Ctrl-C while the command was still loading its library gave click's ``Aborted!`` and
    status 1 (a capture that cannot be read), not the documented 130."""
    out = tmp_path / "clear.pcap"
    out.write_bytes(b"precious")
    result = subprocess.run(
        [sys.executable, "-c", _INTERRUPTED_WHILE_STARTING, str(conversation), "--write", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=_sigint_as_usual,
    )
    assert _one_line_error(result, 130) == "error: interrupted"
    assert out.read_bytes() == b"precious"


def test_ctrl_c_while_reading_leaves_the_write_target_as_it_was(conversation: Path, tmp_path: Path):
    """Ctrl-C while frames are being read (from a pipe still open) is status 130 and leaves
    the previous ``--write`` file as it was (docs/capture.md said both this and "closed with
    the frames so far")."""
    clear = tmp_path / "clear.pcap"
    assert zse(str(conversation), "--write", str(clear)).returncode == 0
    pcap = clear.read_bytes()
    records = pcap[24:]
    stream = pcap[:24] + records * (1 + (1 << 16) // len(records))  # > one 64 KiB read
    out = tmp_path / "out.pcap"
    out.write_bytes(b"precious")
    with subprocess.Popen(
        [sys.executable, "-u", "-m", "zse", "capture", "-", "--write", str(out)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_sigint_as_usual,  # noqa: PLW1509 - the test process starts no thread
    ) as process:
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.buffer.write(stream)  # the pipe stays open: the command waits for more
        process.stdin.flush()
        with selectors.DefaultSelector() as selector:  # bounded, should the command hang
            selector.register(process.stdout, selectors.EVENT_READ)
            assert selector.select(timeout=120), "no frame printed"
        assert process.stdout.readline()  # frames decoded: the command is reading
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr.splitlines() == ["error: interrupted"]
    assert out.read_bytes() == b"precious"
