"""Inter-PAN over a TI Z-Stack coprocessor: :class:`ZnpTransport`, kept in
:mod:`zse.radios.znp` with the rest of zse's Z-Stack code and importable from here too."""

from __future__ import annotations

from zse.radios.znp import INTER_PAN_ENDPOINT, ZnpError, ZnpTransport

__all__ = ["INTER_PAN_ENDPOINT", "ZnpError", "ZnpTransport"]
