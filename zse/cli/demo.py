"""``zse demo``: the main job of ``make demo`` — a whole Smart Energy HAN, told as a story.

On the simulator (:mod:`zse.sim`, virtual time, so an afternoon takes a second or two) an ESI
(the meter and Trust Center, :class:`~zse.roles.esi.EnergyServiceInterface` on zigpy) and three
HAN devices (:mod:`zse.roles.han`: an in-home display, a thermostat and a water-heater load
control device) go through: provisioning by install code (registry states shown), joins, CBKE
with test certificates, a price, a message displayed and confirmed, a load control event sent by
registry group with every status report, an inter-PAN price request from a display that never
joined, and a de-provisioning. ``--pcap`` writes every frame on the air, NWK- and APS-secured;
``--keys`` writes the run's keys for Wireshark, which then decodes the SE commands; ``--seed``
makes two runs identical, byte for byte.

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
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import click

__all__ = ["demo", "story"]

START = 800_000_000  # ZigBee UTCTime at the start of the story (2025-05-08, early afternoon)
GROUP = "elm-street"


class _InlineExecutor(concurrent.futures.Executor):
    """Runs CBKE arithmetic at once on the loop's thread: the frames' order, and so the
    capture, then depends on nothing but the seed."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the awaiting side
            future.set_exception(exc)
        return future


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


def _currency(code: int) -> str:
    """The ISO 4217 alphabetic code of a Publish Price currency field (SE D.4.2.4.1.1.5)."""
    return _ISO_4217.get(code, f"currency {code}")


