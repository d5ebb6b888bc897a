"""Silicon Labs EmberZNet NCPs through bellows: the link key after CBKE, the SE ESI's
application class, and inter-PAN.

The link key: the NCP's key table holds one APS link key per partner EUI-64; with bellows'
hashed Trust Center link keys, an entry for a device takes precedence over the key derived for
it. The commands differ by EZSP version (UG100 for EZSP < 14, the EZSP reference guide of the
Simplicity SDK (UG600) from 14; checked against bellows' own per-version command tables):

- EZSP 4-12: ``addOrUpdateKeyTableEntry`` (0x66: ``address``, ``linkKey=True``, ``keyData``;
  answers an EmberStatus) updates the partner's entry or takes a free one;
- EZSP 13+ (where that command is gone): ``findKeyTableEntry`` (0x75) gives the partner's
  index or 0xFF; otherwise ``getConfigurationValue(CONFIG_KEY_TABLE_SIZE)`` (0x52) gives the
  table size and ``exportLinkKeyByIndex`` (0x010F) probes each index, an empty one answering
  ``SL_STATUS_NOT_FOUND``; then ``importLinkKey`` (0x010E: ``index``, ``address``, ``key``;
  answers an sl_status_t) writes the key there. ``exportLinkKeyByIndex`` puts its status last
  in EZSP 13 and first (with a security context) from 14, so the status is found by name in
  bellows' command table rather than by position.

It also holds :func:`se_application`, bellows' application class as a Smart Energy ESI needs
it: an EmberZNet NCP accepts ``addEndpoint`` only before its network is up, while zigpy
applications start the network before anyone can add an endpoint, so the SE endpoint is
registered during bellows' own start-up; and bellows' ``permit()`` (which zigpy calls with 0
at every start-up to close joining) installs the well-known link key ``ZigBeeAlliance09`` for
every device as a transient key and relaxes the Trust Center policy, which would let any
device join during the next provisioning window. An SE Trust Center admits devices by install
code only, so joining is opened only through ``permit_with_link_key``.

Inter-PAN (SE Annex B, :class:`EzspTransport`): bellows passes no inter-PAN frames to zigpy,
so the transport talks to the NCP itself:

- :meth:`EzspTransport.start` sets the ``MAC_PASSTHROUGH_SE_INTERPAN`` bit of the NCP's
  ``VALUE_MAC_PASSTHROUGH_FLAGS`` (EZSP ``getValue`` / ``setValue``, keeping the other bits), so
  the stack hands received inter-PAN frames to the host instead of dropping them;
- received frames arrive as ``macPassthroughMessageHandler`` (message type SE inter-PAN) or,
  when the application configured MAC filters, as ``macFilterMatchMessageHandler``; their
  argument shapes differ by version (v4-v13: ``lastHopLqi``/``lastHopRssi``; v14+:
  ``packetInfo``; v18+: a 16-bit filter value) but the MAC frame is always the last argument;
- frames are sent whole, MAC header included, with ``sendRawMessage`` (EZSP < 14) or
  ``sendRawMessageExtended`` (EZSP >= 14, where 0x0051 took over the name).

This module is the only one in zse that touches bellows (extra ``ezsp``): every EmberZNet quirk
zse knows of is here.
"""

from __future__ import annotations

import logging
from typing import Any

import bellows.types as t
from bellows.ezsp import EZSP
from zigpy.application import ControllerApplication as ZigpyApplication
from zigpy.types import EUI64

from zse.errors import ZseError
from zse.interpan._codec import InterPanFrame
from zse.interpan.transports._base import ReceiveQueue
from zse.radios import KeyTableFull, LinkKeyInstallError

__all__ = [
    "FIRST_SECURITY_MANAGER_VERSION",
    "EndpointConflict",
    "EzspError",
    "EzspTransport",
    "install_for_application",
    "install_link_key",
    "se_application",
]

LOGGER = logging.getLogger(__name__)

#: EZSP 13 removed ``addOrUpdateKeyTableEntry`` for the security manager commands.
FIRST_SECURITY_MANAGER_VERSION = 13
NO_ENTRY = 0xFF
SUCCESS = 0x00
SL_STATUS_NOT_FOUND = int(t.sl_Status.NOT_FOUND)
#: "Table full" in each status space: EmberStatus (EZSP < 13) and sl_status_t (13+).
EMBER_TABLE_FULL = int(t.EmberStatus.TABLE_FULL)
SL_STATUS_FULL = int(t.sl_Status.FULL)


