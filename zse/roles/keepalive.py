"""Trust Center Keep-Alive (cluster 0x0025), the client a joined SE device runs (SE 1.2+).

A device that joined a meter's network checks periodically that its Trust Center is still
there by reading the server's two attributes, TC Keep-Alive Base (0x0000, minutes, 1-255) and
TC Keep-Alive Jitter (0x0001, seconds, 0-512): the next read comes Base minutes plus a random
0..Jitter seconds later (SE 1.2 5.4.2.2.3.4, as Silicon Labs' Trust Center Keepalive plugin and
Exegin's ``zcl.keepalive.h`` describe it). When several reads in a row go unanswered, the
device rejoins (a secure rejoin, then a Trust Center rejoin: :meth:`zse.roles.han_stick.
StickDevice.rejoin`).

:class:`KeepAlive` is the sans-IO core (``now`` in, the next deadline out); :class:`KeepAliveClient`
the asyncio shell with one :class:`~zse.zcl.timer.Timer`. The meter may not offer the cluster:
:meth:`KeepAliveClient.start` then says so and does nothing. :class:`KeepAliveServer` is the
Trust Center's side, which zse's ESI serves on its SE endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable
from typing import Any

from zigpy.exceptions import DeliveryError
from zigpy.zcl import foundation

from zse.errors import DecodeError, InvalidFrame
from zse.roles.han import servers_on
from zse.se.ids import KEEP_ALIVE
from zse.zcl.endpoint import ZclPort
from zse.zcl.timer import Timer

__all__ = ["KEEP_ALIVE", "KeepAlive", "KeepAliveClient", "KeepAliveServer"]

LOGGER = logging.getLogger(__name__)

#: The Keep-Alive cluster's server attributes.
BASE, JITTER = 0x0000, 0x0001
_UINT8, _UINT16 = 0x20, 0x21
#: The attributes' defaults (10 minutes, 300 s) and valid ranges.
DEFAULT_BASE, DEFAULT_JITTER = 10, 300
BASE_RANGE, JITTER_RANGE = range(1, 256), range(513)
#: Unanswered reads in a row before the device rejoins.
MISSES_BEFORE_REJOIN = 3
_READ_RSP = foundation.GeneralCommand.Read_Attributes_rsp


class KeepAlive:
    """When to read next, and what a missed read means (see the module docstring)."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self.base_minutes = DEFAULT_BASE
        self.jitter_seconds = DEFAULT_JITTER
        self.misses = 0
        self._rng = rng or random.SystemRandom()
        self._deadline: float | None = None

    def start(self, now: float) -> None:
        """The first read is due one period from ``now``."""
        self._schedule(now)

    def stop(self) -> None:
        self._deadline = None

    def next_deadline(self) -> float | None:
        return self._deadline

    def handle_timeout(self, now: float) -> bool:
        """True when a read is due now (the caller reads, then says how it went)."""
        if self._deadline is None or now < self._deadline:
            return False
        self._deadline = None
        return True

    def answered(self, now: float, base: int | None, jitter: int | None) -> None:
        """The server answered; out-of-range values are ignored (the last good ones stay)."""
        if base is not None and base in BASE_RANGE:
            self.base_minutes = base
        if jitter is not None and jitter in JITTER_RANGE:
            self.jitter_seconds = jitter
        self.misses = 0
        self._schedule(now)

    def missed(self, now: float) -> bool:
        """A read went unanswered; True when the device must rejoin now."""
        self.misses += 1
        rejoin = self.misses >= MISSES_BEFORE_REJOIN
        if rejoin:
            self.misses = 0
        self._schedule(now)
        return rejoin

    def _schedule(self, now: float) -> None:
        jitter = self._rng.randint(0, self.jitter_seconds) if self.jitter_seconds else 0
        self._deadline = now + 60 * self.base_minutes + jitter


