"""Key Establishment (SE C.3, cluster 0x0800) over ZCL: the asyncio shell of :mod:`zse.cbke`.

The protocol lives in the sans-IO machines of :mod:`zse.cbke.machine`; this module only moves
their messages over an endpoint, runs their arithmetic in an executor (never on the event
loop), arms their deadlines (one :class:`~zse.zcl.timer.Timer`), and installs the
resulting link key.

- :class:`KeyEstablishmentServer` serves any number of initiators on an endpoint (the ESI's
  role): it publishes the KeyEstablishmentSuite attribute and answers every exchange.
- :func:`establish_key` runs an exchange as the initiator (a HAN device's role) and returns
  the new key, or raises :class:`KeyEstablishmentFailed` with the spec's status and wait time;
  with ``attempts`` it tries again after a failure another exchange may cure (a busy partner,
  no answer, a late or garbled frame), never after a certificate refusal.

Key Establishment frames are sent without APS encryption, as SE 5.4.6 requires.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import zigpy.types as t
from zigpy.exceptions import DeliveryError
from zigpy.zcl import foundation

from zse.cbke import machine
from zse.cbke.ca import eui64_bytes
from zse.cbke.credentials import Credentials, HeldCredentials
from zse.cbke.machine import Established, Initiator, Step, Terminated
from zse.cbke.messages import CLIENT_COMMANDS, TerminateKeyEstablishment, TerminateStatus
from zse.errors import ZseError
from zse.se.ids import KE_SUITE_ATTRIBUTE, KEY_ESTABLISHMENT
from zse.se.types import KEY_ESTABLISHMENT_SUITE_TYPE
from zse.zcl.endpoint import ZclPort
from zse.zcl.events import EventStream
from zse.zcl.timer import Timer

__all__ = [
    "BUSY_RETRY_FLOOR",
    "KEY_ESTABLISHMENT",
    "KEY_ESTABLISHMENT_ATTEMPTS",
    "RETRY_DELAY",
    "KeyEstablishmentEvent",
    "KeyEstablishmentFailed",
    "KeyEstablishmentServer",
    "PartnerAdmission",
    "establish_key",
    "eui64_bytes",
    "publish_client_suites",
    "suites_from_read_response",
]

LOGGER = logging.getLogger(__name__)

_SUITE_ATTRIBUTE = KE_SUITE_ATTRIBUTE
_ENUM16 = KEY_ESTABLISHMENT_SUITE_TYPE

KeyInstaller = Callable[[t.EUI64, bytes], "Awaitable[None] | None"]
#: Whether the server runs Key Establishment with a partner (by its EUI-64): the ESI's
#: admission, e.g. no exchange with a device it has removed.
PartnerAdmission = Callable[[t.EUI64], bool]

#: Key establishment attempts a HAN device makes before it gives up: as Silicon Labs' Smart
#: Energy Registration plugin (gecko_sdk smart-energy-registration.c), which counts every
#: failed key establishment as an error, tries again after the delay the key establishment
#: callback reports, and aborts at ``..._SMART_ENERGY_REGISTRATION_ERROR_LIMIT`` (3) errors.
KEY_ESTABLISHMENT_ATTEMPTS = 3
#: The least wait (seconds) before trying again, whatever wait time the partner sent.
BUSY_RETRY_FLOOR = 1
#: The wait (seconds) before trying again after a failure that carries no wait time (no answer,
#: a late frame, an undeliverable one): Silicon Labs' key establishment plugin reports
#: ``INTERNAL_ERROR_BACK_OFF_TIME`` (10 s) for a failure without the partner's delay, and its
#: registration plugin waits that long before the next attempt.
RETRY_DELAY = 10
#: Terminate statuses another exchange may cure (SE C.3.1.3.4): the partner was busy, or a
#: frame was garbled. UNKNOWN_ISSUER and BAD_KEY_CONFIRM are not to be retried (C.3.1.3.4);
#: UNSUPPORTED_SUITE and INVALID_CERTIFICATE refuse the credentials themselves, which another
#: attempt would present again (zse's choice: Silicon Labs' registration plugin retries every
#: failure, certificate refusals included, up to its error limit).
_TRANSIENT = frozenset({TerminateStatus.NO_RESOURCES, TerminateStatus.BAD_MESSAGE})


@dataclass(frozen=True, kw_only=True)
class KeyEstablishmentEvent:
    """The outcome of one exchange with ``partner``: ``result`` is the machine's event."""

    partner: t.EUI64
    result: Established | Terminated


