"""#13.2: the DRLC protocol cores at the ZCL frame, table-driven, with no event loop."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest
import zigpy.types as t
from zigpy.zcl import foundation

from zse.drlc import (
    ApplyLoadControl,
    DrlcClientCore,
    LoadControlEvent,
    Status,
    StatusReport,
    StopLoadControl,
    UnknownEvent,
)
from zse.drlc.protocol import (
    NO_SIGNATURE,
    ClientStep,
    DrlcClientProtocol,
    DrlcServerProtocol,
    ReportReceived,
    cancel_all_payload,
    cancel_payload,
    event_payload,
    report_payload,
)
from zse.errors import InvalidFrame
from zse.se.ids import DRLC, DrlcClientCommand, DrlcServerCommand
from zse.se.types import SignatureType
from zse.zcl.delivery import Destination, device_name
from zse.zcl.frame import Send, Step, ZclMessage

T0 = 800_000_000
DEVICE = t.EUI64.convert("00:0d:6f:00:0a:00:00:02")
SIGNATURE = bytes(range(42))
LCE = DrlcClientCommand.LOAD_CONTROL_EVENT
CANCEL = DrlcClientCommand.CANCEL_LOAD_CONTROL_EVENT
CANCEL_ALL = DrlcClientCommand.CANCEL_ALL_LOAD_CONTROL_EVENTS
REPORT = DrlcServerCommand.REPORT_EVENT_STATUS
GET_SCHEDULED = DrlcServerCommand.GET_SCHEDULED_EVENTS
TO = Destination.device(0x1234, 1)


def event(issuer_event_id: int = 7, *, start: int = 0, minutes: int = 30) -> LoadControlEvent:
    return LoadControlEvent(
        issuer_event_id=issuer_event_id,
        device_class=0x0001,
        start_time=start,
        duration_in_minutes=minutes,
        criticality_level=1,
        cooling_temperature_set_point=2600,
    )


def report(issuer_event_id: int = 7, status: int = Status.RECEIVED) -> StatusReport:
    return StatusReport(
        issuer_event_id=issuer_event_id,
        event_status=status,
        event_status_time=T0 + 1,
        criticality_level_applied=1,
    )


def frame(
    command_id: int,
    payload: bytes,
    *,
    from_server: bool = False,
    ieee: t.EUI64 | None = DEVICE,
) -> ZclMessage:
    return ZclMessage(
        src_nwk=0x1234,
        src_ieee=ieee,
        src_ep=1,
        dst_ep=9,
        cluster_id=DRLC,
        profile_id=0x0109,
        frame_control=0x01 | (0x08 if from_server else 0),
        manufacturer=None,
        tsn=5,
        command_id=command_id,
        payload=payload,
        aps_encrypted=True,
        group=None,
        broadcast=False,
        timestamp=0.0,
    )


def received(server: DrlcServerProtocol, msg: ZclMessage, now: int = T0) -> Step:
    return server.receive(msg, server.decode(msg), now)


def report_frame(rep: StatusReport, signature_type: int = 0, **kwargs: Any) -> ZclMessage:
    signature = SIGNATURE if signature_type else NO_SIGNATURE
    return frame(REPORT, report_payload(rep, signature_type, signature), **kwargs)


def scheduled_frame(start: int = 0, number: int = 0) -> ZclMessage:
    return frame(GET_SCHEDULED, start.to_bytes(4, "little") + bytes((number,)))


def published(*events: LoadControlEvent, verify: Any = None) -> DrlcServerProtocol:
    server = DrlcServerProtocol(verify=verify)
    for item in events:
        server.publish(item, now=T0)
    return server


def sent(to: Destination | None, command_id: int, payload: bytes) -> Send:
    return Send(cluster_id=DRLC, command_id=command_id, payload=payload, to=to)


# -- what the ESI asks -> the frames sent ---------------------------------------------------------

SERVER_CALLS = [
    pytest.param(
        lambda s: s.publish(event(8), now=T0, to=TO),
        (sent(TO, LCE, event_payload(event(8))),),
        id="publish to a device",
    ),
    pytest.param(
        lambda s: s.publish(event(8), now=T0, to=Destination.group(3)),
        (sent(Destination.group(3), LCE, event_payload(event(8))),),
        id="publish to a group",
    ),
    pytest.param(lambda s: s.publish(event(8), now=T0), (), id="publish, stored only"),
    pytest.param(
        lambda s: s.send_event(7, TO),
        (sent(TO, LCE, event_payload(event(7, minutes=60))),),
        id="send event",
    ),
    pytest.param(
        lambda s: s.cancel(7, cancel_control=1, effective_time=T0 + 60, now=T0, to=TO),
        (
            sent(
                TO,
                CANCEL,
                cancel_payload(event(7, minutes=60), cancel_control=1, effective_time=T0 + 60),
            ),
        ),
        id="cancel",
    ),
    pytest.param(lambda s: s.cancel(7, now=T0), (), id="cancel, recorded only"),
    pytest.param(
        lambda s: s.send_cancel(7, TO),
        (
            sent(
                TO, CANCEL, cancel_payload(event(7, minutes=60), cancel_control=0, effective_time=0)
            ),
        ),
        id="send cancel",
    ),
    pytest.param(
        lambda s: s.cancel_all(cancel_control=1, now=T0, to=Destination.broadcast()),
        (sent(Destination.broadcast(), CANCEL_ALL, cancel_all_payload(1)),),
        id="cancel all, broadcast",
    ),
    pytest.param(lambda s: s.cancel_all(now=T0), (), id="cancel all, recorded only"),
]


@pytest.mark.parametrize(("call", "sends"), SERVER_CALLS)
def test_server_call_sends(call: Any, sends: tuple[Send, ...]) -> None:
    server = published(event(7, minutes=60))
    step = call(server)
    assert step.sends == sends
    assert step.events == ()
    assert step.status is None


def test_server_calls_record_in_the_core() -> None:
    server = published(event(7, minutes=60))
    server.publish(event(8), now=T0, expected=["a"])
    assert server.core.never_answered(8) == ["a"]
    server.cancel(8, now=T0)
    scheduled = server.core.scheduled(start_time=0, number_of_events=0, now=T0)
    assert scheduled == [event(7, start=T0, minutes=60)]  # start "now" resolved
    server.cancel_all(now=T0)
    assert server.core.scheduled(start_time=0, number_of_events=0, now=T0) == []


def test_republish_sends_the_remaining_duration() -> None:
    server = published(event(7, start=T0, minutes=60))
    again, step = server.republish(7, now=T0 + 600, to=TO)
    assert (again.start_time, again.duration_in_minutes) == (0, 50)
    assert step.sends == (sent(TO, LCE, event_payload(again)),)


def test_a_call_for_an_event_never_issued_raises_and_sends_nothing() -> None:
    server = published()
    for call in (
        lambda: server.send_event(9, TO),
        lambda: server.send_cancel(9, TO),
        lambda: server.cancel(9, now=T0, to=TO),
    ):
        with pytest.raises(UnknownEvent):
            call()


# -- received frames -> sends, events, Default Response status ----------------------------------


def test_get_scheduled_events_is_answered_in_reply_one_event_per_frame() -> None:
    server = published(event(9, start=T0 + 100), event(7, start=T0 + 50))
    msg = scheduled_frame()
    step = received(server, msg)
    assert [s.payload for s in step.sends] == [
        event_payload(event(7, start=T0 + 50)),
        event_payload(event(9, start=T0 + 100)),
    ]
    assert all(s.reply_to is msg and s.command_id == LCE for s in step.sends)
    assert step.status is None  # answered: no Default Response owed


@pytest.mark.parametrize(
    ("events", "msg"),
    [
        pytest.param((), scheduled_frame(), id="no event"),
        pytest.param((event(7),), scheduled_frame(start=T0 + 3600), id="all over by then"),
    ],
)
def test_get_scheduled_events_with_nothing_to_send_is_not_found(
    events: tuple[LoadControlEvent, ...], msg: ZclMessage
) -> None:
    step = received(published(*events), msg)
    assert step == Step(status=foundation.Status.NOT_FOUND)


def test_get_scheduled_events_counts_and_the_1_2_issuer_id() -> None:
    server = published(event(7), event(8), event(9))
    one = received(server, scheduled_frame(number=1))
    assert [s.payload for s in one.sends] == [event_payload(event(7, start=T0))]
    since_8 = frame(GET_SCHEDULED, T0.to_bytes(4, "little") + bytes(1) + (8).to_bytes(4, "little"))
    assert len(received(server, since_8).sends) == 2  # the three start at T0: ids 8 and 9


def test_get_scheduled_events_sends_a_start_now_event_with_its_absolute_start() -> None:
    """D.2.2.3.1.1.4: Start Time 0 is "now" for the device that receives it. An event issued
    for "now" and asked for 30 minutes later (a device after a rejoin) is answered with the
    start it was given, so the device runs it until the ESI's end, not 60 minutes more."""
    server = published(event(7, minutes=60))  # issued at T0 for now: T0 .. T0 + 3600
    later = T0 + 1800
    [send] = received(server, scheduled_frame(), later).sends
    assert send.payload == event_payload(event(7, start=T0, minutes=60))
    device = DrlcClientCore(device_class=0x0001, start_randomization_minutes=0)
    device.receive_event(event(7, start=T0, minutes=60), esi="esi", now=later)
    assert device.window(7) == (T0, T0 + 3600)


