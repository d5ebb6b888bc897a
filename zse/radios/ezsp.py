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

The coordinator's library settings (this module is a :class:`zse.radios.CoordinatorRadio`):
:func:`coordinator_class` (bellows' application, as :func:`se_application` when the ESI's
endpoints are given), :func:`library_config` (bellows on zse's own loop, not its serial thread,
which outlives a start cancelled while the port opens and keeps the process from exiting; the
``[radio] ezsp_key_table_size``; the Trust Center's key request policies of Silicon Labs' SE
security profiles, :data:`SE_POLICIES`) and :func:`start_transport`.

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

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import bellows.types as t
from bellows.exception import EzspError as BellowsEzspError
from bellows.exception import InvalidCommandError
from bellows.ezsp import EZSP
from zigpy.application import ControllerApplication as ZigpyApplication
from zigpy.exceptions import DeliveryError
from zigpy.types import EUI64

from zse.errors import ZseError
from zse.interpan._codec import InterPanFrame
from zse.interpan.transports._base import ReceiveQueue
from zse.radios import KeyTableFull, LinkKeyInstallError, install_failure
from zse.radios.han import (
    FoundNetwork,
    Incoming,
    JoinFailed,
    NetworkState,
    RadioGone,
    StickCertificate,
    subscribe,
)

if TYPE_CHECKING:
    from zse.config import RadioSettings

__all__ = [
    "EZSP_VERSIONS",
    "FIRST_SECURITY_MANAGER_VERSION",
    "SE_POLICIES",
    "CommandRefused",
    "EndpointConflict",
    "EzspError",
    "EzspHanRadio",
    "EzspTransport",
    "MissingCommand",
    "TrustCenterKeyUnsupported",
    "UnsupportedFirmware",
    "check_version",
    "coordinator_class",
    "install_for_application",
    "install_link_key",
    "install_trust_center_link_key",
    "library_config",
    "remove_for_application",
    "remove_link_key",
    "se_application",
    "start_transport",
    "version_checked",
]

LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")

#: EZSP 13 removed ``addOrUpdateKeyTableEntry`` for the security manager commands.
FIRST_SECURITY_MANAGER_VERSION = 13
#: EZSP 12 added the security manager's ``importKey`` (bellows' v12 command table).
FIRST_IMPORT_KEY_VERSION = 12
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
        try:
            (status,) = await api.addOrUpdateKeyTableEntry(
                address=partner, linkKey=True, keyData=t.KeyData(key)
            )
        except Exception as exc:  # a radio library's message may quote the request
            command = "addOrUpdateKeyTableEntry"
            raise install_failure(f"EZSP {command} for {partner}", exc, command=command) from None
        if int(status) != SUCCESS:
            raise _failure("addOrUpdateKeyTableEntry", int(status), partner, full=EMBER_TABLE_FULL)
        return None
    index = await _free_or_own_index(api, partner)
    try:
        (status,) = await api.importLinkKey(index=index, address=partner, key=t.KeyData(key))
    except Exception as exc:  # a radio library's message may quote the request
        command = f"importLinkKey(index={index})"
        raise install_failure(f"EZSP {command} for {partner}", exc, command=command) from None
    if int(status) != SUCCESS:
        raise _failure(f"importLinkKey(index={index})", int(status), partner, full=SL_STATUS_FULL)
    return index


#: The most key table entries probed for a free one: EmberZNet's tables are far smaller (its
#: default is a dozen); a stick claiming 65,535 would take 65,535 round trips (minutes).
MAX_KEY_TABLE_PROBES = 256


async def _free_or_own_index(api: Any, partner: EUI64) -> int:
    (index,) = await api.findKeyTableEntry(address=partner, linkKey=True)
    if int(index) != NO_ENTRY:
        return int(index)
    status, size = await api.getConfigurationValue(configId=t.EzspConfigId.CONFIG_KEY_TABLE_SIZE)
    if int(status) != SUCCESS:
        raise _failure(
            "getConfigurationValue(CONFIG_KEY_TABLE_SIZE)", int(status), partner, full=-1
        )
    for index in range(min(int(size), MAX_KEY_TABLE_PROBES)):  # a stick's word, bounded
        response = await api.exportLinkKeyByIndex(index=index)
        if int(_field(api, "exportLinkKeyByIndex", response, "status")) == SL_STATUS_NOT_FOUND:
            return index
    raise KeyTableFull(
        f"EZSP key table has no entry for {partner} and no free entry "
        f"(CONFIG_KEY_TABLE_SIZE = {int(size)})",
        command="exportLinkKeyByIndex",
        status=None,
    )


async def remove_link_key(ezsp: EZSP, partner: EUI64) -> bool:
    """Erase ``partner``'s entry of the NCP's key table, if it has one (True then):
    ``findKeyTableEntry`` (0x75) gives its index or 0xFF, ``eraseKeyTableEntry`` (0x76,
    ``index``; an EmberStatus before EZSP 14, an sl_status_t from 14) erases it. Both are in
    every EZSP version bellows knows (4-19, its command tables).

    The pending install-code key (a transient key, ``addTransientLinkKey`` /
    ``importTransientKey``) has no per-device erase command; EmberZNet drops it when its
    transient-key timeout runs out (300 s by default), and the ESI refuses a join seen in the
    meantime (it erases the key again and asks the device to leave)."""
    api: Any = ezsp  # bellows resolves its commands at run time
    try:
        (index,) = await api.findKeyTableEntry(address=partner, linkKey=True)
        if int(index) == NO_ENTRY:
            return False
        (status,) = await api.eraseKeyTableEntry(index=int(index))
    except Exception as exc:  # a radio library's message may quote the request
        command = "eraseKeyTableEntry"
        raise install_failure(f"EZSP {command} for {partner}", exc, command=command) from None
    if int(status) != SUCCESS:
        raise _failure(f"eraseKeyTableEntry(index={int(index)})", int(status), partner, full=-1)
    return True


async def remove_for_application(app: Any, partner: EUI64) -> bool:
    """:func:`remove_link_key` on a running bellows ``ControllerApplication``."""
    return await remove_link_key(app._ezsp, partner)


class TrustCenterKeyUnsupported(LinkKeyInstallError):
    """The NCP's EZSP has no command that replaces its Trust Center link key (before 12)."""


