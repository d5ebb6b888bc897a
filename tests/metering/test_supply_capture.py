"""``zse capture`` decodes the SE 1.2 supply control commands of Metering (zse.metering.supply)
with their named fields, and names each command as tshark 4.0 does, neither reading a frame
as malformed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.capture.test_capture_se12 import Row, frame, tshark_commands, write
from tests.capture.tshark_view import zse_frames
from tests.metering.test_metering_wire import CASES
from zse.capture import KeyRing
from zse.capture.app import plain
from zse.metering.wire import Metering
from zse.se.ids import METERING
from zse.zcl.codec import decode_command, encode_command

SUPPLY = {"reset_load_limit_counter", "change_supply", "local_change_supply",
          "set_supply_status", "set_uncontrolled_flow_threshold",
          "supply_status_response"}  # fmt: skip


def rows() -> list[Row]:
    client = list(Metering.ClientCommandDefs)
    return [
        (METERING, d.id, d in client, encode_command(d.schema(**fields)))
        for d, fields, *_ in CASES
        if d.name in SUPPLY
    ]


@pytest.mark.oracle
def test_supply_commands_are_named_as_tshark_names_them_with_their_fields(tmp_path: Path) -> None:
    table = rows()
    assert len(table) == len(SUPPLY)
    capture = write(tmp_path, [frame(row, n) for n, row in enumerate(table)])
    decoded = zse_frames(capture, KeyRing())
    named = tshark_commands(capture)
    assert len(decoded) == len(named) == len(table)
    for got, (tshark_name, malformed), row in zip(decoded, named, table, strict=True):
        _, command_id, from_server, payload = row
        assert not malformed, hex(command_id)
        assert got.error is None, got.error
        command = got.command
        assert command is not None
        assert "malformed" not in command, command
        assert command["command"] == tshark_name, hex(command_id)
        assert command["command"] in SUPPLY
        message, _ = decode_command(Metering, command_id, payload, from_server=from_server)
        assert command["fields"] == plain(message)
        assert command["fields"]  # named fields, not bytes
