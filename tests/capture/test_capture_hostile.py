"""Hostile captures (hostile-input audit): a capture full of Transport Keys costs a bounded
number of decryptions a frame (D2), and a record whose time no output can show is refused as
a :class:`CaptureError` naming the record (D3)."""

from __future__ import annotations

import io
import random
import struct
import subprocess
import sys

import pytest
import zigpy.types as t

from zse.capture import (
    CaptureDecoder,
    CaptureError,
    Key,
    KeyRing,
    Record,
    UnsecuredWriter,
    output,
    read_records,
)
from zse.capture import keys as keys_module
from zse.pcap import LINKTYPE_IEEE802_15_4_NOFCS, PcapWriter
from zse.security import secure_aps, secure_nwk
from zse.security.header import KeyId
from zse.sim._frames import (
    APS_COMMAND,
    ApsHeader,
    MacHeader,
    NwkHeader,
    encode_aps,
    encode_mac,
    encode_nwk,
    transport_key_payload,
)

TC_LINK_KEY = b"ZigBeeAlliance09"  # the well-known key sniffer users load


def _keyring_capture(learned: int, garbage: int) -> bytes:
    """``learned`` Transport Keys (network keys under the well-known link key, sequence
    numbers 0..255 in turn), then ``garbage`` NWK frames no key opens."""
    rng = random.Random(1)
    tc = t.EUI64.convert("00:11:22:33:44:55:66:77")
    dev = t.EUI64.convert("aa:bb:cc:dd:ee:ff:00:11")
    src = int.from_bytes(tc.serialize(), "little")
    out = io.BytesIO()
    with PcapWriter(out, linktype=LINKTYPE_IEEE802_15_4_NOFCS) as pcap:
        for i in range(learned):
            header = encode_aps(ApsHeader(APS_COMMAND, 0, i & 0xFF), b"")
            payload = transport_key_payload(rng.randbytes(16), i & 0xFF, dev, tc)
            aps = secure_aps(
                header, payload, link_key=TC_LINK_KEY, counter=i, source=src,
                key_id=KeyId.KEY_TRANSPORT,
            )  # fmt: skip
            nwk = encode_nwk(NwkHeader(dst=0x1234, src=0x0000, radius=1, seq=i & 0xFF), aps)
            mac = MacHeader(1, i & 0xFF, 0x1A2B, 0x1234, 0x1A2B, 0x0000)
            pcap.write(encode_mac(mac, nwk), 1.7e9 + i)
        for j in range(garbage):
            header = encode_nwk(NwkHeader(dst=0x1234, src=1 + j % 50, radius=1, seq=j & 0xFF), b"")
            frame = secure_nwk(
                header, b"\x00" * 10, key=rng.randbytes(16), key_seq=rng.randrange(256),
                counter=j, source=src + 1 + j,
            )  # fmt: skip
            mac = MacHeader(1, j & 0xFF, 0x1A2B, 0x1234, 0x1A2B, 0x0001)
            pcap.write(encode_mac(mac, frame), 1.7e9 + learned + j)
    return out.getvalue()


def _attempts(learned: int, garbage: int) -> tuple[CaptureDecoder, int]:
    decoder = CaptureDecoder(KeyRing([Key(TC_LINK_KEY, "tc")]))
    for record in read_records(io.BytesIO(_keyring_capture(learned, garbage))):
        decoder.decode(record)
    return decoder, decoder.attempts


def test_many_learned_keys_cost_a_bounded_number_of_decryptions_a_frame() -> None:
    """D2: N Transport Keys then M frames no key opens used to cost N*M decryptions; now the
    learned keys are capped, and a learned network key is tried only for its key sequence
    number, so the work per frame does not grow with the keys the capture taught."""
    few_decoder, few = _attempts(8, 300)
    many_decoder, many = _attempts(600, 300)
    # each Transport Key frame is opened by the given key; each garbage frame tries the
    # given key plus the few learned keys of its sequence number (random: well under 8)
    garbage_work = many - 600
    assert garbage_work <= 300 * 8
    assert many <= 3 * few + 600
    # quadratic would be 600 * 300 = 180 000 decryptions for the garbage frames
    assert garbage_work < 600 * 300 // 20
    assert many_decoder.failed == 300
    assert len(few_decoder.keys.learned) == 8
    assert len(many_decoder.keys.learned) == keys_module.LEARNED_LIMIT
    assert many_decoder.keys.dropped == 600 - keys_module.LEARNED_LIMIT