async def install_trust_center_link_key(ezsp: EZSP, trust_center: EUI64, key: bytes) -> None:
    """Write ``key`` as the joining node's Trust Center link key (SE 5.4.7.2: CBKE's key
    becomes the link key shared with the Trust Center).

    EmberZNet keeps that key apart from the key table ("The Trust Center Link Key is stored
    separately from this table", ``ember-configuration-defaults.h``, ``EMBER_KEY_TABLE_SIZE``)
    and encrypts APS frames to and from the Trust Center with it; Silicon Labs' own key
    establishment plugin updates it, not the table, when the partner is the Trust Center
    (``key-establishment.c``, ``checkKeyTable``). The security manager's ``importKey``
    (0x0115, EZSP 12+: a ``SecurityManagerContext`` with ``core_key_type`` TC_LINK, no
    derivation) writes it; EZSP 4-11 have no command for it (``setInitialSecurityState``
    only before joining), so :class:`TrustCenterKeyUnsupported` is raised there."""
    api: Any = ezsp  # bellows resolves its commands at run time
    command = "importKey(TC_LINK)"
    if "importKey" not in api.COMMANDS:
        raise TrustCenterKeyUnsupported(
            f"EZSP {int(api.ezsp_version)} has no command that replaces the Trust Center link "
            f"key (importKey needs EZSP {FIRST_IMPORT_KEY_VERSION} or later)",
            command=command,
        )
    _frame_id, request, _response = api.COMMANDS["importKey"]
    context = request["context"](  # SecurityManagerContextV12 / V13, per bellows' table
        core_key_type=t.SecurityManagerKeyType.TC_LINK,
        key_index=0,
        derived_type=0,
        eui64=trust_center,
        multi_network_index=0,
        flags=t.SecurityManagerContextFlags.NONE,
        psa_key_alg_permission=0,
    )
    try:
        response = await api.importKey(context=context, key=t.KeyData(key))
    except Exception as exc:  # a radio library's message may quote the request
        raise install_failure(f"EZSP {command} for {trust_center}", exc, command=command) from None
    status = int(_field(api, "importKey", response, "status"))
    if status != SUCCESS:
        raise _failure(command, status, trust_center, full=SL_STATUS_FULL)


async def install_for_application(app: Any, partner: EUI64, key: bytes) -> None:
    """:func:`install_link_key` on a running bellows ``ControllerApplication``."""
    await install_link_key(app._ezsp, partner, key)


# -- the firmware zse supports ----------------------------------------------------------------

#: The EZSP versions zse drives, as a coordinator and as a HAN device: 4-19 where bellows has
#: a command table. bellows speaks to a version it has no table for (15, or one newer than
#: it knows) with another version's table, so zse's own frames (key table, CBKE, inter-PAN)
#: would be encoded for a protocol the firmware does not speak. The floor is bellows' own:
#: every command zse sends is in each of these tables (the CBKE commands of both suites,
#: ``dsaSign``, the MAC passthrough flags, ``sendRawMessage``), and those that changed are
#: chosen by version (``addOrUpdateKeyTableEntry`` before 13, the security manager's from 12
#: and 13, ``sendRawMessageExtended`` from 14).
EZSP_VERSIONS = tuple(v for v in range(4, 20) if v in EZSP._BY_VERSION)


def _versions(versions: tuple[int, ...]) -> str:
    """``4-14, 16-19``: the versions as ranges."""
    runs: list[list[int]] = []
    for version in versions:
        if runs and runs[-1][-1] == version - 1:
            runs[-1].append(version)
        else:
            runs.append([version])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


class UnsupportedFirmware(JoinFailed):
    """The stick's firmware cannot do what zse needs of it: it speaks an EZSP version zse does
    not support (``status`` is that version; a HAN device does not join, a coordinator does not
    start), or it lacks a command (:class:`MissingCommand`)."""


class MissingCommand(UnsupportedFirmware):
    """The stick's firmware does not have the EZSP ``command`` zse sent: the NCP answered it
    ``invalidCommand`` (bellows' ``InvalidCommandError``), as EmberZNet does for a frame id
    its build does not handle."""

    def __init__(self, message: str, *, command: str) -> None:
        super().__init__(message)
        self.command = command


def check_version(ezsp: EZSP, *, role: str, where: str = "") -> None:
    """:class:`UnsupportedFirmware` unless the connected NCP speaks one of
    :data:`EZSP_VERSIONS`; ``role`` says for what ("a HAN device", "a coordinator")."""
    version = int(ezsp.ezsp_version)
    if version not in EZSP_VERSIONS:
        raise UnsupportedFirmware(
            f"{where}the stick's firmware speaks EZSP {version}, which zse does not support "
            f"for {role} (supported: EZSP {_versions(EZSP_VERSIONS)})",
            status=version,
        )


class CommandRefused(JoinFailed):
    """The NCP answered the EZSP ``command`` zse sent ``invalidCommand`` for a reason other
    than a frame id its firmware lacks (a frame it read as truncated or too long, a call in
    the wrong state: ``reason``, as bellows names it): not a missing feature, so not
    :class:`UnsupportedFirmware`."""

    def __init__(self, message: str, *, command: str, reason: str) -> None:
        super().__init__(message)
        self.command = command
        self.reason = reason


#: The reasons of an ``invalidCommand`` for a command the NCP has but would not run (a frame
#: it read as cut short or too long, a value or call out of place): EzspStatus names before
#: EZSP 14, sl_status_t names from it (bellows'). Any other reason, ERROR_INVALID_FRAME_ID and
#: COMMAND_IS_INVALID first, or one bellows reads otherwise (a firmware's 0x31 in EZSP 14's
#: wider field is TRANSMIT to bellows), is taken as a command the firmware lacks.
_REFUSED = frozenset(
    {
        "ERROR_VERSION_NOT_SET",
        "ERROR_WRONG_DIRECTION",
        "ERROR_TRUNCATED",
        "ERROR_OVERFLOW",
        "ERROR_OUT_OF_MEMORY",
        "ERROR_INVALID_VALUE",
        "ERROR_INVALID_ID",
        "ERROR_INVALID_CALL",
        "ERROR_COMMAND_TOO_LONG",
        "INVALID_STATE",
        "INVALID_PARAMETER",
        "INVALID_RANGE",
        "ALLOCATION_FAILED",
        "WOULD_OVERFLOW",
        "MESSAGE_TOO_LONG",
        "NOT_READY",
    }
)


async def _command(ezsp: Any, command: str, need: str, *, stick: str, **request: Any) -> Any:
    """bellows' ``command`` with ``request``: its answer; :class:`MissingCommand` saying that
    the firmware of ``stick`` lacks it, which ``need`` needs, when the stick answered
    ``invalidCommand`` for that reason; :class:`CommandRefused` with the reason when it is
    one of :data:`_REFUSED`."""
    try:
        return await getattr(ezsp, command)(**request)
    except InvalidCommandError as exc:
        # bellows says "<command> command is an invalidCommand, ... number: <REASON>"
        reason = str(exc).rpartition(": ")[2].strip()
        if reason in _REFUSED:
            raise CommandRefused(
                f"{stick}: the stick refused the EZSP command {command}, which {need} needs "
                f"(invalidCommand: {reason})",
                command=command,
                reason=reason,
            ) from exc
        raise MissingCommand(
            f"{stick}: its firmware does not have the EZSP command {command}, which {need} "
            "needs (the stick answered invalidCommand)",
            command=command,
        ) from exc


class EndpointConflict(ZseError):
    """An endpoint added after start-up differs from the one the NCP registered."""


