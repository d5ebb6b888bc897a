"""A ZCL endpoint runtime shared by the ESI side (zigpy) and the simulated HAN devices.

:class:`ZclEndpointBase` holds everything about an application endpoint that does not depend
on the radio: handlers per cluster, server attributes answered to Read Attributes, replies
with the request's TSN, Default Responses (ZCL 2.5.12: unicast only), Discover Attributes
(ZCL 2.5.13), Configure Reporting and Read Reporting Configuration on a cluster that reports
nothing (2.5.7-2.5.10: UNREPORTABLE_ATTRIBUTE), and matching replies to the endpoint's own
requests. A subclass supplies :meth:`ZclEndpointBase._transmit`, and feeds
received frames to :meth:`ZclEndpointBase._accept`. Attributes made writable with
:meth:`ZclEndpointBase.set_writable` take Write Attributes (ZCL 2.5.3-2.5.5); a cluster's
owner may check a frame's records in turn, each against what the records before it write
(:meth:`ZclEndpointBase.set_frame_check`, ZCL 2.5.3.3), and commit each Write Attributes
Undivided frame whole, all or none (:meth:`ZclEndpointBase.set_undivided_commit`, ZCL 2.5.4.3).
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any, NamedTuple, Protocol

import zigpy.types as t
import zigpy.zdo.types as zdo_t
from zigpy.zcl import foundation

from zse.se.frames import max_zcl_payload
from zse.se.ids import SE_PROFILE_ID
from zse.zcl._tasks import keep_task
from zse.zcl.delivery import (
    ALL_ENDPOINTS,
    DIRECTIONS,
    Sender,
    deliver,
    delivery,
    response_delivery,
)
from zse.zcl.frame import (
    _CLUSTER_COMMAND,
    _DISABLE_DEFAULT_RESPONSE,
    _FRAME_TYPE,
    _SERVER_TO_CLIENT,
    Send,
    Step,
    ZclMessage,
    decode_zcl_header,
    encode_zcl_header,
)

__all__ = [
    "APPLICATION_ENDPOINTS",
    "AttributeCheck",
    "AttributeWritten",
    "FrameCheck",
    "Matched",
    "UndividedCommit",
    "ZclEndpointBase",
    "ZclHandler",
    "ZclMessage",
    "ZclPort",
    "ZdoRequester",
    "carry_out",
    "decode_zcl_header",
    "encode_zcl_header",
    "match_descriptors",
    "match_servers",
    "request",
]

LOGGER = logging.getLogger(__name__)

#: ZigBee's application endpoints, 1-240 (0 is the ZDO's, 241-254 are reserved, 255 addresses
#: every endpoint).
APPLICATION_ENDPOINTS = range(1, 241)


ZclHandler = Callable[
    [ZclMessage], "Awaitable[foundation.Status | None] | foundation.Status | None"
]


AttributeCheck = Callable[[Any], "foundation.Status | None"]
"""Validates a value written to an attribute: None (or SUCCESS) accepts it, another status
(INVALID_VALUE, NOT_AUTHORIZED...) refuses it."""

AttributeWritten = Callable[[Any], "Awaitable[foundation.Status | None] | foundation.Status | None"]
"""Told of a value written to an attribute, before it is kept: None (or SUCCESS) takes it,
another status refuses it at commit time (a check against state that another frame's write
may change meanwhile, judged under the owner's own serialization)."""

FrameCheck = Callable[[Sequence[tuple[int, Any]]], "Sequence[foundation.Status | None]"]
"""Checks a Write Attributes frame's records, (attribute id, value) in the frame's order, when
it arrives: a status per record, None (or SUCCESS) accepting it, each judged as if the records
before it that were accepted had been written (ZCL 2.5.3.3)."""

UndividedCommit = Callable[
    [Sequence[tuple[int, Any]]],
    "Awaitable[Sequence[foundation.Status | None]] | Sequence[foundation.Status | None]",
]
"""Commits a Write Attributes Undivided frame's records, (attribute id, value) in the
frame's order, all or none (ZCL 2.5.4.3): a status per record, None (or SUCCESS) for one
that is written. A record refused commits none of the frame; raising commits none either."""


def _statuses(verdicts: Sequence[foundation.Status | None], count: int) -> list[foundation.Status]:
    """An owner's verdicts on ``count`` write records as statuses (None is SUCCESS), for
    :data:`FrameCheck` and :data:`UndividedCommit`; :class:`ValueError` for another count."""
    statuses = [foundation.Status.SUCCESS if v is None else foundation.Status(v) for v in verdicts]
    if len(statuses) != count:
        raise ValueError(f"{len(statuses)} statuses for {count} records")
    return statuses


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
    if endpoint_id not in APPLICATION_ENDPOINTS or endpoint_id in taken:
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

    def set_frame_check(self, cluster_id: int, check: FrameCheck) -> None: ...

    def set_undivided_commit(self, cluster_id: int, commit: UndividedCommit) -> None: ...

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


class Matched(NamedTuple):
    """A Match_Desc_rsp (ZB 2.4.4.2.7): its status, NWKAddrOfInterest and MatchList, in the
    order the responder listed the endpoints."""

    status: int
    address: int
    endpoints: list[int]


async def match_descriptors(device: ZdoRequester, cluster_id: int, nwk: int = 0x0000) -> Matched:
    """Ask ``nwk`` which of its endpoints serve ``cluster_id`` on the SE profile (ZDO
    Match_Desc_req, ZB 2.4.3.1.7, SE 5.4.7.1) and return its Match_Desc_rsp as it came, error
    status included. A response that does not decode raises the radio's
    :class:`~zse.errors.DecodeError`; no response, ``TimeoutError``."""
    status, address, endpoints = await device.zdo_request(
        nwk,
        zdo_t.ZDOCmd.Match_Desc_req,
        t.NWK(nwk),
        t.uint16_t(SE_PROFILE_ID),
        t.LVList[t.uint16_t, t.uint8_t]([t.uint16_t(cluster_id)]),
        t.LVList[t.uint16_t, t.uint8_t]([]),
    )
    return Matched(int(status), int(address), [int(ep) for ep in endpoints])


async def match_servers(
    device: ZdoRequester, cluster_id: int, nwk: int = 0x0000
) -> tuple[int, list[int]]:
    """The responder's NWK address and its endpoints serving ``cluster_id`` on the SE profile
    (:func:`match_descriptors`); no endpoints for an error status."""
    matched = await match_descriptors(device, cluster_id, nwk)
    if matched.status != zdo_t.Status.SUCCESS:
        return matched.address, []
    return matched.address, matched.endpoints


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
        self._frame_checks: dict[int, FrameCheck] = {}
        self._undivided: dict[int, UndividedCommit] = {}
        self._handlers: dict[int, list[ZclHandler]] = {}
        self._general: dict[int, list[ZclHandler]] = {}
        self._queues: list[asyncio.Queue[ZclMessage]] = []
        #: Requests awaiting their answer, by (peer, cluster, TSN).
        self._requests: dict[tuple[int, int, int], _Pending] = {}
        #: Received frames whose handlers are running, by (peer, endpoint, cluster, TSN), and
        #: the replies sent with that TSN to that endpoint while they run (ZCL 2.5.12.2: a
        #: Default Response only where no other answer went).
        self._handling: collections.Counter[tuple[int, int, int, int]] = collections.Counter()
        self._replies: collections.Counter[tuple[int, int, int, int]] = collections.Counter()
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

    def takes_all_endpoints_frame(self, cluster_id: int, zcl_frame: bytes) -> bool:
        """Whether a frame for the broadcast endpoint 0xFF reaches this endpoint: only one
        hosting the side of the cluster its direction bit names (ZCL 2.4.1.1.3), which draws
        no error answer from the others (ZCL r8 2.3.2.1). An empty frame: the server side."""
        to_client = bool(zcl_frame) and bool(zcl_frame[0] & _SERVER_TO_CLIENT)
        return cluster_id in (self.out_clusters if to_client else self.in_clusters)

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
        text = issubclass(data_type.python_type, str)
        if isinstance(value, str | bytes | bytearray) and text != isinstance(value, str):
            # zigpy would serve bytes as a character string by their Python spelling ("b'x'")
            raise TypeError(
                f"attribute 0x{cluster_id:04X}/0x{attr_id:04X}: a {type(value).__name__} value"
                f" for data type 0x{type_id:02X}, which holds {'text' if text else 'octets'}"
            )
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
        value with a status (INVALID_VALUE for one out of range) when its frame arrives;
        ``on_write(value)``, which may be a coroutine function, is told of each value taken
        before it is kept, and may still refuse it by returning a status other than SUCCESS
        (answered for that record, as a check's; ZCL 2.5.3.3): a check that holds only when
        made under the owner's serialization of its writes, as the Time server's ValidUntilTime
        against a LastSetTime another frame sets meanwhile. The value is served only once
        ``on_write`` has taken it. Attributes not made writable answer READ_ONLY."""
        self._writable.setdefault(cluster_id, {})[attr_id] = (check, on_write)

    def set_frame_check(self, cluster_id: int, check: FrameCheck) -> None:
        """Check the records of each Write Attributes frame (all three forms) of a cluster
        with ``check(records)`` when the frame arrives, in place of each attribute's
        ``check`` (:meth:`set_writable`): it is given the records that passed the endpoint's
        own checks (supported, of the attribute's data type, writable), in the frame's
        order, and judges each as if the records before it that it accepted were written
        (ZCL 2.5.3.3), as the Time server's ValidUntilTime against the LastSetTime a Time
        before it in the frame sets. A status per record; FAILURE for each (logged) when it
        raises or answers another number of them."""
        self._frame_checks[cluster_id] = check

    def set_undivided_commit(self, cluster_id: int, commit: UndividedCommit) -> None:
        """Let ``commit(records)`` (which may be a coroutine function) commit each Write
        Attributes Undivided frame of a cluster whose records all passed the checks of
        :meth:`set_writable`, in place of each record's ``on_write``: ZCL 2.5.4.3 writes all
        of the frame or none, and a record judged at commit time may hinge on an earlier
        one (the Time server's ValidUntilTime on a Time before it). It answers a status per
        record; the response lists those not SUCCESS (ZCL 2.5.5), FAILURE for each record
        when it raises (logged). The endpoint keeps none of the values: the owner serves
        what it committed (:meth:`set_attribute`, a source). Without it, and for Write
        Attributes, each record goes to its ``on_write`` in turn, so one refused or failing
        there leaves the frame's earlier records written."""
        self._undivided[cluster_id] = commit

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
        Configuration, Report Attributes...), except Read, Write and Discover Attributes and
        Default Response, which the endpoint answers itself. Returns a function that removes
        the handler. A manufacturer-specific command reaches a handler only on a cluster of
        the manufacturer-specific range, and a cluster command only for a side of the cluster
        the endpoint hosts (:meth:`_refusal`)."""
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
        """Send a ZCL request and wait for the frame answering it (same TSN, from ``dst``'s
        endpoint ``dst_ep`` or, for 0xFF, any of its endpoints, sent the other way:
        :meth:`_Pending.answered_by`); ``answers``: the cluster commands that may answer it
        (:attr:`Send.answers`).

        The wait for the answer begins before the frame is sent: a send that asks for an APS
        acknowledgement (ZB 2.2.8.4.1) returns only once it came, and the answer may come
        first (the acknowledgement lost, the frame resent). An answer that came while the
        radio still resent the frame is returned even if the send then failed: it proves
        the request arrived."""
        tsn = kwargs.pop("tsn", None)
        if tsn is None:
            tsn = self.next_tsn()
        direction = kwargs.pop("direction", None)
        if direction is None:
            direction = self._direction_for(cluster_id)
        answers: frozenset[int] | None = kwargs.pop("answers", None)
        key = (dst, cluster_id, tsn)
        future: asyncio.Future[ZclMessage] = asyncio.get_running_loop().create_future()
        pending = self._requests[key] = _Pending(
            future,
            kwargs.get("cluster_specific", True),
            command_id,
            dst_ep,
            direction == foundation.Direction.Server_to_Client,
            answers,
        )
        try:
            try:
                await self.send(
                    dst,
                    dst_ep,
                    cluster_id,
                    command_id,
                    payload,
                    tsn=tsn,
                    direction=direction,
                    **kwargs,
                )
            except Exception as exc:
                if not future.done():
                    raise
                LOGGER.debug("%r: answered although the send failed (%s)", self, exc)
            async with asyncio.timeout(timeout):
                return await future
        finally:
            # A newer request to the peer with the same TSN may hold the key now: leave it.
            if self._requests.get(key) is pending:
                del self._requests[key]

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
        key = _reply_key(msg)
        if key in self._handling:
            self._replies[key] += 1  # counted when tried: it may reach the peer even if it fails
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

    def _refusal(self, msg: ZclMessage) -> foundation.Status | None:
        """The Default Response status of a frame this endpoint refuses before any handler
        sees it, None for one it takes:

        - a manufacturer-specific cluster command on a standard cluster (ZCL 2.4.1.1.2: the
          command id is the manufacturer's, not the cluster's): UNSUP_MANUF_CLUSTER_COMMAND;
          a manufacturer-specific general command other than Default Response and those
          naming attributes (read, write, discover, reporting: the manufacturer's attributes,
          of which zse has none): UNSUP_MANUF_GENERAL_COMMAND. A cluster of the
          manufacturer-specific range takes its manufacturer's commands;
        - a cluster command for a side of the cluster the endpoint does not host (the
          direction bit names the receiving side, ZCL 2.4.1.1.3), never handed to the other
          side's handler: UNSUP_CLUSTER_COMMAND (the side it hosts has no such command),
          UNSUPPORTED_CLUSTER when it hosts neither side. Silicon Labs' framework answers
          UNSUPPORTED_CLUSTER for both.
        """
        if msg.manufacturer is not None and msg.cluster_id < _MANUFACTURER_CLUSTERS:
            if msg.is_cluster_command:
                return foundation.Status.UNSUP_MANUF_CLUSTER_COMMAND
            if msg.command_id not in _ATTRIBUTE_COMMANDS | _ENDPOINT_GLOBALS:
                return foundation.Status.UNSUP_MANUF_GENERAL_COMMAND
        if msg.is_cluster_command and msg.cluster_id not in (
            self.out_clusters if msg.from_server else self.in_clusters
        ):
            if msg.cluster_id in self.in_clusters + self.out_clusters:
                return foundation.Status.UNSUP_CLUSTER_COMMAND
            return foundation.Status.UNSUPPORTED_CLUSTER
        return None

    async def _dispatch(self, msg: ZclMessage) -> None:
        if msg.frame_control & _FRAME_TYPE not in (0, _CLUSTER_COMMAND):
            # ZCL 2.4.1.1.1: frame types 0b10 and 0b11 are reserved; no way to tell what the
            # command id means, so no answer either.
            LOGGER.debug("%r: dropped a frame of reserved frame type from %r", self, msg)
            return
        refused = self._refusal(msg)
        if refused is not None:
            if msg.group is None and not msg.broadcast:
                await self.default_response(msg, refused)
            return
        handlers = self._handlers_for(msg)
        if handlers:
            await self._run_handlers(msg, handlers)
        else:
            await self._unhandled(msg)

    async def _run_handlers(self, msg: ZclMessage, handlers: list[ZclHandler]) -> None:
        """Hand ``msg`` to its handlers; the Default Response a status returned asks for.
        ZCL 2.5.12.2 sends one only when all its criteria hold: a unicast command, no other
        command sent in response with its TSN, and the Disable Default Response bit clear or
        an error status. So a reply with the frame's TSN to its sender while the handlers ran
        (a specific response, a global one) is the answer, whatever status they return; a
        handler that raised (logged) leaves FAILURE owed when nothing answered."""
        status: foundation.Status | None = None
        failed = answered = False
        key = _reply_key(msg)
        self._handling[key] += 1
        replies = self._replies[key]
        try:
            for handler in list(handlers):
                try:
                    result = handler(msg)
                    if inspect.isawaitable(result):
                        result = await result
                    if result is not None:
                        status = foundation.Status(result)
                except Exception:  # a failing handler must not take the endpoint down
                    LOGGER.exception("handler %r failed on %r", handler, msg)
                    failed = True
            answered = self._replies[key] != replies
            if failed and not answered:
                status = foundation.Status.FAILURE
        finally:
            self._handling[key] -= 1
            if not self._handling[key]:
                del self._handling[key]
                self._replies.pop(key, None)
        unicast = msg.group is None and not msg.broadcast
        if (
            status is not None
            and unicast
            and not answered
            and (not msg.disable_default_response or status != foundation.Status.SUCCESS)
        ):
            await self.default_response(msg, status)

    async def _unhandled(self, msg: ZclMessage) -> None:
        """A frame no handler takes: the global commands the endpoint answers itself, a
        Default Response for the rest (unicast only, ZCL 2.5.12.2)."""
        unicast = msg.group is None and not msg.broadcast
        general = not msg.is_cluster_command
        if general and msg.command_id == foundation.GeneralCommand.Default_Response:
            return
        if msg.cluster_id not in self.in_clusters + self.out_clusters:
            if unicast:
                await self.default_response(msg, foundation.Status.UNSUPPORTED_CLUSTER)
            return
        answer = _ANSWERS.get(msg.command_id) if general else None
        if answer is not None:
            await answer(self, msg)
            return
        if general and msg.command_id in _RECEIVED_ONLY:
            # A response nothing waits for (late), a report nobody listens to: understood,
            # so SUCCESS when the sender asks for a Default Response (ZCL 2.5.12.2).
            if unicast and not msg.disable_default_response:
                await self.default_response(msg, foundation.Status.SUCCESS)
            return
        if unicast:
            code = (
                foundation.Status.UNSUP_GENERAL_COMMAND
                if general
                else foundation.Status.UNSUP_CLUSTER_COMMAND
            )
            await self.default_response(msg, code)

    def _held(
        self, msg: ZclMessage, attr_id: int
    ) -> foundation.TypeValue | foundation.Status | None:
        """The attribute a received global command names on the side its direction bit
        says (ZCL 2.4.1.1.3); None for a manufacturer-specific one (zse keeps none)."""
        if msg.manufacturer is not None:
            return None
        return self._attribute(msg.cluster_id, attr_id, client=msg.from_server)

    def _attribute(
        self, cluster_id: int, attr_id: int, *, client: bool
    ) -> foundation.TypeValue | foundation.Status | None:
        """:meth:`attribute_value` for a peer's command: FAILURE (logged) when the
        attribute's source raises, so the command's other attributes are still answered."""
        try:
            return self.attribute_value(cluster_id, attr_id, client=client)
        except Exception:
            LOGGER.exception(
                "%r: the source of attribute 0x%04X/0x%04X failed", self, cluster_id, attr_id
            )
            return foundation.Status.FAILURE

    async def _malformed(self, msg: ZclMessage, what: str) -> None:
        """MALFORMED_COMMAND for a unicast global command that does not decode (ZCL
        2.5.12.2: never to a group or broadcast)."""
        LOGGER.warning("%r: malformed command from 0x%04X: %s", self, msg.src_nwk, what)
        if msg.group is None and not msg.broadcast:
            await self.default_response(msg, foundation.Status.MALFORMED_COMMAND)

    async def _discover_attributes(self, msg: ZclMessage) -> None:
        """Discover Attributes (ZCL 2.5.13) answered with its response (2.5.14): the ids and
        types of the side's attributes from the start id on, in id order, at most the
        maximum count and what fits one frame; discovery complete when none is left."""
        if len(msg.payload) < 3:
            await self._malformed(msg, "Discover Attributes shorter than 3 octets")
            return
        start = int.from_bytes(msg.payload[:2], "little")
        most = msg.payload[2]
        if msg.manufacturer is not None:
            held: dict[int, int] = {}
        elif msg.from_server:
            held = {
                a: int(v.type) for a, v in self.client_attributes.get(msg.cluster_id, {}).items()
            }
        else:
            held = {a: int(v.type) for a, v in self.attributes.get(msg.cluster_id, {}).items()}
            held.update({a: ty for a, (ty, _) in self._sources.get(msg.cluster_id, {}).items()})
        ids = sorted(a for a in held if a >= start)
        room = (max_zcl_payload(group=False, aps_encrypted=msg.aps_encrypted) - 1) // 3
        listed = ids[: min(most, room)]
        records = b"".join(a.to_bytes(2, "little") + bytes((held[a],)) for a in listed)
        if msg.group is None and not msg.broadcast:
            complete = bytes((len(listed) == len(ids),))
            await self.reply(
                msg,
                foundation.GeneralCommand.Discover_Attributes_rsp,
                complete + records,
                cluster_specific=False,
            )

    async def _no_reporting(self, msg: ZclMessage) -> None:
        """Configure Reporting (ZCL 2.5.7) and Read Reporting Configuration (2.5.9) on a
        cluster that reports nothing (no general handler took them): each record answered
        UNSUPPORTED_ATTRIBUTE for an attribute the side does not have, else
        UNREPORTABLE_ATTRIBUTE (2.5.8.1.3, 2.5.10.1.1), a direction 0x01 (timeout) record
        too: no report is expected here."""
        configure = msg.command_id == foundation.GeneralCommand.Configure_Reporting
        try:
            records = _reporting_records(msg.payload, configure=configure)
        except ValueError as exc:
            await self._malformed(msg, str(exc))
            return
        if msg.group is not None or msg.broadcast:
            return
        room = max_zcl_payload(group=False, aps_encrypted=msg.aps_encrypted)
        out = b""
        for direction, attr in records[: room // 4]:
            status = (
                foundation.Status.UNSUPPORTED_ATTRIBUTE
                if direction == 0 and self._held(msg, attr) is None
                else foundation.Status.UNREPORTABLE_ATTRIBUTE
            )
            out += bytes((status, direction)) + attr.to_bytes(2, "little")
        response = (
            foundation.GeneralCommand.Configure_Reporting_rsp
            if configure
            else foundation.GeneralCommand.Read_Reporting_Configuration_rsp
        )
        await self.reply(msg, response, out, cluster_specific=False)

    async def _read_attributes(self, msg: ZclMessage) -> None:
        try:
            ids, _ = t.List[t.uint16_t].deserialize(msg.payload)
        except ValueError:
            await self._malformed(msg, "Read Attributes: an odd octet after the attribute ids")
            return
        out = b""
        # One frame's worth (no APS fragmentation): "only as many read attribute status
        # records as will fit in the frame" (ZCL 2.5.2); the client asks again for the rest.
        room = max_zcl_payload(group=False, aps_encrypted=msg.aps_encrypted)
        for attr in ids:
            value = self._held(msg, attr)
            if value is None:
                record = foundation.ReadAttributeRecord(
                    attr, foundation.Status.UNSUPPORTED_ATTRIBUTE
                )
            elif isinstance(value, foundation.Status):
                record = foundation.ReadAttributeRecord(attr, value)
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
        was written, else a status record per refused attribute. A check, source or
        ``on_write`` that raises is FAILURE for its attribute. Undivided writes none when a
        record is refused, and commits them with the cluster's :meth:`set_undivided_commit`,
        all or none; without one, an ``on_write`` failing or refusing after others were
        stored leaves them stored."""
        try:
            records = _write_records(msg.payload)
        except ValueError as exc:
            await self._malformed(msg, f"Write Attributes: {exc}")
            return
        undivided = msg.command_id == foundation.GeneralCommand.Write_Attributes_Undivided
        frame_check = self._frame_checks.get(msg.cluster_id)
        statuses = [
            self._check_write(
                msg.cluster_id, a, ty, v, client=msg.from_server, own=frame_check is None
            )
            if msg.manufacturer is None  # zse keeps no manufacturer-specific attribute
            else foundation.Status.UNSUPPORTED_ATTRIBUTE
            for a, ty, v in records
        ]
        if frame_check is not None:
            self._check_frame(msg.cluster_id, frame_check, records, statuses)
        commit = self._undivided.get(msg.cluster_id) if undivided else None
        if commit is not None:
            if all(s == foundation.Status.SUCCESS for s in statuses):
                statuses = await self._commit_undivided(msg.cluster_id, commit, records)
        elif not undivided or all(s == foundation.Status.SUCCESS for s in statuses):
            for index, (attr, _, value) in enumerate(records):
                if statuses[index] == foundation.Status.SUCCESS:
                    statuses[index] = await self._store_written(msg.cluster_id, attr, value)
        refused = [
            foundation.WriteAttributesStatusRecord(status=status, attrid=attr)
            for (attr, _, _), status in zip(records, statuses, strict=True)
            if status != foundation.Status.SUCCESS
        ]
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
        self,
        cluster_id: int,
        attr_id: int,
        type_id: int,
        value: Any,
        *,
        client: bool = False,
        own: bool = True,
    ) -> foundation.Status:
        """A write record's status, in the order of ZCL 2.5.3.3: unsupported attribute,
        wrong data type, read only, then the attribute's own check (with ``own``; else the
        cluster's frame check judges it). Client attributes set with ``client=True`` are
        read-only. A check that raises: FAILURE (logged)."""
        stored = self._attribute(cluster_id, attr_id, client=client)
        if stored is None:
            return foundation.Status.UNSUPPORTED_ATTRIBUTE
        if isinstance(stored, foundation.Status):
            return stored
        if int(stored.type) != type_id:
            return foundation.Status.INVALID_DATA_TYPE
        if client and attr_id in self.client_attributes.get(cluster_id, {}):
            return foundation.Status.READ_ONLY
        writable = self._writable.get(cluster_id, {}).get(attr_id)
        if writable is None:
            return foundation.Status.READ_ONLY
        check, _ = writable
        return self._judge(check if own else None, cluster_id, attr_id, value)

    def _check_frame(
        self,
        cluster_id: int,
        check: FrameCheck,
        records: list[tuple[int, int, Any]],
        statuses: list[foundation.Status],
    ) -> None:
        """Set the statuses ``check`` gives the records the endpoint's own checks passed
        (:meth:`set_frame_check`); FAILURE for each (logged) when it raises."""
        success = foundation.Status.SUCCESS
        passed = [index for index, status in enumerate(statuses) if status == success]
        try:
            judged = _statuses(
                check([(records[index][0], records[index][2]) for index in passed]), len(passed)
            )
        except Exception:
            LOGGER.exception("%r: the write check of cluster 0x%04X failed", self, cluster_id)
            judged = [foundation.Status.FAILURE] * len(passed)
        for index, status in zip(passed, judged, strict=True):
            statuses[index] = status

    def _judge(
        self, check: AttributeCheck | None, cluster_id: int, attr_id: int, value: Any
    ) -> foundation.Status:
        """An attribute's own check of a written value: FAILURE (logged) when it raises."""
        if check is None:
            return foundation.Status.SUCCESS
        try:
            status = check(value)
            return foundation.Status.SUCCESS if status is None else foundation.Status(status)
        except Exception:
            LOGGER.exception(
                "%r: the write check of attribute 0x%04X/0x%04X failed", self, cluster_id, attr_id
            )
            return foundation.Status.FAILURE

    async def _commit_undivided(
        self, cluster_id: int, commit: UndividedCommit, records: list[tuple[int, int, Any]]
    ) -> list[foundation.Status]:
        """The statuses ``commit`` answers for an Undivided frame's records, FAILURE for
        each (logged) when it raises or answers another number of them."""
        try:
            verdicts = commit([(attr, value) for attr, _, value in records])
            if inspect.isawaitable(verdicts):
                verdicts = await verdicts
            statuses = _statuses(verdicts, len(records))
        except Exception:
            LOGGER.exception(
                "%r: the Write Attributes Undivided commit of cluster 0x%04X failed",
                self,
                cluster_id,
            )
            return [foundation.Status.FAILURE] * len(records)
        return statuses

    async def _store_written(self, cluster_id: int, attr_id: int, value: Any) -> foundation.Status:
        """Tell ``on_write`` of a written value, then keep it (an attribute served from a
        source keeps none: its ``on_write`` changes what the source gives). The status
        ``on_write`` refuses it with, or FAILURE (logged) when it raises, as the value may not
        have reached its owner; either way the attribute keeps what it held."""
        _, on_write = self._writable[cluster_id][attr_id]
        if on_write is not None:
            try:
                verdict = on_write(value)
                if inspect.isawaitable(verdict):
                    verdict = await verdict
                status = (
                    foundation.Status.SUCCESS if verdict is None else foundation.Status(verdict)
                )
            except Exception:
                LOGGER.exception(
                    "%r: on_write of attribute 0x%04X/0x%04X failed", self, cluster_id, attr_id
                )
                return foundation.Status.FAILURE
            if status != foundation.Status.SUCCESS:
                return status
        if attr_id not in self._sources.get(cluster_id, {}):
            held = self.attributes[cluster_id]
            held[attr_id] = foundation.TypeValue(type=held[attr_id].type, value=value)
        return foundation.Status.SUCCESS


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
    command id, the endpoint it went to (0xFF: every one), whether it went server to
    client, and the cluster commands that answer it (None: any)."""

    future: asyncio.Future[ZclMessage]
    cluster_specific: bool
    command_id: int
    dst_ep: int
    from_server: bool
    answers: frozenset[int] | None = None

    def answered_by(self, msg: ZclMessage) -> bool:
        """Whether ``msg``, from the peer with the request's TSN, answers it: sent by the
        endpoint asked (any, for 0xFF) the other way (ZCL 2.4.1.1.3: the side that took the
        request answers it; zigpy 2.4's ``ResponseKey`` holds the same), and a Default
        Response, a cluster command to a cluster command (one of :attr:`answers` when they
        are known), the global response of a global request. TSNs are the sender's own (ZCL
        2.4.1.3): a frame the peer sends of its own accord (an attribute report, a Tunneling
        server's Transfer Data, a request of another of its endpoints or crossing this one)
        may carry the same number and is not the answer."""
        if msg.from_server == self.from_server or self.dst_ep not in (ALL_ENDPOINTS, msg.src_ep):
            return False
        if msg.is_cluster_command:
            # a global request is answered by a cluster command only where it names it (SE
            # 1.2: Mirror Report Attribute Response answers a mirrored meter's report)
            named = self.answers is not None and msg.command_id in self.answers
            return named or (self.cluster_specific and self.answers is None)
        if msg.command_id == foundation.GeneralCommand.Default_Response:
            # Its first octet names the command it answers (ZCL 2.5.12.1): one naming
            # another command answers an older frame of this endpoint with the same TSN.
            return not msg.payload or msg.payload[0] == self.command_id
        if self.cluster_specific:
            return False
        expected = _GLOBAL_RESPONSES.get(self.command_id)
        if expected is None:  # another global request: anything but a report
            return msg.command_id != foundation.GeneralCommand.Report_Attributes
        return msg.command_id == expected


_G = foundation.GeneralCommand
_WRITES = frozenset(
    (_G.Write_Attributes, _G.Write_Attributes_Undivided, _G.Write_Attributes_No_Response)
)
#: Global commands the endpoint itself answers (never handed to a general handler).
_ENDPOINT_GLOBALS = frozenset(
    (_G.Read_Attributes, _G.Default_Response, _G.Discover_Attributes, *_WRITES)
)
#: Global commands a peer sends that ask nothing of this endpoint: the responses to its
#: requests (:data:`_GLOBAL_RESPONSES`) and Report Attributes (ZCL 2.5.11).
_RECEIVED_ONLY = frozenset((*_GLOBAL_RESPONSES.values(), _G.Report_Attributes))
#: Configure Reporting and Read Reporting Configuration (ZCL 2.5.7, 2.5.9).
_REPORTING = frozenset((_G.Configure_Reporting, _G.Read_Reporting_Configuration))
#: Global commands that name attributes: with a manufacturer code, that manufacturer's.
_ATTRIBUTE_COMMANDS = frozenset((_G.Read_Attributes, _G.Discover_Attributes, *_WRITES, *_REPORTING))
#: The method of the endpoint answering each global command it answers itself.
_ANSWERS: dict[int, Callable[[ZclEndpointBase, ZclMessage], Awaitable[None]]] = {
    _G.Read_Attributes: ZclEndpointBase._read_attributes,
    _G.Discover_Attributes: ZclEndpointBase._discover_attributes,
    **dict.fromkeys(_WRITES, ZclEndpointBase._write_attributes),
    **dict.fromkeys(_REPORTING, ZclEndpointBase._no_reporting),
}
#: The first manufacturer-specific cluster id (ZCL 2.2.2: 0xFC00-0xFFFF).
_MANUFACTURER_CLUSTERS = 0xFC00


def _reply_key(msg: ZclMessage) -> tuple[int, int, int, int]:
    """Where a reply to ``msg`` goes and its TSN: (peer, endpoint, cluster, TSN)."""
    return (msg.src_nwk, msg.src_ep, msg.cluster_id, msg.tsn)


def _reporting_records(payload: bytes, *, configure: bool) -> list[tuple[int, int]]:
    """(direction, attribute id) of each record of Configure Reporting (ZCL 2.5.7.1) or,
    without ``configure``, Read Reporting Configuration (2.5.9.1); ``ValueError`` saying
    where for a record cut short, a reserved direction or an unknown data type (its
    reportable change, present for an analog type only, hides where the next record is)."""
    records = []
    offset = 0
    while offset < len(payload):
        if len(payload) - offset < 3:
            raise ValueError(f"reporting record cut short at offset {offset}")
        direction = payload[offset]
        attr_id = int.from_bytes(payload[offset + 1 : offset + 3], "little")
        if direction > 1:
            raise ValueError(f"reserved direction 0x{direction:02X} at offset {offset}")
        offset += 3
        if configure and direction == 1:
            offset += 2  # timeout period
        elif configure:
            if len(payload) - offset < 5:
                raise ValueError(f"attribute 0x{attr_id:04X}: record cut short at offset {offset}")
            try:
                data_type = foundation.DataType.from_type_id(foundation.DataTypeId(payload[offset]))
            except (KeyError, ValueError):
                raise ValueError(
                    f"attribute 0x{attr_id:04X}: unknown data type 0x{payload[offset]:02X}"
                    f" at offset {offset}"
                ) from None
            offset += 5
            if data_type.type_class is foundation.DataClass.Analog:
                change: Any = data_type.python_type
                try:
                    _, rest = change.deserialize(payload[offset:])
                except (ValueError, KeyError, IndexError):
                    raise ValueError(
                        f"attribute 0x{attr_id:04X}: reportable change cut short at offset {offset}"
                    ) from None
                offset = len(payload) - len(rest)
        if offset > len(payload):
            raise ValueError(f"attribute 0x{attr_id:04X}: record cut short at offset {offset}")
        records.append((direction, attr_id))
    if not records:
        raise ValueError("no reporting record")
    return records


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
