"""Inter-PAN transports: one small interface, one module per radio, imported lazily.

Every transport sends an :class:`~zse.interpan.InterPanFrame` with :meth:`send` and yields the
frames it receives when iterated with ``async for``. Each radio module is the only place that
touches that radio library's internals:

- :class:`EzspTransport` (``zse.interpan.transports.ezsp``, extra ``ezsp``): bellows;
- :class:`ZnpTransport` (``zse.interpan.transports.znp``, extra ``znp``): zigpy-znp;
- :class:`SimTransport` (``zse.interpan.transports.sim``): the simulator's air.

Importing this package imports none of them; ``from zse.interpan.transports import
EzspTransport`` imports bellows at that moment.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from zse.interpan.transports._base import InterPanTransport, ReceiveQueue

if TYPE_CHECKING:
    from zse.interpan.transports.ezsp import EzspTransport
    from zse.interpan.transports.sim import SimTransport
    from zse.interpan.transports.znp import ZnpTransport

__all__ = ["EzspTransport", "InterPanTransport", "ReceiveQueue", "SimTransport", "ZnpTransport"]

_LAZY = {
    "EzspTransport": "zse.interpan.transports.ezsp",
    "ZnpTransport": "zse.interpan.transports.znp",
    "SimTransport": "zse.interpan.transports.sim",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
