"""The Calendar cluster's wire (SE 1.2 D.9): ids and layouts as Wireshark 4.0 reads them, every
command zse encodes read back by tshark field by field, and garbage thrown at every decoder."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.calendar.tou import tou_calendar
from tests.clusters.se_frames import air_frame, dissect
from zse.calendar import CalendarHeader, CalendarPart, PartKind
from zse.calendar.wire import Calendar, ScheduleEntries, SeasonEntries
from zse.errors import DecodeError
from zse.se.ids import (
    CALENDAR,
    CalendarAttribute,
    CalendarClientCommand,
    CalendarServerCommand,
    aux_switch_label_attribute,
)
from zse.zcl.codec import decode_command, encode_command

NOW = 830_000_000
_PART_COMMANDS = {
    PartKind.DAY_PROFILE: Calendar.ClientCommandDefs.publish_day_profile,
    PartKind.WEEK_PROFILE: Calendar.ClientCommandDefs.publish_week_profile,
    PartKind.SEASONS: Calendar.ClientCommandDefs.publish_seasons,
    PartKind.SPECIAL_DAYS: Calendar.ClientCommandDefs.publish_special_days,
}


def part_payload(part: CalendarPart) -> tuple[int, bytes]:
    definition = _PART_COMMANDS[part.kind]
    return definition.id, encode_command(definition.schema(**part.to_fields()))


def request(name: str, **fields: Any) -> tuple[int, bytes]:
    definition = getattr(Calendar.ServerCommandDefs, name)
    return definition.id, encode_command(definition.schema(**fields))


def test_the_calendar_ids_are_wiresharks() -> None:
    assert CALENDAR == 0x0707
    assert list(CalendarServerCommand) == list(range(6))
    assert [c.name for c in CalendarClientCommand] == [
        "PUBLISH_CALENDAR",
        "PUBLISH_DAY_PROFILE",
        "PUBLISH_WEEK_PROFILE",
        "PUBLISH_SEASONS",
        "PUBLISH_SPECIAL_DAYS",
        "CANCEL_CALENDAR",
    ]
    assert list(CalendarClientCommand) == list(range(6))
    assert CalendarAttribute.AUX_SWITCH1_LABEL == 0
    assert [aux_switch_label_attribute(n) for n in (1, 8)] == [0x0000, 0x0007]
    with pytest.raises(ValueError, match="switch 9"):
        aux_switch_label_attribute(9)


def test_entries_round_trip_and_refuse_a_cut_entry() -> None:
    entries = ScheduleEntries([(0, 1), (1439, 48)])
    assert entries.serialize() == bytes((0, 0, 1, 0x9F, 0x05, 48))
    assert ScheduleEntries.deserialize(entries.serialize()) == (entries, b"")
    seasons = SeasonEntries([((126, 10, 1, 0xFF), 1)])
    assert SeasonEntries.deserialize(seasons.serialize()) == (seasons, b"")
    header = encode_command(
        Calendar.ClientCommandDefs.publish_day_profile.schema(
            **tou_calendar().day_parts()[0].to_fields()
        )
    )
    with pytest.raises(DecodeError, match=r"entries at byte offset 17 .*whole number"):
        decode_command(
            Calendar, CalendarClientCommand.PUBLISH_DAY_PROFILE, header[:-1], from_server=True
        )


@pytest.mark.oracle
def test_tshark_reads_every_calendar_command_zse_encodes(tmp_path) -> None:
    """Field by field: the six publications and the six requests."""
    calendar = tou_calendar(start_time=NOW)
    header = calendar.header()
    sends = [
        (
            CalendarClientCommand.PUBLISH_CALENDAR,
            encode_command(
                Calendar.ClientCommandDefs.publish_calendar.schema(**header.to_fields())
            ),
        ),
        part_payload(calendar.day_parts()[0]),
        part_payload(calendar.week_parts()[1]),
        part_payload(calendar.season_parts()[0]),
        part_payload(calendar.special_day_parts()[0]),
        (
            CalendarClientCommand.CANCEL_CALENDAR,
            encode_command(
                Calendar.ClientCommandDefs.cancel_calendar.schema(
                    provider_id=5, issuer_calendar_id=40, calendar_type=4
                )
            ),
        ),
    ]
    requests = [
        request(
            "get_calendar",
            earliest_start_time=NOW,
            min_issuer_event_id=0xFFFFFFFF,
            number_of_calendars=2,
            calendar_type=3,
            provider_id=5,
        ),
        request(
            "get_day_profiles",
            provider_id=5,
            issuer_calendar_id=40,
            start_day_id=2,
            number_of_days=3,
        ),
        request(
            "get_week_profiles",
            provider_id=5,
            issuer_calendar_id=40,
            start_week_id=1,
            number_of_weeks=0,
        ),
        request("get_seasons", provider_id=5, issuer_calendar_id=40),
        request(
            "get_special_days",
            start_time=NOW,
            number_of_events=4,
            calendar_type=1,
            provider_id=5,
            issuer_calendar_id=40,
        ),
        request("get_calendar_cancellation"),
    ]
    frames = [
        air_frame(CALENDAR, bytes((0x19 if n < len(sends) else 0x11, n, cid)) + payload, n + 1)
        for n, (cid, payload) in enumerate([*sends, *requests])
    ]
    packets = dissect(frames, tmp_path)
    assert not any(packet.malformed for packet in packets)
    publish, day, week, seasons, special, cancel, *asks = packets

    def shown(packet: Any, name: str) -> list[str]:
        return packet.show(f"zbee_zcl_se.calendar.{name}")

    assert shown(publish, "cmd.srv_tx.id") == ["0x00"]
    assert shown(publish, "provider_id") == ["5"]
    assert shown(publish, "issuer_event_id") == ["300"]
    assert shown(publish, "issuer_calendar_id") == ["40"]
    assert "2026" in shown(publish, "start_time")[0]
    assert shown(publish, "type") == ["0x00"]
    assert shown(publish, "time_reference") == ["0x02"]
    assert shown(publish, "name") == ["GB TOU"]
    assert shown(publish, "number_of_seasons") == ["2"]
    assert shown(publish, "number_of_week_profiles") == ["2"]
    assert shown(publish, "number_of_day_profiles") == ["4"]

    assert shown(day, "cmd.srv_tx.id") == ["0x01"]
    assert shown(day, "day_id") == ["1"]
    assert shown(day, "total_number_of_schedule_entries") == ["5"]
    assert shown(day, "command_index") == ["0"]
    assert shown(day, "total_number_of_commands") == ["1"]
    assert shown(day, "type") == ["0x00"]
    assert shown(day, "schedule_entry.start_time") == ["0", "420", "960", "1140", "1380"]
    assert shown(day, "schedule_entry.price_tier") == ["1", "2", "3", "2", "1"]

    assert shown(week, "cmd.srv_tx.id") == ["0x02"]
    assert shown(week, "week_id") == ["2"]
    days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    assert [shown(week, f"day_id_ref_{d}")[0] for d in days] == ["3"] * 5 + ["2"] * 2

    assert shown(seasons, "cmd.srv_tx.id") == ["0x03"]
    assert shown(seasons, "total_number_of_commands") == ["1"]
    assert shown(seasons, "date.month") == ["4", "10"]
    assert shown(seasons, "date.month_day") == ["1", "1"]
    assert shown(seasons, "week_id_ref") == ["2", "1"]

    assert shown(special, "cmd.srv_tx.id") == ["0x04"]
    assert shown(special, "type") == ["0x00"]
    assert shown(special, "total_number_of_special_days") == ["2"]
    assert shown(special, "date.year") == ["2155", "2026"]  # 0xFF + 1900: "any year"
    assert shown(special, "date.month") == ["12", "6"]
    assert shown(special, "day_id_ref") == ["2", "4"]

    assert shown(cancel, "cmd.srv_tx.id") == ["0x05"]
    assert shown(cancel, "issuer_calendar_id") == ["40"]
    assert shown(cancel, "type") == ["0x04"]

    get_calendar, get_days, get_weeks, get_seasons, get_special, get_cancel = asks
    assert shown(get_calendar, "cmd.srv_rx.id") == ["0x00"]
    assert shown(get_calendar, "min_issuer_event_id") == ["4294967295"]
    assert shown(get_calendar, "number_of_calendars") == ["2"]
    assert shown(get_calendar, "type") == ["0x03"]
    assert shown(get_calendar, "provider_id") == ["5"]
    assert shown(get_days, "start_day_id") == ["2"]
    assert shown(get_days, "number_of_days") == ["3"]
    assert shown(get_weeks, "start_week_id") == ["1"]
    assert shown(get_weeks, "number_of_weeks") == ["0"]
    assert shown(get_seasons, "cmd.srv_rx.id") == ["0x03"]
    assert shown(get_seasons, "issuer_calendar_id") == ["40"]
    assert shown(get_special, "number_of_events") == ["4"]
    assert shown(get_special, "type") == ["0x01"]
    assert shown(get_special, "issuer_calendar_id") == ["40"]
    assert shown(get_cancel, "cmd.srv_rx.id") == ["0x05"]


@pytest.mark.oracle
def test_tshark_reads_friendly_credit_and_aux_switch_entries(tmp_path) -> None:
    """A schedule entry's value is read as the calendar type says."""
    frames = []
    for n, kind in enumerate((3, 4)):
        part = tou_calendar(calendar_type=kind).day_parts()[0]
        cid, payload = part_payload(part)
        frames.append(air_frame(CALENDAR, bytes((0x19, n, cid)) + payload, n + 1))
    credit, aux = dissect(frames, tmp_path)
    field = "zbee_zcl_se.calendar.schedule_entry."
    assert credit.raw(field + "friendly_credit_enable") == ["01", "02", "03", "02", "01"]
    assert aux.show(field + "auxiliary_load_switch_state") == [
        "0x01",
        "0x02",
        "0x03",
        "0x02",
        "0x01",
    ]


