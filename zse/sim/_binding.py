"""The binding table of a simulated node (ZB 2.2.8.2.1, apsBindingTable) and the ZDO bind
services that change and report it: Bind_req (ZB 2.4.3.2.2), Unbind_req (2.4.3.2.3) and
Mgmt_Bind_req (2.4.3.3.4), answered as ZB 2.4.4.2.2, 2.4.4.2.3 and 2.4.4.3.4 say.

Synchronous and free of I/O: the node's ZDO server hands it the decoded request (zigpy's
own ZDO types) and sends back the status or the page it returns. The table is kept and
reported; zse's simulated nodes still address their own sends directly (no APS indirect
delivery through it).

Statuses, as the ZigBee specification's Bind_rsp and Unbind_rsp list them:

- ``NOT_SUPPORTED``: the request's SrcAddress is not this node (it is no primary binding
  table cache), or the destination address mode is neither group (0x01) nor 64-bit (0x03);
- ``INVALID_EP``: the source endpoint is outside 0x01-0xFE or is not one of this node's
  endpoints, or a 64-bit destination's endpoint is 0x00;
- ``NOT_SUPPORTED`` as well for a cluster the source endpoint has neither as input nor as
  output (the specification names no status for it; the request asks for something the
  node does not have, which is what NOT_SUPPORTED says);
- ``TABLE_FULL``: a Bind_req with every entry in use (binding an entry already there again
  succeeds and uses none);
- ``NO_ENTRY``: an Unbind_req for an entry the table does not hold.
"""

from __future__ import annotations

from collections.abc import Mapping

import zigpy.types as t
import zigpy.zdo.types as zdo_t

__all__ = ["DEFAULT_CAPACITY", "BindingTable"]

#: entries a node's table holds unless told otherwise
DEFAULT_CAPACITY = 16

_GROUP = 0x01  # destination address modes of a binding (ZB 2.4.3.2.2, Table 2.48)
_IEEE = 0x03
# A Mgmt_Bind_rsp travels in one unfragmented frame: 127 octets less the MAC header and FCS
# (11), the NWK header and its security (8 + 14 + 4) and the APS unicast header (8), as
# zse.se.frames counts them, leaves 82 for the ZDO frame; TSN, Status, BindingTableEntries,
# StartIndex and BindingTableListCount take 5 of them.
_ENTRY_OCTETS = 82 - 5


class BindingTable:
    """A node's binding table, at most ``capacity`` entries (1 to 255: Mgmt_Bind_rsp counts
    them in one octet), in the order they were bound."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if not 1 <= capacity <= 0xFF:
            raise ValueError(f"binding table capacity must be 1 to 255, got {capacity}")
        self.capacity = capacity
        self._entries: list[zdo_t.Binding] = []

    @property
    def entries(self) -> tuple[zdo_t.Binding, ...]:
        """The bindings held, oldest first."""
        return tuple(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def request(
        self,
        command: zdo_t.ZDOCmd,
        owner: t.EUI64,
        endpoints: Mapping[int, zdo_t.SimpleDescriptor],
        entry: zdo_t.Binding,
    ) -> zdo_t.Status:
        """Bind_req (ZB 2.4.3.2.2) or Unbind_req (2.4.3.2.3) for ``entry``, received by the
        node ``owner`` with ``endpoints``: the status it answers."""
        refused = _refusal(owner, endpoints, entry)
        if refused is not None:
            return refused
        key = _key(entry)
        held = next((i for i, e in enumerate(self._entries) if _key(e) == key), None)
        if command == zdo_t.ZDOCmd.Unbind_req:
            if held is None:
                return zdo_t.Status.NO_ENTRY
            del self._entries[held]
        elif held is None:
            if len(self._entries) >= self.capacity:
                return zdo_t.Status.TABLE_FULL
            self._entries.append(entry)
        return zdo_t.Status.SUCCESS

    def page(self, start: int) -> list[zdo_t.Binding]:
        """The entries a Mgmt_Bind_rsp (ZB 2.4.4.3.4) lists from ``start``: as many as fit in
        one frame (three 64-bit bindings and a group one, or five group ones); none when
        ``start`` is past the end."""
        out: list[zdo_t.Binding] = []
        room = _ENTRY_OCTETS
        for entry in self._entries[start:]:
            size = len(entry.serialize())
            if size > room:
                break
            out.append(entry)
            room -= size
        return out


def _key(entry: zdo_t.Binding) -> bytes:
    return bytes(entry.serialize())


def _refusal(
    owner: t.EUI64, endpoints: Mapping[int, zdo_t.SimpleDescriptor], entry: zdo_t.Binding
) -> zdo_t.Status | None:
    """The status refusing a Bind_req or Unbind_req for ``entry`` (module docstring), or
    None when the node may hold it."""
    dst = entry.DstAddress
    if entry.SrcAddress != owner or dst.addrmode not in (_GROUP, _IEEE):
        return zdo_t.Status.NOT_SUPPORTED
    source = int(entry.SrcEndpoint)
    desc = endpoints.get(source)
    if not 0x01 <= source <= 0xFE or desc is None or (dst.addrmode == _IEEE and dst.endpoint == 0):
        return zdo_t.Status.INVALID_EP
    if entry.ClusterId not in (*desc.input_clusters, *desc.output_clusters):
        return zdo_t.Status.NOT_SUPPORTED
    return None
