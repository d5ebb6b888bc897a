"""``zse han``: a HAN device (an in-home display) on a real EZSP stick that joins a meter.

``zse han join --radio ezsp --device /dev/ttyUSB0 --install-code CODE [--credentials FILE]``
joins the meter's network with the stick (scan, the install-code link key), finds the ESI
(Match_Desc), runs CBKE (in the stick with its own certificate when it holds one, else in the
host with the credentials file), prints what it did and exits. ``zse han watch`` does the same
if needed, then prints readings (summation, demand), prices, messages and load control events
as they arrive, one line each (``--json``: one JSON object a line), until Ctrl-C / SIGTERM or
``--for SECONDS``; ``--confirm`` confirms messages that ask for it. On a prepay meter (its ESI
endpoint serves Prepayment, SE 1.2 D.7: one Match_Desc_req at start tells; ``--prepayment`` /
``--no-prepayment`` override) it also prints the credit when it changes, and low credit,
credit exhausted and emergency credit selected; with a TOU calendar (SE 1.2 D.9), the tier it
says is in force (and its label) when that changes; on a meter with supply control (SE 1.2
Supply Status, which the display asks the meter to report), the supply (On, Off, Off/Armed)
when it changes. It never prints a top-up code (it sends none).

The stick's network state stays in the stick (its tokens); what was joined is kept in
``--state`` (a zse store, default ``zse-han.db``), so a later run rejoins the same meter only.
Radio options, their environment variables (``ZSE_*``, bellows' ``EZSP_*``) and ``-v`` /
``--log-level`` are those of :mod:`zse.cli._options`.

Exit status: 0 when done; 1 when the stick, the meter or CBKE fails (one ``error:`` line
naming what to check: the port, the install code, the certificate; never a hang: every step
has a timeout), or the stick is unplugged while watching; 2 for bad options; 130 when
``join`` is interrupted (Ctrl-C, one line; 128 + SIGINT, as ``zse capture``). Ctrl-C or
SIGTERM is how ``watch`` ends: 0.

Only the EZSP radio is offered (``--radio ezsp``): a HAN device joins another's network,
which zse does with bellows' EZSP calls only; ``--radio znp`` is a usage error that says so
(docs/radios.md on Z-Stack).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from zse.cli._errors import INTERRUPTED, fail
from zse.cli._options import (
    DEFAULT_START_TIMEOUT,
    bellows_environment,
    configure_logging,
    radio_options,
    verbosity_options,
)
from zse.cli._signals import run_until_ctrl_c
from zse.cli._types import FiniteFloat, PlainIntRange
from zse.config import ConfigError
from zse.errors import DecodeError
from zse.installcode import parse_eui64

if TYPE_CHECKING:
    from zse.cbke.service import KeyEstablishmentFailed
    from zse.radios.ezsp import EzspHanRadio

__all__ = ["HanOptions", "han", "run_han"]

LOGGER = logging.getLogger(__name__)
DEFAULT_STATE = Path("zse-han.db")

Out = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class HanOptions:
    """What ``zse han`` was asked (checked)."""

    device: str
    baudrate: int = 115200
    flow_control: str | None = None
    start_timeout: float = DEFAULT_START_TIMEOUT
    install_code: Any = field(default=None, repr=False)  # zse.installcode.InstallCode
    credentials: list[Any] = field(default_factory=list, repr=False)  # cbke Credentials
    state: Path = DEFAULT_STATE
    extended_pan_id: Any = None
    channels: tuple[int, ...] = tuple(range(11, 27))
    meter: Any = None
    router: bool = False
    as_json: bool = False
    confirm: bool = False
    duration: float | None = None
    #: The display on an MQTT broker while watching (zse.mqtt.core.MqttSettings), or None.
    mqtt: Any = None
    #: Read the meter's credit: None as the meter says (Match_Desc_req), True, False.
    prepayment: bool | None = None


#: Why ``--radio znp`` is not offered (its help and its usage error say it).
_NO_ZSTACK = (
    "zse han joins a meter's network through bellows' EZSP calls only: an EZSP stick "
    "(see docs/radios.md on Z-Stack)"
)


def _fail(message: str, status: int = 2) -> NoReturn:
    fail(message, status)


async def run_han(  # noqa: PLR0911, PLR0912, PLR0915 - one exit per thing to check
    options: HanOptions,
    *,
    watch: bool,
    out: Out = click.echo,
    err: Out | None = None,
    stop: asyncio.Event | None = None,
    clock: Callable[[], int] | None = None,
    watching: asyncio.Event | None = None,
) -> int:
    """Join (and with ``watch``, follow) the meter; returns the exit status. ``watching`` is
    set once joined and keyed, when ``stop`` ends the watch (before, the caller cancels)."""
    from zigpy.exceptions import DeliveryError  # noqa: PLC0415

    from zse.cbke.service import KeyEstablishmentFailed  # noqa: PLC0415
    from zse.errors import StoreError  # noqa: PLC0415
    from zse.metering.protocol import MeteringClientConfig  # noqa: PLC0415
    from zse.metering.service import MeterNotFound  # noqa: PLC0415
    from zse.radios.ezsp import EzspError  # noqa: PLC0415
    from zse.radios.han import JoinFailed, RadioGone  # noqa: PLC0415
    from zse.roles.han import IF_SERVED, EsiNotFound, InHomeDisplay  # noqa: PLC0415
    from zse.roles.han_stick import (  # noqa: PLC0415
        MeterClock,
        NetworkChoice,
        NoCredentials,
        StickDevice,
        StickStateError,
        choose_credentials,
    )
    from zse.roles.keepalive import KeepAliveClient  # noqa: PLC0415

    if options.mqtt is not None:  # the mqtt extra: checked when the options were
        from zse.mqtt.core import node_id  # noqa: PLC0415
        from zse.mqtt.han import HanBridge  # noqa: PLC0415
    from zse.store import Store  # noqa: PLC0415
    from zse.time.service import system_clock  # noqa: PLC0415

    def error(text: str) -> int:
        (err or (lambda line: click.echo(line, err=True)))(f"error: {text}")
        return 1

    store: Store | None = None
    remembered: NetworkChoice | None = None
    if _there(options.state):  # one that cannot be used is said before the stick is touched
        try:  # (a new one is made only once the stick is open: a failed run leaves no file)
            store = await Store.open(options.state)
            remembered = await StickDevice.remembered(store)
        except (StoreError, StickStateError) as exc:
            if store is not None:
                await store.close()
            return error(f"{options.state}: {exc}")
    radio: EzspHanRadio | None = None
    try:
        radio = await _open_stick(options, error)
    finally:
        if store is not None and radio is None:
            await store.close()
    if radio is None:
        return 1
    lost: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    radio.on_lost(
        lambda exc: None if lost.done() else lost.set_result(str(exc or "connection closed"))
    )
    ihd: Any = None
    bridge: Any = None
    device: StickDevice | None = None
    try:
        if store is None:
            try:
                store = await Store.open(options.state)
                remembered = await StickDevice.remembered(store)
            except (StoreError, StickStateError) as exc:
                return error(f"{options.state}: {exc}")
        choice = remembered or NetworkChoice(
            extended_pan_id=options.extended_pan_id,
            channels=options.channels,
            meter=options.meter,
        )
        try:
            credentials, mode = await choose_credentials(radio, options.credentials or None)
        except NoCredentials as exc:
            return error(str(exc))
        device = StickDevice(
            radio,
            link_key=options.install_code.link_key if options.install_code is not None else None,
            choice=choice,
            router=options.router,
            store=store,
        )
        meter_clock = MeterClock(clock or system_clock)
        # a prepay meter's credit while watching: when its ESI serves Prepayment (one
        # Match_Desc_req once joined), unless told
        prepayment = options.prepayment if options.prepayment is not None else IF_SERVED
        ihd = InHomeDisplay(
            device,
            credentials=credentials,
            clock=meter_clock,
            metering=watch,
            # the supply too, reported (a meter without supply control: said once, no more)
            metering_config=(
                MeteringClientConfig(supply_status=True, today=True) if watch else None
            ),
            prepayment=prepayment if watch else False,
            store=store,  # messages and load control events survive a restart
        )
        events: asyncio.Queue[Any] = asyncio.Queue()
        ihd.on_event(events.put_nowait)
        if watch and options.mqtt is not None:  # what the display sees, on MQTT (docs/mqtt.md)
            bridge = HanBridge([ihd], options.mqtt, store=store)
            await bridge.start()
        start = asyncio.ensure_future(ihd.start())
        await asyncio.wait([start, lost], return_when=asyncio.FIRST_COMPLETED)
        if not start.done():
            start.cancel()
            return error(f"the stick was lost ({lost.result()}): check the USB connection")
        try:
            start.result()
        except JoinFailed as exc:
            return error(str(exc))
        except KeyEstablishmentFailed as exc:
            return error(cbke_failure(mode, exc))
        except (EsiNotFound, MeterNotFound) as exc:
            return error(f"{exc}: is the network a Smart Energy meter's?")
        except (TimeoutError, DeliveryError):  # no answer, or no acknowledgement
            return error(
                "the meter did not answer in time: is it powered, in range, and is this the "
                "network the stick joined before (delete --state to scan again)?"
            )
        except (RadioGone, EzspError, OSError) as exc:
            return error(f"the stick failed ({exc or type(exc).__name__}): check the USB link")
        state = device.state
        assert state is not None
        summary = {
            "type": "joined",
            "pan_id": f"0x{state.pan_id:04X}",
            "extended_pan_id": str(state.extended_pan_id),
            "channel": state.channel,
            "nwk": f"0x{state.nwk:04X}",
            "meter": str(state.trust_center),
            "esi_endpoint": ihd.esi_endpoint,
            "cbke": device.cbke_mode,
        }
        _print(out, options.as_json, summary)
        if not watch:
            return 0
        try:  # the display runs on the meter's time (ZCL Time cluster), if it is trusted
            reading = await ihd.read_time()
        except (OSError, TimeoutError, DecodeError, KeyError) as exc:
            LOGGER.warning("the meter's time was not read (%s): the host's clock is used", exc)
        else:
            offset = meter_clock.adopt(reading)  # logs why when it is not
            if offset is not None:
                _print(
                    out, options.as_json, {"type": "time", "utc": meter_clock(), "offset": offset}
                )
        keep_alive = KeepAliveClient(ihd.endpoint, device)
        try:
            offered = await keep_alive.start()
        except (OSError, TimeoutError, DecodeError) as exc:  # DecodeError: the meter's answer
            LOGGER.warning("keep-alive not started: %s", exc)
            offered = False
        _print(
            out,
            options.as_json,
            {
                "type": "keep_alive",
                "minutes": keep_alive.core.base_minutes if offered else None,
                "offered": offered,
            },
        )
        if bridge is not None:
            where = f"{bridge.settings.host}:{bridge.settings.port}"
            topic = f"{bridge.settings.base_topic}/{node_id(ihd.name)}"
            _print(out, options.as_json, {"type": "mqtt", "broker": where, "topic": topic})
        if watching is not None:
            watching.set()
        try:
            return await _watch(ihd, events, lost, options, out, error, stop)
        finally:
            await keep_alive.stop()
    finally:
        if bridge is not None:
            with contextlib.suppress(Exception):
                await bridge.stop()
        if ihd is not None:
            with contextlib.suppress(Exception):
                await ihd.stop()
        if device is not None:  # no rejoin of its own while the radio closes
            await device.close()
        if store is not None:
            await store.close()
        with contextlib.suppress(Exception):
            await radio.close()


def _there(path: Path) -> bool:
    """Whether ``path`` is there to open as the store, or cannot be looked at (a name too
    long, a symlink loop: :meth:`Store.open <zse.store.Store.open>` says why); only a
    missing one is not (``Path.exists`` raised the first, took the second as missing)."""
    try:
        path.stat()
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return True


async def _open_stick(options: HanOptions, error: Callable[[str], int]) -> EzspHanRadio | None:
    """The stick opened, or ``None`` once what failed is said (``error``)."""
    from zse.radios.ezsp import EzspHanRadio  # noqa: PLC0415
    from zse.radios.han import JoinFailed  # noqa: PLC0415

    bound = asyncio.timeout(options.start_timeout)
    try:
        async with bound:
            return await EzspHanRadio.open(
                options.device, baudrate=options.baudrate, flow_control=options.flow_control
            )
    except TimeoutError:  # --start-timeout, or bellows giving up its resets first (~15 s)
        within = f" within {options.start_timeout:g} s" if bound.expired() else ""
        error(
            f"the stick at {options.device} did not answer{within}: "
            "is it an EmberZNet NCP (EZSP), at this baud rate and flow control?"
        )
    except JoinFailed as exc:  # it answered: unsupported firmware, a refused configuration
        error(str(exc))
    except Exception as exc:
        from zse.cli._radio import not_a_serial_port  # noqa: PLC0415

        if (problem := not_a_serial_port(exc)) is not None:
            error(f"cannot open the stick at {options.device}: {problem}")
        else:
            error(
                f"cannot open the stick at {options.device} ({exc}): check the port, that it "
                "is plugged in and that no other program uses it"
            )
    return None


async def _watch(  # noqa: PLR0917 - the run's state, passed on once
    ihd: Any,
    events: asyncio.Queue[Any],
    lost: asyncio.Future[str],
    options: HanOptions,
    out: Out,
    error: Callable[[str], int],
    stop: asyncio.Event | None,
) -> int:
    """Print what arrives until stopped, the time is up, or the stick is lost."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    if options.duration is not None:
        loop.call_later(options.duration, stop.set)
    shown: dict[str, Any] = {}
    for event in _drain(events):
        await _show(ihd, event, options, out, shown)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        while True:
            getter = asyncio.ensure_future(events.get())
            await asyncio.wait([getter, stopped, lost], return_when=asyncio.FIRST_COMPLETED)
            if lost.done():
                getter.cancel()
                return error(f"the stick was lost ({lost.result()}): check the USB connection")
            if stopped.done():
                getter.cancel()
                return 0
            await _show(ihd, getter.result(), options, out, shown)
    finally:
        stopped.cancel()


