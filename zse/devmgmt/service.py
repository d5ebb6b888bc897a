"""Device Management over ZCL (SE 1.2 D.10): the ESI's server and a HAN device's client.

Thin asyncio shells of :mod:`zse.devmgmt.protocol`: they decode a frame with
:mod:`zse.devmgmt.wire` (a payload that does not decode: MALFORMED_COMMAND; a command the
cluster does not define: UNSUP_CLUSTER_COMMAND, ZCL 2.5.12), hand it to the core with the time
and carry out the :class:`~zse.zcl.frame.Step`. The server persists what it publishes in a
:class:`zse.store.Store` (committed before it is sent; a damaged record is quarantined and not
served). The client runs one timer: a change of tenancy or supplier is told again when it
takes effect (:class:`~zse.devmgmt.core.TenancyTakesEffect`). ``clock()`` gives ZigBee time.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any, Final

from zigpy.zcl import foundation

from zse.devmgmt.core import EventConfigurations, Item, Password, Published
from zse.devmgmt.protocol import (
    ALL_EVENTS,
    DeviceManagementClientProtocol,
    DeviceManagementServerProtocol,
    WaitingConfiguration,
    attribute_type_id,
    attribute_values,
    waiting_from_records,
    waiting_records,
)
from zse.devmgmt.wire import ConfigurationControl, DeviceManagement
from zse.errors import InvalidFrame
from zse.records import U32, MapOf, RecordError, check, load_each
from zse.se.ids import DEVICE_MANAGEMENT_CLUSTER
from zse.store import Batch, Store, write_at_stop
from zse.time.service import system_clock
from zse.zcl.codec import decode_command, refusal
from zse.zcl.delivery import Destination
from zse.zcl.endpoint import ZclPort, carry_out, request
from zse.zcl.events import EventStream
from zse.zcl.frame import Send, Step, ZclMessage
from zse.zcl.timer import Timer
from zse.zcl.undo import PutBack

__all__ = [
    "DEVICE_MANAGEMENT_CLUSTER",
    "STEP_RETRY",
    "DeviceManagementClient",
    "DeviceManagementServer",
]

LOGGER = logging.getLogger(__name__)

#: Seconds after which the client's step due (a change of tenancy / supplier taking effect,
#: an event configuration applied at its time) whose store write failed is taken again
#: (zse's choice, as the meter's SUPPLY_RETRY; put back, it waited for the next input).
STEP_RETRY: Final = 30


_APPLIED_SHAPE = MapOf(U32)
#: The client's record of the Set Event Configuration commands waiting for their time.
_WAITING = "event_configuration/waiting"


_Loaded = tuple[dict[str, int], list[WaitingConfiguration]]


def _applied(
    namespace: str,
) -> Callable[[dict[str, Any], Callable[[RecordError], None]], _Loaded]:
    """The loader of the client's records: the changes in effect (key -> issuer event id)
    and the Set Event Configuration commands waiting for their time."""

    def load(records: dict[str, Any], on_bad: Callable[[RecordError], None]) -> _Loaded:
        applied: dict[str, int] = {}
        waiting: list[WaitingConfiguration] = []

        def one(key: str, value: Any) -> None:
            if key == _WAITING:
                waiting[:] = waiting_from_records(value)
                return
            if key != "applied":
                raise ValueError("not a Device Management client record")
            check(value, _APPLIED_SHAPE)
            applied.update({k: int(v) for k, v in value.items() if k in ("tenancy", "supplier")})

        load_each(records.items(), one, namespace=namespace, on_bad=on_bad)
        return applied, waiting

    return load


_Saved = tuple[dict[str, int], list[WaitingConfiguration], bool, dict[int, int]]


def _saved(p: DeviceManagementClientProtocol) -> _Saved:
    """What a timeout of the client's core changes: the changes in effect, the event
    configurations waiting (and whether they are unstored) and the event configuration."""
    return dict(p.kept.applied), list(p.waiting), p.waiting_changed, dict(p.configurations.table)


def _restore(p: DeviceManagementClientProtocol, saved: _Saved) -> None:
    applied, p.waiting, p.waiting_changed, table = saved
    p.kept.applied.clear()
    p.kept.applied.update(applied)
    p.configurations.table.clear()
    p.configurations.table.update(table)


def _step(
    protocol: DeviceManagementServerProtocol | DeviceManagementClientProtocol,
    msg: ZclMessage,
    now: int,
) -> Step:
    screened = protocol.screen(msg)
    if screened is not None:
        return screened
    try:
        command, _ = decode_command(
            DeviceManagement, msg.command_id, msg.payload, from_server=msg.from_server
        )
    except InvalidFrame as exc:
        LOGGER.warning("bad Device Management command from 0x%04X: %s", msg.src_nwk, exc)
        return Step(status=refusal(exc))
    return protocol.receive(msg, command, now)


class DeviceManagementServer:
    """The ESI's Device Management server (SE 1.2 D.10.2): publishes changes of tenancy and
    supplier, the site id and CIN, holds passwords, answers the Get commands.

    ``on_event`` / ``events`` hear :class:`~zse.devmgmt.protocol.PasswordRequested` and
    :class:`~zse.devmgmt.protocol.EventConfigurationReported`."""

    def __init__(
        self,
        endpoint: ZclPort,
        *,
        clock: Callable[[], int] = system_clock,
        store: Store | None = None,
        namespace: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.clock = clock
        self.store = store
        self.namespace = namespace or f"device_management.server/{endpoint.endpoint_id}"
        self.protocol = DeviceManagementServerProtocol()
        self._stream: EventStream[Any] = EventStream()
        self.on_event = self._stream.on_event
        self.events = self._stream.events
        self._remove: Callable[[], None] | None = None
        self._served: dict[int, Any] = {}

    @property
    def published(self) -> Published:
        """What is published (the core's)."""
        return self.protocol.published

    async def start(self) -> None:
        """Load what was published before a restart, then serve the cluster."""
        if self.store is not None:
            self.protocol.published = await self.store.load_with(
                self.namespace,
                lambda records, on_bad: Published.from_records(
                    records, namespace=self.namespace, on_bad=on_bad
                ),
            )
        self._remove = self.endpoint.add_handler(DEVICE_MANAGEMENT_CLUSTER, self._on_message)
        self.serve_attributes()

    def serve_attributes(self) -> None:
        """Answer Read Attributes for the attributes that follow from what is published
        (D.10.2.2: provider, proposed provider, change of tenancy), read when asked."""
        for attr in attribute_values(self.published, self.clock()):
            if attr not in self._served:
                self._served[attr] = None
                self.endpoint.set_attribute_source(
                    DEVICE_MANAGEMENT_CLUSTER,
                    attr,
                    attribute_type_id(attr),
                    functools.partial(self._attribute, attr),
                )

    def _attribute(self, attr: int) -> Any:
        value = attribute_values(self.published, self.clock()).get(attr)
        if value is not None:
            self._served[attr] = value
        return self._served[attr]

    async def stop(self) -> None:
        """Stop serving the cluster (the store keeps what was published); commit what a
        write that failed or was cancelled before its transaction left
        (:func:`~zse.store.write_at_stop`: one commit, a failure logged, no password in it).
        Again: nothing more."""
        if self._remove is not None:
            self._remove()
            self._remove = None
        await write_at_stop(self._save, "the Device Management server")

    async def publish(self, item: Item, *, to: Destination | None = None) -> None:
        """Record ``item`` (a change of tenancy / supplier, site id or CIN), commit it, and
        with ``to`` send it there. An older issue than the one held:
        :class:`~zse.devmgmt.core.StaleIssue`, nothing changed."""
        step = self.protocol.publish(item)
        await self._save()
        self.serve_attributes()
        if to is not None:
            await self.send(item, to)
        await carry_out(self.endpoint, step, self._stream.emit)

    async def set_password(self, password: Password) -> None:
        """Hold ``password`` for Request New Password (stored as the store keeps keys)."""
        self.published.set_password(password)
        await self._save()

    async def send(self, item: Item, to: Destination) -> None:
        """Send a publication (held or not) to ``to``."""
        await carry_out(
            self.endpoint, Step(sends=(self.protocol.send(item, to),)), self._stream.emit
        )

    async def tell(self, to: Destination) -> int:
        """Send a device everything held (at its join): tenancy, supplier, site id, CIN;
        returns how many commands went."""
        held = self.protocol.held()
        for item in held:
            await self.send(item, to)
        return len(held)

    async def set_event_configuration(
        self,
        to: Destination,
        *,
        issuer_event_id: int,
        configuration: int,
        control: ConfigurationControl,
        value: int | list[int],
        start_time: int = 0,
    ) -> None:
        """Send Set Event Configuration (D.10.2.4.5) to a device."""
        send = self.protocol.set_event_configuration(
            to,
            issuer_event_id=issuer_event_id,
            configuration=configuration,
            control=control,
            value=value,
            start_time=start_time,
        )
        await carry_out(self.endpoint, Step(sends=(send,)), self._stream.emit)

    async def get_event_configuration(
        self, to: Destination, event_id: int = ALL_EVENTS
    ) -> list[tuple[int, int]]:
        """Ask a device for its event configuration (Get Event Configuration, D.10.2.4.6);
        returns the first Report Event Configuration's pairs (also told as an event)."""
        reply = await request(self.endpoint, self.protocol.get_event_configuration(to, event_id))
        if not reply.is_cluster_command:
            return []
        step = _step(self.protocol, reply, self.clock())
        await carry_out(self.endpoint, Step(events=step.events), self._stream.emit)
        return [pair for event in step.events for pair in getattr(event, "configurations", ())]

    async def _save(self) -> None:
        changes = self.published.changes()
        if self.store is None or not changes:
            return
        batch = Batch()
        for key, value in changes.items():
            batch.put(self.namespace, key, value)
        try:
            await self.store.commit(batch)
        finally:  # not stored (failed, or cancelled before its transaction): served already,
            if batch.landed is None:  # so written with the next commit
                self.published.unsaved(changes)

    async def _on_message(self, msg: ZclMessage) -> foundation.Status | None:
        step = _step(self.protocol, msg, self.clock())
        return await carry_out(self.endpoint, step, self._stream.emit)


class DeviceManagementClient:
    """A HAN device's Device Management client (SE 1.2 D.10.3): keeps what the ESI publishes
    (:attr:`kept`) and tells the application (``on_event``): each new issue as it comes,
    each change of tenancy / supplier again when it takes effect. ``applied`` (persisted by
    the HAN device) names the changes already in effect, so that one is acted on once."""

    def __init__(
        self,
        endpoint: ZclPort,
        *,
        server_nwk: int = 0x0000,
        server_ep: int,
        clock: Callable[[], int] = system_clock,
        configurations: EventConfigurations | None = None,
        request_timeout: float = 8.0,
        store: Store | None = None,
        namespace: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.store = store
        self.namespace = namespace or f"device_management.client/{endpoint.endpoint_id}"
        self.server_nwk = server_nwk
        self.server_ep = server_ep
        self.clock = clock
        self.request_timeout = request_timeout
        self.protocol = DeviceManagementClientProtocol(configurations)
        self.kept = self.protocol.kept
        self._stream: EventStream[Any] = EventStream()
        self.on_event = self._stream.on_event
        self.events = self._stream.events
        self._lock = asyncio.Lock()
        self._timer = Timer("Device Management client timer", logger=LOGGER)
        self._timed = PutBack(
            self.protocol,
            functools.partial(_saved, self.protocol),
            functools.partial(_restore, self.protocol),
        )
        self._timer.add(self._timed, self._due, clock=self.clock, lock=self._lock, retry=STEP_RETRY)
        self._remove: Callable[[], None] | None = None

    async def start(self) -> None:
        """Load which changes are in effect already and the event configurations waiting for
        their time (with a store), take the server's commands and run the timer (what fell
        due while stopped is applied at once)."""
        if self.store is not None:
            applied, waiting = await self.store.load_with(self.namespace, _applied(self.namespace))
            self.kept.applied.update(applied)
            self.protocol.waiting = waiting
        self._remove = self.endpoint.add_handler(DEVICE_MANAGEMENT_CLUSTER, self._on_message)
        self._timer.start()

    async def stop(self) -> None:
        if self._remove is not None:
            self._remove()
            self._remove = None
        await self._timer.stop()

    def _server(self) -> Destination:
        return Destination.device(self.server_nwk, self.server_ep)

    async def fetch(self) -> int:
        """Ask the ESI for the change of tenancy, change of supplier, site id and CIN (each
        a Get command); returns how many it held. Unanswered: counted as none."""
        p = self.protocol
        held = 0
        for build in (p.get_change_of_tenancy, p.get_change_of_supplier, p.get_site_id, p.get_cin):
            if await self._ask(build(self._server())):
                held += 1
        return held

    async def request_password(self, password_type: int) -> Password | None:
        """Request New Password (D.10.2.3.3); the password, or None when the ESI has none."""
        reply = await self._request(
            self.protocol.request_new_password(self._server(), password_type)
        )
        if reply is None or not reply.is_cluster_command:
            return None
        step = await self._take(reply)
        for event in step.events:
            password = getattr(event, "password", None)
            if isinstance(password, Password):
                return password
        return None

    async def _ask(self, send: Send) -> bool:
        reply = await self._request(send)
        if reply is None or not reply.is_cluster_command:
            return False
        await self._take(reply)
        return True

    async def _request(self, send: Send) -> ZclMessage | None:
        try:
            return await request(self.endpoint, send, timeout=self.request_timeout)
        except (TimeoutError, OSError) as exc:
            LOGGER.info("Device Management request 0x%02X failed: %s", send.command_id, exc)
            return None

    async def _take(self, msg: ZclMessage) -> Step:
        async with self._lock:
            step = _step(self.protocol, msg, self.clock())
        self._timer.update()
        await carry_out(self.endpoint, step, self._stream.emit)
        return step

    async def _on_message(self, msg: ZclMessage) -> foundation.Status | None:
        async with self._lock:
            step = _step(self.protocol, msg, self.clock())
            await self._store_waiting(Batch())  # before the answer: kept once answered
        self._timer.update()
        return await carry_out(self.endpoint, step, self._stream.emit)

    async def _store_waiting(self, batch: Batch) -> None:
        """Commit ``batch`` with the waiting event configurations when they changed."""
        if self.protocol.waiting_changed:
            batch.put(self.namespace, _WAITING, waiting_records(self.protocol.waiting))
        if self.store is not None and len(batch):
            await self.store.commit(batch)
        self.protocol.waiting_changed = False

    async def _due(self, step: Step) -> None:
        """Changes taking effect and event configurations applied at their time: which ones
        is committed first, so each is acted on once. A commit cancelled during its
        transaction (a stop), which the store carries out (:attr:`Batch.landed
        <zse.store.Batch.landed>`), tells them before it raises: stored as applied, they
        were never told. A write that fails (or is cancelled before its transaction) puts
        the step back, as stored, and raises: the timer takes it again :data:`STEP_RETRY`
        seconds later (it was kept applied in memory, never told nor stored: the next
        restart applied and told it)."""
        batch = Batch()
        if step.events:
            batch.put(self.namespace, "applied", dict(self.kept.applied))
        try:
            await self._store_waiting(batch)
        except BaseException as exc:
            self._timed.write_raised(batch.landed, exc, step.events, self._stream.emit)
            raise
        await carry_out(self.endpoint, step, self._stream.emit)