def _failure(command: str, status: int, partner: EUI64, *, full: int) -> LinkKeyInstallError:
    error = KeyTableFull if status == full else LinkKeyInstallError
    return error(
        f"EZSP {command} for {partner} failed with status 0x{status:02X}",
        command=command,
        status=status,
    )


def _field(ezsp: Any, command: str, response: Any, name: str) -> Any:
    """The response field ``name`` of ``command``, located through bellows' command table."""
    _frame_id, _request, fields = ezsp.COMMANDS[command]
    return response[list(fields).index(name)]


async def install_link_key(ezsp: EZSP, partner: EUI64, key: bytes) -> int | None:
    """Write ``key`` as the link key shared with ``partner``; returns the key-table index
    used (``None`` before EZSP 13, where the NCP chooses and does not say)."""
    api: Any = ezsp  # bellows resolves its commands at run time
    version = int(api.ezsp_version)
    if version < FIRST_SECURITY_MANAGER_VERSION:
        (status,) = await api.addOrUpdateKeyTableEntry(
            address=partner, linkKey=True, keyData=t.KeyData(key)
        )
        if int(status) != SUCCESS:
            raise _failure("addOrUpdateKeyTableEntry", int(status), partner, full=EMBER_TABLE_FULL)
        return None
    index = await _free_or_own_index(api, partner)
    (status,) = await api.importLinkKey(index=index, address=partner, key=t.KeyData(key))
    if int(status) != SUCCESS:
        raise _failure(f"importLinkKey(index={index})", int(status), partner, full=SL_STATUS_FULL)
    return index


async def _free_or_own_index(api: Any, partner: EUI64) -> int:
    (index,) = await api.findKeyTableEntry(address=partner, linkKey=True)
    if int(index) != NO_ENTRY:
        return int(index)
    status, size = await api.getConfigurationValue(configId=t.EzspConfigId.CONFIG_KEY_TABLE_SIZE)
    if int(status) != SUCCESS:
        raise _failure(
            "getConfigurationValue(CONFIG_KEY_TABLE_SIZE)", int(status), partner, full=-1
        )
    for index in range(int(size)):
        response = await api.exportLinkKeyByIndex(index=index)
        if int(_field(api, "exportLinkKeyByIndex", response, "status")) == SL_STATUS_NOT_FOUND:
            return index
    raise KeyTableFull(
        f"EZSP key table has no entry for {partner} and no free entry "
        f"(CONFIG_KEY_TABLE_SIZE = {int(size)})",
        command="exportLinkKeyByIndex",
        status=None,
    )


async def install_for_application(app: Any, partner: EUI64, key: bytes) -> None:
    """:func:`install_link_key` on a running bellows ``ControllerApplication``."""
    await install_link_key(app._ezsp, partner, key)


class EndpointConflict(ZseError):
    """An endpoint added after start-up differs from the one the NCP registered."""


def se_application(base: type[Any], descriptors: list[Any]) -> type[Any]:
    """bellows' ``ControllerApplication`` class ``base`` for a Smart Energy ESI.

    It registers ``descriptors`` (zigpy ``SimpleDescriptor``) before the NCP's network starts
    (a later ``add_endpoint`` of the same descriptor, as :class:`zse.zcl.se_endpoint.
    SeEndpoint` does, is then taken as done; a different one for the same endpoint raises
    :class:`EndpointConflict`), and its ``permit()`` never installs the well-known link key:
    joining opens with a device's install-code key only (``permit_with_link_key``).
    """

    class SeEzspApplication(base):  # type: ignore[misc]
        async def register_endpoints(self) -> None:
            await super().register_endpoints()
            for descriptor in descriptors:
                await super().add_endpoint(descriptor)

        async def add_endpoint(self, descriptor: Any) -> None:
            for created in self._created_device_endpoints:
                if created.endpoint != descriptor.endpoint:
                    continue
                if created.serialize() != descriptor.serialize():
                    raise EndpointConflict(
                        f"EZSP endpoint {descriptor.endpoint} was registered at start-up with "
                        "another descriptor; an NCP cannot change endpoints once its network "
                        "is up"
                    )
                return
            await super().add_endpoint(descriptor)

        async def permit(self, time_s: int = 60, node: Any = None) -> None:
            # zigpy's own permit (broadcast Mgmt_Permit_Joining, then the NCP), without
            # bellows' pre-permit step that adds ZigBeeAlliance09 for every device.
            await ZigpyApplication.permit(self, time_s, node)

    return SeEzspApplication


