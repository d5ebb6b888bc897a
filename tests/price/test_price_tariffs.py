"""SE 1.2 tariffs in the Price cores (D.4.2.4.5-7, 9, 15): Publish Tariff Information, Price
Matrix, Block Thresholds, Tier Labels and Cancel Tariff, and the Get commands that ask for
them. The matrix, thresholds and labels go in as many commands as one frame each takes; a
client puts them back together. Wireshark reads every command zse encodes, field by field.
No event loop: each received command -> sends, events and Default Response status."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from zigpy.zcl import foundation

from tests.clusters.se_frames import air_frame, dissect
from tests.price.test_price_protocol import frame
from zse.errors import DecodeError
from zse.price import (
    BlockThresholds,
    PartOutcome,
    PriceMatrix,
    TariffCancellation,
    TariffInformation,
    TariffPart,
    Tariffs,
    TierLabels,
)
from zse.price.protocol import (
    PriceClientProtocol,
    PriceServerProtocol,
    TariffCancelled,
    TariffReceived,
    tariff_part_payload,
)
from zse.price.service import _step
from zse.price.wire import Price, TierLabel
from zse.se.frames import max_zcl_payload
from zse.se.ids import PRICE, PriceClientCommand, PriceServerCommand
from zse.zcl.codec import decode_command, encode_command
from zse.zcl.delivery import Destination
from zse.zcl.frame import Send, Step, ZclMessage

NOW = 800_000_000
DISPLAY = Destination.device(0x1234, 1)
SERVER = Destination.device(0x0000, 9)
NOT_FOUND = foundation.Status.NOT_FOUND
MALFORMED = foundation.Status.MALFORMED_COMMAND
ONE_FRAME = max_zcl_payload(group=False)


def information(tariff_id: int = 7, event_id: int = 100, **more: Any) -> TariffInformation:
    fields: dict[str, Any] = {
        "provider_id": 5,
        "issuer_event_id": event_id,
        "issuer_tariff_id": tariff_id,
        "start_time": 0,
        "tariff_type_charging_scheme": 0x20,  # delivered, block/TOU with common thresholds
        "tariff_label": b"Economy 7",
        "number_of_price_tiers_in_use": 2,
        "number_of_block_thresholds_in_use": 2,
        "unit_of_measure": 0,
        "currency": 826,
        "price_trailing_digit": 0x40,  # 4 digits
        "standing_charge": 2500,
        "tier_block_mode": 1,
        "block_threshold_multiplier": 1,
        "block_threshold_divisor": 1000,
    }
    return TariffInformation(**(fields | more))


def matrix(tariff_id: int = 7, event_id: int = 101, tiers: int = 2, blocks: int = 3) -> PriceMatrix:
    prices = {
        (tier, block): 1000 * tier + 10 * block
        for tier in range(1, tiers + 1)
        for block in range(1, blocks + 1)
    }
    return PriceMatrix(
        provider_id=5, issuer_event_id=event_id, issuer_tariff_id=tariff_id, prices=prices
    )


def thresholds(tariff_id: int = 7, event_id: int = 102) -> BlockThresholds:
    return BlockThresholds(
        provider_id=5,
        issuer_event_id=event_id,
        issuer_tariff_id=tariff_id,
        thresholds={0: (2000, 5000)},
    )


def labels(tariff_id: int = 7, event_id: int = 103) -> TierLabels:
    return TierLabels(
        provider_id=5,
        issuer_event_id=event_id,
        issuer_tariff_id=tariff_id,
        labels={1: b"Night", 2: b"Day"},
    )


def as_received(send: Send, **where: Any) -> ZclMessage:
    """A server's send as the client receives it."""
    return frame(send.command_id, send.payload, from_server=True, **where)


def deliver(client: PriceClientProtocol, sends: tuple[Send, ...], now: int = NOW) -> list[Step]:
    return [_step(client, as_received(send), lambda: now) for send in sends]


def get(name: str, **fields: Any) -> ZclMessage:
    definition = getattr(Price.ServerCommandDefs, name)
    return frame(definition.id, encode_command(definition.schema(**fields)))