class KeyEstablishmentFailed(ZseError):
    """Key establishment ended without a key; carries the spec's outcome (SE C.3.1.3.4).

    ``terminated``, ``status`` and ``wait_time`` are the last attempt's; ``attempts`` says why
    each attempt failed, in order (one entry when there was one attempt). The message names
    statuses and delays only, never key material."""

    def __init__(
        self,
        terminated: Terminated,
        reason: str | None = None,
        *,
        earlier: tuple[KeyEstablishmentFailed, ...] = (),
    ) -> None:
        self.terminated = terminated
        self.status = terminated.status
        self.wait_time = terminated.wait_time
        self.reason = _what(terminated) if reason is None else reason
        self.attempts: tuple[str, ...] = (
            *(e.reason for e in earlier),
            self.reason,
        )
        if not earlier:
            super().__init__(f"key establishment failed: {self.reason}")
            return
        if all(_busy(e.terminated) for e in earlier) and _busy(terminated):
            # every attempt met a busy partner: say so in one phrase, not a certificate problem
            what = (
                f"the partner stayed busy (NO_RESOURCES) through {len(self.attempts)}"
                f" attempts; retry after {terminated.wait_time} s"
            )
        else:
            what = "; ".join(f"attempt {n}: {why}" for n, why in enumerate(self.attempts, 1))
        super().__init__(f"key establishment failed after {len(self.attempts)} attempts: {what}")


def _what(terminated: Terminated) -> str:
    """Why one exchange ended without a key, in words (statuses and seconds only)."""
    if terminated.timed_out:
        return "the partner did not answer in time"
    if terminated.status is None:
        return f"a retry is not allowed yet (wait {terminated.wait_time} s)"
    if _busy(terminated):
        return (
            "the partner is busy (it terminated with NO_RESOURCES: every session in use)"
            f", retry after {terminated.wait_time} s"
        )
    side = "the partner" if terminated.by_peer else "zse"
    what = f"{side} terminated with {terminated.status.name}"
    if terminated.may_retry:
        return what + f", retry after {terminated.wait_time} s"
    return what + ", do not retry"


def _busy(terminated: Terminated) -> bool:
    """Whether the partner refused for want of a free session (NO_RESOURCES, SE C.3.1.3.4):
    the one refusal its wait time says to try again after."""
    return (
        terminated.by_peer
        and terminated.may_retry
        and terminated.status is TerminateStatus.NO_RESOURCES
    )


def _transient(terminated: Terminated) -> bool:
    """Whether another exchange may cure this failure: no answer in time, an answer that came
    late or could not be delivered (``timed_out``), a garbled frame (BAD_MESSAGE, either side),
    a busy partner (NO_RESOURCES), or a start refused while a wait time runs. Never after a
    refusal C.3.1.3.4 says not to retry (``may_retry`` False: UNKNOWN_ISSUER, BAD_KEY_CONFIRM;
    also no common suite, no Key Establishment server)."""
    if not terminated.may_retry:
        return False
    return terminated.timed_out or terminated.status is None or terminated.status in _TRANSIENT


def _retry_delay(terminated: Terminated) -> int:
    """Seconds to wait before the next attempt: the wait time the Terminate carried, sent or
    received (C.3.1.3.4: the partner holds the initiator to it), at least
    :data:`BUSY_RETRY_FLOOR` (and that much more after zse's own, which the partner counts
    from its arrival); :data:`RETRY_DELAY` for a failure that carried none."""
    if terminated.wait_time > 0 and not terminated.by_peer and terminated.status is not None:
        # zse's own Terminate: the partner's wait began when it arrived, a little later
        return terminated.wait_time + BUSY_RETRY_FLOOR
    if terminated.wait_time > 0 or _busy(terminated):
        return max(terminated.wait_time, BUSY_RETRY_FLOOR)
    return RETRY_DELAY