# -- inter-PAN (SE Annex B) ------------------------------------------------------------------

SE_INTERPAN = int(t.EmberMacPassthroughType.MAC_PASSTHROUGH_SE_INTERPAN)
#: ``EMBER_MAC_TRANSMIT_PRIORITY_NORMAL`` / ``SL_802154_TRANSMIT_PRIORITY_NORMAL``.
TRANSMIT_PRIORITY_NORMAL = 1
FIRST_EXTENDED_VERSION = 14


class EzspError(OSError):
    """The NCP refused a request; ``status`` is its EmberStatus / EzspStatus / sl_Status."""

    def __init__(self, what: str, status: int) -> None:
        super().__init__(f"{what} failed with status 0x{int(status):02X}")
        self.status = int(status)


class EzspTransport(ReceiveQueue):
    """Inter-PAN frames through a connected bellows :class:`~bellows.ezsp.EZSP`."""

    def __init__(self, ezsp: EZSP, *, maxsize: int = 64) -> None:
        super().__init__(maxsize)
        self._ezsp: Any = ezsp  # bellows is untyped; commands are resolved at run time
        self._callback_id: int | None = None

    @classmethod
    def from_application(cls, app: Any, *, maxsize: int = 64) -> EzspTransport:
        """The transport of a running bellows ``ControllerApplication``."""
        return cls(app._ezsp, maxsize=maxsize)

    @property
    def ezsp_version(self) -> int:
        return int(self._ezsp.ezsp_version)

    async def start(self) -> None:
        """Subscribe to the NCP's callbacks and enable SE inter-PAN passthrough."""
        if self._callback_id is None:
            self._callback_id = self._ezsp.add_callback(self._on_callback)
        flags = 0
        status, *rest = await self._ezsp.getValue(valueId=t.EzspValueId.VALUE_MAC_PASSTHROUGH_FLAGS)
        if int(status) == 0 and rest and rest[0]:
            flags = rest[0][0]
        (status,) = await self._ezsp.setValue(
            valueId=t.EzspValueId.VALUE_MAC_PASSTHROUGH_FLAGS,
            value=bytes([flags | SE_INTERPAN]),
        )
        if int(status) != 0:
            raise EzspError("setValue(VALUE_MAC_PASSTHROUGH_FLAGS)", status)

    async def send(self, frame: InterPanFrame) -> None:
        """Send the whole MAC frame (the NCP appends the FCS)."""
        data = frame.to_bytes()
        if self.ezsp_version >= FIRST_EXTENDED_VERSION:
            (status,) = await self._ezsp.sendRawMessageExtended(
                message=data, priority=TRANSMIT_PRIORITY_NORMAL, useCca=True
            )
            what = "sendRawMessageExtended"
        else:
            (status,) = await self._ezsp.sendRawMessage(messageContents=data)
            what = "sendRawMessage"
        if int(status) != 0:
            raise EzspError(what, status)

    async def close(self) -> None:
        if self._callback_id is not None:
            self._ezsp.remove_callback(self._callback_id)
            self._callback_id = None
        await super().close()

    def _on_callback(self, frame_name: str, args: list[Any]) -> None:
        if frame_name == "macPassthroughMessageHandler":
            # (messageType, lastHopLqi, lastHopRssi | packetInfo, messageContents)
            if not int(args[0]) & SE_INTERPAN:
                LOGGER.debug("ignoring a MAC passthrough message of type 0x%02X", int(args[0]))
                return
        elif frame_name != "macFilterMatchMessageHandler":
            return
        # a filter match may carry any raw frame: the decoder decides (non-inter-PAN is counted)
        self.deliver_bytes(bytes(args[-1]))
