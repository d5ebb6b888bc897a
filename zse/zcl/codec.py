"""Decode and encode SE cluster command payloads with errors that say what and where.

zigpy's schemas raise assorted errors with no position. :func:`decode_command` walks a
command's fields in wire order, so a bad payload raises :class:`~zse.errors.InvalidFrame`
naming the cluster, the command, the field and its byte offset. Optional trailers (fields
declared with ``?``) are decoded when bytes remain; bytes after the last known field are
returned, not dropped, as later SE revisions append fields (ZCL: receivers ignore them).
A list counted by an earlier field (``StructField(length=...)``) is decoded to that count.
:func:`zse.zcl.frame.decode_frame` does the same for a whole frame, header included.
:func:`encode_command` refuses a payload with a gap in its optional trailers, which zigpy
would silently serialize misaligned.
"""

from __future__ import annotations

import functools
import struct
import types
from typing import Any

import zigpy.types as t
from zigpy.zcl import Cluster
from zigpy.zcl.foundation import CommandSchema, Status, ZCLCommandDef

from zse.errors import InvalidFrame

__all__ = ["UnknownCommand", "command_def", "decode_command", "encode_command", "refusal"]


class UnknownCommand(InvalidFrame):
    """A command id the cluster does not define in that direction (not a bad payload)."""


def refusal(exc: InvalidFrame) -> Status:
    """The Default Response status for a command that does not decode (ZCL 2.5.12):
    UNSUP_CLUSTER_COMMAND for a command the cluster does not define
    (:class:`UnknownCommand`), MALFORMED_COMMAND for a defined one whose payload is wrong."""
    return (
        Status.UNSUP_CLUSTER_COMMAND
        if isinstance(exc, UnknownCommand)
        else Status.MALFORMED_COMMAND
    )


def command_def(cluster: type[Cluster], command_id: int, *, from_server: bool) -> ZCLCommandDef:
    """The definition of ``command_id`` sent by the server (``from_server``) or the client;
    :class:`UnknownCommand` (an :class:`~zse.errors.InvalidFrame`) when there is none."""
    table = cluster.client_commands if from_server else cluster.server_commands
    try:
        return table[command_id]
    except KeyError:
        side = "server" if from_server else "client"
        raise UnknownCommand(
            f"{cluster.__name__} has no command 0x{command_id:02X} sent by the {side}"
        ) from None


def decode_command(
    cluster: type[Cluster], command_id: int, payload: bytes, *, from_server: bool
) -> tuple[Any, bytes]:
    """Decode a ZCL command payload (the bytes after the ZCL header).

    Returns the command and any bytes after its last known field. Raises
    :class:`~zse.errors.InvalidFrame` for a payload that does not fit, and its subclass
    :class:`UnknownCommand` for a command the cluster does not define (:func:`refusal` gives
    the Default Response status for either).
    """
    definition = command_def(cluster, command_id, from_server=from_server)
    schema: type[CommandSchema] = definition.schema
    data = bytes(payload)
    layout = _fixed_layout(schema)
    if layout is not None and len(data) >= layout.size:
        fields = zip(schema.fields, layout.unpack_from(data), strict=True)
        return _instantiate(schema, {f.name: f.type(value) for f, value in fields}), data[
            layout.size :
        ]
    offset = 0
    values: dict[str, Any] = {}
    for field in schema.fields:
        if field.optional and offset == len(data):
            break
        try:
            if field.length is not None:  # a list counted by an earlier field
                value, rest = _counted_list(field, values, data[offset:])
            else:
                value, rest = field.type.deserialize(data[offset:])
        except Exception as exc:  # zigpy raises ValueError, KeyError, IndexError...
            raise InvalidFrame(
                f"{cluster.name} {definition.name}: cannot decode field {field.name} "
                f"at byte offset {offset} of {len(data)}: {exc}"
            ) from None
        values[field.name] = value
        offset = len(data) - len(rest)
    return _instantiate(schema, values), data[offset:]


def _counted_list(field: Any, values: dict[str, Any], data: bytes) -> tuple[Any, bytes]:
    """A list whose item count an earlier field gives (``StructField(length=...)``)."""
    count = field.length(types.SimpleNamespace(**values))
    items = []
    for _ in range(count):
        item, data = field.type._item_type.deserialize(data)
        items.append(item)
    return field.type(items), data


