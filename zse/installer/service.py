"""The installer terminal, GB style (issue #20.3): the bootstrap over inter-PAN, the hub's
device log, and service requests of signed commands over a tunnel.

The bootstrap (docs/installer.md):

1. the terminal, which never joined, runs Key Establishment with the hub over inter-PAN
   (:func:`zse.interpan.ke.establish_over_interpan`);
2. over that key it hands its identifier (EUI-64) and install code to the hub in an APS-secured
   inter-PAN command (:data:`HANDOVER_CLUSTER`, manufacturer-specific, admitted only secured);
3. the hub enters the terminal in its device log and admits it with the install code's link
   key (``on_handover``, e.g. ``app.permit_with_link_key``); the terminal joins the network;
4. the terminal opens a tunnel (:data:`INSTALLER_PROTOCOL`, a manufacturer-defined Tunneling
   protocol) and runs the service request: commands the back office signed
   (:mod:`zse.installer.core`), each answered by the hub.

On the hub, :class:`InstallerHub` serves the tunnel protocol: each command is judged by the
:class:`~zse.installer.core.HubLedger` (signature, originator counter, repeat), begun (committed
to the :class:`zse.store.Store`), run by the application's handler for its code, and done
(committed) before the answer goes back, so a command runs at most once across restarts and
resends. A commit that fails raises :class:`~zse.errors.StoreError` and loses nothing: a command
whose *begun* record was not committed has not run (the resend runs it), and an outcome not
committed is committed before the hub answers anything else. On the terminal,
:class:`InstallerTerminal` runs a service request and resumes it after a broken link: it
reopens the tunnel and sends the command it was on again; the hub answers a command it already
ran DUPLICATE with the stored result.

Messages on the tunnel are framed with a 2-octet length (big-endian), as a tunnel is a stream
of octets cut into Transfer Data of any size.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import inspect
import logging
import math
import struct
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Final

from zigpy.types import EUI64

from zse.cbke.credentials import Credentials
from zse.cbke.messages import TerminateStatus
from zse.cbke.service import KeyEstablishmentFailed
from zse.errors import InvalidFrame, ZseError
from zse.installcode import InstallCode
from zse.installer.core import (
    CommandResponse,
    HubLedger,
    Outcome,
    SignedCommand,
    Verified,
)
from zse.interpan._zcl import Direction, FrameType, ZclHeader
from zse.interpan.acceptance import JoinAdmission, JoinVerdict
from zse.interpan.ke import establish_over_interpan
from zse.interpan.service import InterPanService
from zse.interpan.window import AllowedCommand
from zse.se.ids import ZSE_MANUFACTURER_CODE
from zse.store import Batch, Store
from zse.tunneling.protocol import TunnelClosed, TunnelData, TunnelError, TunnelOpened
from zse.tunneling.service import TunnelingClient, TunnelingServer
from zse.zcl.frame import encode_zcl_header

__all__ = [
    "HANDOVER_CLUSTER",
    "HANDOVER_COMMANDS",
    "INSTALLER_PROTOCOL",
    "ZSE_MANUFACTURER_CODE",
    "CommandUnanswered",
    "Handover",
    "HandoverBusy",
    "InstallerHub",
    "InstallerTerminal",
    "TerminalBootstrap",
    "hand_over",
    "serve_handover",
]

LOGGER = logging.getLogger(__name__)

#: The manufacturer-specific cluster of the handover (ZCL 2.5.5: 0xFC00-0xFFFF).
HANDOVER_CLUSTER: Final = 0xFC5F
#: The manufacturer-defined Tunneling protocol of signed commands (D.6.2.4.1.1: 200-254).
INSTALLER_PROTOCOL: Final = 200
_HANDOVER = 0x00
_HANDOVER_RESPONSE = 0x00
# Handover Response status: accepted, refused, busy (then the wait in seconds, u16)
_ACCEPTED, _REFUSED, _BUSY = 0x00, 0x01, 0x02
#: Seconds a terminal is told to wait when the hub failed to take its handover
#: (``on_handover`` raised): the hub's fault, not the terminal's, so it tries again.
HANDOVER_RETRY: Final = 10
_FRAME = struct.Struct(">H")

#: The handover commands, admitted over inter-PAN only APS-secured.
HANDOVER_COMMANDS: tuple[AllowedCommand, ...] = (
    AllowedCommand(
        HANDOVER_CLUSTER,
        Direction.Client_to_Server,
        _HANDOVER,
        "installer.handover",
        ZSE_MANUFACTURER_CODE,
        secured=True,
    ),
    AllowedCommand(
        HANDOVER_CLUSTER,
        Direction.Server_to_Client,
        _HANDOVER_RESPONSE,
        "installer.handover_response",
        ZSE_MANUFACTURER_CODE,
        secured=True,
    ),
)


class HandoverBusy(ZseError):
    """The hub cannot act on the handover now (its join permits or budget are taken): send it
    again after :attr:`wait_time` seconds."""

    def __init__(self, wait_time: int) -> None:
        super().__init__(f"the hub is busy: hand over again in {wait_time} s")
        self.wait_time = wait_time


@dataclass(frozen=True, kw_only=True)
class Handover:
    """A terminal's identifier and install code, received APS-secured (never logged)."""

    terminal: EUI64
    install_code: InstallCode

    def __repr__(self) -> str:
        return f"Handover(terminal={self.terminal})"


