"""ZDO and ZCL payloads of a captured APS data frame, decoded with zse's and zigpy's wire.

ZDO (profile 0x0000, endpoint 0; ZB 2.4): the transaction sequence number and the fields of
zigpy's ZDO table. ZCL (ZCL 2.4): the header (:func:`zse.zcl.frame.decode_zcl_header`), then a
global command (zigpy's foundation schemas) or a cluster command: the SE clusters from zse's
wire definitions (Price :mod:`zse.price.wire`, DRLC :mod:`zse.drlc.wire`, Metering
:mod:`zse.metering.wire`, Messaging :mod:`zse.messaging.wire`, Tunneling, and SE 1.2's
Prepayment, Calendar, Device Management and Events, decoded by
:func:`zse.zcl.codec.decode_command`), Key Establishment from :mod:`zse.cbke.messages`, and
every other cluster (Time, Basic, ...) from zigpy's registry. Decoding failures are
:class:`~zse.errors.InvalidFrame`; values come back JSON-ready (:func:`plain`).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Callable
from typing import Any

import zigpy.types as t
import zigpy.zdo.types as zdo_t
from zigpy.zcl import Cluster, foundation

from zse.calendar.wire import Calendar
from zse.capture.frames import Aps, eui64_text
from zse.cbke import messages as ke
from zse.devmgmt.wire import DeviceManagement
from zse.drlc.wire import Drlc
from zse.errors import InvalidFrame
from zse.events.wire import Events
from zse.messaging.wire import Messaging
from zse.metering.wire import Metering
from zse.prepayment.wire import Prepayment
from zse.price.wire import Price
from zse.tunneling.wire import Tunneling
from zse.zcl.codec import decode_command
from zse.zcl.frame import decode_zcl_header

__all__ = [
    "cluster_name",
    "decode_application",
    "fast_global_fields",
    "global_fields",
    "named_attributes",
    "plain",
]

ZDO_PROFILE = 0x0000
#: The clusters zse defines itself, ahead of zigpy's registry.
SE_CLUSTERS: dict[int, type[Cluster]] = {
    cluster.cluster_id: cluster
    for cluster in (
        Price,
        Drlc,
        Metering,
        Messaging,
        Tunneling,
        Prepayment,
        Calendar,
        DeviceManagement,
        Events,
    )
}


def _cluster(cluster_id: int) -> type[Cluster] | None:
    return SE_CLUSTERS.get(cluster_id) or Cluster._registry.get(cluster_id)


def cluster_name(cluster_id: int) -> str:
    """The cluster's name (``Price``, ``Key Establishment``...) or its id in hex."""
    if cluster_id == ke.CLUSTER_ID:
        return "Key Establishment"
    cluster = _cluster(cluster_id)
    if cluster is None:
        return f"0x{cluster_id:04x}"
    return cluster.name if isinstance(cluster.name, str) else cluster.__name__


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data: enums by name, octets in hex, structures as dicts."""
    kind = type(value)
    handler = _HANDLERS.get(kind)
    if handler is None:
        handler = _HANDLERS[kind] = _handler(kind)
    return handler(value)


def _same(value: Any) -> Any:
    return value


def _enum(value: enum.Enum) -> Any:
    return value.name if value.name is not None else int(value.value)


def _octets(value: bytes) -> str:
    if isinstance(value, t.LVBytes) and value.isascii() and bytes(value).decode().isprintable():
        return bytes(value).decode()
    return bytes(value).hex()


def _entry_item(item: Any) -> Any:
    """A record's field: its octets as an octet string's (text when printable)."""
    return _octets(t.LVBytes(item)) if type(item) is bytes else plain(item)


def _records(names: tuple[str, ...], value: tuple[Any, ...]) -> list[dict[str, Any]]:
    return [
        {name: _entry_item(item) for name, item in zip(names, entry, strict=True)}
        for entry in value
    ]


def _handler(kind: type) -> Callable[[Any], Any]:  # noqa: PLR0911 - one kind of value each
    """How values of ``kind`` become JSON-ready (:func:`plain` keeps one per type)."""
    if kind in (bool, float, str, type(None)):
        return _same
    if issubclass(kind, enum.Enum):
        return _enum
    if issubclass(kind, t.EUI64):
        return lambda value: eui64_text(int.from_bytes(bytes(value), "little"))
    if issubclass(kind, t.NWK):
        return lambda value: f"0x{value:04x}"
    if issubclass(kind, int):
        return int
    if issubclass(kind, bytes | bytearray):
        return _octets
    if issubclass(kind, foundation.CommandSchema):
        return lambda value: {f.name: plain(getattr(value, f.name)) for f in value.fields}
    entry_fields: tuple[str, ...] | None = getattr(kind, "ENTRY_FIELDS", None)
    if entry_fields is not None and issubclass(kind, tuple):  # a list field's records, named
        return functools.partial(_records, entry_fields)
    if issubclass(kind, list | tuple):
        return lambda value: [plain(item) for item in value]
    if issubclass(kind, foundation.TypeValue):
        return lambda value: plain(value.value)
    if issubclass(kind, t.Struct):
        return lambda value: {name: plain(item) for name, item in value.as_dict().items()}
    if dataclasses.is_dataclass(kind):
        names = [f.name for f in dataclasses.fields(kind)]
        return lambda value: {name: plain(getattr(value, name)) for name in names}
    return lambda value: (
        {name: plain(item) for name, item in vars(value).items()}
        if hasattr(value, "__dict__")
        else str(value)
    )


_HANDLERS: dict[type, Callable[[Any], Any]] = {}


def decode_application(aps: Aps, payload: bytes) -> dict[str, Any]:
    """The ZDO or ZCL command carried by an APS data (or inter-PAN) frame."""
    assert aps.cluster is not None
    if aps.profile == ZDO_PROFILE and aps.dst_ep in (0, None):
        return _zdo(aps.cluster, payload)
    return _zcl(aps.cluster, payload)


def _zdo(cluster_id: int, payload: bytes) -> dict[str, Any]:
    if not payload:
        raise InvalidFrame(f"ZDO 0x{cluster_id:04x}: no transaction sequence number")
    try:
        command = zdo_t.ZDOCmd(cluster_id)
        names, types = zdo_t.CLUSTERS[command]
    except (ValueError, KeyError):
        return {"layer": "zdo", "command": f"0x{cluster_id:04x}", "tsn": payload[0]}
    fields: dict[str, Any] = {}
    data = payload[1:]
    for name, kind in zip(names, types, strict=True):
        try:
            value, data = kind.deserialize(data)
        except Exception as exc:  # zigpy raises ValueError, KeyError, IndexError...
            offset = len(payload) - len(data)
            raise InvalidFrame(
                f"ZDO {command.name}: cannot decode {name} at byte offset {offset}: {exc}"
            ) from None
        fields[name] = plain(value)
    return {"layer": "zdo", "command": command.name, "tsn": payload[0], "fields": fields}


_GLOBAL = {int(command): definition for command, definition in foundation.GENERAL_COMMANDS.items()}


@functools.cache
def _attribute_names(cluster_id: int) -> dict[int, str]:
    cluster = _cluster(cluster_id)
    if cluster is None:
        return {}
    return {int(attrid): definition.name for attrid, definition in cluster.attributes.items()}


def _zcl(cluster_id: int, payload: bytes) -> dict[str, Any]:
    try:
        frame_control, manufacturer, tsn, command_id, size = decode_zcl_header(payload)
    except ValueError as exc:
        raise InvalidFrame(f"ZCL header: {exc}") from None
    from_server = bool(frame_control & 0x08)
    body = payload[size:]
    out: dict[str, Any] = {
        "layer": "zcl",
        "cluster": cluster_name(cluster_id),
        "cluster_id": f"0x{cluster_id:04x}",
        "tsn": tsn,
        "command_id": f"0x{command_id:02x}",
        "direction": "server->client" if from_server else "client->server",
    }
    if manufacturer is not None:
        out["manufacturer"] = f"0x{manufacturer:04x}"
        out["command"] = f"manufacturer command 0x{command_id:02x}"
        return out
    try:
        _zcl_payload(out, cluster_id, frame_control, command_id, body)
    except InvalidFrame as exc:  # the header stands; the payload does not decode
        out["malformed"] = str(exc)
    return out


def _zcl_payload(
    out: dict[str, Any], cluster_id: int, frame_control: int, command_id: int, body: bytes
) -> None:
    """Name the command and decode its payload into ``out``."""
    from_server = bool(frame_control & 0x08)
    rest = b""
    if not frame_control & 0x03:  # a global command (ZCL 2.4.1.1.1)
        definition = _GLOBAL.get(command_id)
        if definition is None:
            out["command"] = f"global 0x{command_id:02x}"
            return
        out["global"] = True
        out["command"] = definition.name
        fast = fast_global_fields(cluster_id, command_id, body)
        if fast is None:
            fields, rest = global_fields(definition.schema, body, definition.name)
            out["fields"] = named_attributes(cluster_id, fields)
        else:
            out["fields"], rest = fast
    elif cluster_id == ke.CLUSTER_ID:
        decode = ke.decode_server_command if from_server else ke.decode_client_command
        out["command"] = f"0x{command_id:02x}"
        message = decode(command_id, body)
        out["command"] = _snake(type(message).__name__)
        out["fields"] = plain(message)
    else:
        cluster = _cluster(cluster_id)
        out["command"] = f"0x{command_id:02x}"
        if cluster is None:
            return
        table = cluster.client_commands if from_server else cluster.server_commands
        if command_id in table:
            out["command"] = table[command_id].name
        try:
            message, rest = decode_command(cluster, command_id, body, from_server=from_server)
        except InvalidFrame:
            if cluster_id in SE_CLUSTERS:
                raise
            # zigpy's definition, not zse's: it may not read a valid frame (Green Power's
            # Proxy Commissioning Mode without its optional window, say); shown as sent
            out["payload"] = body.hex()
            return
        out["fields"] = plain(message)
    if rest:
        out["trailing"] = rest.hex()


def global_fields(
    schema: type[foundation.CommandSchema], body: bytes, name: str
) -> tuple[dict[str, Any], bytes]:
    """The fields of a global command (ZCL 2.5), JSON-ready, and the bytes after them.

    Decoded field by field with each field's zigpy type, as ``schema.deserialize`` does for
    these schemas (every field mandatory, none conditional; a test holds them equal), without
    building the schema object, whose constructor re-binds and re-converts every value.
    """
    values: dict[str, Any] = {}
    data = body
    for field in schema.fields:
        try:
            value, data = field.type.deserialize(data)
        except Exception as exc:  # zigpy raises ValueError, KeyError, IndexError...
            offset = len(body) - len(data)
            raise InvalidFrame(
                f"ZCL {name}: cannot decode {field.name} at byte offset {offset}: {exc}"
            ) from None
        values[field.name] = plain(value)
    return values, data


def named_attributes(cluster_id: int, fields: Any) -> Any:
    """Attribute ids of a global command's records with the cluster's attribute names."""
    names = _attribute_names(cluster_id)
    if isinstance(fields, dict):
        out = {key: named_attributes(cluster_id, value) for key, value in fields.items()}
        if "attrid" in out and isinstance(out["attrid"], int) and out["attrid"] in names:
            out["attribute"] = names[out["attrid"]]
        return out
    if isinstance(fields, list):
        return [named_attributes(cluster_id, item) for item in fields]
    return fields


# -- the fast path of the commonest global commands -------------------------------------------
#
# Read Attributes, Read Attributes Response, Report Attributes and Default Response (ZCL
# 2.5.1, 2.5.2, 2.5.11, 2.5.12) make most of a metering HAN's traffic. They are decoded here
# from precompiled layouts into the fields :func:`global_fields` + :func:`named_attributes`
# give (a property test holds them equal), for the data types whose values are plain
# integers or one-byte enumerations and bitmaps; anything else (another type, a truncated
# record, an unknown status) returns None and takes the zigpy path, which also words the
# error. The layouts and names come from zigpy's own definitions, computed once.

_SKIP = object()  # a one-byte value zigpy refuses: the fast path gives up


@functools.cache
def _value_layouts() -> dict[int, tuple[int, Callable[[bytes], Any]]]:
    """ZCL data type id -> (value size, bytes -> JSON-ready value), for the fast path."""
    layouts: dict[int, tuple[int, Callable[[bytes], Any]]] = {}
    for size in range(1, 9):
        layouts[0x1F + size] = (size, _unsigned)  # uint8 .. uint64 (ZCL Table 2-10)
        layouts[0x27 + size] = (size, _signed)  # int8 .. int64
    for type_id in (0x10, 0x18, 0x30):  # boolean, bitmap8, enum8: a table of 256 values
        python_type: Any = foundation.DataType.from_type_id(foundation.DataTypeId(type_id))
        python_type = python_type.python_type
        table: list[Any] = []
        for byte in range(256):
            try:
                table.append(plain(python_type.deserialize(bytes((byte,)))[0]))
            except Exception:  # zigpy refuses the value (a boolean of 2..254)
                table.append(_SKIP)
        layouts[type_id] = (1, lambda data, table=table: table[data[0]])  # type: ignore[misc]
    return layouts


def _unsigned(data: bytes) -> int:
    return int.from_bytes(data, "little")


def _signed(data: bytes) -> int:
    return int.from_bytes(data, "little", signed=True)


@functools.cache
def _status_names() -> dict[int, str]:
    return {int(status): status.name for status in foundation.Status}


def _typed_value(body: bytes, pos: int) -> tuple[Any, int]:
    """The value of the data type id at ``pos`` and the offset after it; (_SKIP, 0) when the
    fast path cannot take it."""
    layout = _value_layouts().get(body[pos]) if pos < len(body) else None
    if layout is None:
        return _SKIP, 0
    size, convert = layout
    end = pos + 1 + size
    if end > len(body):
        return _SKIP, 0
    return convert(body[pos + 1 : end]), end


def _read_attributes(cluster_id: int, body: bytes) -> dict[str, Any] | None:
    if len(body) % 2:
        return None
    ids = [body[i] | body[i + 1] << 8 for i in range(0, len(body), 2)]
    return {"attribute_ids": ids}


def _attribute_records(cluster_id: int, body: bytes, *, status: bool) -> list[Any] | None:
    """Read Attributes Status Records (``status``: attribute id, status, a typed value if
    SUCCESS) or Attribute Reports (attribute id, typed value), named (ZCL 2.5.2, 2.5.11)."""
    names, statuses = _attribute_names(cluster_id), _status_names()
    records: list[dict[str, Any]] = []
    pos, size, head = 0, len(body), 2 + status
    while pos < size:
        if pos + head > size:
            return None
        attrid = body[pos] | body[pos + 1] << 8
        record: dict[str, Any] = {"attrid": attrid}
        pos += head
        if status:
            record["status"] = statuses.get(body[pos - 1])
            if record["status"] is None:
                return None
        value: Any = None
        if not status or body[pos - 1] == 0:  # a typed value follows
            value, pos = _typed_value(body, pos)
            if value is _SKIP:
                return None
        record["value"] = value
        if attrid in names:
            record["attribute"] = names[attrid]
        records.append(record)
    return records


def _read_attributes_rsp(cluster_id: int, body: bytes) -> dict[str, Any] | None:
    records = _attribute_records(cluster_id, body, status=True)
    return None if records is None else {"status_records": records}


def _report_attributes(cluster_id: int, body: bytes) -> dict[str, Any] | None:
    records = _attribute_records(cluster_id, body, status=False)
    return None if records is None else {"attribute_reports": records}


def _default_response(cluster_id: int, body: bytes) -> dict[str, Any] | None:
    status = _status_names().get(body[1]) if len(body) >= 2 else None
    if status is None:
        return None
    return {"command_id": body[0], "status": status}


#: Global command id -> its fast decoder (ZCL Table 2-3)
_FAST_GLOBAL: dict[int, Callable[[int, bytes], dict[str, Any] | None]] = {
    0x00: _read_attributes,
    0x01: _read_attributes_rsp,
    0x0A: _report_attributes,
    0x0B: _default_response,
}


def fast_global_fields(
    cluster_id: int, command_id: int, body: bytes
) -> tuple[dict[str, Any], bytes] | None:
    """The named fields of a global command and the bytes after them, as
    :func:`global_fields` and :func:`named_attributes` give them, from precompiled layouts;
    None when the fast path does not take the command or its bytes (see above)."""
    decode = _FAST_GLOBAL.get(command_id)
    if decode is None:
        return None
    fields = decode(cluster_id, body)
    if fields is None:
        return None
    rest = body[2:] if command_id == 0x0B else b""
    return fields, rest


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