def verifier(result: bool) -> Any:
    seen: list[tuple[ZclMessage, StatusReport, bytes]] = []

    def verify(msg: ZclMessage, rep: StatusReport, signature: bytes) -> bool:
        seen.append((msg, rep, signature))
        return result

    verify.seen = seen  # type: ignore[attr-defined]
    return verify


REPORTS = [
    # (verify result, signature type, issuer id, status, signed, recorded)
    pytest.param(None, 0, 7, foundation.Status.SUCCESS, False, True, id="unsigned"),
    pytest.param(True, SignatureType.ECDSA, 7, foundation.Status.SUCCESS, True, True, id="signed"),
    pytest.param(
        False, SignatureType.ECDSA, 7, foundation.Status.FAILURE, False, False, id="forged"
    ),
    pytest.param(
        None, SignatureType.ECDSA, 7, foundation.Status.FAILURE, False, False, id="no key"
    ),
    pytest.param(True, 0, 9, foundation.Status.NOT_FOUND, False, False, id="never issued"),
]


@pytest.mark.parametrize(("result", "kind", "issuer", "status", "signed", "recorded"), REPORTS)
def test_report_event_status(
    result: bool | None, kind: int, issuer: int, status: Any, signed: bool, recorded: bool
) -> None:
    verify = None if result is None else verifier(result)
    server = published(event(7), verify=verify)
    rep = report(issuer)
    step = received(server, report_frame(rep, kind))
    assert step.sends == ()
    assert step.status is status
    device = str(DEVICE)
    if recorded:
        assert step.events == (
            ReportReceived(device=device, source_nwk=0x1234, report=rep, signed=signed, new=True),
        )
        assert server.core.view(7)[device].statuses
    else:
        assert step.events == ()
        assert device not in server.core.view(7)
    assert server.unknown_reports == (issuer != 7)
    if verify is not None:  # checked only for a signed report of an event issued here
        assert len(verify.seen) == (kind == SignatureType.ECDSA and issuer == 7)


