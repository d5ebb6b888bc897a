"""``zse capture`` decodes SE 1.2's Prepayment, Calendar, Device Management and Events
commands (D.7, D.9, D.10, D.11) with zse's wire, and keeps their secrets as it keeps keys:

- every command of the four clusters' wire tests, written to one capture: tshark 4.0 names
  each frame's command as zse does, neither reads one as malformed, and zse's fields are the
  fields encoded;
- a top-up code (Consumer Top Up, Publish Top Up Log, the Top Up Code attributes) shows only
  its last 4 characters, a password (Request New Password Response) is ``(hidden)``; both
  whole with ``--show-keys``.
"""

from __future__ import annotations

import json
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.calendar.test_calendar_wire import NOW, part_payload, request
from tests.calendar.tou import tou_calendar
from tests.capture.tshark_view import zse_frames
from tests.clusters.se_frames import air_frame, zcl_frame
from tests.devmgmt import test_devmgmt_wire as devmgmt_wire
from tests.events import test_events_wire as events_wire
from tests.oracles import require
from tests.prepayment import test_prepayment_wire as prepayment_wire
from zse.calendar.wire import Calendar
from zse.capture import KeyRing, as_json, as_line
from zse.capture.app import plain
from zse.cli import main
from zse.devmgmt.wire import DeviceManagement
from zse.events.wire import Events
from zse.pcap import PcapWriter
from zse.prepayment.wire import Prepayment
from zse.se.ids import CALENDAR, DEVICE_MANAGEMENT_CLUSTER, EVENTS, PREPAYMENT
from zse.zcl.codec import decode_command, encode_command

CLUSTERS = {
    PREPAYMENT: Prepayment,
    CALENDAR: Calendar,
    DEVICE_MANAGEMENT_CLUSTER: DeviceManagement,
    EVENTS: Events,
}
#: (cluster id, command id, sent by the server, payload)
Row = tuple[int, int, bool, bytes]


def _calendar_rows() -> list[Row]:
    calendar = tou_calendar(start_time=NOW)
    header = Calendar.ClientCommandDefs.publish_calendar.schema(**calendar.header().to_fields())
    cancel = Calendar.ClientCommandDefs.cancel_calendar.schema(
        provider_id=5, issuer_calendar_id=40, calendar_type=4
    )
    sent = [
        (Calendar.ClientCommandDefs.publish_calendar.id, encode_command(header)),
        part_payload(calendar.day_parts()[0]),
        part_payload(calendar.week_parts()[1]),
        part_payload(calendar.season_parts()[0]),
        part_payload(calendar.special_day_parts()[0]),
        (Calendar.ClientCommandDefs.cancel_calendar.id, encode_command(cancel)),
    ]
    asked = [
        request("get_calendar", earliest_start_time=NOW, min_issuer_event_id=0xFFFFFFFF,
                number_of_calendars=2, calendar_type=3, provider_id=5),
        request("get_day_profiles", provider_id=5, issuer_calendar_id=40, start_day_id=2,
                number_of_days=3),
        request("get_week_profiles", provider_id=5, issuer_calendar_id=40, start_week_id=1,
                number_of_weeks=0),
        request("get_seasons", provider_id=5, issuer_calendar_id=40),
        request("get_special_days", start_time=NOW, number_of_events=4, calendar_type=1,
                provider_id=5, issuer_calendar_id=40),
        request("get_calendar_cancellation"),
    ]  # fmt: skip
    return [(CALENDAR, cid, True, payload) for cid, payload in sent] + [
        (CALENDAR, cid, False, payload) for cid, payload in asked
    ]


def rows() -> list[Row]:
    """One frame of each command the four clusters' wire tests encode."""
    out: list[Row] = [
        (PREPAYMENT, command_id, from_server, prepayment_wire.encoded(command_id, from_server, f))
        for command_id, from_server, f, _ in prepayment_wire.COMMANDS
    ]
    for cluster_id, module in ((DEVICE_MANAGEMENT_CLUSTER, devmgmt_wire), (EVENTS, events_wire)):
        client = list(module.CLIENT)
        out += [
            (cluster_id, d.id, d in client, encode_command(d.schema(**fields)))
            for d, fields, *_ in module.CASES
        ]
    return out + _calendar_rows()


def write(tmp_path: Path, frames: list[bytes]) -> Path:
    capture = tmp_path / "se12.pcap"
    with PcapWriter(capture) as pcap:
        for index, frame in enumerate(frames):
            pcap.write(frame, float(index))
    return capture


def frame(row: Row, seq: int) -> bytes:
    cluster_id, command_id, from_server, payload = row
    zcl = zcl_frame(command_id, payload, from_server=from_server, tsn=seq)
    return air_frame(cluster_id, zcl, seq)


