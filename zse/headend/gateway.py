"""Meters as gateways: the headend reaches each meter only through an MQTT broker, where the
meter's ESI runs the ``zse mqtt`` bridge (docs/mqtt.md, docs/adr/0018, docs/adr/0021).

Meter ``M`` is the bridge whose base topic is ``<prefix>/M`` (``zse mqtt --base-topic``). A
:class:`~zse.headend.link.Delivery` becomes the bridge's ``display_message`` or ``load_control``
command to the one device (target ``device``), its correlation id the delivery's idempotency
key; the bridge answers on the command's ``response_topic``, this link's own under the
meter's base topic (:meth:`GatewayLink.response_topic`: ``<prefix>/M/bridge/response/<client
id>``), with the device's outcome, so each response reaches only the worker that asked; and an
answer counts only for a command published to the meter of its topic (the broker's ACL lets a
gateway publish under its own base topic only, so the topic says which gateway answered: ADR
0021's amendment). The bridge records a correlation id *before* carrying the command out and
answers a repeat from that record (``"duplicate": true``), across its restarts (its
store), so a command sent again after a headend worker's crash, or after a timeout, is
answered and not carried out twice.

The devices' reports come from the bridges' event topics (``<prefix>/+/+/drlc``:
``ReportReceived``; ``<prefix>/+/+/message``: ``MessageConfirmed``), their lifecycle changes
from ``<prefix>/+/+/lifecycle`` (``LifecycleChanged``), and in batches from gateways with
``event_batches`` (``<prefix>/+/bridge/events``, ADR 0027), as a shared subscription of the
workers' group (``$share/<group>/...``): the broker hands each event to one worker. Each
names the meter of its topic (a batch's: each of its events), whose devices alone it may
move (the payload's ``device`` is the gateway's word; the topic, the broker's ACL). An event
is acknowledged once its worker recorded it, so one received by a worker that died before
recording it is sent again when that worker's session reconnects. The control commands of
:mod:`zse.headend.control` (``provision``, ``deprovision``, the cancels) go out by
:meth:`GatewayLink.command`. The link's MQTT session is persistent (clean session off, QoS
1): what arrives while it is away waits at the broker, the events the broker assigned to it
included (Mosquitto 2.0 hands a shared subscription's messages to its members in turn, those
offline too). The broker sends them as soon as the session connects: an event that comes while
nothing listens (a worker's link connected before the worker follows it, or after it stopped
following) is held unacknowledged for the listeners of its kind, or left to the broker when
the link closes; one of a kind that no listener follows is acknowledged and dropped. A meter
that does not answer within ``timeout`` seconds is :class:`MeterUnreachable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiomqtt

from zse import jsontext
from zse.errors import InvalidJson, StoreError
from zse.headend.core import Outcome, SendKind, outcome_of_report, refused
from zse.headend.link import (
    ESI_OUTCOMES,
    Answer,
    Delivery,
    Lifecycle,
    LifecycleListener,
    MeterLink,
    MeterUnreachable,
    Report,
    ReportListener,
    too_late,
)
from zse.installcode import InstallCode, canonical_eui64
from zse.mqtt.bridge import Reconnect, ack, broker_time, mqtt_client
from zse.mqtt.core import (
    BATCH,
    COMMANDS,
    EVENT_BATCH,
    MAX_BATCH,
    MAX_BATCH_BYTES,
    MAX_EVENTS,
    MqttConfigError,
    MqttSettings,
)
from zse.provisioning import LifecycleState

__all__ = ["DEFAULT_GROUP", "DEFAULT_PREFIX", "GatewayLink"]

LOGGER = logging.getLogger(__name__)

#: The topic under which each meter's bridge has its base topic: ``zse/meters/<meter id>``.
DEFAULT_PREFIX = "zse/meters"
_COMMANDS = {SendKind.MESSAGE: "display_message", SendKind.LOAD_CONTROL: "load_control"}
#: Publications a worker may have awaiting their acknowledgement: one per delivery under way
#: (``zse headend worker --batch``, at most 1,000), not a sign of trouble to log.
_PENDING_EXPECTED = 1_000
#: The control commands (:mod:`zse.headend.control`) whose answers the link waits for.
_CONTROL = ("provision", "deprovision", "cancel_message", "cancel_load_control")
#: The shared subscription group of the headend's workers (``$share/<group>/<filter>``).
DEFAULT_GROUP = "zse-headend"
#: The kinds of device events the workers share.
_EVENTS = ("drlc", "message", "lifecycle")
#: The end of a gateway's topic of batched events, and an event's topic in a batch.
_BATCHED = f"/bridge/{EVENT_BATCH}"
_DEVICE_EVENT = re.compile(rf"[0-9A-Fa-f]{{16}}/(?:{'|'.join(_EVENTS)})")
#: The kinds of listeners an event held for one waits for.
_REPORT, _LIFECYCLE = "report", "lifecycle"
#: Room kept in a batch's payload for its own fields (its correlation id, response topic).
_BATCH_ROOM = 1_024


@dataclass(frozen=True)
class _Outgoing:
    """A delivery's command waiting for the next publication to its meter."""

    name: str
    body: dict[str, Any]
    send_by: float | None
    waiter: asyncio.Future[dict[str, Any]]

    def __repr__(self) -> str:
        # a provision's install code by its fingerprint only (InstallCode's repr)
        body = {k: _code_shown(v) if k == "install_code" else v for k, v in self.body.items()}
        return f"_Outgoing(name={self.name!r}, body={body!r}, send_by={self.send_by!r})"


