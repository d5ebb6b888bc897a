"""``zse demo``: the main job of ``make demo`` — a whole Smart Energy HAN, told as a story.

On the simulator (:mod:`zse.sim`, virtual time, so an afternoon takes a second or two) an ESI
(the meter and Trust Center, :class:`~zse.roles.esi.EnergyServiceInterface` on zigpy) and four
HAN devices (:mod:`zse.roles.han`: an in-home display, a thermostat, a water-heater load
control device and a battery gas meter) go through: provisioning by install code (registry
states shown), joins, CBKE with test certificates, the meter's readings (a simulated household
load: the thermostat and the water heater add up) followed by the display by attribute
reporting, the gas meter mirrored on the ESI, the time with daylight saving, a price and a block
tariff with the display's cost, a message displayed and confirmed, a load control event sent by
registry group with every status report (the meter's demand drops while it runs), the load
profile, SE 1.2 metering (the display takes a snapshot and reads it back, and reads the
samples of the demand it asked the meter to take through the load control event; the utility
arms the supply and the consumer restores it from the display), an inter-PAN price request
from a display that never joined, a de-provisioning, and
an installer's terminal the way GB smart metering does it (key establishment over inter-PAN, a
secured handover of its install code, the join, a signed service request over a tunnel whose
link breaks halfway and resumes, a replay refused).
``--pcap`` writes every frame on the air, NWK- and APS-secured; ``--keys`` writes the run's keys
for Wireshark, which then decodes the SE commands; ``--seed`` makes two runs identical, byte for
byte.

The story ends cleanly whatever stops it: a reader that goes away (``zse demo | head -1``:
the next line raises BrokenPipeError), Ctrl-C, or an error — the devices, the ESI, the
registry's database and its temporary directory are closed and removed on the way out.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import random
import shlex
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn

import click

from zse.cli._errors import fail
from zse.cli._files import OutputError, named_output
from zse.cli._logging import redact_handlers

if TYPE_CHECKING:
    from zse.sim import Household

__all__ = ["demo", "story"]

#: ZigBee UTCTime at the start of the story: 2025-05-08 16:00 UTC, 17:00 in London (BST),
#: when the evening peak begins.
START = 800_035_200
GROUP = "elm-street"
ZONE = "Europe/London"  # the ESI's time zone: British Summer Time is in force in May
#: The household: what is always on, and the rated power of the loads the devices control (W).
BASE_WATTS = 350
RATED_WATTS = {"thermostat": 2000, "heater": 3000}
#: The display's sampling of the demand through the load control event (SE 1.2 Start
#: Sampling): every 5 min, 8 samples, the first 4.5 min before the event starts, the last
#: half a minute after it ends (away from the meter's 30 s readings, at :00 and :30).
SAMPLE_SECONDS = 5 * 60
SAMPLES = 8
SAMPLE_FROM = -270


class _Teller:
    """Tells the story through ``say``. Lines are also said from inside the stack's event
    callbacks, where an exception would land in whatever code emitted the event; so when
    ``say`` fails (the reader went away: BrokenPipeError), the failure is kept, the story's
    task is cancelled (it closes everything on its way out) and nothing more is said."""

    def __init__(self, say: Callable[[str], None], task: asyncio.Task[Any]) -> None:
        self._say = say
        self._task = task
        self.failure: Exception | None = None

    def __call__(self, text: str) -> None:
        if self.failure is not None:
            return
        try:
            self._say(text)
        except Exception as exc:  # handed back to the caller of story()
            self.failure = exc
            self._task.cancel()


async def story(
    seed: int = 1,
    capture: str | os.PathLike[str] | BinaryIO | None = None,
    say: Callable[[str], None] = print,
    keys: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Run the demo; returns what happened (for tests). ``keys``: write every key of the run
    there as Wireshark's ZigBee key table (mode 0600). If ``say`` raises, the story stops,
    cleans up and raises that exception."""
    task = asyncio.current_task()
    assert task is not None
    teller = _Teller(say, task)
    try:
        happened = await _tell(seed, capture, teller, keys)
    except asyncio.CancelledError:
        if teller.failure is None:
            raise  # Ctrl-C (asyncio.Runner cancels the main task) or a caller's cancel
        task.uncancel()
    if teller.failure is not None:
        raise teller.failure
    return happened


#: Who the log's second column names, for a reader new to SE's words (zse's own wording).
_LEGEND = (
    "  who's who: headend = the utility; ESI = the meter, which runs the home area network\n"
    "  (HAN); ihd = the in-home display; registry = the ESI's list of devices;\n"
    "  CBKE = certificate-based key establishment, which gives each device its own key"
)


def _currency(code: int) -> str:
    """The ISO 4217 alphabetic code of a Publish Price currency field (SE D.4.2.4.1.1.6)."""
    return _ISO_4217.get(code, f"currency {code}")


#: The ISO 4217 numeric codes the demo may show, and their letters.
_ISO_4217 = {826: "GBP", 840: "USD", 978: "EUR"}


def _label(label: bytes) -> str:
    """A Publish Price's rate label (an octet string, SE D.4.2.4.1.1.4) as text; bytes that
    are not UTF-8 shown as replacement characters, not a failure of the story."""
    return label.decode(errors="replace")


