"""One record no radio could have sent (a 70 kB NWK-secured frame: pcap records go to 256 KiB)
is one malformed frame: the capture goes on with the next record, from the API and from
``zse capture`` (it used to abort the whole decode with "error: ValueError ...")."""

from __future__ import annotations

import struct
import subprocess
import sys

from zse.capture import CaptureDecoder, Key, KeyRing, Record
from zse.pcap import LINKTYPE_IEEE802_15_4_NOFCS
from zse.security import secure_nwk
from zse.sim._frames import MAC_DATA, MacHeader, NwkHeader, encode_mac, encode_nwk

KEY = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
TC = 0x00124B0001020304
NWK_HEADER = encode_nwk(NwkHeader(dst=0x1234, src=0x0000, radius=30, seq=1), b"")


def _mac(seq: int, nwk: bytes) -> bytes:
    return encode_mac(MacHeader(MAC_DATA, seq, 0x1A62, 0x1234, 0x1A62, 0x0000, True), nwk)


def _records() -> list[bytes]:
    small = secure_nwk(NWK_HEADER, bytes(8), key=KEY, key_seq=0, counter=1, source=TC)
    big = small[:-4] + bytes(70_000) + small[-4:]  # its MIC need not verify: never checked
    good = secure_nwk(NWK_HEADER, bytes(8), key=KEY, key_seq=0, counter=2, source=TC)
    return [_mac(1, big), _mac(2, good)]


def test_an_oversized_record_is_one_malformed_frame():
    decoder = CaptureDecoder(KeyRing([Key(KEY, "network key")]))
    big, good = (
        decoder.decode(Record(i, 0, LINKTYPE_IEEE802_15_4_NOFCS, data, len(data)))
        for i, data in enumerate(_records(), 1)
    )
    assert big.error is not None
    assert "more than CCM* secures (65535 bytes)" in big.error
    assert big.nwk is not None  # what did decode is kept
    assert good.record.number == 2
    assert [security.key is not None for security in good.security] == [True]  # decrypted
    assert good.unsecured is not None
    assert decoder.decrypted == 1


def test_zse_capture_goes_on_after_an_oversized_record(tmp_path):
    path = tmp_path / "big.pcap"
    with path.open("wb") as pcap:
        header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 1 << 18, 230)
        pcap.write(header)
        for i, data in enumerate(_records()):
            pcap.write(struct.pack("<IIII", i, 0, len(data), len(data)) + data)
    done = subprocess.run(
        [sys.executable, "-m", "zse", "capture", str(path), "--network-key", KEY.hex()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "ValueError" not in done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any("more than CCM* secures" in line for line in lines)
    assert len([line for line in lines if line.strip()]) >= 2  # the good frame too
