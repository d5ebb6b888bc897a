"""Key Establishment's hand-coded wire (:mod:`zse.cbke.messages`) as the oracles compare it.

zse encodes Key Establishment with frozen dataclasses, not zigpy definitions, so there is no
schema to read field order and sizes from. Here they are measured on the encoders themselves:
each field is changed alone and the octets of the payload that change are that field's. The
attribute's data type is read back from an endpoint the real publishers
(:class:`~zse.cbke.service.KeyEstablishmentServer`, :func:`~zse.cbke.service.
publish_client_suites`) wrote it to.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Iterator
from typing import Any

from zigpy.zdo import types as zdo_t

from zse.cbke import SUITE1, SUITE2
from zse.cbke import messages as m
from zse.cbke.ca import TestCA
from zse.cbke.service import KeyEstablishmentServer, publish_client_suites
from zse.se import ids
from zse.zcl.endpoint import ZclEndpointBase

#: One field: its name, first octet and size in the payload.
Layout = list[tuple[str, int, int]]

#: Sample values per suite: (identity size, ephemeral point size); the C.3 sizes are what the
#: encoders must accept, so a wrong one fails here.
SIZES = {1: (48, 22), 2: (74, 37)}


def sample(cls: type[m.Message], suite: int = 1) -> m.Message:
    """An instance of ``cls`` with every field set to distinct, non-zero values."""
    identity, point = SIZES[suite]
    values: dict[str, Any] = {
        "suite": suite,
        "ephemeral_data_generate_time": 0x11,
        "confirm_key_generate_time": 0x22,
        "identity": bytes(range(1, identity + 1)),
        "ephemeral_data": bytes(range(1, point + 1)),
        "mac": bytes(range(1, m.CONFIRM_KEY_MAC_SIZE + 1)),
        "status": m.TerminateStatus.UNKNOWN_ISSUER,
        "wait_time": 0x33,
    }
    return cls(**{f.name: values[f.name] for f in dataclasses.fields(cls)})  # type: ignore[arg-type]


def _changed(message: m.Message, name: str) -> m.Message:
    """``message`` with every octet of field ``name`` changed: an integer with all 16 bits
    flipped, or 8 if the message refuses that (it does not fit); a status, another one."""
    value = getattr(message, name)
    if isinstance(value, m.TerminateStatus):
        return dataclasses.replace(message, **{name: m.TerminateStatus.INVALID_CERTIFICATE})
    if isinstance(value, bytes):
        return dataclasses.replace(message, **{name: bytes(b ^ 0xFF for b in value)})
    try:
        return dataclasses.replace(message, **{name: value ^ 0xFFFF})
    except ValueError:
        return dataclasses.replace(message, **{name: value ^ 0xFF})


def layout(message: m.Message) -> Layout:
    """Each field of ``message``: (name, offset, size) in ``message.encode()``, in wire order;
    the fields must cover the payload exactly, without gaps or overlaps."""
    payload = message.encode()
    fields = []
    for field in dataclasses.fields(message):
        other = _changed(message, field.name).encode()
        changed = [i for i, (a, b) in enumerate(zip(payload, other, strict=True)) if a != b]
        start, end = changed[0], changed[-1] + 1
        assert changed == list(range(start, end)), (type(message).__name__, field.name)
        fields.append((field.name, start, end - start))
    fields.sort(key=lambda f: f[1])
    offsets = [offset for _, offset, _ in fields]
    ends = [offset + size for _, offset, size in fields]
    assert offsets == [0, *ends[:-1]], (message, fields)
    assert ends[-1] == len(payload), (message, fields)
    return fields


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def ke_commands() -> Iterator[tuple[str, int, str, list[tuple[str, list[tuple[Any, ...]]]]]]:
    """(sending side, id, name, [(field, shapes)]) of every Key Establishment command
    :mod:`zse.cbke.messages` decodes, in the shapes ``test_se_zsmartsystems_xml`` compares:
    an integer field ``("uint", octets)``, an octet field that ends the payload ``("rest",)``
    (its size depends on the suite)."""
    for side, table in (("client", m.CLIENT_COMMANDS), ("server", m.SERVER_COMMANDS)):
        for command_id, cls in table.items():
            message = sample(cls)
            payload = message.encode()
            fields = []
            for name, offset, size in layout(message):
                if isinstance(getattr(message, name), bytes):
                    assert offset + size == len(payload)
                    fields.append((name, [("rest",)]))
                else:
                    fields.append((name, [("uint", size)]))
            yield side, command_id, _snake(cls.__name__), fields


def served_suite_attribute_types() -> dict[str, int]:
    """The ZCL data type each side's KeyEstablishmentSuite attribute is read with, as zse's
    publishers store it: ``{"server": ..., "client": ...}``."""
    endpoint = ZclEndpointBase(
        zdo_t.SimpleDescriptor(
            endpoint=1,
            profile=0x0109,
            device_type=0,
            device_version=0,
            input_clusters=[],
            output_clusters=[],
        ),
        0,
    )
    ca = TestCA.generate(rng=random.Random(1))
    server = KeyEstablishmentServer(endpoint, [ca.issue(bytes(8), SUITE1)])
    server.start()
    server.stop()
    publish_client_suites(endpoint, SUITE1.id | SUITE2.id)
    types = {}
    for side in ("server", "client"):
        value = endpoint.attribute_value(
            ids.KEY_ESTABLISHMENT, ids.KE_SUITE_ATTRIBUTE, client=side == "client"
        )
        assert value is not None
        types[side] = int(value.type)
    return types
