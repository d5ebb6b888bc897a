"""Issue #12.12: the zigpy tools' command-line conventions in ``zse esi`` and ``zse interpan``:
``-v``/``-vv`` and a case-insensitive ``--log-level`` (also before the subcommand), the radio
and its port from environment variables (``ZSE_*``, and bellows' ``EZSP_*`` for the EZSP
radio), serial flow control, and what wins over what. The recording factory
(tests/cli_sticks/click_factory.py) keeps what reached the radio's options."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bellows.zigbee.application import ControllerApplication as BellowsApplication
from click.testing import CliRunner

from tests.cli_sticks import click_factory
from tests.cli_sticks.sticks_helpers import ESI_CREDENTIALS
from zse.cli import main
from zse.cli._logging import SECRET_LOGGERS
from zse.cli._radio import RadioOptions, zigpy_config
from zse.config import NetworkSettings, RadioSettings

RECORD = "tests.cli_sticks.click_factory:record"
#: Every variable these commands read, unset unless a test sets it.
VARIABLES = (
    "ZSE_RADIO",
    "ZSE_DEVICE",
    "ZSE_BAUDRATE",
    "ZSE_FLOW_CONTROL",
    "ZSE_START_TIMEOUT",
    "EZSP_DEVICE",
    "EZSP_BAUDRATE",
    "EZSP_FLOW_CONTROL",
)


@pytest.fixture(autouse=True)
def _root_logger() -> Iterator[None]:
    """The commands configure the root logger: put it back as it was."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    click_factory.RECORDED.clear()
    yield
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


@pytest.fixture
def creds(tmp_path: Path) -> Path:
    path = tmp_path / "esi.json"
    path.write_text(ESI_CREDENTIALS.to_json())
    return path


def invoke(*args: str, **env: str) -> Any:
    environment: dict[str, str | None] = dict.fromkeys(VARIABLES)
    environment.update(env)
    return CliRunner().invoke(main, list(args), env=environment)


def recorded(result: Any) -> tuple[RadioSettings, int]:
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[-1] == "error: recorded", result.output
    ((options, level),) = click_factory.RECORDED
    return options.radio, level


def run_esi(creds: Path, *args: str, before: tuple[str, ...] = (), **env: str) -> Any:
    return invoke(
        *before, "esi", "--credentials", str(creds), "--app-factory", RECORD, *args, **env
    )


@pytest.mark.parametrize(
    ("before", "args", "level"),
    [
        ((), (), logging.WARNING),
        ((), ("-v",), logging.INFO),
        ((), ("-vv",), logging.DEBUG),
        ((), ("-vvv",), logging.DEBUG),
        ((), ("--log-level", "DEBUG"), logging.DEBUG),
        ((), ("--log-level", "Info"), logging.INFO),
        ((), ("--log-level", "error"), logging.ERROR),
        ((), ("--log-level", "error", "-v"), logging.INFO),  # the more verbose wins
        (("-vv",), (), logging.DEBUG),  # zse -vv esi ...
        (("--log-level", "INFO"), ("--log-level", "error"), logging.INFO),
    ],
)
def test_verbosity(creds: Path, before: tuple[str, ...], args: tuple[str, ...], level: int) -> None:
    result = run_esi(creds, "--radio", "ezsp", "--device", "/dev/ttyX", *args, before=before)
    assert recorded(result)[1] == level


@pytest.mark.parametrize(("reveal", "level"), [("", logging.INFO), ("1", logging.NOTSET)])
def test_debug_logs_keep_the_loggers_that_print_keys_at_info(
    creds: Path, reveal: str, level: int
) -> None:
    """#12.23: -vv does not let aiosqlite, zigpy's network logs or the radio library print keys
    unless ZSE_LOG_SECRETS=1."""
    names = ("aiosqlite", "zigpy.application", "zigpy.backups", "zigpy.appdb")
    names += ("bellows", "zigpy_znp")
    assert set(names) == set(SECRET_LOGGERS)
    before = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.NOTSET)
    try:
        result = run_esi(
            creds, "--radio", "ezsp", "--device", "/dev/ttyX", "-vv", ZSE_LOG_SECRETS=reveal
        )
        assert recorded(result)[1] == logging.DEBUG
        assert {logging.getLogger(name).level for name in names} == {level}
    finally:
        for name, old in before.items():
            logging.getLogger(name).setLevel(old)


def test_a_log_level_that_is_none_is_a_usage_error(creds: Path) -> None:
    result = run_esi(creds, "--radio", "ezsp", "--device", "/dev/ttyX", "--log-level", "loud")
    assert result.exit_code == 2
    assert "'loud' is not one of 'critical', 'error', 'warning', 'info', 'debug'" in (result.output)


def test_the_radio_and_port_from_zse_variables(creds: Path) -> None:
    radio, _ = recorded(
        run_esi(
            creds,
            ZSE_RADIO="ZNP",
            ZSE_DEVICE="/dev/ttyACM7",
            ZSE_BAUDRATE="230400",
            ZSE_FLOW_CONTROL="Hardware",
            ZSE_START_TIMEOUT="7.5",
        )
    )
    assert radio == RadioSettings(
        radio="znp",
        device="/dev/ttyACM7",
        baudrate=230400,
        flow_control="hardware",
        start_timeout=7.5,
    )


