"""Inter-PAN transports: one small interface, one module per radio, imported lazily.

Every transport sends an :class:`~zse.interpan.InterPanFrame` with :meth:`send` and yields the
frames it receives when iterated with ``async for``. The radio transports live in
:mod:`zse.radios` with the rest of each radio's code, so that one module per radio is the only
place that touches that radio library:

- :class:`EzspTransport` (``zse.radios.ezsp``, extra ``ezsp``): bellows;
- :class:`ZnpTransport` (``zse.radios.znp``, extra ``znp``): zigpy-znp;
- :class:`SimTransport` (``zse.interpan.transports.sim``): the simulator's air.

Importing this package imports none of them; ``from zse.interpan.transports import
EzspTransport`` imports bellows at that moment.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from zse.interpan.transports._base import InterPanTransport, ReceiveQueue

if TYPE_CHECKING:
    from zse.interpan.transports.sim import SimTransport
    from zse.radios.ezsp import EzspTransport
    from zse.radios.znp import ZnpTransport

__all__ = ["EzspTransport", "InterPanTransport", "ReceiveQueue", "SimTransport", "ZnpTransport"]

_LAZY = {
    "EzspTransport": "zse.radios.ezsp",
    "ZnpTransport": "zse.radios.znp",
    "SimTransport": "zse.interpan.transports.sim",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
