"""The ESI's message store (zse.messaging.MessageStore) and the frame limits: one test per rule."""

from __future__ import annotations

import pytest

from zse.messaging import (
    Confirmation,
    Message,
    MessageError,
    MessageStore,
    MessageTooLong,
    max_message_bytes,
    max_zcl_payload,
)

T0 = 800_000_000
A, B, C = "00:0d:6f:00:00:00:00:0a", "00:0d:6f:00:00:00:00:0b", "00:0d:6f:00:00:00:00:0c"


def msg(mid: int, text: str = "hello", **kw) -> Message:
    return Message(message_id=mid, text=text, **kw)


def test_frame_limits_from_the_802154_frame_down():
    # 127 - MAC 11 - NWK 8 - NWK security 18 = 90; unicast APS 8 + APS security 9; ZCL 3.
    assert max_zcl_payload(group=False) == 70
    # Group: APS header 9 (group address, no destination endpoint), no APS security.
    assert max_zcl_payload(group=True) == 78
    # SE D.5.2.3.1.1.5: "59 bytes for the Message field" (length octet + 58) + 11 other bytes.
    assert max_message_bytes(extended_control=False) == 58
    assert max_message_bytes() == 57
    assert max_message_bytes(group=True) == 65


def test_no_truncation_up_to_the_limit_and_a_clear_error_beyond():
    store = MessageStore()
    text = "é" * 28 + "x"  # 57 UTF-8 octets
    assert store.display(msg(1, text), T0).message.text == text
    with pytest.raises(MessageTooLong, match=r"58 UTF-8 octets; .* at most 57"):
        store.display(msg(2, text + "x"), T0)
    assert issubclass(MessageTooLong, ValueError)


def test_field_ranges_are_checked():
    with pytest.raises(MessageError, match="duration_in_minutes must fit in 16 bits"):
        msg(1, duration_in_minutes=0x10000)
    with pytest.raises(MessageError, match="message_id"):
        msg(-1)


def test_get_last_message_remaining_duration_rounded_up_and_start_now():
    store = MessageStore()
    store.display(msg(1, duration_in_minutes=10), T0, device=A)
    message, confirmed = store.last_message(A, T0 + 61)
    assert (message.start_time, message.duration_in_minutes, confirmed) == (0, 9, False)
    message, _ = store.last_message(A, T0 + 60)
    assert message.duration_in_minutes == 9
    assert store.last_message(A, T0 + 600) is None  # over: NOT_FOUND


def test_get_last_message_keeps_a_future_start_and_until_changed():
    store = MessageStore()
    store.display(msg(1, start_time=T0 + 500, duration_in_minutes=3), T0)
    assert store.last_message(A, T0)[0] == msg(1, start_time=T0 + 500, duration_in_minutes=3)
    store.display(msg(2), T0 + 1)
    assert store.last_message(A, T0 + 9999)[0] == msg(2)


def test_get_last_message_targets_device_group_members_and_everyone():
    store = MessageStore()
    store.display(msg(1, "for A"), T0, device=A)
    store.display(msg(2, "group 5"), T0 + 1, group=5)
    store.members[5] = {A, B}
    assert store.last_message(A, T0 + 2)[0].message_id == 2
    assert store.last_message(B, T0 + 2)[0].message_id == 2
    assert store.last_message(C, T0 + 2) is None
    store.display(msg(3, "group 6, members unknown"), T0 + 3, group=6)
    assert store.last_message(C, T0 + 4)[0].message_id == 3
    with pytest.raises(MessageError, match="not both"):
        store.display(msg(4), T0, device=A, group=5)


def test_confirmation_status_per_device_and_repeats_ignored():
    store = MessageStore()
    store.display(msg(1, confirmation_required=True), T0, group=5)
    c = Confirmation(message_id=1, confirmation_time=T0 + 5)
    assert store.confirm(A, c, T0 + 6) is True
    assert store.confirm(A, c, T0 + 7) is False  # repeat (a resend after a crash)
    assert store.confirm(A, Confirmation(message_id=99, confirmation_time=T0), T0) is False
    assert store.last_message(A, T0 + 8)[1] is True
    assert store.last_message(B, T0 + 8)[1] is False
    assert store.unconfirmed(1, [A, B, C]) == [B, C]
    assert store.confirmations[1][A].received_at == T0 + 6


def test_enhanced_confirmation_kept_with_answer_and_text():
    store = MessageStore()
    store.display(msg(1, enhanced_confirmation_required=True), T0, device=A)
    c = Confirmation(message_id=1, confirmation_time=T0, answer=False, response=b"away")
    store.confirm(A, c, T0)
    assert store.confirmations[1][A].confirmation == c


def test_new_content_under_the_same_id_resets_confirmations():
    store = MessageStore()
    store.display(msg(1, "v1", confirmation_required=True), T0, device=A)
    store.confirm(A, Confirmation(message_id=1, confirmation_time=T0), T0)
    store.display(msg(1, "v1", confirmation_required=True), T0 + 1, device=A)
    assert A in store.confirmations[1]  # a resend of the same message keeps them
    store.display(msg(1, "v2", confirmation_required=True), T0 + 2, device=A)
    assert 1 not in store.confirmations


def test_cancel_ends_a_message_and_unknown_is_an_error():
    store = MessageStore()
    store.display(msg(1), T0)
    store.cancel(1, T0 + 10)
    assert store.last_message(A, T0 + 10) is None
    with pytest.raises(MessageError, match="no message with id 2"):
        store.cancel(2, T0)


def test_cancel_all_at_implementation_time_and_get_message_cancellation():
    store = MessageStore()
    store.display(msg(1), T0)
    assert store.cancel_all(T0 + 100, T0 + 1) == T0 + 100
    assert store.last_message(A, T0 + 99) is not None
    assert store.last_message(A, T0 + 100) is None
    assert store.cancel_all(0, T0 + 200) == T0 + 200
    # The first cancel-all at or after the earliest time asked for; NOT_FOUND after the last.
    assert store.message_cancellation(0) == T0 + 100
    assert store.message_cancellation(T0 + 100) == T0 + 100
    assert store.message_cancellation(T0 + 101) == T0 + 200
    assert store.message_cancellation(T0 + 201) is None


def test_cancel_all_spares_messages_sent_after_it():
    store = MessageStore()
    store.cancel_all(T0 + 100, T0)
    store.display(msg(1), T0 + 1)
    assert store.last_message(A, T0 + 150)[0].message_id == 1


def test_records_round_trip():
    store = MessageStore()
    store.display(msg(1, confirmation_required=True), T0, group=5)
    store.members[5] = {A}
    store.confirm(A, Confirmation(message_id=1, confirmation_time=T0, answer=True), T0)
    store.cancel_all(T0 + 50, T0)
    again = MessageStore.from_records(store.to_records())
    assert again.to_records() == store.to_records()
    assert again.last_message(A, T0 + 1) == store.last_message(A, T0 + 1)
