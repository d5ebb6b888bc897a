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


# -- F3: the same message to several devices, one by one ----------------------------------------


def test_the_same_message_sent_to_devices_one_by_one_reaches_each_in_its_first_window():
    """The headend's fleet path sends one message id device by device: each device gets it
    with Get Last Message (SE D.5.2.4.1), re-timed from when it was first sent."""
    store = MessageStore()
    m = msg(1, "Outage tonight", duration_in_minutes=30, confirmation_required=True)
    for i, device in enumerate((A, B, C)):
        store.display(m, T0 + 60 * i, device=device)
    assert store.messages[1].devices == frozenset({A, B, C})
    assert store.messages[1].sent_at == T0
    for device in (A, B, C):
        message, _ = store.last_message(device, T0 + 600)
        assert (message.message_id, message.start_time, message.duration_in_minutes) == (1, 0, 20)
    assert store.last_message("00:0d:6f:00:00:00:00:0d", T0 + 600) is None
    # a group and everyone widen it too; a device added to "everyone" changes nothing
    store.display(m, T0 + 700, group=5)
    assert store.messages[1].groups == frozenset({5})
    store.display(m, T0 + 701)
    assert store.messages[1].everyone
    store.display(m, T0 + 702, device=A)
    assert store.messages[1].everyone


def test_a_content_change_still_replaces_and_a_message_over_is_sent_afresh():
    store = MessageStore()
    store.display(msg(1, "v1", duration_in_minutes=5), T0, device=A)
    store.display(msg(1, "v2", duration_in_minutes=5), T0 + 10, device=B)
    assert (store.messages[1].devices, store.messages[1].sent_at) == (frozenset({B}), T0 + 10)
    assert store.last_message(A, T0 + 20) is None
    # over (5 minutes from T0 + 10): the same content again is a new send, to its target only
    store.display(msg(1, "v2", duration_in_minutes=5), T0 + 400, device=C)
    assert (store.messages[1].devices, store.messages[1].sent_at) == (frozenset({C}), T0 + 400)


def test_several_recipients_round_trip_and_the_one_recipient_record_still_loads():
    store = MessageStore()
    store.display(msg(1), T0, device=A)
    store.display(msg(2), T0, group=7)
    store.display(msg(3), T0)
    one = store.to_records()
    # one recipient is written in the shape written before messages had several
    assert one["msg/00000001"] == {"message": msg(1).to_record(), "sent_at": T0, "device": A,
                                   "group": None, "cancelled_at": None}  # fmt: skip
    assert one["msg/00000002"]["group"] == 7
    assert "devices" not in one["msg/00000002"]
    assert MessageStore.from_records(one).to_records() == one
    store.display(msg(1), T0 + 5, device=B)
    store.display(msg(2), T0 + 5, group=8)
    many = store.to_records()
    assert (many["msg/00000001"]["devices"], many["msg/00000001"]["groups"]) == ([A, B], [])
    again = MessageStore.from_records(many)
    assert again.to_records() == many
    assert again.messages[2].groups == frozenset({7, 8})
    for device in (A, B):
        assert again.last_message(device, T0 + 10) is not None


# -- D1: Get Last Message does not bring back a message replaced on the display ----------------


def test_get_last_message_does_not_bring_back_what_a_cancelled_or_expired_message_replaced():
    """EmberZNet keeps one message per endpoint: after the newest is cancelled, NOT_FOUND."""
    store = MessageStore()
    store.display(msg(1, "first"), T0, device=A)
    store.display(msg(2, "second"), T0 + 60, device=A)
    store.cancel(2, T0 + 120)
    assert store.last_message(A, T0 + 180) is None
    # expired likewise, while message 1 ("until changed") is still live
    store.display(msg(3, "third", duration_in_minutes=1), T0 + 200, device=A)
    assert store.last_message(A, T0 + 230)[0].message_id == 3
    assert store.last_message(A, T0 + 300) is None


def test_a_newer_message_that_never_started_replaced_nothing():
    store = MessageStore()
    store.display(msg(1, "now"), T0, device=A)
    store.display(msg(2, "tomorrow", start_time=T0 + 86_400), T0 + 60, device=A)
    store.cancel(2, T0 + 120)  # cancelled before it started: message 1 is still shown
    assert store.last_message(A, T0 + 180)[0].message_id == 1
    # a newer message that starts after an older scheduled one does not hide the older one
    store.display(msg(3, "later", start_time=T0 + 7200, duration_in_minutes=10), T0, device=B)
    store.display(msg(4, "sooner", duration_in_minutes=1), T0 + 10, device=B)
    assert store.last_message(B, T0 + 100)[0].message_id == 3


# -- F5: what a message is sent as, later ------------------------------------------------------


def test_retimed_is_what_get_last_message_answers_and_none_once_over():
    store = MessageStore()
    store.display(msg(1, duration_in_minutes=120), T0, group=5)
    assert store.retimed(1, T0) == msg(1, duration_in_minutes=120)  # the first send: as given
    assert store.retimed(1, T0 + 3600) == msg(1, duration_in_minutes=60)
    assert store.retimed(1, T0 + 3600 + 1) == msg(1, duration_in_minutes=60)  # rounded up
    assert store.retimed(1, T0 + 5 * 3600) is None
    store.display(msg(2, start_time=T0 + 600, duration_in_minutes=5), T0)
    assert store.retimed(2, T0 + 300) == msg(2, start_time=T0 + 600, duration_in_minutes=5)
    store.cancel(2, T0 + 301)
    assert store.retimed(2, T0 + 302) is None
    assert store.retimed(9, T0) is None
    # a repeated cancel keeps the first time
    store.cancel(2, T0 + 400)
    assert store.messages[2].cancelled_at == T0 + 301
