"""The EZSP versions zse drives (``zse.radios.ezsp.EZSP_VERSIONS``) are those bellows has a
command table for, 4-19 but 15, and nothing in zse needs a newer floor: every EZSP command
zse's EmberZNet module names is in the table of each version it is sent at (the CBKE
commands of both suites, ``dsaSign``, the MAC passthrough flags and raw sends included), so
bellows' own floor, EZSP 4, is zse's. The coordinator and the HAN device both refuse the
others (tests/cli_sticks/test_cli_sticks_ezsp_firmware.py,
tests/han_stick/test_han_stick_ncp_setup.py)."""

from __future__ import annotations

import ast
from pathlib import Path

from bellows.ezsp import EZSP

from zse.radios import ezsp as radio_ezsp
from zse.radios.ezsp import EZSP_VERSIONS, FIRST_EXTENDED_VERSION, FIRST_SECURITY_MANAGER_VERSION

MODULE = Path(radio_ezsp.__file__)
#: The commands zse sends at some versions only, and the versions it sends each at (the
#: security manager's ``importKey`` wherever bellows' table has it: it is asked for by name).
GATED = {
    "addOrUpdateKeyTableEntry": range(4, FIRST_SECURITY_MANAGER_VERSION),
    "exportLinkKeyByIndex": range(FIRST_SECURITY_MANAGER_VERSION, 20),
    "importLinkKey": range(FIRST_SECURITY_MANAGER_VERSION, 20),
    "importKey": range(radio_ezsp.FIRST_IMPORT_KEY_VERSION, 20),
    "sendRawMessage": range(4, FIRST_EXTENDED_VERSION),
    "sendRawMessageExtended": range(FIRST_EXTENDED_VERSION, 20),
}


def named_commands() -> set[str]:
    """The EZSP commands (and callbacks) zse's EmberZNet module names: attributes, names and
    strings that are a command of some bellows table."""
    words: set[str] = set()
    for node in ast.walk(ast.parse(MODULE.read_text())):
        if isinstance(node, ast.Attribute):
            words.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            words.add(node.value)
    every = set().union(*(table.COMMANDS for table in EZSP._BY_VERSION.values()))
    return words & every


def test_the_versions_are_those_bellows_has_a_table_for() -> None:
    assert EZSP_VERSIONS == (4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 18, 19)
    assert set(EZSP_VERSIONS) <= set(EZSP._BY_VERSION)


def test_every_command_zse_sends_is_in_the_table_of_each_version_it_is_sent_at() -> None:
    commands = named_commands()
    assert {"generateCbkeKeys283k1", "calculateSmacs283k1", "dsaSign", "sendRawMessage"} <= commands
    assert set(GATED) <= commands
    missing = [
        (command, version)
        for command in sorted(commands)
        for version in EZSP_VERSIONS
        if version in GATED.get(command, EZSP_VERSIONS)
        and command not in EZSP._BY_VERSION[version].COMMANDS
    ]
    assert missing == []
