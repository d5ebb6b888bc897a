"""The Calendar protocol cores (SE 1.2 D.9) at the ZCL frame, no event loop: the ESI publishes
and answers the Get commands, a display puts calendars together, asks again for what it lost,
is told when the tier changes, and answers every frame with a Step (a status, never a crash)."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from zigpy.zcl import foundation

from tests.calendar.tou import LONDON_2026, tou_calendar, utc
from tests.price.test_price_protocol import frame
from zse.calendar import CalendarCancellation, CalendarSchedule
from zse.calendar.core import Calendars
from zse.calendar.protocol import (
    CalendarCancelled,
    CalendarChanged,
    CalendarClientProtocol,
    CalendarReceived,
    CalendarServerProtocol,
)
from zse.calendar.service import _step
from zse.calendar.wire import Calendar
from zse.se.ids import CALENDAR, CalendarClientCommand, CalendarServerCommand
from zse.zcl.codec import encode_command
from zse.zcl.delivery import Destination
from zse.zcl.frame import Send, Step, ZclMessage

NOW = utc(2026, 1, 14, 12)  # a winter Wednesday, day rate
DISPLAY = Destination.device(0x1234, 1)
SERVER = Destination.device(0x0000, 9)
Status = foundation.Status


def message(command_id: int, payload: bytes = b"", *, from_server: bool = False) -> ZclMessage:
    return dataclasses.replace(
        frame(command_id, payload, from_server=from_server), cluster_id=CALENDAR
    )


def as_received(send: Send) -> ZclMessage:
    return message(send.command_id, send.payload, from_server=True)


def as_asked(send: Send) -> ZclMessage:
    return message(send.command_id, send.payload)


def deliver(client: CalendarClientProtocol, sends: tuple[Send, ...], now: int = NOW) -> list[Step]:
    return [_step(client, as_received(send), lambda: now) for send in sends]


def ask(server: CalendarServerProtocol, send: Send, now: int = NOW) -> Step:
    return _step(server, as_asked(send), lambda: now)


def get(name: str, **fields: Any) -> ZclMessage:
    definition = getattr(Calendar.ServerCommandDefs, name)
    return message(definition.id, encode_command(definition.schema(**fields)))


def display() -> CalendarClientProtocol:
    client = CalendarClientProtocol()
    client.zone = LONDON_2026
    return client


def published(calendar: CalendarSchedule | None = None) -> tuple[CalendarServerProtocol, Step]:
    server = CalendarServerProtocol()
    return server, server.publish(calendar or tou_calendar(), NOW, DISPLAY)


def test_a_published_calendar_reaches_the_display_whole_and_it_knows_the_tier() -> None:
    _, step = published()
    client = display()
    steps = deliver(client, step.sends)
    assert all(s.status is None for s in steps)
    events = [e for s in steps for e in s.events]
    received = [e for e in events if isinstance(e, CalendarReceived)]
    assert [e.calendar for e in received] == [tou_calendar().with_start(NOW)]
    changed = [e for e in events if isinstance(e, CalendarChanged)]
    assert [(c.reading.price_tier, c.reading.changes_at) for c in changed] == [
        (2, utc(2026, 1, 14, 16))
    ]
    assert client.next_deadline() == utc(2026, 1, 14, 16)
    peak = client.handle_timeout(utc(2026, 1, 14, 16))
    assert [e.reading.price_tier for e in peak.events] == [3]
    assert client.next_deadline() == utc(2026, 1, 14, 19)
    assert client.handle_timeout(utc(2026, 1, 14, 16, 0, 1)).events == ()


def test_a_display_that_lost_parts_asks_again_and_gets_the_calendar() -> None:
    server, step = published()
    client = display()
    kept = [s for s in step.sends if s.command_id != CalendarClientCommand.PUBLISH_DAY_PROFILE]
    kept += [s for s in step.sends if s.command_id == CalendarClientCommand.PUBLISH_DAY_PROFILE][
        :2
    ]  # days 1 and 2 only; 3 and the two commands of 4 lost
    kept = [s for s in kept if s.command_id != CalendarClientCommand.PUBLISH_SEASONS]
    deliver(client, tuple(kept))
    assert client.at(NOW) is None
    asks = client.ask_missing(SERVER, NOW)
    assert [a.command_id for a in asks] == [
        CalendarServerCommand.GET_SEASONS,
        CalendarServerCommand.GET_DAY_PROFILES,
        CalendarServerCommand.GET_SPECIAL_DAYS,
    ]
    answers = [s for a in asks for s in ask(server, a).sends]
    events = [e for s in deliver(client, tuple(answers)) for e in s.events]
    assert any(isinstance(e, CalendarReceived) for e in events)
    reading = client.at(NOW)
    assert reading is not None
    assert reading.price_tier == 2
    assert client.ask_missing(SERVER, NOW) == ()


def test_a_display_that_joins_later_gets_every_calendar_by_asking() -> None:
    """Get Calendar answers the headers; the display asks for the rest."""
    server, _ = published()
    server.publish(tou_calendar(calendar_type=3, issuer_calendar_id=41), NOW)
    client = display()
    answers = ask(server, client.get_calendar(SERVER)).sends
    assert [a.command_id for a in answers] == [CalendarClientCommand.PUBLISH_CALENDAR] * 2
    deliver(client, answers)
    for _ in range(2):
        replies = [s for a in client.ask_missing(SERVER, NOW) for s in ask(server, a).sends]
        deliver(client, tuple(replies))
    assert client.at(NOW, 0) is not None
    credit = client.at(NOW, 3)
    assert credit is not None
    assert credit.friendly_credit is True


def test_get_calendar_filters_and_not_found() -> None:
    server, _ = published()
    later = tou_calendar(issuer_calendar_id=41, issuer_event_id=400, start_time=NOW + 3600)
    server.publish(later, NOW)

    def headers(**fields: Any) -> list[int] | Status | None:
        step = _step(server, get("get_calendar", **fields), lambda: NOW)
        if step.status is not None:
            return step.status
        return [int.from_bytes(s.payload[8:12], "little") for s in step.sends]

    every = {"earliest_start_time": 0, "min_issuer_event_id": 0xFFFFFFFF}
    assert headers(**every, number_of_calendars=0, calendar_type=0xFF, provider_id=5) == [40, 41]
    assert headers(**every, number_of_calendars=1, calendar_type=0, provider_id=5) == [40]
    assert headers(**every, number_of_calendars=0, calendar_type=0xFF, provider_id=0xFFFFFFFF) == [
        40,
        41,
    ]
    assert headers(
        earliest_start_time=0,
        min_issuer_event_id=350,
        number_of_calendars=0,
        calendar_type=0,
        provider_id=5,
    ) == [41]
    assert (
        headers(**every, number_of_calendars=0, calendar_type=0, provider_id=6) == Status.NOT_FOUND
    )
    unknown = get("get_seasons", provider_id=5, issuer_calendar_id=99)
    assert _step(server, unknown, lambda: NOW).status == Status.NOT_FOUND
    weeks = get(
        "get_week_profiles",
        provider_id=5,
        issuer_calendar_id=40,
        start_week_id=2,
        number_of_weeks=0,
    )
    answered = _step(server, weeks, lambda: NOW).sends
    assert [s.payload[12] for s in answered] == [2]
    special = get(
        "get_special_days",
        start_time=0,
        number_of_events=0,
        calendar_type=0xFF,
        provider_id=5,
        issuer_calendar_id=0,
    )
    assert len(_step(server, special, lambda: NOW).sends) == 2  # each calendar's one command
    friendly = tou_calendar(issuer_calendar_id=42, issuer_event_id=500, calendar_type=3)
    server.publish(friendly, NOW)  # a Friendly Credit calendar: asked for by its type only
    assert headers(**every, number_of_calendars=0, calendar_type=0, provider_id=5) == [40, 41]
    assert headers(**every, number_of_calendars=0, calendar_type=3, provider_id=5) == [42]
    assert headers(**every, number_of_calendars=0, calendar_type=1, provider_id=5) == (
        Status.NOT_FOUND
    )


def test_cancel_calendar_on_both_sides() -> None:
    server, step = published()
    client = display()
    deliver(client, step.sends)
    assert _step(server, get("get_calendar_cancellation"), lambda: NOW).status == Status.NOT_FOUND
    cancellation = CalendarCancellation(provider_id=5, issuer_calendar_id=40, calendar_type=0)
    cancel = server.cancel(cancellation, NOW, DISPLAY)
    assert server.calendars.current(NOW) is None
    (told,) = deliver(client, cancel.sends)
    assert told.events == (CalendarCancelled(0x1234, cancellation, True),)
    assert client.at(NOW) is None
    again = _step(server, get("get_calendar_cancellation"), lambda: NOW)
    (twice,) = deliver(client, again.sends)
    assert twice.status == Status.NOT_FOUND


def test_parts_not_kept_get_prices_statuses() -> None:
    _, step = published()
    day = next(s for s in step.sends if s.command_id == CalendarClientCommand.PUBLISH_DAY_PROFILE)
    client = display()
    (unknown,) = deliver(client, (day,))
    assert unknown.status == Status.NOT_FOUND
    deliver(client, step.sends[:1])
    deliver(client, (day,))
    (repeat,) = deliver(client, (day,))
    assert repeat.status == Status.DUPLICATE_EXISTS
    wrong = dataclasses.replace(day, payload=day.payload[:12] + bytes((9,)) + day.payload[13:])
    (stray,) = deliver(client, (wrong,))
    assert stray.status == Status.INVALID_FIELD


def test_what_a_side_does_not_take_is_refused() -> None:
    server, step = published()
    client = display()
    assert (
        _step(client, as_asked(step.sends[0]), lambda: NOW).status == Status.UNSUP_CLUSTER_COMMAND
    )
    assert _step(server, as_received(step.sends[0]), lambda: NOW) == Step()
    assert _step(server, message(0x06), lambda: NOW).status == Status.UNSUP_CLUSTER_COMMAND
    assert _step(client, message(0x06, from_server=True), lambda: NOW).status == (
        Status.UNSUP_CLUSTER_COMMAND
    )
    short = message(CalendarServerCommand.GET_SEASONS, b"\x05\x00")
    assert _step(server, short, lambda: NOW).status == Status.MALFORMED_COMMAND
    long_name = message(
        CalendarClientCommand.PUBLISH_CALENDAR,
        step.sends[0].payload[:18] + bytes((13,)) + b"x" * 13 + b"\x00\x00\x00",
        from_server=True,
    )
    assert _step(client, long_name, lambda: NOW).status == Status.MALFORMED_COMMAND


def test_a_flood_of_calendars_never_finished_leaves_room_for_the_esi_s_next_one() -> None:
    """Publish Calendar after Publish Calendar, each announcing parts that never come: what
    the display holds stays bounded (the calendars waiting, and those it would ask special
    days for), and the ESI's calendar sent afterwards is put together and in force."""
    client = CalendarClientProtocol(Calendars(pending_limit=60))
    client.zone = LONDON_2026
    server = CalendarServerProtocol()
    for n in range(500):
        stray = dataclasses.replace(tou_calendar(), issuer_calendar_id=1000 + n)
        deliver(client, server.publish(stray, NOW, DISPLAY).sends[:1])
    assert client.calendars.pending() <= 60
    assert len(client._headed) <= 60
    steps = deliver(client, published()[1].sends)
    assert [e for e in steps[-1].events if isinstance(e, CalendarReceived)]
    assert client.at(NOW) is not None


@given(
    st.sampled_from([(c, True) for c in range(7)] + [(c, False) for c in range(7)]),
    st.binary(max_size=90),
)
def test_garbage_frames_get_a_step_from_both_sides(command: tuple[int, bool], data: bytes) -> None:
    command_id, from_server = command
    _, step = published()
    client = display()
    deliver(client, step.sends[:1])  # a calendar being put together: parts reach the store
    server, _ = published()
    for side in (client, server):
        result = _step(side, message(command_id, data, from_server=from_server), lambda: NOW)
        assert isinstance(result, Step)
