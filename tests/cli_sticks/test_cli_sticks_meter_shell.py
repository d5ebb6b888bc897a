"""#14 (the operator's side of Metering): ``[esi] mirrors`` in the ``zse esi`` configuration
(the mirror endpoints registered with an EZSP NCP before its network is up), and the shell's
``meter``, ``meter set`` and ``mirrors`` commands: on the simulator in process (a display
subscribing and asking for fast poll, a gas meter mirrored, bad readings refused in one line
while the shell goes on) and as ``zse esi --radio sim`` subprocesses."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from zigpy.zcl import foundation

from tests.cli_sticks.fake_stick import StickNcp
from tests.cli_sticks.sticks_helpers import (
    CA,
    ESI_CREDENTIALS,
    IHD,
    IHD_CODE,
    Operator,
    at_the_terminal,
    ezsp_factory,
    sim_factory,
)
from zse.cbke import SUITE1
from zse.cbke.service import eui64_bytes
from zse.cli import main as zse_cli
from zse.cli._radio import RadioOptions, esi_descriptor, esi_descriptors
from zse.cli.esi import run_esi
from zse.config import ConfigError, EsiConfig, RadioSettings, parse_config
from zse.installcode import InstallCode
from zse.metering.core import Readings
from zse.metering.mirroring import mirror_descriptors
from zse.metering.wire import Metering
from zse.roles.gas_meter import GasMeter
from zse.roles.han import InHomeDisplay
from zse.se.ids import METERING, MeteringServerCommand
from zse.sim import Air
from zse.time.service import ZIGBEE_EPOCH
from zse.zcl.codec import encode_command

START = 800_000_000
GAS = "00:0d:6f:00:0e:00:00:04"
GAS_CODE = InstallCode.generate(rng=random.Random(GAS))
ZSE_ESI_SIM = (sys.executable, "-m", "zse", "esi", "--radio", "sim")
HANG = 120
#: The endpoints bellows registers for itself (ZHA, ZLL, Green Power).
BELLOWS_OWN = {1, 2, 242}


def clock() -> int:
    return START + int(asyncio.get_running_loop().time())


def zse_esi_sim(tmp_path: Path, config: str, commands: str) -> subprocess.CompletedProcess[str]:
    """``zse esi --radio sim`` with ``config`` (written to esi.toml) and ``commands`` on stdin."""
    path = tmp_path / "esi.toml"
    path.write_text(config)
    return subprocess.run(
        [*ZSE_ESI_SIM, "--config", str(path)],
        cwd=tmp_path,
        input=commands,
        capture_output=True,
        text=True,
        timeout=HANG,
        check=False,
    )


# -- [esi] keep_alive_minutes / keep_alive_jitter -------------------------------------------


def test_the_keep_alive_keys() -> None:
    assert parse_config("").keep_alive == (10, 300)
    assert parse_config("[esi]\nkeep_alive_minutes = 1\nkeep_alive_jitter = 0\n").keep_alive == (
        1,
        0,
    )
    with pytest.raises(ConfigError) as caught:
        parse_config("[esi]\nkeep_alive_minutes = 0\n")
    assert str(caught.value).startswith("config: [esi] keep_alive_minutes: 0 is outside 1..255")
    with pytest.raises(ConfigError) as caught:
        parse_config("[esi]\nkeep_alive_jitter = 513\n")
    assert str(caught.value).startswith("config: [esi] keep_alive_jitter: 513 is outside 0..512")


# -- [esi] mirrors ---------------------------------------------------------------------------


def test_the_mirrors_key() -> None:
    assert parse_config("").mirrors == 0
    assert parse_config("[esi]\nmirrors = 2\n").mirrors == 2
    assert parse_config("[esi]\nmirrors = 231\n").mirrors == 231


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("[esi]\nmirrors = 232\n", "config: [esi] mirrors: 232 is outside 0..231"),
        ("[esi]\nmirrors = -1\n", "config: [esi] mirrors: -1 is outside 0..231"),
        ("[esi]\nmirrors = true\n", "config: [esi] mirrors: expected int, got a boolean"),
        ('[esi]\nmirrors = "2"\n', "config: [esi] mirrors: expected int, got str"),
        ("[esi]\nmirors = 2\n", "config: [esi]: unknown key 'mirors'"),
    ],
)
def test_a_wrong_mirrors_key_is_one_line(text: str, error: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert str(caught.value).startswith(error)


def test_zse_esi_refuses_a_wrong_mirrors_key_in_one_line(tmp_path: Path) -> None:
    done = zse_esi_sim(tmp_path, "[esi]\nmirrors = 1000\n", "")
    config = tmp_path / "esi.toml"
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == f"error: {config}: [esi] mirrors: 1000 is outside 0..231\n"


async def test_ezsp_registers_the_mirror_endpoints_before_the_network_is_up(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    ncp = StickNcp(8)
    operator = Operator()
    operator.type("mirrors")
    operator.type("quit")
    config = EsiConfig(
        radio=RadioSettings(radio="ezsp", device="/dev/fake-ncp"),
        database=tmp_path / "han.db",
        meter={},
        mirrors=2,
    )
    status = await run_esi(
        config,
        credentials=[ESI_CREDENTIALS],
        lines=operator.lines(),
        out=operator.out,
        app_factory=ezsp_factory(ncp, serial_link),
    )
    assert status == 0, operator.text()
    # the NCP refuses addEndpoint once its network is up: all three were registered before
    assert sorted(set(ncp.endpoints) - BELLOWS_OWN) == [9, 10, 11]
    own, *mirrors = esi_descriptors(meter=True, mirrors=2)
    assert own.input_clusters != esi_descriptor(meter=True).input_clusters  # Basic for mirrors
    for descriptor in (own, *mirror_descriptors((10, 11))):
        assert ncp.endpoints[descriptor.endpoint] == {
            "profile": descriptor.profile,
            "device": descriptor.device_type,
            "in": descriptor.input_clusters,
            "out": descriptor.output_clusters,
        }
    assert [d.endpoint for d in mirrors] == [10, 11]
    assert "mirror endpoint 10: free" in operator.output
    assert "mirror endpoint 11: free" in operator.output


async def test_without_mirrors_ezsp_registers_only_the_se_endpoint(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    ncp = StickNcp(8)
    operator = Operator()
    operator.type("mirrors")
    operator.type("meter")
    operator.close()
    status = await run_esi(
        EsiConfig(
            radio=RadioSettings(radio="ezsp", device="/dev/fake-ncp"), database=tmp_path / "h.db"
        ),
        credentials=[ESI_CREDENTIALS],
        lines=operator.lines(),
        out=operator.out,
        app_factory=ezsp_factory(ncp, serial_link),
    )
    assert status == 0, operator.text()
    assert sorted(set(ncp.endpoints) - BELLOWS_OWN) == [9]
    assert "mirrors: none (set [esi] mirrors = N to serve some)" in operator.output
    assert "no meter (add a [meter] table)" in operator.output


# -- the shell on the simulator, in process -------------------------------------------------


async def test_meter_and_mirrors_in_an_operator_session(tmp_path: Path) -> None:
    config = parse_config(
        '[esi]\ndatabase = "han.db"\nmirrors = 2\n[meter]\ndivisor = 1000\n', base=tmp_path
    )
    air = Air(seed=5)
    seen: list[RadioOptions] = []
    operator = Operator()
    session = at_the_terminal(config, operator, sim_factory(air, seen), clock)
    await operator.sees("ESI running")
    assert seen[0].mirrors == 2

    operator.type("meter set --summation 12345 --demand 1500")
    await operator.sees("meter: summation delivered 000012.345 kWh, demand 000001.500 kW")

    # a display subscribes to summation and demand, then asks for fast poll
    operator.type(f"provision {IHD} '{IHD_CODE}' --label kitchen")
    await operator.sees(f"provisioned {IHD} (kitchen)")
    sim = air.device(IHD, install_code=InstallCode.parse(IHD_CODE), channel=15)
    ihd = InHomeDisplay(
        sim,
        credentials=CA.issue(eui64_bytes(sim.ieee), SUITE1, rng=random.Random(1)),
        clock=clock,
        metering=True,
    )
    await ihd.start()
    await asyncio.sleep(10)
    schema = Metering.ServerCommandDefs.request_fast_poll_mode.schema
    await ihd.endpoint.request(
        0x0000,
        9,
        METERING,
        MeteringServerCommand.REQUEST_FAST_POLL_MODE,
        encode_command(schema(fast_poll_update_period=2, duration=10)),
        direction=foundation.Direction.Client_to_Server,
        encrypt=True,
    )
    until = time.strftime("%H:%M:%S", time.localtime(clock() + 600 + ZIGBEE_EPOCH))
    operator.type("meter")
    await operator.sees("fast poll:")
    lines = operator.output[operator.output.index("ESI running (type help for the commands)") :]
    shown = [line for line in lines if line.startswith(("meter:", "reporting", "fast poll"))]
    asked = ihd.metering.protocol.config
    to_ihd = f"reporting to {IHD} (kitchen) endpoint {ihd.endpoint.endpoint_id}"
    every = f"every {asked.min_interval}..{asked.max_interval} s"
    assert shown[-4:] == [
        "meter: summation delivered 000012.345 kWh, demand 000001.500 kW, status 0x00",
        f"{to_ihd}: current_summ_delivered {every}, change {asked.summation_change}",
        f"{to_ihd}: instantaneous_demand {every}, change {asked.demand_change}",
        # never faster than FastPollUpdatePeriod (5 s), for the 10 minutes asked
        f"fast poll: every 5 s until {until}",
    ]
    # as they happened, one line each with the time
    happened = [line.split("] ", 1)[1] for line in lines if line.startswith("[")]
    ihd_at = f"{IHD} (kitchen) endpoint {ihd.endpoint.endpoint_id}"
    assert f"{ihd_at} subscribed to current_summ_delivered {every}, change 1" in happened
    assert f"{ihd_at} subscribed to instantaneous_demand {every}, change 1" in happened
    assert f"{IHD} (kitchen) granted fast poll: every 5 s until {until}" in happened

    # bad readings: one line each, nothing changed, the shell goes on
    for command, error in (
        ("meter set --summation 12000", "error: summation delivered 12000 is below 12345"),
        ("meter set --demand 0x800000", "error: instantaneous demand 8388608 out of range"),
        ("meter set --status 256", "error: status 256 out of range"),
        ("meter set --summation 0x1000000000000", "error: summation delivered"),
        ("meter set", "error: give --summation, --demand or --status"),
        ("meter set --summation lots", "error: Invalid value for '--summation'"),
    ):
        operator.type(command)
        assert (await operator.sees(error)).startswith(error)
        operator.output.clear()
    operator.type("meter set --summation 20000 --demand -250 --status 0x01")
    assert await operator.sees("meter: ") == (
        "meter: summation delivered 000020.000 kWh, demand -000000.250 kW, status 0x01"
    )
    await asyncio.sleep(60)
    # the display follows what was fed
    summation, demand = ihd.metering.current()
    assert (str(summation), str(demand)) == ("000020.000 kWh", "-000000.250 kW")

    # the display stops its summation reports (maximum interval 0xFFFF, ZCL 2.5.7.1.6)
    stop = foundation.AttributeReportingConfig()
    stop.direction = foundation.ReportingDirection.SendReports
    stop.attrid = 0x0000
    stop.datatype = foundation.DataTypeId.uint48
    stop.min_interval, stop.max_interval, stop.reportable_change = 0, 0xFFFF, 0
    await ihd.endpoint.request(
        0x0000,
        9,
        METERING,
        foundation.GeneralCommand.Configure_Reporting,
        stop.serialize(),
        cluster_specific=False,
        direction=foundation.Direction.Client_to_Server,
        encrypt=True,
    )
    await operator.sees(f"{ihd_at} stopped reports of current_summ_delivered")
    operator.output.clear()
    operator.type("meter")
    await operator.sees("fast poll:")
    assert [line for line in operator.output if line.startswith("reporting")] == [
        f"{to_ihd}: instantaneous_demand {every}, change {asked.demand_change}"
    ]

    # a gas meter asks for a mirror and pushes its register
    operator.type(f"provision {GAS} '{GAS_CODE}' --label gas")
    await operator.sees(f"provisioned {GAS} (gas)")
    sim = air.device(GAS, install_code=GAS_CODE, channel=15)
    gas = GasMeter(
        sim,
        credentials=CA.issue(eui64_bytes(sim.ieee), SUITE1, rng=random.Random(2)),
        clock=clock,
    )
    await gas.start()
    await operator.sees(f"{GAS} (gas) mirrored on endpoint 10")
    operator.type("mirrors")
    await operator.sees("mirror endpoint 11")
    assert [line for line in operator.output if line.startswith("mirror endpoint")] == [
        f"mirror endpoint 10: {GAS} (gas), nothing mirrored yet",
        "mirror endpoint 11: free",
    ]
    await gas.wake_up(Readings(summation_delivered=1_234_567))
    await operator.sees(f"{GAS} (gas) pushed 9 values to its mirror on endpoint 10")
    operator.output.clear()
    operator.type("mirrors")
    await operator.sees("mirror endpoint 11")
    assert [line for line in operator.output if line.startswith("mirror endpoint")] == [
        f"mirror endpoint 10: {GAS} (gas), summation delivered 1234.567 m³, status 0x00",
        "mirror endpoint 11: free",
    ]
    assert await gas.remove_mirror() == 10
    await operator.sees(f"{GAS} (gas) mirror on endpoint 10 removed")
    operator.output.clear()
    operator.type("mirrors")
    await operator.sees("mirror endpoint 11")
    assert operator.output == ["mirror endpoint 10: free", "mirror endpoint 11: free"]
    await gas.stop()
    await ihd.stop()
    operator.close()
    assert await asyncio.wait_for(session, 60) == 0


# -- zse esi --radio sim -------------------------------------------------------------------------


def shell(tmp_path: Path, config: str, commands: str) -> tuple[int, list[str], str]:
    """:func:`zse_esi_sim`: status, stdout lines from "ESI running" on, stderr."""
    done = zse_esi_sim(tmp_path, config, commands)
    lines = done.stdout.splitlines()
    return (
        done.returncode,
        lines[lines.index("ESI running (type help for the commands)") + 1 :],
        (done.stderr),
    )


@contextlib.contextmanager
def root_logging_kept() -> Iterator[None]:
    """The root logger's handlers and level as they were: ``zse esi`` sets them for its
    process (``logging.basicConfig(force=True)``), here the test's."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def shell_in_process(tmp_path: Path, config: str, commands: str) -> tuple[int, list[str], str]:
    """:func:`shell` without a new interpreter: the same ``zse esi --radio sim`` command
    (its options, its session reading ``commands`` from a standard input that is no
    terminal, its exit status) run by click's test runner; a Python exception escaping it
    fails here (a process would have printed a traceback)."""
    path = tmp_path / "esi.toml"
    path.write_text(config)
    ended: list[Result] = []

    def invoke() -> None:
        argv = [*ZSE_ESI_SIM[3:], "--config", str(path)]
        ended.append(CliRunner().invoke(zse_cli, argv, input=commands))

    worker = threading.Thread(target=invoke, name="zse-esi-in-process", daemon=True)
    with root_logging_kept():
        worker.start()
        worker.join(HANG)  # a hang fails, as the process's timeout does
    assert ended, f"zse esi still running after {HANG} s"
    (done,) = ended
    assert done.exception is None or isinstance(done.exception, SystemExit), done.exc_info
    lines = done.stdout.splitlines()
    return (
        done.exit_code,
        lines[lines.index("ESI running (type help for the commands)") + 1 :],
        done.stderr,
    )


