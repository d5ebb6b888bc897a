"""Installing an APS link key with one partner on the radio that runs a zigpy application.

zigpy has no call that replaces the link key a coordinator shares with one device, yet Smart
Energy needs exactly that after Key Establishment (SE Annex C: KeyData becomes the partners'
link key), since SE application traffic is APS-encrypted with it (SE 5.4.6). This package does
it per radio:

- the simulator's :class:`~zse.sim.SimControllerApplication` (anything with a
  ``set_link_key(partner, key)`` method): that method;
- bellows (``ezsp`` extra): :func:`zse.radios.ezsp.install_link_key` on the application's EZSP
  object (the NCP's key table);
- zigpy-znp (``znp`` extra): :func:`zse.radios.znp.install_link_key` on the application's ZNP
  object (Z-Stack's ``ZDO.SetLinkKey``), with the partner's NWK address from zigpy's device
  list.

Removing a device (:func:`remove_link_key`, called when a device is de-provisioned) erases what
the Trust Center holds for it, per radio: the simulator's ``remove_link_key``; on EmberZNet the
partner's key-table entry (``findKeyTableEntry`` + ``eraseKeyTableEntry``); on Z-Stack its
security-manager entry (``ZDO.RemoveLinkKey``). Without it a removed device keeps a valid link
key at the Trust Center (it can Trust-Center-rejoin) and every device admitted and removed uses
up a key-table entry.

Starting a coordinator (``zse esi``, ``zse interpan``, ``zse headend``): each radio module is
a :class:`CoordinatorRadio` (:func:`coordinator_radio` gives it for ``--radio``), so every
setting a radio library needs for Smart Energy (its application class, its configuration, its
inter-PAN transport) is in that radio's module and the command line stays radio-neutral.

Importing this package imports neither bellows nor zigpy-znp: a radio module is imported when
an application of that radio is first given to :func:`install_link_key`, or its radio is
asked for by :func:`coordinator_radio`. Each radio module is the only place in zse that
touches that library.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast

from zigpy.types import EUI64

from zse.errors import DecodeError, ZseError

if TYPE_CHECKING:
    from zse.config import RadioSettings

__all__ = [
    "COORDINATOR_MODULES",
    "SUPPORTED_RADIOS",
    "CoordinatorRadio",
    "KeyTableFull",
    "LinkKeyInstallError",
    "UnsupportedRadio",
    "coordinator_radio",
    "coordinator_radio_of",
    "install_failure",
    "install_link_key",
    "link_key_installer",
    "radio_of",
    "remove_link_key",
]

#: What :func:`install_link_key` knows how to drive.
SUPPORTED_RADIOS = (
    "the zse simulator (set_link_key)",
    "bellows (EZSP, Silicon Labs EmberZNet NCP)",
    "zigpy-znp (Z-Stack, TI coprocessor)",
)

LINK_KEY_LENGTH = 16

# The library whose application class (or a base of it) identifies the radio -> zse module.
_RADIO_MODULES = {"bellows": "zse.radios.ezsp", "zigpy_znp": "zse.radios.znp"}
#: ``--radio`` (:data:`zse.config.RADIOS`) -> the module holding that radio's quirks.
COORDINATOR_MODULES = {"ezsp": "zse.radios.ezsp", "znp": "zse.radios.znp"}


class CoordinatorRadio(Protocol):
    """What a radio module gives for running a Smart Energy coordinator on its library."""

    def coordinator_class(self, descriptors: Sequence[Any] = ()) -> type[Any]:
        """The library's zigpy ``ControllerApplication`` class for an ESI whose endpoints
        are ``descriptors`` (zigpy ``SimpleDescriptor``; empty: no SE endpoint at start)."""
        ...

    def library_config(self, settings: RadioSettings) -> dict[str, Any]:
        """The library's own zigpy configuration keys for ``settings``."""
        ...

    async def start_transport(self, app: Any, *, endpoint: int, register: bool) -> Any:
        """The started inter-PAN transport of ``app`` on the SE ``endpoint`` (``register``:
        register that endpoint with the radio first, where the radio needs it)."""
        ...


def coordinator_radio(radio: str) -> CoordinatorRadio:
    """The radio module of ``radio`` ("ezsp", "znp"); importing it imports the radio library,
    so :class:`ImportError` when that extra is not installed, :class:`KeyError` for a radio
    zse does not drive."""
    return cast(CoordinatorRadio, importlib.import_module(COORDINATOR_MODULES[radio]))


def coordinator_radio_of(app: object) -> CoordinatorRadio | None:
    """The radio module of a running application (None: the simulator's);
    :class:`UnsupportedRadio` for another."""
    library = radio_of(app)
    if library == "sim":
        return None
    return cast(CoordinatorRadio, importlib.import_module(_RADIO_MODULES[library]))