@given(
    st.sampled_from(
        [(c, True) for c in CalendarClientCommand] + [(c, False) for c in CalendarServerCommand]
    ),
    st.binary(max_size=90),
)
def test_garbage_calendar_commands_give_only_decode_errors(
    command: tuple[int, bool], data: bytes
) -> None:
    """Every decoder (the wire's and the core's parts and header) raises nothing but the
    DecodeError family on any payload."""
    command_id, from_server = command
    kinds = {
        CalendarClientCommand.PUBLISH_DAY_PROFILE: PartKind.DAY_PROFILE,
        CalendarClientCommand.PUBLISH_WEEK_PROFILE: PartKind.WEEK_PROFILE,
        CalendarClientCommand.PUBLISH_SEASONS: PartKind.SEASONS,
        CalendarClientCommand.PUBLISH_SPECIAL_DAYS: PartKind.SPECIAL_DAYS,
    }
    try:
        decoded, _ = decode_command(Calendar, command_id, data, from_server=from_server)
        if from_server and command_id in kinds:
            CalendarPart.from_fields(kinds[CalendarClientCommand(command_id)], decoded)
        elif from_server and command_id == CalendarClientCommand.PUBLISH_CALENDAR:
            CalendarHeader.from_fields(decoded)
    except DecodeError:
        pass
