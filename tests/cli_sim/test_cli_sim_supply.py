"""The operator of ``zse esi --radio sim`` runs the meter's supply (SE 1.2 supply control)
and takes its snapshots from the shell: ``supply`` shows Supply Status, the utility's state,
the credit's interruption and the changes waiting; ``supply off|armed|on`` changes it now or
at a time, ``supply cancel`` drops one waiting, ``meter snapshot`` takes a snapshot now.
What cannot be done is one ``error:`` line (a script stops there)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.cli_sticks.test_cli_sticks_meter_shell import shell_in_process
from zse.time.service import ZIGBEE_EPOCH

SUPPLY = "[meter]\nsupply = true\n"
CLOCK = re.compile(r"\d\d:\d\d:\d\d")


def _in_an_hour() -> int:
    """ZigBee UTCTime an hour from now (the simulator's clock starts at the wall clock's)."""
    return int(time.time()) - ZIGBEE_EPOCH + 3600


def test_the_operator_switches_the_supply_now_later_and_cancels(tmp_path: Path) -> None:
    at = _in_an_hour()
    status, lines, stderr = shell_in_process(
        tmp_path,
        SUPPLY,
        "supply\n"
        "supply off --issuer 3\n"
        f"supply armed --at {at} --issuer 5\n"
        f"supply on --at {at} --issuer 4\n"  # older than the one waiting before it: not kept
        "supply cancel --provider 1 --issuer 9\n"
        "supply cancel --provider 1 --issuer 5\n"
        f"supply armed --at {at} --provider 7 --issuer 6\n"
        "supply\n"
        "sleep 3610\n"
        "supply\n"
        "meter snapshot --cause manually_triggered_from_client\n",
    )
    assert status == 0, "\n".join(lines) + stderr
    assert [CLOCK.sub("hh:mm:ss", line) for line in lines] == [
        "supply: On (utility: On, credit interruption: no)",
        "waiting: none",
        "[hh:mm:ss] supply On -> Off (change supply)",
        "Change Supply to Off (provider 1, issuer event 3): applied; supply Off",
        "Change Supply to Off/Armed (provider 1, issuer event 5): waiting; supply Off",
        "Change Supply to On (provider 1, issuer event 4): not kept; supply Off",
        "cancel of provider 1, issuer event 9: nothing to cancel; 1 change waiting",
        "cancel of provider 1, issuer event 5: cancelled; 0 changes waiting",
        "Change Supply to Off/Armed (provider 7, issuer event 6): waiting; supply Off",
        "supply: Off (utility: Off, credit interruption: no)",
        f"waiting: Off/Armed at hh:mm:ss ({at}), provider 7, issuer event 6",
        "[hh:mm:ss] supply Off -> Off/Armed (change supply)",
        "supply: Off/Armed (utility: Off/Armed, credit interruption: no)",
        "waiting: none",
        "snapshot 1 taken at hh:mm:ss: Manually_Triggered_From_Client, "
        "summation delivered 000000.000 kWh",
        "ESI stopped",
    ]


@pytest.mark.parametrize(
    ("config", "command", "said"),
    [
        ("[meter]\n", "supply", "the meter has no supply control (set [meter] supply = true)"),
        ("[meter]\n", "supply on", "the meter has no supply control (set [meter] supply = true)"),
        ("", "supply off", "no meter (add a [meter] table)"),
        ("", "meter snapshot", "no meter (add a [meter] table)"),
        (SUPPLY, "supply on --at 4294967295", "'--at': 4294967295 is outside 0..4294967294"),
        (SUPPLY, "supply off --at -1", "'--at': -1 is outside 0..4294967294"),
        (SUPPLY, "supply off --issuer 4294967296", "'--issuer': 4294967296 is outside 0.."),
        (SUPPLY, "supply armed --provider x1", "'x1' is not an integer"),
        (SUPPLY, "supply cancel --provider 1", "Missing option '--issuer'"),
        (SUPPLY, "supply cancel --provider 1 --issuer -2", "'--issuer': -2 is outside"),
        (SUPPLY, "supply dim", "No such command 'dim'"),
        (SUPPLY, "meter snapshot --cause nope", "'nope' is not one of 'general'"),
    ],
)
def test_what_the_supply_commands_cannot_do_is_one_line(
    tmp_path: Path, config: str, command: str, said: str
) -> None:
    status, lines, stderr = shell_in_process(tmp_path, config, command + "\n")
    assert status == 1, "\n".join(lines) + stderr
    assert lines[0].startswith("error: "), lines
    assert said in lines[0], lines
    assert lines[1:] == ["stopping: a scripted command failed", "ESI stopped"]


def test_a_ninth_change_waiting_is_refused_in_one_line(tmp_path: Path) -> None:
    at = _in_an_hour()
    changes = "".join(f"supply off --at {at + n} --issuer {10 + n}\n" for n in range(9))
    status, lines, stderr = shell_in_process(tmp_path, SUPPLY, changes + "supply\n")
    assert status == 1, "\n".join(lines) + stderr
    assert [line.split(": ")[-1] for line in lines[:8]] == ["waiting; supply On"] * 8
    assert lines[8:] == [
        "error: 8 supply changes wait already",
        "stopping: a scripted command failed",
        "ESI stopped",
    ]
