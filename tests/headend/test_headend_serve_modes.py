"""`zse headend serve` takes one way of serving meters: given two, the error says they do not
go together (it used to ask for one of them, as if none had been given)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from zse.cli.headend import headend
from zse.headend.pki import init_directory


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["--sim", "1", "--esi", "{esi}"], "--sim and --esi"),
        (["--sim", "1", "--meter", "m1"], "--sim and --meter"),
        (["--esi", "{esi}", "--meters", "{ids}"], "--esi and --meters"),
        (["--sim", "1", "--esi", "{esi}", "--meter", "m1"], "--sim, --esi and --meter"),
    ],
)
def test_two_ways_of_serving_meters_are_named(
    tmp_path: Path, arguments: list[str], named: str
) -> None:
    init_directory(tmp_path / "pki", port=0)
    (tmp_path / "esi.toml").write_text("[esi]\n")
    (tmp_path / "ids.txt").write_text("m1\n")
    values = {"{esi}": str(tmp_path / "esi.toml"), "{ids}": str(tmp_path / "ids.txt")}
    argv = ["serve", "--config", str(tmp_path / "pki" / "headend.toml")]
    result = CliRunner().invoke(headend, [*argv, *[values.get(a, a) for a in arguments]])
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"error: {named} do not go together: give --sim N")


def test_no_way_of_serving_meters_asks_for_one(tmp_path: Path) -> None:
    init_directory(tmp_path / "pki", port=0)
    argv = ["serve", "--config", str(tmp_path / "pki" / "headend.toml")]
    result = CliRunner().invoke(headend, argv)
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: give --sim N (simulated meters), --esi FILE")
