"""``zse capture`` keeps keys hidden where docs/capture.md promises it ("Keys stay hidden"),
#12.23:

- a Green Power Pairing carries the GPD's key (ZGP A.3.5.2.1, ``SecurityKey``): decrypted from
  the NWK layer, it was printed in the command's payload; now it is ``(hidden)`` unless
  ``--show-keys``;
- a key-file line with a key in the byte-order column echoed 19 of its hex digits in the
  error; now the value is told by its length only.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import zigpy.types as t
import zigpy.zcl.clusters.greenpower as gp
import zigpy.zgp.types as zgp
from click.testing import CliRunner
from scapy.packet import Raw, raw
from scapy.utils import PcapNgWriter

from tests.capture import scapy_air as air
from tests.security.test_security_secrets import assert_hidden
from zse.capture import KeyFileError, read_key_file
from zse.cli import main

GPD_KEY = bytes.fromhex("C0FFEE11223344556677889900AABBCC")
GP_PROFILE, GP_ENDPOINT, GREEN_POWER = 0xA1E0, 242, 0x0021


def pairing() -> bytes:
    """A GP Pairing (server to client, ZCL frame) adding a sink, with the GPD's key."""
    command = gp.GreenPowerProxy.ClientCommandDefs.pairing
    options = gp.PairingOptions(
        application_id=zgp.ApplicationID.SrcID,
        add_sink=1,
        remove_gpd=0,
        communication_mode=zgp.CommunicationMode.GroupcastForwardToCommGroup,
        gpd_fixed=0,
        gpd_mac_seq_num_cap=1,
        security_level=zgp.SecurityLevel.Encrypted,
        security_key_type=zgp.SecurityKeyType.IndividualKey,
        security_frame_counter_present=1,
        security_key_present=1,
        assigned_alias_present=0,
        groupcast_radius_present=0,
        _reserved=0,
    )
    body = command.schema(
        options=options,
        gpd_id=0x12345678,
        sink_group=0x1234,
        device_id=2,
        frame_counter=1,
        key=t.KeyData(GPD_KEY),
    ).serialize()
    return bytes([0x19, 7, command.id]) + body


def pairing_capture(path: Path) -> None:
    aps = air.ZigbeeAppDataPayload(
        frame_control=0, delivery_mode=0, aps_frametype=0, dst_endpoint=GP_ENDPOINT,
        cluster=GREEN_POWER, profile=GP_PROFILE, src_endpoint=GP_ENDPOINT, counter=50,
    ) / Raw(pairing())  # fmt: skip
    frame = air._nwk_secured(9, 0xFFFD, 0, air.FIRST_COUNTER, raw(aps))
    with PcapNgWriter(str(path)) as writer:
        frame.time = air.START
        writer.write(frame)


def zse(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["capture", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize("json_lines", [False, True])
def test_a_green_power_pairing_key_stays_hidden(tmp_path: Path, json_lines: bool) -> None:
    capture = tmp_path / "gp.pcapng"
    pairing_capture(capture)
    given = ["--network-key", air.NETWORK_KEY.hex(), *(["--json"] if json_lines else [])]
    status, shown = zse(str(capture), *given)
    assert status == 0, shown
    assert "pairing" in shown  # decrypted and decoded
    assert_hidden(GPD_KEY, shown)
    assert "(hidden)" in shown
    if json_lines:
        assert json.loads(shown.splitlines()[0])["command"]["command"] == "pairing"
    status, shown = zse(str(capture), *given, "--show-keys")
    assert status == 0, shown
    assert GPD_KEY.hex() in shown.lower()  # asked for: shown


def test_green_power_fields_and_attributes_named_key_are_hidden() -> None:
    """Where zigpy decodes a Green Power command or attribute, a field or attribute named
    as a key is hidden too; a keyless command's payload is still shown."""
    from zse.capture.output import HIDDEN, _command  # noqa: PLC0415

    decoded = {
        "layer": "zcl",
        "cluster_id": "0x0021",
        "command": "pairing",
        "fields": {"options": {"security_key_present": 1}, "key": GPD_KEY.hex()},
    }
    assert _command(decoded, False)["fields"] == {  # type: ignore[index]
        "options": {"security_key_present": 1},
        "key": HIDDEN,
    }
    assert _command(decoded, True) == decoded
    report = {
        "layer": "zcl",
        "cluster_id": "0x0021",
        "command": "Report_Attributes",
        "fields": {
            "attribute_reports": [
                {"attrid": 0x22, "attribute": "gp_shared_security_key", "value": GPD_KEY.hex()},
                {"attrid": 0x20, "attribute": "gp_shared_security_key_type", "value": 3},
            ]
        },
    }
    hidden = json.dumps(_command(report, False))
    assert_hidden(GPD_KEY, hidden)
    assert '"value": 3' in hidden
    keyless = {"layer": "zcl", "cluster_id": "0x0021", "command": "proxy_commissioning_mode"}
    assert _command({**keyless, "payload": "00"}, False) == {**keyless, "payload": "00"}


@pytest.mark.parametrize(
    "order", [air.LINK_KEY.hex().upper(), air.LINK_KEY.hex(":"), air.LINK_KEY.hex()[:20]]
)
def test_a_key_in_the_byte_order_column_is_not_echoed(order: str) -> None:
    line = f'"{air.NETWORK_KEY.hex()}","{order}","two keys"\n'
    with pytest.raises(KeyFileError) as refused:
        list(read_key_file([line], "twokeys.keys"))
    message = str(refused.value)
    assert_hidden(air.LINK_KEY, message)
    assert message.startswith(
        "twokeys.keys line 1: byte order must be Normal or Reverse, not a value of "
    )
    with pytest.raises(KeyFileError, match=r"not 'Sideways'$"):  # a word is still shown
        list(read_key_file([f'"{air.NETWORK_KEY.hex()}","Sideways","x"\n']))
