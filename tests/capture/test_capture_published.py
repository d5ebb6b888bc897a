"""zse capture on captures other projects publish (tests/capture/published/, each file's
source, commit and licence in its README.md), against tshark on the same files.

* a real ZEP v2 feed (zbtk's Ubisys stick, LQI mode) over Ethernet, and the 52 ZEP packets
  of zbtk's tests in a Linux cooked capture, ordered by their ZEP time: a join decrypted from
  the install code alone (the network key learned from its Transport Key);
* ZEP v2 in CRC mode from an Exegin sniffer (scapy's tests): 6LoWPAN, so not ZigBee;
* KillerBee's Control4 capture (a network key sent in the clear, frames with a bad FCS),
  scapy's join capture (link type 230), zigator's test captures (link types 195 and 113)
  with the keys zigator's tests give.

Every frame's number, NWK / APS / ZCL / ZDO fields (``tshark_view.FIELDS``), FCS status and
decrypted payloads must be tshark's; for ZEP also the channel, LQI, RSSI and ZEP header.
tshark runs with ``wpan.802154_fcs_ok:FALSE``: by default it does not dissect the payload of
a frame whose FCS fails, zse decodes it and says ``BAD FCS`` (docs/capture.md), so the
preference makes both decode the same bytes (see test_bad_fcs_frames_...).
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.capture import carriers as c
from tests.capture.test_capture_zep import _utc_ns
from tests.capture.tshark_view import (
    FIELDS,
    key_options,
    tshark_decrypted,
    tshark_fields,
    zse_row,
)
from tests.oracles import require
from zse.capture import CaptureDecoder, Decoded, Key, KeyRing, as_line, decode_capture
from zse.capture.link import mac_frame
from zse.capture.reader import read_records
from zse.installcode import InstallCode

pytestmark = pytest.mark.oracle

PUBLISHED = Path(__file__).parent / "published"
#: tshark dissects the payload of a frame with a bad FCS too, as zse does
ALL_FCS = ("-o", "wpan.802154_fcs_ok:FALSE")
#: tshark fields compared besides FIELDS
LINK_FIELDS = ("frame.protocols", "wpan.fcs_ok")

#: zigator/tests/test_integration.py: the network keys, link keys and install codes it adds
ZIGATOR_NETWORK_KEYS = ("11" * 16, "22" * 16)
ZIGATOR_LINK_KEYS = ("33" * 16, "44" * 16, "77" * 16, "88" * 16)
ZIGATOR_INSTALL_CODES = ("55" * 16 + "A9D1", "66" * 16 + "A603")
#: the network key KillerBee's Control4 capture sends in the clear (frame 151); scapy's
#: tests read the same key, b"&Tkr;9jr{]RqQ}9/", from their cut of that frame
CONTROL4_NETWORK_KEY = bytes.fromhex("26546b723b396a727b5d5271517d392f")


@cache
def _json(name: str) -> Any:
    return json.loads((PUBLISHED / name).read_text())


def _zbtk() -> dict[str, Any]:
    return _json("zbtk-zep-packets.json")  # type: ignore[no-any-return]


def _zep_time(packet: bytes) -> tuple[int, int]:
    """A ZEP v2 packet's NTP timestamp (seconds, fraction), the order it was received in."""
    seconds, fraction = struct.unpack_from(">II", packet, 9)
    return seconds, fraction


def _zbtk_cooked(tmp: Path) -> Path:
    """zbtk's ZEP packets in the order the sniffer stamped them, each in Linux cooked v1 /
    IPv4 / UDP to port 17754: what ``tcpdump -i any`` writes of a ZEP feed."""
    packets = sorted((bytes.fromhex(p) for p in _zbtk()["zep_packets"].values()), key=_zep_time)
    records = [c.sll(c.ipv4(c.udp(packet)), c.ETHERTYPE_IPV4) for packet in packets]
    return c.write_pcap(tmp / "zbtk-zep-cooked.pcap", 113, records)


def _zbtk_wpan(tmp: Path) -> Path:
    frames = [bytes.fromhex(frame) for frame in _zbtk()["wpan_frames"].values()]
    return c.write_pcap(tmp / "zbtk-wpan.pcap", 195, frames)


def _exegin(tmp: Path) -> Path:
    frames = _json("scapy-zep-exegin.json")["ethernet_frames"].values()
    return c.write_pcap(tmp / "exegin-zep.pcap", 1, [bytes.fromhex(frame) for frame in frames])


