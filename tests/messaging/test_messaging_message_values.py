"""Message checks its fields' types when built (SE D.5.2.3.1.1) with a ZseError, not an
AttributeError at send time."""

from __future__ import annotations

import pytest

from zse.errors import DecodeError, ZseError
from zse.messaging import InvalidMessage, Message, MessageError


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"text": b"x"}, "text must be a str, got bytes: decode it first"),
        ({"text": None}, "text must be a str, got NoneType"),
        ({"message_id": True}, "message_id must be an integer, got bool"),
        ({"duration_in_minutes": 1.5}, "duration_in_minutes must be an integer, got float"),
        ({"confirmation_required": 1}, "confirmation_required must be True or False, got int"),
        ({"protected": "yes"}, "protected must be True or False, got str"),
        ({"importance": 4}, "importance must fit in 2 bits, got 4"),
    ],
)
def test_a_wrong_field_is_refused_when_built(fields: dict, words: str) -> None:
    with pytest.raises(InvalidMessage) as error:
        Message(**{"message_id": 1, "text": "hi", **fields})
    assert isinstance(error.value, MessageError | DecodeError | ZseError | ValueError)
    assert str(error.value).startswith(words)


def test_a_good_message_and_its_record_still_build() -> None:
    message = Message(message_id=1, text="hi", confirmation_required=True)
    assert Message.from_record(message.to_record()) == message
