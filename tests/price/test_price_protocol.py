"""#13.2: the Price protocol cores at the ZCL frame (zse.price.protocol), with no event loop:
each received command -> sends, events and Default Response status; each application call ->
sends; no timer."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from zigpy.zcl import foundation

from tests.price.test_price_schedule import price
from tests.services.test_delivery import REQUEST
from zse.price import PriceEvent
from zse.price.protocol import (
    CurrentPriceRequested,
    PriceAcknowledged,
    PriceClientProtocol,
    PriceReceived,
    PriceServerProtocol,
    publish_price_payload,
)
from zse.price.service import PriceClient, PriceServer, _step
from zse.price.wire import Price
from zse.se.ids import PRICE, PriceClientCommand, PriceServerCommand
from zse.zcl.codec import decode_command, encode_command
from zse.zcl.delivery import Destination
from zse.zcl.frame import Send, Step, ZclMessage

NOW = 800_000_000
IEEE = REQUEST.src_ieee
NOT_FOUND = foundation.Status.NOT_FOUND
SUCCESS = foundation.Status.SUCCESS
UNSUPPORTED = foundation.Status.UNSUP_CLUSTER_COMMAND
MALFORMED = foundation.Status.MALFORMED_COMMAND
GET_CURRENT = PriceServerCommand.GET_CURRENT_PRICE
GET_SCHEDULED = PriceServerCommand.GET_SCHEDULED_PRICES
ACKNOWLEDGE = PriceServerCommand.PRICE_ACKNOWLEDGEMENT
PUBLISH = PriceClientCommand.PUBLISH_PRICE
ASKS_ACK = {"price_control": 0x01, "price_ratio": 0xFF, "generation_price": 0xFFFFFFFF,
            "generation_price_ratio": 0xFF, "alternate_cost_delivered": 0xFFFFFFFF,
            "alternate_cost_unit": 1, "alternate_cost_trailing_digit": 0,
            "number_of_block_thresholds": 0}  # fmt: skip


def frame(
    command_id: int,
    payload: bytes = b"",
    *,
    from_server: bool = False,
    group: int | None = None,
    broadcast: bool = False,
) -> ZclMessage:
    """A Price cluster command received from 0x1234 endpoint 1 (TSN 7)."""
    return dataclasses.replace(
        REQUEST,
        frame_control=0x01 | (0x08 if from_server else 0),
        command_id=command_id,
        payload=payload,
        aps_encrypted=group is None and not broadcast,
        group=group,
        broadcast=broadcast,
    )


def decoded(msg: ZclMessage) -> Any:
    """The command as the shell decodes it with the wire."""
    command, _ = decode_command(Price, msg.command_id, msg.payload, from_server=msg.from_server)
    return command


def server_command(name: str, **fields: Any) -> ZclMessage:
    definition = getattr(Price.ServerCommandDefs, name)
    return frame(definition.id, encode_command(definition.schema(**fields)))


def publish_frame(event: PriceEvent, **where: Any) -> ZclMessage:
    return frame(PUBLISH, publish_price_payload(event, NOW), from_server=True, **where)


def published(*events: PriceEvent, **where: Any) -> tuple[Send, ...]:
    return tuple(
        Send(cluster_id=PRICE, command_id=PUBLISH, payload=publish_price_payload(e, NOW), **where)
        for e in events
    )


def server_with(*events: PriceEvent) -> PriceServerProtocol:
    server = PriceServerProtocol()
    for event in events:
        assert server.publish(event, NOW) == Step()  # recorded, sent nowhere
    return server


# -- the server: each received command -----------------------------------------------------------

GET_CURRENT_PRICE = server_command("get_current_price", command_options=1)
ALL_SCHEDULED = server_command("get_scheduled_prices", start_time=0, number_of_events=0)
ONE_SCHEDULED = server_command("get_scheduled_prices", start_time=0, number_of_events=1)
LATER = price(5, start=NOW + 600, minutes=30)
NEXT = price(9, start=NOW + 600, minutes=30)  # newer: price(7) in force ends when it starts


STARTED = price(7, start=NOW)  # price(7), published for "now" at NOW, as it is re-sent


@pytest.mark.parametrize(
    ("known", "msg", "answers", "status"),
    [
        ((), GET_CURRENT_PRICE, (), NOT_FOUND),
        ((price(7),), GET_CURRENT_PRICE, (STARTED,), None),
        ((price(3), price(7)), GET_CURRENT_PRICE, (STARTED,), None),  # newer id wins
        ((LATER,), GET_CURRENT_PRICE, (), NOT_FOUND),  # scheduled, not in force
        ((), ALL_SCHEDULED, (), NOT_FOUND),
        ((price(7), NEXT), ALL_SCHEDULED, (STARTED, NEXT), None),  # by start time
        ((price(7), NEXT), ONE_SCHEDULED, (STARTED,), None),
    ],
)
def test_server_answers_requests_with_publish_price_or_not_found(
    known: tuple[PriceEvent, ...], msg: ZclMessage, answers: tuple[PriceEvent, ...], status: Any
) -> None:
    step = server_with(*known).receive(msg, decoded(msg), NOW)
    assert (step.sends, step.status) == (published(*answers, reply_to=msg), status)


@pytest.mark.parametrize(
    ("command", "fields"),
    [
        ("get_current_price", {"command_options": 0}),
        ("get_scheduled_prices", {"start_time": 0, "number_of_events": 0}),
    ],
)
def test_server_answers_a_price_published_for_now_with_its_absolute_start(
    command: str, fields: dict[str, int]
) -> None:
    """D.4.2.4.1.1.9: Start Time 0 is "now" to whoever receives it. A 2-hour price
    published for now and asked for an hour later is re-sent with the start it was given
    (and its duration), so the asking device's price ends when the server's does."""
    server = server_with(price(10, minutes=120))
    msg = server_command(command, **fields)
    later = NOW + 3600
    [send] = server.receive(msg, decoded(msg), later).sends
    answer, _ = decode_command(Price, send.command_id, send.payload, from_server=True)
    assert PriceEvent.from_fields(answer) == price(10, start=NOW, minutes=120)
    assert int(answer.current_time) == later
    client = PriceClientProtocol()
    reply = frame(send.command_id, send.payload, from_server=True)
    client.receive(reply, decoded(reply), later)
    assert client.schedule.current(NOW + 7199) is not None
    assert client.schedule.current(NOW + 7200) is None  # ends with the server's


def test_server_keeps_an_until_changed_price_until_changed_when_resending_it() -> None:
    server = server_with(price(7))  # start now, 0xFFFF
    [send] = server.receive(ALL_SCHEDULED, decoded(ALL_SCHEDULED), NOW + 86_400).sends
    answer, _ = decode_command(Price, send.command_id, send.payload, from_server=True)
    assert (int(answer.start_time), int(answer.duration_in_minutes)) == (NOW, 0xFFFF)


def test_a_price_re_sent_with_its_absolute_start_is_a_repeat_to_the_client() -> None:
    client = PriceClientProtocol()
    assert client.schedule.add(price(7), NOW)
    assert not client.schedule.add(price(7, start=NOW), NOW + 3600)
    assert client.schedule.current(NOW + 3600) == price(7)


@pytest.mark.parametrize(("options", "rx_on"), [(0x01, True), (0x00, False)])
def test_server_hears_whether_the_requestor_is_rx_on_when_idle(options: int, rx_on: bool) -> None:
    """D.4.2.3.1.1: the requestor's "Rx On When Idle" bit is the server application's, for
    its publishing policy: every Get Current Price is an event, answered or not."""
    msg = server_command("get_current_price", command_options=options)
    requested = CurrentPriceRequested(source_nwk=0x1234, source_ieee=IEEE, rx_on_when_idle=rx_on)
    assert server_with(price(7)).receive(msg, decoded(msg), NOW).events == (requested,)
    assert server_with().receive(msg, decoded(msg), NOW) == Step(
        events=(requested,), status=NOT_FOUND
    )


def test_server_takes_a_price_acknowledgement_as_an_event_and_success() -> None:
    msg = server_command(
        "price_acknowledgement",
        provider_id=1,
        issuer_event_id=8,
        price_ack_time=NOW - 2,
        control=0x01,
    )
    step = server_with(price(8)).receive(msg, decoded(msg), NOW)
    acknowledged = PriceAcknowledged(
        source_nwk=0x1234, source_ieee=IEEE, provider_id=1, issuer_event_id=8, ack_time=NOW - 2
    )
    assert step == Step(events=(acknowledged,), status=SUCCESS)


@pytest.mark.parametrize(
    ("msg", "expected"),
    [
        (frame(PUBLISH, from_server=True), Step()),  # another server's frame: no answer at all
        (frame(0x11), Step(status=UNSUPPORTED)),  # a command the wire does not declare
    ],
)
def test_server_leaves_alone_what_is_not_a_request_to_it(msg: ZclMessage, expected: Step) -> None:
    server = server_with(price(7))
    assert server.receive(msg, None, NOW) == expected


def test_server_refuses_a_server_frame_before_decoding_and_reads_a_client_one() -> None:
    server = PriceServerProtocol()
    assert server.screen(frame(PUBLISH, from_server=True)) == Step()
    assert server.screen(GET_CURRENT_PRICE) is None


# -- the server: what the application asks --------------------------------------------------------


@pytest.mark.parametrize(
    "to",
    [Destination.device(0x1234, 1), Destination.group(0x0E00), Destination.broadcast(), None],
)
def test_server_publish_records_the_price_and_sends_it_where_asked(to: Destination | None) -> None:
    server = PriceServerProtocol()
    step = server.publish(price(9), NOW, to)
    assert step == Step(sends=published(price(9), to=to) if to is not None else ())
    assert server.schedule.current(NOW) == price(9)


def test_a_price_that_cannot_be_encoded_is_not_kept() -> None:
    """The server recorded a price before encoding it: a publish that raised left it in
    force and every Get Current Price raised from then on. Encoded first, it is not kept."""
    broken = price(9, price_ratio=0xFF)
    object.__setattr__(broken, "price_ratio", None)  # past the checks: a gap in the trailers
    object.__setattr__(broken, "price_control", 0x01)
    server = PriceServerProtocol()
    with pytest.raises(ValueError, match="positional"):
        server.publish(broken, NOW, Destination.broadcast())
    assert server.schedule.current(NOW) is None
    assert server.receive(GET_CURRENT_PRICE, decoded(GET_CURRENT_PRICE), NOW).status == NOT_FOUND


def test_the_publish_price_payload_carries_the_current_time() -> None:
    (send,) = published(price(9), to=Destination.group(1))
    command, rest = decode_command(Price, PUBLISH, send.payload, from_server=True)
    assert rest == b""
    assert int(command.current_time) == NOW
    assert PriceEvent.from_fields(command) == price(9)


# -- the client: each received command -----------------------------------------------------------


def ack_to_sender(event: PriceEvent) -> Send:
    schema = Price.ServerCommandDefs.price_acknowledgement.schema
    payload = encode_command(
        schema(
            provider_id=event.provider_id,
            issuer_event_id=event.issuer_event_id,
            price_ack_time=NOW,
            control=0x01,
        )
    )
    return Send(
        cluster_id=PRICE,
        command_id=ACKNOWLEDGE,
        payload=payload,
        to=Destination.device(0x1234, 1),
    )


ACKED = price(8, **ASKS_ACK)


@pytest.mark.parametrize(
    ("msg", "sends"),
    [
        (publish_frame(price(8)), ()),  # Price Control absent: no acknowledgement
        (publish_frame(price(8, **{**ASKS_ACK, "price_control": 0})), ()),
        (publish_frame(ACKED), (ack_to_sender(ACKED),)),  # unicast, bit 0 set
        (publish_frame(ACKED, group=0x0E00), (ack_to_sender(ACKED),)),  # a group frame too
        (publish_frame(ACKED, broadcast=True), (ack_to_sender(ACKED),)),  # and a broadcast
    ],
)
def test_client_records_publish_price_and_acknowledges_when_asked(
    msg: ZclMessage, sends: tuple[Send, ...]
) -> None:
    client = PriceClientProtocol()
    step = client.receive(msg, decoded(msg), NOW)
    event = PriceEvent.from_fields(decoded(msg))
    assert step == Step(
        sends=sends, events=(PriceReceived(source_nwk=0x1234, price=event, new=True),)
    )
    assert client.schedule.current(NOW) == event


def test_client_tells_a_repeat_from_a_new_price() -> None:
    client = PriceClientProtocol()
    msg = publish_frame(price(8))
    client.receive(msg, decoded(msg), NOW)
    (event,) = client.receive(msg, decoded(msg), NOW + 1).events
    assert event == PriceReceived(source_nwk=0x1234, price=price(8), new=False)


@pytest.mark.parametrize(
    "msg",
    [
        frame(PUBLISH, from_server=False),  # a client's frame
        frame(0x0F, from_server=True),  # a server command SE 1.2 does not define
        GET_CURRENT_PRICE,
    ],
)
def test_client_refuses_all_but_a_servers_publish_price(msg: ZclMessage) -> None:
    client = PriceClientProtocol()
    assert client.screen(msg) == Step(status=UNSUPPORTED)
    assert client.receive(msg, None, NOW) == Step(status=UNSUPPORTED)
    assert len(client.schedule) == 0


def test_client_refuses_a_publish_price_whose_values_do_not_fit_as_malformed() -> None:
    fields = price(8).to_fields(NOW) | {"rate_label": b"L" * 13}  # at most 12 (D.4.2.4.1.1.2)
    payload = encode_command(Price.ClientCommandDefs.publish_price.schema(**fields))
    msg = frame(PUBLISH, payload, from_server=True)
    client = PriceClientProtocol()
    assert client.receive(msg, decoded(msg), NOW) == Step(status=MALFORMED)
    assert len(client.schedule) == 0


# -- the client: what the application asks ------------------------------------------------------


def test_client_get_current_price_goes_to_the_server_saying_its_receiver_is_on() -> None:
    server = Destination.device(0x0000, 9)
    assert PriceClientProtocol().get_current_price(server) == Send(
        cluster_id=PRICE, command_id=GET_CURRENT, payload=b"\x01", to=server
    )


def test_a_sleepy_client_says_its_receiver_is_off_when_idle() -> None:
    """D.4.2.3.1.1: bit 0 is 1 only if the requestor's receiver is on when idle; a sleepy
    end device clears it."""
    server = Destination.device(0x0000, 9)
    assert PriceClientProtocol(rx_on_when_idle=False).get_current_price(server) == Send(
        cluster_id=PRICE, command_id=GET_CURRENT, payload=b"\x00", to=server
    )


# -- no timer; the shell's decoding ---------------------------------------------------------------


@pytest.mark.parametrize("core", [PriceServerProtocol(), PriceClientProtocol()])
def test_price_has_nothing_timed(core: PriceServerProtocol | PriceClientProtocol) -> None:
    assert core.next_deadline() is None
    assert core.handle_timeout(NOW) == Step()


@pytest.mark.parametrize(
    ("core", "msg"),
    [
        (PriceServerProtocol(), frame(GET_SCHEDULED, b"\x01")),  # start time cut short
        (PriceClientProtocol(), frame(PUBLISH, b"\x01\x00", from_server=True)),
    ],
)
def test_the_shell_answers_a_payload_that_does_not_decode_as_malformed(
    core: PriceServerProtocol | PriceClientProtocol, msg: ZclMessage
) -> None:
    assert _step(core, msg, lambda: NOW) == Step(status=MALFORMED)


def test_the_shell_answers_a_command_price_does_not_define_as_unsupported() -> None:
    """ZCL 2.5.12: no such command is UNSUP_CLUSTER_COMMAND, not a malformed one."""
    step = _step(PriceServerProtocol(), frame(0x11), lambda: NOW)
    assert step == Step(status=foundation.Status.UNSUP_CLUSTER_COMMAND)


# -- the shells: Rx On When Idle over the air ------------------------------------------------------


class _Port:
    """Just enough of a ZclPort for the Price shells: replies are kept."""

    endpoint_id = 9

    def __init__(self) -> None:
        self.replies: list[tuple[int, bytes]] = []

    def add_handler(self, cluster_id: int, handler: Any) -> None:
        pass

    async def reply(self, request: ZclMessage, command_id: int, payload: bytes, **_: Any) -> None:
        self.replies.append((command_id, payload))


@pytest.mark.parametrize("rx_on_when_idle", [True, False])
async def test_the_esi_application_hears_whether_the_asking_device_sleeps(
    rx_on_when_idle: bool,
) -> None:
    """PriceClient(rx_on_when_idle=...) -> Get Current Price bit 0 -> PriceServer.on_request
    (D.4.2.3.1.1); on_event keeps hearing only Price Acknowledgements."""
    client = PriceClient(_Port(), server_ep=9, rx_on_when_idle=rx_on_when_idle)  # type: ignore[arg-type]
    asked = client.protocol.get_current_price(Destination.device(0x0000, 9))
    port = _Port()
    server = PriceServer(port, clock=lambda: NOW)  # type: ignore[arg-type]
    requests: list[CurrentPriceRequested] = []
    acknowledged: list[PriceAcknowledged] = []
    server.on_request(requests.append)
    server.on_event(acknowledged.append)
    await server.publish(price(7))
    assert await server._on_message(frame(GET_CURRENT, asked.payload)) is None  # answered
    assert port.replies == [(PUBLISH, publish_price_payload(price(7, start=NOW), NOW))]
    assert requests == [
        CurrentPriceRequested(source_nwk=0x1234, source_ieee=IEEE, rx_on_when_idle=rx_on_when_idle)
    ]
    assert acknowledged == []
