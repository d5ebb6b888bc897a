"""Installing a link key on a TI Z-Stack coprocessor through zigpy-znp.

``ZDO.SetLinkKey`` (MT_ZDO_SET_LINK_KEY, SREQ 0x25 0x23: ``NWK``, ``IEEE``, 16-byte
``LinkKeyData``; SRSP one status byte) is the Monitor and Test command for Z-Stack's
``ZDSecMgrAddLinkKey``, the very call Z-Stack's own Key Establishment makes after a successful
CBKE: it records the partner in the address manager, takes or reuses a security-manager entry,
writes the key to the APS link key data table (in NV when the firmware is built with
NV_RESTORE, as coordinator firmware is) and, in SE builds, marks the entry authenticated by
CBKE. The command and function are present in Z-Stack Home 1.2 and in Z-Stack 3.x alike.

Statuses: 0x00 success; 0x01 (ZFailure) the address manager refused the partner; 0x11
(ZBufferFull) the security manager has no free entry (:class:`~zse.radios.KeyTableFull`).

This module is the only one in zse that touches zigpy-znp's key commands.
"""

from __future__ import annotations

from typing import Any

import zigpy_znp.commands as _commands
import zigpy_znp.types as _types
from zigpy.types import EUI64
from zigpy_znp.api import ZNP

from zse.radios import KeyTableFull, LinkKeyInstallError

__all__ = ["install_for_application", "install_link_key"]

# zigpy-znp builds its command classes at run time: to the type checker they are Any.
c: Any = _commands
t: Any = _types

SUCCESS = 0x00
Z_BUFFER_FULL = 0x11


async def install_link_key(znp: ZNP, partner: EUI64, nwk: int, key: bytes) -> None:
    """Write ``key`` as the link key shared with ``partner`` (whose NWK address is ``nwk``)."""
    api: Any = znp
    response = await api.request(
        c.ZDO.SetLinkKey.Req(NWK=t.NWK(nwk), IEEE=partner, LinkKeyData=t.KeyData(key))
    )
    status = int(response.Status)
    if status != SUCCESS:
        error = KeyTableFull if status == Z_BUFFER_FULL else LinkKeyInstallError
        raise error(
            f"Z-Stack ZDO.SetLinkKey for {partner} (0x{nwk:04X}) failed with status 0x{status:02X}",
            command="ZDO.SetLinkKey",
            status=status,
        )


async def install_for_application(app: Any, partner: EUI64, key: bytes) -> None:
    """:func:`install_link_key` on a running zigpy-znp ``ControllerApplication``; the
    partner's NWK address comes from the application's device list."""
    try:
        device = app.get_device(ieee=partner)
    except KeyError:
        raise LinkKeyInstallError(
            f"{partner} is not a device of this network: Z-Stack needs its NWK address",
            command="ZDO.SetLinkKey",
        ) from None
    await install_link_key(app._znp, partner, int(device.nwk), key)
