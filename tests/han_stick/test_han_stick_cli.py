"""``zse han join`` and ``zse han watch`` against the simulated meter (the ESI on the air),
through bellows' real EZSP/ASH code to the fake NCP; and the command line's own checks: bad
options (status 2), a missing stick and an unplugged one (status 1, one line, no hang)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.han_stick.stick_builder import STICK, match_descs, meter_and_stick, zcl_sent
from tests.roles.han_builder import CA, START, close
from tests.roles.test_roles_find_esi import answer_match_desc, match_rsp
from tests.roles.test_roles_ihd_energy import FLAT, serve_meter
from zse.cbke import SUITE1
from zse.cbke.machine import Terminated
from zse.cbke.service import KeyEstablishmentFailed, eui64_bytes
from zse.cli import main
from zse.cli.han import HanOptions, _options, cbke_failure, run_han, watch
from zse.messaging import Message
from zse.roles.keepalive import KEEP_ALIVE
from zse.se.ids import KEY_ESTABLISHMENT, METERING, PREPAYMENT
from zse.se.types import TerminateStatus
from zse.store import Store

#: A Match_Desc_rsp whose MatchList is cut short: one endpoint said, none there.
GARBLED = match_rsp(0x00, b"\x09")[:-1]


def options(tmp_path: Path, sh: object, **changes: object) -> HanOptions:
    changes.setdefault("credentials", [CA.issue(eui64_bytes(STICK), SUITE1)])
    return HanOptions(
        device="/dev/fake-ncp",
        install_code=sh.code,  # type: ignore[attr-defined]
        state=tmp_path / "stick.db",
        channels=(15,),
        start_timeout=30,
        **changes,  # type: ignore[arg-type]
    )


@contextlib.asynccontextmanager
async def watched(
    tmp_path: Path, sh: Any, lines: list[str], **changes: object
) -> AsyncIterator[Callable[[], asyncio.Future[int]]]:
    """``zse han watch`` (JSON lines into ``lines``, the meter's time) on the stick of ``sh``
    while the block runs; ``stop()`` in it ends the watch and gives it to await. The watch,
    the fake NCP and the HAN are closed after the block, whatever happened in it."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    watching = asyncio.ensure_future(
        run_han(
            options(tmp_path, sh, as_json=True, **changes),
            watch=True,
            out=lines.append,
            stop=stop,
            clock=lambda: START + int(loop.time()),
        )
    )

    def ended() -> asyncio.Future[int]:
        stop.set()
        return watching

    try:
        yield ended
    finally:
        stop.set()
        await asyncio.wait({watching}, timeout=120)  # virtual seconds
        watching.cancel()
        for task in list(sh.ncp.tasks):
            task.cancel()
        await close(sh.han)