def test_meter_set_then_meter_on_zse_esi_sim(tmp_path: Path) -> None:
    status, lines, stderr = shell(
        tmp_path,
        "[esi]\nmirrors = 2\n[meter]\ndivisor = 100\nsummation_formatting = 0x92\n",
        "meter\nmeter set --summation 123456 --demand 250 --status 0x01\nmeter\nmirrors\n",
    )
    assert status == 0, "\n".join(lines) + stderr
    assert "Traceback" not in stderr
    assert lines == [
        # summation: 2 digits right, leading zeros suppressed; demand: the default 0x33
        "meter: summation delivered 0.00 kWh, demand not known, status 0x00",
        "reporting: nobody subscribed",
        "fast poll: off",
        "meter: summation delivered 1234.56 kWh, demand 000002.500 kW, status 0x01",
        "meter: summation delivered 1234.56 kWh, demand 000002.500 kW, status 0x01",
        "reporting: nobody subscribed",
        "fast poll: off",
        "mirror endpoint 10: free",
        "mirror endpoint 11: free",
        "ESI stopped",
    ]


def test_meter_and_mirrors_without_them_on_zse_esi_sim(tmp_path: Path) -> None:
    status, lines, stderr = shell(tmp_path, "", "meter\nmirrors\n")
    assert status == 0, "\n".join(lines) + stderr
    assert lines == [
        "no meter (add a [meter] table)",
        "mirrors: none (set [esi] mirrors = N to serve some)",
        "ESI stopped",
    ]
    # a script stops at a refused reading (status 1), after one line saying why
    status, lines, stderr = shell(
        tmp_path, "[meter]\n", "meter set --summation 10\nmeter set --summation 9\nmeter\n"
    )
    assert status == 1, "\n".join(lines) + stderr
    assert lines == [
        "meter: summation delivered 000000.010 kWh, demand not known, status 0x00",
        "error: summation delivered 9 is below 10",
        "stopping: a scripted command failed",
        "ESI stopped",
    ]


