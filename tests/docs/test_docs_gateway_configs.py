"""The meter gateways' configurations docs/headend.md shows are ones `zse mqtt --config` takes.

Each fenced ``toml`` block of the page with an ``[mqtt]`` table is written to a file and read
by the same loaders as ``zse mqtt --config FILE --radio sim``: the ESI's configuration
(:func:`zse.config.load_config`, which ignores ``[mqtt]``) and the ``[mqtt]`` table
(:func:`zse.cli.mqtt.mqtt_settings`, which refuses a file without one). A block a reader copies
then starts a gateway instead of a one-line refusal (``[radio] type = "sim"``, a misspelt key).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from zse.cli.mqtt import mqtt_settings
from zse.config import load_config

#: Its outcome cannot depend on the Python version: the main interpreter only (ADR 0025).
pytestmark = pytest.mark.main_interpreter

PAGE = Path(__file__).resolve().parents[2] / "docs" / "headend.md"
#: A fenced toml block, indented or not (inside a numbered list), and its text.
_BLOCK = re.compile(r"^( *)```toml\n(.*?)^\1```", re.DOTALL | re.MULTILINE)


def gateway_blocks() -> list[str]:
    """The page's toml blocks with an ``[mqtt]`` table, dedented."""
    blocks = []
    for indent, text in _BLOCK.findall(PAGE.read_text()):
        lines = [line.removeprefix(indent) for line in text.splitlines()]
        if "[mqtt]" in lines:
            blocks.append("\n".join(lines) + "\n")
    return blocks


BLOCKS = gateway_blocks()


def test_the_page_shows_the_simulated_gateways_configuration() -> None:
    """The utility-scale run's ``esi-1.toml`` (an ESI's registry and an ``[mqtt]`` table) and
    the several sticks' ``[mqtt]`` table are both there."""
    assert len(BLOCKS) >= 2, BLOCKS
    assert any("[esi]" in block for block in BLOCKS), BLOCKS


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i + 1}" for i in range(len(BLOCKS))])
def test_a_gateway_configuration_is_one_zse_mqtt_takes(block: str, tmp_path: Path) -> None:
    path = tmp_path / "esi-1.toml"
    path.write_text(block)
    config = load_config(path).override(radio="sim")
    assert config.radio.radio == "sim"
    settings = mqtt_settings(None, path)
    assert (settings.host, settings.tls) == ("127.0.0.1", False)
