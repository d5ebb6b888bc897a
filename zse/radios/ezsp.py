"""Installing a link key in a Silicon Labs EmberZNet NCP's key table through bellows.

The key table holds one APS link key per partner EUI-64; with bellows' hashed Trust Center
link keys, an entry for a device takes precedence over the key derived for it. The commands
differ by EZSP version (UG100 for EZSP < 14, the EZSP reference guide of the Simplicity SDK
(UG600) from 14; checked against bellows' own per-version command tables):

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

This module is the only one in zse that touches bellows' key-table commands.
"""

from __future__ import annotations

from typing import Any

import bellows.types as t
from bellows.ezsp import EZSP
from zigpy.application import ControllerApplication as ZigpyApplication
from zigpy.types import EUI64

from zse.errors import ZseError
from zse.radios import KeyTableFull, LinkKeyInstallError

__all__ = [
    "FIRST_SECURITY_MANAGER_VERSION",
    "EndpointConflict",
    "install_for_application",
    "install_link_key",
    "se_application",
]

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
    (a later ``add_endpoint`` of the same descriptor, as :class:`zse.services.endpoint.
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