def as_sent(value: Any, start: int = NOW) -> Any:
    """A matrix or thresholds published for "now" as its parts carry it: with the start of
    its tariff, as a Get command is answered (labels carry no start)."""
    return value if isinstance(value, TierLabels) else dataclasses.replace(value, start_time=start)


def published_tariff(*values: Any, info: TariffInformation | None = None) -> tuple[Send, ...]:
    server = PriceServerProtocol()
    return server.publish_tariff(info or information(), NOW, DISPLAY, values).sends


# --- wire: ids and layouts as Wireshark reads them ------------------------------------------


def test_the_tariff_command_ids_are_wiresharks() -> None:
    client = PriceClientCommand
    server = PriceServerCommand
    assert [client.PUBLISH_TARIFF_INFORMATION, client.PUBLISH_PRICE_MATRIX] == [0x04, 0x05]
    assert [client.PUBLISH_BLOCK_THRESHOLDS, client.PUBLISH_TIER_LABELS] == [0x06, 0x08]
    assert client.CANCEL_TARIFF == 0x0E
    assert [server.GET_TARIFF_INFORMATION, server.GET_PRICE_MATRIX] == [0x06, 0x07]
    assert [server.GET_BLOCK_THRESHOLDS, server.GET_TIER_LABELS] == [0x08, 0x0A]
    assert server.GET_TARIFF_CANCELLATION == 0x10


@pytest.mark.oracle
def test_tshark_reads_every_tariff_command_zse_encodes(tmp_path) -> None:
    """Field by field: the five publications and the five requests."""
    server = PriceServerProtocol()
    sends = list(
        server.publish_tariff(information(), NOW, DISPLAY, (matrix(), thresholds(), labels())).sends
    )
    sends += server.cancel_tariff(
        TariffCancellation(provider_id=5, issuer_tariff_id=7, tariff_type=1), NOW, DISPLAY
    ).sends
    client = PriceClientProtocol()
    requests = [
        client.get_tariff_information(SERVER, NOW, 2, 1),
        client.get_tariff_value(SERVER, PriceMatrix, 7),
        client.get_tariff_value(SERVER, BlockThresholds, 8),
        client.get_tariff_value(SERVER, TierLabels, 9),
        client.get_tariff_cancellation(SERVER),
    ]
    frames = [
        air_frame(PRICE, bytes((0x19 if s in sends else 0x11, n, s.command_id)) + s.payload, n + 1)
        for n, s in enumerate([*sends, *requests])
    ]
    packets = dissect(frames, tmp_path)
    assert not any(packet.malformed for packet in packets)
    info, price_matrix, block_thresholds, tier_labels, cancel, *asks = packets

    def shown(packet: Any, name: str) -> list[str]:
        return packet.show(f"zbee_zcl_se.price.{name}")

    assert shown(info, "cmd.srv_tx.id") == ["0x04"]
    assert shown(info, "issuer_tariff_id") == ["7"]
    assert shown(info, "tariff_information.type") == ["0x00"]
    assert shown(info, "tariff_information.charging_scheme") == ["0x02"]
    assert shown(info, "tariff_information.tariff_label") == ["Economy 7"]
    assert shown(info, "tariff_information.number_of_price_tiers_in_use") == ["2"]
    assert shown(info, "tariff_information.number_of_block_thresholds_in_use") == ["2"]
    assert shown(info, "currency") == ["0x033a"]
    assert shown(info, "tariff_information.price.trailing_digit")[-1] == "4"
    assert shown(info, "tariff_information.standing_charge") == ["2500"]
    assert shown(info, "tariff_information.tier_block_mode") == ["0x01"]
    assert shown(info, "tariff_information.block_threshold_divisor") == ["1000"]

    assert shown(price_matrix, "cmd.srv_tx.id") == ["0x05"]
    assert shown(price_matrix, "issuer_tariff_id") == ["7"]
    assert shown(price_matrix, "command_index") == ["0"]
    assert shown(price_matrix, "total_number_of_commands") == ["1"]
    assert shown(price_matrix, "price_matrix.sub_payload_control") == ["0"]
    assert shown(price_matrix, "price_matrix.tier") == ["1", "1", "1", "2", "2", "2"]
    assert shown(price_matrix, "price_matrix.block") == ["0", "1", "2", "0", "1", "2"]
    assert shown(price_matrix, "price_matrix.price") == [
        "1010", "1020", "1030", "2010", "2020", "2030",
    ]  # fmt: skip

    assert shown(block_thresholds, "cmd.srv_tx.id") == ["0x06"]
    assert shown(block_thresholds, "block_thresholds.sub_payload_control") == ["1"]
    assert shown(block_thresholds, "tariff_information.number_of_block_thresholds") == ["2"]
    assert shown(block_thresholds, "block_threshold") == ["2000", "5000"]

    assert shown(tier_labels, "cmd.srv_tx.id") == ["0x08"]
    assert shown(tier_labels, "tier_labels.number_of_labels") == ["2"]
    assert shown(tier_labels, "tier_labels.tier_id") == ["1", "2"]
    assert shown(tier_labels, "tier_labels.tier_label") == ["Night", "Day"]

    assert shown(cancel, "cmd.srv_tx.id") == ["0x0e"]
    assert shown(cancel, "provider_id") == ["5"]
    # Wireshark 4.0 names Cancel Tariff's Issuer Tariff ID "Issuer Event ID"
    assert shown(cancel, "issuer_event_id") == ["7"]
    assert shown(cancel, "tariff_type") == ["0x01"]

    assert [shown(p, "cmd.srv_rx.id")[0] for p in asks] == ["0x06", "0x07", "0x08", "0x0a", "0x10"]
    info_ask, matrix_ask, thresholds_ask, labels_ask, _ = asks
    assert shown(info_ask, "min_issuer_event_id") == [str(0xFFFFFFFF)]
    assert shown(info_ask, "number_of_commands") == ["2"]
    assert shown(info_ask, "tariff_type") == ["0x01"]
    assert [shown(p, "issuer_tariff_id") for p in (matrix_ask, thresholds_ask, labels_ask)] == [
        ["7"], ["8"], ["9"],
    ]  # fmt: skip


