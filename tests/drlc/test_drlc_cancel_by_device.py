"""A Cancel Load Control Event sent to some of an event's recipients is recorded for them
(SE D.2.2.3.2: addressed as any command); the others keep the event.

The ESI held one cancellation per event, so a cancel sent to one device of a group's event
ended it for every recipient at the ESI (Get Scheduled Events, resends) while the others,
never told, ran it to its end.
"""

from __future__ import annotations

from typing import Any

import pytest
import zigpy.types as t

from zse.drlc import DrlcServerCore, LoadControlEvent
from zse.records import RecordError

T0 = 800_000_000
A, B = "00:0d:6f:00:0a:00:00:02", "00:0d:6f:00:0a:00:00:03"


def _core(*, recipients: list[str] | None) -> DrlcServerCore:
    core = DrlcServerCore()
    event = LoadControlEvent(
        issuer_event_id=7, device_class=0x0FFF, start_time=T0, duration_in_minutes=60,
        criticality_level=3, duty_cycle=40,
    )  # fmt: skip
    core.publish(event, now=T0, recipients=recipients)
    if recipients is None:
        core.sent(7, None)  # a broadcast
    return core


def _ids(core: DrlcServerCore, device: str, now: int = T0 + 60) -> list[int]:
    events = core.scheduled(start_time=0, number_of_events=0, now=now, device=device)
    return [e.issuer_event_id for e in events]


@pytest.mark.parametrize("recipients", [[A, B], None], ids=["group", "broadcast"])
def test_a_cancel_for_one_device_leaves_the_event_to_the_others(recipients) -> None:
    core = _core(recipients=recipients)
    core.cancel(7, effective_time=0, now=T0 + 30, devices=[A])
    assert (_ids(core, A), _ids(core, B)) == ([], [7])
    assert (core.cancelled_at(7), core.cancelled_at(7, device=A)) == (None, T0 + 30)
    assert core.resent(7, now=T0 + 60, device=A) is None
    assert core.resent(7, now=T0 + 60, device=B) is not None


def test_a_later_cancel_for_one_device_is_in_force_for_it_until_then() -> None:
    core = _core(recipients=[A, B])
    core.cancel(7, effective_time=T0 + 600, now=T0 + 30, devices=[A])
    assert (_ids(core, A), _ids(core, A, now=T0 + 600)) == ([7], [])
    assert (core.cancelled_at(7, device=A), core.cancelled_at(7, device=B)) == (T0 + 600, None)


def test_a_cancel_for_all_the_recipients_or_everyone_is_the_events() -> None:
    for devices in ([B, A], None):
        core = _core(recipients=[A, B])
        core.cancel(7, effective_time=0, now=T0 + 30, devices=devices)
        assert (core.cancelled_at(7), _ids(core, A), _ids(core, B)) == (T0 + 30, [], [])


def test_cancels_one_device_at_a_time_for_every_recipient_cancel_the_event() -> None:
    """The event as a whole ends with the last recipient's cancellation (the headend's view
    of an event reads :meth:`cancelled_at`): it stayed "not cancelled" for ever."""
    core = _core(recipients=[A, B])
    core.cancel(7, effective_time=T0 + 900, now=T0 + 30, devices=[A])
    assert core.cancelled_at(7) is None
    core.cancel(7, effective_time=0, now=T0 + 60, devices=[B])
    assert core.cancelled_at(7) == T0 + 900  # the last of them
    assert (core.cancelled_at(7, device=A), core.cancelled_at(7, device=B)) == (T0 + 900, T0 + 60)
    assert (_ids(core, A, now=T0 + 120), _ids(core, B, now=T0 + 120)) == ([7], [])
    assert core.scheduled(start_time=0, number_of_events=0, now=T0 + 900) == []


def test_a_cancel_for_one_device_is_kept_across_a_restart() -> None:
    core = _core(recipients=[A, B])
    core.changes()
    core.cancel(7, effective_time=0, now=T0 + 30, devices=[A])
    changed = core.changes()
    assert changed["event/00000007"]["cancelled_for"] == {A: T0 + 30}
    for load in ("records", "snapshot"):
        again = DrlcServerCore()
        if load == "records":
            again.load_records(core.records())
        else:
            again.restore(core.snapshot())
        assert (_ids(again, A), _ids(again, B)) == ([], [7])


def test_an_earlier_record_without_per_device_cancels_loads_and_a_bad_one_is_refused() -> None:
    records: dict[str, Any] = _core(recipients=[A, B]).records()
    assert "cancelled_for" not in records["event/00000007"]  # (the earlier form, unchanged)
    again = DrlcServerCore()
    again.load_records(records)
    assert (_ids(again, A), _ids(again, B)) == ([7], [7])
    records["event/00000007"]["cancelled_for"] = {A: "soon"}
    with pytest.raises(RecordError):
        again.load_records(records)


def test_a_later_cancel_for_one_device_goes_with_the_event_it_is_answered_or_resent() -> None:
    """Get Scheduled Events from the device cancelled later, and a resend to it, carry the
    event and then its Cancel Load Control Event at the effective time; another recipient
    gets the event alone (its cancel was that device's only)."""
    from tests.drlc.test_drlc_group_recipients import asking  # noqa: PLC0415
    from zse.drlc.protocol import DrlcServerProtocol, cancel_payload, event_payload  # noqa: PLC0415
    from zse.zcl.delivery import Destination  # noqa: PLC0415

    core = _core(recipients=[A, B])
    core.cancel(7, effective_time=T0 + 600, now=T0 + 30, devices=[A])
    server = DrlcServerProtocol(core)
    event = core.event(7)
    with_cancel = [
        event_payload(event),
        cancel_payload(event, cancel_control=0, effective_time=T0 + 600),
    ]
    for device, expected in ((A, with_cancel), (B, with_cancel[:1])):
        msg = asking(t.EUI64.convert(device))
        step = server.receive(msg, server.decode(msg), T0 + 60)
        assert [send.payload for send in step.sends] == expected, device
        resent = server.resend_event(
            7, now=T0 + 60, to=Destination.device(0x1234, 1), device=device
        )
        assert [send.payload for send in resent.sends] == expected, device
