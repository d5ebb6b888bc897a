"""What may cross inter-PAN, and when: the command whitelist and the receiving window (sans-IO).

Inter-PAN frames carry no security (SE Annex B.3), so a receiver accepts them only while it has
opened an *inter-PAN window* (a meter opens one at power-up or when an installer enters a PIN),
only for whitelisted ZCL commands, and at a bounded rate per source. Every method takes ``now``
(seconds, any monotonic origin); nothing here reads a clock or sleeps.

Rate limiting (:class:`SourceLimiter`) is built for a flood of spoofed sources. Source addresses
cost an attacker nothing, but air time does: one radio sends at most a few hundred frames per
second, so a flood spread over 1,000 addresses gives each address a small rate, while a
hand-held terminal sends its commands from one address at a higher rate. The limiter tracks a
bounded table of sources with a decayed arrival score; a tracked source whose score reaches
``establish_score`` is *established* and is admitted by its own token bucket, which no other
source can drain. Everyone else shares one small *newcomer* bucket. A new source takes the table
slot of the lowest-scored *unestablished* entry that is at least ``min_age`` old among the next
few entries in sweep order, so table churn is bounded, each frame costs O(1), and an active
terminal, once tracked, becomes established within a few frames and keeps its slot until it
falls silent. An optional bucket over everything admitted (``total_rate``) bounds the total, as
the ESI's reply limiter (:func:`zse.interpan.se.reply_limiter`) does. Memory is
``O(max_sources)`` whatever the number of sources. An attacker who sustains
``establish_score`` frames per half-life from ``max_sources`` addresses at once can still fill
the table; sources named when the window is opened (``trusted``, e.g. the terminal an
installer's PIN identified) keep their own budget even then.

The newcomer bucket is shared *fairly by source*, not by frame (issue #20.4): a fixed-size
recall table (the last ``recall_slots`` distinct sources, least recently seen forgotten first,
O(1) per frame) remembers the sources seen in the last ``recall`` seconds, as long as fewer than
``recall_slots`` other sources were seen since (16,384: 82 s of 200 new sources a second). A
*returning* source (one seen before) may take any newcomer token; a source's *first contact*
only a token above ``first_contact_reserve``. A flood of spoofed addresses each used once
therefore gets the newcomer budget only when no returning source wants it, and a legitimate
terminal that tries again (a key establishment retried after its timeout) is admitted on its
second try. A source the application vouches for (:meth:`SourceLimiter.vouch`, e.g. the partner
of a key establishment session in progress) has its own budget until the vouch expires, so a
partner that progresses never competes with the flood again. An attacker who repeats each
spoofed address within ``recall`` shares the returning priority with the terminal, each source
an equal chance per try; the PIN's ``trusted`` remains the defence that needs no luck.
"""

from __future__ import annotations

import enum
import itertools
import math
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from zigpy.types import EUI64

from zse.errors import InvalidFrame
from zse.interpan._codec import InterPanFrame
from zse.interpan._zcl import Direction, FrameType, ZclHeader
from zse.se.ids import (
    KEY_ESTABLISHMENT,
    MESSAGING,
    PRICE,
    KeyEstablishmentClientCommand,
    KeyEstablishmentServerCommand,
    MessagingClientCommand,
    PriceClientCommand,
    PriceServerCommand,
)

__all__ = [
    "KE_INTERPAN_COMMANDS",
    "SE_INTERPAN_COMMANDS",
    "AllowedCommand",
    "CommandWhitelist",
    "InterPanWindow",
    "SourceLimiter",
    "Verdict",
]


@dataclass(frozen=True, slots=True)
class AllowedCommand:
    """One ZCL command allowed over inter-PAN: cluster, direction, command id (and maker)."""

    cluster_id: int
    direction: Direction
    command_id: int
    name: str
    manufacturer_code: int | None = None
    #: Admitted only APS-secured with the sender's link key (docs/interpan.md).
    secured: bool = False


#: The SE commands zse carries over inter-PAN (SE Annex B.5 and D.4.2 / D.5.2):
#: Price: Get Current Price and Get Scheduled Prices (client to server) answered by Publish
#: Price; Messaging: Display Message and Cancel Message (server to client). The same set as
#: Silicon Labs' inter-PAN plugin (``interpan.c``: its required and response messages).
SE_INTERPAN_COMMANDS: tuple[AllowedCommand, ...] = (
    AllowedCommand(
        PRICE,
        Direction.Client_to_Server,
        PriceServerCommand.GET_CURRENT_PRICE,
        "price.get_current_price",
    ),
    AllowedCommand(
        PRICE,
        Direction.Client_to_Server,
        PriceServerCommand.GET_SCHEDULED_PRICES,
        "price.get_scheduled_prices",
    ),
    AllowedCommand(
        PRICE, Direction.Server_to_Client, PriceClientCommand.PUBLISH_PRICE, "price.publish_price"
    ),
    AllowedCommand(
        MESSAGING,
        Direction.Server_to_Client,
        MessagingClientCommand.DISPLAY_MESSAGE,
        "messaging.display_message",
    ),
    AllowedCommand(
        MESSAGING,
        Direction.Server_to_Client,
        MessagingClientCommand.CANCEL_MESSAGE,
        "messaging.cancel_message",
    ),
)