@pytest.mark.oracle
def test_tshark_reads_a_tou_matrix_and_per_tier_thresholds(tmp_path) -> None:
    tou = PriceMatrix(
        provider_id=5,
        issuer_event_id=1,
        issuer_tariff_id=7,
        prices={(20, 1): 99, (3, 1): 7},
        tou=True,
    )
    per_tier = BlockThresholds(
        provider_id=5,
        issuer_event_id=2,
        issuer_tariff_id=7,
        thresholds={1: (10,), 2: (20, 30)},
        all_tiers=False,
    )
    parts = [*tou.parts(), *per_tier.parts()]
    frames = [
        air_frame(
            PRICE,
            bytes((0x19, n, 5 if p.kind is PriceMatrix else 6)) + tariff_part_payload(p),
            n + 1,
        )
        for n, p in enumerate(parts)
    ]
    matrix_packet, thresholds_packet = dissect(frames, tmp_path)
    assert not matrix_packet.malformed
    assert not thresholds_packet.malformed
    assert matrix_packet.show("zbee_zcl_se.price.price_matrix.sub_payload_control") == ["1"]
    assert matrix_packet.show("zbee_zcl_se.price.price_matrix.tier") == ["3", "20"]
    assert thresholds_packet.show("zbee_zcl_se.price.block_thresholds.tier") == ["1", "2"]
    assert thresholds_packet.show("zbee_zcl_se.price.block_threshold") == ["10", "20", "30"]


def test_a_sub_payload_cut_short_is_a_decode_error_that_says_where() -> None:
    header = encode_command(
        Price.ClientCommandDefs.publish_price_matrix.schema(**matrix().parts()[0].to_fields())
    )
    with pytest.raises(DecodeError, match=r"entries at byte offset 19 .*whole number"):
        decode_command(
            Price, PriceClientCommand.PUBLISH_PRICE_MATRIX, header[:-2], from_server=True
        )
    sets = encode_command(
        Price.ClientCommandDefs.publish_block_thresholds.schema(
            **thresholds().parts()[0].to_fields()
        )
    )
    with pytest.raises(DecodeError, match=r"announces 2 thresholds"):
        decode_command(
            Price, PriceClientCommand.PUBLISH_BLOCK_THRESHOLDS, sets[:-1], from_server=True
        )