def _per_kwh(price: Any) -> str:
    """A Publish Price's price per unit, as the frame says it: the price field with the
    decimal point ``price_trailing_digit`` places from the right, in the frame's currency."""
    digits = price.price_trailing_digit
    unit = "kWh" if price.unit_of_measure == 0 else f"unit {price.unit_of_measure}"
    return f"{price.price / 10**digits:.{digits}f} {_currency(price.currency)}/{unit}"


async def _tell(  # noqa: PLR0915 - one story, told in order
    seed: int,
    capture: str | os.PathLike[str] | BinaryIO | None,
    say: Callable[[str], None],
    keys: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    from zse.cbke import SUITE1  # noqa: PLC0415 - the CLI imports lazily
    from zse.cbke.ca import TestCA  # noqa: PLC0415
    from zse.cbke.service import eui64_bytes  # noqa: PLC0415
    from zse.drlc import LoadControlEvent  # noqa: PLC0415
    from zse.installcode import InstallCode  # noqa: PLC0415
    from zse.interpan.se import InterPanSeClient  # noqa: PLC0415
    from zse.interpan.service import InterPanService  # noqa: PLC0415
    from zse.interpan.transports.sim import SimTransport  # noqa: PLC0415
    from zse.messaging import Message, MessageDisplayed  # noqa: PLC0415
    from zse.metering.core import PROFILE_INTERVAL_SECONDS, Readings  # noqa: PLC0415
    from zse.metering.display import interval_text  # noqa: PLC0415
    from zse.metering.mirror import MirrorAdded  # noqa: PLC0415
    from zse.metering.service import MeteringClient  # noqa: PLC0415
    from zse.metering.supply import SupplyChanged  # noqa: PLC0415
    from zse.price import PriceAttributes, PriceEvent  # noqa: PLC0415
    from zse.price.core import BlockPeriod  # noqa: PLC0415
    from zse.price.service import PriceReceived  # noqa: PLC0415
    from zse.provisioning.registry import HanRegistry  # noqa: PLC0415
    from zse.roles.esi import (  # noqa: PLC0415
        EnergyServiceInterface,
        KeyEstablished,
        LifecycleChanged,
        MessageConfirmed,
        ReportReceived,
    )
    from zse.roles.gas_meter import GasMeter, MirrorAssigned  # noqa: PLC0415
    from zse.roles.han import (  # noqa: PLC0415
        InHomeDisplay,
        Joined,
        LoadChanged,
        LoadControlDevice,
        ProgrammableThermostat,
        Resynced,
        ThermostatChanged,
    )
    from zse.se.types import event_status_text  # noqa: PLC0415
    from zse.sim import Air  # noqa: PLC0415
    from zse.sim._clock import InlineExecutor  # noqa: PLC0415

    rng = _seeded(seed)
    loop = asyncio.get_running_loop()
    inline = InlineExecutor()

    def clock() -> int:
        return START + int(loop.time())

    def stamp() -> str:
        return _minutes(int(loop.time()))

    def log(who: str, text: str) -> None:
        say(f"[{stamp()}] {who:<11} {text}")

    def chapter(title: str) -> None:
        say(f"\n== {title}")

    async with contextlib.AsyncExitStack() as cleanup:
        # Closed in reverse order on any way out: the temporary directory last.
        workdir = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="zse-demo-"))
        air = Air(seed=seed, capture=capture, epoch=START + 946_684_800 + loop.time())  # Unix
        cleanup.callback(air.close)
        if keys is not None:  # written last (on the way out): the run's keys, all of them
            cleanup.callback(_write_keys, air, keys)
        app = await air.coordinator(channel=15, ieee="00:0d:6f:00:00:00:00:e5")
        cleanup.push_async_callback(_bounded, app.shutdown)
        ca = TestCA.generate(rng=_seeded(rng.getrandbits(64)))
        registry = await HanRegistry.open(
            Path(workdir) / "han.db", clock=lambda: float(clock() + 946_684_800)
        )
        cleanup.push_async_callback(_bounded, registry.close)
        meter_formatting = meter_attributes()
        household = simulated_household(clock)
        formatting = household.model.formatting
        esi = EnergyServiceInterface(
            app,
            credentials=ca.issue(eui64_bytes(app.state.node_info.ieee), SUITE1, rng=rng),
            registry=registry,
            clock=clock,
            executor=inline,
            rng=_seeded(rng.getrandbits(64)),
            first_tsn=rng.randrange(256),
            time_zone=ZONE,
            # 15-minute load profile intervals (ProfileIntervalPeriod 3, SE D.3.2.2.6); supply
            # control (SE 1.2): the utility may arm the supply, the consumer restore it
            meter={
                "formatting": meter_formatting,
                "source": household,
                "profile_period": 3,
                "supply": True,
            },
            mirrors=1,
        )
        await esi.start()
        cleanup.push_async_callback(_bounded, esi.stop)
        info = app.state.network_info
        say(
            f"zse demo (seed {seed}): a Smart Energy HAN on the simulator; "
            "times are virtual (m:ss since the start)"
        )
        say(_LEGEND)
        log(
            "ESI",
            f"meter {app.state.node_info.ieee} formed PAN 0x{info.pan_id:04X} on channel "
            f"{info.channel}; test CA issuer {ca.issuer.decode()}",
        )
        happened: dict[str, Any] = {
            "lifecycle": [],
            "reports": [],
            "confirmations": [],
            "supply": [],
        }

        # The registry writes each change to its database (a thread) before telling it, so
        # when a change is told among the frames of the same instant depends on the thread:
        # the changes are told where the story waits for the registry (``registry_told``), in
        # the order they happened, and the story reads the same on every run.
        registry_lines: list[tuple[str, str]] = []

        def registry_told() -> None:
            for when, text in registry_lines:
                say(f"[{when}] {'registry':<11} {text}")
            registry_lines.clear()

        def esi_event(event: Any) -> None:
            if isinstance(event, LifecycleChanged):
                happened["lifecycle"].append(
                    (event.device, event.event.value, event.to_state.value)
                )
                if event.from_state is not event.to_state:
                    registry_lines.append(
                        (
                            stamp(),
                            f"{names.get(event.device, event.device):<10} "
                            f"{event.from_state.value} -> {event.to_state.value} "
                            f"({event.event.value})",
                        )
                    )
            elif isinstance(event, KeyEstablished):
                log(
                    "ESI",
                    f"CBKE with {names[event.device]} done (suite {event.suite}): "
                    "its install-code link key is replaced",
                )
            elif isinstance(event, ReportReceived):
                status = event.report.event_status
                happened["reports"].append((names[event.device], status))
                log(
                    "ESI",
                    f"report from {names[event.device]:<10} "
                    f"event 0x{event.report.issuer_event_id:08X}: {event_status_text(status)}"
                    + (" (signature verified)" if event.signed else ""),
                )
            elif isinstance(event, MessageConfirmed):
                happened["confirmations"].append(names[event.device])
                log("ESI", f"message {event.message.message_id} confirmed by {names[event.device]}")
            elif isinstance(event, SupplyChanged):
                happened["supply"].append((event.before, event.status, event.cause))
                log(
                    "ESI",
                    f"supply {_supply_name(event.before)} -> {_supply_name(event.status)} "
                    f"({event.cause})",
                )
            elif isinstance(event, MirrorAdded) and event.new:
                log(
                    "ESI",
                    f"mirror for {names[str(event.device)]} on endpoint {event.endpoint} "
                    "(Request Mirror answered)",
                )

        esi.on_event(esi_event)

        def device_event(who: str) -> Callable[[Any], None]:
            def told(event: Any) -> None:
                if isinstance(event, Joined):
                    log(
                        who,
                        f"joined as 0x{event.nwk:04X}; the ESI's Key Establishment server is "
                        f"on endpoint {event.esi_endpoint}",
                    )
                elif isinstance(event, Resynced):
                    log(who, "resynced: asked the ESI for the price, messages and events")
                elif isinstance(event, PriceReceived) and event.new:
                    log(who, f"price {_label(event.price.rate_label)}: {_per_kwh(event.price)}")
                elif isinstance(event, MessageDisplayed):
                    log(who, f'screen shows message {event.message.message_id}: "{event.text}"')
                elif isinstance(event, ThermostatChanged):
                    log(
                        who,
                        f"cooling set point {event.cooling_set_point / 100:.1f} C"
                        + (" (load control)" if event.issuer_event_id else " (back to normal)"),
                    )
                elif isinstance(event, LoadChanged):
                    log(
                        who,
                        f"duty cycle {event.duty_cycle}%"
                        + (" (load control)" if event.issuer_event_id else " (back to normal)"),
                    )
                elif isinstance(event, MirrorAssigned):
                    log(who, f"mirrored by the ESI on endpoint {event.endpoint}")

            return told

        # -- provisioning by install code ----------------------------------------------------
        chapter("Provisioning by install code and MAC address")
        kinds = {
            "ihd": (InHomeDisplay, "00:0d:6f:00:0a:00:00:01", "kitchen in-home display"),
            "thermostat": (ProgrammableThermostat, "00:0d:6f:00:0a:00:00:02", "hall thermostat"),
            "heater": (LoadControlDevice, "00:0d:6f:00:0a:00:00:03", "water heater switch"),
            "gas": (GasMeter, "00:0d:6f:00:0a:00:00:04", "gas meter"),
        }
        #: What each role is given besides the common arguments: the display shows energy.
        extra: dict[str, dict[str, Any]] = {"ihd": {"metering": True}}
        names: dict[str, str] = {}
        roles: dict[str, Any] = {}
        for key, (role_class, eui, label) in kinds.items():
            code = InstallCode.generate(rng=rng)
            # the gas meter is not in the retailer's group: no price or load control for it
            groups = [] if key == "gas" else [GROUP]
            record = await registry.register(eui, str(code), label=label, groups=groups)
            sim = air.device(eui, install_code=code, channel=15)
            log("headend", f"registered {label}: MAC {sim.ieee}, install code {code.grouped()}")
            names[str(sim.ieee)] = key
            role = role_class(
                sim,
                credentials=ca.issue(eui64_bytes(sim.ieee), SUITE1, rng=rng),
                clock=clock,
                rng=_seeded(rng.getrandbits(64)),
                cbke_rng=_seeded(rng.getrandbits(64)),
                executor=inline,
                **extra.get(key, {}),
            )
            role.on_event(device_event(key))
            cleanup.push_async_callback(_bounded, role.stop)
            roles[key] = role
        for record in registry.devices():
            log("registry", f"{names[str(_ieee(record.eui64))]:<10} {record.state.value}")
        for key, watts in RATED_WATTS.items():  # the loads the meter measures
            household.attach(roles[key], rated_watts=watts)

        chapter("Joining and key establishment (CBKE, test certificates)")
        for key, role in roles.items():
            await esi.provision(role.device.ieee)
            registry_told()
            log(key, "switched on: joins with its install code")
            await role.start()  # join, find the ESI, CBKE, resync (zigpy interviews it meanwhile)
            await esi.settle()
            registry_told()
        for record in registry.devices():
            log("registry", f"{names[str(_ieee(record.eui64))]:<10} {record.state.value}")

        ihd, thermostat, heater, gas = (roles[k] for k in ("ihd", "thermostat", "heater", "gas"))
        happened["screens"] = []

        def show_energy(note: str = "") -> None:
            screen = ihd.showing_energy()
            happened["screens"].append(screen)
            text = f"screen: {screen.consumption}, demand {screen.demand}"
            if screen.cost is not None:
                text += f"; used {screen.used} this block period, cost {screen.cost} GBP"
            log("ihd", text + note)

        # -- metering --------------------------------------------------------------------------
        chapter("Metering: the display follows the meter; the gas meter is mirrored")
        log(
            "ESI",
            f"meter on endpoint {esi.endpoint.endpoint_id} (Metering server): the household's "
            f"base load {BASE_WATTS} W, the thermostat's air conditioner "
            f"{RATED_WATTS['thermostat']} W, the water heater {RATED_WATTS['heater']} W",
        )
        assert ihd.metering is not None
        log(
            "ihd",
            f"found the meter on endpoint {ihd.metering.meter.endpoint} (Match Descriptor); "
            "read its formatting, asked for summation and demand reports (Configure Reporting)",
        )
        await asyncio.sleep(60)
        show_energy()
        now = await ihd.read_time()
        happened["local_time"] = now.local_time
        log("ihd", f"time read from the ESI (Time cluster): {_local_time(now)}")
        await asyncio.sleep(60)
        status = await gas.wake_up(Readings(summation_delivered=1_234_567))
        log(
            "gas",
            f"wakes up and pushes its register to the mirror (Report Attributes): {status.name}",
        )
        gas_view = MeteringClient(ihd.endpoint, meter_ep=gas.mirror, clock=clock)
        gas_view.start()
        cleanup.push_async_callback(_bounded, gas_view.stop)
        await asyncio.sleep(5)
        gas_used, _ = gas_view.current()
        happened["gas"] = str(gas_used)
        log("ihd", f"reads the gas meter's mirror on endpoint {gas.mirror}: {gas_used}")

        # -- price ---------------------------------------------------------------------------
        chapter("Price and a block tariff: the display shows the cost")
        tariff = PriceEvent(
            provider_id=0x2A2A,
            rate_label=b"PEAK",
            issuer_event_id=1001,
            unit_of_measure=0,  # kWh (SE D.3.2.2.1.1)
            currency=826,  # ISO 4217: GBP
            price_trailing_digit=4,  # 2450 -> 0.2450 GBP/kWh, i.e. 24.50 p/kWh
            price_tier=2,
            number_of_price_tiers=2,
            register_tier=2,
            start_time=0,
            duration_in_minutes=0xFFFF,
            price=2450,
        )
        sent = await esi.publish_price(tariff, group=GROUP)
        log("ESI", f"Publish Price to {sent.target}: {_outcomes(sent, names)}")
        await asyncio.sleep(2)
        # the block tariff the Price server serves (SE D.4.2.2.3-5): peak-tier prices per block
        esi.price.protocol.attributes = PriceAttributes(
            # 1 kWh and 3 kWh: 100000 and 300000 / ThresholdDivisor 100 = 1000 and 3000 Wh,
            # the meter's raw unit (its Divisor 1000; SE D.4.2.2.3.3)
            block_thresholds=(100_000, 300_000),
            threshold_multiplier=1,
            threshold_divisor=100,
            block_prices={(2, 1): 2000, (2, 2): 2450, (2, 3): 3000},
        )
        esi.price.serve_attributes()
        period = BlockPeriod(
            provider_id=0x2A2A,
            issuer_event_id=2001,
            block_period_start_time=0,  # now
            block_period_duration=24 * 60,  # a day, in minutes
        )
        sent = await esi.publish_price(period, group=GROUP)
        log(
            "ESI",
            f"Publish Block Period (a day; blocks from 1 and 3 kWh at 0.2000, 0.2450, 0.3000 "
            f"GBP/kWh) to {sent.target}: {_outcomes(sent, names)}",
        )
        await asyncio.sleep(2 * 60)
        show_energy()

        # -- a message displayed and confirmed ------------------------------------------------
        chapter("A message, displayed and confirmed")
        message = Message(
            message_id=42,
            text="Peak price 17:00-19:00: please save energy",
            duration_in_minutes=120,
            importance=2,
            confirmation_required=True,
        )
        sent = await esi.send_message(message, device=ihd.device.ieee)
        log("ESI", f"Display Message 42 to {sent.target}: {_outcomes(sent, names)}")
        await asyncio.sleep(30)
        log("ihd", "the user presses OK")
        await ihd.confirm(42)
        await asyncio.sleep(2)

        # -- load control by group -------------------------------------------------------------
        chapter(f"Load control event by registry group {GROUP!r}")
        begin = clock() + 5 * 60
        event = LoadControlEvent(
            issuer_event_id=0x0E0E_0001,
            device_class=0x0001 | 0x0004,  # HVAC and water heaters
            start_time=begin,
            duration_in_minutes=30,
            criticality_level=0x04,
            cooling_temperature_set_point=2700,
            duty_cycle=40,
        )
        sent = await esi.send_load_control(event, group=GROUP)
        log(
            "ESI",
            f"Load Control Event 0x{event.issuer_event_id:08X} (start in 5 min, 30 min) to "
            f"{sent.target}: {_outcomes(sent, names)}",
        )
        # the display samples the demand through the event (SE 1.2 Start Sampling), from
        # before it starts to after it ends; read back in the snapshots chapter
        sampling = await ihd.metering.start_sampling(
            1, interval=SAMPLE_SECONDS, count=SAMPLES, start=begin + SAMPLE_FROM
        )
        log(
            "ihd",
            f"Start Sampling: the demand every {SAMPLE_SECONDS // 60} min through the event, "
            f"{SAMPLES} samples from {_at(begin + SAMPLE_FROM)}: session {sampling}",
        )
        await asyncio.sleep(20 * 60)
        show_energy(" (load control event running)")
        await asyncio.sleep(16 * 60)
        show_energy(" (back to normal)")
        view = esi.drlc.view(event.issuer_event_id)
        log(
            "ESI",
            "event over: started at "
            + ", ".join(names[d] for d in esi.drlc.started(event.issuer_event_id))
            + f"; never answered: {esi.drlc.never_answered(event.issuer_event_id) or 'none'}",
        )

        # -- load profile -------------------------------------------------------------------------
        chapter("The load profile (Get Profile)")
        profile = await ihd.metering.get_profile(number_of_periods=4)
        happened["profile"] = profile.intervals
        minutes = f"{PROFILE_INTERVAL_SECONDS[profile.profile_interval_period] / 60:g}"
        log(
            "ihd",
            f"Get Profile: {len(profile.intervals)} intervals of {minutes} min, newest first: "
            + ", ".join(interval_text(formatting, value) for value in profile.intervals),
        )

        # -- SE 1.2 metering: snapshots, sampling, supply control ----------------------------
        chapter("Snapshots and sampling (Take Snapshot, Get Snapshot, Get Sampled Data)")
        happened["snapshot"], happened["samples"] = await _snapshots(
            ihd.metering, sampling, formatting, log
        )

        chapter("Supply control: the utility arms the supply, the consumer restores it")
        assert esi.meter is not None
        happened["local_change_supply"] = await _supply(esi.meter, ihd, log)

        # -- inter-PAN ----------------------------------------------------------------------------
        chapter("Inter-PAN: a display that never joined asks for the price")
        await esi.serve_interpan(SimTransport(app))
        visitor = air.device("00:0d:6f:00:0a:00:00:99", channel=15)
        visitor.listen()
        service = InterPanService(SimTransport(visitor), ieee=visitor.ieee, pan_id=0xFFFF)
        cleanup.push_async_callback(_bounded, service.close)
        client = InterPanSeClient(service, clock=clock)
        cleanup.push_async_callback(_bounded, client.close)
        log("visitor", f"{visitor.ieee} never joined any network; Get Current Price over inter-PAN")
        price = await client.get_current_price()
        assert price is not None
        log("visitor", f"heard Publish Price: {_label(price.rate_label)} {_per_kwh(price)}")
        happened["interpan_price"] = price.issuer_event_id

        # -- de-provisioning -----------------------------------------------------------------
        chapter("De-provisioning the water heater switch")
        await esi.deprovision(heater.device.ieee)
        registry_told()
        await asyncio.sleep(5)
        await esi.settle()
        registry_told()
        trail = await registry.audit(_canonical(heater.device.ieee))
        log("registry", "audit trail of the water heater switch:")
        for entry in trail:
            say(f"            {entry.event:<16} {entry.from_state or '-':<24} -> {entry.to_state}")

        # -- the installer terminal, GB style ----------------------------------------------
        chapter("The installer: a terminal that never joined, the way GB smart metering does it")
        happened["installer"] = await _installer(
            air=air, app=app, ca=ca, rng=rng, executor=inline, log=log, cleanup=cleanup
        )

        chapter("Done")
        show_energy()
        happened["states"] = {names[str(_ieee(r.eui64))]: r.state.value for r in registry.devices()}
        happened["thermostat"] = thermostat.cooling_set_point
        happened["view"] = {names[d]: [s for s, _ in v.statuses] for d, v in view.items()}
        for record in registry.devices():
            log("registry", f"{names[str(_ieee(record.eui64))]:<10} {record.state.value}")
    where = getattr(capture, "name", capture)
    say(
        f"\n{air.stats.frames} frames on the air"
        + (f", written to {where} (open it in Wireshark)" if capture is not None else "")
    )
    if capture is None:
        say(
            f"Run `{runnable_command()} demo --pcap han.pcap --keys han.keys` to write them to"
            " a pcap file for Wireshark, with the keys that decrypt them."
        )
    elif keys is None:  # encrypted as on a real HAN: Wireshark shows nothing of SE without keys
        say("The frames are encrypted: add `--keys han.keys` for the keys Wireshark needs.")
    return happened


