"""The ``zse esi`` session logic on the simulator, through the injectable application factory:
a configuration applied at start, an operator provisioning a display that then joins and runs
CBKE, a confirmed message to a registry group, a load control event with its reports, a bad
command (reported, the session goes on), de-provisioning, and the script rule (the first
failing scripted command stops the ESI with status 1)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from tests.cli_sticks.sticks_helpers import (
    CA,
    ESI_CREDENTIALS,
    IHD,
    IHD_CODE,
    Operator,
    at_the_terminal,
    serving,
    sim_factory,
)
from zse.cbke import SUITE1
from zse.cbke.service import eui64_bytes
from zse.cli._radio import RadioOptions
from zse.cli.esi import run_esi
from zse.config import parse_config
from zse.installcode import InstallCode
from zse.roles.han import InHomeDisplay, LoadControlDevice
from zse.sim import Air

HEATER = "00:0d:6f:00:0a:00:00:03"
HEATER_CODE = "1122 3344 5566 7788 99AA BBCC DDEE FF00 D5E6"
START = 800_000_000

CONFIG = f"""
[radio]
type = "ezsp"
device = "/dev/ttyUSB0"

[esi]
database = "han.db"
permit_seconds = 120

[[devices]]
eui64 = "{HEATER}"
install_code = "{HEATER_CODE}"
label = "water heater"
groups = ["street-7"]

[[prices]]
price = "0.1234"
rate_label = "Off-peak"
issuer_event_id = 41
"""


def clock() -> int:
    return START + int(asyncio.get_running_loop().time())


async def test_an_operator_session_on_the_simulator(tmp_path: Path) -> None:
    config = parse_config(CONFIG, base=tmp_path)
    air = Air(seed=3)
    seen: list[RadioOptions] = []
    operator = Operator()
    # as at the terminal: errors are reported, the ESI goes on
    session = at_the_terminal(config, operator, sim_factory(air, seen), clock)
    await operator.sees("ESI running")
    # the factory got the radio settings and a zigpy database beside the registry
    assert seen[0].radio.radio == "ezsp"
    assert seen[0].zigpy_database == str(tmp_path / "han-zigpy.db")
    # the configuration: the heater provisioned, the price published
    assert f"provisioned {HEATER} (water heater): pending provisioning, joining open for 120 s" in (
        operator.output
    )
    assert "price 41 to broadcast: sent (one unacknowledged frame)" in operator.output

    def han(role: type, eui: str, code: str) -> object:
        sim = air.device(eui, install_code=InstallCode.parse(code), channel=15)
        return role(
            sim,
            credentials=CA.issue(eui64_bytes(sim.ieee), SUITE1, rng=random.Random(eui)),
            clock=clock,
        )

    heater = han(LoadControlDevice, HEATER, HEATER_CODE)
    await heater.start()
    operator.type(f"wait ready {HEATER} --timeout 60")
    await operator.sees(f"{HEATER} (water heater) is meter ready")
    assert any("water heater) key established (CBKE suite 1)" in line for line in operator.output)

    # the operator provisions a display; it joins and runs CBKE
    operator.type(f"provision {IHD} '{IHD_CODE}' --label kitchen --group street-7")
    await operator.sees(f"provisioned {IHD} (kitchen)")
    ihd = han(InHomeDisplay, IHD, IHD_CODE)
    await ihd.start()
    operator.type(f"wait ready {IHD}")
    await operator.sees(f"{IHD} (kitchen) is meter ready")
    assert any(
        f"{IHD} (kitchen) pending provisioning -> meter ready (key established)" in line
        for line in operator.output
    )

    operator.type("message 'Peak from 17:00' --id 7 --confirm --group street-7")
    await operator.sees("message 7 to registry group 'street-7'")
    assert "message 7 to registry group 'street-7': 2 delivered, 0 offline, 0 skipped" in (
        operator.output
    )
    await asyncio.sleep(2)
    assert ihd.showing().text == "Peak from 17:00"
    await ihd.confirm(7)
    await operator.sees(f"{IHD} (kitchen) confirmed message 7")

    operator.type("load-control --id 9 --duration 30 --duty-cycle 50 --device " + HEATER)
    await operator.sees("load control event 9 to device")
    await operator.sees(f"{HEATER} (water heater) load control event 9: received")
    await operator.sees(f"{HEATER} (water heater) load control event 9: started")

    # bad commands are reported and the session goes on
    operator.type("message 'x' --device nonsense")
    await operator.sees("error: ")
    operator.type("frobnicate")
    await operator.sees("error: No such command 'frobnicate'.")

    operator.type(f"deprovision {IHD}")
    operator.type(f"wait gone {IHD}")
    await operator.sees(f"{IHD} (kitchen) is de-provisioned")
    operator.type("devices --group street-7")
    await operator.sees(f"{HEATER}  meter ready")
    operator.close()
    assert await asyncio.wait_for(session, 60) == 0
    assert operator.output[-1] == "ESI stopped"


async def test_a_script_stops_at_its_first_failure(tmp_path: Path) -> None:
    config = parse_config(
        CONFIG.replace("[[devices]]", "[[unused]]").split("[[unused]]")[0], base=tmp_path
    )
    operator = Operator()
    for line in (
        "status",
        "message hello --device 00:0d:6f:00:0a:00:00:09 --broadcast",
        "status",
        "quit",
    ):
        operator.type(line)
    status = await run_esi(
        config,
        credentials=[ESI_CREDENTIALS],
        lines=operator.lines(),
        out=operator.out,
        app_factory=sim_factory(Air(seed=4)),
        clock=clock,
    )
    assert status == 1
    assert operator.output.count("registry: empty") == 1  # the second status never ran
    assert (
        "error: give exactly one target: --device, --group, --zigbee-group or --broadcast"
        in operator.output
    )
    assert "stopping: a scripted command failed" in operator.output


async def test_serve_runs_until_stopped(tmp_path: Path) -> None:
    config = parse_config(CONFIG, base=tmp_path)
    operator = Operator()
    stop = asyncio.Event()
    task = serving(config, operator, sim_factory(Air(seed=5)), clock, stop)
    await operator.sees("ESI running")
    await asyncio.sleep(3600)
    assert not task.done()
    stop.set()
    assert await task == 0
    assert operator.output[-1] == "ESI stopped"
