"""Issue #12.11: ``zse esi --radio sim``, the operator shell on the simulator (no stick), run as
a subprocess with its commands on stdin: the simulated devices are listed with their install
codes, join once provisioned, run CBKE, show the price and the message (the display's user
confirms it), apply load control; a device provisioned with a wrong install code never joins
(the script stops, status 1). Nothing is left in the working directory."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

from zse.cli._sim import SIM_HAN

ZSE_ESI_SIM = (sys.executable, "-m", "zse", "esi", "--radio", "sim")
HANG = 120
(_, IHD, IHD_CODE), (_, THERMOSTAT, _), (_, HEATER, HEATER_CODE) = SIM_HAN

SESSION = f"""\
status
provision {IHD} '{IHD_CODE}' --label kitchen --group home
provision {HEATER} '{HEATER_CODE}' --label heater --group home
wait ready {IHD} --timeout 120
wait ready {HEATER} --timeout 120
price 0.2451 --label Peak --group home
message 'Peak price from 17:00' --id 7 --confirm --device {IHD}
sleep 30
load-control --id 9 --duration 30 --duty-cycle 40 --device {HEATER}
sleep 120
devices
quit
"""

WRONG_CODE = f"""\
provision {THERMOSTAT} '{HEATER_CODE}' --label hall
wait ready {THERMOSTAT} --timeout 60
devices
"""


def run(workdir: Path, commands: str) -> subprocess.Popen[str]:
    workdir.mkdir()
    process = subprocess.Popen(
        ZSE_ESI_SIM,
        cwd=workdir,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None
    process.stdin.write(commands)
    process.stdin.close()
    return process


def finish(process: subprocess.Popen[str]) -> tuple[int, list[str], str]:
    try:
        stdout = process.stdout.read() if process.stdout else ""
        stderr = process.stderr.read() if process.stderr else ""
        status = process.wait(timeout=HANG)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return status, stdout.splitlines(), stderr


def test_the_operator_shell_on_the_simulator(tmp_path: Path) -> None:
    good = run(tmp_path / "session", SESSION)
    wrong = run(tmp_path / "wrong-code", WRONG_CODE)
    status, lines, stderr = finish(good)
    text = "\n".join(lines)
    assert status == 0, text + stderr
    assert "Traceback" not in stderr
    assert lines[0] == "starting the sim on the simulated air..."
    for _, eui, code in SIM_HAN:
        assert any(line.startswith(f"  {eui}") and line.endswith(code) for line in lines)
    assert "coordinator 00:0d:6f:00:00:00:00:e5 (NWK 0x0000)" in lines
    assert "ESI running (type help for the commands)" in lines
    assert f"{IHD} (kitchen) is meter ready" in lines
    assert f"{HEATER} (heater) is meter ready" in lines
    assert "sim: in-home display got price 'Peak' 0.2451" in lines
    assert "sim: water heater switch got price 'Peak' 0.2451" in lines
    assert "to registry group 'home': 2 delivered, 0 offline, 0 skipped" in text
    assert "message 7 to device" in text
    assert "sim: in-home display shows message 7: 'Peak price from 17:00'" in lines
    assert "sim: the in-home display's user confirmed message 7" in lines
    assert any(line.endswith(f"{IHD} (kitchen) confirmed message 7") for line in lines)
    assert "sim: water heater switch duty cycle 40%" in lines
    assert any(f"{HEATER} (heater) load control event 9: started" in line for line in lines)
    assert any(line.startswith(f"{IHD}  meter ready") for line in lines)
    assert lines[-1] == "ESI stopped"
    assert list((tmp_path / "session").iterdir()) == []  # the registry was a temporary one

    status, lines, stderr = finish(wrong)
    assert status == 1, "\n".join(lines) + stderr
    assert f"error: {THERMOSTAT} still not ready after 60 s" in lines
    assert "stopping: a scripted command failed" in lines
    assert not any(line.startswith("sim: thermostat joined") for line in lines)
    assert lines[-1] == "ESI stopped"


def test_serve_on_the_simulator_runs_in_real_time_until_sigterm(tmp_path: Path) -> None:
    """``--serve`` with a configuration: the display provisioned at start joins in real time
    (seconds), and SIGTERM stops the ESI with status 0."""
    config = tmp_path / "esi.toml"
    config.write_text(f'[[devices]]\neui64 = "{IHD}"\ninstall_code = "{IHD_CODE}"\nlabel = "k"\n')
    process = subprocess.Popen(
        [*ZSE_ESI_SIM, "--serve", "--config", str(config)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(HANG, process.kill)
    watchdog.start()
    try:
        assert process.stdout is not None
        seen = []
        ready = f"{IHD} (k) pending provisioning -> meter ready (key established)"
        resynced = "sim: in-home display joined and keyed; resynced"
        for line in process.stdout:  # both, in either order (the registry's and the display's)
            seen.append(line.rstrip("\n"))
            if resynced in seen and any(told.endswith(ready) for told in seen):
                process.send_signal(signal.SIGTERM)
                break
        rest, stderr = process.communicate()
    finally:
        watchdog.cancel()
    lines = seen + rest.splitlines()
    assert process.returncode == 0, "\n".join(lines) + stderr
    assert f"provisioned {IHD} (k): pending provisioning, joining open for 254 s" in lines
    assert "ESI running" in lines
    assert resynced in seen
    assert any(line.endswith(ready) for line in seen)
    assert lines[-1] == "ESI stopped"