def test_the_simulated_display_follows_the_meter_on_zse_esi_sim(tmp_path: Path) -> None:
    """With a ``[meter]``, ``zse esi --radio sim``'s display subscribes to the meter once
    keyed, its demand too before the meter holds one, and shows what ``meter set`` feeds it
    (reported within the minimum interval)."""
    status, lines, stderr = shell(
        tmp_path,
        "[meter]\n",
        f"provision {IHD} '{IHD_CODE}' --label kitchen\nwait ready {IHD} --timeout 120\n"
        "sleep 20\nmeter set --summation 12345 --demand 1500\nsleep 20\nmeter\n",
    )
    assert status == 0, "\n".join(lines) + stderr
    summation = "current_summ_delivered every 10..300 s, change 1"
    demand = "instantaneous_demand every 10..300 s, change 1"
    at = f"{IHD} (kitchen) endpoint 1"
    assert any(line.endswith(f"{at} subscribed to {summation}") for line in lines)
    assert any(line.endswith(f"{at} subscribed to {demand}") for line in lines)
    readings = "meter: summation delivered 000012.345 kWh, demand 000001.500 kW, status 0x00"
    fed = lines.index(readings)
    assert any(line.endswith(f"{at} subscribed to {demand}") for line in lines[:fed])
    assert "sim: in-home display shows summation 000012.345 kWh" in lines[fed:]
    assert "sim: in-home display shows demand 000001.500 kW" in lines[fed:]
    assert lines[-5:] == [
        readings,
        f"reporting to {at}: {summation}",
        f"reporting to {at}: {demand}",
        "fast poll: off",
        "ESI stopped",
    ]


