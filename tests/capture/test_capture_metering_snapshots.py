"""``zse capture`` decodes the SE 1.2 Metering snapshot and sampling commands with zse's wire:
each command of the Metering wire test's cases for this group, written to one capture, is
named as tshark 4.0 names it, neither reads one as malformed, and zse's fields are the
fields encoded."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.capture.test_capture_se12 import frame, tshark_commands, write
from tests.capture.tshark_view import zse_frames
from tests.metering.test_metering_wire import CASES, CLIENT
from zse.capture import KeyRing
from zse.capture.app import plain
from zse.metering.wire import Metering
from zse.se.ids import METERING
from zse.zcl.codec import decode_command, encode_command

#: The commands of the group, by their ids (server receives 0x04-0x08; sends 0x04-0x07, 0x0D).
GROUP = {
    (False, 0x04),
    (False, 0x05),
    (False, 0x06),
    (False, 0x07),
    (False, 0x08),
    (True, 0x04),
    (True, 0x05),
    (True, 0x06),
    (True, 0x07),
    (True, 0x0D),
}


@pytest.mark.oracle
def test_snapshot_and_sampling_commands_are_named_as_tshark_names_them(tmp_path: Path) -> None:
    rows = [
        (METERING, d.id, d in CLIENT, encode_command(d.schema(**fields)))
        for d, fields, *_ in CASES
        if (d in CLIENT, d.id) in GROUP
    ]
    assert {(row[2], row[1]) for row in rows} == GROUP
    capture = write(tmp_path, [frame(row, n) for n, row in enumerate(rows)])
    decoded = zse_frames(capture, KeyRing())
    named = tshark_commands(capture)
    assert len(decoded) == len(named) == len(rows)
    for got, (tshark_name, malformed), row in zip(decoded, named, rows, strict=True):
        _, command_id, from_server, payload = row
        assert not malformed, hex(command_id)
        assert got.error is None, got.error
        command = got.command
        assert command is not None
        assert "malformed" not in command, command
        assert command["command"] == tshark_name, hex(command_id)
        message, _ = decode_command(Metering, command_id, payload, from_server=from_server)
        assert command["fields"] == plain(message)
