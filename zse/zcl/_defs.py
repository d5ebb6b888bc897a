"""Typed shorthands for zigpy's cluster definitions (zigpy's own annotations are looser)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import zigpy.types as t
from zigpy.zcl.foundation import DataTypeId, ZCLAttributeDef, ZCLCommandDef


def cluster_id(value: int) -> t.uint16_t:
    """A cluster id as zigpy stores it."""
    return t.uint16_t(value)


def command(command_id: int, schema: Mapping[str, Any]) -> ZCLCommandDef:
    """A command definition; fields in wire order, ``name?`` for an optional trailer."""
    return ZCLCommandDef(id=cast(t.uint8_t, command_id), schema=cast(Any, dict(schema)))


def attribute(
    attribute_id: int, type_: type, access: str = "rw", zcl_type: int | None = None
) -> ZCLAttributeDef:
    """An attribute definition; ``zcl_type`` where the ZCL data type on the air is not the one
    zigpy derives from ``type_``."""
    if zcl_type is None:
        return ZCLAttributeDef(
            id=cast(t.uint16_t, attribute_id), type=type_, access=cast(Any, access)
        )
    return ZCLAttributeDef(
        id=cast(t.uint16_t, attribute_id),
        type=type_,
        zcl_type=DataTypeId(zcl_type),
        access=cast(Any, access),
    )
