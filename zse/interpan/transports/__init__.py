"""Inter-PAN transports: one small interface, and the simulator's transport.

Every transport sends an :class:`~zse.interpan.InterPanFrame` with :meth:`send` and yields the
frames it receives when iterated with ``async for``. The radio transports live in
:mod:`zse.radios` with the rest of each radio's code (one module per radio is the only place
that touches that radio library), and this package never imports them:

- :class:`~zse.radios.ezsp.EzspTransport` (``zse.radios.ezsp``, extra ``ezsp``): bellows;
- :class:`~zse.radios.znp.ZnpTransport` (``zse.radios.znp``, extra ``znp``): zigpy-znp;
- :class:`SimTransport` (``zse.interpan.transports.sim``): the simulator's air.

``from zse.interpan.transports import EzspTransport`` (or ``ZnpTransport``), the earlier path,
still works for one release with a :class:`DeprecationWarning`: the class is found through
the ``zse.interpan.transports`` entry points the radios declare in the distribution's metadata,
not through an import of :mod:`zse.radios` (docs/adr/0004-interpan-radio-transports.md).
"""

from __future__ import annotations

import warnings
from importlib.metadata import entry_points
from typing import Any

from zse.interpan.transports._base import (
    InterPanTransport,
    ReceiveQueue,
    SecuredInterPanUnsupported,
)
from zse.interpan.transports.sim import SimTransport

__all__ = ["InterPanTransport", "ReceiveQueue", "SecuredInterPanUnsupported", "SimTransport"]

#: The entry-point group in which a radio module declares its inter-PAN transport class.
ENTRY_POINT_GROUP = "zse.interpan.transports"


def __getattr__(name: str) -> Any:
    """The deprecated names: a transport class a radio declares under ``name``."""
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    home = found[0].value.partition(":")[0]
    warnings.warn(
        f"importing {name} from {__name__} is deprecated: import it from {home}",
        DeprecationWarning,
        stacklevel=2,
    )
    return found[0].load()
