"""Inter-PAN over a Silicon Labs EmberZNet NCP: :class:`EzspTransport`, kept in
:mod:`zse.radios.ezsp` with the rest of zse's EmberZNet code and importable from here too."""

from __future__ import annotations

from zse.radios.ezsp import EzspError, EzspTransport

__all__ = ["EzspError", "EzspTransport"]
