"""``zse interpan``: inter-PAN (SE Annex B) on a real stick — listen to it, or send one command.

- ``zse interpan listen --radio ezsp|znp --device PORT [--json] [--count N] [--seconds S]``:
  every inter-PAN frame the radio hears, one line each: addresses, PANs, delivery mode, and the
  Price / Messaging command decoded with :mod:`zse.clusters` (fields by name); a frame that is
  not an SE command is shown with the reason and its ZCL bytes. ``--json``: one JSON object a
  line.
- ``zse interpan send get-price [--to EUI64] [--pan PAN] [--wait S]``: Get Current Price
  (D.4.2.3.1), broadcast or to one ESI, and the Publish Price answer (status 1 if none came);
- ``zse interpan send message TEXT [--id N] [--to EUI64] [--pan PAN]``: Display Message
  (D.5.2.3.1) with an inter-PAN message control; ``send cancel-message ID`` likewise.

The radio is opened as ``zse esi`` opens it (the stick's network, or ``--form``); inter-PAN
frames leave on the network's channel, or on ``--channel`` with Z-Stack (``InterPanCtl``).
Exit status: 0 done, 1 radio failure or no answer, 2 bad options (one ``error:`` line).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import click

from zse.cli._errors import fail
from zse.cli._options import (
    IMPORTANCE,
    bellows_environment,
    configure_logging,
    importance_option,
    radio_options,
    verbosity_options,
)
from zse.cli._signals import run_until_ctrl_c
from zse.cli._types import FiniteFloat, PanIdType, PlainIntRange
from zse.config import RADIOS, ConfigError, NetworkSettings, RadioSettings
from zse.se.ids import MESSAGING, PRICE

__all__ = ["describe_frame", "frame_record", "interpan", "run_listen", "run_send"]

LOGGER = logging.getLogger(__name__)

Out = Callable[[str], None]
#: The endpoint Z-Stack registers for inter-PAN (the ESI's SE endpoint number).
INTERPAN_ENDPOINT = 9


@dataclass(frozen=True, kw_only=True)
class StickOptions:
    """Which stick, and how to bring it up."""

    radio: RadioSettings
    form: bool = False
    channel: int | None = None
    app_factory: Any = None
    library_config: dict[str, Any] | None = None


# -- decoding for display -----------------------------------------------------------------------


def _plain(value: Any) -> Any:  # noqa: PLR0911 - one conversion per kind of value
    """A field value as JSON can carry it."""
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, bytes | bytearray):
        try:
            text = bytes(value).decode("ascii")
        except UnicodeDecodeError:
            return bytes(value).hex()
        return text if text.isprintable() else bytes(value).hex()
    if isinstance(value, bool | int | float | str) or value is None:
        return value if not isinstance(value, int) or isinstance(value, bool) else int(value)
    if hasattr(value, "as_dict"):
        return {k: _plain(v) for k, v in value.as_dict().items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def frame_record(frame: Any, received_at: float | None = None) -> dict[str, Any]:
    """A received inter-PAN frame as a dict: addresses, and the SE command decoded (or
    ``error`` saying why it is not one)."""
    from zse.errors import InvalidFrame  # noqa: PLC0415
    from zse.interpan import DeliveryMode  # noqa: PLC0415
    from zse.interpan.se import decode_se  # noqa: PLC0415

    record: dict[str, Any] = {
        "time": received_at if received_at is not None else time.time(),
        "src_ieee": str(frame.src_ieee),
        "src_pan_id": f"0x{frame.src_pan_id:04X}",
        "dst": str(frame.dst_address)
        if frame.delivery_mode is DeliveryMode.UNICAST
        else ("group" if frame.delivery_mode is DeliveryMode.GROUP else "broadcast"),
        "dst_pan_id": f"0x{frame.dst_pan_id:04X}",
        "delivery_mode": frame.delivery_mode.name.lower(),
        "group_id": frame.group_id,
        "cluster_id": f"0x{frame.cluster_id:04X}",
        "profile_id": f"0x{frame.profile_id:04X}",
        "sequence": frame.sequence,
        "payload": frame.payload.hex(),
    }
    try:
        command = decode_se(frame)
    except InvalidFrame as exc:
        record["error"] = str(exc)
        return record
    record.update(
        cluster=_cluster_name(frame.cluster_id),
        command=command.name,
        direction="server to client" if command.from_server else "client to server",
        tsn=command.header.tsn,
        fields=_plain(command.fields),
    )
    if command.trailing:
        record["trailing"] = command.trailing.hex()
    return record


def _cluster_name(cluster_id: int) -> str:
    return {PRICE: "Price", MESSAGING: "Messaging"}.get(cluster_id, f"0x{cluster_id:04X}")


def describe_frame(record: dict[str, Any]) -> str:
    """One line for :func:`frame_record`'s dict."""
    stamp = time.strftime("%H:%M:%S", time.localtime(record["time"]))
    head = (
        f"{stamp} {record['src_ieee']} PAN {record['src_pan_id']} -> {record['dst']} "
        f"PAN {record['dst_pan_id']}"
    )
    if "error" in record:
        return f"{head} cluster {record['cluster_id']}: {record['error']} [{record['payload']}]"
    fields = ", ".join(f"{k}={v}" for k, v in record["fields"].items())
    return f"{head} {record['cluster']} {record['command']} tsn {record['tsn']}: {fields}"


