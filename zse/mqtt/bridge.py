"""The MQTT bridge's asyncio shell (issue #17) on aiomqtt (the ``mqtt`` extra, ADR 0010).

:class:`MqttBridge` connects an :class:`~zse.roles.esi.EnergyServiceInterface` to a broker
(:class:`zse.mqtt.han.HanBridge` the HAN devices; both are a :class:`BridgeShell`):

- on connecting: ``online`` (retained) on ``<base>/bridge/state``, whose Last Will is
  ``offline`` (retained); Home Assistant discovery (retained); a subscription to
  ``<base>/bridge/request/+`` at the configured QoS in a persistent session (clean session
  off), so commands sent while the bridge is away wait at the broker;
- the ESI's events (each send included, whoever asked for it: the library, ``zse esi``, its
  config, an MQTT command) and the meter's readings (every ``reading_interval`` seconds when
  they changed) go first into a persisted outbox (journal namespace ``mqtt.outbox`` of
  :mod:`zse.store`) and are published from it in order, each marked reported once the broker
  acknowledged it: nothing produced while the broker is away is lost, up to
  ``outbox_limit`` entries, past which the oldest are dropped (counted on
  ``<base>/bridge/outbox``);
- a command is validated by :func:`zse.mqtt.core.parse_command`, its correlation id recorded
  (namespace ``mqtt.executed``) *before* it is carried out, and answered on the command's
  ``response_topic`` if it names one, else on ``<base>/bridge/response/<command>``, through
  the outbox; a redelivered id gets the recorded answer again (on the repeat's response
  topic), never a second execution (at most once); a ``batch`` (:func:`zse.mqtt.core.parse_batch`)
  carries several commands in one publication, each handled so, answered in one response;
- a lost connection is retried with a doubling backoff (1 s up to ``max_backoff``, in the
  loop's seconds); on the simulator's virtual-time loop each wait *for the broker* (connect,
  publish, subscribe) follows the real clock, so the client's timeouts are real seconds.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import logging
import socket
import ssl
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Mapping
from typing import Any, TypeVar

import aiomqtt

from zse.drlc.core import EventIdInUse
from zse.errors import StoreError, ZseError
from zse.installcode import InvalidEui64, parse_eui64
from zse.metering.formatting import Formatting
from zse.metering.snapshot_types import MeterSnapshotCause
from zse.metering.snapshots import SnapshotsFull
from zse.metering.supply import SupplyRefused
from zse.mqtt.core import (
    BATCH,
    EVENT_KINDS,
    MAX_EVENTS,
    METER_EVENT_KINDS,
    SENT_KINDS,
    CancelLoadControl,
    CancelMessage,
    CancelTariff,
    ChangeSupply,
    Command,
    CommandError,
    Deprovision,
    DisplayMessage,
    Executed,
    LoadControl,
    MqttSettings,
    Outbox,
    Provision,
    Publication,
    PublishPrice,
    PublishTariff,
    TakeSnapshot,
    Topics,
    batched,
    correlation_id_of,
    device_discovery,
    device_event,
    device_removal,
    discovery,
    error_payload,
    event_publication,
    meter_event_publication,
    node_id,
    parse_batch,
    parse_command,
    reading_publication,
    refuse_encrypted_key,
    registry_publication,
    removal,
    response_topic_of,
    result_payload,
    sent_publication,
    supply_payload,
    unpublishable,
)
from zse.provisioning import LifecycleState
from zse.records import RecordError
from zse.roles.esi import EnergyServiceInterface, TargetError
from zse.se.ids import IN_HOME_DISPLAY, SE_PROFILE_ID, MeteringAttribute
from zse.store import Batch, Store
from zse.store_engine import undecoded

__all__ = [
    "EXECUTED",
    "OUTBOX",
    "BridgeShell",
    "BridgeStopped",
    "MqttBridge",
    "ack",
    "broker_time",
    "mqtt_client",
]

LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")


class BridgeStopped(ZseError, RuntimeError):
    """The bridge stopped before an event it was given was journaled: the ESI tells the
    event again after its next start."""


#: The store's namespaces: the outbox journal and the executed correlation ids.
OUTBOX = "mqtt.outbox"
EXECUTED = "mqtt.executed"
#: Seconds a connection must have lasted for the next one to be tried at once: one that ends
#: sooner (another client taking the session over with the same client id, a broker refusing
#: what the bridge subscribes to) is tried again on a growing back-off, not every second.
STEADY = 10.0


class Reconnect:
    """The waits between an MQTT client's connections: 1 s, then 2, 4... up to
    ``max_backoff``; back to 1 s only after a connection that lasted :data:`STEADY` s, so that
    one that keeps ending at once (another client with the same client id taking the session
    over, MQTT 3.1.4-3) is not tried every second."""

    def __init__(self, max_backoff: float) -> None:
        self.max_backoff = max_backoff
        self._next = 1.0

    def ended(self, began: float | None, now: float, client_id: str) -> str:
        """A connection made at ``began`` (None: none was made) ended at ``now``; what a
        warning should add: why one that ended soon may have ended."""
        if began is None:
            return ""
        if now - began >= STEADY:
            self._next = 1.0
            return ""
        return (
            f" (a connection ended within {STEADY:g} s: is another client using the client "
            f"id {client_id!r}?)"
        )

    def wait(self) -> float:
        """Seconds to wait before the next connection."""
        wait, self._next = self._next, min(self._next * 2, self.max_backoff)
        return wait


#: Published outbox entries are pruned from the journal every this many.
_PRUNE_EVERY = 256
#: How many publications may await their acknowledgement at once (one store commit each).
_IN_FLIGHT = 100
#: With ``event_batches``: seconds a device event at the outbox's head waits for others to go
#: with it (ADR 0027): a meter's devices report within a fraction of a second of each other.
EVENT_LINGER = 0.1
#: The same at QoS 2: a broker holds each until its PUBREL, within a bound of its own
#: (Mosquitto's ``max_inflight_messages``, 20 by default), and over MQTT 3.1.1, which has no
#: way to refuse one, Mosquitto answers PUBREC to a publication past it and drops it: half
#: of it (at QoS 1 the broker acknowledges at once and holds nothing).
_IN_FLIGHT_QOS2 = 10
#: Commands received and waiting for the one before them to finish (then the receiver waits).
_COMMANDS_WAITING = 64
#: QoS 0 messages the client holds for the receiver at most (:class:`_Incoming`).
_QOS0_WAITING = _COMMANDS_WAITING
#: The longest wait, in the loop's seconds, between two tries to journal the outbox while the
#: store fails (the first wait is 1 s, doubling).
_STORE_BACKOFF = 30.0


#: A message received: its command's name (None: not a command), its payload, and the client
#: and message to acknowledge it by.
_Received = tuple[str | None, bytes, aiomqtt.Client, aiomqtt.Message]


class _Waits:
    """The waits for a broker under way on one loop (:meth:`BridgeShell._broker_time`)."""

    def __init__(self) -> None:
        self.count = 0
        self.stack = contextlib.ExitStack()


_BROKER_WAITS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Waits] = (
    weakref.WeakKeyDictionary()
)


class _Client(aiomqtt.Client):
    """An :class:`aiomqtt.Client` whose keepalive follows the real clock on the simulator's
    virtual-time loop.

    aiomqtt services the keepalive (paho's ``loop_misc``: PINGREQ when nothing was sent for a
    keepalive period) from a task that sleeps one second of the loop's time. On a virtual-time
    loop that second never passes while the loop is busy (a simulated utility's worker sending
    thousands of commands at once), so a busy worker's clients fell silent and the broker,
    whose clock is real, dropped them after 1.5 keepalive periods (MQTT 3.1.1 section 3.1.2.10).
    Here the second is a real one (``loop.call_real_later``) while the loop follows the real
    clock (``loop.real_time()``: a utility's worker serving, a wait for the broker), on the
    real clock's whole seconds, so that a worker's clients share one wake-up of the loop a
    second instead of each its own. A PINGREQ so goes out up to a keepalive and one second
    after the last packet: a keepalive under 2 s leaves a broker counting whole seconds
    (Mosquitto 2.0) no margin; zse's clients keep aiomqtt's 60 s."""

    async def _misc_loop(self) -> None:
        loop = asyncio.get_running_loop()
        later = getattr(loop, "call_real_later", None)
        if later is None:
            await super()._misc_loop()
            return
        while self._client.loop_misc() == _MQTT_ERR_SUCCESS:
            if not getattr(loop, "follows_real_time", False):  # virtual seconds, as aiomqtt
                await asyncio.sleep(1)
                continue
            tick: asyncio.Future[None] = loop.create_future()
            # at the next whole second: a worker's thousands of clients wake the loop once
            handle = later(1.0 - time.monotonic() % 1.0, _settle, tick)
            try:
                await tick
            finally:
                handle.cancel()

    async def _wait_for(self, fut: Awaitable[_T], timeout: float | None) -> _T:
        """aiomqtt's wait for the broker (CONNACK, PUBACK, SUBACK...), a cancellation never
        swallowed: on Python 3.11 it is ``asyncio.wait_for``'s, which returns the broker's
        answer instead of raising when the task is cancelled in the turn of the loop that
        answer arrives in (CPython gh-86296), so a stop (SIGTERM, Ctrl-C, a bridge stopped)
        landing then was lost and its task went on (a utility that never stopped)."""
        task = asyncio.current_task()
        cancels = task.cancelling() if task is not None else 0
        result = await super()._wait_for(fut, timeout)
        if task is not None and task.cancelling() > cancels:  # requested, and swallowed
            raise asyncio.CancelledError
        return result

    def _on_socket_register_write(self, client: Any, userdata: Any, sock: Any) -> None:
        """paho has a packet to send on ``sock``: watch it for writing, as aiomqtt does, on
        the loop's next turn (paho may ask from the thread that connects), unless the
        connection closed meanwhile (paho read the broker's close after a publication in
        the same turn, say). aiomqtt registered the descriptor all the same: a closed one,
        an ``OSError: [Errno 9] Bad file descriptor`` traceback from ``asyncio`` (62 as a
        5,000-meter utility stopped), or one reused by another connection, whose writer it
        replaced."""
        fd = sock.fileno()

        def write() -> None:  # aiomqtt's: a failure ends the connection
            try:
                client.loop_write()
            except Exception as exc:
                if not self._disconnected.done():
                    self._disconnected.set_exception(exc)

        def register() -> None:
            if client.socket() is sock and sock.fileno() == fd:  # still this connection's
                self._loop.add_writer(fd, write)

        self._loop.call_soon_threadsafe(register)

    def ack_manually(self) -> None:
        """Acknowledge received QoS 1 messages only by :meth:`ack` (before connecting)."""
        self._client.manual_ack_set(True)

    def ack(self, message: aiomqtt.Message) -> None:
        """Acknowledge ``message`` on a client made with ``manual_ack``, once what it carried
        is safe: PUBACK at QoS 1, PUBCOMP at QoS 2 (MQTT 3.1.1 sections 4.3.2, 4.3.3)."""
        if message.qos in (1, 2):
            self._client.ack(message.mid, message.qos)


class _Incoming(asyncio.Queue[aiomqtt.Message]):
    """A bridge client's queue of messages received, with a bound on QoS 0 ones.

    The broker bounds the QoS 1 and 2 messages it sends a client unacknowledged (Mosquitto's
    ``max_inflight_messages``; the bridge acknowledges a command once answered), never QoS 0
    ones, which are not acknowledged (MQTT 3.1.1 section 4.3.1). While a command was carried
    out, every QoS 0 command behind it waited here, without end (a flood of them grew the
    bridge's memory by hundreds of MB). A QoS 0 message arriving with :data:`_QOS0_WAITING`
    messages already waiting is dropped (QoS 0 is at most once, section 4.3.1: the broker
    does not send it again either), logged as a warning at the 1st, 10th, 100th... drop of
    the connection (a flood of them would flood the log)."""

    dropped = 0  #: QoS 0 messages dropped on this connection

    def put_nowait(self, item: aiomqtt.Message) -> None:
        if item.qos == 0 and self.qsize() >= _QOS0_WAITING:
            self.dropped += 1
            if str(self.dropped).rstrip("0") == "1":  # 1, 10, 100...
                LOGGER.warning(
                    "MQTT: %d QoS 0 commands dropped on this connection, %d messages waiting "
                    "(publish commands at QoS 1)",
                    self.dropped,
                    self.qsize(),
                )
            return
        super().put_nowait(item)


#: paho's ``MQTT_ERR_SUCCESS`` (paho is aiomqtt's to import, not the bridge's).
_MQTT_ERR_SUCCESS = 0


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def mqtt_client(
    settings: MqttSettings, *, manual_ack: bool = False, clean: bool = False, **more: Any
) -> aiomqtt.Client:
    """A client for the broker of ``settings`` (TLS and credentials as they say) in a
    persistent session named by its client id (clean session off: what is sent to it while
    it is away waits at the broker), ``more`` passed to :class:`aiomqtt.Client`; its keepalive
    follows the real clock even on a busy virtual-time loop. ``manual_ack``: a QoS 1 message
    received is acknowledged only by :func:`ack` (unacknowledged, the broker sends it again
    when the session reconnects, MQTT 3.1.1 section 4.4); ``clean``: a clean session instead
    (which ends the persistent session of the same client id, section 3.1.2.4). A
    cancellation landing as the broker answers is raised, not lost (:class:`_Client`)."""
    s = settings
    client = _Client(
        s.host,
        s.port,
        identifier=s.client_id,
        username=s.username,
        password=s.password,
        protocol=aiomqtt.ProtocolVersion.V311,
        clean_session=clean,
        tls_context=tls_context(s) if s.tls else None,
        timeout=10,
        # small messages at once, not held back for the broker's ACK (Nagle)
        socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
        **more,
    )
    if manual_ack:
        client.ack_manually()
    return client


def tls_context(settings: MqttSettings) -> ssl.SSLContext:
    """The TLS context of ``settings``: the broker's certificate checked against ``ca_file``
    (else the system's CAs) and its host name; ``cert_file`` / ``key_file`` the client's. An
    encrypted key is :class:`~zse.mqtt.core.MqttConfigError` naming it, never a pass phrase
    asked for on the terminal (:func:`~zse.mqtt.core.refuse_encrypted_key`)."""
    context = ssl.create_default_context(cafile=settings.ca_file)
    if settings.cert_file is not None:
        key_file = settings.key_file or settings.cert_file  # the key in the certificate's file
        context.load_cert_chain(
            settings.cert_file, settings.key_file, password=refuse_encrypted_key(key_file)
        )
    return context


def _drop(client: aiomqtt.Client) -> None:
    """Close ``client``'s socket without a DISCONNECT (MQTT 3.1.1 section 3.1.2.5: the
    broker publishes the Will of a connection closed so)."""
    assert isinstance(client, _Client)
    sock = client._client.socket()  # paho's socket: aiomqtt has no call for this
    if isinstance(sock, socket.socket):  # TLS sockets are ones too
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # the descriptor stays valid for the loop


def ack(client: aiomqtt.Client, message: aiomqtt.Message) -> None:
    """Acknowledge ``message``, received by ``client`` (of :func:`mqtt_client`, made with
    ``manual_ack``), once it is handled."""
    assert isinstance(client, _Client)
    client.ack(message)


@contextlib.contextmanager
def broker_time() -> Iterator[None]:
    """Waits for a broker follow the real clock on a virtual-time loop (the simulator's:
    ``loop.real_time()``), counted per loop, so that overlapping waits, of every bridge and
    client on the same loop, leave it in order; nothing on an ordinary loop."""
    loop = asyncio.get_running_loop()
    real_time = getattr(loop, "real_time", None)
    if real_time is None:
        yield
        return
    waits = _BROKER_WAITS.setdefault(loop, _Waits())
    waits.count += 1
    if waits.count == 1:
        waits.stack.enter_context(real_time())
    try:
        yield
    finally:
        waits.count -= 1
        if waits.count == 0:
            waits.stack.close()


def meter_formatting(read: Any) -> Formatting:
    """The meter's Formatting set from its attribute values (``read(attribute id)``)."""
    values = {}
    for field in dataclasses.fields(Formatting):
        value = read(MeteringAttribute[field.name.upper()])
        if value is not None:
            values[field.name] = int(value)
    return Formatting(**values)


def _executed_records(
    records: dict[str, Any], namespace: str, on_bad: Callable[[RecordError], None]
) -> dict[str, Any]:
    """The executed commands' records (id -> ``{"n", "response"}``). One that is not (a
    damaged record) is handed to ``on_bad`` (quarantined and logged by the store); the start
    then keeps its id as carried out, its answer unknown (``started``: cut short, see
    docs/mqtt.md), from the quarantine: a redelivery of that command is never carried out
    again."""
    kept: dict[str, Any] = {}
    for key, value in records.items():
        if isinstance(value, dict) and isinstance(value.get("n"), int):
            kept[key] = value
        else:
            on_bad(RecordError(namespace, key, "not an executed command's record"))
    return kept


class BridgeShell:
    """What a bridge to the broker of ``settings`` is made of, whatever it bridges: the
    persisted outbox and the executed commands in ``store``, the connection (state, Last Will,
    discovery, reconnection) and commands carried out at most once. ``clock()``: ZigBee
    UTCTime, the ``time`` of each payload. A bridge says what it follows, announces, takes
    and does (:meth:`_follow`, :meth:`_background`, :meth:`_discovery`, :meth:`_parse`,
    :meth:`_execute`)."""

    #: The commands taken, by request topic name (None: every ``<base>/bridge/request/+``).
    commands: tuple[str, ...] | None = None
    #: The store's namespaces of the outbox journal and of the executed correlation ids.
    outbox_namespace: str = OUTBOX
    executed_namespace: str = EXECUTED

    def __init__(self, settings: MqttSettings, *, store: Store, clock: Any) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.topics = Topics(settings.base_topic, settings.discovery_prefix)
        self.outbox = Outbox(settings.outbox_limit)
        self.executed = Executed(settings.executed_limit)
        #: Set while connected and subscribed; cleared on a disconnection.
        self.connected = asyncio.Event()
        #: Set while not connected.
        self.disconnected = asyncio.Event()
        self.disconnected.set()
        #: Set when everything queued so far was published (and acknowledged).
        self.drained = asyncio.Event()
        #: How many connections were made (the first counts).
        self.connections = 0
        #: The store's last failure while it is failing (a write of the outbox or of a
        #: command's record); None once a write succeeds again.
        self.store_error: Exception | None = None
        self._intake: list[Publication] = []
        #: Publications queued so far, and those of them journaled (or dropped by the bound).
        self._queued = 0
        self._taken = 0
        #: Futures done once the publications queued up to a count are journaled (in order
        #: of their counts); failed if the bridge stops first.
        self._journal_waiters: collections.deque[tuple[int, asyncio.Future[None]]] = (
            collections.deque()
        )
        #: Held from a command's check of its id until its "started" record is stored.
        self._checking = asyncio.Lock()
        self._wake = asyncio.Event()
        self._written = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._removers: list[Callable[[], None]] = []
        self._published = 0
        self._writes: set[asyncio.Task[Any]] = set()
        #: Commands received, carried out one at a time by :meth:`_commander`, whatever
        #: happens to the connection they came on; each acknowledged to the broker once
        #: answered (with the client it came by).
        self._commands: asyncio.Queue[_Received] = asyncio.Queue(_COMMANDS_WAITING)
        #: The client of the connection up now (None between connections).
        self._live: aiomqtt.Client | None = None

    # -- what a bridge says ---------------------------------------------------------------------

    def _follow(self) -> list[Callable[[], None]]:
        """Start following what is bridged; returns the functions that stop it."""
        return []

    def _background(self) -> list[Coroutine[Any, Any, None]]:
        """Tasks run while the bridge runs (e.g. periodic readings)."""
        return []

    def _discovery(self) -> list[Publication]:
        """What is published on each connection (retained as each says): Home Assistant
        discovery, and a bridge's states."""
        return []

    def _parse(self, name: str, payload: bytes) -> Any:
        """The command ``name`` from its payload (:class:`CommandError` naming the field)."""
        raise CommandError("command", f"unknown command {name[:40]!r}")

    async def _execute(self, command: Any) -> dict[str, Any]:
        """Carry ``command`` out; its result (:class:`CommandError` to refuse it)."""
        raise NotImplementedError

    def _failure_field(self, command: Any, exc: Exception) -> str:
        """The field blamed when carrying ``command`` out fails with ``exc``, a ZseError,
        ValueError or LookupError."""
        return "command"

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the outbox and the executed ids, follow what is bridged, and connect (in the
        background: :attr:`connected` tells when). Nothing is taken in if the store fails
        (its :class:`~zse.errors.StoreError`): a start again loads all once."""
        outbox = Outbox(self.settings.outbox_limit)
        # an entry that is not one (damaged) is quarantined and logged by the store
        for seq, publication in await self.store.unreported_with(
            self.outbox_namespace, Publication.from_record
        ):
            outbox.add(seq, publication)
        executed = Executed(self.settings.executed_limit)
        records = await self.store.load_with(
            self.executed_namespace,
            lambda found, on_bad: _executed_records(found, self.executed_namespace, on_bad),
        )
        # a quarantined record's id (this start's, or a start's whose write-back below
        # failed) is kept as carried out, its answer unknown: the quarantine keeps the id
        # until it is stored again, so no failure between the two forgets it
        damaged = [key for key in await self._quarantined_ids() if key not in records]
        for key in damaged:
            records[key] = {"n": 0, "response": {"correlation_id": key, "status": "started"}}
        stale = executed.restore(records)
        batch = Batch()
        for key in stale:
            batch.delete(self.executed_namespace, key)
        for key in [k for k in damaged if k not in stale]:  # stored again: answer unknown
            batch.put(self.executed_namespace, key, records[key])
        if len(batch):
            await self.store.commit(batch)
        self.outbox, self.executed = outbox, executed
        self._removers = self._follow()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._writer()), loop.create_task(self._run())]
        self._tasks.append(loop.create_task(self._commander()))
        self._tasks += [loop.create_task(work) for work in self._background()]

    async def _quarantined_ids(self) -> list[str]:
        """The ids of the executed commands' records ever quarantined (a damaged key, which
        names no command, left out)."""
        found = await self.store.quarantined(self.executed_namespace)
        keys = (q.key for q in found if q.origin == "record" and not undecoded(q.key))
        return list(dict.fromkeys(keys))

    async def stop(self) -> None:
        """Say ``offline`` (retained) if connected, disconnect, and stop; what is still in the
        outbox stays in the store for the next start."""
        for remove in self._removers:
            remove()
        self._removers = []
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await asyncio.gather(*self._writes, return_exceptions=True)
        try:
            await self._flush_intake()
        except Exception as exc:  # the store fails: what is left was never journaled
            self._store_failed(exc, "the outbox")
            LOGGER.error(
                "MQTT bridge stopped with %d publications not journaled: lost",
                len(self._intake),
            )
        while self._journal_waiters:  # their events are told again after the ESI's restart
            _, future = self._journal_waiters.popleft()
            if not future.done():
                future.set_exception(BridgeStopped("the MQTT bridge stopped first"))

    async def _finished(self, write: Coroutine[Any, Any, _T]) -> _T:
        """A store write that a cancellation does not cut in half: it runs to its end (and
        :meth:`stop` waits for it) even if the task awaiting it is cancelled."""
        task = asyncio.get_running_loop().create_task(write)
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
        return await asyncio.shield(task)

    # -- what goes out ----------------------------------------------------------------------------

    def publish(self, publication: Publication) -> None:
        """Queue ``publication`` (persisted, then published in order); :class:`ValueError`
        for a topic no client may publish on (:func:`~zse.mqtt.core.unpublishable`), which
        would never leave the outbox."""
        why = unpublishable(publication.topic)
        if why is not None:
            raise ValueError(f"MQTT publication on {publication.topic[:200]!r} refused: {why}")
        self._intake.append(publication)
        self._queued += 1
        self.drained.clear()
        self._wake.set()

    async def _writer(self) -> None:
        """Journal what was queued, in order, and hand it to the outbox. Every write to the
        store is shielded: a stop mid-write lets the write finish (the store's lock orders
        it before the next) instead of leaving its transaction open. A write that fails
        (the store's disk full, an I/O error) leaves what it took queued, in order, and is
        tried again, with what was queued since, after 1 s, then 2, 4... up to
        ``_STORE_BACKOFF`` seconds of the loop (:attr:`store_error` says why meanwhile);
        past ``outbox_limit`` waiting, the oldest are dropped and counted, as in the
        outbox."""
        delay = 1.0
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._flush_intake()
            except Exception as exc:
                self._store_failed(exc, "the outbox")
                self._bound_intake()
                await asyncio.sleep(delay)  # the loop's seconds: virtual on the simulator
                delay = min(delay * 2, _STORE_BACKOFF)
                self._wake.set()
            else:
                delay = 1.0

    def _bound_intake(self) -> None:
        """Drop the oldest publications waiting to be journaled past ``outbox_limit``."""
        excess = len(self._intake) - self.outbox.limit
        if excess > 0:
            del self._intake[:excess]
            self.outbox.dropped += excess
            self._took(excess)
            LOGGER.warning("MQTT outbox full: %d oldest entries dropped", excess)

    async def _flush_intake(self) -> None:
        if self._intake:
            taken, self._intake = self._intake, []
            await self._finished(self._journal(taken))

    async def _journal(self, taken: list[Publication]) -> None:
        """Journal ``taken`` (taken from the front of the intake) and hand it to the outbox;
        if the store fails, ``taken`` goes back to the front of the intake, in order (not
        when the write was cancelled during its transaction, which the store carried out:
        journaled, published from the journal after the restart)."""
        batch = Batch()
        for publication in taken:
            batch.append(self.outbox_namespace, "publish", publication.to_record())
        try:
            seqs = await self.store.commit(batch)
        except BaseException:
            if batch.landed is None:
                self._intake[:0] = taken
            raise
        self._store_ok()
        self._took(len(taken))
        dropped: list[int] = []
        for seq, publication in zip(seqs, taken, strict=True):
            dropped += self.outbox.add(seq, publication)
        self._written.set()
        if dropped:
            LOGGER.warning("MQTT outbox full: %d oldest entries dropped", len(dropped))
            try:
                await self.store.mark_reported(*dropped)
            except Exception as exc:  # still in the journal: dropped again at the next start
                self._store_failed(exc, "the outbox")

    def _took(self, count: int) -> None:
        self._taken += count
        waiters = self._journal_waiters
        while waiters and waiters[0][0] <= self._taken:
            _, future = waiters.popleft()
            if not future.done():
                future.set_result(None)

    def _journaled_future(self) -> asyncio.Future[None]:
        """A future done once everything queued so far is journaled (or dropped by the
        bound), failed with :class:`BridgeStopped` if the bridge stops first: what an event
        listener returns, so that the ESI marks the event told only once it is here, and what
        a command waits for before it is acknowledged."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._taken >= self._queued:
            future.set_result(None)
        else:
            self._journal_waiters.append((self._queued, future))
        return future

    def _store_failed(self, exc: Exception, what: str) -> None:
        """Say the store failed writing ``what``: an error the first time (no payloads: the
        store's error names the database and the cause), then :attr:`store_error` only."""
        if self.store_error is None:
            LOGGER.error(
                "MQTT bridge: the store fails writing %s (%s: %s); what is queued waits in "
                "memory and is tried again",
                what,
                type(exc).__name__,
                exc,
            )
        self.store_error = exc

    def _store_ok(self) -> None:
        if self.store_error is not None:
            LOGGER.warning("MQTT bridge: the store writes again")
            self.store_error = None

    # -- the connection ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _broker_time(self) -> Iterator[None]:
        """:func:`broker_time`."""
        with broker_time():
            yield

    @property
    def _in_flight(self) -> int:
        """How many publications may await their acknowledgement at once."""
        return _IN_FLIGHT_QOS2 if self.settings.qos == 2 else _IN_FLIGHT

    def _client(self) -> aiomqtt.Client:
        client = mqtt_client(
            self.settings,
            manual_ack=True,  # a command is acknowledged once answered (_commander)
            will=aiomqtt.Will(self.topics.state, "offline", qos=1, retain=True),
            max_inflight_messages=self._in_flight,
            queue_type=_Incoming,
        )
        client.pending_calls_threshold = _IN_FLIGHT + 1  # a full window is expected, not news
        return client

    async def _run(self) -> None:
        reconnect = Reconnect(self.settings.max_backoff)
        loop = asyncio.get_running_loop()
        while True:
            began: float | None = None  # when the connection was made, if it was
            try:
                client = self._client()
                with self._broker_time():
                    await client.__aenter__()
                began = loop.time()
                try:
                    await self._connected(client)
                except asyncio.CancelledError:
                    # stopped, from the moment "online" may have gone out (the set-up
                    # included): say so, since a clean disconnection drops the Will; if it
                    # cannot be said, close the socket without a DISCONNECT: the broker
                    # then publishes the Will ("offline") itself
                    said = False
                    with self._broker_time(), contextlib.suppress(Exception):
                        await client.publish(self.topics.state, "offline", qos=1, retain=True)
                        said = True
                    if not said:
                        _drop(client)
                    raise
                finally:
                    self.connected.clear()
                    self.disconnected.set()
                    with self._broker_time(), contextlib.suppress(Exception):
                        await client.__aexit__(None, None, None)
            except aiomqtt.MqttError as exc:
                hint = reconnect.ended(began, loop.time(), self.settings.client_id)
                LOGGER.warning(
                    "MQTT broker %s:%d: %s%s", self.settings.host, self.settings.port, exc, hint
                )
            except Exception:  # never the end of the connection for good: reconnect
                LOGGER.exception("MQTT bridge: connection ended")
                reconnect.ended(began, loop.time(), self.settings.client_id)
            else:
                reconnect.ended(began, loop.time(), self.settings.client_id)
            # the loop's seconds: virtual ones on the simulator
            await asyncio.sleep(reconnect.wait())

    async def _connected(self, client: aiomqtt.Client) -> None:
        qos = self.settings.qos
        with self._broker_time():
            await client.publish(self.topics.state, "online", qos=1, retain=True)
            for item in self._discovery():
                await client.publish(item.topic, item.encode(), qos=qos, retain=item.retain)
            if self.outbox.dropped or self.outbox.refused:
                await self._report_outbox(client)
            if self.commands is None:
                await client.subscribe(self.topics.requests, qos=max(qos, 1))
            else:
                for name in self.commands:
                    await client.subscribe(self.topics.request(name), qos=max(qos, 1))
        self.connections += 1
        self.disconnected.clear()
        self.connected.set()
        LOGGER.info("MQTT bridge online at %s:%d", self.settings.host, self.settings.port)
        loop = asyncio.get_running_loop()
        self._live = client
        tasks = {loop.create_task(self._sender(client)), loop.create_task(self._receiver(client))}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            self._live = None
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            task.result()  # the MqttError that ended the connection

    async def _sender(self, client: aiomqtt.Client) -> None:
        """Publish the outbox in order, up to :attr:`_in_flight` messages awaiting their
        acknowledgement at once (the client sends them in order); they are marked reported
        together once all are acknowledged. A connection lost meanwhile leaves them in the
        outbox: they are sent again (at least once, never lost). One no client may publish
        (:func:`~zse.mqtt.core.unpublishable`: the client would refuse it, or the broker end
        the connection on it, at each try) is taken out unpublished, logged and counted
        (:meth:`_publishable`); those after it go out in order."""
        while True:
            head = self.outbox.head()
            if head is None:
                if not self._intake:
                    self.drained.set()
                self._written.clear()
                await self._written.wait()
                continue
            if self.settings.event_batches and self._growing():
                # the others come meanwhile (real seconds on a sim), until a batch is full
                with self._broker_time(), contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(EVENT_LINGER):
                        while self._growing():
                            self._written.clear()
                            await self._written.wait()
            parts = self._parts()
            sending = self._publishable(parts)
            with self._broker_time():
                if len(sending) < len(parts):
                    await self._report_outbox(client)
                await asyncio.gather(
                    *(
                        client.publish(
                            publication.topic,
                            payload,
                            qos=self.settings.qos,
                            retain=publication.retain,
                        )
                        for publication, payload in sending
                    )
                )
            seqs = [seq for carried, _ in parts for seq in carried]
            try:
                await self._finished(self.store.mark_reported(*seqs))
            except StoreError as exc:  # the broker has them: sent again after a restart
                self._store_failed(exc, "the outbox")
            for seq in seqs:
                self.outbox.done(seq)
            self._published += len(seqs)
            if self._published >= _PRUNE_EVERY:
                self._published = 0
                try:
                    await self._finished(self.store.prune(self.outbox_namespace))
                except StoreError as exc:  # pruned at the next turn
                    self._store_failed(exc, "the outbox")

    def _publishable(
        self, parts: list[tuple[list[int], Publication]]
    ) -> list[tuple[Publication, bytes]]:
        """The publications of ``parts`` a client may publish, with their payloads; each of
        the others is left out (marked reported with the rest by the caller), counted in
        :attr:`Outbox.refused <zse.mqtt.core.Outbox.refused>` and logged once, its topic cut
        (no payload)."""
        sending: list[tuple[Publication, bytes]] = []
        for carried, publication in parts:
            payload = publication.encode()
            why = unpublishable(publication.topic, len(payload))
            if why is None:
                sending.append((publication, payload))
                continue
            if not self.outbox.refuse(carried):  # refused before a connection was lost
                continue
            LOGGER.warning(
                "MQTT publication on %.200r dropped from the outbox, never publishable: %s",
                publication.topic,
                why,
            )
        return sending

    async def _report_outbox(self, client: aiomqtt.Client) -> None:
        """Say (retained) on ``<base>/bridge/outbox`` what the outbox dropped and refused."""
        said = json.dumps(self.outbox.report())
        await client.publish(self.topics.outbox, said, qos=1, retain=True)

    def _growing(self) -> bool:
        """Whether a device event is at the outbox's head and fewer than :data:`MAX_EVENTS`
        entries wait: the round may wait :data:`EVENT_LINGER` for more events. A full batch
        waiting, or a backlog (a reconnection's, a busy stream's), goes at once, and so does
        a full outbox (``outbox_limit`` below a batch: waiting would drop the oldest); ADR
        0027."""
        head = self.outbox.head()
        if head is None or len(self.outbox) >= min(MAX_EVENTS, self.outbox.limit):
            return False
        return device_event(self.topics, head[1]) is not None

    def _parts(self) -> list[tuple[list[int], Publication]]:
        """The next publications of the outbox, at most :attr:`_in_flight`, each with the
        journal entries it carries: one each, or with ``event_batches`` the devices' events
        waiting together in batches (:func:`~zse.mqtt.core.batched`, ADR 0027)."""
        if not self.settings.event_batches:
            return [([seq], publication) for seq, publication in self.outbox.first(self._in_flight)]
        taken = self.outbox.first(self._in_flight * MAX_EVENTS)
        return batched(self.topics, taken, self._in_flight)

    async def _receiver(self, client: aiomqtt.Client) -> None:
        """Hand the commands received to :meth:`_commander`: a connection lost while one is
        carried out does not cut it short (its answer waits in the outbox), and a repeat
        received meanwhile is answered from its record once it is done, in order."""
        async for message in client.messages:
            # not a command (None): nothing to do but acknowledge it, in its turn
            name = self.topics.command_of(str(message.topic))
            if name is not None and message.retain:
                # left on the broker, sent again to each new subscription (MQTT 3.1.1
                # sections 3.3.1.3, 3.8.4): each connection's, once its id is forgotten
                LOGGER.warning(
                    "MQTT command on %.200s not carried out: a retained message (publish "
                    "commands without retain; clear it: mosquitto_pub -r -n -t TOPIC)",
                    message.topic,
                )
                name = None
            await self._commands.put((name, bytes(message.payload), client, message))

    async def _commander(self) -> None:
        """Carry out the commands received, one at a time, for as long as the bridge runs;
        each is acknowledged to the broker once answered (its record holds the answer), in
        the order received (MQTT 3.1.1 section 4.6), so one received and not yet answered
        when the bridge stops or dies is the session's again at its next connection
        (section 4.4), where the record decides whether it is carried out or answered as a
        duplicate. One that cannot be answered (the store fails) is tried again after 1 s,
        then 2, 4... up to ``_STORE_BACKOFF`` seconds of the loop, before the next: left
        unacknowledged, it would hold one of the few messages a broker sends a client
        unacknowledged (Mosquitto's ``max_inflight_messages``) until the next connection,
        and a handful of them every command after it."""
        while True:
            name, payload, client, message = await self._commands.get()
            if name is not None:
                await self._answered(name, payload)
                try:  # its answer is in the outbox's journal
                    await self._journaled_future()
                except BridgeStopped:
                    return
            if client is self._live:  # else its connection is gone: the broker sends it again
                ack(client, message)

    async def _answered(self, name: str, payload: bytes) -> None:
        """:meth:`handle_command`, tried again while it fails (the store)."""
        delay = 1.0
        while True:
            try:
                await self.handle_command(name, payload)
            except Exception:  # e.g. the store failed: tried again, in its turn
                if delay == 1.0:
                    LOGGER.exception("MQTT command %s not answered: tried again", name)
                await asyncio.sleep(delay)  # the loop's seconds: virtual on the simulator
                delay = min(delay * 2, _STORE_BACKOFF)
            else:
                return

    # -- commands -------------------------------------------------------------------------------

    async def handle_command(self, name: str, payload: bytes) -> dict[str, Any]:
        """Validate, carry out (at most once) and answer one command, on its
        ``response_topic`` if it names one (a repeat: the repeat's), else on
        ``<base>/bridge/response/<name>``; returns the response. A ``batch``
        (:class:`~zse.mqtt.core.Batch`) is its commands, each carried out so, answered in
        one response."""
        if name == BATCH:
            return await self._handle_batch(payload)
        response, topic = await self._carry_out(name, payload)
        self._answer(name, topic, response)
        return response

    async def _handle_batch(self, payload: bytes) -> dict[str, Any]:
        try:
            batch = parse_batch(payload)
            self.topics.check_response_topic(batch.response_topic)
        except CommandError as exc:
            response = error_payload(BATCH, correlation_id_of(payload), exc)
            self._answer(BATCH, self._answerable(response_topic_of(payload)), response)
            return response
        responses = []
        for entry in batch.entries:
            if entry.refused is not None:
                name = entry.name or BATCH
                responses.append(error_payload(name, entry.correlation_id, entry.refused))
            else:
                responses.append((await self._carry_out(entry.name, entry.payload))[0])
        response = {
            "command": BATCH,
            "correlation_id": batch.correlation_id,
            "status": "ok",
            "responses": responses,
        }
        self._answer(BATCH, batch.response_topic, response)
        return response

    async def _carry_out(self, name: str, payload: bytes) -> tuple[dict[str, Any], str | None]:
        """One command validated and carried out at most once: its response and where the
        command asked for it (None: the bridge's response topic of ``name``)."""
        try:
            command = self._parse(name, payload)
            self.topics.check_response_topic(command.response_topic)
        except CommandError as exc:  # refused, not carried out: answered on the default topic
            topic = self._answerable(response_topic_of(payload))
            return error_payload(name, correlation_id_of(payload), exc), topic
        cid = command.correlation_id
        async with self._checking:  # a repeat received meanwhile waits for the record
            before = self.executed.get(cid)
            if before is not None:  # redelivered: answered again, not carried out again
                return {"command": name, **before, "duplicate": True}, command.response_topic
            # stored before it is carried out; if the store fails, the command is not carried
            # out, its id not noted: the broker's redelivery carries it out (at most once)
            started = {"command": name, "correlation_id": cid, "status": "started"}
            await self._record(cid, started)
        try:
            result = await self._execute(command)
        except CommandError as exc:
            response = error_payload(name, cid, exc)
        except (ZseError, ValueError, LookupError) as exc:
            field = self._failure_field(command, exc)
            response = error_payload(name, cid, CommandError(field, str(exc)))
        except Exception as exc:  # the bridge keeps running; the caller is told
            LOGGER.exception("MQTT command %s failed", name)
            response = error_payload(name, cid, CommandError("command", type(exc).__name__))
        else:
            response = {"command": name, "correlation_id": cid, "status": "ok", "result": result}
        try:
            await self._record(cid, response)
        except Exception:  # carried out: answered all the same; a repeat is told "started"
            LOGGER.exception("MQTT command %s: its response not recorded", name)
        return response, command.response_topic

    def _answerable(self, topic: str | None) -> str | None:
        """``topic`` if a refusal may be answered there, else None (the default topic)."""
        try:
            self.topics.check_response_topic(topic)
        except CommandError:
            return None
        return topic

    def _answer(self, name: str, topic: str | None, response: dict[str, Any]) -> None:
        """Queue the response to the command ``name`` on ``topic`` (the command's
        ``response_topic``) or the bridge's response topic of ``name``."""
        self.publish(Publication(topic or self.topics.response(name), response))

    async def _record(self, cid: str, response: dict[str, Any]) -> None:
        await self._finished(self._store_record(cid, response))

    async def _store_record(self, cid: str, response: dict[str, Any]) -> None:
        """Store ``response`` as ``cid``'s, then note it in :attr:`executed` (a write that
        fails leaves both as they were)."""
        record, evicted = self.executed.record(cid, response)
        batch = Batch().put(self.executed_namespace, cid, record)
        for key in evicted:
            batch.delete(self.executed_namespace, key)
        try:
            await self.store.commit(batch)
        except Exception as exc:
            self._store_failed(exc, "a command's record")
            raise
        self._store_ok()
        self.executed.note(cid, record)


def _eui(device: Any) -> str:
    """An EUI-64 as zigpy prints it (``00:0d:6f:...``), the HAN bridge's device names."""
    digits = node_id(device)
    return ":".join(digits[i : i + 2] for i in range(0, 16, 2))


class _Interviews:
    """zigpy's listener protocol, kept off the bridge's surface: a device interviewed."""

    def __init__(self, bridge: MqttBridge) -> None:
        self._bridge = bridge

    def device_initialized(self, device: Any) -> None:
        try:
            self._bridge._interviewed(str(device.ieee))
        except Exception:  # never break zigpy's listeners; the log says what
            LOGGER.exception("MQTT bridge: the discovery of %s not published", device.ieee)


#: The registry states in which a HAN device is announced to Home Assistant: from its
#: provisioning to its de-provisioning (SE 5.4.8).
_ANNOUNCED: frozenset[LifecycleState] = frozenset(
    {
        LifecycleState.PENDING_PROVISIONING,
        LifecycleState.METER_READY,
        LifecycleState.PENDING_DEPROVISIONING,
    }
)


class MqttBridge(BridgeShell):
    """``esi`` on the broker of ``settings``; ``store`` keeps the outbox and the executed
    commands; ``displays``: the EUI-64s to announce as displays in Home Assistant (besides
    the devices of the ESI's registry, each announced from its provisioning to its
    de-provisioning, :meth:`_devices`); ``kinds``: the SE device id of the devices whose
    kind is known (a display's is). A device's kind (told, or the device id its Simple
    Descriptor gave when zigpy interviewed it: :meth:`_kind`) names and models it in Home
    Assistant as the HAN devices' bridge does (:func:`~zse.mqtt.core.han_device`), so that
    the two describe it alike even from two processes; a device whose kind is not known yet
    is named by its registry label, and announced again by its kind once zigpy interviewed
    it. A display has a "Message confirmed" event entity, other devices none (they confirm
    no messages): a device known to be of another kind has it removed, one whose kind is
    not known keeps what is retained (:func:`~zse.mqtt.core.device_discovery`)."""

    def __init__(
        self,
        esi: EnergyServiceInterface,
        settings: MqttSettings,
        *,
        store: Store,
        displays: Iterable[str] = (),
        kinds: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__(settings, store=store, clock=esi.clock)
        self.esi = esi
        self.displays = list(displays)
        self.kinds = {_eui(device): kind for device, kind in (kinds or {}).items()}
        self.kinds.update(dict.fromkeys(map(_eui, self.displays), IN_HOME_DISPLAY))
        self.meter = str(esi.app.state.node_info.ieee)
        self._last_reading: dict[str, Any] | None = None
        #: Whether the meter's power sensor is announced (its InstantaneousDemand held).
        self._demand_announced = False
        #: The kind (:meth:`_kind`) each announced device was announced with.
        self._announced: dict[str, int | None] = {}
        #: The ESI's events of a kind no topic is for, each logged once (ADR 0030: a new
        #: kind of event was dropped without a word).
        self._unmapped: set[str] = set()

    def _follow(self) -> list[Callable[[], None]]:
        interviews = _Interviews(self)
        self.esi.app.add_listener(interviews)
        return [
            self.esi.on_event(self._on_event),
            lambda: self.esi.app.remove_listener(interviews),
        ]

    def _kind(self, device: str) -> int | None:
        """A device's SE device id: told (``kinds``, ``displays``), else the device type of
        its SE endpoint as its Simple Descriptor gave it (ZDP 2.3.2.5, read by zigpy when
        the device joined), else None (not interviewed, or unknown to zigpy)."""
        told = self.kinds.get(device)
        if told is not None:
            return told
        try:
            found = self.esi.app.get_device(ieee=parse_eui64(device))
        except (KeyError, InvalidEui64):
            return None
        for ep_id, endpoint in sorted(getattr(found, "endpoints", {}).items()):
            kind = getattr(endpoint, "device_type", None)
            if ep_id and getattr(endpoint, "profile_id", None) == SE_PROFILE_ID and kind:
                return int(kind)
        return None

    def _interviewed(self, device: str) -> None:
        """zigpy has interviewed ``device``: its kind may be known now, or another, so an
        announced device is announced again when its kind is not the one it was announced
        with (its name and model; a display's "Message confirmed")."""
        device = _eui(device)
        announced, _ = self._devices()
        if device in announced and self._kind(device) != self._announced.get(device):
            for publication in self._device_discovery(device):
                self.publish(publication)

    def _background(self) -> list[Coroutine[Any, Any, None]]:
        if self.settings.reading_interval and self.esi.meter is not None:
            return [self._readings()]
        return []

    def _discovery(self) -> list[Publication]:
        """The meter's sensors (removed if the ESI has no Metering server, or with
        ``reading_interval`` 0: no readings are published, so they would never get a value),
        each HAN device announced with its lifecycle state (retained), each one
        de-provisioned removed. Never raises (a reserved unit is announced without one): a
        failure here would cost the connection its command subscription."""
        if self.esi.meter is None or not self.settings.reading_interval:
            found = removal(discovery(self.topics, self.meter))
        else:
            found = self._meter()
        announced, gone = self._devices()
        now = self.esi.clock()
        for device, state in announced.items():
            found += self._device_discovery(device)
            if state is not None:
                found.append(self._registry_state(device, state, now))
        for device in gone:
            found += self._device_removal(device)
        return found

    def _meter(self) -> list[Publication]:
        """The meter's sensors; its power sensor only while it holds an InstantaneousDemand
        (the attribute its Metering server serves), else removed: a meter without one (a
        gateway told only its summation, a meter that has none) answers a read of it
        UNSUPPORTED_ATTRIBUTE and its readings never carry one."""
        meter = self.esi.meter
        assert meter is not None
        read = meter.core.read
        self._demand_announced = read(MeteringAttribute.INSTANTANEOUS_DEMAND) is not None
        return discovery(
            self.topics,
            self.meter,
            unit_of_measure=int(read(MeteringAttribute.UNIT_OF_MEASURE) or 0),
            device_type=int(read(MeteringAttribute.METERING_DEVICE_TYPE) or 0),
            demand=self._demand_announced,
        )

    def _devices(self) -> tuple[dict[str, LifecycleState | None], list[str]]:
        """The HAN devices to announce (``displays`` and the registry's provisioned ones:
        pending provisioning, meter ready, pending de-provisioning), with their registry
        state, and the registry's de-provisioned ones, whose sensors are removed."""
        announced: dict[str, LifecycleState | None] = dict.fromkeys(map(_eui, self.displays))
        gone = []
        registry = self.esi.registry
        for record in registry.devices() if registry is not None else ():
            if record.state in _ANNOUNCED:
                announced[_eui(record.eui64)] = record.state
            elif record.state is LifecycleState.DEPROVISION_COMPLETE:
                gone.append(_eui(record.eui64))
        return announced, [d for d in gone if d not in announced]

    def _device_discovery(self, device: str) -> list[Publication]:
        """A HAN device's discovery: one of a known kind (:meth:`_kind`: a display...) named
        and modelled by it, another named by its registry label; a display's "Message
        confirmed"."""
        device = _eui(device)
        kind = self._kind(device)
        label = ""
        registry = self.esi.registry
        with contextlib.suppress(Exception):
            label = registry.get(device).label if registry is not None else ""
        self._announced[device] = kind
        return device_discovery(self.topics, self.meter, device, device_type=kind, label=label)

    def _device_removal(self, device: str) -> list[Publication]:
        """Every discovery config of a HAN device removed (its de-provisioning)."""
        self._announced.pop(_eui(device), None)
        return device_removal(self.topics, device)

    def _registry_state(self, device: str, state: LifecycleState, now: int) -> Publication:
        return registry_publication(self.topics, device, state, now, retain=self.settings.retain)

    def _lifecycle(self, event: Any, now: int) -> list[Publication]:
        """What a registry transition changes besides its event: the device's state
        (retained) and, on its provisioning, its discovery; on its de-provisioning, the
        discovery removed (an empty retained config, Home Assistant's removal)."""
        if type(event).__name__ != "LifecycleChanged":
            return []
        found = [self._registry_state(event.device, event.to_state, now)]
        if event.from_state is event.to_state:
            return found
        if event.to_state in _ANNOUNCED and event.from_state not in _ANNOUNCED:
            found += self._device_discovery(event.device)
        elif event.to_state not in _ANNOUNCED and event.from_state in _ANNOUNCED:
            found += self._device_removal(event.device)
        return found

    def _parse(self, name: str, payload: bytes) -> Command:
        return parse_command(name, payload)

    def _failure_field(self, command: Any, exc: Exception) -> str:
        if isinstance(exc, EventIdInUse):  # the id, as the in-process headend names it
            return "issuer_event_id"
        if isinstance(command, ChangeSupply | TakeSnapshot):  # the meter's own: no target
            return "command"
        if isinstance(exc, SnapshotsFull):  # the tariff's start: its snapshot has no room
            return "tariff.start_time"
        return "mac" if isinstance(command, Provision) else "target"

    async def _meter_command(self, command: ChangeSupply | TakeSnapshot) -> dict[str, Any]:
        """``change_supply`` or ``take_snapshot`` on the ESI's own meter. A meter without
        supply control, no meter, and a change the meter refuses (:class:`~zse.metering.
        supply.SupplyRefused`: 8 changes waiting already, ``at``) are answered as errors;
        an unknown snapshot ``cause`` too (the names are checked here, above the parser's
        layer)."""
        meter = self.esi.meter
        if meter is None:
            raise CommandError("command", "the ESI has no meter ([meter] in its configuration)")
        if isinstance(command, TakeSnapshot):
            cause = MeterSnapshotCause.__members__.get(command.cause)
            if cause is None:
                raise CommandError("cause", "not a Metering Snapshot Cause name (General...)")
            taken = await meter.take_snapshot(int(cause))
            return {
                "snapshot_id": taken.snapshot_id,
                "time": taken.time,
                "cause": command.cause,
                "summation": taken.summation,
            }
        control = meter.supply
        if control is None:
            raise CommandError("command", "the meter has no supply control ([meter] supply)")
        try:
            outcome = await meter.change_supply(
                command.status,
                at=command.at,
                provider_id=command.provider_id,
                issuer_event_id=command.issuer_event_id,
            )
        except SupplyRefused as exc:  # the status was checked: a change for later, 8 wait
            raise CommandError("at", str(exc)) from None
        return supply_payload(control, outcome.value)

    def _on_event(self, event: Any) -> asyncio.Future[None] | None:
        """Queue the event's publication; returns a future done once it is journaled (the
        ESI marks a report or a confirmation told only then)."""
        try:
            now = self.esi.clock()
            publication = event_publication(self.topics, event, now)
            if publication is None:
                publication = meter_event_publication(self.topics, self.meter, event, now)
            if publication is None and self.settings.send_events:
                publication = sent_publication(
                    self.topics, self.meter, event, now, retain=self.settings.retain
                )
            more = self._lifecycle(event, now)
        except Exception:  # never break the ESI's event stream; the log says what
            LOGGER.exception("MQTT bridge: event %s not published", type(event).__name__)
            return None
        if publication is None:
            self._unpublished(event)
            return None
        for item in (publication, *more):
            self.publish(item)
        return self._journaled_future()

    def _unpublished(self, event: Any) -> None:
        """Log, once per kind, an ESI event of a kind no topic is for (neither a device's
        event, :data:`~zse.mqtt.core.EVENT_KINDS`, nor a send, :data:`~zse.mqtt.core.
        SENT_KINDS`): a kind added to the ESI and not to the bridge is said, not dropped
        silently. A send with ``send_events`` off is not one."""
        name = type(event).__name__
        if name in EVENT_KINDS or name in SENT_KINDS or name in METER_EVENT_KINDS:
            return
        if name in self._unmapped:
            return
        self._unmapped.add(name)
        LOGGER.warning("MQTT bridge: the ESI's event %s has no topic; not published", name)

    async def _readings(self) -> None:
        """Publish the meter's readings every ``reading_interval`` seconds when they changed."""
        meter = self.esi.meter
        assert meter is not None
        attribute = MeteringAttribute
        while True:
            read = meter.core.read
            formatting = meter_formatting(read)
            summation = read(attribute.CURRENT_SUMM_DELIVERED)
            demand = read(attribute.INSTANTANEOUS_DEMAND)
            if demand is not None and not self._demand_announced:  # a demand at last
                for publication in self._meter():
                    self.publish(publication)
            values = {"summation": summation, "demand": demand}
            if summation is not None and values != self._last_reading:
                self._last_reading = values
                self.publish(
                    reading_publication(
                        self.topics,
                        self.meter,
                        formatting,
                        summation=summation,
                        demand=demand,
                        received=read(attribute.CURRENT_SUMM_RECEIVED),
                        now=self.esi.clock(),
                        retain=self.settings.retain,
                    )
                )
            await asyncio.sleep(self.settings.reading_interval)

    async def _execute(self, command: Command) -> dict[str, Any]:
        """Carry out an ESI command; its send reaches the broker as the ESI's event (e.g.
        :class:`~zse.roles.esi.LoadControlSent`), like any other send. ``provision`` of a
        device already METER_READY with that install code, ``deprovision`` of one already
        pending de-provisioning or gone, and a cancel repeated are answered ``ok`` (a command
        sent again under a new correlation id after this gateway stopped while carrying it
        out, docs/headend.md)."""
        esi = self.esi
        if isinstance(command, Provision):
            record = await esi.provision(
                command.mac,
                command.install_code,
                label=command.label,
                groups=command.groups,
                again=True,
            )
            state = record.state.value if record is not None else "admitted"
            return {"device": command.mac, "state": state}
        if isinstance(command, Deprovision):
            record = await esi.deprovision(command.mac)
            state = record.state.value if record is not None else "removed"
            return {"device": command.mac, "state": state}
        if isinstance(command, ChangeSupply | TakeSnapshot):
            return await self._meter_command(command)
        try:
            target = command.target.keywords()
            if isinstance(command, DisplayMessage):
                result = await esi.send_message(command.message, **target)
            elif isinstance(command, CancelMessage):
                result = await esi.cancel_message(command.message_id, **target)
            elif isinstance(command, PublishPrice):
                result = await esi.publish_price(command.price, **target)
            elif isinstance(command, PublishTariff):
                result = await esi.publish_tariff(command.tariff, *command.values, **target)
            elif isinstance(command, CancelTariff):
                result = await esi.cancel_tariff(command.cancellation, **target)
            elif isinstance(command, LoadControl):
                result = await esi.send_load_control(command.event, **target)
            else:
                assert isinstance(command, CancelLoadControl)
                result = await esi.cancel_load_control(
                    command.issuer_event_id, cancel_control=command.cancel_control, **target
                )
        except TargetError as exc:  # a registry group no device is in, say: name the field
            field = getattr(exc, "field", None) or (
                "group" if command.target.kind == "group" else "target"
            )
            raise CommandError(field, str(exc)) from None
        return result_payload(result)