def _instantiate(schema: type[CommandSchema], values: dict[str, Any]) -> CommandSchema:
    """``schema(**values)`` for values that already have their fields' types.

    zigpy's constructor binds a signature and re-converts every value, which is most of a
    small command's decoding time at scale (``benchmarks/drlc_scale.py``); decoded values
    are of the right types already, so the instance is filled in directly. Fields not given
    (optional trailers absent) are None, as zigpy makes them. A property test holds this
    equal to zigpy's own construction.
    """
    instance = tuple.__new__(schema)
    for field in schema.fields:
        object.__setattr__(instance, field.name, values.get(field.name))
    return instance


def encode_command(command: CommandSchema) -> bytes:
    """Serialize a command built from a schema, refusing gaps in its optional trailers."""
    missing: str | None = None
    for field in type(command).fields:
        value = getattr(command, field.name)
        if value is None:
            missing = missing or field.name
        elif missing is not None:
            raise ValueError(
                f"{type(command).__name__}: {field.name} is given but the earlier optional "
                f"field {missing} is not; optional trailers are positional"
            )
    if missing is None:
        packed = _pack(type(command), {f.name: getattr(command, f.name) for f in command.fields})
        if packed is not None:
            return packed
    return bytes(command.serialize())


def encode_fields(schema: type[CommandSchema], **values: Any) -> bytes:
    """``encode_command(schema(**values))``: for a fixed layout with every field given as an
    ``int`` or the exact number of octets, in one ``struct`` call without building zigpy's
    instance (most of a report's encoding cost at scale, ``benchmarks/drlc_scale.py``);
    anything else goes through zigpy's constructor, which converts or refuses it as it
    always did. A property test holds both equal."""
    packed = _pack(schema, values)
    return packed if packed is not None else encode_command(schema(**values))


def _pack(schema: type[CommandSchema], values: dict[str, Any]) -> bytes | None:
    """``values`` in ``schema``'s fixed layout in one ``struct`` call, or None (not a fixed
    layout, or a value not an ``int`` in range or not the exact number of octets: zigpy's
    path then converts or refuses it, as zigpy would)."""
    layout = _fixed_layout(schema)
    if layout is None or len(values) != len(schema.fields):
        return None
    packed: list[int | bytes] = []
    for name, octets in _field_octets(schema):
        value = values.get(name)
        if octets is None and isinstance(value, int):
            packed.append(value)
        elif octets is not None and isinstance(value, bytes | bytearray | list | tuple):
            try:
                run = bytes(value)
            except (TypeError, ValueError):
                return None
            if len(run) != octets:
                return None
            packed.append(run)
        else:
            return None
    try:
        return layout.pack(*packed)
    except struct.error:
        return None


@functools.cache
def _field_octets(schema: type[CommandSchema]) -> tuple[tuple[str, int | None], ...]:
    """Each field's name, and its octet count for a fixed run of octets (else None)."""
    return tuple(
        (f.name, f.type._length if issubclass(f.type, t.FixedList) else None) for f in schema.fields
    )


_INT_FORMATS = {1: "B", 2: "H", 4: "I", 8: "Q"}


@functools.cache
def _fixed_layout(schema: type[CommandSchema]) -> struct.Struct | None:
    """A ``struct`` layout equivalent to ``schema`` when every field is a mandatory
    fixed-size integer (enums and bitmaps included) or a fixed run of octets, else None.
    The same wire as zigpy's per-field path (a property test holds them together), in one
    C call; it is most of the cost of a report at scale (``benchmarks/drlc_scale.py``)."""
    codes = ["<"]
    for field in schema.fields:
        kind = field.type
        if field.optional:
            return None
        if issubclass(kind, t.FixedIntType) and kind._size in _INT_FORMATS:
            code = _INT_FORMATS[kind._size]
            codes.append(code.lower() if kind._signed else code)
        elif issubclass(kind, t.FixedList) and kind._item_type is t.uint8_t:
            codes.append(f"{kind._length}s")
        else:
            return None
    return struct.Struct("".join(codes))
