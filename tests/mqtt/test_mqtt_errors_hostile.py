"""MQTT command errors quote bounded text (hostile-input audit D13): an integer of thousands of
digits, or a field name of thousands of characters, is described, not echoed."""

from __future__ import annotations

import json

import pytest

from tests.mqtt.test_mqtt_core import lc
from zse.mqtt.core import CommandError, parse_command

MAC = "00:0d:6f:00:0a:00:00:01"


@pytest.mark.parametrize("digits", [41, 1000, 4000])
def test_a_huge_integer_is_described_not_echoed(digits: int) -> None:
    payload = lc(issuer_event_id=int("9" * digits))
    with pytest.raises(CommandError) as error:
        parse_command("load_control", payload)
    assert error.value.field == "event.issuer_event_id"
    assert len(str(error.value)) < 200
    assert "9" * 41 not in str(error.value)
    assert f"an integer of {digits} digits is outside" in str(error.value)


def test_a_short_integer_is_still_quoted() -> None:
    with pytest.raises(CommandError, match=r"event.issuer_event_id: 4294967296 is outside "):
        parse_command("load_control", lc(issuer_event_id=2**32))


def test_a_long_unknown_field_name_is_cut_short() -> None:
    for payload in (
        lc(**{"x" * 5000: 1}),
        json.dumps({"correlation_id": "c", "device": MAC, "y" * 5000: 1}).encode(),
    ):
        with pytest.raises(CommandError, match="unknown field") as error:
            parse_command("load_control", payload)
        assert len(str(error.value)) < 200
        assert "(5000 characters)" in str(error.value)