@functools.cache
def version_checked(base: type[Any]) -> type[Any]:
    """bellows' ``ControllerApplication`` class ``base`` that does not start on firmware
    speaking an EZSP version zse does not support (:data:`EZSP_VERSIONS`): its ``connect()``
    raises :class:`UnsupportedFirmware` (and disconnects) once the NCP has said its version,
    before any endpoint is registered. bellows would start it with another version's command
    table, which zse's own frames (link keys, inter-PAN) are then encoded with."""

    class EzspCoordinator(base):  # type: ignore[misc]
        async def register_endpoints(self) -> None:
            # bellows' connect() calls this once the NCP's version is known and its
            # configuration written, before anything of zse's reaches the NCP
            check_version(self._ezsp, role="a coordinator")
            await super().register_endpoints()

    return EzspCoordinator


def se_application(base: type[Any], descriptors: list[Any]) -> type[Any]:
    """bellows' ``ControllerApplication`` class ``base`` for a Smart Energy ESI.

    It starts only on firmware zse supports (:func:`version_checked`), registers
    ``descriptors`` (zigpy ``SimpleDescriptor``) before the NCP's network starts (a later
    ``add_endpoint`` of the same descriptor, as :class:`zse.zcl.se_endpoint.SeEndpoint` does,
    is then taken as done; a different one for the same endpoint raises
    :class:`EndpointConflict`), and its ``permit()`` never installs the well-known link key:
    joining opens with a device's install-code key only (``permit_with_link_key``).
    """

    class SeEzspApplication(version_checked(base)):  # type: ignore[misc]
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


# -- the coordinator's library settings (zse.radios.CoordinatorRadio) -------------------------

#: The Trust Center's EZSP key request policies (bellows ``ezsp_policies``, written with
#: ``setPolicy`` at every start). bellows' default answers any device's APS Request Key for a
#: Trust Center link key with the current key (``ALLOW_TC_KEY_REQUESTS_AND_SEND_CURRENT_KEY``);
#: Silicon Labs' SE security profiles deny it (``security-config.h``, SE_TEST and SE_FULL
#: ``TC_LINK_KEY_REQUEST_POLICY``: ``EMBER_AF_DENY_TC_KEY_REQUESTS``): an SE device's link
#: key comes from its install code, then CBKE (SE 5.4.7). Application link key requests stay
#: denied (bellows' default, set here so it cannot change under zse): zse's ESI hands out no
#: partner link keys, although those profiles allow the requests.
SE_POLICIES = {
    "TC_KEY_REQUEST_POLICY": int(t.EzspDecisionId.DENY_TC_KEY_REQUESTS),
    "APP_KEY_REQUEST_POLICY": int(t.EzspDecisionId.DENY_APP_KEY_REQUESTS),
}


def coordinator_class(descriptors: Sequence[Any] = ()) -> type[Any]:
    """bellows' ``ControllerApplication``, starting only on firmware zse supports
    (:func:`version_checked`); with the ESI's endpoint ``descriptors``, as
    :func:`se_application` (an NCP takes endpoints only before its network is up)."""
    from bellows.zigbee.application import ControllerApplication  # noqa: PLC0415

    if not descriptors:
        return version_checked(ControllerApplication)
    return se_application(ControllerApplication, list(descriptors))


def library_config(settings: RadioSettings) -> dict[str, Any]:
    """bellows' zigpy configuration for an SE coordinator (see the module docstring)."""
    config: dict[str, Any] = {"use_thread": False, "ezsp_policies": dict(SE_POLICIES)}
    if settings.ezsp_key_table_size is not None:
        config["ezsp_config"] = {"CONFIG_KEY_TABLE_SIZE": settings.ezsp_key_table_size}
    return config


async def start_transport(app: Any, *, endpoint: int, register: bool) -> EzspTransport:
    """The started :class:`EzspTransport` of ``app`` (the NCP passes inter-PAN frames up
    whatever the endpoint: ``endpoint`` and ``register`` do not apply)."""
    transport = EzspTransport.from_application(app)
    await transport.start()
    return transport


# -- inter-PAN (SE Annex B) ------------------------------------------------------------------

SE_INTERPAN = int(t.EmberMacPassthroughType.MAC_PASSTHROUGH_SE_INTERPAN)
#: What the transport's commands are for, and the stick as named when its firmware lacks one.
_INTERPAN, _TRANSPORT_STICK = "inter-PAN (SE Annex B)", "EZSP stick"
#: ``EMBER_MAC_TRANSMIT_PRIORITY_NORMAL`` / ``SL_802154_TRANSMIT_PRIORITY_NORMAL``.
TRANSMIT_PRIORITY_NORMAL = 1
FIRST_EXTENDED_VERSION = 14


class EzspError(ZseError, OSError):
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
        value_id = t.EzspValueId.VALUE_MAC_PASSTHROUGH_FLAGS
        status, *rest = await _command(
            self._ezsp, "getValue", _INTERPAN, stick=_TRANSPORT_STICK, valueId=value_id
        )
        if int(status) == 0 and rest and rest[0]:
            flags = rest[0][0]
        (status,) = await _command(
            self._ezsp,
            "setValue",
            _INTERPAN,
            stick=_TRANSPORT_STICK,
            valueId=value_id,
            value=bytes([flags | SE_INTERPAN]),
        )
        if int(status) != 0:
            raise EzspError("setValue(VALUE_MAC_PASSTHROUGH_FLAGS)", status)

    async def send(self, frame: InterPanFrame) -> None:
        """Send the whole MAC frame (the NCP appends the FCS)."""
        data = frame.to_bytes()
        if self.ezsp_version >= FIRST_EXTENDED_VERSION:
            what = "sendRawMessageExtended"
            request: dict[str, Any] = {
                "message": data,
                "priority": TRANSMIT_PRIORITY_NORMAL,
                "useCca": True,
            }
        else:
            what, request = "sendRawMessage", {"messageContents": data}
        (status,) = await _command(self._ezsp, what, _INTERPAN, stick=_TRANSPORT_STICK, **request)
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


# -- a HAN device on the NCP (issue #16) ---------------------------------------------------------