def _file(name: str) -> Callable[[Path], Path]:
    return lambda _tmp: PUBLISHED / name


@dataclass(frozen=True)
class Case:
    """A capture, what zse is given (label -> key; install codes), the frames, the frames
    decrypted and the keys learned."""

    capture: Callable[[Path], Path]
    keys: dict[str, str]
    install_codes: tuple[str, ...]
    frames: int
    decrypted: int
    learned: int = 0

    def ring(self) -> KeyRing:
        ring = KeyRing([Key(bytes.fromhex(key), label) for label, key in self.keys.items()])
        for code in self.install_codes:
            ring.add_install_code(code)
        return ring

    def tshark_keys(self) -> dict[str, bytes]:
        """What tshark is given: the same keys, an install code as its link key."""
        keys = {label: bytes.fromhex(key) for label, key in self.keys.items()}
        for n, code in enumerate(self.install_codes):
            keys[f"code{n}"] = InstallCode.parse(code).link_key
        return keys


_ZIGATOR_KEYS = {
    f"zigator{n}": key for n, key in enumerate(ZIGATOR_NETWORK_KEYS + ZIGATOR_LINK_KEYS)
}
CASES = {
    "zbtk-ubisys-zep-ethernet": Case(
        _file("zbtk-trace.pcap"), {"net": _zbtk()["network_keys"][0]}, (), 152, 53
    ),
    "zbtk-zep-cooked-install-code": Case(
        _zbtk_cooked, {}, (_zbtk()["install_code"],), 52, 43, learned=1
    ),
    "zbtk-wpan": Case(_zbtk_wpan, {"net2": _zbtk()["network_keys"][1]}, (), 2, 2),
    "scapy-exegin-zep": Case(_exegin, {}, (), 3, 0),
    "killerbee-control4": Case(_file("killerbee-control4-sample.pcap"), {}, (), 407, 112, 1),
    "scapy-join-authenticate": Case(_file("scapy-zigbee-join-authenticate.pcap"), {}, (), 54, 0),
    **{
        f"zigator-{name}": Case(
            _file(f"zigator-{name}.pcap"), _ZIGATOR_KEYS, ZIGATOR_INSTALL_CODES, frames, decrypted
        )
        for name, frames, decrypted in (
            ("01-phy-testing", 4, 0),
            ("02-mac-testing", 19, 0),
            ("03-nwk-testing", 15, 14),
            ("04-aps-testing", 11, 11),
            ("05-zdp-testing", 1, 1),
            ("06-zcl-testing", 1, 1),
            ("07-sll-testing", 1, 0),
            ("08-thr-testing", 2, 0),
            ("09-mle-testing", 2, 0),
        )
    },
}


def _decode(capture: Path, ring: KeyRing) -> list[Decoded]:
    with capture.open("rb") as file:
        return list(decode_capture(file, ring))


def _compare(capture: Path, case: Case) -> list[Decoded]:
    """Assert zse and tshark see the same 802.15.4 frames: numbers, FIELDS, FCS status and
    every decrypted payload; return zse's frames."""
    options = [*key_options(case.tshark_keys()), *ALL_FCS]
    rows = tshark_fields(capture, options, FIELDS + LINK_FIELDS)
    theirs = [row for row in rows if "wpan" in row["frame.protocols"].split(":")]
    ours = _decode(capture, case.ring())
    assert [frame.record.number for frame in ours] == [int(row["frame.number"]) for row in theirs]
    for frame, row in zip(ours, theirs, strict=True):
        number = frame.record.number
        assert zse_row(frame) == {name: row[name] for name in FIELDS}, number
        if frame.link.fcs_ok is None:  # link type 230: no FCS captured, tshark says "1"
            assert frame.record.linktype == 230, number
            assert row["wpan.fcs_ok"] == "1", number
        elif row["wpan.fcs_ok"] == "":  # too short for tshark to check; zse says BAD FCS
            assert frame.error is not None, number
            assert frame.link.fcs_ok is False, number
        else:
            assert row["wpan.fcs_ok"] == str(int(frame.link.fcs_ok)), number
    decrypted = tshark_decrypted(capture, options)
    for frame in ours:
        payloads = [s.payload for s in frame.security if s.payload is not None]
        assert payloads == decrypted[frame.record.number], frame.record.number
    return ours