#: Does the work a credential holder keeps to itself (:class:`~zse.cbke.machine.HeldWork`):
#: e.g. an EmberZNet NCP's CBKE commands (zse.roles.han_stick).
KeyHolder = Callable[[machine.HeldWork], Awaitable[machine.ComputeResult]]


async def _compute(
    executor: Executor | None, step: Step, holder: KeyHolder | None = None
) -> machine.ComputeResult:
    assert step.compute is not None
    if step.compute.held is not None:
        if holder is None:
            raise ValueError("held credentials need the holder that does their arithmetic")
        return await holder(step.compute.held)
    return await asyncio.get_running_loop().run_in_executor(executor, step.compute.run)


async def _install(installer: KeyInstaller | None, partner: t.EUI64, key: bytes) -> None:
    if installer is None:
        return
    result = installer(partner, key)
    if inspect.isawaitable(result):
        await result


class KeyEstablishmentServer:
    """Key Establishment server on an endpoint (SE C.3.1): the responder for every initiator.

    ``install_key(partner, key_data)`` is called when an exchange succeeds, to make the new
    key the partner's APS link key (on the simulator: ``app.set_link_key``). ``admit(partner)``
    (default: every partner) decides up front whom it runs an exchange with: the commands of
    a partner it refuses are dropped unanswered and end any exchange under way with it, so no
    key is computed or installed for it. Outcomes are offered as
    :class:`KeyEstablishmentEvent` through ``events()`` (async iterator) and
    ``on_event(listener)``.
    """

    def __init__(
        self,
        endpoint: ZclPort,
        credentials: Credentials | Iterable[Credentials],
        *,
        install_key: KeyInstaller | None = None,
        admit: PartnerAdmission | None = None,
        executor: Executor | None = None,
        max_sessions: int = 4,
        **responder_options: Any,
    ) -> None:
        self.endpoint = endpoint
        self.admit = admit
        self.core = machine.KeyEstablishmentServer(
            credentials, max_sessions=max_sessions, **responder_options
        )
        self.install_key = install_key
        self.executor = executor
        self._stream: EventStream[KeyEstablishmentEvent] = EventStream()
        self.on_event = self._stream.on_event
        self.events = self._stream.events
        # The machines count in loop seconds (every ``now`` below is ``loop.time()``).
        self._timer = Timer("key establishment timeout", logger=LOGGER)
        self._timer.add(self.core, self._timed_out)
        self._remove: Callable[[], None] | None = None

    def start(self) -> None:
        """Publish the KeyEstablishmentSuite attribute and serve the cluster."""
        self.endpoint.set_attribute(
            KEY_ESTABLISHMENT, _SUITE_ATTRIBUTE, self.core.supported_suites, type_id=_ENUM16
        )
        self._remove = self.endpoint.add_handler(KEY_ESTABLISHMENT, self._on_message)
        self._timer.start()

    def stop(self) -> None:
        """Stop serving (exchanges under way time out on the partner's side)."""
        if self._remove is not None:
            self._remove()
            self._remove = None
        self._timer.close()

    async def _on_message(self, msg: Any) -> foundation.Status | None:
        if msg.from_server:
            return None  # a server-to-client command sent to the server: not ours
        if msg.group is not None or msg.broadcast:
            # Key establishment is between two devices: a command sent to a group or by
            # broadcast is dropped unanswered, as Silicon Labs' Key Establishment plugin
            # does ("Ignoring broadcast KE command"), and touches no session.
            LOGGER.debug(
                "Key Establishment command 0x%02X from 0x%04X by broadcast or group ignored",
                msg.command_id,
                msg.src_nwk,
            )
            return None
        if msg.command_id not in CLIENT_COMMANDS:
            # ZCL 2.5.12: a command the cluster does not define, not a failed exchange.
            return foundation.Status.UNSUP_CLUSTER_COMMAND
        if msg.src_ieee is None:
            LOGGER.warning("Key Establishment from unknown device 0x%04X ignored", msg.src_nwk)
            return None
        partner = eui64_bytes(msg.src_ieee)
        loop = asyncio.get_running_loop()
        if self.admit is not None and not self.admit(msg.src_ieee):
            LOGGER.info("Key Establishment from %s refused: not admitted", msg.src_ieee)
            for event in self.core.abort(partner, loop.time()).events:
                await self._emit(msg.src_ieee, event)
            self._timer.update()
            return None
        step = self.core.receive_payload(partner, msg.command_id, msg.payload, loop.time())
        try:
            while True:
                # Outcomes first: the new key is installed before the Confirm Key Data Response
                # leaves, so the initiator never uses KeyData while this side still holds the old.
                for event in step.events:
                    await self._emit(msg.src_ieee, event)
                for message in step.send:
                    await self.endpoint.reply(
                        msg, message.command_id, message.encode(), encrypt=False
                    )
                if step.compute is None:
                    break
                result = await _compute(self.executor, step)
                step = self.core.complete(partner, step.compute, result, loop.time())
        except (DeliveryError, TimeoutError) as exc:
            # The partner cannot be reached: the exchange ends here, and says so (the
            # partner, if it hears nothing more, times out on its side).
            LOGGER.warning("key establishment with %s: reply not delivered (%s)", msg.src_ieee, exc)
            for event in self.core.abort(partner, loop.time()).events:
                await self._emit(msg.src_ieee, event)
        self._timer.update()
        return None

    async def _emit(self, partner: t.EUI64, result: Established | Terminated) -> None:
        if isinstance(result, Established):
            await _install(self.install_key, partner, result.key_data)
            LOGGER.info("key established with %s (%s)", partner, result.suite.name)
        else:
            LOGGER.info("key establishment with %s ended: %s", partner, result)
        self._stream.emit(KeyEstablishmentEvent(partner=partner, result=result))

    async def _timed_out(self, steps: list[tuple[bytes, Step]]) -> None:
        for partner, step in steps:
            for event in step.events:
                await self._emit(t.EUI64(partner[::-1]), event)