class UnsupportedRadio(ZseError, TypeError):
    """The application runs on a radio for which zse cannot install link keys."""


class LinkKeyInstallError(ZseError, OSError):
    """The radio refused to install the link key; ``status`` is the radio's own status code
    (EmberStatus, sl_status_t or Z-Stack ZStatus) and ``command`` the command that failed."""

    def __init__(self, message: str, *, command: str, status: int | None = None) -> None:
        super().__init__(message)
        self.command = command
        self.status = status


class KeyTableFull(LinkKeyInstallError):
    """The radio's key table has no entry for the partner and no free entry for it."""


def install_failure(what: str, exc: Exception, *, command: str) -> LinkKeyInstallError:
    """A :class:`LinkKeyInstallError` for the radio library's exception ``exc`` raised by a
    call that carried a key: ``what`` failed, with ``exc``'s type (and its numeric status, if
    it has one) and nothing of its message. Radio libraries quote the request they failed on
    (zigpy-znp: ``Fatal request error ... in response to ZDO.SetLinkKey.Req(...,
    LinkKeyData=...)``), and that request holds the key. Raise it ``from None``, so a logged
    traceback does not show the original either."""
    status = getattr(exc, "status", None)
    number = int(status) if isinstance(status, int) else None
    told = "" if number is None else f", status 0x{number:02X}"
    return LinkKeyInstallError(
        f"{what} failed: {type(exc).__name__}{told} (the radio library's message is not "
        "shown: it may quote the key)",
        command=command,
        status=number,
    )


def radio_of(app: object) -> str:
    """``"bellows"``, ``"zigpy_znp"`` or ``"sim"`` for ``app``; :class:`UnsupportedRadio`
    otherwise. The radio libraries are recognised by module name, so none is imported here."""
    for cls in type(app).__mro__:
        library = cls.__module__.partition(".")[0]
        if library in _RADIO_MODULES:
            return library
    if callable(getattr(app, "set_link_key", None)):
        return "sim"
    raise UnsupportedRadio(
        f"cannot install link keys on {type(app).__module__}.{type(app).__qualname__}: "
        f"supported radios are {', '.join(SUPPORTED_RADIOS)}"
    )


def _check_key(key: bytes) -> bytes:
    key = bytes(key)
    if len(key) != LINK_KEY_LENGTH:
        raise DecodeError(f"a link key is {LINK_KEY_LENGTH} bytes, got {len(key)}")
    return key


async def install_link_key(app: Any, partner: EUI64, key: bytes) -> None:
    """Make ``key`` the APS link key ``app``'s coordinator shares with ``partner``.

    Raises :class:`UnsupportedRadio` for an unknown radio, :class:`KeyTableFull` or
    :class:`LinkKeyInstallError` (with the radio's status) when the radio refuses, and
    :class:`~zse.errors.DecodeError` for a key that is not 16 bytes.
    """
    radio = radio_of(app)
    key = _check_key(key)
    partner = EUI64(partner)
    if radio == "sim":
        result = app.set_link_key(partner, key)
        if inspect.isawaitable(result):
            await result
        return
    module: Any = importlib.import_module(_RADIO_MODULES[radio])
    await module.install_for_application(app, partner, key)


async def remove_link_key(app: Any, partner: EUI64) -> bool:
    """Erase every link key ``app``'s Trust Center holds for ``partner`` (the key CBKE gave it
    and, where the radio can, its pending install-code key); True if one was held, False if
    none was (not an error: erasing again is harmless). Raises :class:`UnsupportedRadio` for
    an unknown radio and :class:`LinkKeyInstallError` (with the radio's status, never its
    message) when the radio refuses or fails (the simulator's radio not connected included)."""
    radio = radio_of(app)
    partner = EUI64(partner)
    if radio == "sim":
        try:
            result = app.remove_link_key(partner)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:  # a radio not connected: refused as the others' are
            raise install_failure(
                f"the simulator's remove_link_key for {partner}", exc, command="remove_link_key"
            ) from None
        return bool(result)
    module: Any = importlib.import_module(_RADIO_MODULES[radio])
    return bool(await module.remove_for_application(app, partner))


def link_key_installer(app: Any) -> Callable[[EUI64, bytes], Awaitable[None]]:
    """A callable for ``KeyEstablishmentServer(..., install_key=...)`` / ``establish_key``.

    The radio is checked now, so an unsupported application fails at set-up rather than at
    the end of the first successful key establishment.
    """
    radio_of(app)

    def install(partner: EUI64, key: bytes) -> Awaitable[None]:
        return install_link_key(app, partner, key)

    return install