async def test_join_prints_the_network_and_the_cbke_mode(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    sh = await meter_and_stick(tmp_path, serial_link)
    lines: list[str] = []
    errors: list[str] = []
    try:
        status = await run_han(
            options(tmp_path, sh, as_json=True), watch=False, out=lines.append, err=errors.append
        )
        assert (status, errors) == (0, [])
        joined = json.loads(lines[0])
        assert joined["type"] == "joined"
        assert joined["nwk"] == f"0x{sh.ncp.node.nwk:04X}"
        assert joined["meter"] == str(sh.han.app.state.node_info.ieee)
        assert joined["cbke"] == "in the host"
        assert joined["channel"] == 15
    finally:
        for task in list(sh.ncp.tasks):
            task.cancel()
        await close(sh.han)


async def test_watch_prints_readings_price_and_a_confirmed_message(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    sh = await meter_and_stick(tmp_path, serial_link)
    serve_meter(sh.han, 1_000_000, 1500)
    await sh.han.esi.price.publish(FLAT)
    lines: list[str] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    watching = asyncio.ensure_future(
        run_han(
            options(tmp_path, sh, confirm=True),
            watch=True,
            out=lines.append,
            stop=stop,
            clock=lambda: START - 3600 + int(loop.time()),  # the host's clock an hour slow
        )
    )
    try:
        await asyncio.sleep(20)
        await sh.han.esi.send_message(
            Message(message_id=9, text="Peak 5-7 pm", confirmation_required=True),
            device=str(STICK),
        )
        await asyncio.sleep(5)
        stop.set()
        assert await watching == 0
        kinds = [line.split()[0] for line in lines]
        assert kinds[:3] == ["joined", "time", "keep_alive"]
        assert "offset=3600" in lines[1]  # the display now runs on the meter's time
        assert lines[2].split()[1:] == ["minutes=10", "offered=True"]  # the ESI's Keep-Alive
        assert "price" in kinds
        assert "reading" in kinds
        reading = next(line for line in lines if line.startswith("reading"))
        assert "consumption=1000.000 kWh" in reading
        assert "demand=1.500 kW" in reading
        assert "today" not in reading  # a meter without CurrentDayConsumptionDelivered
        message = next(line for line in lines if line.startswith("message"))
        assert "text=Peak 5-7 pm" in message
        assert "confirmed=True" in message
        # a credit meter: one Match_Desc_req more (for Prepayment), no credit read or shown
        assert match_descs(sh) == {KEY_ESTABLISHMENT: 1, METERING: 1, PREPAYMENT: 1, KEEP_ALIVE: 1}
        assert zcl_sent(sh, PREPAYMENT) == 0
        assert not any(line.startswith(("credit", "low_credit", "tier")) for line in lines)
        (tmp_path / "watch.txt").write_text("\n".join(lines) + "\n")
    finally:
        for task in list(sh.ncp.tasks):
            task.cancel()
        await close(sh.han)


async def test_an_unplugged_stick_ends_watch_with_status_1_and_the_reason(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    sh = await meter_and_stick(tmp_path, serial_link)
    serve_meter(sh.han, 1_000_000, 1500)
    errors: list[str] = []
    watching = asyncio.ensure_future(
        run_han(options(tmp_path, sh), watch=True, out=lambda _: None, err=errors.append)
    )
    try:
        await asyncio.sleep(15)
        assert not watching.done()
        sh.ncp.unplug()
        async with asyncio.timeout(60):
            assert await watching == 1
        assert len(errors) == 1
        assert errors[0].startswith("error: the stick was lost")
        assert "check the USB connection" in errors[0]
    finally:
        for task in list(sh.ncp.tasks):
            task.cancel()
        await close(sh.han)


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        (["join", "--radio", "ezsp"], "give the stick's serial port"),
        (["join", "--radio", "znp", "-d", "/dev/x"], "docs/radios.md on Z-Stack"),
        (["join", "--radio", "ezsp", "-d", "/dev/x"], "give the stick's install code"),
        (["join", "--radio", "ezsp", "-d", "/dev/x", "--install-code", "12"], "--install-code"),
        (
            ["watch", "--radio", "ezsp", "-d", "/dev/x", "--meter", "nope"],
            "--meter: EUI-64 has a non-hex character",
        ),
        (["watch", "--radio", "ezsp", "-d", "/dev/x", "--credentials", "/nope.json"], "/nope"),
        (
            ["watch", "-d", "/dev/x", "--broker", "mqtt://x", "--base-topic", "a/#"],
            "error: mqtt.base_topic: not a usable topic prefix",
        ),
        (
            ["watch", "-d", "/dev/x", "--broker", "mqtt://x", "--client-id", ""],
            "error: mqtt.client_id: empty",
        ),
        (
            ["watch", "-d", "/dev/x", "--base-topic", "zse/han"],
            "error: --base-topic goes with --broker or --mqtt-config",
        ),
        (
            ["watch", "-d", "/dev/x", "--client-id", "ihd"],
            "error: --client-id goes with --broker or --mqtt-config",
        ),
    ],
)
def test_bad_options_are_one_line_and_status_2(arguments: list[str], says: str) -> None:
    result = CliRunner().invoke(main, ["han", *arguments], env={"ZSE_DEVICE": ""})
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1
    assert says in result.output


def test_watch_takes_the_base_topic_and_client_id_over_the_mqtt_table(tmp_path: Path) -> None:
    """``--base-topic`` and ``--client-id`` over the ``[mqtt]`` table of ``--mqtt-config``,
    as ``zse mqtt`` takes them; without them the table's, and client id ``zse-han``."""
    config = tmp_path / "mqtt.toml"
    config.write_text('[mqtt]\nurl = "mqtt://127.0.0.1:1883"\nbase_topic = "table"\n')
    common = ["-d", "/dev/x", "--state", str(tmp_path / "s.db"), "--mqtt-config", str(config)]

    def settings(*more: str) -> Any:
        context = watch.make_context("watch", [*common, *more])
        given = dict(context.params)
        given.pop("verbose")
        given.pop("log_level")
        return _options(**given).mqtt

    told = settings("--base-topic", "home/ihd", "--client-id", "ihd-kitchen")
    assert (told.base_topic, told.client_id) == ("home/ihd", "ihd-kitchen")
    default = settings()
    assert (default.base_topic, default.client_id) == ("table", "zse-han")


def test_a_missing_stick_is_status_1_naming_the_port(tmp_path: Path) -> None:
    code = "83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5"
    result = CliRunner().invoke(
        main,
        [
            "han",
            "join",
            "--radio",
            "ezsp",
            "--device",
            str(tmp_path / "ttyUSB9"),
            "--install-code",
            code,
            "--state",
            str(tmp_path / "s.db"),
            "--start-timeout",
            "20",
        ],
    )
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"error: cannot open the stick at {tmp_path / 'ttyUSB9'}")
    assert "check the port" in result.output
    assert code not in result.output
    assert list(tmp_path.iterdir()) == []  # no state made for a run that never started


