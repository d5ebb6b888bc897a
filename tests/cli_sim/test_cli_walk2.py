"""What a hobbyist meets first (docs/han-device.md, docs/sticks.md, docs/mqtt.md), typed as the
pages say: a port that is not a stick, a ``--state`` that cannot be, a credentials file that is
not one are each one clear line; ``zse mqtt --sim`` names the simulated devices in Home
Assistant as the HAN devices' bridge does, and started again on its ``--state-dir`` its meter
goes on counting from where it was instead of refusing every reading."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.cli_sticks.sticks_helpers import ESI_CREDENTIALS, han_signalled
from tests.mqtt.broker import running_broker
from tests.mqtt.helpers import Subscriber, real_wait, settings
from zse.cli import main
from zse.cli.mqtt import sim_bridges, simulated_esi
from zse.se.ids import MeteringAttribute
from zse.sim import run

DISCOVERY = re.compile(r"homeassistant/(sensor|event)/[0-9a-f]{16}/[a-z_]+/config")
ZSE_HAN = (sys.executable, "-m", "zse", "han")
#: Real seconds a command may take before the test calls it hung.
HANG = 60
CODE = "83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5"


def _han_join(*more: str) -> list[str]:
    return [
        "han",
        "join",
        "--radio",
        "ezsp",
        "--install-code",
        CODE,
        "--start-timeout",
        "20",
        *more,
    ]


def test_zse_han_on_a_file_that_is_not_a_serial_port_says_so(tmp_path: Path) -> None:
    """/dev/null or a regular file given as --device: not "Inappropriate ioctl for device"."""
    not_a_port = tmp_path / "readme.txt"
    not_a_port.write_text("hello\n")
    result = CliRunner().invoke(
        main, _han_join("--device", str(not_a_port), "--state", str(tmp_path / "s.db"))
    )
    assert result.exit_code == 1, result.output
    assert result.output == (
        f"error: cannot open the stick at {not_a_port}: not a serial port "
        "(Inappropriate ioctl for device)\n"
    )


def test_zse_esi_on_a_file_that_is_not_a_serial_port_says_so(tmp_path: Path) -> None:
    not_a_port = tmp_path / "readme.txt"
    not_a_port.write_text("hello\n")
    credentials = tmp_path / "esi.json"
    credentials.write_text(ESI_CREDENTIALS.to_json())
    result = CliRunner().invoke(
        main,
        [
            "esi",
            "--radio",
            "ezsp",
            "--device",
            str(not_a_port),
            "--credentials",
            str(credentials),
            "--database",
            str(tmp_path / "han.db"),
            "--start-timeout",
            "20",
        ],
    )
    assert result.exit_code == 1, result.output
    assert result.output.splitlines()[-1] == (
        f"error: ezsp radio on {not_a_port}: not a serial port (Inappropriate ioctl for device)"
    ), result.output


def test_zse_han_state_in_a_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    """Found before the stick is opened (a typo, status 2), not after (status 1)."""
    state = tmp_path / "nowhere" / "zse-han.db"
    result = CliRunner().invoke(
        main, _han_join("--device", str(tmp_path / "ttyUSB9"), "--state", str(state))
    )
    assert result.exit_code == 2, result.output
    assert result.output == f"error: --state {state}: no directory {state.parent}\n"


def test_zse_han_names_a_bad_credentials_file_once(tmp_path: Path) -> None:
    """A CA file given for the device's credentials (an easy mix-up after `zse cert ca-new`)."""
    ca = tmp_path / "ca.json"
    assert CliRunner().invoke(main, ["cert", "ca-new", "-o", str(ca)]).exit_code == 0
    result = CliRunner().invoke(
        main, _han_join("--device", str(tmp_path / "ttyUSB9"), "--credentials", str(ca))
    )
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: --credentials: {ca}: credentials JSON lacks")
    assert result.output.count(str(ca)) == 1, result.output


def discovered(subscriber: Subscriber) -> list[Any]:
    """The discovery configs received, once both bridges' are all there (else none): the
    meter's 2, each device's lifecycle and the display's "Message confirmed" event from the
    ESI's bridge; the display's 3 (its price comes with a price), the thermostat's 3 and the
    load control device's 2 from the devices'. An empty payload removes a config (the sensor
    "Message confirmed" was, now an event entity of the display's), and describes no device."""
    found = [value for topic, value, _ in subscriber.received if DISCOVERY.match(topic) and value]
    return found if len(found) >= 2 + 3 + 1 + 3 + 3 + 2 else []