def publish_client_suites(endpoint: ZclPort, suites: int) -> None:
    """Serve the Key Establishment client's KeyEstablishmentSuite attribute (SE C.3.2.1.1,
    0x0000, enum16, read-only) on ``endpoint``: what a Read Attributes sent server to client
    answers. :func:`establish_key` calls it; a device that is a Key Establishment client may
    call it at start, before its first exchange."""
    endpoint.set_attribute(
        KEY_ESTABLISHMENT, _SUITE_ATTRIBUTE, suites, type_id=_ENUM16, client=True
    )


async def establish_key(
    endpoint: ZclPort,
    *,
    partner_nwk: int,
    partner_endpoint: int,
    partner_eui64: t.EUI64,
    credentials: Credentials | HeldCredentials | Iterable[Credentials | HeldCredentials],
    install_key: KeyInstaller | None = None,
    executor: Executor | None = None,
    initiator: Initiator | None = None,
    holder: KeyHolder | None = None,
    attempts: int = 1,
    **initiator_options: Any,
) -> Established:
    """Run Key Establishment as the initiator (SE C.3.2) with the server at ``partner_*``.

    Publishes this side's client KeyEstablishmentSuite attribute on ``endpoint`` (SE
    C.3.2.1.1: the client has one too, the suites its credentials cover), reads the
    partner's server attribute, negotiates the highest common suite, and returns the
    :class:`~zse.cbke.machine.Established` outcome after calling
    ``install_key(partner, key_data)``. Raises :class:`KeyEstablishmentFailed` otherwise.
    Pass the same ``initiator`` again to have its retry rules (wait time, no retry after
    UNKNOWN_ISSUER / BAD_KEY_CONFIRM) honoured across attempts. With
    :class:`~zse.cbke.credentials.HeldCredentials`, ``holder`` does the arithmetic (the key
    stays with it: ``key_data`` is then empty, and ``install_key`` tells it to store the key).

    ``attempts``: how many exchanges to try in all (1: one, as before). A failure another
    exchange may cure is tried again: a busy partner (Terminate NO_RESOURCES), no answer in
    time, a late or undeliverable frame, a garbled one (BAD_MESSAGE, sent or received), each
    after the wait time its Terminate carried (at least :data:`BUSY_RETRY_FLOOR`), else after
    :data:`RETRY_DELAY`; a HAN device uses :data:`KEY_ESTABLISHMENT_ATTEMPTS`, as Silicon
    Labs' registration plugin. UNKNOWN_ISSUER and BAD_KEY_CONFIRM (not to be retried, SE
    C.3.1.3.4), INVALID_CERTIFICATE, UNSUPPORTED_SUITE and a partner with no Key
    Establishment server end at once (``attempts`` used to retry a busy partner only). The
    error after several attempts says how many there were and why each failed.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    if attempts > 1 and initiator_options.get("ephemeral_private_key") is not None:
        # an ephemeral key is for one exchange: another attempt would use it again (zse's
        # rule: an ECMQV run generates its own ephemeral key pair, SEC 1 v2 section 6.2)
        raise ValueError("an injected ephemeral_private_key is for one exchange: attempts=1")
    failed: list[KeyEstablishmentFailed] = []
    for attempt in range(1, attempts + 1):
        try:
            return await _establish_once(
                endpoint,
                partner_nwk=partner_nwk,
                partner_endpoint=partner_endpoint,
                partner_eui64=partner_eui64,
                credentials=credentials,
                install_key=install_key,
                executor=executor,
                initiator=initiator,
                holder=holder,
                **initiator_options,
            )
        except KeyEstablishmentFailed as exc:
            if not failed and (attempt == attempts or not _transient(exc.terminated)):
                raise
            if attempt == attempts or not _transient(exc.terminated):
                raise KeyEstablishmentFailed(
                    exc.terminated, exc.reason, earlier=tuple(failed)
                ) from exc
            failed.append(exc)
            wait = _retry_delay(exc.terminated)
            LOGGER.warning(
                "key establishment with %s: attempt %d of %d failed (%s); trying again in %d s",
                partner_eui64,
                attempt,
                attempts,
                exc.reason,
                wait,
            )
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


async def _establish_once(
    endpoint: ZclPort,
    *,
    partner_nwk: int,
    partner_endpoint: int,
    partner_eui64: t.EUI64,
    credentials: Credentials | HeldCredentials | Iterable[Credentials | HeldCredentials],
    install_key: KeyInstaller | None,
    executor: Executor | None,
    initiator: Initiator | None,
    holder: KeyHolder | None,
    **initiator_options: Any,
) -> Established:
    """One exchange of :func:`establish_key`."""
    loop = asyncio.get_running_loop()
    items = (
        [credentials]
        if isinstance(credentials, Credentials | HeldCredentials)
        else list(credentials)
    )
    ours = machine.supported_suites(items) if initiator is None else initiator.supported_suites
    publish_client_suites(endpoint, ours)
    try:
        suites = await _read_suites(endpoint, partner_nwk, partner_endpoint)
    except TimeoutError:
        raise KeyEstablishmentFailed(
            Terminated(status=None, wait_time=0, by_peer=False, timed_out=True)
        ) from None
    except DeliveryError as exc:
        raise KeyEstablishmentFailed(
            Terminated(status=None, wait_time=0, by_peer=False, timed_out=True),
            reason=f"the partner is unreachable ({exc})",
        ) from None
    if initiator is None:
        initiator = Initiator(
            items, eui64_bytes(partner_eui64), partner_suites=suites, **initiator_options
        )
    else:
        initiator.partner_suites = suites
    step = initiator.start(loop.time())
    while True:
        for event in step.events:
            if isinstance(event, Established):
                await _install(install_key, partner_eui64, event.key_data)
                return event
            await _tell_terminate(endpoint, step, partner_nwk, partner_endpoint)
            raise KeyEstablishmentFailed(event)
        if step.compute is not None:
            result = await _compute(executor, step, holder)
            step = initiator.complete(step.compute, result, loop.time())
        else:
            step = await _exchange(
                endpoint, initiator, step, partner_nwk, partner_endpoint, partner=partner_eui64
            )


async def _tell_terminate(endpoint: ZclPort, step: Step, nwk: int, ep: int) -> None:
    """Send the Terminate Key Establishment that ends this side's exchange (BAD_MESSAGE after
    a garbled frame, UNKNOWN_ISSUER, BAD_KEY_CONFIRM...), so that the partner ends its own
    session now rather than at its timeout, and knows the wait time (SE C.3.1.3.4); without
    it an attempt made meanwhile meets the partner's session still open. Best effort: a
    partner that cannot be reached times out on its side."""
    for message in step.send:
        if not isinstance(message, TerminateKeyEstablishment):
            continue
        try:
            await endpoint.send(
                nwk, ep, KEY_ESTABLISHMENT, message.command_id, message.encode(), encrypt=False
            )
        except (DeliveryError, TimeoutError) as exc:
            LOGGER.info("key establishment: Terminate to 0x%04X not delivered (%s)", nwk, exc)


async def _exchange(
    endpoint: ZclPort,
    initiator: Initiator,
    step: Step,
    nwk: int,
    ep: int,
    *,
    partner: t.EUI64 | None = None,
) -> Step:
    """Send the step's messages; wait for the answer to the last unless it is a Terminate.

    The answer is taken only unicast from the partner addressed (``nwk``, and ``partner``
    when the radio knows the sender's EUI-64): Key Establishment is between two devices
    (SE C.3.1), so a frame with the request's number sent by broadcast or to a group is
    ignored and the wait goes on for the partner's own answer.

    Every way this can fail ends the exchange with an outcome: a delivery failure or a step
    with nothing to send (the machine is waiting, yet no request is outstanding) aborts it
    (``Terminated(timed_out=True)``), a timeout ends it at the machine's deadline.
    """
    loop = asyncio.get_running_loop()
    if not step.send:
        return _ended(initiator, step, loop.time())
    *first, last = step.send
    try:
        for message in first:
            await endpoint.send(
                nwk, ep, KEY_ESTABLISHMENT, message.command_id, message.encode(), encrypt=False
            )
        if isinstance(last, TerminateKeyEstablishment):
            await endpoint.send(
                nwk, ep, KEY_ESTABLISHMENT, last.command_id, last.encode(), encrypt=False
            )
            return Step(events=step.events)
        deadline = initiator.next_deadline()
        timeout = max(0.0, (deadline if deadline is not None else loop.time()) - loop.time())
        # the partner's unicast answer, once a broadcast with its number took the request's place
        later: asyncio.Queue[Any] = asyncio.Queue()
        remove = endpoint.add_handler(
            KEY_ESTABLISHMENT,
            lambda msg: later.put_nowait(msg) if _unicast_from(msg, nwk, partner) else None,
        )
        try:
            async with asyncio.timeout(timeout):
                reply = await endpoint.request(
                    nwk,
                    ep,
                    KEY_ESTABLISHMENT,
                    last.command_id,
                    last.encode(),
                    timeout=timeout,
                    encrypt=False,
                )
                tsn = reply.tsn
                while not _unicast_from(reply, nwk, partner) or reply.tsn != tsn:
                    if reply.tsn == tsn:
                        LOGGER.debug(
                            "Key Establishment answer from 0x%04X not unicast from %s; ignored",
                            reply.src_nwk,
                            partner,
                        )
                    reply = await later.get()
        finally:
            remove()
    except TimeoutError:
        # The wait was the machine's own deadline, or the radio gave up early; abort rather
        # than handle_timeout(now), which a clock short of the deadline answers with nothing.
        return _ended(initiator, step, loop.time())
    except DeliveryError as exc:
        ended = _ended(initiator, step, loop.time())
        terminated = next(e for e in ended.events if isinstance(e, Terminated))
        raise KeyEstablishmentFailed(
            terminated, reason=f"the partner is unreachable ({exc})"
        ) from exc
    if not reply.is_cluster_command:
        # A Default Response: the partner refused the command (e.g. no KE server there).
        status = _default_response_status(reply.payload)
        initiator.abort(loop.time())
        raise KeyEstablishmentFailed(
            Terminated(status=None, wait_time=0, by_peer=True, may_retry=False),
            reason=f"the partner answered with Default Response {status}",
        )
    return initiator.receive_payload(reply.command_id, reply.payload, loop.time())


def _unicast_from(msg: Any, nwk: int, partner: t.EUI64 | None) -> bool:
    """Whether ``msg`` is a server-to-client frame sent unicast by the partner at ``nwk``
    (``partner``: its EUI-64, when the radio knows the sender's)."""
    return (
        msg.from_server
        and msg.group is None
        and not msg.broadcast
        and msg.src_nwk == nwk
        and (partner is None or msg.src_ieee in (None, partner))
    )


def _ended(initiator: Initiator, step: Step, now: float) -> Step:
    """A step that ends the exchange with an outcome, whatever state it was left in: the
    abort's timeout, else the outcome ``step`` already carried (a Terminate being sent)."""
    events = initiator.abort(now).events or tuple(
        e for e in step.events if isinstance(e, Terminated)
    )
    if not events:
        events = (Terminated(status=None, wait_time=0, by_peer=False, timed_out=True),)
    return Step(events=events)


def _default_response_status(payload: bytes) -> str:
    return foundation.Status(payload[1]).name if len(payload) >= 2 else "(malformed)"


async def _read_suites(endpoint: ZclPort, nwk: int, ep: int) -> int:
    """Read the partner's KeyEstablishmentSuite attribute; suite 1 if it cannot be read."""
    reply = await endpoint.request(
        nwk,
        ep,
        KEY_ESTABLISHMENT,
        foundation.GeneralCommand.Read_Attributes,
        _SUITE_ATTRIBUTE.to_bytes(2, "little"),
        cluster_specific=False,
        encrypt=False,
    )
    suites = None
    if not reply.is_cluster_command and reply.command_id == _READ_ATTRIBUTES_RSP:
        suites = suites_from_read_response(reply.payload)
    if suites is None:
        LOGGER.info("partner's KeyEstablishmentSuite unreadable; assuming suite 1 only")
        return 0x0001
    return suites


_READ_ATTRIBUTES_RSP = foundation.GeneralCommand.Read_Attributes_rsp
#: The types a 16-bit suite value comes as: enum16 (zse, SE Table C-3, ZBOSS, Silicon Labs),
#: map16 (earlier zse releases), uint16 and data16 from lenient stacks.
_SIXTEEN_BITS = frozenset({_ENUM16, 0x19, 0x21, 0x09})


def suites_from_read_response(payload: bytes) -> int | None:
    """The KeyEstablishmentSuite value (a mask of suites, SE C.3.1.2.1) in a Read Attributes
    Response payload (ZCL 2.5.2), or None for anything else: another attribute, a failed
    read, another data type, or bytes that do not decode."""
    schema = foundation.GENERAL_COMMANDS[_READ_ATTRIBUTES_RSP].schema
    try:
        records, _ = schema.deserialize(payload)
        record = records.status_records[0]  # type: ignore[attr-defined]
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None
    if record.attrid != _SUITE_ATTRIBUTE or record.status != foundation.Status.SUCCESS:
        return None
    value = getattr(record.value, "value", None)
    if int(record.value.type) not in _SIXTEEN_BITS or not isinstance(value, int):
        return None
    return int(value) & 0xFFFF


__all__ += ["TerminateStatus"]
