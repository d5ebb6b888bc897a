"""A simulated household: the HAN roles' loads on a :class:`~zse.metering.load.HouseholdLoad`.

:class:`Household` listens to the roles' device events and sets each device's load in the
model at the time they happen: a :class:`~zse.roles.han.LoadControlDevice`'s
:class:`~zse.roles.han.LoadChanged` sets its duty cycle (0 when off), a
:class:`~zse.roles.han.ProgrammableThermostat`'s :class:`~zse.roles.han.ThermostatChanged`
its set point offset from the user's (:func:`~zse.metering.load.set_point_offset`). So a Load
Control Event (SE D.2.2.3.1) lowers the household's demand from the moment the device applies
it until it stops (end, cancel, supersede or opt-out), and a device with no event draws its
rated power. The roles and their frames are untouched: the household only listens.
"""

from __future__ import annotations

from collections.abc import Callable

from zse.metering.core import Readings
from zse.metering.load import (
    DEFAULT_MAX_REDUCTION,
    DEFAULT_PERCENT_PER_DEGREE,
    HouseholdLoad,
    LoadModelError,
    set_point_offset,
)
from zse.roles.han import (
    HanDevice,
    HanEvent,
    LoadChanged,
    LoadControlDevice,
    ProgrammableThermostat,
    ThermostatChanged,
)

__all__ = ["Household"]


class Household:
    """HAN devices' loads adding up in ``model``, a ReadingSource for the ESI's meter.

    ``clock()`` is ZigBee time (the same clock the roles and the meter use): a device's change
    counts from the second it happens.
    """

    def __init__(self, model: HouseholdLoad, *, clock: Callable[[], int]) -> None:
        self.model = model
        self.clock = clock
        self._detach: dict[str, Callable[[], None]] = {}

    def attach(
        self,
        role: HanDevice,
        *,
        rated_watts: int,
        heating: bool = False,
        percent_per_degree: int = DEFAULT_PERCENT_PER_DEGREE,
        max_reduction: int = DEFAULT_MAX_REDUCTION,
    ) -> None:
        """Put ``role``'s load (``rated_watts`` at normal operation) in the household, in its
        present state, and follow it. A thermostat ``heating`` saves when its set point goes
        down, else (cooling) when it goes up; see :class:`~zse.metering.load.DeviceLoad` for
        the rule."""
        if not isinstance(role, LoadControlDevice | ProgrammableThermostat):
            raise LoadModelError(f"{type(role).__name__} {role.name} has no load to model")
        name, now = role.name, self.clock()
        self.model.add_device(
            name,
            rated_watts,
            now,
            percent_per_degree=percent_per_degree,
            max_reduction=max_reduction,
        )
        if isinstance(role, LoadControlDevice):
            self.model.set_duty_cycle(name, role.duty_cycle if role.on else 0, now)
        else:
            self.model.set_set_point_offset(name, _offset(role, heating), now)

        def follow(event: HanEvent) -> None:
            if isinstance(event, LoadChanged):
                duty = event.duty_cycle if event.on else 0
                self.model.set_duty_cycle(name, duty, self.clock())
            elif isinstance(event, ThermostatChanged) and isinstance(role, ProgrammableThermostat):
                self.model.set_set_point_offset(name, _offset(role, heating), self.clock())

        self._detach[name] = role.on_event(follow)

    def detach(self, role: HanDevice) -> None:
        """Take ``role``'s load out of the household (it stops drawing now)."""
        self._detach.pop(role.name)()
        self.model.remove_device(role.name, self.clock())

    def readings(self, now: int) -> Readings:
        """The household's readings at ``now`` (a ReadingSource)."""
        return self.model.readings(now)


def _offset(role: ProgrammableThermostat, heating: bool) -> int:
    """The thermostat's set point offset from the user's (0.01 °C)."""
    if heating:
        return set_point_offset(role.heating_set_point, role.user_heating_set_point, heating=True)
    return set_point_offset(role.cooling_set_point, role.user_cooling_set_point)
