"""The sans-IO core of the inter-PAN service: admission, addressing, and the terminal's retries.

:class:`InterPanLink` decides for one local node (``ieee`` on ``pan_id``) what it receives and
sends over inter-PAN: a received frame is admitted by the receiving window (SE Annex B.4) or,
without one, by the command whitelist (SE Annex B.5); an outgoing frame must be whitelisted;
its frames are numbered and addressed (unicast, group or broadcast). :class:`TerminalExchange`
runs a hand-held terminal's service request (:class:`~zse.interpan.hht.HhtTerminal`) against
one meter: which frame to send, which received frame answers it, when to resend, and when the
link is lost. Both take ``now`` (seconds, the service's clock); nothing here reads a clock,
sleeps or does I/O. :mod:`zse.interpan.service` is the asyncio shell.
"""

from __future__ import annotations

import itertools
import logging

from zigpy.types import EUI64

from zse.errors import InvalidFrame
from zse.interpan._codec import BROADCAST_ADDRESS, DeliveryMode, InterPanFrame
from zse.interpan.hht import CARRIER_CLUSTER_ID, HhtTerminal
from zse.interpan.window import CommandWhitelist, InterPanWindow, Verdict
from zse.se.ids import SE_PROFILE_ID

__all__ = ["InterPanLink", "LinkLost", "TerminalExchange"]

LOGGER = logging.getLogger(__name__)


class LinkLost(TimeoutError):
    """The terminal got no answer after its retries; ``position`` is the command it was on."""

    def __init__(self, position: int) -> None:
        super().__init__(f"no answer from the meter for command {position}")
        self.position = position


class InterPanLink:
    """What one node admits and sends over inter-PAN (sans-IO).

    ``window`` (if any) polices what is received; ``whitelist`` (default: the window's, else
    :data:`~zse.interpan.window.SE_INTERPAN_COMMANDS`) what is sent, and what is received
    when there is no window.
    """

    def __init__(
        self,
        *,
        ieee: EUI64,
        pan_id: int,
        window: InterPanWindow | None = None,
        whitelist: CommandWhitelist | None = None,
    ) -> None:
        self.ieee = ieee
        self.pan_id = pan_id
        self.window = window
        self.whitelist = whitelist or (window.whitelist if window else CommandWhitelist())
        self._sequence = itertools.count()

    def frame(
        self,
        *,
        cluster_id: int,
        payload: bytes,
        dst_pan_id: int = 0xFFFF,
        dst: EUI64 | None = None,
        group_id: int | None = None,
    ) -> InterPanFrame:
        """A frame from this node: unicast to ``dst``, group ``group_id``, else broadcast; each
        takes the next MAC sequence number."""
        address: EUI64 | int
        if dst is not None:
            mode, address = DeliveryMode.UNICAST, dst
        else:
            mode = DeliveryMode.GROUP if group_id is not None else DeliveryMode.BROADCAST
            address = BROADCAST_ADDRESS
        return InterPanFrame(
            src_pan_id=self.pan_id,
            src_ieee=self.ieee,
            dst_pan_id=dst_pan_id,
            dst_address=address,
            delivery_mode=mode,
            group_id=group_id,
            cluster_id=cluster_id,
            payload=payload,
            sequence=next(self._sequence) & 0xFF,
        )

    def reply(self, to: InterPanFrame, *, cluster_id: int, payload: bytes) -> InterPanFrame:
        """A unicast answer back to the sender of ``to``."""
        return self.frame(
            cluster_id=cluster_id, payload=payload, dst_pan_id=to.src_pan_id, dst=to.src_ieee
        )

    def check_outgoing(self, frame: InterPanFrame) -> None:
        """Raise :class:`PermissionError` unless the whitelist allows ``frame``'s command."""
        self.whitelist.check(frame)

    def misaddressed(self, frame: InterPanFrame) -> str | None:
        """Why a received frame is not this node's to take (SE Annex B.3: the stub NWK layer
        carries no other filter; a sniffing radio passes on whatever it hears), or None: a
        unicast to another EUI-64, a destination PAN neither ours nor 0xFFFF, a profile other
        than Smart Energy's, or our own address as its source."""
        if frame.src_ieee == self.ieee:
            return "from this node's own address"
        if frame.dst_pan_id not in (self.pan_id, BROADCAST_ADDRESS):
            return f"for PAN 0x{frame.dst_pan_id:04X}"
        if frame.delivery_mode is DeliveryMode.UNICAST and frame.dst_address != self.ieee:
            return f"for {frame.dst_address}"
        if frame.profile_id != SE_PROFILE_ID:
            return f"for profile 0x{frame.profile_id:04X}"
        return None

    def addressed(self, frame: InterPanFrame) -> bool:
        """Whether a received frame is this node's (:meth:`misaddressed` finds nothing); one
        that is not is logged and goes no further: not opened, not answered, not reassembled."""
        wrong = self.misaddressed(frame)
        if wrong is not None:
            LOGGER.debug("inter-PAN frame from %s dropped: %s", frame.src_ieee, wrong)
            return False
        return True

    def admits_fragment(self, frame: InterPanFrame, now: float) -> bool:
        """Whether a fragment that does not continue a message in progress may be answered
        and given a reassembly slot: without a window, yes; with one, only while it is open
        and its rate limiter allows the sender (:meth:`InterPanWindow.admit_source
        <zse.interpan.window.InterPanWindow.admit_source>`; the whitelist judges the message
        once whole)."""
        if self.window is None:
            return True
        verdict = self.window.admit_source(frame.src_ieee, now)
        if verdict is not Verdict.ACCEPTED:
            LOGGER.debug("inter-PAN fragment from %s: %s", frame.src_ieee, verdict.value)
            return False
        return True

    def admits(self, frame: InterPanFrame, now: float) -> bool:
        """Whether a received frame is passed on: one addressed to this node
        (:meth:`misaddressed`) that the window accepts if there is a window, else whose
        command the whitelist allows."""
        if not self.addressed(frame):
            return False
        if self.window is not None:
            verdict = self.window.admit(frame, now)
            if verdict is not Verdict.ACCEPTED:
                LOGGER.debug("inter-PAN frame from %s: %s", frame.src_ieee, verdict.value)
                return False
            return True
        return self.whitelist.match(frame) is not None