#: The ISO 4217 numeric codes the demo may show, and their letters.
_ISO_4217 = {826: "GBP", 840: "USD", 978: "EUR"}


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
    from zse.drlc import LoadControlEvent, Status  # noqa: PLC0415
    from zse.installcode import InstallCode  # noqa: PLC0415
    from zse.interpan.se import InterPanSeClient  # noqa: PLC0415
    from zse.interpan.service import InterPanService  # noqa: PLC0415
    from zse.interpan.transports.sim import SimTransport  # noqa: PLC0415
    from zse.messaging import Message, MessageDisplayed  # noqa: PLC0415
    from zse.price import PriceEvent  # noqa: PLC0415
    from zse.price.service import PriceReceived  # noqa: PLC0415
    from zse.provisioning.registry import HanRegistry  # noqa: PLC0415
    from zse.roles.esi import (  # noqa: PLC0415
        EnergyServiceInterface,
        KeyEstablished,
        LifecycleChanged,
        MessageConfirmed,
        ReportReceived,
    )
    from zse.roles.han import (  # noqa: PLC0415
        InHomeDisplay,
        Joined,
        LoadChanged,
        LoadControlDevice,
        ProgrammableThermostat,
        Resynced,
        ThermostatChanged,
    )
    from zse.sim import Air  # noqa: PLC0415

    rng = _seeded(seed)
    loop = asyncio.get_running_loop()
    inline = _InlineExecutor()

    def clock() -> int:
        return START + int(loop.time())

    def stamp() -> str:
        return f"{int(loop.time()) // 60:3d}:{int(loop.time()) % 60:02d}"

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
            cleanup.callback(air.write_keys, keys)
        app = await air.coordinator(channel=15, ieee="00:0d:6f:00:00:00:00:e5")
        cleanup.push_async_callback(app.shutdown)
        ca = TestCA.generate(rng=_seeded(rng.getrandbits(64)))
        registry = await HanRegistry.open(
            Path(workdir) / "han.db", clock=lambda: float(clock() + 946_684_800)
        )
        cleanup.push_async_callback(registry.close)
        esi = EnergyServiceInterface(
            app,
            credentials=ca.issue(eui64_bytes(app.state.node_info.ieee), SUITE1, rng=rng),
            registry=registry,
            clock=clock,
            executor=inline,
            rng=_seeded(rng.getrandbits(64)),
            first_tsn=rng.randrange(256),
        )
        await esi.start()
        cleanup.push_async_callback(esi.stop)
        info = app.state.network_info
        say(
            f"zse demo (seed {seed}): a Smart Energy HAN on the simulator; "
            "times are virtual (m:ss since the start)"
        )
        log(
            "ESI",
            f"meter {app.state.node_info.ieee} formed PAN 0x{info.pan_id:04X} on channel "
            f"{info.channel}; test CA issuer {ca.issuer.decode()}",
        )
        happened: dict[str, Any] = {"lifecycle": [], "reports": [], "confirmations": []}

        def esi_event(event: Any) -> None:
            if isinstance(event, LifecycleChanged):
                happened["lifecycle"].append(
                    (event.device, event.event.value, event.to_state.value)
                )
                if event.from_state is not event.to_state:
                    log(
                        "registry",
                        f"{names.get(event.device, event.device):<10} {event.from_state.value}"
                        f" -> {event.to_state.value} ({event.event.value})",
                    )
            elif isinstance(event, KeyEstablished):
                log(
                    "ESI",
                    f"CBKE with {names[event.device]} done (suite {event.suite}): "
                    "its install-code link key is replaced",
                )
            elif isinstance(event, ReportReceived):
                status = Status(event.report.event_status)
                happened["reports"].append((names[event.device], status))
                log(
                    "ESI",
                    f"report from {names[event.device]:<10} "
                    f"event 0x{event.report.issuer_event_id:08X}: {status.name.lower()}"
                    + (" (signature verified)" if event.signed else ""),
                )
            elif isinstance(event, MessageConfirmed):
                happened["confirmations"].append(names[event.device])
                log("ESI", f"message {event.message.message_id} confirmed by {names[event.device]}")

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
                    log(who, f"price {event.price.rate_label.decode()}: {_per_kwh(event.price)}")
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

            return told

        # -- provisioning by install code ----------------------------------------------------
        chapter("Provisioning by install code and MAC address")
        kinds = {
            "ihd": (InHomeDisplay, "00:0d:6f:00:0a:00:00:01", "kitchen in-home display"),
            "thermostat": (ProgrammableThermostat, "00:0d:6f:00:0a:00:00:02", "hall thermostat"),
            "heater": (LoadControlDevice, "00:0d:6f:00:0a:00:00:03", "water heater switch"),
        }
        names: dict[str, str] = {}
        roles: dict[str, Any] = {}
        for key, (role_class, eui, label) in kinds.items():
            code = InstallCode.generate(rng=rng)
            record = await registry.register(eui, str(code), label=label, groups=[GROUP])
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
            )
            role.on_event(device_event(key))
            cleanup.push_async_callback(role.stop)
            roles[key] = role
        for record in registry.devices():
            log("registry", f"{names[str(_ieee(record.eui64))]:<10} {record.state.value}")

        chapter("Joining and key establishment (CBKE, test certificates)")
        for key, role in roles.items():
            await esi.provision(role.device.ieee)
            log(key, "switched on: joins with its install code")
            await role.start()  # join, find the ESI, CBKE, resync (zigpy interviews it meanwhile)
            await esi.settle()
        for record in registry.devices():
            log("registry", f"{names[str(_ieee(record.eui64))]:<10} {record.state.value}")

        # -- price ---------------------------------------------------------------------------
        chapter("Price")
        ihd, thermostat, heater = roles["ihd"], roles["thermostat"], roles["heater"]
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
        await asyncio.sleep(36 * 60)
        view = esi.drlc.view(event.issuer_event_id)
        log(
            "ESI",
            "event over: started at "
            + ", ".join(names[d] for d in esi.drlc.started(event.issuer_event_id))
            + f"; never answered: {esi.drlc.never_answered(event.issuer_event_id) or 'none'}",
        )

        # -- inter-PAN ----------------------------------------------------------------------------
        chapter("Inter-PAN: a display that never joined asks for the price")
        await esi.serve_interpan(SimTransport(app))
        visitor = air.device("00:0d:6f:00:0a:00:00:99", channel=15)
        visitor.listen()
        service = InterPanService(SimTransport(visitor), ieee=visitor.ieee, pan_id=0xFFFF)
        cleanup.push_async_callback(service.close)
        client = InterPanSeClient(service, clock=clock)
        cleanup.push_async_callback(client.close)
        log("visitor", f"{visitor.ieee} never joined any network; Get Current Price over inter-PAN")
        price = await client.get_current_price()
        assert price is not None
        log("visitor", f"heard Publish Price: {price.rate_label.decode()} {_per_kwh(price)}")
        happened["interpan_price"] = price.issuer_event_id

        # -- de-provisioning -----------------------------------------------------------------
        chapter("De-provisioning the water heater switch")
        await esi.deprovision(heater.device.ieee)
        await asyncio.sleep(5)
        await esi.settle()
        trail = await registry.audit(_canonical(heater.device.ieee))
        log("registry", "audit trail of the water heater switch:")
        for entry in trail:
            say(f"            {entry.event:<16} {entry.from_state or '-':<24} -> {entry.to_state}")

        chapter("Done")
        happened["states"] = {names[str(_ieee(r.eui64))]: r.state.value for r in registry.devices()}
        happened["thermostat"] = thermostat.cooling_set_point
        happened["view"] = {names[d]: [s for s, _ in v.statuses] for d, v in view.items()}
        for record in registry.devices():
            log("registry", f"{names[str(_ieee(record.eui64))]:<10} {record.state.value}")
    where = getattr(capture, "name", capture)
    say(
        f"\n{air.stats.transmitted} frames on the air"
        + (f", written to {where} (open it in Wireshark)" if capture is not None else "")
    )
    if capture is None:
        say("Run `zse demo --pcap han.pcap` to write them to a pcap file for Wireshark.")
    return happened


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
    """A simulated Smart Energy HAN: provisioning, CBKE, price, messages, load control,
    inter-PAN and de-provisioning, told as a story."""
    from zse.sim import run  # noqa: PLC0415

    logging.basicConfig(level=logging.ERROR)
    with contextlib.ExitStack() as files:
        capture = None
        if pcap is not None:  # a usage error before the story starts, not a traceback after
            try:
                capture = files.enter_context(open(pcap, "wb"))
            except OSError as exc:
                _fail(f"cannot write {pcap}: {exc.strerror}")
        if keys is not None:
            _check_writable(keys)
        try:
            run(story(seed, capture, say=click.echo, keys=keys))
        except BrokenPipeError:
            _reader_gone()


def _check_writable(path: str) -> None:
    """A usage error now if the key file cannot be written (it is written at the end), with
    no key in it yet: created empty, owner-only."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    except OSError as exc:
        _fail(f"cannot write {path}: {exc.strerror}")


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _reader_gone() -> NoReturn:
    """The reader closed stdout (``zse demo | head -1``): end quietly, as the Python docs
    advise for SIGPIPE — point stdout at devnull, so that the interpreter's last flush does
    not fail again, and exit 1."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(1)
