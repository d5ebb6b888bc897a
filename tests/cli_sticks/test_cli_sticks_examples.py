"""examples/esi_on_stick.py runs (on the simulator, through its app_factory) and
examples/esi.toml / devices.csv parse, so they never rot."""

from __future__ import annotations

import asyncio
import importlib.util
import random
import subprocess
import sys
from pathlib import Path

from tests.cli_sticks.sticks_helpers import CA, ESI_CREDENTIALS, IHD, IHD_CODE, sim_factory
from zse.cbke import SUITE1
from zse.cbke.service import eui64_bytes
from zse.config import load_config
from zse.installcode import InstallCode
from zse.provisioning.registry import HanRegistry
from zse.roles.han import InHomeDisplay
from zse.sim import Air

EXAMPLES = Path(__file__).parents[2] / "examples"


def load_example():
    spec = importlib.util.spec_from_file_location("esi_on_stick", EXAMPLES / "esi_on_stick.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_esi_on_stick_example_runs_on_the_simulator(tmp_path: Path) -> None:
    example = load_example()
    assert (example.DISPLAY, example.INSTALL_CODE) == (IHD, IHD_CODE)
    credentials = tmp_path / "esi.json"
    credentials.write_text(ESI_CREDENTIALS.to_json())
    air = Air(seed=9)
    output: list[str] = []
    running = asyncio.get_running_loop().create_task(
        example.main(
            "ezsp",
            "/dev/ttyUSB0",
            credentials,
            database=tmp_path / "han.db",
            app_factory=sim_factory(air),
            out=output.append,
        )
    )
    while not any(line.startswith("provisioned") for line in output):
        await asyncio.sleep(1)
    clock = lambda: 800_000_000 + int(asyncio.get_running_loop().time())  # noqa: E731
    sim = air.device(IHD, install_code=InstallCode.parse(IHD_CODE), channel=15)
    display = InHomeDisplay(
        sim, credentials=CA.issue(eui64_bytes(sim.ieee), SUITE1, rng=random.Random(2)), clock=clock
    )
    await display.start()
    assert await asyncio.wait_for(running, 600) == 0, "\n".join(output)
    text = "\n".join(output)
    assert f"{IHD} (kitchen) is meter ready" in text
    assert "to registry group 'home': 1 delivered, 0 offline, 0 skipped" in text
    assert display.showing().text == "Peak price from 17:00"
    assert f"{IHD} (kitchen) load control event" in text
    assert f"{IHD}  meter ready" in text


def test_the_example_says_a_missing_credentials_file_in_one_line(tmp_path: Path) -> None:
    """A credentials file that is not there ended the example in a ConfigError traceback."""
    missing = tmp_path / "missing.json"
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "esi_on_stick.py"), "--radio", "ezsp", "--device",
         "/dev/null", "--credentials", str(missing)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("error: ")
    assert str(missing) in done.stderr


def test_the_example_configuration_parses() -> None:
    config = load_config(EXAMPLES / "esi.toml")
    assert (config.radio.radio, config.radio.device) == ("ezsp", "/dev/ttyUSB0")
    assert config.network.pan_id == 0x1A2B
    assert config.credentials == (EXAMPLES / "esi-credentials.json",)
    assert config.devices_csv == (EXAMPLES / "devices.csv",)
    assert config.devices[0].label == "kitchen display"
    assert config.groups == {"street-7": ("00:0d:6f:00:0a:00:00:02",)}
    (price,) = config.prices
    assert (price.price.price, price.price.price_trailing_digit) == (2451, 4)
    assert (price.price.currency, price.price.price_tier) == (826, 2)
    assert price.auto_id
    (tariff,) = config.tariffs  # an SE 1.2 TOU tariff in pounds, 4 decimals
    assert (tariff.tariff.tariff_label, tariff.tariff.currency) == (b"Economy 7", 826)
    assert [type(v).__name__ for v in tariff.values] == ["PriceMatrix", "TierLabels"]
    assert config.interpan


async def test_the_example_csv_imports(tmp_path: Path) -> None:
    registry = await HanRegistry.open(tmp_path / "r.db")
    report = await registry.import_csv((EXAMPLES / "devices.csv").read_text().splitlines())
    await registry.close()
    assert report.errors == []
    assert report.registered == ["000D6F000A000002"]


def test_the_example_csv_s_devices_join_the_simulator() -> None:
    """`zse esi --radio sim --config examples/esi.toml` admits examples/devices.csv's devices:
    each is a simulated device with its install code (the thermostat had the water heater
    switch's: on the simulator it never joined)."""
    from zse.cli._sim import SIM_HAN  # noqa: PLC0415
    from zse.device_csv import DeviceRow, read_devices  # noqa: PLC0415

    simulated = {
        InstallCode.parse(code).link_key: eui64.replace(":", "").upper()
        for _, eui64, code in SIM_HAN
    }
    rows = [*read_devices((EXAMPLES / "devices.csv").read_text().splitlines())]
    assert rows
    for row in rows:
        assert isinstance(row, DeviceRow), row
        assert simulated.get(row.link_key) == row.eui64
