"""``zse esi --radio sim``: the operator shell on the simulator, to try without a stick.

:class:`SimulatedHan` gives ``run_esi`` what a stick would: an application factory (the
simulator's coordinator, :mod:`zse.sim`) and the ESI's CBKE credentials, from a test CA of its
own. Three simulated HAN devices (:mod:`zse.roles.han`) stand by, each with the MAC address and
install code printed at start: as a real device does, each tries to join every few seconds,
and gets in once the operator has provisioned it with its install code; then it runs CBKE,
shows prices and messages (and confirms those asking for it), and applies load control; with a
``[meter]`` the display also follows the ESI's meter (summation and demand by reporting). What
they do is printed with a ``sim:`` prefix.

With a registry file (``database``), the simulated radio's non-volatile memory and the devices'
are kept beside it (``<database>-sim.json``, mode 0600: it holds keys): the network (PAN,
network key, frame counter), the Trust Center's address and key tables, each joined device's
frame counter. Started again on it, the simulator resumes that network as a stick does, and the
devices that were on it come back as after a power cycle (SE 1.2 5.4.2.2.3.4: a device that
lost its Trust Center rejoins, ZB 3.6.1.4.2, with the network key it kept, or, that refused,
with a Trust Center rejoin, ZB 4.6.3.6, under its link key); each then finds the ESI and runs
CBKE again (a re-key, which leaves a METER_READY device METER_READY) and resyncs. ``--form``
(``[network] form``) forms a new network instead, as on a stick.

Time is virtual (:class:`~zse.sim.VirtualClockLoop`): it follows the real clock while the
shell waits for a command, and jumps while a command waits (``wait``, ``sleep``), so a script
of an afternoon runs in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
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
#: How far a restored NWK frame counter jumps past the one stored: it is stored when a device
#: joins, is keyed or leaves and when the simulator stops, and never goes back (ZB 4.3.1.1).
COUNTER_JUMP = 1 << 16
#: The version of the saved simulator state (``<database>-sim.json``).
STATE_VERSION = 1


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
        wall: Callable[[], float] = time.time,
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
        #: (device kind, attribute) its meter answered UNSUPPORTED_ATTRIBUTE, said once until
        #: a reading of it comes
        self._unsupported: set[tuple[str, int]] = set()
        self._base: float | None = None
        #: the wall clock (Unix seconds), which :meth:`clock` never falls behind
        self.wall = wall
        #: where the simulator's state is kept (None: nowhere, a fresh HAN each start)
        self.state_path: Path | None = None
        self._app: Any = None
        self._radio: Any = None

    def _seeded(self) -> random.Random:
        return random.Random(self.rng.getrandbits(64))  # noqa: S311 - simulation: test keys

    def clock(self) -> int:
        """ZigBee UTCTime: the wall clock at start plus the virtual seconds since, and never
        behind the wall clock. While the loop follows the real clock, the time it spends
        working (CBKE's arithmetic) does not move the virtual clock (:meth:`~zse.sim.
        VirtualClockLoop.real_time`), which would fall behind the wall clock that a headend
        stamps its own records by: a gateway's ``provision`` was then stamped a second
        before the headend's ``register`` that caused it. Virtual waits (a script's
        ``sleep``) move it ahead of the wall clock."""
        from zse.time.service import zigbee_time  # noqa: PLC0415

        loop = asyncio.get_running_loop()
        wall = self.wall()
        if self._base is None:
            self._base = wall - loop.time()
        return zigbee_time(max(self._base + loop.time(), wall))

    async def factory(self, options: Any) -> Any:
        """The application factory: the simulator's coordinator, and the HAN powered on. With
        ``options.zigpy_database`` (``run_esi``'s), the state saved beside it is resumed
        (unless ``options.network.form``) and kept up to date."""
        saved: _Saved | None = None
        zigpy_database = getattr(options, "zigpy_database", None)
        if zigpy_database:
            self.state_path = state_path(Path(zigpy_database))
            if not getattr(options.network, "form", False):
                saved = load_state(self.state_path)
        app = await self.air.coordinator(
            channel=options.network.channel or SIM_CHANNEL,
            pan_id=options.network.pan_id,
            ieee=SIM_ESI,
            backup=None if saved is None else saved.resumed(),
        )
        self._app, self._radio = app, app.radio
        self.out(self.heading)
        for kind, eui, code in SIM_HAN:
            # with a [meter], the display follows it (#14): summation and demand by reporting
            metering = bool(options.meter) and kind == "InHomeDisplay"
            self.devices.append(_Device(kind, self._role(kind, eui, code, metering=metering)))
            self.out(f"  {eui}  {_KINDS[kind]:<19}  install code {code}")
        if saved is None:
            self.save()  # a new network: kept from now on
        for device in self.devices:
            counter = None if saved is None else saved.devices.get(str(device.role.device.ieee), 0)
            device.task = asyncio.get_running_loop().create_task(self._power_on(device, counter))
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

    async def _power_on(self, device: _Device, counter: int | None = None) -> None:
        """Try to join (and run CBKE) until it works, as a device just switched on; one that
        was on the resumed network (its frame counter ``counter`` saved) rejoins it first."""
        from zse.sim import JoinRefused  # noqa: PLC0415

        if counter is not None:
            await self._rejoin(device, counter)
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

    async def _rejoin(self, device: _Device, counter: int) -> None:
        """Back on the resumed network with what the device kept (:meth:`SimDevice.resume`):
        a rejoin secured with the network key, else a Trust Center rejoin, then Device_annce
        (ZB 2.4.3.1.11), by which zigpy learns of it again. Refused both ways, it forgets the
        network and joins as a new device would (once admitted again)."""
        sim = device.role.device
        radio = self._radio
        nwk = radio.children.get(sim.ieee)
        key = radio.link_keys.get(sim.ieee)
        if nwk is None or key is None or radio.network_key is None:
            return  # the Trust Center no longer has it: it joins anew
        sim.resume(
            channel=radio.channel,
            pan_id=radio.pan_id,
            extended_pan_id=radio.extended_pan_id,
            nwk=nwk,
            network_key=radio.network_key,
            network_key_seq=radio.network_key_seq,
            tc_ieee=radio.ieee,
            link_key=key,
            frame_counter=min(counter + COUNTER_JUMP, 0xFFFFFFFF),
        )
        if await sim.rejoin(secure=True) or await sim.rejoin(secure=False):
            await sim.announce()
            self.out(f"sim: {_KINDS[device.kind]} rejoined the network")
        else:
            await sim.leave()

    def _on_event(self, kind: str, role: Any, event: Any) -> None:
        name = type(event).__name__
        if name in ("KeyEstablished", "Left"):
            self.save()  # a device keyed or gone: what the radios keep changed
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
            self._unsupported.discard((kind, event.attribute))
            self.out(f"sim: {kind} shows {what} {event.reading}")
        elif name == "AttributeUnsupported" and (kind, event.attribute) not in self._unsupported:
            from zse.metering.protocol import SUMMATION  # noqa: PLC0415

            what = "summation" if event.attribute == SUMMATION else "demand"
            self._unsupported.add((kind, event.attribute))
            self.out(f"sim: {kind} shows no {what}: the meter answers it UNSUPPORTED_ATTRIBUTE")
        elif name == "ThermostatChanged":
            self.out(f"sim: {kind} cooling set point {event.cooling_set_point / 100:.1f} C")

    async def _confirm(self, kind: str, role: Any, message_id: int) -> None:
        """The user confirms the message after :data:`CONFIRM_AFTER` s, unless it was
        confirmed meanwhile (over MQTT, by the application) or is gone: said, not raised."""
        from zse.messaging.core import MessageError  # noqa: PLC0415

        await asyncio.sleep(CONFIRM_AFTER)
        try:
            await role.confirm(message_id)
        except MessageError as exc:
            self.out(f"sim: the {kind}'s user does not confirm message {message_id}: {exc}")
        else:
            self.out(f"sim: the {kind}'s user confirmed message {message_id}")

    def _later(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def save(self) -> None:
        """Write the simulator's state (see the module notes) to :attr:`state_path`, if any:
        the coordinator's and each joined device's non-volatile memory, frame counters
        included. Also after the coordinator was shut down (the radio node stays)."""
        if self.state_path is None or self._radio is None:
            return
        import zigpy.backups  # noqa: PLC0415

        radio = self._radio
        info = self._app.state.network_info
        info = info.replace(
            network_key=info.network_key.replace(tx_counter=radio.nwk_frame_counter),
            children=sorted(radio.children),
            nwk_addresses=dict(radio.children),
            key_table=[_key(ieee, key) for ieee, key in sorted(radio.link_keys.items())],
        )
        backup = zigpy.backups.NetworkBackup(network_info=info, node_info=self._app.state.node_info)
        devices = {
            str(d.role.device.ieee): d.role.device.nwk_frame_counter
            for d in self.devices
            if d.role.device.joined
        }
        text = json.dumps(
            {"version": STATE_VERSION, "backup": backup.as_dict(), "devices": devices}, indent=1
        )
        _write_private(self.state_path, text)

    async def close(self) -> None:
        """Switch the devices off (the state saved first: :meth:`save`; a save that fails
        raises its :class:`~zse.errors.StoreError` once they are off)."""
        try:
            self.save()
        finally:
            await self._switch_off()

    async def _switch_off(self) -> None:
        tasks = [d.task for d in self.devices if d.task is not None] + list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for device in self.devices:
            with contextlib.suppress(Exception):
                await device.role.stop()
        self.air.close()


@dataclass(frozen=True)
class _Saved:
    backup: Any  # zigpy.backups.NetworkBackup
    devices: dict[str, int]  # EUI-64 -> its NWK frame counter

    def resumed(self) -> Any:
        """The coordinator's backup, its frame counter moved past what it may have sent
        since it was stored (ZB 4.3.1.1)."""
        info = self.backup.network_info
        key = info.network_key
        counter = min(int(key.tx_counter) + COUNTER_JUMP, 0xFFFFFFFF)
        return self.backup.replace(
            network_info=info.replace(network_key=key.replace(tx_counter=counter))
        )


def state_path(zigpy_database: Path) -> Path:
    """Where the simulator's state is kept: ``esi-1-sim.json`` beside ``esi-1.db`` (whose
    zigpy database is ``esi-1-zigpy.db``)."""
    stem = zigpy_database.name.removesuffix(".db").removesuffix("-zigpy")
    return zigpy_database.with_name(f"{stem}-sim.json")


def load_state(path: Path) -> _Saved | None:
    """The state saved at ``path`` (None: no file); :class:`~zse.config.ConfigError` for
    one that is not the simulator's (no key in the message)."""
    import zigpy.backups  # noqa: PLC0415

    from zse._files import read_text_bounded  # noqa: PLC0415
    from zse.config import ConfigError  # noqa: PLC0415
    from zse.installcode import parse_eui64  # noqa: PLC0415

    def bad(why: str) -> ConfigError:
        return ConfigError(
            f"{path}: not the simulator's saved network ({why}): remove it to form a new one"
        )

    try:
        text = read_text_bounded(path, error=bad)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise bad(type(exc).__name__) from None
    try:
        data = json.loads(text)
        if data["version"] != STATE_VERSION:
            raise bad(f"version {data['version']!r}")
        backup = zigpy.backups.NetworkBackup.from_dict(data["backup"])
        # zse's parser (InvalidEui64): zigpy's EUI64.convert asserts the length
        devices = {str(parse_eui64(eui)): int(n) for eui, n in data["devices"].items()}
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise bad(f"{type(exc).__name__} in its content") from None
    if not backup.is_complete() or str(backup.node_info.ieee) != SIM_ESI:
        raise bad("an incomplete network, or another coordinator's")
    return _Saved(backup, devices)


def _key(ieee: Any, key: bytes) -> Any:
    """A key table entry (zigpy's) of the link key shared with ``ieee``."""
    import zigpy.state  # noqa: PLC0415
    import zigpy.types as t  # noqa: PLC0415

    return zigpy.state.Key(key=t.KeyData(key), partner_ieee=ieee)


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step, readable by its owner only (keys), on disk
    (the file, then its directory, fsynced). :class:`~zse.errors.StoreError` naming ``path``
    if it cannot be written (a full disk, a directory in the way): the last state saved is
    kept, and no partial copy of it left beside it."""
    from zse._files import sync_directory  # noqa: PLC0415
    from zse.errors import StoreError  # noqa: PLC0415

    temporary = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        handle = os.fdopen(fd, "w", encoding="utf-8")
        try:
            with handle:
                os.fchmod(handle.fileno(), 0o600)  # a file left there keeps its mode otherwise
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())  # on disk before it replaces the last state
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        os.replace(temporary, path)
    except OSError as exc:
        raise StoreError(
            f"{path}: cannot save the simulator's network: {exc.strerror or exc} "
            f"({exc.filename or path}); the state saved before is kept"
        ) from None
    sync_directory(path.parent)  # the rename on disk too: else a power cut may bring
    # back the state before it (devices joined since would be strangers)