def _handover_frame(tsn: int, payload: bytes, *, from_server: bool) -> bytes:
    control = 0x01 | 0x10 | (0x08 if from_server else 0)
    return encode_zcl_header(control, ZSE_MANUFACTURER_CODE, tsn, _HANDOVER) + payload


def _encode_handover(terminal: EUI64, code: InstallCode) -> bytes:
    raw = bytes(code)  # the data and its CRC
    return bytes(terminal.serialize()) + bytes((len(raw),)) + raw


def _decode_handover(data: bytes) -> Handover:
    if len(data) < 9 or len(data) != 9 + data[8]:
        raise InvalidFrame(f"handover: {len(data)} octets do not hold an EUI-64 and a code")
    terminal, _ = EUI64.deserialize(data[:8])
    return Handover(terminal=terminal, install_code=InstallCode.from_bytes(data[9:]))


async def hand_over(
    service: InterPanService,
    *,
    hub: EUI64,
    hub_pan_id: int,
    install_code: InstallCode,
    timeout: float = 5.0,
    attempts: int = 3,
) -> None:
    """Send the terminal's identifier and install code to the hub, APS-secured with the key
    established over inter-PAN, and wait for its acceptance (``TimeoutError`` if none,
    :class:`PermissionError` if refused)."""
    inbox = service.subscribe([HANDOVER_CLUSTER])
    try:
        payload = _handover_frame(
            1, _encode_handover(service.ieee, install_code), from_server=False
        )
        for _ in range(attempts):
            try:
                await service.send_message(
                    cluster_id=HANDOVER_CLUSTER,
                    payload=payload,
                    dst=hub,
                    dst_pan_id=hub_pan_id,
                    secure=True,
                )
            except OSError as exc:
                LOGGER.debug("handover not delivered: %s", exc)
                continue
            frame = await inbox.receive(timeout)
            while frame is not None and (frame.src_ieee != hub or not frame.verified):
                frame = await inbox.receive(timeout)
            if frame is None:
                continue
            header = ZclHeader.from_bytes(frame.payload)
            answer = frame.payload[header.length :]
            if answer[:1] == bytes((_BUSY,)) and len(answer) >= 3:
                raise HandoverBusy(int.from_bytes(answer[1:3], "little"))
            if answer[:1] != bytes((_ACCEPTED,)):
                raise PermissionError("the hub refused the handover")
            return
        raise TimeoutError("the hub did not accept the handover")
    finally:
        service.unsubscribe(inbox)


