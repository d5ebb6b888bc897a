"""`zse esi` given a config whose [esi] time_zone zoneinfo cannot read as a zone (a tzdata
directory, a name too long for a file name): one line naming the file and the key, exit 2,
as every other config error (it was an IsADirectoryError / OSError, exit 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_sticks.test_cli_sticks_config_garbage import esi_config_error


@pytest.mark.parametrize("name", ["Europe", "x" * 300], ids=["directory", "long"])
def test_esi_with_a_hostile_time_zone_prints_one_line_and_exits_2(tmp_path: Path, name: str):
    config = tmp_path / "tz.toml"
    config.write_text(f'[esi]\ntime_zone = "{name}"\n')
    line = esi_config_error(config, "--radio", "sim")
    assert line.startswith(f"error: {config}: [esi] time_zone: unknown time zone "), line
    assert len(line) < 200 + len(str(config))