# --- splitting: one frame each -----------------------------------------------------------


def test_a_full_matrix_goes_in_commands_of_one_frame_each_and_comes_back_whole() -> None:
    """16 tiers x 16 blocks (D.4.2.2.5) is 1280 octets of prices: 26 commands, none over
    the APS-encrypted unicast budget (70 octets), numbered 0-25 of 26; any order."""
    full = PriceMatrix(
        provider_id=5,
        issuer_event_id=101,
        issuer_tariff_id=7,
        prices={(t, b): t * 100 + b for t in range(16) for b in range(1, 17)},
    )
    sends = published_tariff(full)
    parts = sends[1:]
    assert len(parts) == 26
    assert all(len(send.payload) <= ONE_FRAME for send in sends)
    commands = [decode_command(Price, s.command_id, s.payload, from_server=True)[0] for s in parts]
    assert [int(c.command_index) for c in commands] == list(range(26))
    assert {int(c.total_number_of_commands) for c in commands} == {26}
    client = PriceClientProtocol()
    deliver(client, sends[:1])
    shuffled = list(parts)
    random.Random(4).shuffle(shuffled)
    steps = deliver(client, tuple(shuffled))
    assert [s for s in steps[:-1] if s != Step()] == []  # parts kept, nothing in force yet
    assert steps[-1].events == (TariffReceived(source_nwk=0x1234, value=as_sent(full), new=True),)
    assert client.tariffs.value(PriceMatrix, 7, NOW) == as_sent(full)


def test_fifteen_thresholds_in_every_tier_and_48_labels_fit_one_frame_each() -> None:
    many = BlockThresholds(
        provider_id=5,
        issuer_event_id=102,
        issuer_tariff_id=7,
        thresholds={t: tuple(range(100, 1600, 100)) for t in range(16)},
        all_tiers=False,
    )
    named = TierLabels(
        provider_id=5,
        issuer_event_id=103,
        issuer_tariff_id=7,
        labels=dict.fromkeys(range(1, 49), b"L" * 12),
    )
    sends = published_tariff(many, named)
    assert len(sends) > 3
    assert all(len(send.payload) <= ONE_FRAME for send in sends)
    client = PriceClientProtocol()
    events = [e for step in deliver(client, sends) for e in step.events]
    assert [e.value for e in events] == [information(), as_sent(many), named]


# --- the client: parts put together, refused, cancelled ------------------------------------


def test_a_missing_part_keeps_the_matrix_out_of_force() -> None:
    full = matrix(tiers=15, blocks=16)
    sends = published_tariff(full)
    client = PriceClientProtocol()
    steps = deliver(client, sends[:1] + sends[2:])  # part 0 lost
    assert not any(
        isinstance(e, TariffReceived) and e.value == as_sent(full) for s in steps for e in s.events
    )
    assert client.tariffs.value(PriceMatrix, 7, NOW) is None
    assert client.tariffs.pending() == len(sends) - 2
    (last,) = deliver(client, sends[1:2])
    assert last.events == (TariffReceived(source_nwk=0x1234, value=as_sent(full), new=True),)
    assert client.tariffs.pending() == 0


def test_a_part_of_a_tariff_not_held_is_refused_not_found() -> None:
    client = PriceClientProtocol()
    sends = published_tariff(matrix())
    (step,) = deliver(client, sends[1:])  # no tariff information first
    assert step == Step(status=NOT_FOUND)
    assert client.tariffs.pending() == 0


def test_a_part_that_disagrees_with_its_issue_is_refused_and_the_issue_dropped() -> None:
    """Another Total Number of Commands under the same issuer event id: not a part of that
    issue. Its parts go (INVALID_FIELD); the issue is asked for again whole."""
    full = matrix(tiers=15, blocks=16)
    sends = published_tariff(full)
    client = PriceClientProtocol()
    deliver(client, sends[:3])
    part = TariffPart.from_fields(
        PriceMatrix,
        decode_command(Price, sends[3].command_id, sends[3].payload, from_server=True)[0],
    )
    stray = dataclasses.replace(part, total_number_of_commands=part.total_number_of_commands + 1)
    msg = frame(sends[3].command_id, tariff_part_payload(stray), from_server=True)
    assert _step(client, msg, lambda: NOW) == Step(status=foundation.Status.INVALID_FIELD)
    assert client.tariffs.pending() == 0
    steps = deliver(client, sends[1:])
    assert steps[-1].events[0].value == as_sent(full)