def serve_handover(
    service: InterPanService,
    on_handover: Callable[[Handover], Awaitable[bool] | bool],
    *,
    admission: JoinAdmission | None = None,
) -> asyncio.Task[None]:
    """The hub's side of the handover: each APS-secured handover that ``admission`` (default
    a :class:`~zse.interpan.acceptance.JoinAdmission`) admits is given to ``on_handover``
    (enter the terminal in the device log, admit it with its install code) and answered; one
    it cannot take now is answered busy with a wait, another code from the same terminal
    refused. ``on_handover`` raising (logged) is answered busy for :data:`HANDOVER_RETRY`
    seconds and serving goes on (it ended the task, and every later handover went
    unanswered). Returns the serving task."""
    inbox = service.subscribe([HANDOVER_CLUSTER])
    accepted: dict[EUI64, bytes] = {}  # terminal -> the install code accepted, told once
    joins = admission if admission is not None else JoinAdmission()

    async def admit(handover: Handover, code: bytes) -> bytes:
        """The answer's status once ``on_handover`` has taken (or not) an admitted handover."""
        try:
            result = on_handover(handover)
            admitted = await result if inspect.isawaitable(result) else result
        except Exception:  # the hub's own fault (a radio refusing the permit...)
            LOGGER.exception(
                "handover from %s: on_handover failed; answered busy", handover.terminal
            )
            joins.joined(handover.terminal)  # no permit: its slot is free again
            return bytes((_BUSY,)) + HANDOVER_RETRY.to_bytes(2, "little")
        if not admitted:
            joins.joined(handover.terminal)  # not admitted after all: no permit
            return bytes((_REFUSED,))
        accepted[handover.terminal] = code
        return bytes((_ACCEPTED,))

    async def serve() -> None:
        async for frame in inbox:
            try:
                header = ZclHeader.from_bytes(frame.payload)
                if (
                    not frame.verified
                    or header.frame_type is not FrameType.CLUSTER_COMMAND
                    or header.direction is not Direction.Client_to_Server
                ):
                    continue
                handover = _decode_handover(frame.payload[header.length :])
            except (InvalidFrame, ValueError) as exc:
                LOGGER.warning("handover from %s refused: %s", frame.src_ieee, exc)
                continue
            status = bytes((_REFUSED,))
            # the code itself, never its 16-bit display fingerprint (another code shares it
            # after ~2^16 tries): a resend is the very same code
            code = bytes(handover.install_code)
            told = accepted.get(handover.terminal)
            if handover.terminal != frame.src_ieee:
                LOGGER.warning("handover from %s names another device", frame.src_ieee)
            elif told is not None and hmac.compare_digest(told, code):
                status = bytes((_ACCEPTED,))  # a resend (our answer was lost): not told again
            else:
                verdict, wait = joins.decide(handover.terminal, code, service.now())
                if verdict is JoinVerdict.BUSY:
                    status = bytes((_BUSY,)) + min(0xFFFF, math.ceil(wait)).to_bytes(2, "little")
                elif verdict is JoinVerdict.ADMIT:
                    status = await admit(handover, code)
            answer = _handover_frame(header.tsn, status, from_server=True)
            try:
                await service.send(
                    service.link.reply(frame, cluster_id=HANDOVER_CLUSTER, payload=answer),
                    secure=True,
                )
            except OSError as exc:  # the terminal sends the handover again
                LOGGER.debug("handover answer not delivered: %s", exc)

    return asyncio.get_running_loop().create_task(serve())


class TerminalBootstrap:
    """The terminal's bootstrap, resumable: key establishment over inter-PAN, the handover,
    the join (``join``, e.g. a simulated device's ``join``). :meth:`run` does the steps not
    yet done and raises what stopped it; call it again to go on from there. :attr:`done`
    names the steps done. A handover the hub never answered forgets the key, so the next
    :meth:`run` establishes a new one (a hub that restarted knows the old one no more)."""

    STEPS: Final = ("key", "handover", "join")

    def __init__(
        self,
        service: InterPanService,
        credentials: Sequence[Credentials],
        *,
        hub: EUI64,
        hub_pan_id: int,
        hub_suites: int,
        install_code: InstallCode,
        join: Callable[[], Awaitable[None]],
        key_attempts: int = 4,
        handover_attempts: int = 4,
        executor: Executor | None = None,
        **initiator_options: object,
    ) -> None:
        self.service = service
        self.key_attempts = key_attempts
        self.handover_attempts = handover_attempts
        self.executor = executor
        self.initiator_options = initiator_options
        self.credentials = credentials
        self.hub = hub
        self.hub_pan_id = hub_pan_id
        self.hub_suites = hub_suites
        self.install_code = install_code
        self.join = join
        self.done: list[str] = []

    def __repr__(self) -> str:
        return f"<TerminalBootstrap done={self.done}>"

    async def _establish(self) -> None:
        """Key establishment, tried again after the wait a busy hub asks for (NO_RESOURCES:
        its sessions are taken, e.g. by a flood)."""
        for attempt in range(self.key_attempts):
            try:
                await establish_over_interpan(
                    self.service,
                    self.credentials,
                    hub=self.hub,
                    hub_pan_id=self.hub_pan_id,
                    hub_suites=self.hub_suites,
                    executor=self.executor,
                    **self.initiator_options,
                )
                return
            except KeyEstablishmentFailed as exc:
                retry = exc.status is TerminateStatus.NO_RESOURCES or exc.terminated.timed_out
                if not retry or attempt + 1 == self.key_attempts:
                    raise
                LOGGER.info("key establishment: %s; trying again", exc)
                await asyncio.sleep(max(1, exc.wait_time))

    async def run(self) -> None:
        """Do the remaining steps."""
        assert self.service.security is not None
        if "key" not in self.done or not self.service.security.has_key(self.hub):
            await self._establish()
            self.done = ["key"]
        if "handover" not in self.done:
            for attempt in range(self.handover_attempts):
                try:
                    await hand_over(
                        self.service,
                        hub=self.hub,
                        hub_pan_id=self.hub_pan_id,
                        install_code=self.install_code,
                    )
                    break
                except TimeoutError:
                    # the hub may have lost the key (a restart: its keys live in memory) and
                    # drop every secured frame of ours unanswered: the next run makes a new one
                    self.service.security.remove_key(self.hub)
                    raise
                except HandoverBusy as exc:
                    if attempt + 1 == self.handover_attempts:
                        raise
                    LOGGER.info("handover: %s", exc)
                    await asyncio.sleep(exc.wait_time)
            self.done.append("handover")
        if "join" not in self.done:
            await self.join()
            self.done.append("join")


