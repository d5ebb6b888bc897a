"""How a headend reaches a meter: the seam between "what to do on a meter" and "how it gets
there" (docs/adr/0018).

A :class:`Delivery` says what to do: a by-group send's message (SE D.5.2.3.1) or Load Control
Event (D.2.2.3.1) to one device of one meter, with an idempotency key. A :class:`MeterLink`
carries it out and returns the meter's :class:`Answer` (delivered, offline or skipped), or
raises :class:`MeterUnreachable` when the meter did not answer; it also hands the devices'
reports (Message Confirmation, Report Event Status) to whoever follows it.

Two links: :class:`EsiLink` over ESIs in this process (the default of ``zse headend serve``),
and :class:`zse.headend.gateway.GatewayLink` over MQTT to meters that each run the ``zse mqtt``
bridge (a meter as a gateway).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from zse.drlc import LoadControlEvent
from zse.drlc.core import EventIdInUse, UnknownEvent
from zse.errors import ZseError
from zse.headend.core import Outcome, SendKind, outcome_of_report, refused
from zse.messaging import Message
from zse.messaging.core import MessageError, displayable_text
from zse.provisioning import LifecycleState
from zse.roles.esi import (
    DeviceRemoved,
    EnergyServiceInterface,
    EsiEvent,
    MessageConfirmed,
    ReportReceived,
)

__all__ = [
    "Answer",
    "Delivery",
    "EsiLink",
    "Lifecycle",
    "LifecycleListener",
    "MeterLink",
    "MeterUnreachable",
    "Report",
    "ReportListener",
    "too_late",
]


class MeterUnreachable(ZseError):
    """The meter did not answer (its gateway is offline, or the broker is away)."""


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """What to do on a meter: send ``payload`` (a :class:`~zse.messaging.Message`'s or a
    :class:`~zse.drlc.LoadControlEvent`'s fields) to ``device``; ``key`` identifies this
    delivery (a meter that has carried it out answers again without doing it again);
    ``send_by``: the event loop's time after which it must not be sent any more (its
    worker's lease is ending: :class:`MeterUnreachable`, nothing sent)."""

    key: str
    meter: str
    device: str
    kind: SendKind
    payload: Mapping[str, Any]
    send_by: float | None = None

    def message(self) -> Message:
        """The display message (``kind`` MESSAGE); a job queued before control characters
        were refused has them shown as U+FFFD (as a message from an older store)."""
        payload = dict(self.payload)
        if isinstance(payload.get("text"), str):
            payload["text"] = displayable_text(payload["text"])
        return Message(**payload)

    def event(self) -> LoadControlEvent:
        """The Load Control Event (``kind`` LOAD_CONTROL)."""
        return LoadControlEvent(**self.payload)


@dataclass(frozen=True, kw_only=True)
class Answer:
    """The meter's answer for one device: DELIVERED, OFFLINE or SKIPPED, and why; ``final``:
    not to be tried again (the meter refused it)."""

    outcome: Outcome
    detail: str = ""
    final: bool = False


@dataclass(frozen=True, kw_only=True)
class Report:
    """A device's report on a send: its send id (message id or issuer event id) and the
    outcome it means (CONFIRMED, or a Report Event Status's); ``meter``: the meter that told
    it (its gateway's topic, its ESI's id), whose device's outcome alone it may move (None:
    not known, not checked); ``event_status``: the Report Event Status value (SE
    D.2.3.3.1.1.2, Table D-5; None: a Message Confirmation), which tells an event cancelled
    on the device (0x06) from one superseded (0x07), both CANCELLED."""

    device: str
    send: int
    kind: SendKind
    outcome: Outcome
    meter: str | None = None
    event_status: int | None = None


#: A listener may return what to await before the report counts as handled (recorded): a
#: link that can have it sent again (:class:`~zse.headend.gateway.GatewayLink`) waits for it.
ReportListener = Callable[[Report], Awaitable[Any] | None]


@dataclass(frozen=True, kw_only=True)
class Lifecycle:
    """A meter moved one of its devices (its ESI's ``LifecycleChanged``, SE 5.4.8.1): the
    meter, the device, the registry event, the states and the meter's time (ZigBee UTCTime)."""

    meter: str
    device: str
    event: str
    from_state: LifecycleState | None
    to_state: LifecycleState
    detail: str
    time: int


LifecycleListener = Callable[[Lifecycle], Awaitable[Any] | None]

#: The ESI's per-device outcomes as a headend's.
ESI_OUTCOMES = {
    "delivered": Outcome.DELIVERED,
    "offline": Outcome.OFFLINE,
    "skipped": Outcome.SKIPPED,
}


class MeterLink(ABC):
    """How deliveries reach meters (see the module notes)."""

    #: Whether a worker over this link carries out the headend's cancel jobs
    #: (:mod:`zse.headend.control`) even when it is not given their
    #: :class:`~zse.headend.control.Control`: a link to meters in this process, whose headend
    #: queues its cancels as a gateway's (:class:`~zse.headend.directory.EsiMeters`).
    cancels_here = False

    def __init__(self) -> None:
        self._listeners: list[ReportListener] = []
        self._lifecycle: list[LifecycleListener] = []

    @abstractmethod
    async def deliver(self, delivery: Delivery) -> Answer:
        """Carry ``delivery`` out on its meter; :class:`MeterUnreachable` if it did not
        answer."""

    async def command(
        self, meter: str, name: str, body: Mapping[str, Any], *, send_by: float | None = None
    ) -> dict[str, Any]:
        """Send ``meter`` the control command ``name`` (the ``zse mqtt`` bridge's, its
        ``correlation_id`` in ``body``), not after ``send_by`` (the event loop's time); the
        meter's response (:class:`MeterUnreachable` if it did not answer, or was not sent in
        time). Only a link to gateways has them."""
        raise MeterUnreachable(f"meter {meter}: no {name} command over this link")

    def on_lifecycle(self, listener: LifecycleListener) -> Callable[[], None]:
        """Call ``listener`` with each lifecycle change of a device; returns the function
        that stops it."""
        return _listen(self._lifecycle, listener)

    def _changed(self, change: Lifecycle) -> list[Awaitable[Any]]:
        """Tell the listeners; what they returned to await."""
        return _told(self._lifecycle, change)

    async def start(self) -> None:  # noqa: B027 - optional
        """Connect (a link over a network)."""

    @property
    def session(self) -> str | None:
        """The broker session this link holds (its client id), if any."""
        return None

    async def adopt(self, session: str) -> int:
        """Take over ``session``, of a worker gone for good, and end it (a link over a
        broker); how many events were handed over."""
        return 0

    async def close(self) -> None:  # noqa: B027 - optional
        """Disconnect."""

    def on_report(self, listener: ReportListener) -> Callable[[], None]:
        """Call ``listener`` with each device report; returns the function that stops it."""
        return _listen(self._listeners, listener)

    def _reported(self, report: Report) -> list[Awaitable[Any]]:
        """Tell the listeners; what they returned to await."""
        return _told(self._listeners, report)


def too_late(meter: str, send_by: float | None) -> None:
    """:class:`MeterUnreachable` if the event loop's time is past ``send_by``: a command
    whose worker's lease is ending is not sent (the worker that takes it over sends it)."""
    if send_by is not None and asyncio.get_running_loop().time() >= send_by:
        raise MeterUnreachable(f"meter {meter}: not sent, the worker's lease was ending")


def _told(listeners: list[Any], what: Any) -> list[Awaitable[Any]]:
    """Call each of ``listeners`` with ``what``; the awaitables they returned."""
    waits = (listener(what) for listener in list(listeners))
    return [wait for wait in waits if wait is not None]


def _listen(listeners: list[Any], listener: Any) -> Callable[[], None]:
    """Add ``listener`` to ``listeners``; the function that removes it."""
    listeners.append(listener)

    def remove() -> None:
        with contextlib.suppress(ValueError):
            listeners.remove(listener)

    return remove


class EsiLink(MeterLink):
    """Meters whose ESIs run in this process (``esis`` by meter id): deliveries, and the
    cancel commands of the headend's cancel jobs (:meth:`command`)."""

    cancels_here = True

    def __init__(self, esis: Mapping[str, EnergyServiceInterface]) -> None:
        super().__init__()
        self.esis = dict(esis)
        self._detach: list[Callable[[], None]] = []

    async def start(self) -> None:
        # each ESI's reports name its meter: the id its deliveries name (an ESI has none)
        self._detach = [
            esi.on_event(functools.partial(self._on_event, meter=meter))
            for meter, esi in self.esis.items()
        ]

    async def close(self) -> None:
        for detach in self._detach:
            detach()
        self._detach = []

    async def deliver(self, delivery: Delivery) -> Answer:
        esi = self.esis.get(delivery.meter)
        if esi is None:
            raise MeterUnreachable(f"no meter {delivery.meter!r} in this process")
        too_late(delivery.meter, delivery.send_by)
        try:
            if delivery.kind is SendKind.MESSAGE:
                result = await esi.send_message(delivery.message(), device=delivery.device)
            else:
                result = await esi.send_load_control(delivery.event(), device=delivery.device)
        except (EventIdInUse, DeviceRemoved) as exc:  # refused, as a bridge answers it: final
            field = "issuer_event_id" if isinstance(exc, EventIdInUse) else exc.field
            return Answer(outcome=Outcome.SKIPPED, detail=refused(field, exc), final=True)
        (outcome,) = result.outcomes
        return Answer(outcome=ESI_OUTCOMES[outcome.outcome.value], detail=outcome.detail)

    async def command(
        self, meter: str, name: str, body: Mapping[str, Any], *, send_by: float | None = None
    ) -> dict[str, Any]:
        """Carry out a cancel job's command (``cancel_message``, SE D.5.2.3.2;
        ``cancel_load_control``, D.2.2.3.2) on the device's ESI and answer as the ``zse
        mqtt`` bridge does (docs/mqtt.md): ``ok`` with the device's outcome (``offline``: sent
        again on the back-off, :meth:`~zse.headend.control.Control.complete`), an ``error``
        naming the field when the ESI refuses it (it never held the send: nothing to take
        back). :class:`MeterUnreachable` if the ESI is not here or failed (tried again with
        the same correlation id) or the worker's lease is ending (nothing sent)."""
        esi = self.esis.get(meter)
        if esi is None:
            raise MeterUnreachable(f"no meter {meter!r} in this process")
        field = _CANCEL_FIELDS.get(name)
        if field is None:
            return _error(name, body, "command", f"no {name[:40]!r} command for an ESI here")
        too_late(meter, send_by)
        sent_id, device = body.get(field), body.get("device")
        if not isinstance(sent_id, int) or isinstance(sent_id, bool):
            return _error(name, body, field, "not an integer")
        if not isinstance(device, str):
            return _error(name, body, "device", "not an EUI-64")
        try:
            if name == "cancel_message":
                result = await esi.cancel_message(sent_id, device=device)
            else:
                result = await esi.cancel_load_control(sent_id, device=device)
        except (MessageError, UnknownEvent) as exc:  # never held: the bridge's refusal
            return _error(name, body, "target", str(exc))
        except ZseError as exc:  # the ESI stopped, say: not carried out, tried again
            raise MeterUnreachable(f"meter {meter}: {exc}") from None
        outcomes = [
            {"device": str(o.device), "outcome": o.outcome.value, "detail": o.detail}
            for o in result.outcomes
        ]
        return {
            "command": name,
            "correlation_id": body.get("correlation_id"),
            "status": "ok",
            "result": {"outcomes": outcomes},
        }

    def _on_event(self, event: EsiEvent, *, meter: str | None = None) -> Awaitable[Any] | None:
        """Hand a confirmation or a report (of ``meter``'s ESI) to the listeners; what they
        still do with it (the ESI marks it told once that is done)."""
        waits: list[Awaitable[Any]] = []
        if isinstance(event, MessageConfirmed):
            waits = self._reported(
                Report(
                    device=str(event.device),
                    send=event.message.message_id,
                    kind=SendKind.MESSAGE,
                    outcome=Outcome.CONFIRMED,
                    meter=meter,
                )
            )
        elif isinstance(event, ReportReceived):  # a repeat too: outcomes only move forward
            waits = self._reported(
                Report(
                    device=str(event.device),
                    send=event.report.issuer_event_id,
                    kind=SendKind.LOAD_CONTROL,
                    outcome=outcome_of_report(event.report.event_status),
                    meter=meter,
                    event_status=int(event.report.event_status),
                )
            )
        return asyncio.gather(*waits) if waits else None


#: The cancel commands an :class:`EsiLink` carries out, and the field naming the send.
_CANCEL_FIELDS = {"cancel_message": "message_id", "cancel_load_control": "issuer_event_id"}


def _error(name: str, body: Mapping[str, Any], field: str, message: str) -> dict[str, Any]:
    """A command's refusal, as the ``zse mqtt`` bridge answers one."""
    return {
        "command": name,
        "correlation_id": body.get("correlation_id"),
        "status": "error",
        "error": {"field": field, "message": message},
    }