def test_a_newer_issue_replaces_the_matrix_an_older_is_refused() -> None:
    client = PriceClientProtocol()
    deliver(client, published_tariff(matrix(event_id=101)))
    newer = matrix(event_id=200, blocks=2)
    (step,) = deliver(client, published_tariff(newer)[1:])
    assert step.events[0].value == as_sent(newer)
    (older,) = deliver(client, published_tariff(matrix(event_id=150))[1:])
    assert older == Step(status=foundation.Status.FAILURE)
    (again,) = deliver(client, published_tariff(newer)[1:])
    assert again == Step(status=foundation.Status.DUPLICATE_EXISTS)
    assert client.tariffs.value(PriceMatrix, 7, NOW) == as_sent(newer)


def test_cancel_tariff_removes_the_tariff_and_its_parts_on_both_sides() -> None:
    server = PriceServerProtocol()
    sends = server.publish_tariff(
        information(), NOW, DISPLAY, (matrix(), thresholds(), labels())
    ).sends
    client = PriceClientProtocol()
    deliver(client, sends)
    assert client.tariffs.value(TierLabels, 7, NOW) == labels()
    cancellation = TariffCancellation(provider_id=5, issuer_tariff_id=7, tariff_type=0)
    (cancel,) = server.cancel_tariff(cancellation, NOW + 5, DISPLAY).sends
    (step,) = deliver(client, (cancel,), NOW + 5)
    assert step.events == (
        TariffCancelled(source_nwk=0x1234, cancellation=cancellation, held=True),
    )
    for tariffs in (client.tariffs, server.tariffs):
        assert tariffs.held(NOW + 5) == []
        assert all(
            tariffs.value(kind, 7, NOW) is None
            for kind in (PriceMatrix, BlockThresholds, TierLabels)
        )
    (again,) = deliver(client, (cancel,), NOW + 6)
    assert again.status == NOT_FOUND
    assert not again.events[0].held
    # Get Tariff Cancellation is answered with the last Cancel Tariff (D.4.2.3.16)
    answer = _step(server, get("get_tariff_cancellation"), lambda: NOW + 7)
    assert [(s.command_id, s.payload) for s in answer.sends] == [
        (cancel.command_id, cancel.payload)
    ]


def test_a_tariff_label_too_long_is_malformed() -> None:
    fields = information().to_fields() | {"tariff_label": b"L" * 25}  # at most 24
    msg = frame(
        PriceClientCommand.PUBLISH_TARIFF_INFORMATION,
        encode_command(Price.ClientCommandDefs.publish_tariff_information.schema(**fields)),
        from_server=True,
    )
    client = PriceClientProtocol()
    assert _step(client, msg, lambda: NOW) == Step(status=MALFORMED)
    assert client.tariffs.held(NOW) == []


@pytest.mark.parametrize("tier", [0, 49, 255])
def test_a_tier_label_for_no_tier_is_refused_invalid_field(tier: int) -> None:
    """Publish Tier Labels (D.4.2.4.9) labels tiers 1-48, the TierNPriceLabel attributes
    (D.4.2.2): a label for tier 0 or above 48 is refused INVALID_FIELD, nothing held. (It
    was kept: the labels took any 8-bit tier id.)"""
    client = PriceClientProtocol()
    deliver(client, published_tariff())
    fields = {
        "provider_id": 5,
        "issuer_event_id": 103,
        "issuer_tariff_id": 7,
        "command_index": 0,
        "total_number_of_commands": 1,
        "number_of_labels": 2,
        "tier_labels": [
            TierLabel(tier_id=1, tier_label=b"Night"),
            TierLabel(tier_id=tier, tier_label=b"x"),
        ],
    }
    msg = frame(
        PriceClientCommand.PUBLISH_TIER_LABELS,
        encode_command(Price.ClientCommandDefs.publish_tier_labels.schema(**fields)),
        from_server=True,
    )
    assert _step(client, msg, lambda: NOW) == Step(status=foundation.Status.INVALID_FIELD)
    assert client.tariffs.value(TierLabels, 7, NOW) is None
    assert client.tariffs.pending() == 0