def runnable_command() -> str:
    """How the reader runs zse from where they are: ``zse`` when the ``zse`` on PATH is this
    installation's, else this interpreter with ``-m zse`` (after ``make demo`` the command is
    only in ``.venv/bin``, not on PATH: ``.venv/bin/python -m zse``), relative to the current
    directory when it lies below it (with a ``/``, which a shell does not look up on PATH,
    quoted for a shell)."""
    found = shutil.which("zse")
    here = Path(sys.executable)
    if found is not None and Path(found).parent == here.parent:
        return "zse"
    relative = os.path.relpath(here)
    if relative.startswith(".."):
        relative = str(here)
    elif os.sep not in relative:  # a bare name: a shell would look it up on PATH
        relative = os.path.join(os.curdir, relative)
    return f"{shlex.quote(relative)} -m zse"


async def _snapshots(
    display: Any, sampling: int, formatting: Any, log: Callable[[str, str], None]
) -> tuple[tuple[int, int, int], tuple[int, ...]]:
    """SE 1.2 Metering, the display's side: a snapshot taken now and read back, and the
    samples of the demand the meter took through the load control event (session
    ``sampling``). Returns the snapshot (id, cause, summation) and the samples."""
    taken = await display.take_snapshot()
    log("ihd", f"Take Snapshot: the meter took snapshot {taken}")
    snapshot = await display.get_snapshot()
    assert snapshot is not None
    assert snapshot.tou is not None
    log(
        "ihd",
        f"Get Snapshot: snapshot {snapshot.snapshot_id} of "
        f"{_at(snapshot.time)} ({_causes(snapshot.cause)}): "
        f"{formatting.summation(snapshot.tou.summation)} delivered",
    )
    data = await display.get_sampled_data(sampling)  # the demand's (Start Sampling's type)
    assert data is not None
    log(
        "ihd",
        f"Get Sampled Data: session {data.sample_id}, {len(data.samples)} samples every "
        f"{data.interval // 60} min from {_at(data.start_time)}: "
        + ", ".join(str(formatting.demand(value)) for value in data.values()),
    )
    return (snapshot.snapshot_id, snapshot.cause, snapshot.tou.summation), data.values()


