"""The sans-IO protocol cores of Demand Response and Load Control at the ZCL frame (SE D.2,
issue #13.2).

:class:`DrlcServerProtocol` is the ESI's side (D.2.2): the Load Control Event, Cancel Load
Control Event and Cancel All Load Control Events it sends, its answers to Get Scheduled Events
(D.2.2.4.1) and the Report Event Status it accepts (only for an event it issued, signature
checked), on a :class:`~zse.drlc.DrlcServerCore`. :class:`DrlcClientProtocol` is a HAN
device's side (D.2.3): what it does with a Load Control Event, Cancel and Cancel All (silence, a
Default Response, or Report Event Status through its :class:`ReportOutbox`), its Get Scheduled
Events request, on a :class:`~zse.drlc.DrlcClientCore`.

Each takes a received frame (:class:`~zse.zcl.frame.ZclMessage`) with its decoded command and
the time (ZigBee UTCTime), and returns a :class:`~zse.zcl.frame.Step`: the frames to send, the
events, the Default Response status. Report signatures are an input: the server is given a
``verify`` callable, the client a ``sign`` callable (the shell's, by its CBKE credentials).
Nothing here does I/O; :mod:`zse.drlc.service` is the asyncio shell.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import zigpy.types as t
from zigpy.zcl import foundation

from zse.drlc.core import (
    START_NOW,
    DrlcClientCore,
    DrlcServerCore,
    LoadControlEvent,
    Outgoing,
    StatusReport,
)
from zse.drlc.core import Step as CoreStep
from zse.drlc.wire import Drlc
from zse.se.ids import DRLC, DrlcClientCommand, DrlcServerCommand
from zse.se.types import SIGNATURE_SIZE, SignatureType
from zse.zcl.codec import decode_command, encode_command, encode_fields
from zse.zcl.delivery import Destination, device_name
from zse.zcl.frame import Send, Step, ZclMessage

if TYPE_CHECKING:
    from zse.zcl.frame import FrameCore

__all__ = [
    "NO_SIGNATURE",
    "ClientStep",
    "DrlcClientProtocol",
    "DrlcServerProtocol",
    "ReportOutbox",
    "ReportReceived",
    "ReportSigner",
    "ReportVerifier",
    "cancel_all_payload",
    "cancel_payload",
    "esi_address",
    "esi_key",
    "event_payload",
    "get_scheduled_events_payload",
    "report_payload",
    "unsigned",
]

LOGGER = logging.getLogger(__name__)

# Commands the server sends (D.2.2.3) and receives (D.2.3.3).
_LOAD_CONTROL_EVENT = DrlcClientCommand.LOAD_CONTROL_EVENT
_CANCEL = DrlcClientCommand.CANCEL_LOAD_CONTROL_EVENT
_CANCEL_ALL = DrlcClientCommand.CANCEL_ALL_LOAD_CONTROL_EVENTS
_REPORT_EVENT_STATUS = DrlcServerCommand.REPORT_EVENT_STATUS
_GET_SCHEDULED_EVENTS = DrlcServerCommand.GET_SCHEDULED_EVENTS
_SERVER_CMDS = Drlc.ServerCommandDefs
_CLIENT_CMDS = Drlc.ClientCommandDefs

#: Whether a signed report's ECDSA signature verifies for the device that sent ``msg``.
ReportVerifier = Callable[[ZclMessage, StatusReport, bytes], bool]
#: The signature type and signature of a report (D.2.3.3.1.1.10-11).
ReportSigner = Callable[[StatusReport], tuple[int, bytes]]
#: The signature of an unsigned report: 42 bytes of 0xFF (D.2.3.3.1.1.11).
NO_SIGNATURE = bytes(0xFF for _ in range(SIGNATURE_SIZE))


def unsigned(report: StatusReport) -> tuple[int, bytes]:
    """No signature: type 0x00 and :data:`NO_SIGNATURE` (D.2.3.3.1.1.10-11)."""
    return SignatureType.No_Signature, NO_SIGNATURE


# -- payloads -----------------------------------------------------------------------------------


def event_payload(event: LoadControlEvent) -> bytes:
    """A Load Control Event command payload (D.2.2.3.1)."""
    return encode_command(_CLIENT_CMDS.load_control_event.schema(**event.to_fields()))


def cancel_payload(event: LoadControlEvent, *, cancel_control: int, effective_time: int) -> bytes:
    """A Cancel Load Control Event command payload (D.2.2.3.2) for ``event``."""
    return encode_command(
        _CLIENT_CMDS.cancel_load_control_event.schema(
            issuer_event_id=event.issuer_event_id,
            device_class=event.device_class,
            utility_enrollment_group=event.utility_enrollment_group,
            cancel_control=cancel_control,
            effective_time=effective_time,
        )
    )


def cancel_all_payload(cancel_control: int) -> bytes:
    """A Cancel All Load Control Events command payload (D.2.2.3.3)."""
    return bytes((cancel_control,))


def report_payload(report: StatusReport, signature_type: int, signature: bytes) -> bytes:
    """A Report Event Status command payload (D.2.3.3.1) with its signature pair."""
    schema = _SERVER_CMDS.report_event_status.schema
    return encode_fields(
        schema, **report.to_fields(), signature_type=signature_type, signature=signature
    )


def get_scheduled_events_payload(start_time: int, number_of_events: int) -> bytes:
    """A Get Scheduled Events command payload (D.2.3.3.2)."""
    schema = _SERVER_CMDS.get_scheduled_events.schema
    return encode_command(schema(start_time=start_time, number_of_events=number_of_events))


def esi_key(msg: ZclMessage) -> str:
    """How the client names the ESI that sent ``msg`` in its table: ``"<nwk>:<endpoint>"``
    (decimal, as the journal of unsent reports has always stored it)."""
    return f"{msg.src_nwk}:{msg.src_ep}"


def esi_address(key: str) -> tuple[int, int]:
    """The NWK address and endpoint of an :func:`esi_key`; ValueError if it is not one."""
    nwk, ep = key.split(":")
    return int(nwk), int(ep)


def _decode(msg: ZclMessage, *, from_server: bool) -> Any:
    """The command of a frame sent in the direction ``from_server``, or None for a frame of
    the other direction; :class:`~zse.errors.InvalidFrame` if it does not decode."""
    if msg.from_server != from_server:
        return None
    command, _ = decode_command(Drlc, msg.command_id, msg.payload, from_server=from_server)
    return command


# -- the server (ESI) ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ReportReceived:
    """A device's Report Event Status reached the ESI. ``signed``: a valid ECDSA signature;
    ``new``: not a repeat of a report already recorded."""

    device: str
    source_nwk: int
    report: StatusReport
    signed: bool
    new: bool


class DrlcServerProtocol:
    """The ESI's DRLC server (SE D.2.2) at the ZCL frame, on a :class:`~zse.drlc.DrlcServerCore`.

    ``verify`` checks a signed report's signature (None: none verifies, so a signed report is
    refused). ``unknown_reports`` counts the Report Event Status refused for an event this
    server never issued. The shell persists what :meth:`DrlcServerCore.changes` gives after
    each call, before it sends.
    """

    def __init__(
        self, core: DrlcServerCore | None = None, *, verify: ReportVerifier | None = None
    ) -> None:
        self.core = core if core is not None else DrlcServerCore()
        self.verify = verify
        self.unknown_reports = 0

    @staticmethod
    def decode(msg: ZclMessage) -> Any:
        """The command a client sent in ``msg`` (None for a frame from a server);
        :class:`~zse.errors.InvalidFrame` if its payload does not decode."""
        return _decode(msg, from_server=False)

    # -- what the ESI asks --------------------------------------------------------------------

    def publish(
        self,
        event: LoadControlEvent,
        *,
        now: int,
        expected: Iterable[str] = (),
        to: Destination | None = None,
        recipients: Iterable[str] | None = None,
    ) -> Step:
        """Record ``event`` (``expected``: the devices that should answer) and send it to
        ``to`` (None: stored only), recording whom it reaches (:meth:`sent`). Stored only,
        ``recipients`` (when given) are the devices it is for besides ``expected`` (a
        registry group's members, perhaps none: :meth:`DrlcServerCore.publish`)."""
        if to is None:
            self.core.publish(event, now=now, expected=expected, recipients=recipients)
        else:
            self.core.publish(event, now=now, expected=expected)
        self.sent(event.issuer_event_id, to, recipients)
        return self._event_step(event, to)

    def sent(
        self, issuer_event_id: int, to: Destination | None, recipients: Iterable[str] | None
    ) -> None:
        """Record whom a send of the event to ``to`` reaches, for Get Scheduled Events:
        ``recipients`` names the devices (a ZigBee group's members, the device of a unicast)
        when they are known; an empty list (a group of no members) reaches no one. A
        broadcast reaches everyone, and so does a group whose members are not known (None);
        a unicast to a device not named records nothing (the event's expected devices say
        whom it is for)."""
        if to is None:
            return
        if to.mode == t.AddrMode.Broadcast:
            self.core.sent(issuer_event_id, None)
        elif recipients is not None or not to.unicast:
            self.core.sent(issuer_event_id, recipients)

    def send_event(
        self,
        issuer_event_id: int,
        to: Destination,
        *,
        now: int | None = None,
        recipients: Iterable[str] | None = None,
    ) -> Step:
        """Send a stored event (Load Control Event, D.2.2.3.1) as it was published; with
        ``now`` past the start of an event published for "now", with the absolute start it
        was given (D.2.2.3.1.1.4: 0 is the receiver's now), e.g. late in a long fan-out.
        Whom it reaches is recorded (:meth:`sent`)."""
        event = self.core.event(issuer_event_id)
        if now is not None and event.start_time == START_NOW:
            event = self.core.resent(issuer_event_id, now=now) or event
        self.sent(issuer_event_id, to, recipients)
        return self._event_step(event, to)

    def resend_event(
        self,
        issuer_event_id: int,
        *,
        now: int,
        to: Destination,
        recipients: Iterable[str] | None = None,
        device: str | None = None,
    ) -> Step:
        """Send a stored event once more to a device that missed it (a retry): as
        :meth:`DrlcServerCore.resent` gives it (the absolute start of a start "now" event),
        followed by its Cancel Load Control Event when a cancellation recorded at the ESI
        (for ``device``, its own too) takes effect later. Nothing once the event is over at
        the ESI. Whom it reaches is recorded (:meth:`sent`)."""
        event = self.core.resent(issuer_event_id, now=now, device=device)
        if event is None:
            return Step()
        self.sent(issuer_event_id, to, recipients)
        return Step(sends=self._with_cancel(event, to=to, device=device).sends)

    def _with_cancel(
        self,
        event: LoadControlEvent,
        *,
        to: Destination | None = None,
        reply_to: Any = None,
        device: str | None = None,
    ) -> Step:
        """``event`` and, when the ESI recorded a cancellation of it effective later (for
        ``device``: its own too), the Cancel Load Control Event (at that effective time) the
        device needs with it."""
        sends = [
            Send(
                cluster_id=DRLC,
                command_id=_LOAD_CONTROL_EVENT,
                payload=event_payload(event),
                to=to,
                reply_to=reply_to,
            )
        ]
        cancelled_at = self.core.cancelled_at(event.issuer_event_id, device=device)
        if cancelled_at is not None:
            payload = cancel_payload(event, cancel_control=0, effective_time=cancelled_at)
            sends.append(
                Send(cluster_id=DRLC, command_id=_CANCEL, payload=payload, to=to, reply_to=reply_to)
            )
        return Step(sends=tuple(sends))

    def republish(
        self,
        issuer_event_id: int,
        *,
        now: int,
        to: Destination,
        recipients: Iterable[str] | None = None,
    ) -> tuple[LoadControlEvent, Step]:
        """The event sent again (start "now" and the remaining duration once it has begun)
        and the step sending it; whom it reaches is recorded (:meth:`sent`)."""
        event = self.core.republished(issuer_event_id, now=now)
        self.sent(issuer_event_id, to, recipients)
        return event, self._event_step(event, to)

    def cancel(
        self,
        issuer_event_id: int,
        *,
        cancel_control: int = 0,
        effective_time: int = 0,
        now: int,
        to: Destination | None = None,
    ) -> Step:
        """Record a Cancel Load Control Event (D.2.2.3.2) and send it to ``to``."""
        self.core.cancel(issuer_event_id, effective_time=effective_time, now=now)
        if to is None:
            return Step()
        return self.send_cancel(
            issuer_event_id, to, cancel_control=cancel_control, effective_time=effective_time
        )

    def send_cancel(
        self,
        issuer_event_id: int,
        to: Destination,
        *,
        cancel_control: int = 0,
        effective_time: int = 0,
    ) -> Step:
        """Send Cancel Load Control Event for a stored event without recording it again."""
        payload = cancel_payload(
            self.core.event(issuer_event_id),
            cancel_control=cancel_control,
            effective_time=effective_time,
        )
        return Step(sends=(Send(cluster_id=DRLC, command_id=_CANCEL, payload=payload, to=to),))

    def cancel_all(
        self, *, cancel_control: int = 0, now: int, to: Destination | None = None
    ) -> Step:
        """Record Cancel All Load Control Events (D.2.2.3.3) and send it to ``to``."""
        self.core.cancel_all(now=now)
        if to is None:
            return Step()
        payload = cancel_all_payload(cancel_control)
        return Step(sends=(Send(cluster_id=DRLC, command_id=_CANCEL_ALL, payload=payload, to=to),))

    @staticmethod
    def _event_step(event: LoadControlEvent, to: Destination | None) -> Step:
        if to is None:
            return Step()
        payload = event_payload(event)
        return Step(
            sends=(Send(cluster_id=DRLC, command_id=_LOAD_CONTROL_EVENT, payload=payload, to=to),)
        )

    # -- what devices send --------------------------------------------------------------------

    def receive(self, msg: ZclMessage, command: Any, now: int) -> Step:
        """Act on a client's Report Event Status or Get Scheduled Events; a frame from a
        server is not for this side (the ZCL default answers it)."""
        if msg.from_server:
            return Step()
        if msg.command_id == _GET_SCHEDULED_EVENTS:
            return self._scheduled(msg, command, now)
        return self._report(msg, command)

    def _scheduled(self, msg: ZclMessage, command: Any, now: int) -> Step:
        """Each event in force addressed to the asking device, as a Load Control Event in
        reply (D.2.2.4.1), one issued for "now" with the absolute start it was given, one
        cancelled at a later effective time followed by its Cancel Load Control Event
        (:meth:`DrlcServerCore.scheduled`); NOT_FOUND when there is none."""
        issuer = command.issuer_event_id
        device = device_name(msg.src_ieee, msg.src_nwk)
        events = self.core.scheduled(
            start_time=int(command.start_time),
            number_of_events=int(command.number_of_events),
            issuer_event_id=None if issuer is None else int(issuer),
            now=now,
            device=device,
        )
        if not events:
            return Step(status=foundation.Status.NOT_FOUND)
        return Step(
            sends=tuple(
                send
                for event in events
                for send in self._with_cancel(event, reply_to=msg, device=device).sends
            )
        )

    def _report(self, msg: ZclMessage, command: Any) -> Step:
        report = StatusReport.from_fields(command)
        if report.issuer_event_id not in self.core:
            # Not an event this ESI issued: nothing is stored, and the device gets a Default
            # Response NOT_FOUND (ZCL 2.5.12: an error is answered even with default
            # responses disabled). Checked first, so a flood costs no signature checks.
            self.unknown_reports += 1
            LOGGER.debug(
                "Report Event Status from %s for event 0x%08X this ESI never issued; refused",
                device_name(msg.src_ieee, msg.src_nwk),
                report.issuer_event_id,
            )
            return Step(status=foundation.Status.NOT_FOUND)
        signed = False
        if int(command.signature_type) == SignatureType.ECDSA:
            signed = self.verify is not None and self.verify(msg, report, bytes(command.signature))
            if not signed:
                LOGGER.warning(
                    "Report Event Status from %s: signature does not verify; ignored",
                    device_name(msg.src_ieee, msg.src_nwk),
                )
                return Step(status=foundation.Status.FAILURE)
        device = device_name(msg.src_ieee, msg.src_nwk)
        new = self.core.record(device, report, signed=signed)
        received = ReportReceived(
            device=device, source_nwk=msg.src_nwk, report=report, signed=signed, new=new
        )
        return Step(events=(received,), status=foundation.Status.SUCCESS)

    def next_deadline(self) -> int | None:
        """The server waits for nothing."""
        return None

    def handle_timeout(self, now: int) -> Step:
        """Nothing is ever due."""
        return Step()


# -- the client (HAN device) --------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ClientStep(Step):
    """A client :class:`~zse.zcl.frame.Step` (events: the application's
    :class:`~zse.drlc.ApplyLoadControl` / :class:`~zse.drlc.StopLoadControl`) and the reports
    the table produced, in order: the shell journals them with the table, then hands them to
    the :class:`ReportOutbox`, which sends them (a report is owed until it leaves)."""

    reports: tuple[Outgoing, ...] = ()


def _client_step(step: CoreStep, status: foundation.Status | None = None) -> ClientStep:
    return ClientStep(events=tuple(step.actions), reports=tuple(step.reports), status=status)


class DrlcClientProtocol:
    """A HAN device's DRLC client (SE D.2.3) at the ZCL frame, on a
    :class:`~zse.drlc.DrlcClientCore`.

    ``sign`` gives a report's signature pair (None: :func:`unsigned`). Its reports leave through
    :attr:`outbox`, which holds each back by a random delay in ``[0, report_delay]`` seconds
    drawn from the core's ``rng``. The table's deadlines (:meth:`next_deadline`) are ZigBee
    UTCTime; the outbox's are the shell's loop seconds.
    """

    def __init__(
        self,
        core: DrlcClientCore,
        *,
        sign: ReportSigner | None = None,
        report_delay: float = 0.0,
    ) -> None:
        self.core = core
        self.sign = sign if sign is not None else unsigned
        self.outbox = ReportOutbox(self.report_sends, core.rng, report_delay)

    @staticmethod
    def decode(msg: ZclMessage) -> Any:
        """The command a server sent in ``msg`` (None for a frame from a client);
        :class:`~zse.errors.InvalidFrame` if its payload does not decode."""
        return _decode(msg, from_server=True)

    def receive(self, msg: ZclMessage, command: Any, now: int) -> ClientStep:
        """Act on a Load Control Event, Cancel or Cancel All (D.2.3.4). Silence on a
        mismatch, a Default Response SUCCESS for a Cancel All that found nothing (D.2.3.4.3);
        every other answer is a Report Event Status. A frame from a client:
        UNSUP_CLUSTER_COMMAND."""
        if not msg.from_server:
            return ClientStep(status=foundation.Status.UNSUP_CLUSTER_COMMAND)
        esi = esi_key(msg)
        core = self.core
        if msg.command_id == _LOAD_CONTROL_EVENT:
            step = core.receive_event(LoadControlEvent.from_fields(command), esi=esi, now=now)
        elif msg.command_id == _CANCEL:
            step = core.receive_cancel(
                int(command.issuer_event_id),
                device_class=int(command.device_class),
                utility_enrollment_group=int(command.utility_enrollment_group),
                cancel_control=int(command.cancel_control),
                effective_time=int(command.effective_time),
                esi=esi,
                now=now,
            )
        else:
            step = core.receive_cancel_all(
                cancel_control=int(command.cancel_control), esi=esi, now=now
            )
        return _client_step(step, None if step.reports else foundation.Status.SUCCESS)

    def opt_out(self, issuer_event_id: int, *, now: int) -> ClientStep:
        """The user opts out (status 0x04 now while the event runs, at its start before it);
        raises OptOutRefused or UnknownEvent."""
        return _client_step(self.core.opt_out(issuer_event_id, now=now))

    def opt_in(self, issuer_event_id: int, *, now: int) -> ClientStep:
        """The user opts back in (status 0x05); raises UnknownEvent."""
        return _client_step(self.core.opt_in(issuer_event_id, now=now))

    def get_scheduled_events(
        self, to: Destination, *, start_time: int = 0, number_of_events: int = 0
    ) -> Step:
        """Ask the ESI at ``to`` for its events (D.2.3.3.2); the APS acknowledgement confirms
        delivery, so no Default Response is asked for (ZCL 2.4.1.1.4)."""
        payload = get_scheduled_events_payload(start_time, number_of_events)
        send = Send(
            cluster_id=DRLC,
            command_id=_GET_SCHEDULED_EVENTS,
            payload=payload,
            to=to,
            default_response=False,
        )
        return Step(sends=(send,))

    def report_sends(self, outgoing: Outgoing) -> tuple[Send, ...]:
        """A report to each of its ESIs, signed now; delivery is confirmed by the APS
        acknowledgement, so no Default Response is asked for (ZCL 2.4.1.1.4)."""
        payload = report_payload(outgoing.report, *self.sign(outgoing.report))
        return tuple(
            Send(
                cluster_id=DRLC,
                command_id=_REPORT_EVENT_STATUS,
                payload=payload,
                to=Destination.device(*esi_address(esi)),
                default_response=False,
            )
            for esi in outgoing.esis
        )

    def next_deadline(self) -> int | None:
        """The table's next transition (UTCTime)."""
        return self.core.next_deadline()

    def handle_timeout(self, now: int) -> ClientStep:
        """The transitions due at ``now``."""
        return _client_step(self.core.handle_timeout(now))


class ReportOutbox:
    """The client's reports waiting to leave, in order, in loop time (a source of its timer).

    ``queue`` holds (journal seq, report, loop time before which it may not leave). A report
    is due once its random delay is over; :meth:`due` gives its frames, the shell sends them
    and calls :meth:`sent`, or :meth:`failed` when the radio could not deliver, after which
    the first report waits for the next flush (:meth:`retry`: the next input or deadline).
    """

    def __init__(
        self,
        sends: Callable[[Outgoing], tuple[Send, ...]],
        rng: random.Random,
        report_delay: float = 0.0,
    ) -> None:
        self._sends = sends
        self._rng = rng
        self.report_delay = report_delay
        self.queue: list[tuple[int | None, Outgoing, float]] = []
        self.stalled = False

    def add(self, outgoing: Outgoing, *, seq: int | None, now: float) -> None:
        """Queue a report (``seq``: its journal entry); it may leave at ``now``, or after a
        random delay in ``[0, report_delay]`` s so that devices answering one group or
        broadcast event do not all answer at once. Order is kept, so each report still
        leaves within ``report_delay`` of its transition."""
        due = now + self._rng.uniform(0, self.report_delay) if self.report_delay else 0.0
        self.queue.append((seq, outgoing, due))

    def retry(self) -> None:
        """A flush begins: the first report may be tried again."""
        self.stalled = False

    def due(self, now: float) -> Step | None:
        """The frames of the first report if it may leave at ``now``, else None."""
        if self.stalled or not self.queue:
            return None
        _, outgoing, due = self.queue[0]
        if due > now:
            return None
        return Step(sends=self._sends(outgoing))

    def sent(self) -> int | None:
        """The first report left: dropped from the queue; its journal seq."""
        return self.queue.pop(0)[0]

    def failed(self) -> None:
        """The first report could not be sent: it waits for the next flush."""
        self.stalled = True

    def next_deadline(self) -> float | None:
        """When the first report may leave, unless its send failed."""
        return None if self.stalled or not self.queue else self.queue[0][2]

    def handle_timeout(self, now: float) -> float:
        """Nothing to decide: the shell flushes the queue as of ``now``."""
        return now


if TYPE_CHECKING:  # both roles satisfy the contract of cores at the ZCL frame (mypy checks it)

    def _frame_cores(
        server: DrlcServerProtocol, client: DrlcClientProtocol
    ) -> tuple[FrameCore, FrameCore]:
        return server, client