class _Framer:
    """Length-framed messages out of a stream of octets (the length, u16 big-endian, counts the
    message's octets: it names the next message boundary).

    A message longer than ``limit`` is skipped whole: its octets are discarded up to that
    boundary, however many Transfer Data carry them, and framing goes on after it. It is
    reported once, as an :class:`~zse.errors.InvalidFrame` in its place among the messages
    (reading its rest as new messages answered each of them MALFORMED). Resynchronising on the
    boundary the length names is zse's own choice: the framing has no other marker."""

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self._buffer = bytearray()
        self._skip = 0  # octets of an over-long message still to come, discarded

    def feed(self, data: bytes) -> list[bytes | InvalidFrame]:
        """The messages ``data`` completes, in order; an over-long one as its error."""
        skipped = min(self._skip, len(data))
        self._skip -= skipped
        self._buffer += data[skipped:]
        out: list[bytes | InvalidFrame] = []
        while len(self._buffer) >= _FRAME.size:
            (length,) = _FRAME.unpack_from(self._buffer)
            end = _FRAME.size + length
            if length > self.limit:
                out.append(
                    InvalidFrame(f"framed message of {length} octets exceeds {self.limit}: skipped")
                )
                self._skip = max(0, end - len(self._buffer))
                del self._buffer[:end]
                continue
            if len(self._buffer) < end:
                break
            out.append(bytes(self._buffer[_FRAME.size : end]))
            del self._buffer[:end]
        return out


def _framed(message: bytes) -> bytes:
    return _FRAME.pack(len(message)) + message


CommandHandler = Callable[[bytes], "Awaitable[bytes] | bytes"]
"""Runs one command's body on the hub; returns its result (raises: FAILED)."""