#: Key Establishment over inter-PAN (SE C.3 between a device that never joined and the ESI or
#: hub; docs/interpan.md): every command of both directions, unsecured (there is no key yet).
KE_INTERPAN_COMMANDS: tuple[AllowedCommand, ...] = (
    *(
        AllowedCommand(
            KEY_ESTABLISHMENT,
            Direction.Client_to_Server,
            command,
            f"key_establishment.{command.name.lower()}",
        )
        for command in KeyEstablishmentServerCommand
    ),
    *(
        AllowedCommand(
            KEY_ESTABLISHMENT,
            Direction.Server_to_Client,
            command,
            f"key_establishment.{command.name.lower()}",
        )
        for command in KeyEstablishmentClientCommand
    ),
)


class CommandWhitelist:
    """A set of :class:`AllowedCommand`; only cluster-specific commands can be allowed."""

    def __init__(self, commands: Iterable[AllowedCommand] = SE_INTERPAN_COMMANDS) -> None:
        self.commands = tuple(commands)
        self._keys = {
            (c.cluster_id, int(c.direction), c.command_id, c.manufacturer_code): c
            for c in self.commands
        }

    def match(self, frame: InterPanFrame) -> AllowedCommand | None:
        """The whitelist entry for ``frame``'s ZCL command, or ``None`` (also if malformed)."""
        try:
            header = ZclHeader.from_bytes(frame.payload)
        except InvalidFrame:
            return None
        if header.frame_type is not FrameType.CLUSTER_COMMAND:
            return None
        key = (frame.cluster_id, int(header.direction), header.command_id)
        allowed = self._keys.get((*key, header.manufacturer_code))
        if allowed is not None and allowed.secured and not frame.verified:
            return None
        return allowed

    def check(self, frame: InterPanFrame) -> AllowedCommand:
        """As :meth:`match`, raising :class:`PermissionError` for a command not allowed."""
        allowed = self.match(frame)
        if allowed is None:
            raise PermissionError(
                f"ZCL command {frame.payload[:5].hex()} on cluster 0x{frame.cluster_id:04X} "
                "is not whitelisted for inter-PAN"
            )
        return allowed


class Verdict(enum.Enum):
    """What the window decided about one received frame."""

    ACCEPTED = "accepted"
    CLOSED = "window closed"
    RATE_LIMITED = "rate limited"
    NOT_WHITELISTED = "command not whitelisted"


@dataclass(slots=True)
class _Source:
    tokens: float
    refilled: float
    score: float
    scored: float
    created: float
    trusted: bool = False
    vouched_until: float = -math.inf


@dataclass(slots=True)
class _Bucket:
    rate: float
    burst: float
    tokens: float
    refilled: float = -math.inf

    def take(self, now: float, reserve: float = 0.0) -> bool:
        """Take a token if one is left above ``reserve``."""
        self.tokens = min(self.burst, self.tokens + (now - self.refilled) * self.rate)
        self.refilled = now
        if self.tokens >= 1.0 + reserve:
            self.tokens -= 1.0
            return True
        return False


#: Table entries a new source looks at, in sweep order, for a slot to take (O(1) per frame).
_SWEEP = 8


class _Recall:
    """The last ``slots`` distinct sources seen, least recently seen first, with the time each
    was last seen. A source is forgotten only after ``slots`` other sources have been seen since
    its last frame, whatever their addresses (no set an attacker could aim at), so a flood of
    ``r`` new sources a second cannot evict a source seen less than ``slots / r`` seconds ago.
    O(1) a frame; about 150 octets a source in CPython."""

    def __init__(self, slots: int) -> None:
        self._slots = slots
        self._seen: OrderedDict[bytes, float] = OrderedDict()

    def seen(self, key: bytes, now: float, within: float) -> bool:
        """Record ``key`` at ``now``; True if it was already seen in the last ``within`` s."""
        seen = self._seen
        before = seen.get(key)
        if before is None:
            if len(seen) >= self._slots:
                seen.popitem(last=False)
            seen[key] = now
            return False
        seen[key] = now
        seen.move_to_end(key)
        return now - before <= within