# -- running on a stick -------------------------------------------------------------------------


async def _with_transport(
    options: StickOptions, out: Out, err: Out | None, body: Callable[[Any, Any], Awaitable[int]]
) -> int:
    from zse.cli._radio import (  # noqa: PLC0415
        RadioOptions,
        RadioStartError,
        open_application,
        transport_for,
    )
    from zse.radios import radio_of  # noqa: PLC0415

    fail = err or _stderr
    factory = options.app_factory or open_application
    try:
        app = await factory(
            RadioOptions(
                radio=options.radio,
                network=NetworkSettings(form=options.form),
                se_endpoint=False,
                auto_form=options.form,
                library_config=options.library_config or {},
            )
        )
    except ConfigError as exc:
        fail(f"error: {exc}")
        return 2
    except RadioStartError as exc:
        fail(f"error: {exc}")
        return 1
    try:
        if options.channel is not None and radio_of(app) != "zigpy_znp":
            fail(
                "error: --channel needs Z-Stack (InterPanCtl); this radio sends and listens "
                "on its network's channel (form the network there: zse esi --form)"
            )
            return 2
        try:
            transport = await transport_for(app, endpoint=INTERPAN_ENDPOINT, register=True)
        except ConfigError as exc:
            fail(f"error: {exc}")
            return 2
        except OSError as exc:
            fail(f"error: the radio refused inter-PAN: {exc}")
            return 1
        try:
            if options.channel is not None:
                await transport.set_channel(options.channel)
            network = app.state.network_info
            out(
                f"inter-PAN on {app.state.node_info.ieee}, PAN 0x{int(network.pan_id):04X}, "
                f"channel {options.channel or network.channel}"
            )
            return await body(app, transport)
        finally:
            if options.channel is not None:
                with contextlib.suppress(OSError):
                    await transport.restore_channel()
            await transport.close()
    finally:
        with contextlib.suppress(Exception):
            await app.shutdown()


async def run_listen(
    options: StickOptions,
    *,
    as_json: bool = False,
    count: int | None = None,
    seconds: float | None = None,
    out: Out = print,
    err: Out | None = None,
) -> int:
    """Print the inter-PAN frames heard (``count`` of them, or for ``seconds``); an error that
    ends the run goes to ``err`` (standard error by default)."""

    async def body(app: Any, transport: Any) -> int:
        heard = 0
        out("listening (Ctrl-C to stop)")

        async def loop() -> None:
            nonlocal heard
            async for frame in transport:
                record = frame_record(frame)
                out(json.dumps(record) if as_json else describe_frame(record))
                heard += 1
                if count is not None and heard >= count:
                    return

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await loop()
        out(f"{heard} frames")
        return 0

    return await _with_transport(options, out, err, body)