class InstallerHub:
    """The hub's side of signed commands over a tunnel (see the module docstring).

    ``handlers`` maps a :class:`~zse.installer.core.CommandCode` to what runs it; ``hub`` is
    this hub's EUI-64 (8 octets, most significant first: :func:`zse.cbke.ca.eui64_bytes`),
    the target its commands must name (one for another hub is refused WRONG_TARGET).
    :attr:`executed` counts the commands run, by (originator, counter): the proof that none
    ran twice. ``executor`` checks the signatures, off the event loop (None: the loop's
    default executor, as for Key Establishment).
    """

    def __init__(
        self,
        tunnels: TunnelingServer,
        originators: Mapping[bytes, bytes],
        handlers: Mapping[int, CommandHandler],
        *,
        hub: bytes,
        store: Store | None = None,
        namespace: str = "installer.hub",
        on_executed: Callable[[SignedCommand, CommandResponse], None] | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.tunnels = tunnels
        self.executor = executor
        #: Told of each command run, once its outcome is committed and before it is answered.
        self.on_executed = on_executed
        self.originators = dict(originators)
        self.handlers = dict(handlers)
        self.store = store
        self.namespace = namespace
        self.hub = bytes(hub)
        self.ledger = HubLedger(self.originators, hub=self.hub)
        self.executed: dict[tuple[bytes, int], int] = {}
        self._framers: dict[int, _Framer] = {}
        self._lock = asyncio.Lock()
        #: Transfer Data one after another: the server hands each to a task of its own.
        self._arrivals = asyncio.Lock()

    async def start(self) -> None:
        """Load the ledger and serve the installer tunnel protocol."""
        if self.store is not None:
            # a wrong-shaped record is quarantined (and its command's outcome forgotten), not
            # a hub that cannot start
            self.ledger = await self.store.load_with(
                self.namespace,
                lambda records, on_bad: HubLedger.from_records(
                    records,
                    self.originators,
                    hub=self.hub,
                    namespace=self.namespace,
                    on_bad=on_bad,
                ),
            )
        self.tunnels.on_event(self._on_tunnel_event)
        self.tunnels.serve(
            INSTALLER_PROTOCOL, self._on_data, manufacturer_code=ZSE_MANUFACTURER_CODE
        )

    def _on_tunnel_event(self, event: object) -> None:
        """A tunnel opened, renewed (its terminal asked again after a broken link, D.6.2.5.1)
        or closed: what part of a command it held is forgotten, never put in front of the
        command sent again."""
        if isinstance(event, TunnelOpened | TunnelClosed):
            self._framers.pop(event.tunnel_id, None)

    async def _on_data(self, event: TunnelData) -> bytes | None:
        """The commands of one Transfer Data, run after those of the Transfer Data before it
        (each comes in a task of its own: without the turn, a later one's command would
        overtake the second of an earlier one and have it refused as stale)."""
        async with self._arrivals:
            framer = self._framers.setdefault(event.tunnel_id, _Framer())
            answers = [
                await self.execute(message)
                if isinstance(message, bytes)
                else await self._refuse_unframed(event.tunnel_id, message)
                for message in framer.feed(event.data)
            ]
        return b"".join(_framed(answer.encode()) for answer in answers) or None

    async def _refuse_unframed(self, tunnel_id: int, problem: InvalidFrame) -> CommandResponse:
        """The one MALFORMED answer to a message the framing skipped (over-long), given as the
        ledger gives it to a command that does not decode (logged, counted, counter 0)."""
        async with self._lock:
            return await self._execute(
                Verified(
                    command=None,
                    refused=Outcome.MALFORMED,
                    problem=f"installer tunnel {tunnel_id}: {problem}",
                )
            )

    async def execute(self, data: bytes) -> CommandResponse:
        """Judge, run (at most once) and answer one signed command. Its signature is checked
        in the executor from the start (curve arithmetic, milliseconds each: never on the
        loop); the command is judged under the lock, in the order the commands came."""
        loop = asyncio.get_running_loop()
        verifying = loop.run_in_executor(self.executor, self.ledger.verify, data)
        try:
            async with self._lock:
                return await self._execute(await verifying)
        finally:
            if not verifying.done():
                verifying.cancel()
            elif not verifying.cancelled():
                verifying.exception()  # retrieved: a caller cancelled before awaiting it

    async def _execute(self, verified: Verified) -> CommandResponse:
        """With the lock held: judge, run and answer a verified command."""
        if self.ledger.pending:  # an outcome whose commit failed: committed before answering
            await self._save()
        command, decision = self.ledger.judge(verified)
        if not decision.run:
            assert decision.response is not None
            return decision.response
        assert command is not None
        handler = self.handlers.get(command.code)
        if handler is None:
            return CommandResponse(counter=command.counter, status=Outcome.UNSUPPORTED)
        self.ledger.begin(command)
        try:
            await self._save()  # begun, durably, before it runs
        except BaseException:
            self.ledger.abandon(command)  # not begun, not run: a resend runs it
            raise
        status, result = Outcome.EXECUTED, b""
        try:
            outcome = handler(command.body)
            result = bytes(await outcome if inspect.isawaitable(outcome) else outcome)
        except Exception:
            LOGGER.exception("signed command %d failed", command.counter)
            status = Outcome.FAILED
        key = (command.originator, command.counter)
        self.executed[key] = self.executed.get(key, 0) + 1
        response = self.ledger.done(command, status, result)
        await self._save()  # if it fails, kept pending and committed before the next answer
        if self.on_executed is not None:
            self.on_executed(command, response)
        LOGGER.info(
            "signed command %d (code 0x%02X) from %s: %s",
            command.counter,
            command.code,
            command.originator.hex(),
            status.name,
        )
        return response

    async def _save(self) -> None:
        changes = self.ledger.changes()
        if self.store is None or not changes:
            return
        batch = Batch()
        for key, value in changes.items():
            if value is None:
                batch.delete(self.namespace, key)
            else:
                batch.put(self.namespace, key, value)
        try:
            await self.store.commit(batch)
        except BaseException:
            self.ledger.unsaved(changes)  # nothing lost: committed with the next save
            raise


class CommandUnanswered(ZseError, TimeoutError):
    """Every try of one signed command failed (:meth:`InstallerTerminal.run`): ``failures``
    says how each did, in order (no answer, or a garbled one)."""

    def __init__(self, counter: int, failures: Sequence[str]) -> None:
        self.counter = counter
        self.failures = tuple(failures)
        tries = "; ".join(f"{n}: {what}" for n, what in enumerate(self.failures, start=1))
        super().__init__(
            f"no usable answer for command {counter} after {len(self.failures)} attempts ({tries})"
        )


class InstallerTerminal:
    """A terminal's service request: signed commands sent in order over a tunnel, resumed
    after a broken link (see the module docstring). :attr:`position` is the next command;
    :attr:`responses` the answers so far."""

    def __init__(
        self,
        tunnels: TunnelingClient,
        commands: Sequence[SignedCommand],
        *,
        timeout: float = 10.0,
        attempts: int = 5,
        retry_delay: float = 5.0,
        on_link_lost: Callable[[SignedCommand, Exception], None] | None = None,
    ) -> None:
        self.tunnels = tunnels
        self.retry_delay = retry_delay
        #: Told when a command gets no answer (the request goes on after ``retry_delay``).
        self.on_link_lost = on_link_lost
        self.commands = list(commands)
        self.timeout = timeout
        self.attempts = attempts
        self.position = 0
        self.responses: list[CommandResponse] = []
        self._tunnel: int | None = None
        self._framer = _Framer()

    async def run(self) -> list[CommandResponse]:
        """Run (or resume) the request; :class:`CommandUnanswered` (a ``TimeoutError``)
        naming each failed try after ``attempts`` tries of one command (call :meth:`run` again
        later to resume).

        A try fails when no answer comes (the link is lost; an answer failing APS or NWK
        authentication is dropped below and comes to the same) or when the answer is garbled
        (it does not decode). Either way the command may have run on the hub, so the next try
        sends the very same signed command on a renewed tunnel (both ends' framing
        restarted), after a garbled answer on a new one (the garbled answer's rest, still on
        its way, is not read as framed answers): the hub's ledger answers it DUPLICATE with
        the stored result, never runs it again. Both share the ``attempts`` budget (default
        5): retrying is safe at any count, the bound only stops a hub that keeps failing
        (zse's own choice; no GBCS or Silicon Labs rule for this exchange was within reach)."""
        while self.position < len(self.commands):
            command = self.commands[self.position]
            failures: list[str] = []
            for attempt in range(self.attempts):
                try:
                    response = await self._exchange(command)
                except InvalidFrame as exc:
                    failures.append(f"garbled answer ({exc})")
                    LOGGER.warning(
                        "command %d: garbled answer (%s), attempt %d",
                        command.counter,
                        exc,
                        attempt + 1,
                    )
                    # its rest may still come: a new tunnel, not this one renewed (its reads
                    # kept), so that no try reads it as framed answers
                    await self.close()
                except (TimeoutError, TunnelError, OSError) as exc:
                    failures.append(f"no answer ({str(exc) or type(exc).__name__})")
                    LOGGER.info(
                        "command %d: link lost (%s), attempt %d", command.counter, exc, attempt + 1
                    )
                    if self.on_link_lost is not None and attempt == 0:
                        self.on_link_lost(command, exc)
                else:
                    break
                self._tunnel = None
                self._framer = _Framer()
                await asyncio.sleep(self.retry_delay)  # the loop's clock: virtual in tests
            else:
                raise CommandUnanswered(command.counter, failures)
            self.responses.append(response)
            self.position += 1
        return self.responses

    async def close(self) -> None:
        """Close the tunnel."""
        if self._tunnel is not None:
            with contextlib.suppress(TunnelError):
                await self.tunnels.close(self._tunnel)
            self._tunnel = None

    async def _exchange(self, command: SignedCommand) -> CommandResponse:
        if self._tunnel is None or self._tunnel not in self.tunnels.core.tunnels:
            self._tunnel = await self.tunnels.open(
                INSTALLER_PROTOCOL, manufacturer_code=ZSE_MANUFACTURER_CODE, timeout=self.timeout
            )
        await self.tunnels.send(self._tunnel, _framed(command.encode()))
        while True:
            data = await self.tunnels.read(self._tunnel, timeout=self.timeout)
            for message in self._framer.feed(data):
                if not isinstance(message, bytes):
                    raise message  # an over-long answer: garbled
                response = CommandResponse.decode(message)
                if response.counter == command.counter:
                    return response