def test_bellows_variables_serve_the_ezsp_radio(creds: Path) -> None:
    bellows = {
        "EZSP_DEVICE": "/dev/ttyEZSP",
        "EZSP_BAUDRATE": "57600",
        "EZSP_FLOW_CONTROL": "software",
    }
    radio, _ = recorded(run_esi(creds, "--radio", "ezsp", **bellows))
    assert (radio.device, radio.baudrate, radio.flow_control) == ("/dev/ttyEZSP", 57600, "software")
    assert radio.start_timeout == 120.0
    # zse's own variables and the options come first
    click_factory.RECORDED.clear()
    radio, _ = recorded(
        run_esi(creds, "--radio", "ezsp", "-b", "115200", ZSE_DEVICE="/dev/ttyZSE", **bellows)
    )
    assert (radio.device, radio.baudrate, radio.flow_control) == ("/dev/ttyZSE", 115200, "software")
    # not for Z-Stack: zigpy-znp reads no variable
    result = invoke("esi", "--credentials", str(creds), "--radio", "znp", **bellows)
    assert result.exit_code == 2
    assert result.output.startswith("error: give the radio and its serial port")


def test_environment_over_the_configuration_file(creds: Path, tmp_path: Path) -> None:
    config = tmp_path / "esi.toml"
    config.write_text(
        '[radio]\ntype = "ezsp"\ndevice = "/dev/ttyFILE"\nbaudrate = 57600\n'
        'flow_control = "HARDWARE"\n'
    )
    radio, _ = recorded(run_esi(creds, "--config", str(config)))
    assert (radio.device, radio.baudrate, radio.flow_control) == ("/dev/ttyFILE", 57600, "hardware")
    click_factory.RECORDED.clear()
    radio, _ = recorded(run_esi(creds, "--config", str(config), EZSP_DEVICE="/dev/ttyENV"))
    assert radio.device == "/dev/ttyENV"
    click_factory.RECORDED.clear()
    radio, _ = recorded(
        run_esi(creds, "--config", str(config), "-d", "/dev/ttyOPT", EZSP_DEVICE="/dev/ttyENV")
    )
    assert radio.device == "/dev/ttyOPT"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"EZSP_BAUDRATE": "fast"},
            "error: EZSP_BAUDRATE='fast' is not a baud rate (1200..4000000)",
        ),
        (
            {"EZSP_FLOW_CONTROL": "rts"},
            "error: EZSP_FLOW_CONTROL='rts' is not one of hardware, software, none",
        ),
    ],
)
def test_bad_bellows_variables_are_one_line(creds: Path, env: dict[str, str], message: str) -> None:
    result = run_esi(creds, "--radio", "ezsp", "-d", "/dev/ttyX", **env)
    assert result.exit_code == 2
    assert result.output.strip() == message


def test_a_bad_flow_control_in_the_configuration(creds: Path, tmp_path: Path) -> None:
    config = tmp_path / "esi.toml"
    config.write_text('[radio]\nflow_control = "rts"\n')
    result = run_esi(creds, "--config", str(config))
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: {config}: [radio] flow_control: 'rts' is not one of hardware, software, none"
    )


def test_interpan_takes_the_same_options() -> None:
    result = invoke(
        "-v",
        "interpan",
        "listen",
        "--app-factory",
        RECORD,
        "--flow-control",
        "NONE",
        "--start-timeout",
        "3",
        "--log-level",
        "debug",
        ZSE_RADIO="ezsp",
        EZSP_DEVICE="/dev/ttyEZSP",
        EZSP_BAUDRATE="460800",
    )
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == "error: recorded"  # with the log, on stderr
    assert "DEBUG" in result.stderr
    ((options, level),) = click_factory.RECORDED
    assert options.radio == RadioSettings(
        radio="ezsp",
        device="/dev/ttyEZSP",
        baudrate=460800,
        flow_control="none",
        start_timeout=3.0,
    )
    assert level == logging.DEBUG
    result = invoke("interpan", "listen", "--radio", "znp", EZSP_DEVICE="/dev/ttyEZSP")
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: give the stick's serial port: --device PATH (or ZSE_DEVICE; EZSP_DEVICE for ezsp)"
    )


@pytest.mark.parametrize(
    ("flow_control", "zigpy"), [("hardware", "hardware"), ("software", "software"), ("none", None)]
)
def test_flow_control_reaches_zigpy(flow_control: str, zigpy: str | None) -> None:
    """As zigpy's ``flow_control`` device setting, accepted by bellows' own schema."""
    options = RadioOptions(
        radio=RadioSettings(radio="ezsp", device="/dev/ttyX", flow_control=flow_control),
        network=NetworkSettings(),
    )
    config = zigpy_config(options)
    assert config["device"]["flow_control"] == zigpy
    app = BellowsApplication(config)
    assert app.config["device"]["flow_control"] == zigpy


def test_flow_control_not_given_is_the_library_default() -> None:
    options = RadioOptions(
        radio=RadioSettings(radio="znp", device="/dev/ttyX"), network=NetworkSettings()
    )
    assert "flow_control" not in zigpy_config(options)["device"]