async def run_send(
    options: StickOptions,
    what: str,
    *,
    to: str | None = None,
    pan: int = 0xFFFF,
    wait: float = 2.0,
    text: str = "",
    message_id: int = 1,
    duration: int = 0xFFFF,
    importance: int = 0,
    out: Out = print,
    err: Out | None = None,
) -> int:
    """Send ``what`` ("get-price", "message" or "cancel-message") and report the outcome."""
    from zse.installcode import parse_eui64  # noqa: PLC0415
    from zse.interpan.se import InterPanEsi, InterPanSeClient, message_control  # noqa: PLC0415
    from zse.interpan.service import InterPanService  # noqa: PLC0415
    from zse.price import PriceSchedule  # noqa: PLC0415
    from zse.time.service import system_clock  # noqa: PLC0415

    dst = parse_eui64(to) if to is not None else None
    where = f"{dst if dst is not None else 'broadcast'} (PAN 0x{pan:04X})"

    async def body(app: Any, transport: Any) -> int:
        service = InterPanService(
            transport,
            ieee=app.state.node_info.ieee,
            pan_id=int(app.state.network_info.pan_id),
        )
        try:
            if what == "get-price":
                client = InterPanSeClient(service, clock=system_clock)
                out(f"Get Current Price to {where}")
                price = await client.get_current_price(dst=dst, dst_pan_id=pan, timeout=wait)
                await client.close()
                if price is None:
                    out(f"no Publish Price within {wait:g} s")
                    return 1
                amount = price.price / 10**price.price_trailing_digit
                out(
                    f"Publish Price: {price.rate_label.decode(errors='replace')!r} "
                    f"{amount:.{price.price_trailing_digit}f} (provider {price.provider_id}, "
                    f"issuer event {price.issuer_event_id}, currency {price.currency}, "
                    f"tier {price.effective_price_tier})"
                )
                return 0
            esi = InterPanEsi(service, schedule=PriceSchedule(), clock=system_clock)
            control = message_control(importance=_importance(importance))
            if what == "message":
                await esi.display_message(
                    message_id,
                    text,
                    control=control,
                    duration_in_minutes=duration,
                    dst=dst,
                    dst_pan_id=pan,
                )
                out(f"Display Message {message_id} sent to {where}: {text!r}")
            else:
                await esi.cancel_message(message_id, control=control, dst=dst, dst_pan_id=pan)
                out(f"Cancel Message {message_id} sent to {where}")
            return 0
        except ValueError as exc:
            (err or _stderr)(f"error: {exc}")
            return 2
        except OSError as exc:
            (err or _stderr)(f"error: not sent: {exc}")
            return 1

    return await _with_transport(options, out, err, body)


def _importance(value: int) -> Any:
    from zse.se.types import MessageImportance  # noqa: PLC0415

    return next(member for member in MessageImportance if int(member) == value)


# -- the command line ---------------------------------------------------------------------------


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def _echo_err(line: str) -> None:
    click.echo(line, err=True)


def _fail(message: str) -> NoReturn:
    fail(message, 2)


class _IntType(click.ParamType):  # type: ignore[type-arg]
    name = "integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return int(str(value), 0)
        except ValueError:
            self.fail(f"{value!r} is not an integer (decimal or 0x hex)", param, ctx)


def _stick_options(function: Callable[..., Any]) -> Callable[..., Any]:
    function = click.option("--app-factory", hidden=True)(function)
    function = verbosity_options(function)
    function = click.option(
        "--channel",
        type=PlainIntRange(11, 26),
        help="Send and listen on this channel, the network's restored after (Z-Stack only; "
        "default: the network's channel).",
    )(function)
    function = click.option("--form", is_flag=True, help="Form a network if the stick has none.")(
        function
    )
    return radio_options(list(RADIOS), required=True)(function)


def _options(**given: Any) -> StickOptions:
    from zse.cli.esi import _factory  # noqa: PLC0415

    configure_logging(given["verbose"], given["log_level"])
    try:
        port = bellows_environment(
            given["radio"],
            device=given["device"],
            baudrate=given["baudrate"],
            flow_control=given["flow_control"],
        )
        if port["device"] is None:
            raise ConfigError(
                "give the stick's serial port: --device PATH (or ZSE_DEVICE; EZSP_DEVICE for ezsp)"
            )
        factory = _factory(given["app_factory"])
        if factory is None:
            from zse.cli._radio import application_class  # noqa: PLC0415

            application_class(given["radio"])
    except ConfigError as exc:
        _fail(str(exc))
    return StickOptions(
        radio=RadioSettings(radio=given["radio"], start_timeout=given["start_timeout"], **port),
        form=given["form"],
        channel=given["channel"],
        app_factory=factory,
    )


def _run(coroutine: Awaitable[int]) -> NoReturn:
    async def main() -> int:
        return await coroutine

    try:
        status = run_until_ctrl_c(main())
    except KeyboardInterrupt:
        status = 0
    sys.exit(status)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def interpan() -> None:
    """Inter-PAN (SE Annex B) on a stick: listen to frames, or send one SE command."""