#: EmberStatus values of the stack status callback (UG100 "EmberStatus"); a router join the
#: parent refuses ends in CANNOT_JOIN_AS_ROUTER (EZSP < 14; sl_status NOT_JOINED from 14).
NETWORK_UP, NETWORK_DOWN, JOIN_FAILED = 0x90, 0x91, 0x94
CANNOT_JOIN_AS_ROUTER = int(t.EmberStatus.CANNOT_JOIN_AS_ROUTER)
#: The NCP configuration an SE HAN device needs (EZSP configuration is volatile: written after
#: every reset, before the network is up). SE networks are ZigBee PRO (stack profile 2, the
#: firmware default being 0) with NWK security level 5; bellows' ``write_config`` adds its
#: own per-version defaults (key and multicast table sizes among them), as its application
#: does at start-up.
HAN_CONFIG = {"CONFIG_STACK_PROFILE": 2, "CONFIG_SECURITY_LEVEL": 5}
ZIGBEE_PRO = 2
#: ``EMBER_NWK_LEAVE_REQUEST_NOT_ALLOWED`` (``EmberExtendedSecurityBitmask``): the extended
#: security bitmask of Silicon Labs' SE security profiles (``security-config.h``: SE_TEST and
#: SE_FULL ``NODE_EXTENDED_SECURITY_BITMASK``), so a NWK Leave request from another node is
#: ignored; not kept in a token, so set after every reset (``VALUE_EXTENDED_SECURITY_BITMASK``).
NWK_LEAVE_REQUEST_NOT_ALLOWED = 0x0100
#: ``EmberLibraryId`` of the CBKE library per suite (163k1, 283k1) and the "present" bit of
#: ``getLibraryStatus``'s answer (``EMBER_LIBRARY_PRESENT_MASK``; 0xFF is an error).
CBKE_LIBRARY = {1: 0x06, 2: 0x0D}
LIBRARY_PRESENT, LIBRARY_ERROR = 0x80, 0xFF
#: EMBER_LIBRARY_NOT_PRESENT: the firmware lacks the CBKE library a command needs; from EZSP
#: 14 the NCP answers the sl_status_t bellows maps it to (``from_ember_status``: NOT_AVAILABLE).
LIBRARY_NOT_PRESENT = int(t.EmberStatus.LIBRARY_NOT_PRESENT)
LIBRARY_NOT_PRESENT_V14 = int(t.sl_Status.from_ember_status(t.EmberStatus(LIBRARY_NOT_PRESENT)))
#: ``EMBER_APS_OPTION_*`` (UG100): APS encryption, APS retries, route discovery.
APS_ENCRYPTION = int(t.EmberApsOption.APS_OPTION_ENCRYPTION)
APS_RETRY = int(t.EmberApsOption.APS_OPTION_RETRY)
APS_ROUTE_DISCOVERY = int(t.EmberApsOption.APS_OPTION_ENABLE_ROUTE_DISCOVERY)
#: ``EmberInitialSecurityBitmask`` of a device joining with an install-code key (SE 5.4.8.1):
#: a preconfigured (not the global) link key, and the network key only APS-encrypted with it.
JOIN_SECURITY = int(
    t.EmberInitialSecurityBitmask.HAVE_PRECONFIGURED_KEY
    | t.EmberInitialSecurityBitmask.REQUIRE_ENCRYPTED_KEY
)
#: ``generateCbkeKeys``, ``calculateSmacs`` (both suites) and ``dsaSign`` answer "started"
#: (EMBER_OPERATION_IN_PROGRESS; sl_status_t IN_PROGRESS from EZSP 14) before their handler
#: brings the result: Silicon Labs' key establishment plugin treats any other answer to the
#: first two as a failure (``key-establishment.c``: ``!= EMBER_OPERATION_IN_PROGRESS``).
OPERATION_IN_PROGRESS = int(t.EmberStatus.OPERATION_IN_PROGRESS)
IN_PROGRESS_V14 = int(t.sl_Status.IN_PROGRESS)
#: The signature type byte the NCP writes before a signature (0x01, ECDSA) and its size
#: (``EmberSignatureData``: sect163k1 ``r || s``, 21 + 21 bytes).
ECDSA_SIGNATURE, SIGNATURE_SIZE = 0x01, 42
#: ``EmberIncomingMessageType`` values meaning multicast / broadcast.
INCOMING_MULTICAST, INCOMING_BROADCAST = (0x02, 0x03), (0x04, 0x05)
#: How long a join, a rejoin and a scan may take before the stick is given up (seconds).
JOIN_TIMEOUT, SCAN_TIMEOUT, SEND_TIMEOUT, CBKE_TIMEOUT = 30.0, 60.0, 10.0, 30.0
#: The EZSP versions this HAN-device path is written for (:data:`EZSP_VERSIONS`); from 14 the
#: message callbacks' fields have new names and statuses are sl_status_t.
HAN_VERSIONS = EZSP_VERSIONS
#: What the CBKE commands of each suite are for, as said when the firmware lacks one.
_CBKE_NEEDS = {1: "CBKE with suite 1 (sect163k1)", 2: "CBKE with suite 2 (sect283k1)"}
#: EZSP 14+ field names -> the names of EZSP 4-13 used here.
_RENAMED = {
    "message_type": "type",
    "aps_frame": "apsFrame",
    "nwk": "sender",
    "message": "messageContents",
    "message_tag": "messageTag",
    "lqi": "lastHopLqi",
    "rssi": "lastHopRssi",
}
#: The stack statuses that end a join or rejoin attempt besides NETWORK_UP (UG100
#: ``EmberStatus``: "an attempt to join ... failed"; Silicon Labs' framework takes each for a
#: failed join, ``emAfStackStatusHandler``): a stick may report NO_NETWORK_KEY_RECEIVED or
#: NO_BEACONS, not only JOIN_FAILED.
JOIN_FAILURES = frozenset(
    int(status)
    for status in (
        t.EmberStatus.JOIN_FAILED,
        t.EmberStatus.MOVE_FAILED,
        t.EmberStatus.CANNOT_JOIN_AS_ROUTER,
        t.EmberStatus.NO_BEACONS,
        t.EmberStatus.RECEIVED_KEY_IN_THE_CLEAR,
        t.EmberStatus.NO_NETWORK_KEY_RECEIVED,
        t.EmberStatus.NO_LINK_KEY_RECEIVED,
        t.EmberStatus.PRECONFIGURED_KEY_REQUIRED,
    )
)
#: sl_status_t stack statuses (EZSP 14+) -> the EmberStatus values used here, by bellows'
#: ``sl_Status.from_ember_status`` (JOIN_FAILED and CANNOT_JOIN_AS_ROUTER both become
#: NOT_JOINED: read back as JOIN_FAILED).
_SL_STACK_STATUS = {
    int(t.sl_Status.from_ember_status(t.EmberStatus(status))): status
    for status in sorted(JOIN_FAILURES - {JOIN_FAILED, CANNOT_JOIN_AS_ROUTER})
} | {
    int(t.sl_Status.NETWORK_UP): NETWORK_UP,
    int(t.sl_Status.NETWORK_DOWN): NETWORK_DOWN,
    int(t.sl_Status.NOT_JOINED): JOIN_FAILED,
}


def _stack_status_name(status: int) -> str:
    """``0xAD, NO_NETWORK_KEY_RECEIVED``: an EmberStatus with its UG100 name."""
    try:
        return f"0x{status:02X}, {t.EmberStatus(status).name}"
    except ValueError:
        return f"0x{status:02X}"


def _by_name(api: Any, command: str, args: Any) -> dict[str, Any]:
    """A callback's or response's values by field name (bellows' command table), with the
    EZSP 4-13 names whatever the version."""
    _frame_id, _request, fields = api.COMMANDS[command]
    return {_RENAMED.get(name, name): value for name, value in zip(fields, args, strict=False)}


