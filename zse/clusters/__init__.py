"""Deprecated (#13): the SE cluster wire definitions moved to their feature packages.

``Drlc`` is :mod:`zse.drlc.wire`, ``Messaging`` :mod:`zse.messaging.wire`, ``Price``
:mod:`zse.price.wire`, and ``command_def`` / ``decode_command`` / ``encode_command``
:mod:`zse.zcl.codec` (Key Establishment's wire is :mod:`zse.cbke.messages`). Every name still
resolves here, and every submodule still imports, with a :class:`DeprecationWarning`, for one
release.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

from zse._moved import install

__all__ = [
    "SE_CLUSTERS",
    "Drlc",
    "KeyEstablishment",
    "Messaging",
    "Price",
    "command_def",
    "decode_command",
    "encode_command",
]

_HOMES = {
    "Drlc": "zse.drlc.wire",
    "Messaging": "zse.messaging.wire",
    "Price": "zse.price.wire",
    "command_def": "zse.zcl.codec",
    "decode_command": "zse.zcl.codec",
    "encode_command": "zse.zcl.codec",
}


#: old module -> its new home (docs/adr/0008-feature-packages.md)
MOVED = {
    "codec": "zse.zcl.codec",
    "_defs": "zse.zcl._defs",
    "drlc": "zse.drlc.wire",
    "messaging": "zse.messaging.wire",
    "price": "zse.price.wire",
}

install(__name__, MOVED)


def __getattr__(name: str) -> Any:
    """The name from its new home, with a DeprecationWarning (``KeyEstablishment`` warns in
    :mod:`zse.clusters.key_establishment`)."""
    if name == "KeyEstablishment":
        return importlib.import_module("zse.clusters.key_establishment").KeyEstablishment
    if name == "SE_CLUSTERS":
        warnings.warn(
            "zse.clusters.SE_CLUSTERS is deprecated: use the classes of zse.price.wire, "
            "zse.drlc.wire and zse.messaging.wire",
            DeprecationWarning,
            stacklevel=2,
        )
        homes = [(_HOMES[name], name) for name in ("Price", "Drlc", "Messaging")]
        classes = [getattr(importlib.import_module(module), name) for module, name in homes]
        return {cls.cluster_id: cls for cls in classes}
    if name in _HOMES:
        warnings.warn(
            f"zse.clusters is deprecated: import {name} from {_HOMES[name]}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
