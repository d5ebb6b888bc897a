"""TI Z-Stack coprocessors through zigpy-znp: the link key after CBKE, and inter-PAN.

The link key:

``ZDO.SetLinkKey`` (MT_ZDO_SET_LINK_KEY, SREQ 0x25 0x23: ``NWK``, ``IEEE``, 16-byte
``LinkKeyData``; SRSP one status byte) is the Monitor and Test command for Z-Stack's
``ZDSecMgrAddLinkKey``, the very call Z-Stack's own Key Establishment makes after a successful
CBKE: it records the partner in the address manager, takes or reuses a security-manager entry,
writes the key to the APS link key data table (in NV when the firmware is built with
NV_RESTORE, as coordinator firmware is) and, in SE builds, marks the entry authenticated by
CBKE. The command and function are present in Z-Stack Home 1.2 and in Z-Stack 3.x alike.

Statuses: 0x00 success; 0x01 (ZFailure) the address manager refused the partner; 0x11
(ZBufferFull) the security manager has no free entry (:class:`~zse.radios.KeyTableFull`).

Inter-PAN (SE Annex B, :class:`ZnpTransport`): Z-Stack implements SE Annex B itself
("StubAPS"), so unlike EZSP the host never sees the MAC frame; this transport maps
:class:`~zse.interpan.InterPanFrame` to Z-Stack's monitor-and-test (MT) commands and back:

- ``AF.InterPanCtl``: ``Reg`` registers the SE endpoint for inter-PAN (it must already be
  registered with AF, which :meth:`ZnpTransport.start` can do with ``AF.Register``), ``Set``
  moves the radio to another channel for inter-PAN, ``Clr`` returns to the network's channel;
- ``AF.DataRequestExt`` sends, with destination endpoint 0xFE (``STUBAPS_INTER_PAN_EP``) and the
  destination PAN id; the address mode gives the delivery mode (64-bit: unicast, 0xFFFF:
  broadcast, group); Z-Stack fills in the MAC sequence number, the source PAN id and the source
  IEEE address itself, and the profile is the registered endpoint's; ``AF.DataConfirm`` reports
  the MAC outcome with the request's transaction id (TI ``stub_aps.c``: the MAC handle is the
  transID, ``INTERP_DataConfirm`` confirms with it), which the transport numbers itself, one
  per send in flight, so each confirmation reaches its own send;
- ``AF.IncomingMsgExt`` (64-bit source address) delivers received frames; the MAC sequence
  number and destination PAN id are not reported, so received frames carry ``sequence=0`` and
  the local PAN id.

Z-Stack sends at most 93 octets after the stub APS header (``INTERP_DataReqMTU``) and cannot
carry APS-secured inter-PAN at all: its stub APS answers a secured request ``ZApsNotSupported``
(``StubAPS_BuildFrameControl``) and drops every received frame with the APS security bit
(``INTERP_DataIndication``). :meth:`ZnpTransport.send` refuses a secured frame with
:class:`~zse.interpan.transports.SecuredInterPanUnsupported` before anything is sent; the
secured installer handover needs EZSP (or the simulator).

zigpy-znp's ``prefer_endpoint_1`` option must be off for SE (otherwise zigpy-znp sends the
coordinator's SE-profile traffic from endpoint 1, the ZHA endpoint): :func:`library_config`
turns it off, and :meth:`ZnpTransport.from_application` refuses an application configured with
it on. The coordinator's library settings (this module is a
:class:`zse.radios.CoordinatorRadio`): :func:`coordinator_class`, :func:`library_config` and
:func:`start_transport`.

This module is the only one in zse that touches zigpy-znp (extra ``znp``): every Z-Stack quirk
zse knows of is here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import zigpy_znp.commands as _commands
import zigpy_znp.config as znp_conf
import zigpy_znp.types as _types
from zigpy.types import EUI64
from zigpy_znp.api import ZNP
from zigpy_znp.exceptions import InvalidCommandResponse

from zse.config import ConfigError
from zse.errors import ZseError
from zse.interpan._codec import (
    BROADCAST_ADDRESS,
    MAX_ZCL_LENGTH,
    SE_PROFILE_ID,
    DeliveryMode,
    InterPanFrame,
    max_payload_length,
)
from zse.interpan.transports._base import ReceiveQueue, SecuredInterPanUnsupported
from zse.radios import KeyTableFull, LinkKeyInstallError, install_failure

if TYPE_CHECKING:
    from zse.config import RadioSettings

__all__ = [
    "INTER_PAN_ENDPOINT",
    "NoConfirmation",
    "ZnpError",
    "ZnpTransport",
    "coordinator_class",
    "install_for_application",
    "install_link_key",
    "library_config",
    "remove_for_application",
    "remove_link_key",
    "start_transport",
]

LOGGER = logging.getLogger(__name__)

# zigpy-znp builds its command classes at run time: to the type checker they are Any.
c: Any = _commands
t: Any = _types

SUCCESS = 0x00
Z_BUFFER_FULL = 0x11


async def install_link_key(znp: ZNP, partner: EUI64, nwk: int, key: bytes) -> None:
    """Write ``key`` as the link key shared with ``partner`` (whose NWK address is ``nwk``)."""
    api: Any = znp
    try:
        response = await api.request(
            c.ZDO.SetLinkKey.Req(NWK=t.NWK(nwk), IEEE=partner, LinkKeyData=t.KeyData(key))
        )
    except Exception as exc:  # zigpy-znp's message repeats the request, key included
        raise install_failure(
            f"Z-Stack ZDO.SetLinkKey for {partner} (0x{nwk:04X})", exc, command="ZDO.SetLinkKey"
        ) from None
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


#: ``ZNwkUnknownDevice``: the security manager holds no entry for the device.
Z_NWK_UNKNOWN_DEVICE = 0xC8


async def remove_link_key(znp: ZNP, partner: EUI64) -> bool:
    """Erase ``partner``'s link key (True if one was held): ``ZDO.RemoveLinkKey``
    (MT_ZDO_REMOVE_LINK_KEY, SREQ 0x25 0x24: ``IEEE``; SRSP one status byte) runs Z-Stack's
    ``ZDSecMgrDeviceRemoveByExtAddr``, which frees the device's security-manager entry and its
    APS link key; ``ZNwkUnknownDevice`` (0xC8) answers a device it holds nothing for."""
    api: Any = znp
    try:
        response = await api.request(c.ZDO.RemoveLinkKey.Req(IEEE=partner))
    except Exception as exc:  # zigpy-znp's message repeats the request
        raise install_failure(
            f"Z-Stack ZDO.RemoveLinkKey for {partner}", exc, command="ZDO.RemoveLinkKey"
        ) from None
    status = int(response.Status)
    if status == Z_NWK_UNKNOWN_DEVICE:
        return False
    if status != SUCCESS:
        raise LinkKeyInstallError(
            f"Z-Stack ZDO.RemoveLinkKey for {partner} failed with status 0x{status:02X}",
            command="ZDO.RemoveLinkKey",
            status=status,
        )
    return True


async def remove_for_application(app: Any, partner: EUI64) -> bool:
    """:func:`remove_link_key` on a running zigpy-znp ``ControllerApplication``."""
    return await remove_link_key(app._znp, partner)


# -- the coordinator's library settings (zse.radios.CoordinatorRadio) -------------------------


def coordinator_class(descriptors: Sequence[Any] = ()) -> type[Any]:
    """zigpy-znp's ``ControllerApplication``: Z-Stack takes endpoints once the network is up
    (``AF.Register``), so the ESI registers ``descriptors`` itself after the start."""
    from zigpy_znp.zigbee.application import ControllerApplication  # noqa: PLC0415

    cls: type[Any] = ControllerApplication
    return cls


def library_config(settings: RadioSettings) -> dict[str, Any]:
    """zigpy-znp's zigpy configuration for an SE coordinator: ``prefer_endpoint_1`` off."""
    return {znp_conf.CONF_ZNP_CONFIG: {znp_conf.CONF_PREFER_ENDPOINT_1: False}}