def test_a_repeated_report_is_not_new_and_an_unknown_device_is_named_by_nwk() -> None:
    server = published(event(7))
    msg = report_frame(report(), ieee=None)
    first, again = received(server, msg), received(server, msg)
    assert [e.new for e in first.events + again.events] == [True, False]
    assert first.events[0].device == "nwk:0x1234"
    assert server.core.changes()  # the first one only is a change to persist


def test_frames_from_a_server_are_not_for_the_server_side() -> None:
    server = published(event(7))
    msg = frame(LCE, event_payload(event(7)), from_server=True)
    assert server.decode(msg) is None
    assert server.receive(msg, None, T0) == Step()


def test_a_malformed_report_does_not_decode() -> None:
    with pytest.raises(InvalidFrame):
        DrlcServerProtocol.decode(frame(REPORT, b"\x07\x00"))


def test_the_server_has_no_deadline() -> None:
    server = published(event(7))
    assert server.next_deadline() is None
    assert server.handle_timeout(T0) == Step()


# -- the client (HAN device) ---------------------------------------------------------------------

ESI = Destination.device(0x1234, 1)  # the sender of frame(): NWK 0x1234, endpoint 1


def client(*, report_delay: float = 0.0, sign: Any = None, group: int = 0) -> DrlcClientProtocol:
    core = DrlcClientCore(
        device_class=0x0001,
        utility_enrollment_group=group,
        start_randomization_minutes=0,
        rng=random.Random(1),
    )
    return DrlcClientProtocol(core, sign=sign, report_delay=report_delay)


