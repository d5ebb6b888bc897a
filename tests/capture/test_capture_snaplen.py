"""A record cut by the capture's snapshot length (captured length < original length) holds no
FCS: its last captured bytes are frame bytes, not a checksum. tshark leaves the FCS unchecked
and dissects what was captured; zse shows the captured bytes as the frame with no FCS status
(``fcs_ok`` None), never ``BAD FCS``, in every link type that carries an FCS (195, 215, the
TAP with an FCS, raw 802.15.4 in Linux cooked records; tshark's TAP dissector stops at a cut
record, zse still shows what was captured). Found on tcpdump's published 802.15.4 capture
(tests/capture/published/). A ZEP packet cut short stays one malformed frame: its length
field says what is missing."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tests.capture import carriers as c
from tests.capture.test_capture_zep import MAC_FRAMES
from tests.capture.tshark_view import tshark_fields
from zse.capture import CaptureDecoder, Record, as_line, read_records
from zse.capture.link import mac_frame

pytestmark = pytest.mark.oracle

#: the whole MAC frame with its FCS, as sent
SENT = c.with_fcs(MAC_FRAMES[1])
CUT = 6  # bytes the snapshot length leaves out


def _tap(psdu: bytes) -> bytes:
    """A TAP header with the FCS-type TLV (16-bit CRC) before ``psdu``."""
    return struct.pack("<BBH", 0, 0, 12) + struct.pack("<HHB3x", 0, 1, 1) + psdu


def _cut_pcap(path: Path, linktype: int, record: bytes) -> Path:
    """A pcap of ``record`` whose last CUT bytes the snapshot length left out."""
    captured = record[:-CUT]
    with path.open("wb") as file:
        file.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, len(captured), linktype))
        file.write(struct.pack("<IIII", 1_700_000_000, 0, len(captured), len(record)) + captured)
    return path


CASES = {
    195: (SENT, 0),
    215: (c.nonask_phy(SENT), 6),
    283: (_tap(SENT), 12),
    113: (c.sll(SENT, c.ETH_P_IEEE802154, hatype=805), 16),
}


@pytest.mark.parametrize("linktype", sorted(CASES))
def test_a_cut_record_has_no_fcs_to_check(tmp_path: Path, linktype: int) -> None:
    record, header = CASES[linktype]
    capture = _cut_pcap(tmp_path / f"cut-{linktype}.pcap", linktype, record)
    (row,) = tshark_fields(capture, [], ("wpan.fcs_ok", "wpan.seq_no", "frame.protocols"))
    assert row["wpan.fcs_ok"] != "0"  # tshark does not call it bad
    if linktype == 283:  # tshark's TAP dissector stops at a cut record ("TAP truncated")
        assert row["frame.protocols"] == "wpan-tap"
    else:  # and dissects the others as far as they go
        assert row["wpan.seq_no"] == str(SENT[2])
    with capture.open("rb") as file:
        (read,) = read_records(file)
    assert (len(read.data), read.original_length) == (len(record) - CUT, len(record))
    link = mac_frame(read)
    assert link.fcs_ok is None
    assert link.error is None
    assert link.frame == SENT[: len(record) - CUT - header]  # what was captured, FCS or not
    assert "BAD FCS" not in as_line(CaptureDecoder().decode(read))


def test_a_whole_record_still_has_its_fcs_checked() -> None:
    """Only a cut record is spared the check: a whole one with a bad FCS is still BAD FCS."""
    bad = SENT[:-1] + bytes((SENT[-1] ^ 1,))
    link = mac_frame(Record(1, 0, 195, bad, len(bad)))
    assert (link.frame, link.fcs_ok) == (MAC_FRAMES[1], False)
