"""A batch's entries hide the install codes of their payloads in their reprs (#12.23), as
:class:`~zse.mqtt.core.Provision` does: a :class:`~zse.mqtt.core.BatchEntry` holds the raw
JSON of its command, a provision's install code included."""

from __future__ import annotations

import json

from tests.security.test_security_secrets import assert_hidden
from zse.installcode import InstallCode
from zse.mqtt.core import parse_batch, parse_command

CODE = InstallCode.parse("83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5")
MAC = "00:0d:6f:00:0a:00:00:01"


def test_a_batched_provision_s_repr_shows_no_install_code() -> None:
    provision = {"command": "provision", "correlation_id": "p", "mac": MAC}
    body = {
        "correlation_id": "b-1",
        "commands": [{**provision, "install_code": CODE.grouped()}],
    }
    batch = parse_batch(json.dumps(body).encode())
    (entry,) = batch.entries
    assert CODE.grouped() in entry.payload.decode()  # carried as it came, for the bridge
    for text in (repr(entry), repr(batch), str(batch.entries)):
        assert_hidden(bytes(CODE), text)
    assert repr(entry) == (
        f"BatchEntry(name='provision', payload=<{len(entry.payload)} octets>, refused=None, "
        "correlation_id='p')"
    )
    command = parse_command(entry.name, entry.payload)
    assert command.install_code == CODE  # type: ignore[attr-defined]