def test_a_meter_without_demand_on_zse_esi_sim(tmp_path: Path) -> None:
    """``[meter] demand = false``: a meter without InstantaneousDemand (SE D.3.2.2.1.1). The
    display's read of the demand and its Configure Reporting of it are answered
    UNSUPPORTED_ATTRIBUTE (ZCL 2.5.2.1, 2.5.7.3; a meter with it takes the reporting before
    its first reading): the display follows the summation alone, subscribed to nothing else.
    ``meter`` shows no demand, and ``meter set --demand`` is refused in one line."""
    status, lines, stderr = shell(
        tmp_path,
        "[meter]\ndemand = false\n",
        f"provision {IHD} '{IHD_CODE}' --label kitchen\nwait ready {IHD} --timeout 120\n"
        "sleep 20\nmeter set --summation 12345\nsleep 320\nmeter\n"
        "meter set --summation 12400 --demand 1500\nmeter\n",
    )
    assert status == 1, "\n".join(lines) + stderr
    assert "Traceback" not in stderr
    summation = "current_summ_delivered every 10..300 s, change 1"
    at = f"{IHD} (kitchen) endpoint 1"
    assert any(line.endswith(f"{at} subscribed to {summation}") for line in lines)
    assert not any("subscribed to instantaneous_demand" in line for line in lines)
    refused = "sim: in-home display shows no demand: the meter answers it UNSUPPORTED_ATTRIBUTE"
    assert lines.count(refused) == 1  # said once, not at each ask again
    assert "sim: in-home display shows summation 000012.345 kWh" in lines
    assert not any(line.startswith("sim: in-home display shows demand") for line in lines)
    assert lines[-6:] == [
        "meter: summation delivered 000012.345 kWh, status 0x00",
        f"reporting to {at}: {summation}",
        "fast poll: off",
        "error: the meter has no InstantaneousDemand ([meter] demand = false): --demand refused",
        "stopping: a scripted command failed",
        "ESI stopped",
    ]