async def _supply(meter: Any, display: Any, log: Callable[[str, str], None]) -> str:
    """SE 1.2 supply control: the utility arms the supply (Change Supply to Off/Armed, from
    the ESI's API); the display reads Supply Status and, when the user presses its button,
    restores it (Local Change Supply). Returns the meter's answer to the button. zse drives
    no relay (the application switches on ``SupplyChanged``): the simulated household is not
    switched off meanwhile, so nothing here reads the demand while the supply is armed."""
    from zse.metering.supply import ARMED  # noqa: PLC0415

    log("headend", "the utility arms the supply (Change Supply to Off/Armed)")
    await meter.change_supply(ARMED)
    status = await display.read_supply_status()
    log(
        "ihd",
        f"reads Supply Status: {_supply_name(status)}; asks the user to press OK to restore it",
    )
    await asyncio.sleep(30)
    log("ihd", "the user presses OK: Local Change Supply")
    answer = await display.local_change_supply()
    log("ihd", f"Local Change Supply: {answer.name}")
    return str(answer.name)


#: The EUI-64 of another hub of the same back office (most significant octet first).
_NEXT_DOOR = bytes.fromhex("000d6f000f0000aa")


async def _installer(
    *,
    air: Any,
    app: Any,
    ca: Any,
    rng: random.Random,
    executor: concurrent.futures.Executor,
    log: Callable[[str, str], None],
    cleanup: contextlib.AsyncExitStack,
) -> dict[str, Any]:
    """Issue #20: key establishment over inter-PAN, the secured handover of the terminal's
    install code, the join, a signed service request whose link breaks halfway and resumes,
    and a replay refused."""
    from zse.cbke import SUITE1  # noqa: PLC0415 - the CLI imports lazily
    from zse.cbke.keys import generate_key_pair  # noqa: PLC0415
    from zse.installer.core import BackOffice, CommandCode, Outcome  # noqa: PLC0415
    from zse.installer.service import InstallerTerminal  # noqa: PLC0415
    from zse.sim._installer import build_gb_site, service_request  # noqa: PLC0415

    loop = asyncio.get_running_loop()
    scalar = 1 + rng.randrange(SUITE1.curve.n - 1)
    office = BackOffice(
        b"GBDCC001", generate_key_pair(SUITE1, scalar.to_bytes(SUITE1.private_key_size))[0]
    )
    names = {int(code): code.name.lower().replace("_", " ") for code in CommandCode}
    broken: list[int] = []

    def executed(command: Any, response: Any) -> None:
        log("ESI", f"signed command {command.counter} ({names[command.code]}): EXECUTED")
        if command.code == CommandCode.SET_TIME and not broken:
            # the answer is lost: the installer walks out of range for half a minute
            broken.append(command.counter)
            air.set_link_faults(app.state.node_info.ieee, site.terminal.ieee, loss=1.0)
            loop.call_later(30, air.set_link_faults, app.state.node_info.ieee, site.terminal.ieee)

    site = await build_gb_site(
        air,
        ca=ca,
        office=office,
        app=app,
        endpoint_id=11,
        rng=_seeded(rng.getrandbits(64)),
        executor=executor,
        on_executed=executed,
    )
    cleanup.push_async_callback(_bounded, site.stop)
    terminal = site.terminal
    log("ESI", "accepts inter-PAN for 60 minutes after power-up (an installer PIN reopens it)")
    log("terminal", f"{terminal.ieee} never joined; key establishment over inter-PAN (suite 1)")
    boot = site.bootstrap()
    await boot.run()
    log("terminal", "key established; handed over its install code, APS-secured with it")
    log("ESI", f"device log: {site.device_log[0]} admitted with its install code")
    log("terminal", f"joined the HAN as 0x{terminal.nwk:04X}")
    client = await site.client()
    cleanup.push_async_callback(_bounded, client.stop)
    commands = service_request(office, site.target)
    log(
        "terminal",
        f"service request: {len(commands)} commands signed by back office "
        f"{office.originator.decode()}, counters {commands[0].counter}-{commands[-1].counter}",
    )

    def lost(command: Any, error: Exception) -> None:
        log("terminal", f"no answer to command {command.counter}: out of range; will resume")

    request = InstallerTerminal(client, commands, timeout=10, retry_delay=10, on_link_lost=lost)
    responses = await request.run()
    for command, response in zip(commands, responses, strict=True):
        log(
            "terminal",
            f"command {command.counter} ({names[command.code]}): {response.status.name}"
            + (
                " (its answer was lost: not run twice)"
                if response.status is Outcome.DUPLICATE
                else ""
            ),
        )
    replay = await site.hub.execute(commands[1].encode())
    log("attacker", f"replays command {commands[1].counter}: {replay.status.name}, not run")
    old = office.sign(
        CommandCode.SET_TIME,
        (1).to_bytes(4, "big"),
        target=site.target,
        counter=commands[0].counter,
    )
    stale = await site.hub.execute(old.encode())
    log("attacker", f"a signed command with old counter {old.counter}: {stale.status.name}")
    # a fresh counter, genuinely signed, but for the hub next door: its counters are its own
    elsewhere = office.sign(
        CommandCode.SET_TIME,
        (1).to_bytes(4, "big"),
        target=_NEXT_DOOR,
        counter=commands[-1].counter + 1,
    )
    misdirected = await site.hub.execute(elsewhere.encode())
    log(
        "attacker",
        f"a command signed for another hub, counter {elsewhere.counter}: {misdirected.status.name}",
    )
    forger = BackOffice(office.originator, generate_key_pair(SUITE1, bytes(20) + b"\x07")[0])
    forged = forger.sign(CommandCode.SET_TIME, target=site.target, counter=99)
    forged_answer = await site.hub.execute(forged.encode())
    log("terminal", f"a command it signed itself: {forged_answer.status.name}")
    return {
        "statuses": [r.status.name for r in responses],
        "broken_at": broken,
        "executed": sorted(counter for _, counter in site.hub.executed),
        "refused": [
            replay.status.name,
            stale.status.name,
            misdirected.status.name,
            forged_answer.status.name,
        ],
        "time_set": site.clock_set,
    }