def test_learned_keys_are_deduplicated_and_the_oldest_dropped_first() -> None:
    ring = KeyRing([Key(b"G" * 16, "given")], learned_limit=2)
    assert ring.learn(b"A" * 16, "a", 1) is not None
    assert ring.learn(b"A" * 16, "a again", 1) is None  # the same key: held once
    assert ring.learn(b"G" * 16, "given again") is None
    assert ring.learn(b"B" * 16, "b") is not None
    assert ring.learn(b"C" * 16, "c", 2) is not None
    assert [key.label for key in ring.keys] == ["given", "b", "c"]
    assert ring.dropped == 1
    # a learned network key applies to its own key sequence number only
    assert [key.label for key in ring.network_keys(2)] == ["c", "given", "b"]
    assert [key.label for key in ring.network_keys(1)] == ["given", "b"]
    # a key given after some were learned is still a given key
    ring.add(Key(b"H" * 16, "later"))
    assert [key.label for key in ring.learned] == ["b", "c"]


# -- D3: timestamps out of range ---------------------------------------------------------------


def _block(kind: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    return struct.pack("<II", kind, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))


def _pcapng(stamp: int, *, resolution: int | None = 0, offset: int | None = None) -> bytes:
    """A pcapng of one 802.15.4 frame (link type 230) at ``stamp`` units."""
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    options = b""
    if resolution is not None:
        options += struct.pack("<HHB3x", 9, 1, resolution)
    if offset is not None:
        options += struct.pack("<HHq", 14, 8, offset)
    idb = _block(1, struct.pack("<HHI", 230, 0, 0) + options + struct.pack("<HH", 0, 0))
    frame = bytes.fromhex("0300ff")
    epb = struct.pack("<IIIII", 0, stamp >> 32, stamp & 0xFFFFFFFF, len(frame), len(frame))
    return shb + idb + _block(6, epb + frame)


HOSTILE_TIMES = {
    "year 36812": _pcapng(1 << 40),
    "2^64 seconds": _pcapng((1 << 64) - 1),
    "2106-02-07 and later": _pcapng(1 << 32),
    "before 1970": _pcapng(1, resolution=6, offset=-(1 << 40)),
}


@pytest.mark.parametrize("data", HOSTILE_TIMES.values(), ids=HOSTILE_TIMES.keys())
def test_a_time_outside_what_pcap_holds_is_a_capture_error_naming_the_record(data) -> None:
    with pytest.raises(CaptureError, match=r"record 1 has a timestamp of -?\d+ s, outside 1970"):
        list(read_records(io.BytesIO(data)))


def test_the_latest_time_pcap_holds_is_read_shown_and_written() -> None:
    (record,) = read_records(io.BytesIO(_pcapng((1 << 32) - 2)))
    frame = CaptureDecoder().decode(record)
    assert "2106-02-07 06:28:14.000000" in output.as_line(frame)
    UnsecuredWriter(io.BytesIO()).write(frame)


def test_a_record_made_with_any_time_is_shown_and_refused_by_the_writer() -> None:
    """A :class:`Record` made by hand (not read) with a time no date shows: the line and the
    JSON show seconds, the writer refuses it as a :class:`CaptureError` naming the record."""
    record = Record(7, 10**30, 230, bytes.fromhex("0300ff"), 3)
    frame = CaptureDecoder().decode(record)
    assert "since 1970" in output.as_line(frame)
    assert "since 1970" in output.as_json(frame)
    for time_ns in (10**30, -1):
        frame.record.time_ns = time_ns
        with pytest.raises(CaptureError, match=r"^record 7: cannot be written: pcap timestamp"):
            UnsecuredWriter(io.BytesIO()).write(frame)


def test_zse_capture_says_which_record_has_a_bad_time(tmp_path) -> None:
    path = tmp_path / "time.pcapng"
    path.write_bytes(HOSTILE_TIMES["year 36812"])
    for extra in ((), ("--json",), ("--write", str(tmp_path / "out.pcap"))):
        result = subprocess.run(
            [sys.executable, "-m", "zse", "capture", str(path), *extra],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        errors = [line for line in result.stderr.splitlines() if "record 1" in line]
        assert len(errors) == 1, result.stderr
        assert "timestamp" in errors[0]
