"""Key Establishment over inter-PAN (SE C.3 carried by SE Annex B frames): the hub's responder
and a never-joined device's initiator, both suites.

GB smart metering's installer terminal establishes a link key with the communications hub over
inter-PAN before it has joined anything (GB Companion Specification, "Establishing a connection
between an HHT and a Communications Hub"); Silicon Labs' stack offers key establishment over
inter-PAN for it. The exchange is the one of the network (zse's :mod:`zse.cbke.machine` state
machines, unchanged): the eight Key Establishment commands travel as cluster-specific ZCL
frames on cluster 0x0800 and profile 0x0109 in unicast inter-PAN frames, unsecured (there is no
key yet), default responses disabled (a Default Response is not an inter-PAN command); every one
fits one inter-PAN frame on both suites (an Initiate request of suite 2 is 81 octets of ZCL).
Read Attributes does not cross inter-PAN, so the initiator is told the hub's suites
(``hub_suites``) instead of reading KeyEstablishmentSuite. The result is the link key of
:class:`~zse.interpan.secure.InterPanSecurity`: frames after it are APS-secured with it.

The hub's inter-PAN window must admit the commands
(:data:`~zse.interpan.window.KE_INTERPAN_COMMANDS`); its rate limits apply to them as to
everything else (a partner whose key is established is trusted by the window from then on: its
certificate authenticated it), and the machine's session table (``max_sessions``, stalled
sessions evicted) keeps a flood of initiators from holding the hub. Admission is fair by source
(issue #20.4): the window prefers a source that tries again over a first contact, and a partner
whose session is in progress is vouched for (its own budget until the session's deadline), so a
terminal that got its Initiate through is not starved of its next messages by a flood.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass

from zigpy.types import EUI64

from zse.cbke.credentials import Credentials
from zse.cbke.machine import (
    Computation,
    ComputeResult,
    Established,
    Initiator,
    KeyEstablishmentServer,
    Step,
    Terminated,
)
from zse.cbke.messages import Message
from zse.cbke.service import KeyEstablishmentFailed, eui64_bytes
from zse.errors import InvalidFrame
from zse.interpan._codec import InterPanFrame
from zse.interpan._zcl import Direction, FrameType, ZclHeader
from zse.interpan.service import InterPanService
from zse.se.ids import KEY_ESTABLISHMENT
from zse.zcl.frame import encode_zcl_header
from zse.zcl.timer import wait_cancelled

__all__ = [
    "InterPanKeyEstablished",
    "InterPanKeyServer",
    "establish_over_interpan",
]

LOGGER = logging.getLogger(__name__)

# ZCL frame control: cluster-specific, default response disabled, server-to-client bit.
_CLUSTER_SPECIFIC = 0x01
_DISABLE_DEFAULT_RESPONSE = 0x10
_SERVER_TO_CLIENT = 0x08


@dataclass(frozen=True, kw_only=True)
class InterPanKeyEstablished:
    """Key establishment over inter-PAN succeeded with ``partner`` (the key is installed in
    the service's :class:`~zse.interpan.secure.InterPanSecurity`, never carried here)."""

    partner: EUI64
    suite: str


def _zcl(message: Message, tsn: int, *, from_server: bool) -> bytes:
    control = _CLUSTER_SPECIFIC | _DISABLE_DEFAULT_RESPONSE | (_SERVER_TO_CLIENT * from_server)
    return encode_zcl_header(control, None, tsn, message.command_id) + message.encode()


def _ke_command(frame: InterPanFrame, direction: Direction) -> tuple[int, bytes] | None:
    """The command id and payload of a Key Establishment frame in ``direction``, or None."""
    if frame.cluster_id != KEY_ESTABLISHMENT:
        return None
    try:
        header = ZclHeader.from_bytes(frame.payload)
    except InvalidFrame:
        return None
    if header.frame_type is not FrameType.CLUSTER_COMMAND or header.direction is not direction:
        return None
    return header.command_id, frame.payload[header.length :]


async def _computed(
    step: Step, complete: Callable[[Computation, ComputeResult], Step], executor: Executor | None
) -> Step:
    """``step`` with its computations run off the event loop and fed back."""
    loop = asyncio.get_running_loop()
    while step.compute is not None:
        computation = step.compute
        result = await loop.run_in_executor(executor, computation.run)
        step = Step(send=step.send, events=step.events).then(complete(computation, result))
    return step


class InterPanKeyServer:
    """The hub's (ESI's) Key Establishment responder over inter-PAN, for any number of
    never-joined partners, ``max_sessions`` at a time (SE C.3.1)."""

    def __init__(
        self,
        service: InterPanService,
        credentials: Credentials | Iterable[Credentials],
        *,
        max_sessions: int = 2,
        executor: Executor | None = None,
        on_established: Callable[[InterPanKeyEstablished], None] | None = None,
        **responder_options: object,
    ) -> None:
        if service.security is None:
            raise ValueError("key establishment over inter-PAN needs an InterPanSecurity")
        self.service = service
        self.core = KeyEstablishmentServer(
            credentials,
            max_sessions=max_sessions,
            **responder_options,  # type: ignore[arg-type]
        )
        self.executor = executor
        self.on_established = on_established
        self.established = 0
        self.terminated = 0
        #: Exchanges ended because an answer could not be delivered (no MAC acknowledgement).
        self.unreachable = 0
        self._task: asyncio.Task[None] | None = None
        self._tsn = itertools.count()

    def start(self) -> None:
        """Serve Key Establishment frames until :meth:`stop` or the service closes."""
        inbox = self.service.subscribe([KEY_ESTABLISHMENT])
        self._task = asyncio.get_running_loop().create_task(self._serve(inbox))

    async def stop(self) -> None:
        """Stop serving. The serving task's cancellation ends here; a cancellation of the
        caller's own task while it waits goes on up (as :meth:`zse.zcl.timer.Timer.stop`)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        await wait_cancelled(task)

    async def _serve(self, inbox: object) -> None:
        """Take the frames in the order they came and time the sessions out, each frame
        judged by when it arrived (:class:`~zse.interpan.service.Arrival`): one that came
        before its session's deadline but waited in the inbox while the hub computed for
        other partners (a flood) is served, one that came at or after it finds the session
        timed out (SE C.3.1: the partner's own deadline is what it was sent, not how busy the
        hub is). The timeouts due are handled on every turn, not only when no frame is
        waiting: before the first frame that came at or after them, so under a flood, where
        frames are always waiting, a silent session does not keep its slot
        (``max_sessions``) for as long as the flood."""
        from zse.interpan.service import Inbox  # noqa: PLC0415 - a name for the type only

        assert isinstance(inbox, Inbox)
        while True:
            deadline = self.core.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - self.service.now())
            arrival = await inbox.arrival(timeout)  # one waiting: at once, even past a deadline
            if arrival is None:
                if inbox._closed:
                    return
                self._time_out(self.service.now())  # a deadline came, no frame before it
                continue
            if deadline is not None and deadline <= arrival.at:
                self._time_out(arrival.at)  # the deadlines that came before this frame
            command = _ke_command(arrival.frame, Direction.Client_to_Server)
            if command is not None:
                await self._on_command(arrival.frame, arrival.at, *command)

    def _time_out(self, now: float) -> None:
        for partner, step in self.core.handle_timeout(now):
            self._tell(EUI64(partner[::-1]), step)

    async def _on_command(
        self, frame: InterPanFrame, arrived: float, command_id: int, payload: bytes
    ) -> None:
        partner = eui64_bytes(frame.src_ieee)
        step = self.core.receive_payload(partner, command_id, payload, arrived)
        step = await _computed(
            step,
            lambda c, r: self.core.complete(partner, c, r, self.service.now()),
            self.executor,
        )
        tsn = frame.payload[1] if len(frame.payload) > 1 else next(self._tsn) & 0xFF
        for message in step.send:
            try:
                await self.service.reply(
                    frame,
                    cluster_id=KEY_ESTABLISHMENT,
                    payload=_zcl(message, tsn, from_server=True),
                )
            except OSError as exc:  # the partner times out on its side
                LOGGER.debug(
                    "key establishment answer to %s not delivered: %s", frame.src_ieee, exc
                )
                self.core.abort(partner, self.service.now())
                self._unvouch(frame.src_ieee)
                self.unreachable += 1
                return
        # told first: an exchange the step ended (the old session of a partner that started
        # again after its deadline) takes its vouch away before the new session's is given
        self._tell(frame.src_ieee, step)
        self._vouch(frame.src_ieee, partner)

    def _vouch(self, source: EUI64, partner: bytes) -> None:
        """A partner whose session goes on has its own window budget until the session's
        deadline: once it progresses it no longer competes with a flood (issue #20.4); the
        session table bounds how many are vouched for."""
        window = self.service.window
        responder = self.core.session(partner)
        if window is None or responder is None:
            return
        deadline = responder.next_deadline()
        if deadline is not None:
            window.limiter.vouch(source, self.service.now(), deadline)

    def _unvouch(self, source: EUI64) -> None:
        if self.service.window is not None:
            self.service.window.limiter.unvouch(source)

    def _tell(self, partner: EUI64, step: Step) -> None:
        for event in step.events:
            if isinstance(event, Established):
                assert self.service.security is not None
                self.service.security.add_key(partner, event.key_data)
                window = self.service.window
                if window is not None:  # authenticated by its certificate: its own budget
                    window.limiter.trust(partner, self.service.now())
                self.established += 1
                LOGGER.info("inter-PAN key established with %s (%s)", partner, event.suite.name)
                if self.on_established is not None:
                    try:
                        self.on_established(
                            InterPanKeyEstablished(partner=partner, suite=event.suite.name)
                        )
                    except Exception:  # the application's fault: serving goes on
                        LOGGER.exception(
                            "inter-PAN key established with %s: on_established failed", partner
                        )
            elif isinstance(event, Terminated):
                self._unvouch(partner)
                self.terminated += 1
                LOGGER.info("inter-PAN key establishment with %s ended: %s", partner, event)


async def establish_over_interpan(
    service: InterPanService,
    credentials: Credentials | Iterable[Credentials],
    *,
    hub: EUI64,
    hub_pan_id: int,
    hub_suites: int = 0x0003,
    executor: Executor | None = None,
    **initiator_options: object,
) -> InterPanKeyEstablished:
    """Run Key Establishment as the initiator (SE C.3.2) with the hub over inter-PAN; on
    success the key is installed in ``service.security`` for ``hub``. Raises
    :class:`~zse.cbke.service.KeyEstablishmentFailed` with the spec's outcome otherwise (the
    hub terminated, or did not answer in time)."""
    if service.security is None:
        raise ValueError("key establishment over inter-PAN needs an InterPanSecurity")
    initiator = Initiator(
        credentials,
        eui64_bytes(hub),
        partner_suites=hub_suites,
        **initiator_options,  # type: ignore[arg-type]
    )
    inbox = service.subscribe([KEY_ESTABLISHMENT])
    tsn = itertools.count(1)
    try:
        step = initiator.start(service.now())
        while True:
            step = await _computed(
                step,
                lambda c, r: initiator.complete(c, r, service.now()),
                executor,
            )
            for message in step.send:
                frame = service.frame(
                    cluster_id=KEY_ESTABLISHMENT,
                    payload=_zcl(message, next(tsn) & 0xFF, from_server=False),
                    dst_pan_id=hub_pan_id,
                    dst=hub,
                )
                try:
                    await service.send(frame)
                except OSError:
                    step = step.then(initiator.abort(service.now()))
            for event in step.events:
                if isinstance(event, Established):
                    service.security.add_key(hub, event.key_data)
                    return InterPanKeyEstablished(partner=hub, suite=event.suite.name)
                if isinstance(event, Terminated):
                    raise KeyEstablishmentFailed(event)
            step = await _next_step(service, inbox, initiator, hub, hub_pan_id)
    finally:
        service.unsubscribe(inbox)


async def _next_step(
    service: InterPanService, inbox: object, initiator: Initiator, hub: EUI64, hub_pan_id: int
) -> Step:
    """The machine's next step: the hub's answer (from its EUI-64 and PAN), or its timeout."""
    from zse.interpan.service import Inbox  # noqa: PLC0415 - a name for the type only

    assert isinstance(inbox, Inbox)
    while True:
        deadline = initiator.next_deadline()
        if deadline is None:
            return initiator.abort(service.now())
        arrival = await inbox.arrival(max(0.0, deadline - service.now()))
        if arrival is None:
            step = initiator.handle_timeout(service.now())
            if step.events or step.send:
                return step
            continue
        frame = arrival.frame
        command = _ke_command(frame, Direction.Server_to_Client)
        if command is None or frame.src_ieee != hub or not frame.from_pan(hub_pan_id):
            continue
        return initiator.receive_payload(*command, arrival.at)  # judged by its arrival
