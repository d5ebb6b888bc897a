"""A simulated household's electricity load as a meter's source of readings (sans-IO).

:class:`HouseholdLoad` is a :class:`zse.metering.core.ReadingSource`: a base load plus named
device loads, all in whole watts, whose sum is the demand. Each device draws its rated power
scaled by what it is doing:

- a **duty cycle** (a load control device, SE D.2.2.3.1.1.11-12): ``duty_cycle`` % of the time
  on, 0 when off;
- a **set point offset** (a thermostat, SE D.2.2.3.1.1.7-10): for every 1 °C that the set point
  it runs at is moved away from the user's (up when cooling, down when heating) the HVAC draws
  ``percent_per_degree`` % less of its rated power, at most ``max_reduction`` % less; an
  offset the other way draws the rated power (the compressor is already running flat out).

Draw = ``rated_watts * duty_cycle * (100 - reduction) // 10000`` W, whole watts. The base load
may follow a daily shape (a % per hour of the day) and a jitter drawn from a
:class:`random.Random` seeded with the seed and the slot number, so it is the same for a given
seed and time however often it is asked; the base load changes only at slot boundaries.

Energy is integrated exactly, in integer watt-seconds, over the piecewise-constant draw (a
change at ``now`` counts from ``now``), so the summation at a time does not depend on how often
:meth:`HouseholdLoad.readings` was called before it. It is converted once, at each reading, to
the meter's raw units under its :class:`~zse.metering.formatting.Formatting` (D.3.2.2.4: the
unit is kWh, a displayed value is raw * Multiplier / Divisor): summation =
``start + Ws * Divisor // (3,600,000 * Multiplier)`` and InstantaneousDemand =
``W * Divisor // (1,000 * Multiplier)``, both cut toward zero (a register shows what was used),
BCD-coded when the unit says so. Time is ZigBee seconds, given by the caller; nothing here reads
a clock. A time earlier than one already seen is taken as that one: history is never rewritten
and the summation never decreases.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace

from zse.errors import ZseError
from zse.metering.core import Readings
from zse.metering.formatting import Formatting
from zse.se.types import UNIT_OF_MEASURE_BCD, UnitOfMeasure

__all__ = [
    "DEFAULT_MAX_REDUCTION",
    "DEFAULT_PERCENT_PER_DEGREE",
    "DeviceLoad",
    "HouseholdLoad",
    "LoadModelError",
    "set_point_offset",
]

#: Watt-seconds in a kWh.
WATT_SECONDS_PER_KWH = 3_600_000
#: A thermostat's draw falls by this % of its rated power per 1 °C of set point offset.
DEFAULT_PERCENT_PER_DEGREE = 25
#: ... and by at most this %.
DEFAULT_MAX_REDUCTION = 100
_DAY = 86400
_HOUR = 3600
#: The largest raw summation (uint48) and demand (int24), binary and BCD-coded.
_TOP = {False: ((1 << 48) - 1, (1 << 23) - 1), True: (10**12 - 1, 799999)}


class LoadModelError(ZseError, ValueError):
    """A load model asked something it cannot do (an unknown device, a bad setting)."""


def set_point_offset(effective: int, user: int, *, heating: bool = False) -> int:
    """How far (0.01 °C) the set point a thermostat runs at is moved away from the user's in
    the direction that saves energy: up when cooling, down when heating (negative: the other
    way)."""
    return user - effective if heating else effective - user


@dataclass(frozen=True, kw_only=True)
class DeviceLoad:
    """One device's load: its rated power (W) and what it is doing now."""

    rated_watts: int
    duty_cycle: int = 100
    set_point_offset: int = 0
    percent_per_degree: int = DEFAULT_PERCENT_PER_DEGREE
    max_reduction: int = DEFAULT_MAX_REDUCTION

    def __post_init__(self) -> None:
        if self.rated_watts < 0:
            raise LoadModelError(f"rated power {self.rated_watts} W is negative")
        if not 0 <= self.duty_cycle <= 100:
            raise LoadModelError(f"duty cycle {self.duty_cycle} % is outside 0..100")
        if self.percent_per_degree < 0 or not 0 <= self.max_reduction <= 100:
            raise LoadModelError(
                f"set point rule {self.percent_per_degree} %/°C capped at "
                f"{self.max_reduction} % is out of range"
            )

    @property
    def reduction(self) -> int:
        """The % of rated power the set point offset saves (0 for none or the other way)."""
        saved = max(0, self.set_point_offset) * self.percent_per_degree // 100
        return min(self.max_reduction, saved)

    @property
    def watts(self) -> int:
        """What the device draws now (W)."""
        return self.rated_watts * self.duty_cycle * (100 - self.reduction) // 10000