def _drain(queue: asyncio.Queue[Any]) -> list[Any]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


async def _show(ihd: Any, event: Any, options: HanOptions, out: Out, shown: dict[str, Any]) -> None:
    """One line (or JSON object) for an event the display shows; others are skipped, and a
    reading is printed only when what the display shows changed."""
    from zse.drlc import ApplyLoadControl, StopLoadControl  # noqa: PLC0415
    from zse.messaging.core import MessageDisplayed  # noqa: PLC0415
    from zse.metering.protocol import MeterReading, TodayConsumption  # noqa: PLC0415
    from zse.price.protocol import PriceReceived  # noqa: PLC0415

    record: dict[str, Any] | None = (
        _prepay_record(ihd, event) or _tier_record(ihd, event) or _supply_record(event)
    )
    if isinstance(event, MeterReading | TodayConsumption):
        screen = ihd.showing_energy()
        record = {
            "type": "reading",
            "consumption": screen.consumption,
            "demand": screen.demand,
            "price": screen.price,
            "cost": screen.cost,
        }
        today = ihd.showing_today()
        if today is not None:  # next to the summation; a meter without it: nothing shown
            record["today"] = str(today)
    elif isinstance(event, PriceReceived) and event.new:
        price = event.price
        record = {
            "type": "price",
            "issuer_event_id": price.issuer_event_id,
            "label": bytes(price.rate_label).decode("utf-8", "replace"),
            "tier": price.effective_price_tier,
            "price": ihd.showing_energy().price,
            "start": price.start_time,
            "duration_minutes": price.duration_in_minutes,
        }
    elif isinstance(event, MessageDisplayed):
        message = event.message
        record = {
            "type": "message",
            "id": message.message_id,
            "text": event.text,
            "confirmation_required": message.confirmation_required,
        }
        if options.confirm and message.confirmation_required:
            record["confirmed"] = await ihd.confirm(message.message_id)
    elif isinstance(event, ApplyLoadControl):
        record = {
            "type": "load_control",
            "id": event.issuer_event_id,
            "device_class": f"0x{event.device_class:04X}",
            "start": event.start,
            "end": event.end,
        }
    elif isinstance(event, StopLoadControl):
        record = {
            "type": "load_control_end",
            "id": event.issuer_event_id,
            "status": getattr(event.status, "name", str(event.status)),
        }
    if record is None or (record["type"] == "reading" and shown.get("reading") == record):
        return
    shown[record["type"]] = record
    _print(out, options.as_json, record)