def test_a_state_that_is_not_a_store_is_said_before_the_stick_is_opened(tmp_path: Path) -> None:
    """A ``--state`` file that is not a zse store (a wrong path given): it was said only once
    the stick had been opened (here: not there at all, so the stick was blamed)."""
    state = tmp_path / "notes.txt"
    state.write_text("not a database\n" * 100)
    _said_before_the_stick(tmp_path, state)
    assert state.read_text() == "not a database\n" * 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("kind", ["name too long", "symlink loop"])
def test_a_state_that_cannot_be_looked_at_is_said_before_the_stick(
    tmp_path: Path, kind: str
) -> None:
    """A ``--state`` whose look-up fails otherwise than as missing: a name too long was an
    ``OSError`` out of the command (its generic one-line fault), a symlink loop taken as
    missing, so the stick was opened first and blamed."""
    state = tmp_path / ("s" * 300 if kind == "name too long" else "loop.db")
    if kind == "symlink loop":
        state.symlink_to(state)
    _said_before_the_stick(tmp_path, state)


def test_a_usable_state_is_closed_again_when_the_stick_cannot_be_opened(tmp_path: Path) -> None:
    """An existing state read before the stick: the stick missing, the store is closed (a
    second run opens it: a store has one writer) and nothing is added beside it."""
    state = tmp_path / "s.db"
    args = _join_without_stick(tmp_path, state)
    asyncio.run(_make_store(state))
    before = sorted(p.name for p in tmp_path.iterdir())
    for _ in range(2):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1, result.output
        assert result.output.startswith("error: cannot open the stick at "), result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def _join_without_stick(tmp_path: Path, state: Path) -> list[str]:
    """``zse han join``'s arguments with ``state``, the stick missing (``ttyUSB9``)."""
    return ["han", "join", "--radio", "ezsp", "--device", str(tmp_path / "ttyUSB9"),
            "--install-code", "83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5",
            "--state", str(state)]  # fmt: skip


def _said_before_the_stick(tmp_path: Path, state: Path) -> None:
    """:func:`_join_without_stick` ends with one line on ``state``, status 1, and the stick
    is not named."""
    result = CliRunner().invoke(main, _join_without_stick(tmp_path, state))
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"error: {state}: "), result.output
    assert "stick" not in result.output


async def _make_store(path: Path) -> None:
    store = await Store.open(path)
    await store.close()