class KeepAliveServer:
    """The Trust Center's Keep-Alive server: TC Keep-Alive Base (uint8, minutes) and Jitter
    (uint16, seconds) answered to Read Attributes from ``endpoint`` (SE 1.2 5.4.2.2.3.4).

    The values are checked against the attributes' ranges (Base 1-255, Jitter 0-512):
    :class:`ValueError` names the one that is out of range.
    """

    def __init__(
        self,
        endpoint: ZclPort,
        *,
        base_minutes: int = DEFAULT_BASE,
        jitter_seconds: int = DEFAULT_JITTER,
    ) -> None:
        if base_minutes not in BASE_RANGE:
            raise ValueError(f"keep-alive base must be 1-255 minutes, not {base_minutes}")
        if jitter_seconds not in JITTER_RANGE:
            raise ValueError(f"keep-alive jitter must be 0-512 seconds, not {jitter_seconds}")
        self.endpoint = endpoint
        self.base_minutes = base_minutes
        self.jitter_seconds = jitter_seconds

    def start(self) -> None:
        """Publish the two attributes."""
        self.endpoint.set_attribute(KEEP_ALIVE, BASE, self.base_minutes, _UINT8)
        self.endpoint.set_attribute(KEEP_ALIVE, JITTER, self.jitter_seconds, _UINT16)


class KeepAliveClient:
    """Keep-alive with the Trust Center at NWK 0x0000 over ``endpoint``; ``device`` gives
    ``zdo_request`` and ``rejoin()`` (a :class:`~zse.roles.han_stick.StickDevice`)."""

    def __init__(self, endpoint: ZclPort, device: Any, *, rng: random.Random | None = None) -> None:
        self.endpoint = endpoint
        self.device = device
        self.core = KeepAlive(rng)
        self.server_ep: int | None = None
        self.reads = 0
        self.rejoins = 0
        self._timer = Timer("keep-alive", logger=LOGGER)
        self._timer.add(self.core, self._due)

    async def start(self) -> bool:
        """Find the Keep-Alive server on the Trust Center (Match_Desc_req); False if the meter
        does not offer one (nothing is started then)."""
        endpoints = await servers_on(self.device, KEEP_ALIVE)
        if not endpoints:
            LOGGER.info("the Trust Center offers no Keep-Alive server")
            return False
        self.server_ep = int(endpoints[0])
        await self._read()
        self._timer.start()
        return True

    async def stop(self) -> None:
        self.core.stop()
        await self._timer.stop()

    async def _due(self, due: bool) -> None:
        if due:
            await self._read()
            self._timer.update()

    async def _read(self) -> None:
        assert self.server_ep is not None
        loop = asyncio.get_running_loop()
        try:
            reply = await self.endpoint.request(
                0x0000,
                self.server_ep,
                KEEP_ALIVE,
                foundation.GeneralCommand.Read_Attributes,
                BASE.to_bytes(2, "little") + JITTER.to_bytes(2, "little"),
                cluster_specific=False,
                encrypt=True,
            )
            values = _values(reply)
        except (TimeoutError, OSError, DeliveryError, DecodeError) as exc:
            LOGGER.info("keep-alive read unanswered: %s", exc)
            if self.core.missed(loop.time()):
                LOGGER.warning(
                    "the Trust Center missed %d keep-alives: rejoining", MISSES_BEFORE_REJOIN
                )
                self.rejoins += 1
                await _maybe(self.device.rejoin())
            return
        self.reads += 1
        self.core.answered(loop.time(), values.get(BASE), values.get(JITTER))


def _values(reply: Any) -> dict[int, int]:
    """The integer attributes of a Read Attributes Response; :class:`~zse.errors.InvalidFrame`
    for anything else."""
    if reply.is_cluster_command or reply.command_id != _READ_RSP:
        raise InvalidFrame(f"keep-alive read answered with command 0x{reply.command_id:02X}")
    schema = foundation.GENERAL_COMMANDS[_READ_RSP].schema
    records: Any
    try:
        records, _ = schema.deserialize(reply.payload)
    except (KeyError, ValueError) as exc:
        raise InvalidFrame(f"bad Read Attributes Response: {exc}") from None
    return {
        int(r.attrid): int(r.value.value)
        for r in records.status_records
        if r.status == foundation.Status.SUCCESS and isinstance(r.value.value, int)
    }


async def _maybe(result: Awaitable[Any] | Any) -> None:
    if isinstance(result, Awaitable):
        await result