def from_esi(command_id: int, payload: bytes) -> ZclMessage:
    return frame(command_id, payload, from_server=True)


def got(protocol: DrlcClientProtocol, msg: ZclMessage, now: int = T0) -> ClientStep:
    return protocol.receive(msg, protocol.decode(msg), now)


def client_statuses(step: ClientStep) -> list[tuple[int, int]]:
    return [(o.report.issuer_event_id, o.report.event_status) for o in step.reports]


def cancel_frame(issuer_event_id: int = 7, *, device_class: int = 0x0001) -> ZclMessage:
    ev = dataclasses.replace(event(issuer_event_id), device_class=device_class)
    return from_esi(CANCEL, cancel_payload(ev, cancel_control=0, effective_time=0))


CLIENT_FRAMES = [
    # (events in the table first, frame, statuses reported, status owed, actions)
    pytest.param(
        (),
        from_esi(LCE, event_payload(event(7))),
        [(7, Status.RECEIVED), (7, Status.STARTED)],
        None,
        ["apply"],
        id="event now: received and started",
    ),
    pytest.param(
        (),
        from_esi(LCE, event_payload(event(7, start=T0 + 600))),
        [(7, Status.RECEIVED)],
        None,
        [],
        id="event later: received",
    ),
    pytest.param(
        (),
        from_esi(LCE, event_payload(dataclasses.replace(event(7), device_class=0x0004))),
        [],
        foundation.Status.SUCCESS,
        [],
        id="event for another device class: silent",
    ),
    pytest.param(
        (event(7, start=T0 + 600),),
        cancel_frame(),
        [(7, Status.CANCELLED)],
        None,
        [],
        id="cancel",
    ),
    pytest.param(
        (event(7, start=T0 + 600),),
        cancel_frame(device_class=0x0004),
        [],
        foundation.Status.SUCCESS,
        [],
        id="cancel for another device class: silent",
    ),
    pytest.param(
        (),
        cancel_frame(9),
        [(9, Status.REJECTED_UNDEFINED_EVENT)],
        None,
        [],
        id="cancel of an unknown event",
    ),
    pytest.param(
        (event(7),),
        from_esi(CANCEL_ALL, cancel_all_payload(0)),
        [(7, Status.CANCELLED)],
        None,
        ["stop"],
        id="cancel all",
    ),
    pytest.param(
        (),
        from_esi(CANCEL_ALL, cancel_all_payload(0)),
        [],
        foundation.Status.SUCCESS,
        [],
        id="cancel all, nothing to cancel: Default Response SUCCESS",
    ),
    pytest.param(
        (),
        frame(REPORT, report_payload(report(), 0, NO_SIGNATURE)),
        [],
        foundation.Status.UNSUP_CLUSTER_COMMAND,
        [],
        id="a client's command",
    ),
]


@pytest.mark.parametrize(("table", "msg", "reported", "status", "actions"), CLIENT_FRAMES)
def test_client_receives(
    table: tuple[LoadControlEvent, ...],
    msg: ZclMessage,
    reported: list[tuple[int, int]],
    status: Any,
    actions: list[str],
) -> None:
    protocol = client()
    for item in table:
        got(protocol, from_esi(LCE, event_payload(item)))
    step = got(protocol, msg)
    assert client_statuses(step) == reported
    assert all(o.esis == ("4660:1",) for o in step.reports)  # the sender, "<nwk>:<endpoint>"
    assert step.status is status
    assert ["apply" if isinstance(a, ApplyLoadControl) else "stop" for a in step.events] == actions
    assert step.sends == ()  # reports leave through the outbox