async def test_a_second_run_resumes_the_network_from_the_stick(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    sh = await meter_and_stick(tmp_path, serial_link)
    try:
        for _run in range(2):
            lines: list[str] = []
            status = await run_han(
                options(tmp_path, sh, as_json=True), watch=False, out=lines.append
            )
            assert status == 0
        joins = [name for name, _request in sh.ncp.requests if name == "joinNetwork"]
        scans = [name for name, _request in sh.ncp.requests if name == "startScan"]
        assert (joins, scans) == (["joinNetwork"], ["startScan"])  # the second run resumed
        assert json.loads(lines[0])["nwk"] == f"0x{sh.ncp.node.nwk:04X}"
    finally:
        for task in list(sh.ncp.tasks):
            task.cancel()
        await close(sh.han)


async def test_join_with_a_certificate_in_the_stick_says_cbke_ran_there(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    held = CA.issue(eui64_bytes(STICK), SUITE1)
    sh = await meter_and_stick(tmp_path, serial_link, tokens=[held])
    lines: list[str] = []
    try:
        no_file = options(tmp_path, sh, as_json=True, credentials=[])
        assert await run_han(no_file, watch=False, out=lines.append) == 0
        assert json.loads(lines[0])["cbke"] == "in the radio (suite 1)"
        assert sh.ncp.stored_keys == [1]
    finally:
        for task in list(sh.ncp.tasks):
            task.cancel()
        await close(sh.han)


async def test_no_certificate_anywhere_is_status_1_naming_the_option(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    sh = await meter_and_stick(tmp_path, serial_link)
    errors: list[str] = []
    try:
        no_file = options(tmp_path, sh, credentials=[])
        assert await run_han(no_file, watch=False, out=print, err=errors.append) == 1
        assert errors == [
            "error: EZSP stick /dev/fake-ncp holds no CBKE certificate: give a credentials "
            "file (--credentials)"
        ]
    finally:
        await close(sh.han)


@pytest.mark.parametrize(("router", "node_type"), [(False, 3), (True, 2)])
async def test_the_stick_joins_as_an_end_device_or_a_router(
    tmp_path: Path, serial_link: Callable[..., None], router: bool, node_type: int
) -> None:
    sh = await meter_and_stick(tmp_path, serial_link)
    try:
        assert await run_han(options(tmp_path, sh, router=router), watch=False, out=print) == 0
        (join,) = [request for name, request in sh.ncp.requests if name == "joinNetwork"]
        assert int(join["nodeType"]) == node_type  # EMBER_ROUTER 2, EMBER_END_DEVICE 3
        descriptor = sh.ncp.node.node_descriptor()
        assert descriptor.is_router == router
    finally:
        for task in list(sh.ncp.tasks):
            task.cancel()
        await close(sh.han)


@pytest.mark.parametrize(
    ("terminated", "hinted"),
    [
        (Terminated(status=TerminateStatus.UNKNOWN_ISSUER, wait_time=0, by_peer=True), True),
        (Terminated(status=TerminateStatus.BAD_KEY_CONFIRM, wait_time=0, by_peer=True), True),
        (Terminated(status=TerminateStatus.NO_RESOURCES, wait_time=5, by_peer=True), False),
        (Terminated(status=None, wait_time=0, by_peer=True, timed_out=True), False),
    ],
    ids=["unknown issuer", "bad key confirm", "busy", "silent"],
)
def test_the_certificate_hint_only_when_the_certificates_are_refused(
    terminated: Terminated, hinted: bool
) -> None:
    """`zse han join` told a user whose meter was busy (or did not answer) to check that the
    certificate is from the meter's CA."""
    line = cbke_failure("in the host", KeyEstablishmentFailed(terminated))
    assert line.startswith("CBKE in the host failed: key establishment failed: ")
    assert ("check that the certificate is from the meter's CA" in line) is hinted


async def test_a_garbled_match_desc_rsp_is_one_line_blaming_the_meter_not_the_stick(
    tmp_path: Path, serial_link: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The meter's Match_Desc_rsp for its Key Establishment server does not decode: one
    line about the meter (EsiNotFound); it said "the stick failed: check the USB link"."""
    sh = await meter_and_stick(tmp_path, serial_link)
    answer_match_desc(monkeypatch, sh.han, GARBLED)
    errors: list[str] = []
    try:
        status = await run_han(options(tmp_path, sh), watch=False, out=print, err=errors.append)
        assert (status, len(errors)) == (1, 1)
        assert "the coordinator's Match_Desc_rsp does not decode" in errors[0]
        assert errors[0].endswith("is the network a Smart Energy meter's?")
    finally:
        for task in list(sh.ncp.tasks):
            task.cancel()
        await close(sh.han)


async def test_a_garbled_match_desc_rsp_for_keep_alive_leaves_it_off_and_watch_goes_on(
    tmp_path: Path, serial_link: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    sh = await meter_and_stick(tmp_path, serial_link)
    serve_meter(sh.han, 1_000_000, 1500)
    answer_match_desc(monkeypatch, sh.han, GARBLED, cluster=KEEP_ALIVE)
    lines: list[str] = []
    stop = asyncio.Event()
    watching = asyncio.ensure_future(
        run_han(options(tmp_path, sh), watch=True, out=lines.append, stop=stop)
    )
    try:
        await asyncio.sleep(20)
        stop.set()
        assert await watching == 0
        keep_alive = next(line for line in lines if line.startswith("keep_alive"))
        assert keep_alive.split()[1:] == ["offered=False"]
        assert any(line.startswith("reading") for line in lines)
    finally:
        for task in list(sh.ncp.tasks):
            task.cancel()
        await close(sh.han)


async def test_a_garbled_match_desc_rsp_for_the_meter_ends_watch_in_one_line(
    tmp_path: Path, serial_link: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    sh = await meter_and_stick(tmp_path, serial_link)
    serve_meter(sh.han, 1_000_000, 1500)
    answer_match_desc(monkeypatch, sh.han, GARBLED, cluster=METERING)
    errors: list[str] = []
    try:
        status = await run_han(options(tmp_path, sh), watch=True, out=print, err=errors.append)
        assert (status, len(errors)) == (1, 1)
        assert "0x0000's Match_Desc_rsp does not decode" in errors[0]
    finally:
        for task in list(sh.ncp.tasks):
            task.cancel()
        await close(sh.han)