def _local_time(reading: Any) -> str:
    """What a display prints of a Time cluster reading (ZCL 3.12.2.2): its local time, the
    zone's offset and whether daylight saving is in force."""
    from zse.se.ids import TimeAttribute as T  # noqa: PLC0415
    from zse.time.core import dst_in_effect, from_zigbee  # noqa: PLC0415

    values = reading.values
    time = values[T.TIME]
    dst = dst_in_effect(time, values.get(T.DST_START, 0), values.get(T.DST_END, 0))
    offset = values[T.TIME_ZONE] + (values.get(T.DST_SHIFT, 0) if dst else 0)
    local = from_zigbee(reading.local_time).strftime("%Y-%m-%d %H:%M:%S")
    sign = "+" if offset >= 0 else "-"
    hours, rest = divmod(abs(offset), 3600)
    zone = f"UTC{sign}{hours:02d}:{rest // 60:02d}"
    return f"{local} local ({zone}, daylight saving {'in force' if dst else 'not in force'})"


def _minutes(seconds: int) -> str:
    """Seconds since the story's start as the log's time column shows them: m:ss."""
    return f"{seconds // 60:3d}:{seconds % 60:02d}"


def _at(time: int) -> str:
    """A ZigBee time of the story as m:ss since its start (:data:`START`)."""
    return _minutes(time - START).strip()


