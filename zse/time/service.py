"""The Time server on the SE endpoint (ZCL 3.12, as SE 5.4.3 uses it) and ZigBee time.

ZigBee time (UTCTime) counts seconds from 2000-01-01 00:00:00 UTC. SE devices set their clocks
from the ESI's Time cluster, whose TimeStatus says whether that time can be trusted:
Master (bit 0), Synchronized (bit 1), MasterZoneDst (bit 2) and Superseding (bit 3, SE: a
device prefers this server's time over others').
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable
from dataclasses import dataclass

from zse.se.ids import TIME, TimeAttribute
from zse.zcl.endpoint import ZclPort

__all__ = [
    "TIME",
    "ZIGBEE_EPOCH",
    "TimeServer",
    "TimeStatus",
    "system_clock",
    "zigbee_time",
]

#: The ZigBee epoch as a Unix timestamp (2000-01-01 00:00:00 UTC).
ZIGBEE_EPOCH = 946_684_800
_UTC_TIME = 0xE2
_BITMAP8 = 0x18
_INT32 = 0x2B
_UINT32 = 0x23


def zigbee_time(unix_seconds: float) -> int:
    """ZigBee UTCTime for a Unix timestamp."""
    return int(unix_seconds) - ZIGBEE_EPOCH


def system_clock() -> int:
    """The system's wall clock as ZigBee UTCTime."""
    return zigbee_time(_time.time())


@dataclass(frozen=True, kw_only=True)
class TimeStatus:
    """TimeStatus bits (ZCL 3.12.2.2.2); an SE ESI is a time master: Master and Superseding.

    ZCL 3.12.2.2.2: "If the Master bit is 1, the value of [the Synchronized] bit is 0"; a
    status with both set is refused. Synchronized is for a clock set over the network from
    another master.
    """

    master: bool = True
    synchronized: bool = False
    master_zone_dst: bool = False
    superseding: bool = True

    def __post_init__(self) -> None:
        if self.master and self.synchronized:
            raise ValueError("TimeStatus: Synchronized must be 0 when Master is 1 (ZCL 3.12.2.2.2)")

    def bitmap(self) -> int:
        """The attribute's value."""
        return (
            self.master | self.synchronized << 1 | self.master_zone_dst << 2 | self.superseding << 3
        )


class TimeServer:
    """Serve Time (0x000A) from an endpoint: Time, TimeStatus, TimeZone and LocalTime.

    ``clock()`` is ZigBee UTCTime (inject the simulator's virtual clock in simulations);
    ``status`` can be replaced at any time, e.g. clearing ``master`` when the ESI loses its
    upstream time source.

    Time has no protocol core at the ZCL frame: it serves attributes only, computed when read,
    and the endpoint runtime answers Read Attributes (ZCL 2.5.1) from them.
    """

    def __init__(
        self,
        endpoint: ZclPort,
        *,
        clock: Callable[[], int] = system_clock,
        status: TimeStatus | None = None,
        time_zone: int = 0,
    ) -> None:
        self.endpoint = endpoint
        self.clock = clock
        self.status = status or TimeStatus()
        self.time_zone = time_zone

    def start(self) -> None:
        """Publish the attributes; they are computed whenever they are read."""
        set_source = self.endpoint.set_attribute_source
        set_source(TIME, TimeAttribute.TIME, _UTC_TIME, self.clock)
        set_source(TIME, TimeAttribute.TIME_STATUS, _BITMAP8, lambda: self.status.bitmap())  # noqa: PLW0108 -- status may be replaced
        set_source(TIME, TimeAttribute.TIME_ZONE, _INT32, lambda: self.time_zone)
        set_source(TIME, TimeAttribute.LOCAL_TIME, _UINT32, lambda: self.clock() + self.time_zone)