def tshark_commands(capture: Path) -> list[tuple[str | None, bool]]:
    """Per frame: the SE command tshark names (``Consumer Top Up`` as ``consumer_top_up``),
    and whether it found the frame malformed."""
    pdml = subprocess.run(
        [require("tshark"), "-r", str(capture), "-T", "pdml"],
        capture_output=True, check=True, text=True,
    ).stdout  # fmt: skip
    out = []
    for packet in ET.fromstring(pdml).iter("packet"):
        name = None
        malformed = False
        for field in packet.iter("field"):
            what = field.get("name", "")
            malformed |= what.startswith("_ws.malformed") or what == "_ws.expert"
            if re.fullmatch(r"zbee_zcl_se\.\w+\.cmd\.srv_(rx|tx)\.id", what):
                shown = field.get("showname", "")
                name = re.sub(r"^Command: | \(0x[0-9a-f]+\)$", "", shown).lower().replace(" ", "_")
        out.append((name, malformed))
    return out


@pytest.mark.oracle
def test_every_se12_command_is_named_as_tshark_names_it_with_its_fields(tmp_path: Path) -> None:
    table = rows()
    assert {cluster for cluster, *_ in table} == set(CLUSTERS)
    capture = write(tmp_path, [frame(row, n) for n, row in enumerate(table)])
    decoded = zse_frames(capture, KeyRing())
    named = tshark_commands(capture)
    assert len(decoded) == len(named) == len(table)
    for got, (tshark_name, malformed), row in zip(decoded, named, table, strict=True):
        cluster_id, command_id, from_server, payload = row
        assert not malformed, (hex(cluster_id), hex(command_id))
        assert got.error is None, got.error
        command = got.command
        assert command is not None
        assert "malformed" not in command, command
        assert command["cluster_id"] == f"0x{cluster_id:04x}"
        assert command["command"] == tshark_name, (hex(cluster_id), hex(command_id))
        message, _ = decode_command(
            CLUSTERS[cluster_id], command_id, payload, from_server=from_server
        )
        assert command["fields"] == plain(message)


def _secret_frames() -> list[bytes]:
    code = prepayment_wire.CODE.decode()
    top_up = next(r for r in prepayment_wire.COMMANDS if "top_up_code" in r[2])
    log = next(r for r in prepayment_wire.COMMANDS if "entries" in r[2] and r[1])
    password = next(c for c in devmgmt_wire.CASES if "password" in c[1])
    attribute = Prepayment.AttributeDefs.top_up_code_1.id
    read_response = (
        attribute.to_bytes(2, "little") + b"\x00\x41" + bytes((len(code),)) + code.encode()
    )
    rows: list[Row] = [
        (PREPAYMENT, top_up[0], False, prepayment_wire.encoded(*top_up[:3])),
        (PREPAYMENT, log[0], True, prepayment_wire.encoded(*log[:3])),
        (DEVICE_MANAGEMENT_CLUSTER, password[0].id, True,
         encode_command(password[0].schema(**password[1]))),
    ]  # fmt: skip
    frames = [frame(row, n) for n, row in enumerate(rows)]
    # Read Attributes Response (ZCL 2.5.2), a global command from the server
    read = bytes((0x18, 3, 0x01)) + read_response
    return [*frames, air_frame(PREPAYMENT, read, 3)]


def test_top_up_codes_show_their_last_four_digits_and_passwords_are_hidden(
    tmp_path: Path,
) -> None:
    capture = write(tmp_path, _secret_frames())
    top_up, log, password, attribute = zse_frames(capture, KeyRing())
    code = prepayment_wire.CODE.decode()
    masked = "*" * (len(code) - 4) + code[-4:]
    line = as_line(top_up)
    assert f"top_up_code={masked}" in line
    assert code not in line
    assert code in as_line(top_up, show_keys=True)
    fields: dict[str, Any] = json.loads(as_json(top_up))["command"]["fields"]
    assert fields["top_up_code"] == masked
    entries = json.loads(as_json(log))["command"]["fields"]["entries"]
    assert [e["top_up_code"] for e in entries] == ["7890", "1234"]  # 4 characters: all shown
    assert [e["top_up_amount"] for e in entries] == [2000, -5]
    assert "pw-12345" not in as_line(password) + as_json(password)
    assert json.loads(as_json(password))["command"]["fields"]["password"] == "(hidden)"
    assert "pw-12345" in as_line(password, show_keys=True)
    (record,) = json.loads(as_json(attribute))["command"]["fields"]["status_records"]
    assert record["attribute"] == "top_up_code_1"
    assert record["value"] == masked
    assert code in as_json(attribute, show_keys=True)


def test_the_cli_masks_a_top_up_code_unless_asked(tmp_path: Path) -> None:
    capture = write(tmp_path, _secret_frames()[:1])
    code = prepayment_wire.CODE.decode()
    hidden = CliRunner().invoke(main, ["capture", str(capture)])
    shown = CliRunner().invoke(main, ["capture", "--show-keys", str(capture)])
    assert hidden.exit_code == shown.exit_code == 0, hidden.output + shown.output
    assert code not in hidden.output
    assert code[-4:] in hidden.output
    assert code in shown.output