def _prepay_record(ihd: Any, event: Any) -> dict[str, Any] | None:
    """A prepay meter's credit read (SE 1.2 D.7.2.2.1), or what became true of it (low
    credit, credit exhausted, emergency credit selected), as a watch line: amounts in the
    price's currency (:func:`zse.mqtt.core.credit_amount`, as on MQTT), None for another
    event. A read that got nothing (``--prepayment`` on a meter without Prepayment) says
    so: ``prepayment served=False``, once (the display tells a status when it changed). A
    top-up's events are not shown: watch sends none, and a code is never printed."""
    from zse.mqtt.core import credit_amount, credit_status_names, currency_text  # noqa: PLC0415
    from zse.prepayment.core import (  # noqa: PLC0415
        CreditExhausted,
        EmergencyCreditSelected,
        LowCredit,
    )
    from zse.prepayment.service import PrepayStatus  # noqa: PLC0415

    price = ihd.price.current()
    code = None if price is None else int(price.currency)

    def amount(raw: int | None) -> float | None:
        return credit_amount(raw, code)

    if isinstance(event, PrepayStatus):
        if event == PrepayStatus(None, None, None, None):  # --prepayment, a credit meter
            return {"type": "prepayment", "served": False}
        return {
            "type": "credit",
            "credit": amount(event.credit_remaining),
            "emergency_credit": amount(event.emergency_credit_remaining),
            "currency": None if code is None else currency_text(code),
            "status": credit_status_names(event.credit_status),
        }
    if isinstance(event, LowCredit):
        return {
            "type": "low_credit",
            "credit": amount(event.credit_remaining),
            "level": amount(event.level),
        }
    if isinstance(event, CreditExhausted):
        return {"type": "credit_exhausted", "credit": amount(event.credit_remaining)}
    if isinstance(event, EmergencyCreditSelected):
        return {
            "type": "emergency_credit_selected",
            "emergency_credit": amount(event.emergency_credit),
        }
    return None


