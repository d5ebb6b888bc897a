"""Asyncio shells for inter-PAN: ZCL over a transport, the window, and the HHT carrier.

:class:`InterPanService` binds a transport (EZSP, Z-Stack or simulator) to the sans-IO core
(:class:`~zse.interpan.link.InterPanLink`, with the window and the whitelist):
it refuses to send a command the whitelist does not allow (SE Annex B.5: only the commands the
application chose may cross inter-PAN), numbers outgoing MAC sequence numbers, and yields only
the received frames the window admits (or, without a window, the whitelisted ones). A received
frame not addressed to this node (:meth:`InterPanLink.misaddressed
<zse.interpan.link.InterPanLink.misaddressed>`) is dropped first, before anything else is done
with it. With an :class:`~zse.interpan.secure.InterPanSecurity` it opens APS-secured frames
before the window judges them (a failing one is dropped and counted) and seals what it is asked
to send secured (a transport that cannot carry them, Z-Stack's, is refused at construction);
with a :class:`~zse.interpan.fragment.Reassembler` it answers unicast fragments (one starting a
message only if the window lets its sender in) and passes on the message once whole, and
:meth:`InterPanService.send_message` sends a long one as fragments.
:func:`serve_meter` and :func:`run_terminal` run the HHT command carrier on top of it; the
clock is the event loop's, so on the simulator's virtual-time loop nothing waits for real.
:func:`answer_carrier` is how both carrier shells run an :class:`~zse.interpan.hht.HhtMeter`:
its log writes (a :class:`~zse.interpan.hht.FileLog`'s fsync) off the event loop; to shut down,
stop the shells, ``await drain(meter)`` (:func:`drain`), then close the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace

from zigpy.types import EUI64
from zigpy.zcl import foundation

from zse.errors import InvalidFrame
from zse.interpan._codec import MAX_ZCL_LENGTH, DeliveryMode, InterPanFrame
from zse.interpan._zcl import ZclHeader
from zse.interpan.fragment import (
    FRAGMENT_OVERHEAD,
    FragmentSender,
    Reassembler,
    is_fragment,
    is_fragment_response,
)
from zse.interpan.hht import CARRIER_CLUSTER_ID, HhtMeter, HhtTerminal, LogWrite, Result
from zse.interpan.link import InterPanLink, LinkLost, TerminalExchange
from zse.interpan.secure import MAX_SECURED_ZCL_LENGTH, InterPanSecurity
from zse.interpan.transports._base import InterPanTransport, SecuredInterPanUnsupported
from zse.interpan.window import CommandWhitelist, InterPanWindow
from zse.zcl.endpoint import ZclMessage, ZclPort

__all__ = [
    "Arrival",
    "Inbox",
    "InterPanService",
    "LinkLost",
    "answer_carrier",
    "drain",
    "run_terminal",
    "serve_carrier_on_endpoint",
    "serve_meter",
]

LOGGER = logging.getLogger(__name__)


class InterPanService:
    """ZCL over inter-PAN for one local node (``ieee`` on ``pan_id``): the I/O of an
    :class:`~zse.interpan.link.InterPanLink` (:attr:`link`), which decides what is admitted,
    sent and how it is addressed."""

    def __init__(
        self,
        transport: InterPanTransport,
        *,
        ieee: EUI64,
        pan_id: int,
        window: InterPanWindow | None = None,
        whitelist: CommandWhitelist | None = None,
        clock: Callable[[], float] | None = None,
        security: InterPanSecurity | None = None,
        reassembler: Reassembler | None = None,
        fragment_timeout: float = 2.0,
    ) -> None:
        if security is not None and not getattr(transport, "carries_aps_security", True):
            raise SecuredInterPanUnsupported(
                f"{type(transport).__name__} cannot carry APS-secured inter-PAN frames (Z-Stack "
                "refuses to send them and drops them on receipt): use an EZSP radio or the "
                "simulator for secured inter-PAN, or no security"
            )
        self.transport = transport
        #: Link keys and counters of APS-secured inter-PAN (None: secured frames are dropped).
        self.security = security
        #: Fragmented messages received (None: fragments are dropped).
        self.reassembler = reassembler
        self.fragment_timeout = fragment_timeout
        #: Frames dropped before the window: fragments without a reassembler or unsecured,
        #: secured frames without security.
        self.dropped: dict[str, int] = {"fragment": 0, "secured": 0}
        #: Fragment responses the transport failed to send (reception goes on).
        self.unanswered = 0
        self._responses: dict[bytes, asyncio.Queue[bytes]] = {}
        #: Fragmented messages to each partner, sent one at a time: the lock and its users.
        self._sending: dict[bytes, tuple[asyncio.Lock, list[None]]] = {}
        self.link = InterPanLink(ieee=ieee, pan_id=pan_id, window=window, whitelist=whitelist)
        #: A frame from this node: unicast to ``dst``, group ``group_id``, else broadcast
        #: (:meth:`InterPanLink.frame <zse.interpan.link.InterPanLink.frame>`).
        self.frame = self.link.frame
        self._clock = clock
        self._inboxes: list[Inbox] = []
        self._default: Inbox | None = None
        self._pump: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def ieee(self) -> EUI64:
        return self.link.ieee

    @property
    def pan_id(self) -> int:
        return self.link.pan_id

    @property
    def window(self) -> InterPanWindow | None:
        return self.link.window

    @property
    def whitelist(self) -> CommandWhitelist:
        return self.link.whitelist

    def now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    async def send(self, frame: InterPanFrame, *, secure: bool = False) -> None:
        """Send a whitelisted frame (:class:`PermissionError` for any other command); with
        ``secure``, APS-secured with the key shared with its destination (``KeyError`` if
        none)."""
        if secure:
            self.link.check_outgoing(replace(frame, verified=True))
            assert self.security is not None, "secure sends need an InterPanSecurity"
            await self.transport.send(self.security.seal(frame))
            return
        self.link.check_outgoing(frame)
        await self.transport.send(frame)

    async def send_message(
        self,
        *,
        cluster_id: int,
        payload: bytes,
        dst: EUI64,
        dst_pan_id: int,
        secure: bool = False,
    ) -> None:
        """Send a ZCL frame of any length (up to 1500 octets) to ``dst``: in one frame if it
        fits, else as inter-PAN fragments, one at a time, each answered before the next
        (:class:`~zse.interpan.fragment.FragmentFailed` when one is refused or unanswered).
        Two fragmented messages to one partner go one after the other: a receiver holds one
        message in progress per sender (:class:`~zse.interpan.fragment.Reassembler`)."""
        whole = InterPanFrame(
            src_pan_id=self.pan_id,
            src_ieee=self.ieee,
            dst_pan_id=dst_pan_id,
            dst_address=dst,
            delivery_mode=DeliveryMode.UNICAST,
            cluster_id=cluster_id,
            payload=payload,
            reassembled=True,
            verified=secure,
        )
        self.link.check_outgoing(whole)
        limit = MAX_SECURED_ZCL_LENGTH if secure else MAX_ZCL_LENGTH
        if len(payload) <= limit:
            frame = self.frame(
                cluster_id=cluster_id, payload=payload, dst_pan_id=dst_pan_id, dst=dst
            )
            await self.send(frame, secure=secure)
            return
        sender = FragmentSender(
            payload, size=limit - FRAGMENT_OVERHEAD, timeout=self.fragment_timeout
        )
        partner = bytes(dst.serialize())
        async with self._one_at_a_time(partner):
            await self._send_fragments(
                sender, cluster_id=cluster_id, dst=dst, dst_pan_id=dst_pan_id, secure=secure
            )

    @contextlib.asynccontextmanager
    async def _one_at_a_time(self, partner: bytes) -> AsyncIterator[None]:
        """Hold the turn of fragmented sends to ``partner`` (the table keeps only partners
        with a send under way or waiting)."""
        lock, users = self._sending.setdefault(partner, (asyncio.Lock(), []))
        users.append(None)
        try:
            async with lock:
                yield
        finally:
            users.pop()
            if not users:
                del self._sending[partner]

    async def _send_fragments(
        self,
        sender: FragmentSender,
        *,
        cluster_id: int,
        dst: EUI64,
        dst_pan_id: int,
        secure: bool,
    ) -> None:
        """The fragments of one message to ``dst``, each answered before the next."""
        partner = bytes(dst.serialize())
        responses: asyncio.Queue[bytes] = asyncio.Queue()
        self._responses[partner] = responses
        self._ensure_pump()
        try:
            fragment: bytes | None = sender.start(self.now())
            while fragment is not None:
                try:
                    await self._send_raw(fragment, cluster_id, dst, dst_pan_id, secure=secure)
                except OSError as exc:  # unanswered: sent again at the deadline
                    LOGGER.debug("inter-PAN fragment to %s not delivered: %s", dst, exc)
                fragment = None
                while fragment is None and not sender.done:
                    deadline = sender.next_deadline()
                    assert deadline is not None
                    try:
                        async with asyncio.timeout(max(0.0, deadline - self.now())):
                            response = await responses.get()
                    except TimeoutError:
                        fragment = sender.handle_timeout(self.now())
                    else:
                        fragment = sender.receive(response, self.now())
        finally:
            del self._responses[partner]

    async def _send_raw(
        self, payload: bytes, cluster_id: int, dst: EUI64, dst_pan_id: int, *, secure: bool
    ) -> None:
        """A fragment or fragment response (not ZCL: the whitelist judged the message)."""
        frame = self.frame(cluster_id=cluster_id, payload=payload, dst_pan_id=dst_pan_id, dst=dst)
        if secure:
            assert self.security is not None
            frame = self.security.seal(frame)
        await self.transport.send(frame)

    async def reply(self, to: InterPanFrame, *, cluster_id: int, payload: bytes) -> None:
        """Unicast an answer back to the sender of ``to``."""
        await self.send(self.link.reply(to, cluster_id=cluster_id, payload=payload))

    def subscribe(self, clusters: Iterable[int] | None = None, *, maxsize: int = 64) -> Inbox:
        """A new :class:`Inbox` of the admitted frames of ``clusters`` (all if ``None``).

        Every inbox whose clusters match gets each admitted frame, so the SE commands and the
        HHT carrier can share one service. Frames admitted before it exists are not in it.
        """
        inbox = Inbox(None if clusters is None else frozenset(clusters), maxsize, clock=self.now)
        if self._closed:
            inbox._close()
            return inbox
        self._inboxes.append(inbox)
        self._ensure_pump()
        return inbox

    def _ensure_pump(self) -> None:
        if self._pump is None:
            self._pump = asyncio.get_running_loop().create_task(self._run_pump())

    def unsubscribe(self, inbox: Inbox) -> None:
        """Stop filling ``inbox``; its readers get ``None``."""
        if inbox in self._inboxes:
            self._inboxes.remove(inbox)
        inbox._close()

    async def _run_pump(self) -> None:
        try:
            async for received in self.transport:
                try:
                    await self._pass_on(received)
                except Exception:  # one frame's failure (a bug) does not end reception
                    LOGGER.exception("inter-PAN frame from %s not handled", received.src_ieee)
        except Exception:  # the transport's failure: readers get None, nothing is silent
            LOGGER.exception("inter-PAN reception stopped")
            raise
        finally:
            self._closed = True
            for inbox in self._inboxes:
                inbox._close()

    async def _pass_on(self, received: InterPanFrame) -> None:
        """A received frame to the inboxes, if addressed to this node and admitted."""
        if not self.link.addressed(received):
            return  # not this node's: not opened, answered or reassembled
        frame = await self._incoming(received)
        if frame is not None and self.link.admits(frame, self.now()):
            for inbox in self._inboxes:
                inbox._offer(frame)

    async def _incoming(self, frame: InterPanFrame) -> InterPanFrame | None:
        """Security and fragments of a frame addressed to this node, before the window: the
        frame to judge, or None. Fragments and their responses are unicast only (Silicon
        Labs' ``interpanFragmentationSendUnicast``): a broadcast or group payload is judged as
        ZCL."""
        if frame.aps_security:
            if self.security is None:
                self.dropped["secured"] += 1
                return None
            opened = self.security.open(frame)
            if opened is None:
                return None
            frame = opened
        if frame.delivery_mode is not DeliveryMode.UNICAST:
            return frame
        if is_fragment_response(frame.payload):
            queue = self._responses.get(bytes(frame.src_ieee.serialize()))
            if queue is not None and (frame.verified or self.security is None):
                queue.put_nowait(frame.payload)
            return None
        if not is_fragment(frame.payload):
            return frame
        return await self._reassemble(frame)

    async def _reassemble(self, frame: InterPanFrame) -> InterPanFrame | None:
        """A fragment: answered, and the whole message once complete. One that does not
        continue a message in progress must first pass the window (open, rate limit)."""
        if self.reassembler is None or (self.security is not None and not frame.verified):
            self.dropped["fragment"] += 1  # fragments come secured once keys are in use
            return None
        source, now = bytes(frame.src_ieee.serialize()), self.now()
        if not self.reassembler.holds(source, now) and not self.link.admits_fragment(frame, now):
            return None  # counted by the window
        response, whole = self.reassembler.receive(source, frame.payload, now)
        try:
            await self._send_raw(
                response, frame.cluster_id, frame.src_ieee, frame.src_pan_id, secure=frame.verified
            )
        except Exception as exc:  # e.g. Z-Stack's ValueError for PAN 0x0000: the sender resends
            self.unanswered += 1
            LOGGER.log(
                logging.DEBUG if isinstance(exc, OSError) else logging.WARNING,
                "inter-PAN fragment response to %s on PAN 0x%04X not sent: %s",
                frame.src_ieee,
                frame.src_pan_id,
                exc,
            )
        if whole is None:
            return None
        return replace(frame, payload=whole, reassembled=True)

    async def receive(self, timeout: float | None = None) -> InterPanFrame | None:
        """The next admitted frame of any cluster; ``None`` on timeout or once closed."""
        if self._default is None:
            self._default = self.subscribe()
        return await self._default.receive(timeout)

    async def received(self) -> AsyncIterator[InterPanFrame]:
        """The received frames the window admits (without a window: the whitelisted ones)."""
        while (frame := await self.receive()) is not None:
            yield frame

    async def close(self) -> None:
        """Close the transport and stop receiving."""
        await self.transport.close()
        if self._pump is not None:
            await self._pump
        self._closed = True
        for inbox in self._inboxes:
            inbox._close()


@dataclass(frozen=True)
class Arrival:
    """A frame and when it arrived: its inbox's clock (the service's, :meth:`InterPanService.now`)
    when the service passed it on, so that a frame that waited in the inbox while its reader
    was busy (a hub computing for other partners under a flood) is judged by when it came."""

    frame: InterPanFrame
    at: float


class Inbox:
    """Admitted frames for one reader, each with its arrival time (``clock``: the service's;
    None: the event loop's): bounded, a full inbox drops the newest (counted)."""

    def __init__(
        self,
        clusters: frozenset[int] | None,
        maxsize: int = 64,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.clusters = clusters
        self.dropped = 0
        self._clock = clock
        self._queue: asyncio.Queue[Arrival | None] = asyncio.Queue(maxsize)
        self._closed = False

    def _offer(self, frame: InterPanFrame) -> None:
        if self._closed or (self.clusters is not None and frame.cluster_id not in self.clusters):
            return
        at = self._clock() if self._clock is not None else asyncio.get_running_loop().time()
        try:
            self._queue.put_nowait(Arrival(frame, at))
        except asyncio.QueueFull:
            self.dropped += 1

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        while True:
            try:
                self._queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                self._queue.get_nowait()
                self.dropped += 1

    async def receive(self, timeout: float | None = None) -> InterPanFrame | None:
        """The next frame; ``None`` on timeout or once closed."""
        arrival = await self.arrival(timeout)
        return None if arrival is None else arrival.frame

    async def arrival(self, timeout: float | None = None) -> Arrival | None:
        """The next frame with its arrival time; ``None`` on timeout or once closed. One
        already waiting is returned at once, even with ``timeout`` 0."""
        try:  # not wait_for: on Python 3.11 it can swallow a cancellation (gh-86296)
            async with asyncio.timeout(timeout):
                arrival = await self._queue.get()
        except TimeoutError:
            return None
        if arrival is None:
            self._queue.put_nowait(None)  # every later reader sees the end too
        return arrival

    async def __aiter__(self) -> AsyncIterator[InterPanFrame]:
        while (frame := await self.receive()) is not None:
            yield frame


@dataclass(eq=False)
class _Turns:
    """One meter's frames, one at a time, and the log write a cancelled frame left running."""

    loop: asyncio.AbstractEventLoop
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    writing: asyncio.Future[None] | None = None


#: Per meter (held weakly: a dropped meter closes its FileLog as before), shared by every
#: shell that serves it (inter-PAN and the network), so its frames take turns.
_TURNS: weakref.WeakKeyDictionary[HhtMeter, _Turns] = weakref.WeakKeyDictionary()


def _turns(meter: HhtMeter) -> _Turns:
    loop = asyncio.get_running_loop()
    turns = _TURNS.get(meter)
    if turns is None or turns.loop is not loop:
        turns = _TURNS[meter] = _Turns(loop)
    return turns


async def answer_carrier(
    meter: HhtMeter, zcl_frame: bytes, *, executor: Executor | None = None
) -> bytes:
    """:meth:`HhtMeter.receive <zse.interpan.hht.HhtMeter.receive>` for an asyncio shell:
    the meter's log writes run in ``executor`` (None: the loop's default executor, or the
    loop's own thread on a loop that asks for it, ``inline_io``), so an fsync never blocks
    the event loop, and the handler runs on the loop once its ``BEGIN``
    is on disk; the answer comes back once its ``DONE`` is.

    The frames of one meter take turns (whichever shell they came by), so a transaction
    repeated while its ``BEGIN`` is being written waits and is answered ``DUPLICATE``, and
    the log's writes never overlap: one cancelled while its write is in flight leaves the
    write to finish (its failure is logged; a command whose ``BEGIN`` is written but which
    did not run is answered ``INTERRUPTED`` afterwards, never run). A log that does no I/O
    (``blocking = False``, :class:`~zse.interpan.hht.MemoryLog`) is written on the loop."""
    turns = _turns(meter)
    async with turns.lock:
        await _settle(turns)  # a write left by a cancelled frame goes first
        with contextlib.closing(meter.steps(zcl_frame)) as steps:
            while (write := steps.next_write()) is not None:
                await _write(meter, write, turns, executor)
    assert steps.answer is not None
    return steps.answer


async def drain(meter: HhtMeter) -> None:
    """Until no log write of ``meter`` is in flight on this loop: the frame being answered
    has ended and the write a cancelled frame left running in the executor is on disk (or
    failed). The shutdown order: stop the shells (cancel :func:`serve_meter`'s task, call the
    function :func:`serve_carrier_on_endpoint` returned), ``await drain(meter)``, then
    ``meter.log.close()``, which then does not block the loop (it would wait for the write:
    :meth:`FileLog.close <zse.interpan.hht.FileLog.close>`)."""
    turns = _TURNS.get(meter)
    if turns is None or turns.loop is not asyncio.get_running_loop():
        return  # no frame of it was answered on this loop
    async with turns.lock:
        await _settle(turns)


async def _settle(turns: _Turns) -> None:
    """Wait for the write a cancelled frame left in flight, if any (the caller holds the
    turn); its failure is logged, not raised (:func:`_left_running`)."""
    if turns.writing is not None:
        await asyncio.wait((turns.writing,))
        turns.writing = None


async def _write(
    meter: HhtMeter, write: LogWrite, turns: _Turns, executor: Executor | None
) -> None:
    """One log write, off the loop unless the log does no I/O or, with no ``executor``
    given, the loop asks for its I/O on its own thread (``inline_io``: a simulation's
    order of events then depends on nothing but the program, as with :mod:`zse.store`)."""
    loop = asyncio.get_running_loop()
    if not getattr(meter.log, "blocking", True) or (
        executor is None and getattr(loop, "inline_io", False)
    ):
        meter.write(write)
        return
    writing = turns.writing = loop.run_in_executor(executor, meter.write, write)
    try:
        # shielded: a cancelled frame stops here, its write goes on and the next frame (or
        # drain) waits for it
        await asyncio.shield(writing)
    except asyncio.CancelledError:
        writing.add_done_callback(_left_running)
        raise
    turns.writing = None


def _left_running(writing: asyncio.Future[None]) -> None:
    """The outcome of a write whose frame was cancelled: nobody awaits it, so a failure is
    logged here (a :class:`~zse.interpan.hht.FileLog` then refuses writes until reopened)."""
    if not writing.cancelled() and (exc := writing.exception()) is not None:
        LOGGER.error("HHT log write of a cancelled carrier frame failed: %s", exc)


async def serve_meter(
    service: InterPanService, meter: HhtMeter, *, executor: Executor | None = None
) -> None:
    """Answer HHT carrier requests arriving over inter-PAN until the transport closes (the
    log written off the loop: :func:`answer_carrier`)."""
    async for frame in service.subscribe([CARRIER_CLUSTER_ID]):
        try:
            answer = await answer_carrier(meter, frame.payload, executor=executor)
        except InvalidFrame as exc:
            LOGGER.debug("ignoring a carrier frame from %s: %s", frame.src_ieee, exc)
            continue
        except Exception:  # a handler's bug: its BEGIN is logged, a retry gets INTERRUPTED
            LOGGER.exception("carrier command from %s failed", frame.src_ieee)
            continue
        try:
            await service.reply(frame, cluster_id=CARRIER_CLUSTER_ID, payload=answer)
        except OSError as exc:  # e.g. no MAC acknowledgement: the terminal will retry
            LOGGER.debug("answer to %s not delivered: %s", frame.src_ieee, exc)


def serve_carrier_on_endpoint(
    endpoint: ZclPort, meter: HhtMeter, *, executor: Executor | None = None
) -> Callable[[], None]:
    """Answer HHT carrier requests arriving over the network on a ZCL ``endpoint`` (e.g. the
    meter's :class:`~zse.zcl.se_endpoint.SeEndpoint`) with the same :class:`HhtMeter` that
    :func:`serve_meter` runs over inter-PAN, so a transaction executed on one path is answered
    ``DUPLICATE`` on the other (the two take turns: :func:`answer_carrier`). Returns a
    function that stops serving."""

    async def on_message(msg: ZclMessage) -> foundation.Status | None:
        frame = bytes(msg.header.serialize()) + msg.payload
        try:
            answer = await answer_carrier(meter, frame, executor=executor)
        except InvalidFrame as exc:
            LOGGER.debug("bad carrier frame from 0x%04X: %s", msg.src_nwk, exc)
            return foundation.Status.MALFORMED_COMMAND
        header = ZclHeader.from_bytes(answer)
        await endpoint.reply(msg, header.command_id, answer[header.length :])
        return None

    return endpoint.add_handler(CARRIER_CLUSTER_ID, on_message)


async def run_terminal(
    service: InterPanService,
    terminal: HhtTerminal,
    *,
    meter: EUI64,
    meter_pan_id: int,
    attempts: int = 3,
    resume: bool = False,
) -> dict[int, Result]:
    """Run ``terminal``'s service request against ``meter``; with ``resume``, first ask the
    meter where it stands. Raises :class:`LinkLost` after ``attempts`` unanswered sends (the
    decisions are :class:`~zse.interpan.link.TerminalExchange`'s)."""

    run = TerminalExchange(terminal, meter=meter, attempts=attempts, meter_pan_id=meter_pan_id)
    frame = run.start(service.now(), resume=resume)
    while frame is not None:
        try:
            await service.send(
                service.frame(
                    cluster_id=CARRIER_CLUSTER_ID, payload=frame, dst_pan_id=meter_pan_id, dst=meter
                )
            )
        except OSError as exc:
            LOGGER.debug("send failed: %s", exc)
        frame = None
        while frame is None and not run.done:
            deadline = run.next_deadline()
            got = None
            if deadline is not None:
                got = await service.receive(max(0.0, deadline - service.now()))
            if got is None:
                frame = run.handle_timeout(service.now())
            else:
                frame = run.receive(got, service.now())
    return terminal.results