def _supply_name(status: int) -> str:
    """A Supply Status (Metering 0x0014, SE 1.2) as the story shows it."""
    from zse.metering.supply import supply_status_name  # noqa: PLC0415

    return supply_status_name(status)


def _causes(cause: int) -> str:
    """A Snapshot Cause bitmap (SE 1.2 Metering) as its bits' names."""
    from zse.metering.snapshot_types import MeterSnapshotCause  # noqa: PLC0415

    return ", ".join(
        str(bit.name).lower().replace("_", " ")
        for bit in MeterSnapshotCause
        if bit.value & cause and bit.name
    )


def simulated_household(clock: Callable[[], int]) -> Household:
    """The demo's household (a :class:`zse.sim.Household` on ``clock``, ZigBee time): its
    base load, in the meter's formatting (:func:`meter_attributes`); attach the roles' loads
    with :data:`RATED_WATTS`."""
    from zse.metering import Formatting  # noqa: PLC0415
    from zse.metering.load import HouseholdLoad  # noqa: PLC0415
    from zse.metering.wire import Metering  # noqa: PLC0415
    from zse.sim import Household  # noqa: PLC0415

    formatting = Formatting.from_attributes(
        {Metering.attributes[attr].name: value for attr, value in meter_attributes().items()}
    )
    return Household(
        HouseholdLoad(formatting=formatting, now=clock(), base_watts=BASE_WATTS), clock=clock
    )