def _tier_record(ihd: Any, event: Any) -> dict[str, Any] | None:
    """The tier the delivered TOU calendar (calendar type 0, SE 1.2 D.9) says is in force,
    its label (the tariff's Publish Tier Labels, SE 1.2 D.4.2.4.9, else ``Tier N``: as
    ``calendar_tier_label`` on MQTT), the next tier and when it comes (ISO 8601 UTC), when
    it changed; None for another event."""
    from zse.calendar.protocol import CalendarChanged  # noqa: PLC0415
    from zse.time.core import from_zigbee  # noqa: PLC0415

    if not isinstance(event, CalendarChanged) or event.reading.calendar_type != 0:
        return None
    reading = event.reading
    changes_at = reading.changes_at
    return {
        "type": "tier",
        "tier": reading.value,
        "label": ihd.tier_label(reading.value, event.at),
        "next_tier": reading.next_value,
        "changes_at": None if changes_at is None else from_zigbee(changes_at).isoformat(),
    }


def _supply_record(event: Any) -> dict[str, Any] | None:
    """The meter's Supply Status (SE 1.2, 0x0014) when the display heard a new one, by name
    (``On``, ``Off``, ``Off/Armed``), with the one before (None: the first heard); None for
    another event."""
    from zse.metering.protocol import SupplyStatusChanged  # noqa: PLC0415
    from zse.metering.supply import supply_status_name  # noqa: PLC0415

    if not isinstance(event, SupplyStatusChanged):
        return None
    before = event.before
    return {
        "type": "supply",
        "status": supply_status_name(event.status),
        "before": None if before is None else supply_status_name(before),
    }


