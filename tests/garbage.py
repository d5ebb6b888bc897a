"""Structured garbage for property tests: valid encodings mutated the ways hostile or damaged
input is (bytes replaced, bits flipped, cut short, grown, a span dropped or inserted), which
reach far deeper into a decoder than random bytes, which rarely pass its first check."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import zigpy.types as t
from hypothesis import strategies as st
from zigpy.zcl import Cluster

from zse.zcl.codec import encode_command

#: Values a length or count field is most likely to go wrong with.
EDGES = (0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF)


@st.composite
def near_valid(draw: st.DrawFn, seeds: Sequence[bytes], *, most: int = 3) -> bytes:
    """One of ``seeds`` with 1 to ``most`` mutations."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, most))):
        op = draw(st.sampled_from(["byte", "edge", "bit", "cut", "grow", "drop", "insert"]))
        if op == "grow":
            data += draw(st.binary(min_size=1, max_size=8))
            continue
        at = draw(st.integers(0, len(data)))
        if op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "cut":
            del data[at:]
        elif op == "drop":
            del data[at : at + draw(st.integers(1, 8))]
        elif at < len(data):
            if op == "byte":
                data[at] = draw(st.integers(0, 255))
            elif op == "edge":
                data[at] = draw(st.sampled_from(EDGES))
            else:
                data[at] ^= 1 << draw(st.integers(0, 7))
    return bytes(data)


def garbage(seeds: Sequence[bytes], *, max_size: int = 120) -> st.SearchStrategy[bytes]:
    """Near-valid bytes, or random ones."""
    return near_valid(seeds) | st.binary(max_size=max_size)


def default_value(kind: type[Any]) -> Any:
    """A small valid value of a zigpy wire type: 1 for a number, two octets or characters for
    a string, one item for a list, each field's for a struct."""
    if issubclass(kind, t.Struct):
        return kind(**{f.name: default_value(f.type) for f in kind.fields})
    if issubclass(kind, bytes):
        return kind(b"ab")
    if issubclass(kind, str):
        return kind("ab")
    if issubclass(kind, list):
        item = getattr(kind, "_item_type", None)
        return kind([] if item is None else [default_value(item)])
    if issubclass(kind, tuple):
        return kind()
    return kind(1)


def command_seeds(cluster: type[Cluster]) -> list[tuple[bool, int, bytes]]:
    """(from_server, command id, payload) of each command of ``cluster``, its fields
    :func:`default_value`'s."""
    seeds = []
    for from_server, table in ((True, cluster.client_commands), (False, cluster.server_commands)):
        for command_id, definition in table.items():
            schema = definition.schema
            command = schema(**{f.name: default_value(f.type) for f in schema.fields})
            seeds.append((from_server, command_id, encode_command(command)))
    return seeds