def meter_attributes() -> dict[int, int]:
    """The meter's Formatting (SE D.3.2.2.4): kWh with Divisor 1000 (the raw values are Wh, and
    W for demand); summation shown with 6 digits left and 3 right of the point, demand 5 and 3,
    leading zeros suppressed; an electricity meter."""
    from zse.se.ids import MeteringAttribute as A  # noqa: PLC0415

    return {
        A.UNIT_OF_MEASURE: 0x00,
        A.MULTIPLIER: 1,
        A.DIVISOR: 1000,
        A.SUMMATION_FORMATTING: 0xB3,
        A.DEMAND_FORMATTING: 0xAB,
        A.HISTORICAL_CONSUMPTION_FORMATTING: 0xB3,
        A.METERING_DEVICE_TYPE: 0x00,
    }


#: How long (virtual seconds) each closing step of the story may take on the way out.
CLOSE_WITHIN = 120


async def _bounded(close: Callable[[], Awaitable[object]]) -> None:
    """Run one closing step, for at most :data:`CLOSE_WITHIN` virtual seconds: on the way out
    after Ctrl-C or an error, a step waiting for something that will not come (the simulated
    network keeps its timers running, so virtual time flies) must not keep the story from
    closing the rest; it is logged and the next step runs."""
    try:
        async with asyncio.timeout(CLOSE_WITHIN):
            await close()
    except TimeoutError:
        logging.getLogger(__name__).warning("%s did not finish while closing", close)