def test_a_malformed_event_does_not_decode_and_a_client_frame_is_not_decoded() -> None:
    with pytest.raises(InvalidFrame):
        DrlcClientProtocol.decode(from_esi(LCE, b"\x07"))
    assert DrlcClientProtocol.decode(frame(GET_SCHEDULED, bytes(5))) is None


def test_reports_leave_through_the_outbox_unsigned_to_each_esi_without_default_response() -> None:
    protocol = client()
    step = got(protocol, from_esi(LCE, event_payload(event(7, start=T0 + 600))))
    outbox = protocol.outbox
    (outgoing,) = step.reports
    outbox.add(outgoing, seq=3, now=100.0)
    sends = outbox.due(100.0)
    assert sends == Step(
        sends=(
            Send(
                cluster_id=DRLC,
                command_id=REPORT,
                payload=report_payload(outgoing.report, 0, NO_SIGNATURE),
                to=ESI,
                default_response=False,
            ),
        )
    )
    assert outbox.sent() == 3
    assert outbox.due(100.0) is None
    assert outbox.next_deadline() is None


def test_a_report_is_signed_by_the_signer_when_it_is_sent() -> None:
    signed: list[StatusReport] = []

    def sign(rep: StatusReport) -> tuple[int, bytes]:
        signed.append(rep)
        return SignatureType.ECDSA, SIGNATURE

    protocol = client(sign=sign)
    (outgoing, *_) = got(protocol, from_esi(LCE, event_payload(event(7)))).reports
    protocol.outbox.add(outgoing, seq=None, now=0.0)
    assert signed == []
    step = protocol.outbox.due(0.0)
    assert step is not None
    assert step.sends[0].payload == report_payload(outgoing.report, SignatureType.ECDSA, SIGNATURE)
    assert signed == [outgoing.report]


def test_the_outbox_holds_reports_back_in_order_and_a_failed_one_waits_for_a_retry() -> None:
    protocol = client(report_delay=5.0)
    step = got(protocol, from_esi(LCE, event_payload(event(7))))
    outbox = protocol.outbox
    for outgoing in step.reports:
        outbox.add(outgoing, seq=None, now=10.0)
    first = outbox.next_deadline()
    assert first is not None
    assert 10.0 <= first <= 15.0
    assert outbox.due(first - 0.001) is None
    assert outbox.handle_timeout(first) == first
    assert outbox.due(first) is not None
    outbox.failed()  # the radio could not deliver it
    assert outbox.next_deadline() is None
    assert outbox.due(99.0) is None
    outbox.retry()
    assert outbox.due(99.0) is not None
    outbox.sent()
    assert len(outbox.queue) == 1  # the second report is still owed


def test_opt_out_and_opt_in_report_and_act() -> None:
    protocol = client()
    got(protocol, from_esi(LCE, event_payload(event(7))))
    out = protocol.opt_out(7, now=T0 + 10)
    assert client_statuses(out) == [(7, Status.OPTED_OUT)]
    assert [type(a) for a in out.events] == [StopLoadControl]
    back = protocol.opt_in(7, now=T0 + 20)
    assert client_statuses(back) == [(7, Status.OPTED_IN)]
    with pytest.raises(UnknownEvent):
        protocol.opt_out(9, now=T0)


def test_the_table_deadlines_are_the_protocols() -> None:
    protocol = client()
    got(protocol, from_esi(LCE, event_payload(event(7, start=T0 + 600, minutes=1))))
    assert protocol.next_deadline() == T0 + 600
    started = protocol.handle_timeout(T0 + 600)
    assert client_statuses(started) == [(7, Status.STARTED)]
    assert [type(a) for a in started.events] == [ApplyLoadControl]
    assert protocol.next_deadline() == T0 + 660
    done = protocol.handle_timeout(T0 + 660)
    assert client_statuses(done) == [(7, Status.COMPLETED)]
    assert protocol.next_deadline() is None