async def start_transport(app: Any, *, endpoint: int, register: bool) -> ZnpTransport:
    """The started :class:`ZnpTransport` of ``app`` on ``endpoint`` (``register``: with AF
    first); :class:`~zse.config.ConfigError` for an application with ``prefer_endpoint_1``."""
    try:
        transport = ZnpTransport.from_application(app, endpoint=endpoint)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    await transport.start(register=register)
    return transport


# -- inter-PAN (SE Annex B) ------------------------------------------------------------------

#: ``STUBAPS_INTER_PAN_EP``: the destination endpoint that makes AF use the stub APS.
INTER_PAN_ENDPOINT = 0xFE
DEFAULT_RADIUS = 0x1E
DEFAULT_CONFIRM_TIMEOUT = 10.0


class ZnpError(ZseError, OSError):
    """Z-Stack refused a request or reported a failed transmission."""

    def __init__(self, what: str, status: int) -> None:
        super().__init__(f"{what} failed with status 0x{int(status):02X}")
        self.status = int(status)


class NoConfirmation(ZseError, TimeoutError):
    """Z-Stack did not answer an inter-PAN send and confirm it (``AF.DataConfirm``) in time:
    a :class:`TimeoutError`, hence an :class:`OSError`, as a failed transmission is."""


class ZnpTransport(ReceiveQueue):
    """Inter-PAN frames through a connected zigpy-znp :class:`~zigpy_znp.api.ZNP`.

    ``endpoint`` is the local SE endpoint; ``ieee`` and ``pan_id`` are the coordinator's own
    (used to describe received frames, whose MAC destination Z-Stack does not report).
    Unsecured frames only (:attr:`carries_aps_security` is False, see the module docstring).
    """

    carries_aps_security = False

    def __init__(
        self,
        znp: ZNP,
        *,
        endpoint: int,
        ieee: EUI64,
        pan_id: int,
        profile_id: int = SE_PROFILE_ID,
        confirm_timeout: float = DEFAULT_CONFIRM_TIMEOUT,
        maxsize: int = 64,
    ) -> None:
        super().__init__(maxsize)
        if not 1 <= endpoint <= 0xF0:
            raise ValueError(f"endpoint must be an application endpoint 1..240, got {endpoint}")
        self._znp = znp
        self.endpoint = endpoint
        self.ieee = ieee
        self.pan_id = pan_id
        self.profile_id = profile_id
        self.confirm_timeout = confirm_timeout
        self._listener: Any = None
        self._next_tsn = 0
        self._in_flight: set[int] = set()

    @classmethod
    def from_application(cls, app: Any, *, endpoint: int, maxsize: int = 64) -> ZnpTransport:
        """The transport of a running zigpy-znp ``ControllerApplication``."""
        if app.config[znp_conf.CONF_ZNP_CONFIG][znp_conf.CONF_PREFER_ENDPOINT_1]:
            raise ValueError(
                "zigpy-znp's znp_config.prefer_endpoint_1 must be false for Smart Energy: "
                "SE-profile frames would otherwise leave from the ZHA endpoint 1"
            )
        return cls(
            app._znp,
            endpoint=endpoint,
            ieee=app.state.node_info.ieee,
            pan_id=app.state.network_info.pan_id,
            maxsize=maxsize,
        )

    async def start(self, *, register: bool = False, device_id: int = 0x0500) -> None:
        """Register the endpoint for inter-PAN (and first with AF if ``register``)."""
        if register:
            await self._check(
                "AF.Register",
                c.AF.Register.Req(
                    Endpoint=self.endpoint,
                    ProfileId=self.profile_id,
                    DeviceId=device_id,
                    DeviceVersion=0,
                    LatencyReq=c.af.LatencyReq.NoLatencyReqs,
                    InputClusters=[],
                    OutputClusters=[],
                ),
            )
        if self._listener is None:
            self._listener = self._znp.callback_for_response(
                c.AF.IncomingMsgExt.Callback(partial=True, DstEndpoint=self.endpoint),
                self._on_incoming,
            )
        await self._inter_pan_ctl(t.InterPanCommand.Reg, self.endpoint)

    async def set_channel(self, channel: int) -> None:
        """Move the radio to ``channel`` (11..26) for inter-PAN (``InterPanCtl Set``)."""
        if not 11 <= channel <= 26:
            raise ValueError(f"2.4 GHz channel must be 11..26, got {channel}")
        await self._inter_pan_ctl(t.InterPanCommand.Set, channel)

    async def restore_channel(self) -> None:
        """Back to the network's channel (``InterPanCtl Clr``)."""
        await self._inter_pan_ctl(t.InterPanCommand.Clr, None)

    async def send(self, frame: InterPanFrame) -> None:
        """``AF.DataRequestExt`` to endpoint 0xFE, then wait for its ``AF.DataConfirm``
        (matched on the endpoint and a transaction id unique among this transport's sends in
        flight). :class:`~zse.interpan.transports.SecuredInterPanUnsupported` for an
        APS-secured frame, :class:`ValueError` for one Z-Stack cannot send as given."""
        if frame.aps_security:
            raise SecuredInterPanUnsupported(
                "Z-Stack cannot send APS-secured inter-PAN frames (its stub APS refuses "
                "security, TI stub_aps.c); use an EZSP radio (EzspTransport) or the simulator"
            )
        if len(frame.payload) > MAX_ZCL_LENGTH:
            raise ValueError(
                f"Z-Stack sends at most {MAX_ZCL_LENGTH} octets in an inter-PAN frame "
                f"(INTERP_DataReqMTU), not {len(frame.payload)}"
            )
        if frame.profile_id != self.profile_id:
            raise ValueError(
                f"Z-Stack sends with the endpoint's profile 0x{self.profile_id:04X}, "
                f"not 0x{frame.profile_id:04X}"
            )
        if frame.dst_pan_id == 0x0000:
            raise ValueError("Z-Stack reads destination PAN id 0x0000 as intra-PAN")
        if frame.delivery_mode is DeliveryMode.UNICAST:
            dst = t.AddrModeAddress(mode=t.AddrMode.IEEE, address=frame.dst_address)
        elif frame.delivery_mode is DeliveryMode.GROUP:
            dst = t.AddrModeAddress(mode=t.AddrMode.Group, address=frame.group_id)
        else:
            dst = t.AddrModeAddress(mode=t.AddrMode.Broadcast, address=BROADCAST_ADDRESS)
        tsn = self._take_tsn()
        try:
            await self._request(frame, dst, tsn)
        finally:
            self._in_flight.discard(tsn)

    def _take_tsn(self) -> int:
        """The next transaction id not in flight: Z-Stack confirms with it, and zigpy-znp
        gives each confirmation to the first listener that matches it."""
        for _ in range(0x100):
            tsn, self._next_tsn = self._next_tsn, (self._next_tsn + 1) & 0xFF
            if tsn not in self._in_flight:
                self._in_flight.add(tsn)
                return tsn
        raise OSError("256 inter-PAN sends are already waiting for Z-Stack's AF.DataConfirm")

    async def _request(self, frame: InterPanFrame, dst: Any, tsn: int) -> None:
        request = c.AF.DataRequestExt.Req(
            DstAddrModeAddress=dst,
            DstEndpoint=INTER_PAN_ENDPOINT,
            DstPanId=frame.dst_pan_id,
            SrcEndpoint=self.endpoint,
            ClusterId=frame.cluster_id,
            TSN=tsn,
            Options=c.af.TransmitOptions.NONE,
            Radius=DEFAULT_RADIUS,
            Data=t.LongBytes(frame.payload),
        )
        try:
            confirm: Any = await self._znp.request_callback_rsp(  # type: ignore[no-untyped-call]
                request=request,
                RspStatus=t.Status.SUCCESS,
                callback=c.AF.DataConfirm.Callback(partial=True, Endpoint=self.endpoint, TSN=tsn),
                timeout=self.confirm_timeout,
            )
        except InvalidCommandResponse as exc:
            raise ZnpError("AF.DataRequestExt", exc.response.Status) from exc
        except TimeoutError:  # zigpy-znp's own (answer or confirmation late) has no message
            raise NoConfirmation(
                f"Z-Stack did not confirm the inter-PAN frame with TSN {tsn} (AF.DataRequestExt "
                f"answer and AF.DataConfirm) within {self.confirm_timeout:g} s"
            ) from None
        if confirm.Status != t.Status.SUCCESS:
            raise ZnpError("inter-PAN transmission (AF.DataConfirm)", confirm.Status)

    async def close(self) -> None:
        if self._listener is not None:
            self._znp.remove_listener(self._listener)
            self._listener = None
        await super().close()

    async def _inter_pan_ctl(self, command: Any, value: int | None) -> None:
        data = b"" if value is None else bytes([value])
        await self._check(
            f"AF.InterPanCtl {command.name}", c.AF.InterPanCtl.Req(Command=command, Data=data)
        )

    async def _check(self, what: str, request: Any) -> None:
        rsp: Any = await self._znp.request(request)
        if rsp.Status != t.Status.SUCCESS:
            raise ZnpError(what, rsp.Status)

    def _on_incoming(self, msg: Any) -> None:
        source = msg.SrcAddrModeAddress
        if source.mode != t.AddrMode.IEEE or msg.SrcEndpoint != INTER_PAN_ENDPOINT:
            return  # an ordinary (intra-PAN) message for this endpoint: zigpy-znp's business
        data = bytes(msg.Data)
        if msg.GroupId:
            mode, group = DeliveryMode.GROUP, int(msg.GroupId)
        elif msg.WasBroadcast:
            mode, group = DeliveryMode.BROADCAST, None
        else:
            mode, group = DeliveryMode.UNICAST, None
        if len(data) > max_payload_length(mode):
            self.invalid += 1
            return
        dst: EUI64 | int = self.ieee if mode is DeliveryMode.UNICAST else BROADCAST_ADDRESS
        self.deliver(
            InterPanFrame(
                src_pan_id=int(msg.SrcPanId),
                src_ieee=EUI64(source.address),
                dst_pan_id=self.pan_id,
                dst_address=dst,
                delivery_mode=mode,
                group_id=group,
                cluster_id=int(msg.ClusterId),
                profile_id=self.profile_id,
                payload=data,
                sequence=0,
            )
        )
