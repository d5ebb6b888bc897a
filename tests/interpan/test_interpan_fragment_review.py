"""Hostile review of inter-PAN fragments: the last fragment's response lost on the air."""

from __future__ import annotations

from zse.interpan.fragment import FragmentSender, Reassembler, fragment_response, split


def _deliver(receiver: Reassembler, sender: FragmentSender, *, lose_last: bool) -> list[bytes]:
    """Run ``sender`` against ``receiver``; the response to the last fragment is lost once
    when ``lose_last``. The whole messages the receiver passed on."""
    delivered = []
    now = 0.0
    fragment = sender.start(now)
    while fragment is not None:
        response, whole = receiver.receive(b"hht", fragment, now)
        if whole is not None:
            delivered.append(whole)
        if lose_last and fragment[1] == fragment[2] - 1:
            lose_last = False
            now += sender.timeout
            fragment = sender.handle_timeout(now)  # the sender sends it again
            continue
        fragment = sender.receive(response, now)
        now += 0.1
    return delivered


def test_last_fragment_sent_again_after_its_response_was_lost_is_acknowledged_once():
    """The sender repeats a fragment whose response it did not get; for the last one the
    receiver has already passed the message on and must say success again (the message is
    delivered, once), not refuse it: a refusal makes the sender report a delivered message
    as failed (:class:`FragmentFailed`), and whoever sends it again gets it run twice."""
    message = bytes(range(200))
    sender = FragmentSender(message, size=70, timeout=2)
    receiver = Reassembler()
    assert _deliver(receiver, sender, lose_last=True) == [message]
    assert sender.done
    assert receiver.counts["out_of_order"] == 0


def test_a_repeated_last_fragment_is_not_a_new_message_and_is_forgotten_in_time():
    message = b"m" * 150
    fragments = split(message, 60)
    receiver = Reassembler(timeout=5)
    for fragment in fragments:
        _, whole = receiver.receive(b"a", fragment, 0.0)
    assert whole == message
    response, again = receiver.receive(b"a", fragments[-1], 1.0)
    assert (response, again) == (fragment_response(len(fragments) - 1, ok=True), None)
    # another source, or the same one after the timeout, is refused as before
    assert receiver.receive(b"b", fragments[-1], 1.0)[0] == fragment_response(2, ok=False)
    assert receiver.receive(b"a", fragments[-1], 7.0)[0] == fragment_response(2, ok=False)
    # a fragment of another shape (another count) is no repeat either
    other = split(b"n" * 250, 60)
    assert receiver.receive(b"a", other[2], 1.5)[0] == fragment_response(2, ok=False)


def test_remembered_completions_are_bounded_by_max_partners():
    receiver = Reassembler(max_partners=4, timeout=5)
    fragments = split(b"k" * 100, 60)
    for source in range(1000):
        for fragment in fragments:
            receiver.receive(source.to_bytes(8, "little"), fragment, 0.0)
    assert receiver.counts["completed"] == 1000
    assert len(receiver._completed) <= 4