class HouseholdLoad:
    """A household's load: a base load plus named device loads, integrated into a summation.

    ``formatting``: the meter's Formatting set (unit kWh, binary or BCD). ``now``: where
    integration starts (ZigBee seconds); ``summation``: the summation then (in raw units, as a
    number: never BCD-coded here). ``base_watts``:
    the load no device accounts for; ``daily_shape``: 24 percentages, one per hour of the day
    (``now % 86400``, UTC), that scale it (default 100 each); ``variation``: ± this % of
    jitter, drawn per ``slot_seconds`` (a divisor of 3600) from ``random.Random`` seeded with
    ``seed`` and the slot number.
    """

    def __init__(
        self,
        *,
        formatting: Formatting,
        now: int,
        summation: int = 0,
        base_watts: int = 0,
        daily_shape: Sequence[int] = (),
        variation: int = 0,
        seed: int = 0,
        slot_seconds: int = 300,
    ) -> None:
        unit = formatting.unit_of_measure & ~UNIT_OF_MEASURE_BCD
        if unit != UnitOfMeasure.KWH:
            raise LoadModelError(
                f"a household load is metered in kWh, not UnitOfMeasure "
                f"0x{formatting.unit_of_measure:02X}"
            )
        for name in ("multiplier", "divisor"):
            if not 0 <= getattr(formatting, name) <= 0xFFFFFF:
                raise LoadModelError(f"{name} {getattr(formatting, name)} is not a uint24")
        if daily_shape and (len(daily_shape) != 24 or min(daily_shape) < 0):
            raise LoadModelError("a daily shape is 24 percentages, none negative")
        if not 0 <= variation <= 100 or base_watts < 0 or not 0 <= summation <= _TOP[False][0]:
            raise LoadModelError("base load, variation or start summation out of range")
        if slot_seconds <= 0 or _HOUR % slot_seconds:
            raise LoadModelError(f"slot of {slot_seconds} s does not divide an hour")
        self.formatting = formatting
        self.base_watts = base_watts
        self.daily_shape = tuple(daily_shape)
        self.variation = variation
        self.seed = seed
        self.slot_seconds = slot_seconds
        self._bcd = bool(formatting.unit_of_measure & UNIT_OF_MEASURE_BCD)
        self._scale = (formatting.divisor or 1, formatting.multiplier or 1)
        self._start = summation
        self._time = now
        self._watt_seconds = 0
        self._devices: dict[str, DeviceLoad] = {}
        self._device_watts = 0
        self._slot: tuple[int, int] | None = None  # (slot number, base W) last computed

    # -- devices ---------------------------------------------------------------------------

    def add_device(
        self,
        name: str,
        rated_watts: int,
        now: int,
        *,
        percent_per_degree: int = DEFAULT_PERCENT_PER_DEGREE,
        max_reduction: int = DEFAULT_MAX_REDUCTION,
    ) -> None:
        """A device drawing ``rated_watts`` from ``now`` (duty cycle 100 %, no offset)."""
        if name in self._devices:
            raise LoadModelError(f"device {name!r} is already in the household")
        self._change(
            name,
            DeviceLoad(
                rated_watts=rated_watts,
                percent_per_degree=percent_per_degree,
                max_reduction=max_reduction,
            ),
            now,
        )

    def remove_device(self, name: str, now: int) -> None:
        """The device stops drawing at ``now``."""
        self._device(name)
        self._advance(now)
        del self._devices[name]
        self._device_watts = sum(device.watts for device in self._devices.values())

    def set_duty_cycle(self, name: str, duty_cycle: int, now: int) -> None:
        """The device runs ``duty_cycle`` % of the time from ``now`` (0: off)."""
        self._change(name, replace(self._device(name), duty_cycle=duty_cycle), now)

    def set_set_point_offset(self, name: str, offset: int, now: int) -> None:
        """The device's set point is ``offset`` (0.01 °C, :func:`set_point_offset`) away from
        the user's from ``now``."""
        self._change(name, replace(self._device(name), set_point_offset=offset), now)

    def device(self, name: str) -> DeviceLoad:
        """A device's load as it is now."""
        return self._device(name)

    @property
    def devices(self) -> dict[str, DeviceLoad]:
        """Every device's load by name."""
        return dict(self._devices)

    def _device(self, name: str) -> DeviceLoad:
        try:
            return self._devices[name]
        except KeyError:
            raise LoadModelError(f"no device {name!r} in the household") from None

    def _change(self, name: str, load: DeviceLoad, now: int) -> None:
        self._advance(now)
        self._devices[name] = load
        self._device_watts = sum(device.watts for device in self._devices.values())

    # -- time ------------------------------------------------------------------------------

    def base_load(self, now: int) -> int:
        """The base load (W) at ``now``: constant over each slot."""
        slot = now // self.slot_seconds
        if self._slot is not None and self._slot[0] == slot:
            return self._slot[1]
        watts = self.base_watts
        if self.daily_shape:
            watts = watts * self.daily_shape[(slot * self.slot_seconds) % _DAY // _HOUR] // 100
        if self.variation:
            draw = random.Random(f"{self.seed}:{slot}")  # noqa: S311 - a simulation, not a secret
            jitter = draw.randint(-self.variation, self.variation)
            watts = watts * (100 + jitter) // 100
        self._slot = (slot, watts)
        return watts

    def demand_watts(self, now: int) -> int:
        """The household's demand (W) at ``now``: the base load plus every device's draw."""
        return self.base_load(max(now, self._time)) + self._device_watts

    def watt_seconds(self, now: int) -> int:
        """The energy used (W·s) from the start to ``now``."""
        self._advance(now)
        return self._watt_seconds

    def _advance(self, now: int) -> None:
        """Integrate the draw up to ``now``, slot by slot when the base load varies."""
        varies = bool(self.daily_shape or self.variation)
        while self._time < now:
            end = now
            if varies:
                end = min(now, (self._time // self.slot_seconds + 1) * self.slot_seconds)
            self._watt_seconds += (self.base_load(self._time) + self._device_watts) * (
                end - self._time
            )
            self._time = end

    # -- readings --------------------------------------------------------------------------

    def summation(self, now: int) -> int:
        """CurrentSummationDelivered (as a number, saturated; BCD-coded by :meth:`readings`)
        at ``now``."""
        divisor, multiplier = self._scale
        used = self.watt_seconds(now) * divisor // (WATT_SECONDS_PER_KWH * multiplier)
        return min(_TOP[self._bcd][0], self._start + used)

    def demand(self, now: int) -> int:
        """InstantaneousDemand (as a number, saturated; BCD-coded by :meth:`readings`) at
        ``now``."""
        divisor, multiplier = self._scale
        return min(_TOP[self._bcd][1], self.demand_watts(now) * divisor // (1000 * multiplier))

    def readings(self, now: int) -> Readings:
        """Summation delivered and instantaneous demand at ``now`` (a ReadingSource)."""
        summation, demand = self.summation(now), self.demand(now)
        if self._bcd:
            summation, demand = _bcd(summation), _bcd(demand)
        return Readings(summation_delivered=summation, instantaneous_demand=demand)


def _bcd(value: int) -> int:
    """``value`` BCD-coded (UnitOfMeasure bit 7, D.3.2.2.4.1)."""
    return int(str(value), 16)
