"""A simulated gateway stopped and started again on its registry (``zse esi --radio sim
--database``, the path of ``zse mqtt --config esi.toml --radio sim`` too) behaves as a meter
after a power cycle: its joined, METER_READY devices rejoin with the keys they kept and are sent
to again; a de-provisioned one does not come back; ``--form`` forms a new network; a saved state
that is not the simulator's is a one-line error. Run as subprocesses with their commands on
stdin: the shell's ``sleep`` and ``wait`` run on the simulator's virtual clock."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

from zse.cli._sim import SIM_HAN

ZSE_ESI_SIM = (sys.executable, "-m", "zse", "esi", "--radio", "sim")
HANG = 120
(_, IHD, IHD_CODE), (_, THERMOSTAT, _), (_, HEATER, HEATER_CODE) = SIM_HAN

FIRST = f"""\
provision {IHD} '{IHD_CODE}' --label kitchen
provision {HEATER} '{HEATER_CODE}' --label heater
wait ready {IHD} --timeout 120
wait ready {HEATER} --timeout 120
deprovision {HEATER}
sleep 10
quit
"""

AGAIN = f"""\
sleep 20
message 'back again' --id 8 --device {IHD}
sleep 20
devices
quit
"""


def zse_esi(workdir: Path, commands: str, *args: str) -> tuple[int, list[str], str]:
    result = subprocess.run(
        [*ZSE_ESI_SIM, "--database", "esi-1.db", *args],
        cwd=workdir,
        input=commands,
        capture_output=True,
        text=True,
        timeout=HANG,
        check=False,
    )
    return result.returncode, result.stdout.splitlines(), result.stderr


def _first_run(workdir: Path) -> None:
    status, lines, stderr = zse_esi(workdir, FIRST)
    assert status == 0, "\n".join(lines) + stderr
    assert f"{IHD} (kitchen) is meter ready" in lines
    assert any(line.endswith("-> de-provision complete (left)") for line in lines), lines


def test_a_restarted_simulated_gateway_s_devices_rejoin_and_are_sent_to(tmp_path: Path) -> None:
    _first_run(tmp_path)
    status, lines, stderr = zse_esi(tmp_path, AGAIN)
    text = "\n".join(lines)
    assert status == 0, text + stderr
    assert "Traceback" not in stderr
    assert "registry: esi-1.db (2 devices)" in lines
    # the display kept its keys: it rejoins (zigpy hears its Device_annce), re-keys, resyncs
    assert "sim: in-home display rejoined the network" in lines
    assert any(line.endswith(f"{IHD} (kitchen) joined (NWK 0x0684)") for line in lines), text
    assert "sim: in-home display shows message 8: 'back again'" in lines
    assert f"message 8 to device {IHD}: 1 delivered, 0 offline, 0 skipped" in lines
    assert any(line.startswith(f"{IHD}  meter ready") for line in lines)
    assert "meter ready -> pending provisioning" not in text  # it never left
    # the heater was removed (its keys erased): it is not back; the thermostat never was on
    for kind in ("water heater switch", "thermostat"):
        assert not any(line.startswith(f"sim: {kind} rejoined") for line in lines), text
        assert not any(line.startswith(f"sim: {kind} joined") for line in lines), text
    # the keys stay in the file, its owner's alone
    saved = tmp_path / "esi-1-sim.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    network_key = json.loads(saved.read_text())["backup"]["network_info"]["network_key"]["key"]
    assert network_key.replace(":", "").lower() not in (text + stderr).replace(":", "").lower()


def test_form_forms_a_new_network_the_devices_must_join_again(tmp_path: Path) -> None:
    _first_run(tmp_path)
    status, lines, stderr = zse_esi(tmp_path, AGAIN, "--form")
    text = "\n".join(lines)
    assert status == 0, text + stderr
    assert not any(line.startswith("sim: in-home display rejoined") for line in lines), text
    sent = f"message 8 to device {IHD}: 0 delivered, 1 offline, 0 skipped"
    assert any(line.startswith(sent) for line in lines), text


def test_a_saved_state_that_is_not_the_simulator_s_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "esi-1-sim.json").write_text('{"version": 1, "backup": {}, "devices": {}}')
    status, lines, stderr = zse_esi(tmp_path, "quit\n")
    assert status == 2, "\n".join(lines) + stderr
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines() == [
        "error: esi-1-sim.json: not the simulator's saved network (ValueError "
        "in its content): remove it to form a new one"
    ]