def _print(out: Out, as_json: bool, record: dict[str, Any]) -> None:
    if as_json:
        out(json.dumps(record, sort_keys=True))
        return
    kind = record["type"]
    rest = "  ".join(
        f"{k}={','.join(v) if isinstance(v, list) else v}"
        for k, v in record.items()
        if k != "type" and v is not None
    )
    out(f"{kind:<13} {rest}")


# -- the click commands ---------------------------------------------------------------------


def _options(**given: Any) -> HanOptions:
    """Check the command line; :class:`ConfigError` names what is wrong."""
    from zse.cbke.credentials import Credentials  # noqa: PLC0415
    from zse.installcode import InstallCode  # noqa: PLC0415

    radio = (given.pop("radio") or "ezsp").lower()  # the option offers ezsp only
    found = bellows_environment(
        radio,
        device=given.pop("device"),
        baudrate=given.pop("baudrate"),
        flow_control=given.pop("flow_control"),
    )
    if not found.get("device"):
        raise ConfigError("give the stick's serial port: --device /dev/ttyUSB0 (or ZSE_DEVICE)")
    code = given.pop("install_code")
    install_code = None
    if code is not None:
        try:
            install_code = InstallCode.parse(code)
        except DecodeError as exc:
            raise ConfigError(f"--install-code: {exc}") from None
    credentials: list[Any] = []
    for path in given.pop("credentials"):
        try:
            credentials.append(Credentials.load(path))
        except (DecodeError, OSError) as exc:  # its message names the file
            raise ConfigError(f"--credentials: {exc}") from None
    extended = given.pop("extended_pan_id")
    meter = given.pop("meter")
    import zigpy.types as t  # noqa: PLC0415

    try:  # as printed, most significant octet first (0 and all-FF: no network, no device)
        epid = None if extended is None else t.ExtendedPanId(parse_eui64(extended))
    except DecodeError as exc:
        raise ConfigError(f"--extended-pan-id: {exc}") from None
    try:
        meter_eui = None if meter is None else parse_eui64(meter)
    except DecodeError as exc:
        raise ConfigError(f"--meter: {exc}") from None
    channels = tuple(given.pop("channels")) or tuple(range(11, 27))
    state: Path = given.pop("state")
    if not state.parent.is_dir():  # a typo: said before the stick is opened
        raise ConfigError(f"--state {state}: no directory {state.parent}")
    return HanOptions(
        device=found["device"],
        baudrate=found.get("baudrate") or 115200,
        flow_control=found.get("flow_control"),
        start_timeout=given.pop("start_timeout"),
        install_code=install_code,
        credentials=credentials,
        state=state,
        extended_pan_id=epid,
        channels=channels,
        meter=meter_eui,
        router=given.pop("router"),
        as_json=given.pop("as_json", False),
        confirm=given.pop("confirm", False),
        duration=given.pop("duration", None),
        mqtt=_mqtt_settings(
            given.pop("broker", None),
            given.pop("mqtt_config", None),
            client_id=given.pop("client_id", None),
            base_topic=given.pop("base_topic", None),
        ),
        prepayment=given.pop("prepayment", None),
    )