def test_the_shell_refuses_what_it_cannot_do_in_one_line(tmp_path: Path) -> None:
    """An audit's finds: a megabyte line took shlex 15 s and was echoed whole; a negative
    ZigBee group id read "0x-001"; a negative duration "is over 1440"; sleep took NaN and
    infinity (a hang). A script stops at its first failure: one command a run. The first
    in a process of its own (the megabyte line through a real pipe), the others in this
    one (a process costs its imports, 1.5 s, most of what this test took)."""
    for index, (command, said) in enumerate(
        [
            ("x" * 5000, "error: a command line is at most 4096 characters"),
            ("message hi --zigbee-group -1", "error: ZigBee group id -1 is outside 0x0001-0xFFF7"),
            ("load-control --duration -5 --broadcast", "duration -5 min is outside 0-1440"),
            ("sleep nan", "'nan' is not a finite number"),
            ("sleep inf", "inf is not in the range 0<=x<=31622400.0"),
            ("sleep 1e300", "is not in the range 0<=x<=31622400.0"),
            ("wait joined 000D6F000A000001 --timeout nan", "'nan' is not a finite number"),
        ]
    ):
        place = tmp_path / str(index)
        place.mkdir()
        run = shell if index == 0 else shell_in_process
        status, lines, stderr = run(place, "", command + "\n")
        assert status == 1, "\n".join(lines) + stderr
        assert "Traceback" not in stderr
        assert lines[0].startswith("error: "), lines
        assert said in lines[0], lines
        assert lines[1:] == ["stopping: a scripted command failed", "ESI stopped"]