@dataclass(frozen=True)
class _Asked:
    """A command waiting for its answer: the ``meter`` it was published to, the command
    ``name`` asked and, for a delivery, the ``device`` (16 hex digits) whose outcome it asks;
    only an answer on that meter's topic that fits both is its answer (:meth:`fits`)."""

    waiter: asyncio.Future[dict[str, Any]]
    meter: str
    name: str
    device: str | None = None

    def fits(self, data: Mapping[str, Any]) -> bool:
        """Whether ``data`` answers this command: of its name, and if it gives outcomes (a
        delivery's ``ok``), each of them the asked device's."""
        if data.get("command") != self.name:
            return False
        result = data.get("result")
        outcomes = result.get("outcomes") if isinstance(result, dict) else None
        if self.device is None or data.get("status") != "ok" or not isinstance(outcomes, list):
            return True
        return all(_device_of(each) == self.device for each in outcomes)


def _device_of(outcome: object) -> str | None:
    """The device an answer's outcome names (16 hex digits), or None if it names none."""
    try:
        return canonical_eui64(str(outcome["device"]))  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return None


def _code_shown(value: object) -> object:
    try:
        return InstallCode.parse(str(value))
    except Exception:  # a repr never fails: a code that does not parse is not shown either
        return "<install code>"


class GatewayLink(MeterLink):
    """Meters reached through the broker of ``settings`` (see the module notes).

    ``settings.client_id`` names this link's persistent session: give each headend worker its
    own. ``timeout``: seconds a meter has to answer a command. ``combine``: the deliveries to
    one meter started together (a worker's claim) go as one ``batch`` command (up to
    :data:`~zse.mqtt.core.MAX_BATCH`; gateways of zse with batches, docs/mqtt.md), each still
    carried out and answered by its own correlation id; off: one command each.
    """

    def __init__(
        self,
        settings: MqttSettings,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = 30.0,
        group: str = DEFAULT_GROUP,
        response_name: str | None = None,
        combine: bool = True,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.prefix = prefix.rstrip("/")
        self.timeout = timeout
        self.combine = combine
        #: The shared subscription group of the events (one per headend: its workers).
        self.group = _level(group, "group")
        #: This link's name in each meter's responses (:meth:`response_topic`): by default
        #: its client id.
        self.response_name = _response_name(response_name or settings.client_id)
        #: The response topic of the workers before ADR 0021's amendment, the prefix's
        #: sibling ``headend/<client id>/response`` (left on connecting); the markers of
        #: :meth:`adopt` still go under it.
        self._home = "/".join(
            part
            for part in (self.prefix.rpartition("/")[0], "headend", settings.client_id, "response")
            if part
        )
        self.connected = asyncio.Event()
        #: Why the broker was last not reached (its client's error), None once it was.
        self.last_error: str | None = None
        #: Connection failures logged at debug level instead of as warnings (a caller that
        #: waits a bounded time at start and says the outcome itself, e.g. ``zse headend
        #: serve``'s ``--broker-wait``).
        self.quiet = False
        self._client: aiomqtt.Client | None = None
        self._waiting: dict[str, _Asked] = {}
        self._task: asyncio.Task[None] | None = None
        self._acks: set[asyncio.Task[None]] = set()
        #: Messages received: responses (this link's only) and events (its share).
        self.responses = self.events = 0
        #: The device events the last :meth:`_handle` handed to a listener (a batch: each).
        self._handed = 0
        #: Commands published, and the publications that carried them (batches: several).
        self.commands = self.publications = 0
        self._outgoing: dict[str, list[_Outgoing]] = {}
        self._flush: asyncio.Task[None] | None = None
        #: Every publication task under way, :attr:`_flush` included (cancelled by close).
        self._flushes: set[asyncio.Task[None]] = set()
        #: The batches awaiting their answer: the meter each went to, its commands' keys.
        self._batches: dict[str, tuple[str, list[str]]] = {}
        #: Events that came while nothing listened for their kind (a worker between its link's
        #: connection and its start, or after its stop), unacknowledged: handed to the first
        #: listener of their kind (then acknowledged once recorded), else left to the broker,
        #: which sends them again on the session's next connection.
        self._held: list[tuple[aiomqtt.Client, str, Any, asyncio.Future[Any]]] = []

    def base(self, meter: str) -> str:
        """The base topic of ``meter``'s bridge."""
        return f"{self.prefix}/{meter}"

    def response_topic(self, meter: str) -> str:
        """Where ``meter``'s gateway answers this link: under the gateway's own base topic,
        ``<prefix>/<meter>/bridge/response/<response name>``, so that the broker's ACL on
        what each gateway may publish says which one answered."""
        return f"{self.base(meter)}/bridge/response/{self.response_name}"

    def shared(self) -> list[str]:
        """The event subscriptions this link shares with its group's other members: each
        kind of device event, and the gateways' batches of them (ADR 0027)."""
        return [
            *(f"$share/{self.group}/{self.prefix}/+/+/{kind}" for kind in _EVENTS),
            f"$share/{self.group}/{self.prefix}/+/bridge/{EVENT_BATCH}",
        ]

    @property
    def session(self) -> str:
        return self.settings.client_id

    async def adopt(self, session: str) -> int:
        """Take over the persistent session ``session`` of a worker gone for good
        (:mod:`zse.headend.roster`): leave its shared subscriptions (nothing more is given to
        it), hand what the broker kept for it to the listeners (each acknowledged once
        recorded), until a marker published after them comes back, then end the session; how
        many events were handed over. :class:`aiomqtt.MqttError`, TimeoutError (``timeout``
        seconds without a message) or :class:`StoreError` (an event not recorded) leave the
        session as it is."""
        settings = dataclasses.replace(self.settings, client_id=session)
        marker = f"{self._home}/adopt/{uuid.uuid4().hex}"
        handed = 0
        client = mqtt_client(settings, manual_ack=True)
        with broker_time():
            await client.__aenter__()
        try:
            with broker_time():
                await client.unsubscribe([*self.shared(), *self._legacy()])
                await client.subscribe(marker, qos=1)
                await client.publish(marker, b"{}", qos=1)
            messages = aiter(client.messages)
            while True:
                with broker_time():
                    async with asyncio.timeout(self.timeout):  # not wait_for (3.11, gh-86296)
                        message = await anext(messages)
                topic = str(message.topic)
                if topic == marker:
                    ack(client, message)
                    break
                waits = self._handle(topic, message.payload)
                handed += self._handed  # a batch's events each
                done = await asyncio.gather(*waits, return_exceptions=True)
                if any(map(_unwritten, done)):
                    raise StoreError(f"an event of session {session} not recorded")
                ack(client, message)
        finally:
            with broker_time(), contextlib.suppress(Exception):
                await client.__aexit__(None, None, None)
        ending = mqtt_client(settings, clean=True)
        with broker_time():
            await ending.__aenter__()
            await ending.__aexit__(None, None, None)
        LOGGER.info("headend MQTT link: session %s ended, %d events taken over", session, handed)
        return handed

    async def start(self) -> None:
        """Connect in the background (and reconnect when the broker is lost)."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Disconnect; an event held for a listener that never came stays unacknowledged (the
        broker sends it again on the session's next connection). A delivery not published
        yet is not published: its caller's :class:`MeterUnreachable` comes at once (the job
        is tried again, with the same key)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        while self._flushes:
            flushes = list(self._flushes)
            for task in flushes:
                task.cancel()
            await asyncio.gather(*flushes, return_exceptions=True)
            self._flushes.difference_update(flushes)
        self._task = self._flush = None
        self._fail(self._outgoing)  # those of a publication cancelled before it began
        self._outgoing = {}
        self._drop_held(None)
        for task in list(self._acks):
            task.cancel()
        await asyncio.gather(*self._acks, return_exceptions=True)

    def _subscriptions(self) -> list[tuple[str, int]]:
        answers = f"{self.prefix}/+/bridge/response/{self.response_name}"
        return [(answers, 1), *((topic, 1) for topic in self.shared())]

    def _legacy(self) -> list[str]:
        """The subscriptions of a session from before shared events (ADR 0021): each worker
        had every response and every event; and from before its amendment, the one response
        topic of the worker's that any gateway could publish on."""
        names = (*_COMMANDS.values(), *_CONTROL)
        return [
            *(f"{self.prefix}/+/bridge/response/{name}" for name in names),
            *(f"{self.prefix}/+/+/{kind}" for kind in _EVENTS),
            self._home,
        ]

    async def _run(self) -> None:
        reconnect = Reconnect(self.settings.max_backoff)
        loop = asyncio.get_running_loop()
        while True:
            client = mqtt_client(self.settings, manual_ack=True)
            client.pending_calls_threshold = _PENDING_EXPECTED
            began: float | None = None  # when the connection was made, if it was
            try:
                with broker_time():
                    await client.__aenter__()
                try:
                    with broker_time():
                        await client.unsubscribe(self._legacy())
                        await client.subscribe(self._subscriptions())
                    self._client = client
                    self.last_error = None
                    self.connected.set()
                    began = loop.time()
                    async for message in client.messages:
                        self._received_safely(client, message)
                finally:
                    self._client = None
                    self.connected.clear()
                    self._drop_held(client)
                    with broker_time(), contextlib.suppress(Exception):
                        await client.__aexit__(None, None, None)
            except aiomqtt.MqttError as exc:
                self.last_error = str(exc)
                hint = reconnect.ended(began, loop.time(), self.settings.client_id)
                (LOGGER.debug if self.quiet else LOGGER.warning)(
                    "headend MQTT link: %s%s", exc, hint
                )
            else:
                reconnect.ended(began, loop.time(), self.settings.client_id)
            with broker_time():
                await asyncio.sleep(reconnect.wait())

    def on_report(self, listener: ReportListener) -> Callable[[], None]:
        """As :meth:`MeterLink.on_report`; the reports held until a listener came are its."""
        remove = super().on_report(listener)
        self._listening()
        return remove

    def on_lifecycle(self, listener: LifecycleListener) -> Callable[[], None]:
        """As :meth:`MeterLink.on_lifecycle`; the changes held until a listener came are its."""
        remove = super().on_lifecycle(listener)
        self._listening()
        return remove

    def _listening(self) -> None:
        """A listener came: hand it the held events of its kind now; at the loop's next turn
        (a worker adds its listeners together) those of a kind still followed by none are
        acknowledged and dropped, as any such event is, so that they do not hold the broker's
        window of unacknowledged messages for ever."""
        self._release(final=False)
        asyncio.get_running_loop().call_soon(self._release, True)

    def _unfollowed(self) -> bool:
        """Whether nothing listens (an event is then held) or held events wait to be handed
        (a later one waits behind them, in order)."""
        return not (self._listeners or self._lifecycle) or bool(self._held)

    def _hold(self, client: aiomqtt.Client, kind: str, value: Any) -> asyncio.Future[Any]:
        """Keep an event nobody listens for yet; the future its acknowledgement waits on."""
        held: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._held.append((client, kind, value, held))
        return held

    def _release(self, final: bool) -> None:
        """Hand the held events to the listeners of their kind, in the order they came; if
        ``final`` and anything listens, acknowledge those of a kind nobody follows."""
        keep = []
        anyone = bool(self._listeners or self._lifecycle)
        for client, kind, value, held in self._held:
            listeners = self._listeners if kind == _REPORT else self._lifecycle
            if held.done():
                continue
            if client is not self._client:  # that connection is gone: the broker resends it
                held.cancel()
            elif listeners:
                waits = self._reported(value) if kind == _REPORT else self._changed(value)
                task = asyncio.get_running_loop().create_task(_settle_held(held, waits))
                self._acks.add(task)
                task.add_done_callback(self._acks.discard)
            elif final and anyone:
                held.set_result(None)
            else:
                keep.append((client, kind, value, held))
        self._held = keep

    def _drop_held(self, client: aiomqtt.Client | None) -> None:
        """Leave the held events of ``client`` (None: all) unacknowledged, to the broker."""
        keep = []
        for item in self._held:
            if client is None or item[0] is client:
                item[3].cancel()
            else:
                keep.append(item)
        self._held = keep

    def _received_safely(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        """:meth:`_received`; a message it fails on (a fault of this code, not of the
        sender's: those are dropped in :meth:`_handle`) is logged, without its payload, and
        acknowledged, so that it neither ends the link nor comes back for ever."""
        try:
            self._received(client, message)
        except Exception:
            LOGGER.exception("headend MQTT link: a message on %s not handled", message.topic)
            ack(client, message)

    def _received(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        """A response (to its waiter) or an event (to the listeners, acknowledged once they
        recorded it; held, unacknowledged, while none listens for its kind); anything else is
        acknowledged and dropped."""
        topic = str(message.topic)
        waits = self._handle(topic, message.payload, holder=client)
        if not waits:
            ack(client, message)
            return
        if len(waits) == 1 and isinstance(waits[0], asyncio.Future):
            # the usual case, one listener's task: acknowledged from its done callback
            waits[0].add_done_callback(functools.partial(self._ack_done, client, message))
            return
        task = asyncio.get_running_loop().create_task(self._ack_when(client, message, waits))
        self._acks.add(task)
        task.add_done_callback(self._acks.discard)

    def _ack_done(
        self, client: aiomqtt.Client, message: aiomqtt.Message, done: asyncio.Future[Any]
    ) -> None:
        """:meth:`_ack_when` for one future, once it is done."""
        result = asyncio.CancelledError() if done.cancelled() else done.exception() or done.result()
        if client is self._client and not _unwritten(result):
            ack(client, message)

    async def _ack_when(
        self, client: aiomqtt.Client, message: aiomqtt.Message, waits: list[Awaitable[Any]]
    ) -> None:
        """Acknowledge ``message`` once ``waits`` are done; one not written (the database
        away, the worker stopped) leaves it to the broker to send again (on this session's
        next connection)."""
        done = await asyncio.gather(*waits, return_exceptions=True)
        if client is self._client and not any(map(_unwritten, done)):
            ack(client, message)

    def _handle(
        self, topic: str, payload: Any, *, holder: aiomqtt.Client | None = None
    ) -> list[Awaitable[Any]]:
        """What ``payload`` on ``topic`` asks to await before its acknowledgement; an event
        that comes while nothing listens is held if ``holder`` (the client it came by) is
        given."""
        self._handed = 0
        if not isinstance(payload, bytes | bytearray | str):
            return []
        try:
            data = jsontext.loads(payload)
        except InvalidJson:
            return []
        if not isinstance(data, dict):
            return []
        if self._response(topic, data):
            return []
        self.events += 1
        if topic.endswith(_BATCHED):
            return self._batch(topic, data, holder)
        return self._checked(topic, data, holder)

    def _response(self, topic: str, data: Mapping[str, Any]) -> bool:
        """Whether ``topic`` is a response topic; ``data`` on one of this link's, the meter
        of the topic's answer, to the command it answers."""
        head = f"{self.prefix}/"
        levels = topic[len(head) :].split("/") if topic.startswith(head) else []
        if levels[1:3] != ["bridge", "response"]:  # <prefix>/<meter>/bridge/response/...
            return topic == self._home  # this session's, before ADR 0021's amendment
        if "/".join(levels[3:]) == self.response_name:  # else another link's (taken over)
            self.responses += 1
            if data.get("command") == BATCH:
                self._batch_answered(levels[0], data)
            else:
                self._answered(levels[0], data)
        return True

    def _checked(
        self, topic: str, data: Mapping[str, Any], holder: aiomqtt.Client | None
    ) -> list[Awaitable[Any]]:
        """:meth:`_event`; one whose payload lacks a field or has a wrong one is dropped."""
        with contextlib.suppress(KeyError, TypeError, ValueError):
            waits = self._event(topic, data, holder)
            self._handed += bool(waits)
            return waits
        return []

    def _batch(
        self, topic: str, data: Mapping[str, Any], holder: aiomqtt.Client | None
    ) -> list[Awaitable[Any]]:
        """:meth:`_handle` for a gateway's batch of device events (``<prefix>/<meter>/
        bridge/events``, :func:`zse.mqtt.core.batched`): each event as if it had come on
        its own topic, ``<prefix>/<meter>/<device>/<kind>``; one that is not a device event
        of this meter (another level, another kind, a wrong payload) is dropped alone, and
        so is one a listener fails on (logged, as :meth:`_received_safely` does with a
        message), the others still handed on. The batch is acknowledged once all its events
        are recorded; past :data:`MAX_EVENTS` (more than a gateway sends) the rest is
        dropped, with a warning."""
        meter = topic[len(self.prefix) + 1 : -len(_BATCHED)]
        events = data.get("events")
        if "/" in meter or not isinstance(events, list):
            return []
        if len(events) > MAX_EVENTS:
            LOGGER.warning(
                "headend MQTT link: a batch of %d events on %s, %d dropped (at most %d)",
                len(events),
                topic,
                len(events) - MAX_EVENTS,
                MAX_EVENTS,
            )
        waits: list[Awaitable[Any]] = []
        for entry in events[:MAX_EVENTS]:
            if not isinstance(entry, dict) or not isinstance(entry.get("payload"), dict):
                continue
            relative = entry.get("topic")
            if not isinstance(relative, str) or not _DEVICE_EVENT.fullmatch(relative):
                continue
            try:
                waits += self._checked(
                    f"{self.prefix}/{meter}/{relative}", entry["payload"], holder
                )
            except Exception:  # no payload logged: the traceback says where it failed
                LOGGER.exception("headend MQTT link: an event of a batch on %s not handled", topic)
        return waits

    def _event(
        self, topic: str, data: Mapping[str, Any], holder: aiomqtt.Client | None
    ) -> list[Awaitable[Any]]:
        """:meth:`_handle` for a device's event (lifecycle change or report), of the meter
        whose topic it came on: the headend moves only that meter's devices."""
        meter = topic[len(self.prefix) + 1 :].split("/", 1)[0]
        if topic.endswith("/lifecycle"):
            change = _lifecycle(meter, data)
            if change is None:
                return []
            if holder is not None and self._unfollowed():
                return [self._hold(holder, _LIFECYCLE, change)]
            return self._changed(change)
        report = _report(data, meter)
        if report is None:
            return []
        if holder is not None and self._unfollowed():
            return [self._hold(holder, _REPORT, report)]
        return self._reported(report)

    def _answered(self, meter: str, data: Mapping[str, Any], *, whole: bool = False) -> None:
        """``data``, on ``meter``'s response topic, to the command waiting on its
        correlation id, if it answers that command: the command was published to ``meter``
        (another meter's gateway answering a key it was never sent is not its answer) and
        (:meth:`_Asked.fits`; ``whole``: a batch's refusal, every command's answer) one of
        another command, or on another device, is not either; the command waits on for its
        own."""
        key = str(data.get("correlation_id"))
        asked = self._waiting.get(key)
        if asked is None or asked.waiter.done():
            return
        if asked.meter != meter:
            _not_its_own(key, meter, asked.meter)
            return
        if not whole and not asked.fits(data):
            LOGGER.warning(
                "headend MQTT link: an answer to %s not of the %s asked: not taken",
                _shown(key),
                asked.name,
            )
            return
        asked.waiter.set_result(dict(data))

    def _batch_answered(self, meter: str, data: Mapping[str, Any]) -> None:
        """A batch's response, on ``meter``'s response topic: each of its commands' to its
        waiter (a response in it to a command of another publication is not taken: its
        meter's gateway answers that one); a batch refused as a whole (``responses`` missing:
        e.g. a gateway without batches) is each command's answer. Only the gateway of the
        meter the batch was published to answers it: on another meter's topic it answers
        nothing, and the batch still waits for its own answer."""
        batch = str(data.get("correlation_id"))
        sent = self._batches.get(batch)
        if sent is None:
            return
        if sent[0] != meter:
            _not_its_own(batch, meter, sent[0])
            return
        keys = self._batches.pop(batch)[1]
        responses = data.get("responses")
        if isinstance(responses, list):
            for response in responses:
                if isinstance(response, dict) and str(response.get("correlation_id")) in keys:
                    self._answered(meter, response)
            return
        for key in keys:
            self._answered(meter, {**data, "correlation_id": key}, whole=True)

    async def deliver(self, delivery: Delivery) -> Answer:
        name = _COMMANDS[delivery.kind]
        field = "message" if delivery.kind is SendKind.MESSAGE else "event"
        request = {
            "correlation_id": delivery.key,
            "device": delivery.device,
            field: dict(delivery.payload),
        }
        if not self.combine:
            response = await self._command(
                delivery.meter, name, request, delivery.send_by, device=delivery.device
            )
        else:
            response = await self._combined(
                delivery.meter, name, request, delivery.send_by, device=delivery.device
            )
        return _answer(response)

    async def _combined(
        self, meter: str, name: str, body: dict[str, Any], send_by: float | None, *, device: str
    ) -> dict[str, Any]:
        """:meth:`command`, the command published with the others to ``meter`` started in
        the same turn of the event loop (one ``batch``, up to :data:`MAX_BATCH`)."""

        async def queue(waiter: asyncio.Future[dict[str, Any]]) -> None:
            self._outgoing.setdefault(meter, []).append(_Outgoing(name, body, send_by, waiter))
            if self._flush is None:
                self._flush = asyncio.get_running_loop().create_task(self._publish_outgoing())
                self._flushes.add(self._flush)
                self._flush.add_done_callback(self._flushes.discard)

        asked = _Asked(_future(), meter, name, canonical_eui64(device))
        return await self._answer_to(meter, str(body["correlation_id"]), asked, queue)

    async def command(
        self, meter: str, name: str, body: Mapping[str, Any], *, send_by: float | None = None
    ) -> dict[str, Any]:
        """Publish the command on ``meter``'s request topic, unless the event loop's time is
        past ``send_by`` by then (the broker away meanwhile), and wait for its response (by
        correlation id, of the command ``name``) at most ``timeout`` seconds."""
        return await self._command(meter, name, body, send_by)

    async def _command(
        self,
        meter: str,
        name: str,
        body: Mapping[str, Any],
        send_by: float | None,
        *,
        device: str | None = None,
    ) -> dict[str, Any]:
        """:meth:`command`; a delivery's answer must give the outcome of ``device``."""

        async def publish(waiter: asyncio.Future[dict[str, Any]]) -> None:
            await self.connected.wait()
            too_late(meter, send_by)  # the last look before it goes out
            alone = _Outgoing(name, dict(body), send_by, waiter)
            await self._publish(self._client, meter, [alone])

        asked = _Asked(_future(), meter, name, None if device is None else canonical_eui64(device))
        return await self._answer_to(meter, str(body["correlation_id"]), asked, publish)

    async def _answer_to(
        self,
        meter: str,
        key: str,
        asked: _Asked,
        send: Callable[[asyncio.Future[dict[str, Any]]], Awaitable[None]],
    ) -> dict[str, Any]:
        """``send(waiter)``, then the response to ``key`` that ``asked`` takes (set on its
        ``waiter``), all within ``timeout`` seconds; :class:`MeterUnreachable` without it."""
        waiter = asked.waiter
        self._waiting[key] = asked
        try:
            with broker_time():
                async with asyncio.timeout(self.timeout):
                    await send(waiter)
                    return await waiter
        except (TimeoutError, aiomqtt.MqttError) as exc:
            why = "did not answer" if isinstance(exc, TimeoutError) else f"unreachable: {exc}"
            raise MeterUnreachable(f"meter {meter} {why}") from None
        finally:
            self._waiting.pop(key, None)

    async def _publish_outgoing(self) -> None:
        """Publish what waits for each meter: one command alone as itself, several as
        batches; none past its ``send_by``. A failed publication fails its commands."""
        self._flush = None  # what is started from now on goes in the next publication
        outgoing, self._outgoing = self._outgoing, {}
        try:
            await self._publish_taken(outgoing)
        except asyncio.CancelledError:  # the link closing: their callers answered now
            self._fail(outgoing)
            raise

    async def _publish_taken(self, outgoing: dict[str, list[_Outgoing]]) -> None:
        """:meth:`_publish_outgoing` of ``outgoing``, once connected."""
        with broker_time():
            await self.connected.wait()
        client = self._client
        publications = []
        for meter, waiting in outgoing.items():
            ready = []
            for each in waiting:
                if each.waiter.done():  # timed out meanwhile
                    continue
                try:
                    too_late(meter, each.send_by)  # the last look before it goes out
                except MeterUnreachable as exc:
                    each.waiter.set_exception(exc)
                    continue
                ready.append(each)
            publications += [self._publish(client, meter, part) for part in _parts(ready)]
        await asyncio.gather(*publications)

    @staticmethod
    def _fail(outgoing: Mapping[str, list[_Outgoing]]) -> None:
        """The waiters of ``outgoing`` not answered yet fail: the link closed."""
        for waiting in outgoing.values():
            for each in waiting:
                if not each.waiter.done():
                    each.waiter.set_exception(aiomqtt.MqttError("the link closed"))
                    each.waiter.exception()  # its caller may be gone: not logged as unseen

    async def _publish(
        self, client: aiomqtt.Client | None, meter: str, part: list[_Outgoing]
    ) -> None:
        """Publish ``part`` (to ``meter``): one command, or a batch of them; a publication
        that fails fails the commands' waiters (:class:`aiomqtt.MqttError`)."""
        base = f"{self.base(meter)}/bridge/request"
        answers = self.response_topic(meter)
        if len(part) == 1:
            topic = f"{base}/{part[0].name}"
            body = {**part[0].body, "response_topic": answers}
        else:
            batch = uuid.uuid4().hex
            topic = f"{base}/{BATCH}"
            body = {
                "correlation_id": batch,
                "response_topic": answers,
                "commands": [{"command": each.name, **each.body} for each in part],
            }
            self._batches[batch] = (meter, [str(each.body["correlation_id"]) for each in part])
        try:
            if client is None or client is not self._client:
                raise aiomqtt.MqttError("the connection was lost")
            with broker_time():
                await client.publish(topic, json.dumps(body), qos=1)
            self.commands += len(part)
            self.publications += 1
            if len(part) > 1:  # forgotten once its commands are answered or given up
                await asyncio.wait([each.waiter for each in part])  # never cancels them
        except aiomqtt.MqttError as exc:
            for each in part:
                if not each.waiter.done():
                    each.waiter.set_exception(exc)
        finally:
            if len(part) > 1:
                self._batches.pop(body["correlation_id"], None)


def _future() -> asyncio.Future[dict[str, Any]]:
    return asyncio.get_running_loop().create_future()


def _shown(value: str, limit: int = 80) -> str:
    """A correlation id for a message, cut to ``limit`` characters."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


def _parts(waiting: list[_Outgoing]) -> list[list[_Outgoing]]:
    """``waiting`` in publications of at most :data:`MAX_BATCH` commands and
    :data:`MAX_BATCH_BYTES` bytes, in order."""
    if len(waiting) < 2:
        return [waiting] if waiting else []
    parts: list[list[_Outgoing]] = []
    size = _BATCH_ROOM
    for each in waiting:
        length = len(json.dumps(each.body)) + len(each.name) + 16
        if not parts or len(parts[-1]) == MAX_BATCH or size + length > MAX_BATCH_BYTES:
            parts.append([])
            size = _BATCH_ROOM
        parts[-1].append(each)
        size += length
    return parts


async def _settle_held(held: asyncio.Future[Any], waits: list[Awaitable[Any]]) -> None:
    """Settle a held event's future once its listeners are done: with what says it was not
    written, if one does (it then stays unacknowledged), else None."""
    done = await asyncio.gather(*waits, return_exceptions=True)
    if not held.done():
        held.set_result(next((result for result in done if _unwritten(result)), None))


def _unwritten(result: Any) -> bool:
    """Whether a listener's result says its event is not written yet and may be later (a
    :class:`StoreError`, a cancellation); another failure would fail again: not kept."""
    return isinstance(result, StoreError | asyncio.CancelledError)


def _response_name(value: str) -> str:
    """``value`` as a link's name in its response topics: a topic's end (MQTT 3.1.1 section
    4.7: no wildcard, no NUL), not the name of a command, which the bridge answers on
    ``<base>/bridge/response/<command>`` when the command names no response topic."""
    if not value or any(c in "+#\0" for c in value) or value in (*COMMANDS, BATCH):
        raise MqttConfigError(f"not a usable name for response topics: {value!r}")
    return value


def _not_its_own(key: str, meter: str, asked: str) -> None:
    """Log an answer to ``key`` that came on ``meter``'s response topic, though the command
    went to meter ``asked``: not taken (that gateway was never sent it)."""
    LOGGER.warning(
        "headend MQTT link: an answer to %s on meter %s's topic, sent to meter %s: not taken",
        _shown(key),
        _shown(meter),
        _shown(asked),
    )


def _level(value: str, what: str) -> str:
    """``value`` as one topic level (MQTT 3.1.1 section 4.7.1: no ``/``, no wildcard)."""
    if not value or any(c in "/+#\0" for c in value):
        raise MqttConfigError(f"{what}: not one topic level: {value!r}")
    return value


def _answer(response: Mapping[str, Any]) -> Answer:
    """The bridge's response to a command as the device's answer."""
    status = response.get("status")
    if status == "ok":
        outcomes = response.get("result", {}).get("outcomes", [])
        if len(outcomes) == 1 and outcomes[0].get("outcome") in ESI_OUTCOMES:
            return Answer(
                outcome=ESI_OUTCOMES[outcomes[0]["outcome"]],
                detail=str(outcomes[0].get("detail", "")),
            )
        return Answer(outcome=Outcome.SKIPPED, detail="no outcome for the device", final=True)
    if status == "started":  # a repeat of a command the gateway was cut short carrying out
        return Answer(outcome=Outcome.OFFLINE, detail="the gateway stopped while sending it")
    error = response.get("error") or {}
    detail = refused(str(error.get("field")), error.get("message"))
    return Answer(outcome=Outcome.SKIPPED, detail=detail, final=True)


def _lifecycle(meter: str, data: Mapping[str, Any]) -> Lifecycle | None:
    """A device's lifecycle change from a bridge's ``lifecycle`` payload, or None (a
    refused event changes nothing)."""
    if data.get("event") != "LifecycleChanged":
        return None
    before = data.get("from_state")
    return Lifecycle(
        meter=meter,
        device=str(data["device"]),
        event=str(data["lifecycle_event"]),
        from_state=None if before is None else LifecycleState(before),
        to_state=LifecycleState(data["to_state"]),
        detail=str(data.get("detail", ""))[:200],
        time=_whole(data["time"], 0xFFFFFFFF),  # ZigBee UTCTime: 32 bits (ZCL 2.6.2)
    )


def _whole(value: Any, high: int) -> int:
    """A JSON integer of 0 to ``high`` (what the database's column holds), else ValueError:
    the event is dropped, not carried to a write that would fail each time it came."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise ValueError("not an integer in range")
    return value


def _report(data: Mapping[str, Any], meter: str | None = None) -> Report | None:
    """A device's report from a bridge's event payload (docs/mqtt.md), or None; ``meter``:
    the meter of the topic it came on. A repeat (``"new": false``) is taken too: outcomes
    only move forward, so it changes nothing the headend has, and it carries a report the
    headend may never have had (an ESI killed between recording it and its bridge's
    outbox)."""
    event = data.get("event")
    if event == "ReportReceived":
        report = data["report"]
        status = _whole(report["event_status"], 0xFF)
        return Report(
            device=str(data["device"]),
            send=_whole(report["issuer_event_id"], 0xFFFFFFFF),
            kind=SendKind.LOAD_CONTROL,
            outcome=outcome_of_report(status),
            meter=meter,
            event_status=status,
        )
    if event == "MessageConfirmed":
        return Report(
            device=str(data["device"]),
            send=_whole(data["message"]["message_id"], 0xFFFFFFFF),
            kind=SendKind.MESSAGE,
            outcome=Outcome.CONFIRMED,
            meter=meter,
        )
    return None