def _request_has(api: Any, command: str, field: str) -> bool:
    _frame_id, request, _response = api.COMMANDS[command]
    return field in request


class EzspHanRadio:
    """A HAN device (router or end device) on an EmberZNet NCP: :class:`zse.radios.han.
    HanRadio` over bellows' :class:`~bellows.ezsp.EZSP` (its EZSP and ASH code, not zigpy's
    coordinator application).

    EZSP 4-19: from 14 (UG600) the message callbacks' fields are renamed and statuses are
    sl_status_t; both are read by name and mapped here. The commands (UG100):
    ``addEndpoint`` before the network is up; ``networkInit`` resumes the network from the
    NCP's tokens; ``startScan(ACTIVE_SCAN)`` reports ``networkFoundHandler`` per beacon and
    ``scanCompleteHandler``; ``clearKeyTable`` (a new join), ``setInitialSecurityState`` with
    the install-code link key then ``joinNetwork`` (MAC association) answer at once, the
    outcome comes as ``stackStatusHandler`` (NETWORK_UP, or JOIN_FAILED or another of
    :data:`JOIN_FAILURES`, such as NO_NETWORK_KEY_RECEIVED);
    ``findAndRejoinNetwork`` rejoins (secured with the current network key, or through the
    Trust Center); ``sendUnicast`` / ``messageSentHandler`` carry APS data out and
    ``incomingMessageHandler`` in; :func:`install_trust_center_link_key` makes CBKE's key the
    Trust Center link key. :meth:`configure` sets the SE configuration after every reset.
    """

    def __init__(self, ezsp: EZSP | None = None, *, name: str = "EZSP stick") -> None:
        self._ezsp: Any = ezsp
        self.name = name
        self._eui64: EUI64 | None = None
        self._incoming: list[Any] = []
        self._down: list[Any] = []
        self._lost: list[Any] = []
        self._status: list[tuple[frozenset[int], asyncio.Future[int]]] = []
        self._sent: dict[int, asyncio.Future[int]] = {}
        self._tag = 0
        self._callback_id: int | None = None
        self._up = False
        self._node_type = t.EmberNodeType.END_DEVICE
        self._trust_center: EUI64 | None = None
        if ezsp is not None:
            self._callback_id = ezsp.add_callback(self._on_callback)  # type: ignore[no-untyped-call]

    @classmethod
    async def open(
        cls, device: str, *, baudrate: int = 115200, flow_control: str | None = None
    ) -> EzspHanRadio:
        """Connect to the stick at ``device`` (a serial port or ``socket://host:port``)."""
        import zigpy.config  # noqa: PLC0415

        config = zigpy.config.SCHEMA_DEVICE(
            {
                zigpy.config.CONF_DEVICE_PATH: device,
                zigpy.config.CONF_DEVICE_BAUDRATE: baudrate,
                zigpy.config.CONF_DEVICE_FLOW_CONTROL: flow_control,
            }
        )
        radio = cls(name=f"EZSP stick {device}")
        ezsp = EZSP(config, application=radio)
        radio._ezsp = ezsp
        radio._callback_id = ezsp.add_callback(radio._on_callback)  # type: ignore[no-untyped-call]
        try:
            await ezsp.connect(use_thread=False)
            check_version(ezsp, role="a HAN device", where=f"{device}: ")
            (eui64,) = await ezsp.getEui64()
            radio._eui64 = EUI64(eui64)
            await radio.configure()
        except BaseException:  # a refusal, a timeout or Ctrl-C: the port is not left open
            with contextlib.suppress(Exception):
                await ezsp.disconnect()  # type: ignore[no-untyped-call]
            raise
        return radio

    async def configure(self) -> None:
        """Configure the NCP as an SE HAN device, before its network is up (bellows'
        application does the same for a coordinator): :data:`HAN_CONFIG` through bellows'
        ``write_config`` (``setConfigurationValue``), checked, and
        :data:`NWK_LEAVE_REQUEST_NOT_ALLOWED` added to the extended security bitmask."""
        await self._ezsp.write_config(dict(HAN_CONFIG))
        for name, wanted in HAN_CONFIG.items():  # bellows only logs a refused value
            config_id = getattr(t.EzspConfigId, name)
            status, value = await self._ezsp.getConfigurationValue(configId=config_id)
            if int(status) != SUCCESS or int(value) != wanted:
                raise JoinFailed(
                    f"{self.name}: the stick did not take {name} = {wanted} (it has {int(value)}; "
                    f"status 0x{int(status):02X}), which a Smart Energy network needs",
                    status=int(status),
                )
        value_id = t.EzspValueId.VALUE_EXTENDED_SECURITY_BITMASK
        status, *rest = await self._ezsp.getValue(valueId=value_id)
        current = bytes(rest[0]) if int(status) == SUCCESS and rest else b""
        bitmask = int.from_bytes(current[:2].ljust(2, b"\x00"), "little")
        (status,) = await self._ezsp.setValue(
            valueId=value_id,
            value=(bitmask | NWK_LEAVE_REQUEST_NOT_ALLOWED).to_bytes(2, "little"),
        )
        if int(status) != SUCCESS:
            raise EzspError("setValue(VALUE_EXTENDED_SECURITY_BITMASK)", status)

    @property
    def eui64(self) -> EUI64:
        if self._eui64 is None:
            raise RadioGone(f"{self.name}: not connected")
        return self._eui64

    async def refresh_eui64(self) -> EUI64:
        """Ask the NCP its EUI-64 (``getEui64``)."""
        (eui64,) = await self._ezsp.getEui64()
        self._eui64 = EUI64(eui64)
        return self._eui64

    # -- bellows calls these (application=self) ---------------------------------------------

    def connection_lost(self, exc: Exception | None) -> None:
        """The serial link is gone: every waiter fails, listeners are told."""
        self._up = False
        error = RadioGone(f"{self.name}: the serial link was lost ({exc or 'closed'})")
        for _wanted, future in self._status:
            if not future.done():
                future.set_exception(error)
        for future in self._sent.values():
            if not future.done():
                future.set_exception(error)
        for callback in list(self._lost):
            callback(exc)

    def on_lost(self, callback: Callable[[Exception | None], None]) -> Callable[[], None]:
        return subscribe(self._lost, callback)

    def on_incoming(self, callback: Callable[[Incoming], None]) -> Callable[[], None]:
        return subscribe(self._incoming, callback)

    def on_network_down(self, callback: Callable[[], None]) -> Callable[[], None]:
        return subscribe(self._down, callback)

    # -- the network ------------------------------------------------------------------------

    async def register_endpoint(self, descriptor: Any) -> None:
        """``addEndpoint``: the NCP accepts it only before its network is up."""
        ins, outs = list(descriptor.input_clusters), list(descriptor.output_clusters)
        (status,) = await self._ezsp.addEndpoint(
            endpoint=descriptor.endpoint,
            profileId=descriptor.profile,
            deviceId=descriptor.device_type,
            deviceVersion=descriptor.device_version,
            inputClusterCount=len(ins),
            outputClusterCount=len(outs),
            inputClusterList=ins,
            outputClusterList=outs,
        )
        if int(status) != SUCCESS:
            raise EzspError(f"addEndpoint({descriptor.endpoint})", status)

    async def resume(self) -> NetworkState | None:
        """``networkInit``: the network the NCP's tokens hold, brought up; None if none."""
        with self._stack_status({NETWORK_UP, NETWORK_DOWN, *JOIN_FAILURES}) as outcome:
            # EZSP 6 added the init options: keep the parent in a token, rejoin on reboot
            _frame_id, request, _response = self._ezsp.COMMANDS["networkInit"]
            options = {"networkInitBitmask": 0x0003} if request else {}
            (status,) = await self._ezsp.networkInit(**options)
            if int(status) != SUCCESS:
                return None
            if await self._within(outcome, JOIN_TIMEOUT, "networkInit") != NETWORK_UP:
                return None
        return await self._state()

    async def scan(self, channels: tuple[int, ...]) -> list[FoundNetwork]:
        """Active scan of ``channels``: the networks that answered. bellows' ``startScan``
        collects the ``networkFoundHandler`` callbacks until ``scanCompleteHandler``."""
        mask = sum(1 << channel for channel in channels)
        scan = self._ezsp.startScan(
            scanType=t.EzspNetworkScanType.ACTIVE_SCAN, channelMask=mask, duration=3
        )
        try:
            async with asyncio.timeout(SCAN_TIMEOUT):
                results = await scan
        except TimeoutError:
            raise JoinFailed(
                f"{self.name}: the scan did not end within {SCAN_TIMEOUT:g} s"
            ) from None
        except (RadioGone, EzspError):
            raise
        except Exception as exc:  # bellows raises a bare Exception with the failing status
            raise JoinFailed(f"{self.name}: the scan failed ({exc})") from None
        found = []
        for network, lqi, rssi in (result[:3] for result in results):
            if int(network.stackProfile) != ZIGBEE_PRO:  # SE networks are ZigBee PRO
                LOGGER.debug(
                    "%s: PAN 0x%04X ignored: stack profile %d, not ZigBee PRO",
                    self.name,
                    int(network.panId),
                    int(network.stackProfile),
                )
                continue
            found.append(
                FoundNetwork(
                    channel=int(network.channel),
                    pan_id=int(network.panId),
                    extended_pan_id=t.ExtendedPanId(bytes(network.extendedPanId.serialize())),
                    permit_joining=bool(network.allowingJoin),
                    lqi=int(lqi),
                    rssi=int(rssi),
                )
            )
        return found

    async def join(self, network: FoundNetwork, *, link_key: bytes, router: bool) -> NetworkState:
        """``clearKeyTable``, ``setInitialSecurityState`` (the install-code key) then
        ``joinNetwork``. A new join starts with an empty key table, as Silicon Labs' own
        framework does before it forms or joins (``emAfClearLinkKeyTable``,
        ``af-security-common.c``): the link keys of a network the stick was on before (another
        meter's) are not carried into this one."""
        (status,) = await self._ezsp.clearKeyTable()
        if int(status) != SUCCESS:
            raise EzspError("clearKeyTable", status)
        state = t.EmberInitialSecurityState(
            bitmask=JOIN_SECURITY,
            preconfiguredKey=t.KeyData(link_key),
            networkKey=t.KeyData(bytes(16)),
            networkKeySequenceNumber=0,
            preconfiguredTrustCenterEui64=EUI64(bytes(8)),
        )
        (status,) = await self._ezsp.setInitialSecurityState(state=state)
        if int(status) != SUCCESS:
            raise EzspError("setInitialSecurityState", status)
        parameters = t.EmberNetworkParameters(
            extendedPanId=network.extended_pan_id,
            panId=network.pan_id,
            radioTxPower=8,
            radioChannel=network.channel,
            joinMethod=t.EmberJoinMethod.USE_MAC_ASSOCIATION,
            nwkManagerId=0,
            nwkUpdateId=0,
            channels=1 << network.channel,
        )
        node_type = t.EmberNodeType.ROUTER if router else t.EmberNodeType.END_DEVICE
        self._node_type = node_type
        with self._stack_status({NETWORK_UP, NETWORK_DOWN, *JOIN_FAILURES}) as outcome:
            (status,) = await self._ezsp.joinNetwork(nodeType=node_type, parameters=parameters)
            if int(status) != SUCCESS:
                raise JoinFailed(
                    f"{self.name}: joinNetwork refused (0x{int(status):02X})", status=int(status)
                )
            result = await self._within(outcome, JOIN_TIMEOUT, "joinNetwork")
        if result == CANNOT_JOIN_AS_ROUTER:
            raise self._no_routers(result)
        if result != NETWORK_UP:
            raise JoinFailed(
                f"{self.name}: the meter refused the join (stack status "
                f"{_stack_status_name(result)}): is the install code registered with the "
                "meter, and joining permitted?",
                status=result,
            )
        return await self._state()

    async def rejoin(self, *, have_network_key: bool, channels: tuple[int, ...]) -> NetworkState:
        """``findAndRejoinNetwork``: a secure rejoin (``have_network_key``) or a Trust Center
        rejoin (ZB 3.6.1.4.2). The stack first reports the network down, then tries (ezsp.h):
        the outcome is the NETWORK_UP or join failure (:data:`JOIN_FAILURES`) after that."""
        mask = sum(1 << channel for channel in channels)
        with self._stack_status({NETWORK_UP, *JOIN_FAILURES}) as outcome:
            more: dict[str, Any] = {}
            if _request_has(self._ezsp, "findAndRejoinNetwork", "reason"):  # EZSP 14+
                more = {"reason": 0, "nodeType": self._node_type}
            (status,) = await self._ezsp.findAndRejoinNetwork(
                haveCurrentNetworkKey=have_network_key, channelMask=mask, **more
            )
            if int(status) != SUCCESS:
                raise JoinFailed(
                    f"{self.name}: findAndRejoinNetwork refused (0x{int(status):02X})",
                    status=int(status),
                )
            result = await self._within(outcome, JOIN_TIMEOUT, "findAndRejoinNetwork")
        if result == CANNOT_JOIN_AS_ROUTER:
            raise self._no_routers(result)
        if result != NETWORK_UP:
            raise JoinFailed(
                f"{self.name}: rejoin failed (stack status {_stack_status_name(result)})",
                status=result,
            )
        return await self._state()

    def _no_routers(self, status: int) -> JoinFailed:
        return JoinFailed(
            f"{self.name}: the meter does not accept routers (stack status 0x{status:02X}, "
            "CANNOT_JOIN_AS_ROUTER): join as an end device (without --router)",
            status=status,
        )

    async def leave(self) -> None:
        """``leaveNetwork``: bellows' ``EZSP.leaveNetwork`` sends it and waits for NETWORK_DOWN
        itself (it returns nothing). A refusal (not joined) leaves nothing to do."""
        try:
            await self._ezsp.leaveNetwork(timeout=JOIN_TIMEOUT)
        except TimeoutError:
            raise JoinFailed(
                f"{self.name}: no answer to leaveNetwork within {JOIN_TIMEOUT:g} s"
            ) from None
        except BellowsEzspError as exc:
            LOGGER.debug("%s: leaveNetwork refused (%s)", self.name, exc)

    async def _state(self) -> NetworkState:
        (nwk,) = await self._ezsp.getNodeId()
        status, _node_type, parameters = await self._ezsp.getNetworkParameters()
        if int(status) != SUCCESS:
            raise EzspError("getNetworkParameters", status)
        status, security = await self._ezsp.getCurrentSecurityState()
        if int(status) != SUCCESS:
            raise EzspError("getCurrentSecurityState", status)
        self._up = True
        self._trust_center = EUI64(security.trustCenterLongAddress)
        return NetworkState(
            nwk=int(nwk),
            pan_id=int(parameters.panId),
            extended_pan_id=t.ExtendedPanId(bytes(parameters.extendedPanId.serialize())),
            channel=int(parameters.radioChannel),
            trust_center=self._trust_center,
        )

    # -- data ---------------------------------------------------------------------------------

    async def send(
        self,
        *,
        dst_nwk: int,
        profile_id: int,
        cluster_id: int,
        src_ep: int,
        dst_ep: int,
        payload: bytes,
        encrypt: bool,
    ) -> None:
        """``sendUnicast``, then wait for ``messageSentHandler`` (delivered or not)."""
        options = APS_RETRY | APS_ROUTE_DISCOVERY | (APS_ENCRYPTION if encrypt else 0)
        self._tag = (self._tag + 1) & 0xFF
        tag = self._tag
        frame = t.EmberApsFrame(
            profileId=profile_id,
            clusterId=cluster_id,
            sourceEndpoint=src_ep,
            destinationEndpoint=dst_ep,
            options=t.EmberApsOption(options),
            groupId=0,
            sequence=0,
        )
        sent: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._sent[tag] = sent
        try:
            status, _sequence = await self._ezsp.sendUnicast(
                t.EmberOutgoingMessageType.OUTGOING_DIRECT, dst_nwk, frame, tag, payload
            )
            if int(status) != SUCCESS:
                raise EzspError(f"sendUnicast to 0x{dst_nwk:04X}", status)
            outcome = await self._within(sent, SEND_TIMEOUT, "messageSentHandler")
        finally:
            self._sent.pop(tag, None)
        if outcome != SUCCESS:
            raise DeliveryError(
                f"no APS acknowledgement from 0x{dst_nwk:04X} (0x{outcome:02X})", status=outcome
            )

    async def install_link_key(self, partner: EUI64, key: bytes) -> None:
        """The key CBKE established in the host with ``partner``, the Trust Center, as the
        NCP's Trust Center link key (:func:`install_trust_center_link_key`; not its key
        table, which EmberZNet does not use for the Trust Center)."""
        if self._trust_center is None or partner != self._trust_center:
            raise LinkKeyInstallError(
                f"{self.name}: a HAN device keys only with its Trust Center "
                f"({self._trust_center}), not {partner}",
                command="importKey(TC_LINK)",
            )
        await install_trust_center_link_key(self._ezsp, partner, key)

    def host_cbke_problem(self) -> str | None:
        """Why CBKE in the host cannot be used with this NCP (None: it can): its key must
        become the Trust Center link key, which only EZSP 12+ can write."""
        if "importKey" in self._ezsp.COMMANDS:
            return None
        return (
            f"its firmware (EZSP {int(self._ezsp.ezsp_version)}) cannot take a key computed in "
            f"the host as its Trust Center link key (that needs EZSP {FIRST_IMPORT_KEY_VERSION} "
            "or later): use a stick that holds its own CBKE certificate, or newer firmware"
        )

    async def add_group(self, index: int, group_id: int, endpoint: int) -> None:
        """``setMulticastTableEntry``: the NCP passes frames for ``group_id`` to ``endpoint``
        (an NCP drops group frames its multicast table does not name)."""
        entry = t.EmberMulticastTableEntry(multicastId=group_id, endpoint=endpoint, networkIndex=0)
        (status,) = await self._ezsp.setMulticastTableEntry(index=index, value=entry)
        if int(status) != SUCCESS:
            raise EzspError(f"setMulticastTableEntry({index})", status)

    async def certificates(self) -> list[StickCertificate]:
        """The CBKE certificates the NCP holds in its manufacturing tokens (``getCertificate``,
        ``getCertificate283k1``) and can use: a command the firmware lacks, an empty token or
        a suite whose CBKE library the firmware was built without (``getLibraryStatus``, as
        the zsmartsystems EZSP CBKE provider asks) is none."""
        held: list[StickCertificate] = []
        for suite, command in ((2, "getCertificate283k1"), (1, "getCertificate")):
            if command not in self._ezsp.COMMANDS:
                continue
            if not await self._library_present(suite):
                LOGGER.info("%s: no CBKE library for suite %d in its firmware", self.name, suite)
                continue
            try:
                status, certificate = await getattr(self._ezsp, command)()
            except (InvalidCommandError, ValueError):
                continue
            data = bytes(certificate)
            if int(status) == SUCCESS and data.strip(b"\xff") and data.strip(b"\x00"):
                held.append(StickCertificate(suite=suite, certificate=data))
        return held

    async def _library_present(self, suite: int) -> bool:
        try:
            (status,) = await self._ezsp.getLibraryStatus(libraryId=CBKE_LIBRARY[suite])
        except (InvalidCommandError, ValueError):
            return False
        return int(status) != LIBRARY_ERROR and bool(int(status) & LIBRARY_PRESENT)

    # -- CBKE inside the NCP (UG100 "Certificate Based Key Exchange") --------------------------

    async def cbke_generate(self, suite: int) -> bytes:
        """``generateCbkeKeys`` (suite 1) / ``generateCbkeKeys283k1`` (suite 2): the NCP makes
        an ephemeral key pair and reports the public key in its handler."""
        name = "generateCbkeKeys" if suite == 1 else "generateCbkeKeys283k1"
        status, key = await self._cbke_call(
            name,
            f"{name}Handler" if suite == 1 else "generateCbkeKeysHandler283k1",
            _CBKE_NEEDS[suite],
            queued=self._in_progress(),
        )
        if status != SUCCESS:
            raise EzspError(f"{name} (handler)", status)
        return bytes(key)

    async def cbke_smacs(
        self, suite: int, *, initiator: bool, partner_certificate: bytes, partner_ephemeral: bytes
    ) -> tuple[int, bytes, bytes]:
        """``calculateSmacs`` / ``calculateSmacs283k1``: the NCP checks the partner's
        certificate, computes the key and both MACs; (handler status, MACU, MACV)."""
        if suite == 1:
            name, handler = "calculateSmacs", "calculateSmacsHandler"
            certificate: Any = t.EmberCertificateData(partner_certificate)
            ephemeral: Any = t.EmberPublicKeyData(partner_ephemeral)
        else:
            name, handler = "calculateSmacs283k1", "calculateSmacsHandler283k1"
            certificate = t.EmberCertificate283k1Data(partner_certificate)
            ephemeral = t.EmberPublicKey283k1Data(partner_ephemeral)
        status, initiator_smac, responder_smac = await self._cbke_call(
            name,
            handler,
            _CBKE_NEEDS[suite],
            queued=self._in_progress(),
            amInitiator=initiator,
            partnerCertificate=certificate,
            partnerEphemeralPublicKey=ephemeral,
        )
        return status, bytes(initiator_smac), bytes(responder_smac)

    async def cbke_finish(self, suite: int, *, store: bool) -> None:
        """``clearTemporaryDataMaybeStoreLinkKey[283k1]``: keep the key as the Trust Center
        link key (``store``) or forget it, and drop the ephemeral data either way."""
        name = (
            "clearTemporaryDataMaybeStoreLinkKey"
            if suite == 1
            else "clearTemporaryDataMaybeStoreLinkKey283k1"
        )
        (status,) = await _command(
            self._ezsp, name, _CBKE_NEEDS[suite], stick=self.name, storeLinkKey=store
        )
        if int(status) != SUCCESS:
            raise EzspError(name, status)

    async def dsa_sign(self, message: bytes) -> bytes:
        """``dsaSign``: the NCP signs ``message`` with its own suite-1 (sect163k1) private key
        and answers in ``dsaSignHandler``; the 42-byte ECDSA signature ``r || s``.

        EmberZNet's convention (ezsp.h, ``ezspDsaSign``): the last byte sent is the index of
        the first byte to sign (0 here: all of it); the NCP replaces it with the signature
        type 0x01 (ECDSA), signs everything including that byte (AES-MMO digest, SE C.2) and
        returns it with the signature appended. So ``message`` must end in 0x01, as a Report
        Event Status's signed fields do (SE D.2.3.3.1.1.11). EZSP has no suite-2 signing
        command (only ``dsaVerify283k1``)."""
        if not message or message[-1] != ECDSA_SIGNATURE:
            raise ValueError("dsaSign signs only data ending in the signature type 0x01")
        status, signed = await self._cbke_call(
            "dsaSign",
            "dsaSignHandler",
            "signing with the stick's own suite-1 key",
            queued=self._in_progress(),
            messageContents=message[:-1] + b"\x00",
        )
        if status != SUCCESS:
            raise EzspError("dsaSign (handler)", status)
        signed = bytes(signed)
        if len(signed) != len(message) + SIGNATURE_SIZE or not signed.startswith(message):
            raise EzspError("dsaSign (handler: not the message sent, signed)", status)
        return signed[len(message) :]

    def _no_library(self) -> int:
        """The status meaning "no CBKE library in the firmware" in this EZSP version."""
        new = int(self._ezsp.ezsp_version) >= FIRST_EXTENDED_VERSION
        return LIBRARY_NOT_PRESENT_V14 if new else LIBRARY_NOT_PRESENT

    def _in_progress(self) -> int:
        """The status meaning "started, the handler follows" in this EZSP version."""
        new = int(self._ezsp.ezsp_version) >= FIRST_EXTENDED_VERSION
        return IN_PROGRESS_V14 if new else OPERATION_IN_PROGRESS

    async def _cbke_call(
        self, name: str, handler: str, need: str, *, queued: int = SUCCESS, **request: Any
    ) -> tuple[Any, ...]:
        answer: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()

        def on_callback(frame_name: str, args: list[Any]) -> None:
            if frame_name == handler and not answer.done():
                answer.set_result((int(args[0]), *args[1:]))

        callback = self._ezsp.add_callback(on_callback)
        try:
            (status,) = await _command(self._ezsp, name, need, stick=self.name, **request)
            if int(status) == self._no_library():
                raise EzspError(f"{name} (the stick's firmware has no CBKE library for it)", status)
            if int(status) not in (SUCCESS, queued):
                raise EzspError(name, status)
            return await self._within(answer, CBKE_TIMEOUT, handler)
        finally:
            self._ezsp.remove_callback(callback)

    async def close(self) -> None:
        if self._callback_id is not None and self._ezsp is not None:
            self._ezsp.remove_callback(self._callback_id)
            self._callback_id = None
        if self._ezsp is not None:
            await self._ezsp.disconnect()

    # -- callbacks ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _stack_status(self, wanted: set[int]) -> Iterator[asyncio.Future[int]]:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        entry = (frozenset(wanted), future)
        self._status.append(entry)
        try:
            yield future
        finally:
            self._status.remove(entry)

    async def _within(self, future: asyncio.Future[_T], timeout: float, what: str) -> _T:
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise JoinFailed(f"{self.name}: no answer to {what} within {timeout:g} s") from None

    def _on_callback(self, frame_name: str, args: list[Any]) -> None:
        if frame_name == "stackStatusHandler":
            status = int(args[0])
            if int(self._ezsp.ezsp_version) >= FIRST_EXTENDED_VERSION:
                status = _SL_STACK_STATUS.get(status, status)
            for wanted, future in list(self._status):
                if status in wanted and not future.done():
                    future.set_result(status)
            if status == NETWORK_DOWN and self._up:
                self._up = False
                for callback in list(self._down):
                    callback()
        elif frame_name == "messageSentHandler":
            fields = _by_name(self._ezsp, "messageSentHandler", args)
            sent = self._sent.get(int(fields["messageTag"]))
            if sent is not None and not sent.done():
                sent.set_result(int(fields["status"]))
        elif frame_name == "incomingMessageHandler":
            self._deliver(_by_name(self._ezsp, "incomingMessageHandler", args))

    def _deliver(self, fields: dict[str, Any]) -> None:
        aps, kind = fields["apsFrame"], int(fields["type"])
        incoming = Incoming(
            src_nwk=int(fields["sender"]),
            src_ep=int(aps.sourceEndpoint),
            dst_ep=int(aps.destinationEndpoint),
            cluster_id=int(aps.clusterId),
            profile_id=int(aps.profileId),
            payload=bytes(fields["messageContents"]),
            aps_encrypted=bool(int(aps.options) & APS_ENCRYPTION),
            broadcast=kind in INCOMING_BROADCAST,
            group=int(aps.groupId) if kind in INCOMING_MULTICAST else None,
            lqi=int(fields["lastHopLqi"]),
            rssi=int(fields["lastHopRssi"]),
        )
        for callback in list(self._incoming):
            callback(incoming)
