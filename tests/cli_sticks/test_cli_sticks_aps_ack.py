"""``[esi] aps_ack``: the ESI's unicasts ask for an APS acknowledgement and are resent without
one (ZB 2.2.8.4.1; the default, as an EmberZNet SE ESI's); ``false`` ends a send at the first
hop's MAC acknowledgement. ``zse esi`` says which failed, on the simulator."""

from __future__ import annotations

import asyncio
import random
import re
from pathlib import Path

import pytest

from tests.cli_sticks.sticks_helpers import (
    CA,
    IHD,
    IHD_CODE,
    Operator,
    at_the_terminal,
    sim_factory,
)
from zse.cbke import SUITE1
from zse.cbke.service import eui64_bytes
from zse.config import ConfigError, parse_config
from zse.installcode import InstallCode
from zse.roles.han import InHomeDisplay
from zse.sim import Air

START = 800_000_000


def test_the_aps_ack_key() -> None:
    assert parse_config("").aps_ack is True
    assert parse_config("[esi]\naps_ack = true\n").aps_ack is True
    assert parse_config("[esi]\naps_ack = false\n").aps_ack is False


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("[esi]\naps_ack = 1\n", "config: [esi] aps_ack: expected bool, got int"),
        ('[esi]\naps_ack = "no"\n', "config: [esi] aps_ack: expected bool, got str"),
        ("[esi]\naps_acks = false\n", "config: [esi]: unknown key 'aps_acks'"),
    ],
)
def test_a_wrong_aps_ack_key_is_one_line(text: str, error: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert str(caught.value).startswith(error)


def clock() -> int:
    return START + int(asyncio.get_running_loop().time())


@pytest.mark.parametrize(
    ("setting", "said"),
    [
        ("", r"no APS acknowledgement from 0x[0-9A-F]{4} after 4 attempts"),
        ("aps_ack = false", r"no MAC acknowledgement from 0x[0-9A-F]{4} after 4 attempts"),
    ],
    ids=["default", "aps-ack-false"],
)
async def test_zse_esi_says_why_a_switched_off_display_missed_a_message(
    tmp_path: Path, setting: str, said: str
) -> None:
    config = parse_config(
        f'[radio]\ntype = "ezsp"\ndevice = "/dev/ttyUSB0"\n[esi]\ndatabase = "han.db"\n{setting}\n',
        base=tmp_path,
    )
    air = Air(seed=5)
    operator = Operator()
    session = at_the_terminal(config, operator, sim_factory(air), clock)
    await operator.sees("ESI running")
    operator.type(f"provision {IHD} '{IHD_CODE}' --label kitchen")
    await operator.sees(f"provisioned {IHD} (kitchen)")
    sim = air.device(IHD, install_code=InstallCode.parse(IHD_CODE), channel=15)
    ihd = InHomeDisplay(
        sim,
        credentials=CA.issue(eui64_bytes(sim.ieee), SUITE1, rng=random.Random(IHD)),
        clock=clock,
    )
    await ihd.start()
    operator.type(f"wait ready {IHD}")
    await operator.sees(f"{IHD} (kitchen) is meter ready")
    air.silence(sim)
    operator.type(f"message 'Peak from 17:00' --id 8 --device {IHD}")
    line = await operator.sees("message 8 to device")
    assert re.fullmatch(
        rf"message 8 to device {IHD}: 0 delivered, 1 offline, 0 skipped; "
        rf"{IHD} \(kitchen\) offline \({said}\)",
        line,
    ), line
    operator.close()
    assert await session == 0
    await ihd.stop()
