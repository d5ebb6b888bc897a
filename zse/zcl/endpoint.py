"""A ZCL endpoint runtime shared by the ESI side (zigpy) and the simulated HAN devices.

:class:`ZclEndpointBase` holds everything about an application endpoint that does not depend
on the radio: handlers per cluster, server attributes answered to Read Attributes, replies
with the request's TSN, Default Responses (ZCL 2.5.12), and matching replies to the
endpoint's own requests. A subclass supplies :meth:`ZclEndpointBase._transmit`, and feeds
received frames to :meth:`ZclEndpointBase._accept`. Attributes made writable with
:meth:`ZclEndpointBase.set_writable` take Write Attributes (ZCL 2.5.3-2.5.5).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, NamedTuple, Protocol

import zigpy.types as t
import zigpy.zdo.types as zdo_t
from zigpy.zcl import foundation

from zse.se.frames import max_zcl_payload
from zse.se.ids import SE_PROFILE_ID
from zse.zcl._tasks import keep_task
from zse.zcl.delivery import DIRECTIONS, Sender, deliver, delivery, response_delivery
from zse.zcl.frame import (
    _CLUSTER_COMMAND,
    _DISABLE_DEFAULT_RESPONSE,
    _SERVER_TO_CLIENT,
    Send,
    Step,
    ZclMessage,
    decode_zcl_header,
    encode_zcl_header,
)

__all__ = [
    "AttributeCheck",
    "AttributeWritten",
    "ZclEndpointBase",
    "ZclHandler",
    "ZclMessage",
    "ZclPort",
    "ZdoRequester",
    "carry_out",
    "decode_zcl_header",
    "encode_zcl_header",
    "match_servers",
    "request",
]

LOGGER = logging.getLogger(__name__)


ZclHandler = Callable[
    [ZclMessage], "Awaitable[foundation.Status | None] | foundation.Status | None"
]


AttributeCheck = Callable[[Any], "foundation.Status | None"]
"""Validates a value written to an attribute: None (or SUCCESS) accepts it, another status
(INVALID_VALUE, NOT_AUTHORIZED...) refuses it."""

AttributeWritten = Callable[[Any], "Awaitable[None] | None"]
"""Told of a value written to an attribute, once it is stored."""


def simple_descriptor(
    endpoint_id: int,
    taken: Iterable[int],
    *,
    profile_id: int = SE_PROFILE_ID,
    device_type: int = 0,
    device_version: int = 0,
    in_clusters: Iterable[int] = (),
    out_clusters: Iterable[int] = (),
) -> zdo_t.SimpleDescriptor:
    """The Simple Descriptor (ZDP 2.3.2.5) of a new application endpoint (1-240) hosting server
    (in) and client (out) clusters; ``taken``: the endpoints the device has already."""
    if not 1 <= endpoint_id <= 240 or endpoint_id in taken:
        raise ValueError(f"endpoint {endpoint_id} is out of range 1-240 or already exists")
    return zdo_t.SimpleDescriptor(
        endpoint=endpoint_id,
        profile=profile_id,
        device_type=device_type,
        device_version=device_version,
        input_clusters=list(in_clusters),
        output_clusters=list(out_clusters),
    )


class ZclPort(Sender, Protocol):
    """What a service needs from an endpoint: the ESI's :class:`~zse.zcl.se_endpoint.
    SeEndpoint` and a simulated device's endpoint both provide it (``send`` is
    :class:`~zse.zcl.delivery.Sender`'s)."""

    endpoint_id: int

    def set_attribute(
        self,
        cluster_id: int,
        attr_id: int,
        value: Any,
        type_id: int | None = None,
        *,
        client: bool = False,
    ) -> None: ...

    def set_attribute_source(
        self, cluster_id: int, attr_id: int, type_id: int, source: Callable[[], Any]
    ) -> None: ...

    def set_writable(
        self,
        cluster_id: int,
        attr_id: int,
        *,
        check: AttributeCheck | None = None,
        on_write: AttributeWritten | None = None,
    ) -> None: ...

    def add_handler(
        self, cluster_id: int, handler: ZclHandler, *, general: bool = False
    ) -> Callable[[], None]: ...

    async def request(
        self,
        dst: int,
        dst_ep: int,
        cluster_id: int,
        command_id: int,
        payload: bytes = b"",
        *,
        timeout: float = 8.0,
        **kwargs: Any,
    ) -> Any: ...

    async def reply(
        self,
        msg: Any,
        command_id: int,
        payload: bytes = b"",
        *,
        cluster_specific: bool = True,
        encrypt: bool | None = None,
    ) -> None: ...


class ZdoRequester(Protocol):
    """A device's ZDO request (the simulator's ``SimDevice``, a stick's ``StickDevice``)."""

    async def zdo_request(self, dst_nwk: int, command: zdo_t.ZDOCmd, *args: Any) -> Any: ...


async def match_servers(
    device: ZdoRequester, cluster_id: int, nwk: int = 0x0000
) -> tuple[int, list[int]]:
    """The responder's NWK address and its endpoints serving ``cluster_id`` on the SE profile
    (ZDO Match_Desc_req, ZB 2.4.3.1.7, SE 5.4.7.1); no endpoints for an error status."""
    status, address, endpoints = await device.zdo_request(
        nwk,
        zdo_t.ZDOCmd.Match_Desc_req,
        t.NWK(nwk),
        t.uint16_t(SE_PROFILE_ID),
        t.LVList[t.uint16_t, t.uint8_t]([t.uint16_t(cluster_id)]),
        t.LVList[t.uint16_t, t.uint8_t]([]),
    )
    if status != zdo_t.Status.SUCCESS:
        return int(address), []
    return int(address), [int(ep) for ep in endpoints]


async def request(endpoint: ZclPort, send: Send, *, timeout: float = 8.0) -> ZclMessage:
    """Send a core's request (a :class:`~zse.zcl.frame.Send` to a destination) by the
    delivery rule and return the frame that answers it (a response or a Default Response);
    ``TimeoutError`` when none comes."""
    if send.to is None:
        raise ValueError("a request goes to a destination, not in reply to a frame")
    rule = delivery(send.to, default_response=send.default_response)
    side: dict[str, Any] = {}
    if send.from_server is not None:
        side["direction"] = DIRECTIONS[send.from_server]
    if send.answers is not None:
        side["answers"] = send.answers
    reply: ZclMessage = await endpoint.request(
        send.to.address,
        send.to.endpoint,
        send.cluster_id,
        send.command_id,
        send.payload,
        timeout=timeout,
        cluster_specific=send.cluster_specific,
        encrypt=rule.encrypt,
        disable_default_response=rule.disable_default_response,
        **side,
    )
    return reply


async def carry_out(
    endpoint: ZclPort, step: Step, emit: Callable[[Any], object]
) -> foundation.Status | None:
    """Do what a core's :class:`~zse.zcl.frame.Step` says: send its frames in order (a
    response with :meth:`ZclPort.reply`, a command by :func:`~zse.zcl.delivery.deliver`),
    then hand its events to ``emit``; returns the Default Response status it owes. A frame
    the radio cannot deliver raises (the caller decides: an outbox retries what it owes)."""
    for send in step.sends:
        if send.reply_to is not None:
            await endpoint.reply(
                send.reply_to,
                send.command_id,
                send.payload,
                cluster_specific=send.cluster_specific,
            )
        else:
            assert send.to is not None
            await deliver(
                endpoint,
                send.to,
                send.cluster_id,
                send.command_id,
                send.payload,
                default_response=send.default_response,
                cluster_specific=send.cluster_specific,
                from_server=send.from_server,
            )
    for event in step.events:
        emit(event)
    return step.status


class ZclEndpointBase:
    """An application endpoint sending and receiving ZCL; subclasses bind it to a radio."""

    def __init__(self, descriptor: zdo_t.SimpleDescriptor, first_tsn: int) -> None:
        self.descriptor = descriptor
        self.endpoint_id = int(descriptor.endpoint)
        self.profile_id = int(descriptor.profile)
        self.attributes: dict[int, dict[int, foundation.TypeValue]] = {}
        #: Client attributes set with ``client=True`` (read-only; a server-to-client Read
        #: Attributes looks here first, then in :attr:`attributes`).
        self.client_attributes: dict[int, dict[int, foundation.TypeValue]] = {}
        self._sources: dict[int, dict[int, tuple[int, Callable[[], Any]]]] = {}
        self._writable: dict[
            int, dict[int, tuple[AttributeCheck | None, AttributeWritten | None]]
        ] = {}
        self._handlers: dict[int, list[ZclHandler]] = {}
        self._general: dict[int, list[ZclHandler]] = {}
        self._queues: list[asyncio.Queue[ZclMessage]] = []
        #: Requests awaiting their answer, by (peer, cluster, TSN).
        self._requests: dict[tuple[int, int, int], _Pending] = {}
        self._tsn = itertools.count(first_tsn)
        self._tasks: set[asyncio.Task[Any]] = set()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.endpoint_id}>"

    @property
    def in_clusters(self) -> list[int]:
        """Server clusters."""
        return list(self.descriptor.input_clusters)

    @property
    def out_clusters(self) -> list[int]:
        """Client clusters."""
        return list(self.descriptor.output_clusters)

    async def _transmit(
        self,
        *,
        dst_mode: t.AddrMode,
        dst: int,
        dst_ep: int,
        cluster_id: int,
        tsn: int,
        data: bytes,
        encrypt: bool | None,
    ) -> None:
        """Put one ZCL frame (header included) on the air; ``encrypt`` None = default."""
        raise NotImplementedError

    def next_tsn(self) -> int:
        """A fresh ZCL transaction sequence number."""
        return next(self._tsn) & 0xFF

    def set_attribute(
        self,
        cluster_id: int,
        attr_id: int,
        value: Any,
        type_id: int | None = None,
        *,
        client: bool = False,
    ) -> None:
        """Store an attribute answered to Read Attributes (type from the value if none): a
        server attribute, or with ``client`` a client attribute, answered only to a Read
        Attributes sent server to client (ZCL 2.4.1.1.3: the direction says which side's
        attributes are read), such as Key Establishment's client KeyEstablishmentSuite
        (SE C.3.2.1.1)."""
        if type_id is None:
            type_id = foundation.DataType.from_python_type(type(value)).type_id
        data_type = foundation.DataType.from_type_id(foundation.DataTypeId(type_id))
        store = self.client_attributes if client else self.attributes
        store.setdefault(cluster_id, {})[attr_id] = foundation.TypeValue(
            type=foundation.DataTypeId(type_id), value=data_type.python_type(value)
        )

    def set_attribute_source(
        self, cluster_id: int, attr_id: int, type_id: int, source: Callable[[], Any]
    ) -> None:
        """Answer Read Attributes for an attribute whose value is computed when read
        (``source()``), such as the Time cluster's time."""
        self._sources.setdefault(cluster_id, {})[attr_id] = (type_id, source)

    def set_writable(
        self,
        cluster_id: int,
        attr_id: int,
        *,
        check: AttributeCheck | None = None,
        on_write: AttributeWritten | None = None,
    ) -> None:
        """Let Write Attributes (ZCL 2.5.3-2.5.5) change an attribute stored with
        :meth:`set_attribute` (its type stays the stored one), or one served from a source
        (:meth:`set_attribute_source`: nothing is stored, ``on_write`` changes what the
        source gives). ``check(value)`` may refuse a
        value with a status (INVALID_VALUE for one out of range); ``on_write(value)``, which
        may be a coroutine function, is told of each value stored. Attributes not made
        writable answer READ_ONLY."""
        self._writable.setdefault(cluster_id, {})[attr_id] = (check, on_write)

    def attribute_value(
        self, cluster_id: int, attr_id: int, *, client: bool = False
    ) -> foundation.TypeValue | None:
        """The value Read Attributes answers for an attribute now, or None. With ``client``
        (a Read Attributes sent server to client): a client attribute if one was set, else
        the endpoint's attribute of that id, as before client attributes were kept apart."""
        if client:
            held = self.client_attributes.get(cluster_id, {}).get(attr_id)
            if held is not None:
                return held
        dynamic = self._sources.get(cluster_id, {}).get(attr_id)
        if dynamic is not None:
            type_id, source = dynamic
            data_type = foundation.DataType.from_type_id(foundation.DataTypeId(type_id))
            return foundation.TypeValue(
                type=foundation.DataTypeId(type_id), value=data_type.python_type(source())
            )
        return self.attributes.get(cluster_id, {}).get(attr_id)

    def add_handler(
        self, cluster_id: int, handler: ZclHandler, *, general: bool = False
    ) -> Callable[[], None]:
        """Call ``handler(msg)`` for each cluster-specific command on ``cluster_id`` that is not
        a reply to one of this endpoint's requests; it may reply with :meth:`reply` and may
        return a status to send as Default Response. With ``general``, the handler takes the
        cluster's global commands instead (ZCL 2.5: Configure Reporting, Read Reporting
        Configuration, Report Attributes...), except Read and Write Attributes and Default
        Response, which the endpoint answers itself. Returns a function that removes the
        handler."""
        table = self._general if general else self._handlers
        table.setdefault(cluster_id, []).append(handler)
        return lambda: table[cluster_id].remove(handler)

    async def messages(self) -> AsyncIterator[ZclMessage]:
        """Async-iterate every ZCL frame this endpoint accepts from now on."""
        queue: asyncio.Queue[ZclMessage] = asyncio.Queue()
        self._queues.append(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._queues.remove(queue)

    def _direction_for(self, cluster_id: int) -> foundation.Direction:
        if cluster_id in self.out_clusters:
            return foundation.Direction.Client_to_Server
        return foundation.Direction.Server_to_Client

    async def send(
        self,
        dst: int,
        dst_ep: int,
        cluster_id: int,
        command_id: int,
        payload: bytes = b"",
        *,
        cluster_specific: bool = True,
        direction: foundation.Direction | None = None,
        tsn: int | None = None,
        manufacturer: int | None = None,
        disable_default_response: bool = False,
        encrypt: bool | None = None,
        dst_mode: t.AddrMode = t.AddrMode.NWK,
    ) -> int:
        """Send one ZCL frame and return its TSN. ``dst_mode`` may be NWK, Group or
        Broadcast; ``dst`` is the matching address."""
        if direction is None:
            direction = self._direction_for(cluster_id)
        if tsn is None:
            tsn = self.next_tsn()
        frame_control = (
            (_CLUSTER_COMMAND if cluster_specific else 0)
            | (_SERVER_TO_CLIENT if direction == foundation.Direction.Server_to_Client else 0)
            | (_DISABLE_DEFAULT_RESPONSE if disable_default_response else 0)
        )
        data = encode_zcl_header(frame_control, manufacturer, tsn, command_id) + bytes(payload)
        await self._transmit(
            dst_mode=dst_mode,
            dst=dst,
            dst_ep=dst_ep,
            cluster_id=cluster_id,
            tsn=tsn,
            data=data,
            encrypt=encrypt,
        )
        return tsn

    async def request(
        self,
        dst: int,
        dst_ep: int,
        cluster_id: int,
        command_id: int,
        payload: bytes = b"",
        *,
        timeout: float = 8.0,
        **kwargs: Any,
    ) -> ZclMessage:
        """Send a ZCL request and wait for the frame answering it (same TSN, from ``dst``);
        ``answers``: the cluster commands that may answer it (:attr:`Send.answers`)."""
        tsn = kwargs.pop("tsn", None)
        if tsn is None:
            tsn = self.next_tsn()
        answers: frozenset[int] | None = kwargs.pop("answers", None)
        key = (dst, cluster_id, tsn)
        future: asyncio.Future[ZclMessage] = asyncio.get_running_loop().create_future()
        specific = kwargs.get("cluster_specific", True)
        self._requests[key] = _Pending(future, specific, command_id, answers)
        try:
            await self.send(dst, dst_ep, cluster_id, command_id, payload, tsn=tsn, **kwargs)
            async with asyncio.timeout(timeout):
                return await future
        finally:
            self._requests.pop(key, None)

    async def reply(
        self,
        msg: ZclMessage,
        command_id: int,
        payload: bytes = b"",
        *,
        cluster_specific: bool = True,
        encrypt: bool | None = None,
    ) -> None:
        """Answer ``msg`` from this endpoint with its TSN and the opposite direction, by the
        response rule (:func:`zse.zcl.delivery.response_delivery`) unless ``encrypt``
        decides."""
        rule = response_delivery(msg.aps_encrypted)
        await self.send(
            msg.src_nwk,
            msg.src_ep,
            msg.cluster_id,
            command_id,
            payload,
            cluster_specific=cluster_specific,
            direction=DIRECTIONS[not msg.from_server],
            tsn=msg.tsn,
            manufacturer=msg.manufacturer,
            disable_default_response=rule.disable_default_response,
            encrypt=rule.encrypt if encrypt is None else encrypt,
        )

    async def default_response(self, msg: ZclMessage, status: foundation.Status) -> None:
        """Send a Default Response (ZCL 2.5.12) to ``msg``."""
        await self.reply(
            msg,
            foundation.GeneralCommand.Default_Response,
            bytes((msg.command_id, int(status))),
            cluster_specific=False,
        )

    def _accept(self, msg: ZclMessage) -> None:
        """Hand a received frame to listeners, a pending request, or the handlers."""
        for queue in self._queues:
            queue.put_nowait(msg)
        pending = self._requests.get((msg.src_nwk, msg.cluster_id, msg.tsn))
        if pending is not None and not pending.future.done() and pending.answered_by(msg):
            pending.future.set_result(msg)
            return
        self._track(asyncio.get_running_loop().create_task(self._dispatch(msg)))

    def _track(self, task: asyncio.Task[Any]) -> None:
        """Keep a background task (a reply, a Default Response) until it ends; a reply the
        radio could not deliver is logged, never left to asyncio (#12.20)."""
        keep_task(self._tasks, task, LOGGER, f"{self!r}: reply not sent")

    def _handlers_for(self, msg: ZclMessage) -> list[ZclHandler]:
        """The handlers a received frame goes to (none: the endpoint answers it)."""
        if msg.is_cluster_command:
            return self._handlers.get(msg.cluster_id, [])
        if msg.command_id in _ENDPOINT_GLOBALS:
            return []
        return self._general.get(msg.cluster_id, [])

    async def _dispatch(self, msg: ZclMessage) -> None:
        unicast = msg.group is None and not msg.broadcast
        ddr = msg.disable_default_response
        handlers = self._handlers_for(msg)
        if handlers:
            status: foundation.Status | None = None
            for handler in list(handlers):
                try:
                    result = handler(msg)
                    if inspect.isawaitable(result):
                        result = await result
                except Exception:  # a failing handler must not take the endpoint down
                    LOGGER.exception("handler %r failed on %r", handler, msg)
                    continue
                if result is not None:
                    status = foundation.Status(result)
            if status is not None and unicast and (not ddr or status != foundation.Status.SUCCESS):
                await self.default_response(msg, status)
            return
        if (
            msg.command_id == foundation.GeneralCommand.Default_Response
            and not msg.is_cluster_command
        ):
            return
        if msg.cluster_id not in self.in_clusters + self.out_clusters:
            if unicast:
                await self.default_response(msg, foundation.Status.UNSUPPORTED_CLUSTER)
            return
        if (
            not msg.is_cluster_command
            and msg.command_id == foundation.GeneralCommand.Read_Attributes
        ):
            await self._read_attributes(msg)
            return
        if not msg.is_cluster_command and msg.command_id in _WRITES:
            await self._write_attributes(msg)
            return
        if unicast:
            code = (
                foundation.Status.UNSUP_CLUSTER_COMMAND
                if msg.is_cluster_command
                else foundation.Status.UNSUP_GENERAL_COMMAND
            )
            await self.default_response(msg, code)

    async def _read_attributes(self, msg: ZclMessage) -> None:
        try:
            ids, _ = t.List[t.uint16_t].deserialize(msg.payload)
        except ValueError:
            await self.default_response(msg, foundation.Status.MALFORMED_COMMAND)
            return
        out = b""
        # One frame's worth (no APS fragmentation): "only as many read attribute status
        # records as will fit in the frame" (ZCL 2.5.2); the client asks again for the rest.
        room = max_zcl_payload(group=False, aps_encrypted=msg.aps_encrypted)
        for attr in ids:
            value = self.attribute_value(msg.cluster_id, attr, client=msg.from_server)
            if value is None:
                record = foundation.ReadAttributeRecord(
                    attr, foundation.Status.UNSUPPORTED_ATTRIBUTE
                )
            else:
                record = foundation.ReadAttributeRecord(attr, foundation.Status.SUCCESS, value)
            encoded = record.serialize()
            if len(out) + len(encoded) > room:
                break
            out += encoded
        if msg.group is None and not msg.broadcast:
            await self.reply(
                msg, foundation.GeneralCommand.Read_Attributes_rsp, out, cluster_specific=False
            )

    async def _write_attributes(self, msg: ZclMessage) -> None:
        """Write Attributes, its Undivided and No Response forms (ZCL 2.5.3, 2.5.4, 2.5.6)
        answered with Write Attributes Response (ZCL 2.5.5): SUCCESS alone when every record
        was written, else a status record per refused attribute."""
        try:
            records = _write_records(msg.payload)
        except ValueError as exc:
            LOGGER.warning("malformed Write Attributes from 0x%04X: %s", msg.src_nwk, exc)
            if msg.group is None and not msg.broadcast:
                await self.default_response(msg, foundation.Status.MALFORMED_COMMAND)
            return
        undivided = msg.command_id == foundation.GeneralCommand.Write_Attributes_Undivided
        statuses = [
            self._check_write(msg.cluster_id, a, ty, v, client=msg.from_server)
            for a, ty, v in records
        ]
        refused = [
            foundation.WriteAttributesStatusRecord(status=status, attrid=attr)
            for (attr, _, _), status in zip(records, statuses, strict=True)
            if status != foundation.Status.SUCCESS
        ]
        if not (undivided and refused):
            for (attr, _, value), status in zip(records, statuses, strict=True):
                if status == foundation.Status.SUCCESS:
                    await self._store_written(msg.cluster_id, attr, value)
        if (
            msg.command_id == foundation.GeneralCommand.Write_Attributes_No_Response
            or msg.group is not None
            or msg.broadcast
        ):
            return
        payload = (
            b"".join(record.serialize() for record in refused)
            if refused
            else foundation.Status.SUCCESS.serialize()
        )
        await self.reply(
            msg, foundation.GeneralCommand.Write_Attributes_rsp, payload, cluster_specific=False
        )

    def _check_write(
        self, cluster_id: int, attr_id: int, type_id: int, value: Any, *, client: bool = False
    ) -> foundation.Status:
        """A write record's status, in the order of ZCL 2.5.3.3: unsupported attribute,
        wrong data type, read only, then the attribute's own check. Client attributes set
        with ``client=True`` are read-only."""
        stored = self.attribute_value(cluster_id, attr_id, client=client)
        if stored is None:
            return foundation.Status.UNSUPPORTED_ATTRIBUTE
        if int(stored.type) != type_id:
            return foundation.Status.INVALID_DATA_TYPE
        if client and attr_id in self.client_attributes.get(cluster_id, {}):
            return foundation.Status.READ_ONLY
        writable = self._writable.get(cluster_id, {}).get(attr_id)
        if writable is None:
            return foundation.Status.READ_ONLY
        check, _ = writable
        if check is None:
            return foundation.Status.SUCCESS
        status = check(value)
        return foundation.Status.SUCCESS if status is None else foundation.Status(status)

    async def _store_written(self, cluster_id: int, attr_id: int, value: Any) -> None:
        """Keep a written value (an attribute served from a source keeps none: its
        ``on_write`` changes what the source gives) and tell ``on_write``."""
        if attr_id not in self._sources.get(cluster_id, {}):
            stored = self.attributes[cluster_id][attr_id]
            self.attributes[cluster_id][attr_id] = foundation.TypeValue(
                type=stored.type, value=value
            )
        _, on_write = self._writable[cluster_id][attr_id]
        if on_write is not None:
            result = on_write(value)
            if inspect.isawaitable(result):
                await result


#: The global response to each global request (ZCL 2.5): a frame that answers a request.
_GLOBAL_RESPONSES: dict[int, int] = {
    foundation.GeneralCommand.Read_Attributes: foundation.GeneralCommand.Read_Attributes_rsp,
    foundation.GeneralCommand.Write_Attributes: foundation.GeneralCommand.Write_Attributes_rsp,
    foundation.GeneralCommand.Write_Attributes_Undivided: (
        foundation.GeneralCommand.Write_Attributes_rsp
    ),
    foundation.GeneralCommand.Configure_Reporting: (
        foundation.GeneralCommand.Configure_Reporting_rsp
    ),
    foundation.GeneralCommand.Read_Reporting_Configuration: (
        foundation.GeneralCommand.Read_Reporting_Configuration_rsp
    ),
    foundation.GeneralCommand.Discover_Attributes: (
        foundation.GeneralCommand.Discover_Attributes_rsp
    ),
    foundation.GeneralCommand.Read_Attributes_Structured: (
        foundation.GeneralCommand.Read_Attributes_rsp
    ),
    foundation.GeneralCommand.Write_Attributes_Structured: (
        foundation.GeneralCommand.Write_Attributes_Structured_rsp
    ),
    foundation.GeneralCommand.Discover_Commands_Received: (
        foundation.GeneralCommand.Discover_Commands_Received_rsp
    ),
    foundation.GeneralCommand.Discover_Commands_Generated: (
        foundation.GeneralCommand.Discover_Commands_Generated_rsp
    ),
    foundation.GeneralCommand.Discover_Attribute_Extended: (
        foundation.GeneralCommand.Discover_Attribute_Extended_rsp
    ),
}


class _Pending(NamedTuple):
    """A request awaiting its answer: its future, whether it was cluster-specific, its
    command id, and the cluster commands that answer it (None: any)."""

    future: asyncio.Future[ZclMessage]
    cluster_specific: bool
    command_id: int
    answers: frozenset[int] | None = None

    def answered_by(self, msg: ZclMessage) -> bool:
        """Whether ``msg``, from the peer with the request's TSN, answers it: a Default
        Response, a cluster command to a cluster command (one of :attr:`answers` when they
        are known), the global response of a global request. TSNs are the sender's own (ZCL
        2.4.1.3): a frame the peer sends of its own accord (an attribute report, a Tunneling
        server's Transfer Data) may carry the same number and is not the answer."""
        if msg.is_cluster_command:
            return self.cluster_specific and (
                self.answers is None or msg.command_id in self.answers
            )
        if msg.command_id == foundation.GeneralCommand.Default_Response:
            return True
        if self.cluster_specific:
            return False
        expected = _GLOBAL_RESPONSES.get(self.command_id)
        if expected is None:  # another global request: anything but a report
            return msg.command_id != foundation.GeneralCommand.Report_Attributes
        return msg.command_id == expected


#: Global commands the endpoint itself answers (never handed to a general handler).
_ENDPOINT_GLOBALS = frozenset(
    (
        foundation.GeneralCommand.Read_Attributes,
        foundation.GeneralCommand.Default_Response,
        foundation.GeneralCommand.Write_Attributes,
        foundation.GeneralCommand.Write_Attributes_Undivided,
        foundation.GeneralCommand.Write_Attributes_No_Response,
    )
)
_WRITES = frozenset(
    (
        foundation.GeneralCommand.Write_Attributes,
        foundation.GeneralCommand.Write_Attributes_Undivided,
        foundation.GeneralCommand.Write_Attributes_No_Response,
    )
)


def _write_records(payload: bytes) -> list[tuple[int, int, Any]]:
    """(attribute id, data type id, value) of each write attribute record (ZCL 2.5.3.1);
    ``ValueError`` saying where when the payload is cut short or names an unknown type."""
    records = []
    data = payload
    while data:
        offset = len(payload) - len(data)
        if len(data) < 3:
            raise ValueError(f"write attribute record cut short at offset {offset}")
        attr_id = int.from_bytes(data[:2], "little")
        type_id = data[2]
        python_type: Any
        try:
            python_type = foundation.DataType.from_type_id(
                foundation.DataTypeId(type_id)
            ).python_type
        except (KeyError, ValueError):
            raise ValueError(
                f"attribute 0x{attr_id:04X}: unknown data type 0x{type_id:02X}"
                f" at offset {offset + 2}"
            ) from None
        try:
            value, data = python_type.deserialize(data[3:])
        except (ValueError, KeyError, IndexError) as exc:
            raise ValueError(
                f"attribute 0x{attr_id:04X}: value cut short at offset {offset + 3} ({exc})"
            ) from None
        records.append((attr_id, type_id, value))
    if not records:
        raise ValueError("Write Attributes without a record")
    return records
