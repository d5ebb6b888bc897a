"""Decoding SE command payloads: garbage gives InvalidFrame only, what decodes re-encodes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zse.cbke.messages import TerminateKeyEstablishment
from zse.drlc.wire import Drlc
from zse.errors import InvalidFrame
from zse.messaging.wire import Messaging
from zse.price.wire import Price
from zse.se.ids import DRLC, MESSAGING, PRICE
from zse.se.types import CharacterString
from zse.zcl.codec import command_def, decode_command, encode_command

SE_CLUSTERS = {cls.cluster_id: cls for cls in (Price, Drlc, Messaging)}
COMMANDS = [
    (cluster, definition.id, from_server)
    for cluster in SE_CLUSTERS.values()
    for from_server, defs in ((False, cluster.ServerCommandDefs), (True, cluster.ClientCommandDefs))
    for definition in defs
]


def test_se_clusters_table():
    assert set(SE_CLUSTERS) == {PRICE, DRLC, MESSAGING}  # Key Establishment: zse.cbke.messages
    assert all(cls._skip_registry for cls in SE_CLUSTERS.values())


@pytest.mark.parametrize(("cluster", "command_id", "from_server"), COMMANDS)
@given(payload=st.binary(max_size=120))
def test_garbage_raises_only_invalid_frame_and_decoded_commands_re_encode(
    cluster, command_id, from_server, payload
):
    try:
        command, rest = decode_command(cluster, command_id, payload, from_server=from_server)
    except InvalidFrame as exc:
        message = str(exc)
        assert cluster.name in message
        return
    consumed = payload[: len(payload) - len(rest)]
    assert encode_command(command) == consumed
    # the directly filled instance is what zigpy's own constructor makes of the same values
    rebuilt = type(command)(**command.as_dict())
    assert command == rebuilt
    assert repr(command) == repr(rebuilt)


def test_error_names_field_and_offset():
    lce = bytes.fromhex("0D0C0B0A0500030000002F78")  # stops inside duration
    with pytest.raises(InvalidFrame) as info:
        decode_command(Drlc, 0x00, lce, from_server=True)
    message = str(info.value)
    assert "load_control_event" in message
    assert "duration_in_minutes at byte offset 11 of 12" in message


def test_unknown_command():
    with pytest.raises(InvalidFrame, match="Price has no command 0x7F sent by the client"):
        command_def(Price, 0x7F, from_server=False)


def test_optional_trailers_present_if_bytes_remain():
    short = bytes.fromhex("0900000000012F2F")
    command, rest = decode_command(Messaging, 0x01, short, from_server=False)
    assert command.message_confirmation_control is None
    assert command.message_confirmation_response is None
    assert rest == b""
    long = short + bytes.fromhex("0203596573") + b"\x99"  # plus an unknown future byte
    command, rest = decode_command(Messaging, 0x01, long, from_server=False)
    assert command.message_confirmation_control == 2
    assert command.message_confirmation_response == b"Yes"
    assert rest == b"\x99"


def test_scheduled_events_issuer_event_id_trailer():
    command, _ = decode_command(Drlc, 0x01, bytes(5) + bytes.fromhex("2A000000"), from_server=False)
    assert command.issuer_event_id == 42


def test_encode_refuses_a_gap_in_optional_trailers():
    schema = Price.ClientCommandDefs.publish_price.schema
    price = schema(
        provider_id=1,
        rate_label=b"",
        issuer_event_id=1,
        current_time=0,
        unit_of_measure=0,
        currency=840,
        price_trailing_digit_and_price_tier=0,
        number_of_price_tiers_and_register_tier=0,
        start_time=0,
        duration_in_minutes=60,
        price=10,
        price_ratio=0xFF,
        generation_price_ratio=0xFF,
    )
    with pytest.raises(
        ValueError, match=r"generation_price_ratio is given but .* generation_price"
    ):
        encode_command(price)


def test_message_text_is_lossless():
    raw = b"Caf\xc3\xa9 \xff\x00 end"
    text, rest = CharacterString.deserialize(bytes([len(raw)]) + raw + b"tail")
    assert text.startswith("Café ")
    assert text.serialize() == bytes([len(raw)]) + raw
    assert rest == b"tail"
    with pytest.raises(ValueError, match="longer than 254"):
        CharacterString("x" * 255).serialize()
    with pytest.raises(ValueError, match="0xFF"):
        CharacterString.deserialize(b"\xff")


def test_key_establishment_and_drlc_sizes():
    lce = Drlc.ClientCommandDefs.load_control_event.schema
    assert sum(f.type(0).serialize().__len__() for f in lce.fields) == 23
    assert TerminateKeyEstablishment.command_id == 0x03  # the single KE wire, zse.cbke.messages


def test_key_establishment_cluster_and_old_types_path_are_deprecated():
    """#13.1: the zigpy KE cluster and zse.clusters.types still resolve, with a warning."""
    import zse.clusters  # noqa: PLC0415
    import zse.clusters.types  # noqa: PLC0415
    import zse.se.types  # noqa: PLC0415

    with pytest.warns(DeprecationWarning, match=r"zse\.cbke\.messages"):
        cluster = zse.clusters.KeyEstablishment
    assert cluster.cluster_id == 0x0800
    assert cluster.ServerCommandDefs.terminate_key_establishment.id == 0x03
    with pytest.warns(DeprecationWarning, match=r"moved to zse\.se\.types\.MessageControl"):
        assert zse.clusters.types.MessageControl is zse.se.types.MessageControl
    with pytest.raises(AttributeError):
        _ = zse.clusters.types.NoSuchName