class TerminalExchange:
    """A terminal's service request against one ``meter`` (sans-IO): each carrier frame is
    sent at most ``attempts`` times (a resend keeps its transaction id, so the meter answers a
    repeat ``DUPLICATE``), then :class:`LinkLost` is raised.

    :meth:`start` gives the first frame; feed every received frame to :meth:`receive` (the
    meter's carrier answers move the request on; anything else is ignored) and, at
    :meth:`next_deadline` or when nothing more can arrive, call :meth:`handle_timeout`. Each
    returns the frame to send next, or None. :attr:`done` once every command has its result
    (in the terminal's ``results``).
    """

    def __init__(
        self,
        terminal: HhtTerminal,
        *,
        meter: EUI64,
        attempts: int = 3,
        meter_pan_id: int = BROADCAST_ADDRESS,
    ) -> None:
        self.terminal = terminal
        self.meter = meter
        #: the meter's PAN (0xFFFF, every PAN: not known): its answers come from it
        self.meter_pan_id = meter_pan_id
        self.attempts = attempts
        self.done = False
        self._frame = b""
        self._sent = 0

    def start(self, now: float, *, resume: bool = False) -> bytes | None:
        """The first frame: with ``resume``, a resume query (where does the meter stand?),
        else the first command's execute frame."""
        if resume:
            return self._begin(self.terminal.resume(now))
        return self._next(now)

    def _next(self, now: float) -> bytes | None:
        frame = self.terminal.next_frame(now)
        if frame is None:
            self.done = True
            return None
        return self._begin(frame)

    def _begin(self, frame: bytes) -> bytes:
        if self.attempts < 1:
            raise LinkLost(self.terminal.position)
        self._frame, self._sent = frame, 1
        return frame

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timeout` is due (None: nothing awaited, call it now)."""
        return None if self.done else self.terminal.deadline

    def receive(self, frame: InterPanFrame, now: float) -> bytes | None:
        """A received frame: if it is the meter's answer to what is awaited, the next frame
        (None once the request is done); else None."""
        if self.done or frame.src_ieee != self.meter or frame.cluster_id != CARRIER_CLUSTER_ID:
            return None
        if not frame.from_pan(self.meter_pan_id):
            return None
        try:
            answer = self.terminal.receive(frame.payload, now)
        except InvalidFrame:
            return None
        return None if answer is None else self._next(now)

    def handle_timeout(self, now: float) -> bytes:
        """No answer: the frame to send again; :class:`LinkLost` after ``attempts`` sends."""
        retry = self.terminal.handle_timeout(now)
        if retry is not None:
            self._frame = retry
        if self._sent >= self.attempts:
            raise LinkLost(self.terminal.position)
        self._sent += 1
        return self._frame
