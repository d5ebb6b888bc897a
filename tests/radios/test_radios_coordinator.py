"""Every radio quirk of a coordinator is in its radio's module (docs/architecture.md: one module
per radio): ``zse.radios.ezsp`` and ``zse.radios.znp`` are :class:`zse.radios.CoordinatorRadio`s,
and the command line's ``zse.cli._radio`` names no radio library and no library setting."""

from __future__ import annotations

import ast
from pathlib import Path

import bellows.zigbee.application as bellows_app
import pytest
import zigpy_znp.zigbee.application as znp_app

from zse.cli._radio import RadioOptions, application_class, esi_descriptors, zigpy_config
from zse.config import NetworkSettings, RadioSettings
from zse.radios import COORDINATOR_MODULES, coordinator_radio, coordinator_radio_of
from zse.radios.ezsp import SE_POLICIES
from zse.sim import Air

CLI_RADIO = Path(__file__).parents[2] / "zse" / "cli" / "_radio.py"
#: What only a radio module may say: the libraries, their settings and the radios' names.
RADIO_WORDS = (
    "bellows",
    "zigpy_znp",
    "use_thread",
    "ezsp_config",
    "ezsp_policies",
    "znp_config",
    "prefer_endpoint_1",
    "zse.radios.ezsp",
    "zse.radios.znp",
)


def _code_strings(tree: ast.Module) -> list[str]:
    """The string constants of ``tree`` that are not docstrings."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_the_command_line_holds_no_radio_quirk() -> None:
    """zse/cli/_radio.py held zigpy-znp's prefer_endpoint_1, bellows' use_thread and key table
    size, the bellows application class for an ESI and the per-radio transports: they are in
    zse.radios.ezsp / zse.radios.znp now, and the command line asks the radio's module."""
    tree = ast.parse(CLI_RADIO.read_text())
    strings = _code_strings(tree)
    said = sorted({word for word in RADIO_WORDS for text in strings if word in text})
    assert said == []
    compared = [
        node.value
        for compare in ast.walk(tree)
        if isinstance(compare, ast.Compare)
        for node in [compare.left, *compare.comparators]
        if isinstance(node, ast.Constant) and node.value in COORDINATOR_MODULES
    ]
    assert compared == []  # no `radio == "ezsp"`


def test_each_radio_module_gives_its_library_settings() -> None:
    ezsp = RadioSettings(radio="ezsp", device="/dev/x", ezsp_key_table_size=16)
    assert coordinator_radio("ezsp").library_config(ezsp) == {
        "use_thread": False,
        "ezsp_policies": SE_POLICIES,
        "ezsp_config": {"CONFIG_KEY_TABLE_SIZE": 16},
    }
    assert "ezsp_config" not in coordinator_radio("ezsp").library_config(
        RadioSettings(radio="ezsp", device="/dev/x")
    )
    znp = RadioSettings(radio="znp", device="/dev/x")
    assert coordinator_radio("znp").library_config(znp) == {
        "znp_config": {"prefer_endpoint_1": False}
    }


@pytest.mark.parametrize("radio", ["ezsp", "znp"])
def test_the_zigpy_configuration_takes_the_radio_module_s_settings(radio: str) -> None:
    settings = RadioSettings(radio=radio, device="/dev/x", ezsp_key_table_size=8)
    config = zigpy_config(RadioOptions(radio=settings, network=NetworkSettings()))
    for key, value in coordinator_radio(radio).library_config(settings).items():
        assert config[key] == value
    cls = application_class(radio)
    assert cls(config).config["device"]["path"] == "/dev/x"  # the library's schema takes it


def test_each_radio_module_gives_its_application_class() -> None:
    descriptors = esi_descriptors(meter=True, mirrors=2)
    plain = coordinator_radio("ezsp").coordinator_class()  # bellows', checking the version
    assert plain.__bases__ == (bellows_app.ControllerApplication,)
    se = coordinator_radio("ezsp").coordinator_class(descriptors)
    assert issubclass(se, plain)
    assert se is not bellows_app.ControllerApplication  # registers them before the network
    assert application_class("ezsp", descriptors).__qualname__ == se.__qualname__
    for given in ((), descriptors):  # Z-Stack takes endpoints once the network is up
        assert coordinator_radio("znp").coordinator_class(given) is znp_app.ControllerApplication


async def test_the_simulator_has_no_radio_module() -> None:
    air = Air()
    app = await air.coordinator(channel=15)
    try:
        assert coordinator_radio_of(app) is None
    finally:
        await app.shutdown()