def test_a_client_keeps_a_bounded_number_of_tariffs_and_forgets_their_parts() -> None:
    client = PriceClientProtocol()
    for n in range(40):
        deliver(
            client,
            published_tariff(
                matrix(tariff_id=n),
                info=information(tariff_id=n, event_id=n, start_time=NOW + 60 * (n + 1)),
            ),
        )
    held = client.tariffs.held(NOW)
    assert len(held) == client.tariffs.limit
    assert {i.issuer_tariff_id for i in held} == set(range(client.tariffs.limit))
    assert client.tariffs.value(PriceMatrix, 39, NOW) is None
    # once tariff 3 is in force, tariffs 0-2 are over: their matrices go with them
    assert client.tariffs.current(NOW + 60 * 4).issuer_tariff_id == 3
    assert client.tariffs.value(PriceMatrix, 0, NOW + 60 * 4) is None
    assert client.tariffs.value(PriceMatrix, 3, NOW + 60 * 4) == as_sent(
        matrix(tariff_id=3), NOW + 60 * 4
    )


# --- the server answers ----------------------------------------------------------------------


def test_the_server_answers_the_get_commands_with_absolute_starts() -> None:
    server = PriceServerProtocol()
    server.publish_tariff(information(), NOW, None, (matrix(), thresholds(), labels()))
    server.publish_tariff(information(tariff_id=8, event_id=110, start_time=NOW + 3600), NOW)
    received = information(tariff_type_charging_scheme=0x01, tariff_id=9, event_id=120)
    server.publish_tariff(received, NOW)
    answer = _step(
        server,
        get(
            "get_tariff_information",
            earliest_start_time=0,
            min_issuer_event_id=0xFFFFFFFF,
            number_of_commands=0,
            tariff_type=0,
        ),
        lambda: NOW + 10,
    )
    client = PriceClientProtocol()
    deliver(client, answer.sends, NOW + 10)
    assert client.tariffs.held(NOW + 10) == [
        information(start_time=NOW),
        information(tariff_id=8, event_id=110, start_time=NOW + 3600),
    ]
    received_only = _step(
        server,
        get(
            "get_tariff_information",
            earliest_start_time=0,
            min_issuer_event_id=0xFFFFFFFF,
            number_of_commands=1,
            tariff_type=1,
        ),
        lambda: NOW + 10,
    )
    assert len(received_only.sends) == 1
    for kind, name in (
        (PriceMatrix, "get_price_matrix"),
        (BlockThresholds, "get_block_thresholds"),
        (TierLabels, "get_tier_labels"),
    ):
        step = _step(server, get(name, issuer_tariff_id=7), lambda: NOW + 10)
        assert all(send.reply_to is not None for send in step.sends)
        (done,) = [e for s in deliver(client, step.sends, NOW + 10) for e in s.events]
        sent = server.tariffs.value(kind, 7, NOW)
        resolved = sent if kind is TierLabels else dataclasses.replace(sent, start_time=NOW)
        assert done.value == resolved  # a start "now" is re-sent as when it was published
    for name in ("get_price_matrix", "get_block_thresholds", "get_tier_labels"):
        assert _step(server, get(name, issuer_tariff_id=8), lambda: NOW) == Step(status=NOT_FOUND)
    assert _step(server, get("get_tariff_cancellation"), lambda: NOW) == Step(status=NOT_FOUND)


def test_the_server_refuses_a_value_of_another_tariff() -> None:
    server = PriceServerProtocol()
    with pytest.raises(ValueError, match="does not belong"):
        server.publish_tariff(information(), NOW, DISPLAY, (matrix(tariff_id=8),))
    with pytest.raises(ValueError, match="one price matrix"):
        server.publish_tariff(information(), NOW, DISPLAY, (matrix(), matrix()))
    assert server.tariffs.held(NOW) == []