@pytest.mark.parametrize("name", CASES)
def test_published_capture_agrees_with_tshark(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    capture = case.capture(tmp_path)
    ring = case.ring()
    options = [*key_options(case.tshark_keys()), *ALL_FCS]
    frames = _compare(capture, case)
    assert len(frames) == case.frames
    assert sum(frame.decrypted for frame in frames) == case.decrypted
    _decode(capture, ring)
    assert len(ring.learned) == case.learned
    assert len(tshark_fields(capture, options, ("frame.number",))) == case.frames


def _zep_rows(capture: Path) -> dict[int, dict[str, str]]:
    fields = ("frame.number", "zep.version", "zep.channel_id", "zep.device_id", "zep.lqi_mode",
              "zep.lqi", "zep.seqno", "zep.time", "wpan.fcs_ok", "wpan.rssi")  # fmt: skip
    command = [require("tshark"), "-r", str(capture), "-T", "json", *ALL_FCS]
    for name in fields:
        command += ["-e", name]
    out = subprocess.run(
        command, capture_output=True, text=True, check=True, env={**os.environ, "TZ": "UTC"}
    ).stdout
    rows = [{k: v[0] for k, v in p["_source"]["layers"].items()} for p in json.loads(out)]
    return {int(row["frame.number"]): row for row in rows}


@pytest.mark.parametrize(
    ("name", "lqi_mode", "channel"),
    [("zbtk-ubisys-zep-ethernet", True, 19), ("zbtk-zep-cooked-install-code", True, 19),
     ("scapy-exegin-zep", False, 3)],
)  # fmt: skip
def test_zep_headers_agree_with_tshark(
    tmp_path: Path, name: str, lqi_mode: bool, channel: int
) -> None:
    """Each packet's ZEP header as tshark reads it: version, channel, device id, mode,
    sequence number, the sniffer's time to the nanosecond, LQI (tshark shows it in LQI mode
    only), and in LQI mode the RSSI and FCS bit of the TI CC24xx metadata."""
    capture = CASES[name].capture(tmp_path)
    theirs = _zep_rows(capture)
    frames = _decode(capture, KeyRing())
    assert len(frames) == len(theirs) == CASES[name].frames
    for frame in frames:
        link, zep, row = frame.link, frame.link.zep, theirs[frame.record.number]
        assert zep is not None
        assert (zep.version, zep.channel, link.channel) == (2, channel, channel)
        assert str(zep.version) == row["zep.version"]
        assert str(zep.channel) == row["zep.channel_id"]
        assert str(zep.device) == row["zep.device_id"]
        assert zep.crc is not lqi_mode
        assert row["zep.lqi_mode"] == str(int(zep.crc))
        assert str(zep.sequence) == row["zep.seqno"]
        assert zep.time_ns == _utc_ns(row["zep.time"])
        assert row.get("zep.lqi", "") in ("" if zep.crc else str(link.lqi),)
        rssi = "" if link.rssi is None else f"{link.rssi:.0f}"
        assert rssi == row.get("wpan.rssi", "")
        assert (link.rssi is None) is zep.crc
        assert str(int(bool(link.fcs_ok))) == row["wpan.fcs_ok"]


def test_zbtk_join_is_decrypted_from_the_install_code_alone(tmp_path: Path) -> None:
    """zbtk's packets in the order received: three frames before the join do not decrypt;
    the Transport Key (frame 8) opens with the install code's link key (zbtk's published
    one) and hands over zbtk's network key, which opens every frame after it."""
    vectors = _zbtk()
    code = InstallCode.parse(vectors["install_code"])
    assert code.link_key.hex() == vectors["install_code_link_key"]
    ring = CASES["zbtk-zep-cooked-install-code"].ring()
    frames = _decode(_zbtk_cooked(tmp_path), ring)
    assert [key.key.hex() for key in ring.learned] == [vectors["network_keys"][0]]
    join = frames[7]
    assert (join.command or {}).get("command") == "transport key"
    assert join.learned == ["network key from frame 8"]
    assert [frame.record.number for frame in frames if frame.security and not frame.decrypted] == [
        1,
        2,
        3,
    ]
    assert all("MIC fails with every key" in as_line(frame) for frame in frames[:3])
    assert all(frame.decrypted for frame in frames[8:] if frame.security)


def test_control4_key_in_the_clear_is_learned(tmp_path: Path) -> None:
    """KillerBee's Control4 capture: the Transport Key of frame 151 is not secured; its
    network key (the one scapy's tests read) is learned with no key given, and the secured
    frames after it decrypt, those before it do not (as in tshark, which learns it too)."""
    ring = KeyRing()
    frames = _decode(PUBLISHED / "killerbee-control4-sample.pcap", ring)
    assert [key.key for key in ring.learned] == [CONTROL4_NETWORK_KEY]
    assert frames[150].learned == ["network key from frame 151"]
    assert not any(frame.decrypted for frame in frames[:150])
    assert any(frame.decrypted for frame in frames[151:])


def test_bad_fcs_frames_are_decoded_and_flagged_where_tshark_stops(tmp_path: Path) -> None:
    """The frames of the Control4 capture whose FCS fails are the frames tshark flags
    (wpan.fcs_ok 0); tshark's default (``wpan.802154_fcs_ok``) leaves their payload
    undissected, zse decodes it and shows ``BAD FCS``: their MIC fails, nothing is learned
    from them."""
    capture = PUBLISHED / "killerbee-control4-sample.pcap"
    rows = tshark_fields(capture, [], ("frame.number", "wpan.fcs_ok", "frame.protocols"))
    bad = [int(row["frame.number"]) for row in rows if row["wpan.fcs_ok"] == "0"]
    assert not any("zbee" in row["frame.protocols"] for row in rows if row["wpan.fcs_ok"] == "0")
    frames = _decode(capture, KeyRing([Key(CONTROL4_NETWORK_KEY, "net")]))
    assert [frame.record.number for frame in frames if frame.link.fcs_ok is False] == bad
    assert len(bad) > 10
    for frame in (frames[number - 1] for number in bad):
        assert as_line(frame).endswith("| BAD FCS")
        assert not frame.learned
        assert not frame.decrypted or frame.nwk is None


def test_cli_on_the_ubisys_zep_capture(tmp_path: Path) -> None:
    """``zse capture --keys --json`` on zbtk's real ZEP feed: a line per frame with the
    channel, LQI and ZEP header, the key never printed, the summary on standard error."""
    key = _zbtk()["network_keys"][0]
    keys = tmp_path / "zbtk.keys"
    keys.write_text(f'"{key.upper()}","Normal","zbtk network key"\n')
    done = subprocess.run(
        [sys.executable, "-m", "zse", "capture", str(PUBLISHED / "zbtk-trace.pcap"),
         "--keys", str(keys), "--json"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 152
    assert {(line["channel"], line["zep"]["device_id"], line["zep"]["mode"]) for line in lines} == {
        (19, 65534, "lqi")
    }
    opened = [line for line in lines if line.get("security")]
    assert len(opened) == 53
    assert all(s["decrypted_with"] == "zbtk network key" for one in opened for s in one["security"])
    assert key not in done.stdout.lower() + done.stderr.lower()
    assert done.stderr.strip().endswith("152 frames, 53 decrypted, 0 not decrypted; 0 keys learned")


def _tcpdump_record() -> Any:
    with (PUBLISHED / "tcpdump-802_15_4-data.pcap").open("rb") as file:
        (record,) = read_records(file)
    return record


def test_a_record_cut_by_the_snapshot_length_has_no_fcs_to_check() -> None:
    """tcpdump's 802_15_4-data.pcap: 38 of 2086 bytes captured. tshark leaves the FCS
    unchecked (not captured) and dissects all 38 bytes (6LoWPAN); zse must not call it a
    bad FCS nor cut two bytes off the captured frame."""
    record = _tcpdump_record()
    assert (len(record.data), record.original_length) == (38, 2086)
    (row,) = tshark_fields(
        PUBLISHED / "tcpdump-802_15_4-data.pcap", [], ("wpan.fcs_ok", "frame.protocols")
    )
    assert row["frame.protocols"] == "wpan:6lowpan:ipv6"
    assert row["wpan.fcs_ok"] != "0"
    link = mac_frame(record)
    assert link.fcs_ok is not False
    assert link.frame == record.data


def test_an_802154_2015_frame_is_not_zigbee_rather_than_malformed() -> None:
    """The same record's MAC frame is version 2 (IEEE 802.15.4-2015, 7.2.1.9): tshark
    dissects it (a 6LoWPAN data frame); zse must label it ``not ZigBee``, not malformed."""
    (row,) = tshark_fields(
        PUBLISHED / "tcpdump-802_15_4-data.pcap", [], ("wpan.version", "_ws.malformed")
    )
    assert row == {"wpan.version": "2", "_ws.malformed": ""}
    frame = CaptureDecoder().decode(_tcpdump_record())
    assert frame.error is None
    assert frame.not_zigbee
    assert "MALFORMED" not in as_line(frame)
