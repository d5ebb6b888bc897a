"""Deprecated: the SE enumerations, bitmaps and sentinels moved to :mod:`zse.se.types`.

Every name still resolves here, with a :class:`DeprecationWarning`, for one release.
"""

from __future__ import annotations

import warnings
from typing import Any

import zse.se.types as _types

__all__ = list(_types.__all__)


def __getattr__(name: str) -> Any:
    """The name from :mod:`zse.se.types`, with a DeprecationWarning."""
    if name in _types.__all__:
        warnings.warn(
            f"zse.clusters.types.{name} moved to zse.se.types.{name}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(_types, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