def _seeded(seed: int) -> random.Random:
    """A seeded generator: the demo must be repeatable, and its keys are test keys."""
    return random.Random(seed)  # noqa: S311 - simulation only, by design


def _ieee(canonical: str) -> Any:
    from zse.installcode import parse_eui64  # noqa: PLC0415

    return parse_eui64(canonical)


def _canonical(ieee: Any) -> str:
    from zse.installcode import format_eui64  # noqa: PLC0415

    return format_eui64(ieee)


def _outcomes(result: Any, names: dict[str, str]) -> str:
    if result.multicast:
        return "sent (multicast)"
    return ", ".join(f"{names.get(o.device, o.device)} {o.outcome.value}" for o in result.outcomes)


@click.command()
@click.option("--seed", default=1, show_default=True, help="Same seed, same run (and capture).")
@click.option(
    "--pcap",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write every frame on the simulated air to this pcap file (opens in Wireshark).",
)
@click.option(
    "--keys",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write every key of the run to this file (mode 0600) as Wireshark's ZigBee key "
    "table, so Wireshark decrypts the capture.",
)
def demo(seed: int, pcap: str | None, keys: str | None) -> None:
    """A simulated Smart Energy HAN: provisioning, CBKE, metering, price and cost, messages,
    load control, snapshots, sampling and supply control, inter-PAN, de-provisioning and an
    installer's terminal, told as a story."""
    from zse.sim import run  # noqa: PLC0415

    root = logging.getLogger()
    if not root.handlers:  # -v made one already (configure_logging), or the embedding program
        logging.basicConfig(level=logging.ERROR)
        redact_handlers(root.handlers)  # keys hidden by the one made here too (#12.23)
    try:
        with contextlib.ExitStack() as files:
            capture = None
            if pcap is not None:  # a usage error before the story starts, not a traceback
                try:
                    capture = files.enter_context(named_output(pcap))
                except OSError as exc:
                    _fail(f"cannot write {pcap}: {exc.strerror}")
            if keys is not None:
                if pcap is not None and _same_file(keys, pcap):
                    _fail(f"--keys and --pcap both name {keys}: give each its own file")
                _check_writable(keys)
            try:
                run(story(seed, capture, say=click.echo, keys=keys))
            except BrokenPipeError:
                _reader_gone()
    except OutputError as exc:  # a write that failed (a full disk), named
        _fail(str(exc))


def _same_file(one: str, other: str) -> bool:
    try:
        return os.path.samefile(one, other)
    except OSError:  # one of them does not exist yet: not the same
        return False


def _check_writable(path: str) -> None:
    """A usage error now if the key file cannot be written (it is written at the end), with
    no key in it yet: created empty, owner-only."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    except OSError as exc:
        _fail(f"cannot write {path}: {exc.strerror}")


def _write_keys(air: Any, path: str | os.PathLike[str]) -> None:
    """:meth:`zse.sim.Air.write_keys`, a failure as :class:`OutputError` naming ``path``."""
    try:
        air.write_keys(path)
    except OSError as exc:
        raise OutputError(f"cannot write {os.fspath(path)}: {exc.strerror or exc}") from None


def _fail(message: str) -> NoReturn:
    fail(message, 2)


def _reader_gone() -> NoReturn:
    """The reader closed stdout (``zse demo | head -1``): end quietly, as the Python docs
    advise for SIGPIPE — point stdout at devnull, so that the interpreter's last flush does
    not fail again, and exit 1."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(1)