def test_the_store_refuses_a_value_with_no_tariff() -> None:
    with pytest.raises(ValueError, match="publish its tariff information first"):
        Tariffs().put(matrix(), NOW)


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (
            lambda: PriceMatrix(
                provider_id=1, issuer_event_id=1, issuer_tariff_id=1, prices={(0, 1): 1}, tou=True
            ),
            "TOU",
        ),
        (
            lambda: PriceMatrix(
                provider_id=1, issuer_event_id=1, issuer_tariff_id=1, prices={(16, 1): 1}
            ),
            "block",
        ),
        (
            lambda: BlockThresholds(
                provider_id=1, issuer_event_id=1, issuer_tariff_id=1, thresholds={1: (1,)}
            ),
            "tier 0 only",
        ),
        (
            lambda: BlockThresholds(
                provider_id=1,
                issuer_event_id=1,
                issuer_tariff_id=1,
                thresholds={0: tuple(range(16))},
            ),
            "at most 15",
        ),
        (
            lambda: TierLabels(
                provider_id=1, issuer_event_id=1, issuer_tariff_id=1, labels={1: b"x" * 13}
            ),
            "at most 12",
        ),
        (
            lambda: TierLabels(
                provider_id=1, issuer_event_id=1, issuer_tariff_id=1, labels={0: b"x"}
            ),
            r"tier id 0 is not a tier \(1 to 48\)",
        ),
        (
            lambda: TierLabels(
                provider_id=1, issuer_event_id=1, issuer_tariff_id=1, labels={49: b"x"}
            ),
            r"tier id 49 is not a tier \(1 to 48\)",
        ),
    ],
)
def test_values_no_tariff_has_are_refused(make: Any, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        make()


# --- garbage -----------------------------------------------------------------------------------

_PUBLISHED = [
    PriceClientCommand.PUBLISH_TARIFF_INFORMATION,
    PriceClientCommand.PUBLISH_PRICE_MATRIX,
    PriceClientCommand.PUBLISH_BLOCK_THRESHOLDS,
    PriceClientCommand.PUBLISH_TIER_LABELS,
    PriceClientCommand.CANCEL_TARIFF,
]


@given(st.sampled_from(_PUBLISHED), st.binary(max_size=90))
def test_garbage_tariff_commands_give_only_decode_errors_or_a_status(
    command_id: int, data: bytes
) -> None:
    """The wire and the cores raise nothing but the DecodeError family on any payload; the
    client answers every one with a Step (a status, an event or nothing), never a crash."""
    kinds = {
        PriceClientCommand.PUBLISH_PRICE_MATRIX: PriceMatrix,
        PriceClientCommand.PUBLISH_BLOCK_THRESHOLDS: BlockThresholds,
        PriceClientCommand.PUBLISH_TIER_LABELS: TierLabels,
    }
    try:
        command, _ = decode_command(Price, command_id, data, from_server=True)
        if command_id in kinds:
            TariffPart.from_fields(kinds[command_id], command)
        elif command_id == PriceClientCommand.PUBLISH_TARIFF_INFORMATION:
            TariffInformation.from_fields(command)
    except DecodeError:
        pass
    client = PriceClientProtocol()
    deliver(client, published_tariff())  # a tariff 7 held, so parts get as far as the store
    step = _step(client, frame(command_id, data, from_server=True), lambda: NOW)
    assert isinstance(step, Step)


@given(st.lists(st.tuples(st.integers(0, 0xFF), st.binary(max_size=70)), max_size=30))
def test_garbage_parts_in_any_order_never_crash_the_client(parts: list[tuple[int, bytes]]) -> None:
    """Parts of every kind, valid headers with random sub-payloads, in any order: every one
    gets a Step; the store never holds more parts than were sent."""
    client = PriceClientProtocol()
    deliver(client, published_tariff())
    for index, payload in parts:
        command_id = (
            PriceClientCommand.PUBLISH_PRICE_MATRIX,
            PriceClientCommand.PUBLISH_BLOCK_THRESHOLDS,
        )[index % 2]
        header = (5).to_bytes(4, "little") + (101).to_bytes(4, "little") + NOW.to_bytes(4, "little")
        header += (7).to_bytes(4, "little") + bytes((index % 4, 3, index & 1))
        step = _step(client, frame(command_id, header + payload, from_server=True), lambda: NOW)
        assert isinstance(step, Step)
    assert client.tariffs.pending() <= len(parts)


def test_a_display_that_missed_one_part_gets_the_matrix_whole_by_asking_once() -> None:
    """The parts published live and those answering Get Price Matrix are one issue, the same
    header: a display that missed one frame of a matrix published for now asks once and has
    it whole (the answer's parts are not refused as disagreeing with those it holds)."""
    server = PriceServerProtocol()
    full = matrix(tiers=15, blocks=16)
    sends = server.publish_tariff(information(), NOW, DISPLAY, (full,)).sends
    client = PriceClientProtocol()
    deliver(client, sends[:1] + sends[2:])  # the matrix's first part lost
    assert client.tariffs.value(PriceMatrix, 7, NOW) is None
    answer = _step(server, get("get_price_matrix", issuer_tariff_id=7), lambda: NOW + 10)
    steps = deliver(client, answer.sends, NOW + 10)
    assert foundation.Status.INVALID_FIELD not in [s.status for s in steps]
    held = client.tariffs.value(PriceMatrix, 7, NOW + 10)
    assert held is not None
    assert held.prices == full.prices


def test_parts_that_never_make_a_whole_are_bounded_and_the_rest_refused() -> None:
    """A server (or anyone sending as one) starting issues it never finishes, 255 parts
    announced each, for every tariff the client holds: the parts waiting are bounded
    (:attr:`Tariffs.pending_limit`), one past the bound is refused INSUFFICIENT_SPACE and
    counted; a whole value still fits once the stray parts' tariff is cancelled."""
    client = PriceClientProtocol()
    for n in range(client.tariffs.limit):
        later = information(tariff_id=n, event_id=n, start_time=NOW + 60 * n)
        deliver(client, published_tariff(info=later))
    statuses = []
    for n in range(client.tariffs.limit):
        for index in range(0, 254, 2):
            header = (5).to_bytes(4, "little") + (900).to_bytes(4, "little")
            header += NOW.to_bytes(4, "little") + n.to_bytes(4, "little") + bytes((index, 255, 0))
            entries = b"".join(
                bytes((0x10 | b,)) + (index + b).to_bytes(4, "little") for b in range(9)
            )
            msg = frame(PriceClientCommand.PUBLISH_PRICE_MATRIX, header + entries, from_server=True)
            statuses.append(_step(client, msg, lambda: NOW).status)
    assert client.tariffs.pending() <= 256  # Tariffs.pending_limit's default
    assert client.tariffs.pending() == client.tariffs.pending_limit
    assert foundation.Status.INSUFFICIENT_SPACE in statuses
    assert client.tariffs.refused_full == statuses.count(foundation.Status.INSUFFICIENT_SPACE)
    newest = client.tariffs.limit - 1
    for n in range(newest):
        client.tariffs.cancel(TariffCancellation(provider_id=5, issuer_tariff_id=n), NOW)
    held = information(tariff_id=newest, event_id=newest, start_time=NOW + 60 * newest)
    sends = published_tariff(matrix(tariff_id=newest, event_id=1000), info=held)
    assert deliver(client, sends[1:])[-1].events[0].value.prices == matrix().prices


def test_parts_of_a_tariff_over_do_not_count_against_the_bound() -> None:
    """The parts waiting for a tariff that is over since (a later one started) are forgotten
    before a part is refused for the bound: they no longer take the room."""
    tariffs = Tariffs(pending_limit=2)
    tariffs.add(information(tariff_id=1, event_id=1, start_time=NOW), NOW)
    tariffs.add(information(tariff_id=2, event_id=2, start_time=NOW + 60), NOW)
    first, second, *_ = matrix(tariff_id=1, tiers=15, blocks=16).parts()
    assert tariffs.add_part(first, NOW)[0] is PartOutcome.KEPT
    assert tariffs.add_part(second, NOW)[0] is PartOutcome.KEPT
    later = matrix(tariff_id=2, tiers=15, blocks=16).parts()[0]
    assert tariffs.add_part(later, NOW)[0] is PartOutcome.FULL
    assert tariffs.add_part(later, NOW + 60)[0] is PartOutcome.KEPT  # tariff 1 is over
    assert tariffs.pending() == 1
