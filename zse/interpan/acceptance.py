"""When the hub accepts inter-PAN (sans-IO): open after power-up, reopened by an installer's
PIN or on loss of the wide-area link.

A GB communications hub accepts inter-PAN for a limited time after power-up (60 minutes) and
can be made to accept it again (GB Companion Specification; docs/installer.md).
:class:`AcceptancePolicy` drives an :class:`~zse.interpan.window.InterPanWindow`:

- :meth:`AcceptancePolicy.power_up` opens it for ``power_up_duration`` (default 3600 s);
- :meth:`AcceptancePolicy.enter_pin` reopens it for ``reopen_duration`` when the installer's
  PIN is right (an authenticated local action on a trusted device); the terminal the PIN names
  is trusted at once (its own rate budget, whatever a flood does). Only a salted SHA-256 of the
  PIN is kept, compared in constant time; after ``max_failures`` wrong PINs in a row the policy
  refuses every PIN for ``lockout`` seconds;
- :meth:`AcceptancePolicy.wan_lost` reopens it if ``reopen_on_wan_loss`` is configured.

The window's rate limiting (:class:`~zse.interpan.window.SourceLimiter`) and the key
establishment session table bound what a flood of joins and key establishments costs; a trusted
terminal keeps its own budget. Every method takes ``now``; nothing here reads a clock.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Iterable

from zigpy.types import EUI64

from zse.interpan.window import InterPanWindow

__all__ = ["GB_POWER_UP_WINDOW", "AcceptancePolicy"]

LOGGER = logging.getLogger(__name__)

#: The GB hub's inter-PAN acceptance after power-up, seconds (60 minutes).
GB_POWER_UP_WINDOW = 3600.0


class AcceptancePolicy:
    """Opens and reopens the hub's inter-PAN window (see the module docstring)."""

    def __init__(
        self,
        window: InterPanWindow,
        *,
        pin: str | None = None,
        power_up_duration: float = GB_POWER_UP_WINDOW,
        reopen_duration: float = GB_POWER_UP_WINDOW,
        reopen_on_wan_loss: bool = False,
        max_failures: int = 5,
        lockout: float = 300.0,
    ) -> None:
        self.window = window
        self.power_up_duration = power_up_duration
        self.reopen_duration = reopen_duration
        self.reopen_on_wan_loss = reopen_on_wan_loss
        self.max_failures = max_failures
        self.lockout = lockout
        self._salt = secrets.token_bytes(16)
        self._pin_hash = None if pin is None else self._hash(pin)
        self.failures = 0
        self._locked_until: float | None = None

    def __repr__(self) -> str:
        return f"<AcceptancePolicy pin={'set' if self._pin_hash else 'none'}>"

    def _hash(self, pin: str) -> bytes:
        return hashlib.sha256(self._salt + pin.encode()).digest()

    def power_up(self, now: float) -> float:
        """The hub powered up: open for ``power_up_duration``; returns the deadline."""
        LOGGER.info("inter-PAN acceptance open after power-up")
        return self.window.open(now, self.power_up_duration)

    def enter_pin(self, pin: str, now: float, *, terminal: EUI64 | None = None) -> bool:
        """An installer's PIN on the hub: reopen (and trust ``terminal``) if right."""
        if self._pin_hash is None:
            return False
        if self._locked_until is not None and now < self._locked_until:
            LOGGER.warning("installer PIN refused: locked out")
            return False
        if not hmac.compare_digest(self._hash(pin), self._pin_hash):
            self.failures += 1
            LOGGER.warning("wrong installer PIN (%d in a row)", self.failures)
            if self.failures >= self.max_failures:
                self._locked_until = now + self.lockout
                self.failures = 0
            return False
        self.failures = 0
        self._locked_until = None
        trusted: Iterable[EUI64] = () if terminal is None else (terminal,)
        self.window.open(now, self.reopen_duration, trusted=trusted)
        LOGGER.info("inter-PAN acceptance reopened by the installer's PIN")
        return True

    def wan_lost(self, now: float) -> bool:
        """The wide-area link is lost: reopen if configured to."""
        if not self.reopen_on_wan_loss:
            return False
        self.window.open(now, self.reopen_duration)
        LOGGER.info("inter-PAN acceptance reopened: wide-area link lost")
        return True