@dataclass
class SourceLimiter:
    """Per-source token buckets for established sources, a shared bucket for the rest, and
    optionally one bucket over everything admitted (``total_rate`` / ``total_burst``)."""

    rate: float = 5.0  # frames per second per established source
    burst: float = 20.0
    newcomer_rate: float = 1.0  # frames per second shared by all other sources
    newcomer_burst: float = 3.0
    max_sources: int = 128
    min_age: float = 5.0  # seconds a tracked source keeps its slot before it can be evicted
    half_life: float = 10.0  # of the arrival score
    establish_score: float = 6.0
    total_rate: float | None = None  # frames per second admitted in all (None: no such cap)
    total_burst: float = 20.0
    recall: float = 60.0  # seconds a source counts as returning after it was seen
    recall_slots: int = 16384  # distinct sources remembered, least recently seen forgotten first
    first_contact_reserve: float = 1.0  # newcomer tokens kept for returning sources
    # keyed by the address's 8 bytes: zigpy's EUI64 hashes through its repr (about 5 us)
    _table: dict[bytes, _Source] = field(default_factory=dict, repr=False)
    _newcomers: _Bucket = field(init=False, repr=False)
    _total: _Bucket | None = field(init=False, repr=False)
    _recall: _Recall = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_sources < 1 or self.rate <= 0 or self.burst < 1 or self.half_life <= 0:
            raise ValueError("max_sources, rate, burst and half_life must be positive")
        if self.recall_slots < 1 or self.first_contact_reserve < 0:
            raise ValueError("recall_slots must be >= 1, first_contact_reserve >= 0")
        if self.total_rate is not None and (self.total_rate <= 0 or self.total_burst < 1):
            raise ValueError("total_rate and total_burst must be positive")
        self.reset()

    def __len__(self) -> int:
        return len(self._table)

    def reset(self) -> None:
        self._table.clear()
        self._newcomers = _Bucket(self.newcomer_rate, self.newcomer_burst, self.newcomer_burst)
        total = self.total_rate
        self._total = None if total is None else _Bucket(total, self.total_burst, self.total_burst)
        self._recall = _Recall(self.recall_slots)

    def _held(self, entry: _Source, now: float) -> bool:
        return entry.trusted or entry.vouched_until > now

    def _slot_for(self, key: bytes, now: float) -> None:
        """Make room for ``key`` in a full table: the lowest-scored entry not held goes."""
        if key in self._table or len(self._table) < self.max_sources:
            return
        free = [k for k, e in self._table.items() if not self._held(e, now)]
        if not free:
            raise ValueError(f"more than max_sources={self.max_sources} trusted sources")
        del self._table[min(free, key=lambda k: self._decayed(self._table[k], now))]

    def trust(self, source: EUI64, now: float) -> None:
        """Track ``source`` as established (e.g. the terminal an installer's PIN named); it is
        never evicted, and may evict the lowest-scored untrusted source from a full table."""
        key = bytes(source)
        self._slot_for(key, now)
        self._table[key] = _Source(self.burst, now, self.establish_score, now, now, True)

    def vouch(self, source: EUI64, now: float, until: float) -> None:
        """Give ``source`` its own budget until ``until`` (e.g. the partner of a key
        establishment in progress, until its session's deadline); not evicted before then.
        The caller bounds how many it vouches for (a session table does)."""
        key = bytes(source)
        entry = self._table.get(key)
        if entry is None:
            self._slot_for(key, now)
            entry = self._table[key] = _Source(self.burst, now, 0.0, now, now)
        entry.vouched_until = max(entry.vouched_until, until)

    def unvouch(self, source: EUI64) -> None:
        """End a vouch early (the session ended)."""
        entry = self._table.get(bytes(source))
        if entry is not None:
            entry.vouched_until = -math.inf

    def _decayed(self, entry: _Source, now: float) -> float:
        return entry.score * math.exp2(-(now - entry.scored) / self.half_life)

    def established(self, source: EUI64, now: float) -> bool:
        entry = self._table.get(bytes(source))
        return entry is not None and (
            self._held(entry, now) or self._decayed(entry, now) >= self.establish_score
        )

    def allow(self, source: EUI64, now: float) -> bool:
        """Count an arrival from ``source`` at ``now`` and say whether to admit it."""
        key = bytes(source)
        returning = self._recall.seen(key, now, self.recall)
        entry = self._table.get(key)
        if entry is None:
            entry = self._track(key, now)
        if entry is not None:
            entry.score = self._decayed(entry, now) + 1.0
            entry.scored = now
            if self._held(entry, now) or entry.score >= self.establish_score:
                entry.tokens = min(self.burst, entry.tokens + (now - entry.refilled) * self.rate)
                entry.refilled = now
                if entry.tokens < 1.0:
                    return False
                if not self._total_take(now):
                    return False
                entry.tokens -= 1.0
                return True
        reserve = 0.0 if returning else min(self.first_contact_reserve, self.newcomer_burst - 1)
        if self._newcomers.take(now, reserve):
            if self._total_take(now):
                return True
            self._newcomers.tokens += 1.0  # not sent: the newcomers keep their token
        return False

    def _total_take(self, now: float) -> bool:
        return self._total is None or self._total.take(now)

    def _track(self, source: bytes, now: float) -> _Source | None:
        """A table slot for a new source, or ``None`` (it shares the newcomer bucket).

        A full table gives up the lowest-scored unestablished entry at least ``min_age`` old
        among the next ``_SWEEP`` entries in sweep order; the others looked at go to the back
        (a second chance), so each new source costs O(1) whatever ``max_sources``."""
        table = self._table
        if len(table) >= self.max_sources:
            victim: bytes | None = None
            lowest = math.inf
            looked = list(itertools.islice(table, min(_SWEEP, len(table))))
            for key in looked:
                entry = table[key]
                if self._held(entry, now) or now - entry.created < self.min_age:
                    continue
                score = self._decayed(entry, now)
                if score < lowest and score < self.establish_score:
                    victim, lowest = key, score
            for key in looked:
                if key != victim:
                    table[key] = table.pop(key)
            if victim is None:
                return None
            del table[victim]
        entry = _Source(self.burst, now, 0.0, now, now)
        table[source] = entry
        return entry


