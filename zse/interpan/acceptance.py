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
establishment session table bound what a flood of key establishments costs; a trusted terminal
keeps its own budget. :class:`JoinAdmission` bounds the joins: which handovers of an install
code the hub acts on (a join permitted with the code's key), fairly by terminal. Every method
takes ``now``; nothing here reads a clock.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
import math
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from zigpy.types import EUI64

from zse.interpan.window import InterPanWindow

__all__ = ["GB_POWER_UP_WINDOW", "AcceptancePolicy", "JoinAdmission", "JoinVerdict"]

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


class JoinVerdict(enum.Enum):
    """What the hub does with one handover of a terminal's install code."""

    #: Enter the terminal in the device log and permit its join with the code's key.
    ADMIT = "admit"
    #: The same code again while its permit runs (the answer was lost): answered, not acted on.
    RESEND = "resend"
    #: No room now (pending permits, or the hub's join budget): try again after ``wait``.
    BUSY = "busy"
    #: Another install code from a terminal that handed one over less than
    #: ``code_change_interval`` ago.
    REFUSED = "refused"


@dataclass
class _Permit:
    digest: bytes  # of the install code, keyed (JoinAdmission._identity)
    admitted: float
    expires: float


@dataclass
class JoinAdmission:
    """Join attempts the hub admits during its acceptance window, fairly by terminal (issue
    #20.4).

    A handover comes APS-secured from a partner whose certificate key establishment checked,
    so a terminal cannot be spoofed here; what is bounded is what each costs: a join permit
    with a link key in the radio's key table. Each terminal holds at most one permit (its
    resends are answered :attr:`JoinVerdict.RESEND` without a new one; another install code is
    :attr:`JoinVerdict.REFUSED` for ``code_change_interval``), at most ``max_pending`` permits
    run at once (a permit ends when its terminal joins, :meth:`joined`, or after
    ``permit_duration``), and new permits come from one bucket of ``rate`` a second, ``burst``
    at once. A terminal told :attr:`JoinVerdict.BUSY` gets the wait until a permit or a token
    frees, and its turn: while terminals told BUSY wait (each for its wait and ``grace``
    seconds more, ``max_waiting`` at most), the next free permit goes to the one told first, not
    to a newcomer that never waited. Memory is O(``max_pending`` + ``max_waiting``).

    Codes are told apart by the whole code, never by its 16-bit display fingerprint (another
    code with the same one takes ~2^16 tries to find): a permit keeps an HMAC-SHA-256 of its
    code under a key drawn afresh for each instance, not the code, compared in constant time.
    The state lives in memory only: nothing persists it, and a restarted hub starts with no
    permits.
    """

    max_pending: int = 4
    permit_duration: float = 120.0
    rate: float = 1.0 / 15.0
    burst: float = 4.0
    code_change_interval: float = 600.0
    max_waiting: int = 16
    _permits: dict[bytes, _Permit] = field(default_factory=dict, repr=False)
    #: Seconds a terminal told BUSY keeps its turn after the wait it was given.
    grace: float = 30.0
    # terminals told BUSY, in the order told, with when their turn lapses
    _waiting: dict[bytes, float] = field(default_factory=dict, repr=False)
    _code_key: bytes = field(
        default_factory=lambda: secrets.token_bytes(32), init=False, repr=False, compare=False
    )
    _tokens: float = field(init=False, repr=False)
    _refilled: float = field(default=-math.inf, repr=False)
    #: Verdicts given, by kind.
    counts: dict[JoinVerdict, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_pending < 1 or self.rate <= 0 or self.burst < 1 or self.max_waiting < 1:
            raise ValueError("max_pending, rate, burst and max_waiting must be positive")
        self._tokens = self.burst
        self.counts = dict.fromkeys(JoinVerdict, 0)

    def __len__(self) -> int:
        return len(self._permits)

    def _expire(self, now: float) -> None:
        for terminal in [k for k, p in self._permits.items() if p.expires <= now]:
            del self._permits[terminal]
        for terminal in [k for k, lapses in self._waiting.items() if lapses <= now]:
            del self._waiting[terminal]  # did not come back in time: no turn kept
        self._tokens = min(self.burst, self._tokens + (now - self._refilled) * self.rate)
        self._refilled = now

    def _wait(self, now: float) -> float:
        """Seconds until a permit and a token may both be free."""
        slot = 0.0
        if len(self._permits) >= self.max_pending:
            slot = min(p.expires for p in self._permits.values()) - now
        token = 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / self.rate
        return max(1.0, slot, token)

    def _identity(self, code: bytes | str) -> bytes:
        """A keyed full-length digest of ``code``: equal for equal codes only (as far as
        HMAC-SHA-256 goes), and useless to anyone without this instance's key."""
        octets = code.encode() if isinstance(code, str) else bytes(code)
        return hmac.new(self._code_key, octets, hashlib.sha256).digest()

    def decide(self, terminal: EUI64, code: bytes | str, now: float) -> tuple[JoinVerdict, float]:
        """The verdict on a handover of install code ``code`` from ``terminal``, and the wait
        (seconds) that goes with BUSY (else 0). ``code`` is the whole code, e.g.
        ``bytes(install_code)`` (a str stands for its UTF-8 octets), never its
        :attr:`~zse.installcode.InstallCode.fingerprint`: two codes are the same code only if
        all their octets are."""
        key = bytes(terminal)
        self._expire(now)
        verdict, wait = self._decide(key, self._identity(code), now)
        self.counts[verdict] += 1
        if verdict is not JoinVerdict.ADMIT:
            LOGGER.info("handover from %s: %s", terminal, verdict.value)
        return verdict, wait

    def _decide(self, key: bytes, digest: bytes, now: float) -> tuple[JoinVerdict, float]:
        permit = self._permits.get(key)
        if permit is not None:
            if hmac.compare_digest(permit.digest, digest):
                return JoinVerdict.RESEND, 0.0
            if now - permit.admitted < self.code_change_interval:
                return JoinVerdict.REFUSED, 0.0
        # terminals told to wait before this one are served first: it may take a permit only
        # if there is room for every one of them ahead of it as well
        order = list(self._waiting)
        ahead = order.index(key) if key in self._waiting else len(order)
        slots = self.max_pending - len(self._permits) + (key in self._permits)
        if min(slots, math.floor(self._tokens)) <= ahead:
            wait = self._wait(now)
            if key in self._waiting or len(self._waiting) < self.max_waiting:
                self._waiting.setdefault(key, now + wait + self.grace)  # its turn, kept
            return JoinVerdict.BUSY, wait
        self._waiting.pop(key, None)
        self._tokens -= 1.0
        self._permits[key] = _Permit(digest, now, now + self.permit_duration)
        return JoinVerdict.ADMIT, 0.0

    def joined(self, terminal: EUI64) -> None:
        """``terminal`` joined: its permit ends (its handover is now a new one's)."""
        self._permits.pop(bytes(terminal), None)
