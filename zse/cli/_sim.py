"""``zse esi --radio sim``: the operator shell on the simulator, to try without a stick.

:class:`SimulatedHan` gives ``run_esi`` what a stick would: an application factory (the
simulator's coordinator, :mod:`zse.sim`) and the ESI's CBKE credentials, from a test CA of its
own. Three simulated HAN devices (:mod:`zse.roles.han`) stand by, each with the MAC address and
install code printed at start: as a real device does, each tries to join every few seconds,
and gets in once the operator has provisioned it with its install code; then it runs CBKE,
shows prices and messages (and confirms those asking for it), and applies load control; with a
``[meter]`` the display also follows the ESI's meter (summation and demand by reporting). What
they do is printed with a ``sim:`` prefix.

Time is virtual (:class:`~zse.sim.VirtualClockLoop`): it follows the real clock while the
shell waits for a command, and jumps while a command waits (``wait``, ``sleep``), so a script
of an afternoon runs in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["SIM_ESI", "SIM_HAN", "SimulatedHan"]

#: The simulated coordinator (the ESI) and its channel.
SIM_ESI = "00:0d:6f:00:00:00:00:e5"
SIM_CHANNEL = 15
#: The simulated devices: role, MAC address, install code (as on their labels), what they are.
SIM_HAN = (
    ("InHomeDisplay", "00:0d:6f:00:0a:00:00:01", "83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5"),
    (
        "ProgrammableThermostat",
        "00:0d:6f:00:0a:00:00:02",
        "0102 0304 0506 0708 090A 0B0C 0D0E 0F10 90FD",
    ),
    (
        "LoadControlDevice",
        "00:0d:6f:00:0a:00:00:03",
        "1122 3344 5566 7788 99AA BBCC DDEE FF00 D5E6",
    ),
)
_KINDS = {
    "InHomeDisplay": "in-home display",
    "ProgrammableThermostat": "thermostat",
    "LoadControlDevice": "water heater switch",
}
#: Seconds between a device's attempts to join (a real device scans now and then too).
JOIN_RETRY = 2.0
#: Seconds before the display's user confirms a message that asks for it.
CONFIRM_AFTER = 10.0


@dataclass
class _Device:
    kind: str
    role: Any
    task: asyncio.Task[None] | None = None


class SimulatedHan:
    """The simulated radio and HAN of ``zse esi --radio sim`` (see the module notes)."""

    def __init__(
        self,
        out: Callable[[str], None],
        *,
        seed: int = 1,
        heading: str = "simulated HAN devices (each joins once provisioned with its install code):",
    ) -> None:
        from zse.cbke import SUITE1  # noqa: PLC0415
        from zse.cbke.ca import TestCA  # noqa: PLC0415
        from zse.cbke.service import eui64_bytes  # noqa: PLC0415
        from zse.installcode import parse_eui64  # noqa: PLC0415
        from zse.sim import Air  # noqa: PLC0415

        self.out = out
        self.heading = heading
        self.rng = random.Random(seed)  # noqa: S311 - simulation only: test keys
        self.air = Air(seed=seed)
        self.ca = TestCA.generate(rng=self._seeded())
        self.credentials = self.ca.issue(
            eui64_bytes(parse_eui64(SIM_ESI)), SUITE1, rng=self._seeded()
        )
        self.devices: list[_Device] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._base: int | None = None

    def _seeded(self) -> random.Random:
        return random.Random(self.rng.getrandbits(64))  # noqa: S311 - simulation: test keys

    def clock(self) -> int:
        """ZigBee UTCTime: the real time at start, plus the virtual seconds since."""
        from zse.time.service import system_clock  # noqa: PLC0415

        loop = asyncio.get_running_loop()
        if self._base is None:
            self._base = system_clock() - int(loop.time())
        return self._base + int(loop.time())

    async def factory(self, options: Any) -> Any:
        """The application factory: the simulator's coordinator, and the HAN powered on."""
        app = await self.air.coordinator(
            channel=options.network.channel or SIM_CHANNEL,
            pan_id=options.network.pan_id,
            ieee=SIM_ESI,
        )
        self.out(self.heading)
        for kind, eui, code in SIM_HAN:
            # with a [meter], the display follows it (#14): summation and demand by reporting
            metering = bool(options.meter) and kind == "InHomeDisplay"
            self.devices.append(_Device(kind, self._role(kind, eui, code, metering=metering)))
            self.out(f"  {eui}  {_KINDS[kind]:<19}  install code {code}")
        for device in self.devices:
            device.task = asyncio.get_running_loop().create_task(self._power_on(device))
        return app

    def _role(self, kind: str, eui: str, code: str, *, metering: bool = False) -> Any:
        from zse.cbke import SUITE1  # noqa: PLC0415
        from zse.cbke.service import eui64_bytes  # noqa: PLC0415
        from zse.installcode import InstallCode  # noqa: PLC0415
        from zse.roles import han  # noqa: PLC0415

        sim = self.air.device(eui, install_code=InstallCode.parse(code), channel=SIM_CHANNEL)
        role = getattr(han, kind)(
            sim,
            credentials=self.ca.issue(eui64_bytes(sim.ieee), SUITE1, rng=self._seeded()),
            clock=self.clock,
            rng=self._seeded(),
            **({"metering": True} if metering else {}),
        )
        role.on_event(lambda event: self._on_event(_KINDS[kind], role, event))
        return role

    async def _power_on(self, device: _Device) -> None:
        """Try to join (and run CBKE) until it works, as a device just switched on."""
        from zse.sim import JoinRefused  # noqa: PLC0415

        reported = False
        while True:
            try:
                await device.role.start()
            except JoinRefused:
                pass
            except Exception as exc:  # told once, then tried again
                if not reported:
                    self.out(f"sim: {_KINDS[device.kind]}: {type(exc).__name__}: {exc}")
                    reported = True
            else:
                self.out(f"sim: {_KINDS[device.kind]} joined and keyed; resynced")
                return
            await asyncio.sleep(JOIN_RETRY)

    def _on_event(self, kind: str, role: Any, event: Any) -> None:
        name = type(event).__name__
        if name == "PriceReceived" and event.new:
            price = event.price
            digits = price.price_trailing_digit
            label = price.rate_label.decode(errors="replace")
            self.out(f"sim: {kind} got price {label!r} {price.price / 10**digits:.{digits}f}")
        elif name == "MessageDisplayed":
            self.out(f"sim: {kind} shows message {event.message.message_id}: {event.text!r}")
            if event.message.confirmation_required:
                self._later(self._confirm(kind, role, event.message.message_id))
        elif name == "LoadChanged":
            self.out(f"sim: {kind} duty cycle {event.duty_cycle}%")
        elif name == "MeterReading":
            from zse.metering.protocol import SUMMATION  # noqa: PLC0415

            what = "summation" if event.attribute == SUMMATION else "demand"
            self.out(f"sim: {kind} shows {what} {event.reading}")
        elif name == "ThermostatChanged":
            self.out(f"sim: {kind} cooling set point {event.cooling_set_point / 100:.1f} C")

    async def _confirm(self, kind: str, role: Any, message_id: int) -> None:
        await asyncio.sleep(CONFIRM_AFTER)
        self.out(f"sim: the {kind}'s user confirms message {message_id}")
        await role.confirm(message_id)

    def _later(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Switch the devices off."""
        tasks = [d.task for d in self.devices if d.task is not None] + list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for device in self.devices:
            with contextlib.suppress(Exception):
                await device.role.stop()
        self.air.close()