class InterPanWindow:
    """The receiving side's inter-PAN window: closed by default, open until a deadline.

    ``whitelist`` (default :data:`SE_INTERPAN_COMMANDS`) and ``limiter`` police what an open
    window admits. Call :meth:`handle_timeout` at :attr:`deadline` (or let :meth:`admit` notice)
    to close it.
    """

    def __init__(
        self,
        *,
        default_duration: float = 300.0,
        whitelist: CommandWhitelist | None = None,
        limiter: SourceLimiter | None = None,
    ) -> None:
        if default_duration <= 0:
            raise ValueError("default_duration must be positive")
        self.default_duration = default_duration
        self.whitelist = whitelist if whitelist is not None else CommandWhitelist()
        self.limiter = limiter if limiter is not None else SourceLimiter()
        self._closes_at: float | None = None
        self.counts: dict[Verdict, int] = dict.fromkeys(Verdict, 0)

    @property
    def deadline(self) -> float | None:
        """When the open window closes by itself (``None`` while closed)."""
        return self._closes_at

    def is_open(self, now: float) -> bool:
        return self._closes_at is not None and now < self._closes_at

    def open(
        self, now: float, duration: float | None = None, *, trusted: Iterable[EUI64] = ()
    ) -> float:
        """Open (or extend) the window for ``duration`` seconds; returns the deadline.

        ``trusted`` sources (e.g. the terminal an installer authenticated by PIN) are
        established at once, each with its own rate budget.
        """
        span = self.default_duration if duration is None else duration
        if span <= 0:
            raise ValueError("duration must be positive")
        if not self.is_open(now):
            self.limiter.reset()
        self._closes_at = max(self._closes_at or now, now + span)
        for source in trusted:
            self.limiter.trust(source, now)
        return self._closes_at

    def close(self) -> None:
        self._closes_at = None
        self.limiter.reset()

    def handle_timeout(self, now: float) -> bool:
        """Close the window if its deadline has passed; True if it closed now."""
        if self._closes_at is not None and now >= self._closes_at:
            self.close()
            return True
        return False

    def admit_source(self, source: EUI64, now: float) -> Verdict:
        """Decide about a received frame whose command cannot be judged yet (a fragment that
        starts a message: the whitelist judges the message once whole): the window must be
        open and the rate limiter must allow ``source``."""
        self.handle_timeout(now)
        if self._closes_at is None:
            verdict = Verdict.CLOSED
        elif not self.limiter.allow(source, now):
            verdict = Verdict.RATE_LIMITED
        else:
            verdict = Verdict.ACCEPTED
        self.counts[verdict] += 1
        return verdict

    def admit(self, frame: InterPanFrame, now: float) -> Verdict:
        """Decide about one received frame."""
        self.handle_timeout(now)
        if self._closes_at is None:
            verdict = Verdict.CLOSED
        elif self.whitelist.match(frame) is None:
            verdict = Verdict.NOT_WHITELISTED
        elif not self.limiter.allow(frame.src_ieee, now):
            verdict = Verdict.RATE_LIMITED
        else:
            verdict = Verdict.ACCEPTED
        self.counts[verdict] += 1
        return verdict