def test_zse_mqtt_sim_names_each_device_once_in_home_assistant(tmp_path: Path) -> None:
    """``zse mqtt --sim --role both``: the ESI's bridge and the HAN devices' bridge announce
    each simulated device under the same ``identifiers``, so Home Assistant keeps one device;
    they gave it two names ("ProgrammableThermostat 0002", "Thermostat 0002"), and Home
    Assistant showed whichever came last."""

    async def scenario() -> dict[str, set[str]]:
        names: dict[str, set[str]] = {}
        with contextlib.ExitStack() as stack:
            broker = stack.enter_context(contextlib.contextmanager(running_broker)(tmp_path))
            async with simulated_esi(tmp_path) as sim:
                subscriber = Subscriber(broker)
                await subscriber.connect()
                bridges = sim_bridges(sim, settings(broker), "both")
                try:
                    for bridge in bridges:
                        await bridge.start()
                        await real_wait(bridge.connected.wait())
                    configs = await subscriber.until(lambda: discovered(subscriber))
                finally:
                    for bridge in reversed(bridges):
                        await bridge.stop()
                    await subscriber.close()
        for config in configs:
            device = config["device"]
            names.setdefault(device["identifiers"][0], set()).add(device["name"])
        return names

    names = run(scenario())
    devices = {key: seen for key, seen in names.items() if not key.endswith("e5")}  # the meter
    assert {key: len(seen) for key, seen in devices.items()} == dict.fromkeys(devices, 1)
    assert set().union(*devices.values()) == {
        "In-home display 0a000001",
        "Thermostat 0a000002",
        "Load control device 0a000003",
    }


def test_zse_mqtt_sim_started_again_on_its_state_dir_goes_on_counting(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The household behind the simulated meter restarted from 0 while the meter restored
    its summation: every reading was refused ("summation delivered 0 is below ...", logged
    each time) and the meter stood still; and what Home Assistant had seen went back."""
    summation = MeteringAttribute.CURRENT_SUMM_DELIVERED

    async def one_run(seconds: float) -> tuple[int, int]:
        async with simulated_esi(tmp_path) as sim:
            meter = sim.esi.meter
            assert meter is not None
            await asyncio.sleep(1)  # virtual
            first = meter.core.read(summation) or 0
            await asyncio.sleep(seconds)
            return first, meter.core.read(summation) or 0

    caplog.set_level(logging.WARNING)
    _, before = run(one_run(90 * 60))  # a profile interval (an hour) closed: it is stored
    assert before > 0
    first, after = run(one_run(5 * 60))
    assert "is below" not in caplog.text
    assert first >= before  # never back
    assert after > first  # and on


@pytest.fixture
def silent_tty() -> Iterator[str]:
    """A serial port (a pseudo-terminal's) that nothing ever answers on: a stick that is not
    an NCP, or hung."""
    master, slave = os.openpty()
    try:
        yield os.ttyname(slave)
    finally:
        os.close(slave)
        os.close(master)


def test_zse_han_says_who_gave_up_on_a_silent_stick(silent_tty: str) -> None:
    """bellows gives up on an NCP that never answers after its resets (bellows 1.2.1: 3 of
    2.5 s on a serial port, ezsp ``RESET_ATTEMPTS``, uart ``RESET_TIMEOUT``; over TCP 2 s
    more each, waiting for zigbeed's own reset): that is not "did not answer within 60 s"
    (the --start-timeout, which had not come)."""
    device = silent_tty
    result = subprocess.run(
        [*ZSE_HAN, "join", "--device", device, "--install-code", CODE, "--start-timeout", "60"],
        capture_output=True,
        text=True,
        timeout=HANG,
        check=False,
    )
    assert result.returncode == 1, result
    assert result.stderr.splitlines() == [
        f"error: the stick at {device} did not answer: is it an EmberZNet NCP (EZSP), at this "
        "baud rate and flow control?"
    ]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_zse_han_watch_stops_at_once_while_the_stick_is_opening(
    tmp_path: Path, signum: int
) -> None:
    """SIGTERM or Ctrl-C before the stick answered: it stops then (status 0, no line), not once
    bellows gave up (about 15 s later, with an error about the stick)."""
    assert han_signalled("watch", signum, tmp_path) == (0, "", "")


def test_zse_mqtt_says_a_store_in_use_in_one_line_without_a_class_name(tmp_path: Path) -> None:
    """zse's own errors are told as the other commands tell them, ``error: <what>``; the
    store's lock said ``error: StoreError: ...``."""
    from zse.provisioning.registry import HanRegistry  # noqa: PLC0415

    async def hold() -> Any:
        return await HanRegistry.open(tmp_path / "han.db")

    loop = asyncio.new_event_loop()
    registry = loop.run_until_complete(hold())
    try:
        argv = ["mqtt", "--sim", "--state-dir", str(tmp_path), "--broker", "mqtt://127.0.0.1:1"]
        result = CliRunner().invoke(main, argv)
    finally:
        loop.run_until_complete(registry.close())
        loop.close()
    assert result.exit_code == 1, result.output
    (line,) = [x for x in result.output.splitlines() if x.startswith("error:")]
    assert line.startswith(f"error: {tmp_path / 'han.db'} is in use by another zse process")