@interpan.command()
@_stick_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line.")
@click.option(
    "--count", type=PlainIntRange(1), help="Stop after this many frames (default: until Ctrl-C)."
)
@click.option(
    "--seconds",
    type=FiniteFloat(0, min_open=True),
    help="Stop after this many seconds (default: until Ctrl-C).",
)
def listen(as_json: bool, count: int | None, seconds: float | None, **stick: Any) -> None:
    """Print every inter-PAN frame heard, SE commands decoded."""
    options = _options(**stick)
    _run(
        run_listen(
            options, as_json=as_json, count=count, seconds=seconds, out=click.echo, err=_echo_err
        )
    )


def _destination(function: Callable[..., Any]) -> Callable[..., Any]:
    function = click.option(
        "--pan",
        type=PanIdType(0x0001, 0xFFFF, " (0xFFFF: every PAN; 0x0000 reads as intra-PAN)"),
        default=0xFFFF,
        show_default=True,
        help="The PAN id the frame is sent to: the meter's, or 0xFFFF for every PAN.",
    )(function)
    return click.option("--to", help="One device's EUI-64 (default: broadcast).")(function)


def _check_to(to: str | None) -> None:
    if to is None:
        return
    from zse.errors import DecodeError  # noqa: PLC0415
    from zse.installcode import parse_eui64  # noqa: PLC0415

    try:
        parse_eui64(to)
    except DecodeError as exc:
        _fail(f"--to: {exc}")


@interpan.group()
def send() -> None:
    """Send one SE command over inter-PAN."""


@send.command("get-price")
@_stick_options
@_destination
@click.option(
    "--wait",
    type=FiniteFloat(0, min_open=True),
    default=2.0,
    show_default=True,
    help="Seconds to wait for the Publish Price answer.",
)
def get_price(to: str | None, pan: int, wait: float, **stick: Any) -> None:
    """Get Current Price (D.4.2.3.1); prints the Publish Price answer."""
    _check_to(to)
    options = _options(**stick)
    _run(run_send(options, "get-price", to=to, pan=pan, wait=wait, out=click.echo, err=_echo_err))


@send.command("message")
@_stick_options
@_destination
@click.argument("text")
@click.option(
    "--id",
    "message_id",
    type=_IntType(),
    default=1,
    show_default=True,
    help="The Message ID (32 bits), which cancel-message names to take it back.",
)
@click.option(
    "--duration",
    type=PlainIntRange(0, 0xFFFF),
    default=0xFFFF,
    show_default=True,
    help="Minutes the message is shown (65535: until replaced or cancelled).",
)
@importance_option
def message(  # noqa: PLR0917 - click passes options positionally
    text: str,
    to: str | None,
    pan: int,
    message_id: int,
    duration: int,
    importance: str,
    **stick: Any,
) -> None:
    """Display Message (D.5.2.3.1), inter-PAN only (at most 78 bytes of text)."""
    from zse.interpan.se_core import MAX_MESSAGE_BYTES  # noqa: PLC0415

    _check_to(to)
    if not 0 <= message_id <= 0xFFFFFFFF:
        _fail(f"--id {message_id} does not fit 32 bits")
    size = len(text.encode("utf-8", "surrogateescape"))
    if size > MAX_MESSAGE_BYTES:  # before the radio opens
        _fail(
            f"{size} bytes of text do not fit one inter-PAN frame (at most {MAX_MESSAGE_BYTES}; "
            "inter-PAN has no fragmentation)"
        )
    options = _options(**stick)
    _run(
        run_send(
            options,
            "message",
            to=to,
            pan=pan,
            text=text,
            message_id=message_id,
            duration=duration,
            importance=IMPORTANCE[importance],
            out=click.echo,
            err=_echo_err,
        )
    )


@send.command("cancel-message")
@_stick_options
@_destination
@click.argument("message_id", type=_IntType())
def cancel_message(message_id: int, to: str | None, pan: int, **stick: Any) -> None:
    """Cancel Message (D.5.2.3.2)."""
    _check_to(to)
    if not 0 <= message_id <= 0xFFFFFFFF:  # before the radio is opened
        _fail(f"MESSAGE_ID {message_id} does not fit 32 bits")
    options = _options(**stick)
    _run(
        run_send(
            options,
            "cancel-message",
            to=to,
            pan=pan,
            message_id=message_id,
            out=click.echo,
            err=_echo_err,
        )
    )
