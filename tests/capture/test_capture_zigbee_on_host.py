"""The 31 frames of zigbee-on-host's test data (tests/vectors/zigbee-on-host-frames.json: real
networks' frames with their keys; source and commit in the file): zse capture against tshark,
field for field, and zse.security on its own.

* the 24 NWK- or APS-secured frames: every security layer decrypts, with the payload tshark
  decrypts, and ``unsecure_nwk`` / ``unsecure_aps`` give the same payloads;
* the 3 Green Power frames (GP stub NWK header, protocol version 3): shown as Green Power
  with the frame type, source id, frame counter and command id tshark gives, not malformed;
* the key hashes the file gives: HMAC-MMO of the Trust Center link key over 0x00, 0x02 and
  0x03 (key-transport key, key-load key, verify-key hash), the last one also as carried by
  the frame's APS Verify Key command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.capture.tshark_view import compare, tshark_fields
from tests.conftest import load_vectors
from zse.capture import Decoded, Key, KeyRing, as_line
from zse.errors import BadMic
from zse.installcode import hmac_mmo
from zse.pcap import PcapWriter
from zse.security import key_load_key, key_transport_key, unsecure_aps, unsecure_nwk

pytestmark = pytest.mark.oracle

GP_FIELDS = (
    "frame.number",
    "zbee_nwk_gp.frame_type",
    "zbee_nwk_gp.source_id",
    "zbee_nwk_gp.security_frame_counter",
    "zbee_nwk_gp.command_id",
)


def _vectors() -> dict[str, Any]:
    return load_vectors("zigbee-on-host-frames.json")  # type: ignore[no-any-return]


def _capture(tmp_path: Path) -> tuple[Path, KeyRing, dict[str, bytes]]:
    vectors = _vectors()
    path = tmp_path / "zigbee-on-host.pcap"
    with PcapWriter(path) as pcap:
        for index, frame in enumerate(vectors["frames"]):
            pcap.write(bytes.fromhex(frame["mac_frame"]), 1_700_000_000 + index)
    keys = {name: bytes.fromhex(key) for name, key in vectors["network_keys"].items()}
    keys["tc"] = bytes.fromhex(vectors["trust_center_link_key"])
    return path, KeyRing([Key(key, label) for label, key in keys.items()]), keys


@pytest.fixture(scope="module")
def decoded(tmp_path_factory: pytest.TempPathFactory) -> list[Decoded]:
    path, ring, keys = _capture(tmp_path_factory.mktemp("zoh"))
    return compare(path, ring, keys)  # every frame's fields and payloads as tshark's


def test_every_secured_frame_decrypts_as_tshark_does(decoded: list[Decoded]) -> None:
    secured = [frame for frame in decoded if frame.security]
    assert len(secured) == 24
    assert all(frame.decrypted and frame.error is None for frame in secured)
    assert all(frame.error is None for frame in decoded)
    names = [frame["name"] for frame in _vectors()["frames"]]
    net3 = [names[f.record.number - 1] for f in secured if f.security[0].key == "NET3"]
    assert net3
    assert all(name.startswith("NET3_") for name in net3)


def test_zse_security_alone_gives_the_same_payloads(decoded: list[Decoded]) -> None:
    vectors = _vectors()
    network_keys = [bytes.fromhex(key) for key in vectors["network_keys"].values()]
    tc_key = bytes.fromhex(vectors["trust_center_link_key"])
    for frame in (f for f in decoded if f.security):
        assert frame.mac is not None
        assert frame.nwk is not None
        rest = frame.link.frame[frame.mac.length :]
        if frame.security[0].layer == "aps":  # the NWK header in the clear
            rest = rest[frame.nwk.length :]
        for security in frame.security:
            if security.layer == "nwk":
                opened = []
                for key in network_keys:
                    try:
                        opened.append(unsecure_nwk(rest, {security.aux.key_seq or 0: key}))
                    except BadMic:
                        continue
                assert len(opened) == 1, frame.record.number
                payload = opened[0].payload
                rest = payload
            else:
                aps = unsecure_aps(rest, tc_key, source=security.source)
                payload = aps.payload
            assert payload == security.payload, frame.record.number


def test_green_power_frames_are_shown_as_tshark_dissects_them(
    tmp_path: Path, decoded: list[Decoded]
) -> None:
    path, _, _ = _capture(tmp_path)
    theirs = {int(row["frame.number"]): row for row in tshark_fields(path, [], GP_FIELDS)}
    gp = [frame for frame in decoded if frame.gp is not None]
    assert [frame.record.number for frame in gp] == [
        n for n, row in theirs.items() if row["zbee_nwk_gp.frame_type"]
    ]
    assert len(gp) == 3
    for frame in gp:
        assert frame.gp is not None
        row = theirs[frame.record.number]
        assert f"0x{frame.gp.frame_type:02x}" == row["zbee_nwk_gp.frame_type"]
        src = "" if frame.gp.src_id is None else f"0x{frame.gp.src_id:08x}"
        assert src == row["zbee_nwk_gp.source_id"]
        counter = "" if frame.gp.counter is None else str(frame.gp.counter)
        assert counter == row["zbee_nwk_gp.security_frame_counter"]
        assert frame.gp.command is not None
        assert f"0x{frame.gp.command:02x}" == row["zbee_nwk_gp.command_id"].split(",")[0]
        line = as_line(frame)
        assert "Green Power" in line
        assert "MALFORMED" not in line


def test_key_hashes_of_the_trust_center_link_key(decoded: list[Decoded]) -> None:
    vectors = _vectors()
    tc_key = bytes.fromhex(vectors["trust_center_link_key"])
    hashes = {int(k, 16): bytes.fromhex(v) for k, v in vectors["hmac_mmo_of_tc_link_key"].items()}
    assert key_transport_key(tc_key) == hashes[0x00]
    assert key_load_key(tc_key) == hashes[0x02]
    for data, expected in hashes.items():
        assert hmac_mmo(tc_key, bytes((data,))) == expected
    verify = next(f for f in decoded if (f.command or {}).get("command") == "verify key")
    assert verify.security[-1].payload is not None
    assert hashes[0x03] in verify.security[-1].payload  # the Verify Key command's hash