def _mqtt_settings(
    broker: str | None,
    config: Path | None,
    *,
    client_id: str | None = None,
    base_topic: str | None = None,
) -> Any:
    """``--broker`` / ``--mqtt-config``: the ``[mqtt]`` settings, as ``zse mqtt`` reads them,
    ``--client-id`` and ``--base-topic`` over the table's (client id ``zse-han`` unless one
    names it), checked as ``zse mqtt`` checks them; or None."""
    if broker is None and config is None:
        for option, value in (("--client-id", client_id), ("--base-topic", base_topic)):
            if value is not None:
                raise ConfigError(f"{option} goes with --broker or --mqtt-config")
        return None
    if importlib.util.find_spec("aiomqtt") is None:
        raise ConfigError('--broker needs the mqtt extra: pip install "zigpy-se[mqtt]"')
    from zse.cli.mqtt import mqtt_settings  # noqa: PLC0415

    return mqtt_settings(
        broker,
        config,
        default_client_id="zse-han",
        config_option="--mqtt-config",
        client_id=client_id,
        base_topic=base_topic,
    )


def _common(function: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            radio_options(["ezsp"], required=False, refused={"znp": _NO_ZSTACK}),
            click.option(
                "--install-code",
                envvar="ZSE_INSTALL_CODE",
                help="The stick's install code (as registered with the utility) "
                "[env ZSE_INSTALL_CODE].",
            ),
            click.option(
                "--credentials",
                multiple=True,
                type=click.Path(dir_okay=False, path_type=Path),
                help="CBKE credentials JSON, used when the stick holds no certificate "
                "(repeat for suites 1 and 2).",
            ),
            click.option(
                "--state",
                type=click.Path(dir_okay=False, path_type=Path),
                default=DEFAULT_STATE,
                show_default=True,
                help="Where the joined network is remembered (a zse store).",
            ),
            click.option("--extended-pan-id", help="Only the network with this extended PAN id."),
            click.option(
                "--channel",
                "channels",
                type=PlainIntRange(11, 26),
                multiple=True,
                help="Scan only this channel (repeatable; default 11-26).",
            ),
            click.option("--meter", help="Only the network whose Trust Center is this EUI-64."),
            click.option("--router", is_flag=True, help="Join as a router (default: end device)."),
            verbosity_options,
        ]
    ):
        function = option(function)
    return function