def test_get_scheduled_events_goes_to_the_esi_without_default_response() -> None:
    step = client().get_scheduled_events(ESI, start_time=T0, number_of_events=2)
    assert step.sends == (
        Send(
            cluster_id=DRLC,
            command_id=GET_SCHEDULED,
            payload=T0.to_bytes(4, "little") + b"\x02",
            to=ESI,
            default_response=False,
        ),
    )


def test_get_scheduled_events_answers_a_device_only_with_the_events_addressed_to_it() -> None:
    """Every device asking got every event, one sent to another device alone included, and
    ran it. Events naming devices go to those; events naming none (broadcast, enrollment
    group) to all."""
    me = device_name(DEVICE)
    server = DrlcServerProtocol()
    server.publish(event(1), now=T0, expected=["00:0d:6f:00:0a:00:00:0a"])  # another device
    assert received(server, scheduled_frame()) == Step(status=foundation.Status.NOT_FOUND)
    server.publish(event(2), now=T0, expected=["00:0d:6f:00:0a:00:00:0a", me])  # its group
    server.publish(event(3), now=T0)  # everyone
    sends = received(server, scheduled_frame()).sends
    assert [s.payload for s in sends] == [
        event_payload(event(2, start=T0)),
        event_payload(event(3, start=T0)),
    ]


def test_get_scheduled_events_keeps_an_event_cancelled_later_and_sends_its_cancel() -> None:
    """A cancel effective later removed the event from Get Scheduled Events at once, so a
    device rejoining before the effective time never ran its first part. It is in force
    until then: sent, followed by its Cancel Load Control Event at that time."""
    server = published(event(7, minutes=60))
    server.cancel(7, effective_time=T0 + 1800, now=T0 + 600)
    sends = received(server, scheduled_frame(), T0 + 1200).sends
    assert sends == (
        Send(
            cluster_id=DRLC,
            command_id=LCE,
            payload=event_payload(event(7, start=T0, minutes=60)),
            reply_to=sends[0].reply_to,
        ),
        Send(
            cluster_id=DRLC,
            command_id=CANCEL,
            payload=cancel_payload(
                event(7, minutes=60), cancel_control=0, effective_time=T0 + 1800
            ),
            reply_to=sends[0].reply_to,
        ),
    )
    late = received(server, scheduled_frame(), T0 + 1800)
    assert late == Step(status=foundation.Status.NOT_FOUND)


def test_resend_of_a_start_now_event_sends_its_absolute_start_and_nothing_once_over() -> None:
    """Resent 50 minutes into a one-hour event issued for "now", it went as start 0 and ran
    50 minutes past the ESI's end, and a whole hour when resent after the end."""
    server = published(event(7, minutes=60))
    step = server.resend_event(7, now=T0 + 50 * 60, to=TO)
    assert step.sends == (sent(TO, LCE, event_payload(event(7, start=T0, minutes=60))),)
    device = DrlcClientCore(device_class=0x0001, start_randomization_minutes=0)
    device.receive_event(event(7, start=T0, minutes=60), esi="esi", now=T0 + 50 * 60)
    assert device.window(7) == (T0, T0 + 3600)
    assert server.resend_event(7, now=T0 + 3600, to=TO) == Step()
    server.publish(event(8, minutes=60), now=T0)
    server.cancel(8, now=T0 + 60)
    assert server.resend_event(8, now=T0 + 120, to=TO) == Step()


def test_send_event_late_in_a_fan_out_gives_a_start_now_event_its_absolute_start() -> None:
    """A start-"now" event sent one device at a time went to the late ones as start 0, so
    each ran its whole duration from when its copy arrived."""
    server = published(event(7, minutes=60))
    assert server.send_event(7, TO, now=T0).sends == (
        sent(TO, LCE, event_payload(event(7, minutes=60))),
    )
    late = server.send_event(7, TO, now=T0 + 90)
    assert late.sends == (sent(TO, LCE, event_payload(event(7, start=T0, minutes=60))),)