def _run(coroutine: Coroutine[Any, Any, int]) -> int:
    try:
        return asyncio.run(coroutine)
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 0


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def han() -> None:
    """A HAN device (in-home display) on an EZSP stick, joined to a utility meter."""


@han.command()
@_common
def join(verbose: int, log_level: str | None, **given: Any) -> None:
    """Join the meter, find the ESI, run CBKE, print what was done."""
    try:
        try:
            options = _options(**given)
        except ConfigError as exc:
            _fail(str(exc))
        if options.install_code is None:
            _fail("give the stick's install code: --install-code (or ZSE_INSTALL_CODE)")
        configure_logging(verbose, log_level)
        # Ctrl-C cancels the join (the stick closed on the way out), then raises
        # KeyboardInterrupt: not done, so not 0 (it was)
        status = run_until_ctrl_c(run_han(options, watch=False))
    except (KeyboardInterrupt, asyncio.CancelledError):
        _fail("interrupted: the join was not finished", INTERRUPTED)
    sys.exit(status)


@han.command()
@_common
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line.")
@click.option("--confirm", is_flag=True, help="Confirm messages that ask for it.")
@click.option(
    "--for",
    "duration",
    type=FiniteFloat(0, min_open=True),
    help="Stop watching after this many seconds, counted from the join (default: until Ctrl-C "
    "or SIGTERM).",
)
@click.option(
    "--broker",
    envvar="ZSE_MQTT_BROKER",
    help="Also put what the display sees on this MQTT broker, mqtt://HOST:PORT or mqtts://... "
    "(the mqtt extra; docs/mqtt.md) [env ZSE_MQTT_BROKER].",
)
@click.option(
    "--mqtt-config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A TOML file whose [mqtt] table configures the broker (as zse mqtt --config).",
)
@click.option(
    "--client-id",
    help="With --broker: the MQTT client id (over mqtt.client_id; default zse-han). Each "
    "process on one broker needs its own.",
)
@click.option(
    "--base-topic",
    help="With --broker: the base topic (over mqtt.base_topic; default zse). Another one "
    "than zse mqtt's on the same broker, e.g. zse/han (docs/mqtt.md).",
)
@click.option(
    "--prepayment/--no-prepayment",
    default=None,
    help="Read a prepay meter's credit, or not (default: when the meter says it serves "
    "Prepayment, asked once at start).",
)
def watch(verbose: int, log_level: str | None, **given: Any) -> None:
    """Join if needed, then print readings, prices, messages and load control events (and a
    prepay meter's credit, a TOU calendar's tier)."""
    try:
        options = _options(**given)
    except ConfigError as exc:
        _fail(str(exc))
    configure_logging(verbose, log_level)

    async def main() -> int:
        stop = asyncio.Event()
        watching = asyncio.Event()
        task = asyncio.current_task()
        assert task is not None

        def on_signal() -> None:
            stop.set()
            if not watching.is_set():  # opening the stick, joining, CBKE: nothing to finish
                task.cancel()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, on_signal)
        return await run_han(options, watch=True, stop=stop, watching=watching)

    sys.exit(_run(main()))


def cbke_failure(mode: str, exc: KeyEstablishmentFailed) -> str:
    """The line for a failed CBKE (``exc`` a :class:`~zse.cbke.service.KeyEstablishmentFailed`):
    the certificate hint only when the meter's refusal says the certificates do not go together
    (UNKNOWN_ISSUER, BAD_KEY_CONFIRM, INVALID_CERTIFICATE, SE C.3.1.3.4), not for a busy or
    silent meter."""
    from zse.se.types import TerminateStatus  # noqa: PLC0415

    line = f"CBKE {mode} failed: {exc}"
    if exc.status in {
        TerminateStatus.UNKNOWN_ISSUER,
        TerminateStatus.BAD_KEY_CONFIRM,
        TerminateStatus.INVALID_CERTIFICATE,
    }:
        line += (
            "; check that the certificate is from the meter's CA (a production meter takes"
            " only Certicom production certificates)"
        )
    return line
