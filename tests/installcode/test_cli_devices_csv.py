"""``zse installcode --csv`` and ``zse esi``'s ``import`` on one devices CSV format (#12.5); the
output never over its input and never half-written (#12.3); bad files in one line (#12.6)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.cli_sticks.sticks_helpers import ESI_CREDENTIALS, Operator, sim_factory
from zse.cli import main
from zse.cli.esi import run_esi
from zse.config import parse_config
from zse.sim import Air

EXAMPLES = Path(__file__).parents[2] / "examples"
CODE = "83FED3407A932B70"
KEY = "CD4FA064773F46941EC986C09963D1A8"
GOOD = f"eui64,install_code\n001BC5007000052B,{CODE}\n"


def zse(
    *args: str, stdin: bytes | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zse", *args],
        input=None if stdin is None else stdin.decode("latin-1"),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        cwd=cwd,
    )


@pytest.mark.parametrize("how", ["same path", "hard link", "symlink", "relative path"])
def test_output_that_is_the_input_is_refused_and_the_input_kept(tmp_path: Path, how: str) -> None:
    source = tmp_path / "f.csv"
    source.write_text(GOOD)
    output = {
        "same path": source,
        "hard link": tmp_path / "hard.csv",
        "symlink": tmp_path / "sym.csv",
        "relative path": Path("f.csv"),
    }[how]
    if how == "hard link":
        os.link(source, output)
    elif how == "symlink":
        output.symlink_to(source)
    process = zse("installcode", "--csv", str(source), "-o", str(output), cwd=tmp_path)
    assert process.returncode == 2
    assert process.stderr == (
        f"error: --output {output} is the input file: writing it would destroy the "
        "input; choose another name\n"
    )
    assert process.stdout == ""
    assert source.read_text() == GOOD
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"f.csv", Path(output).name})


def test_standard_input_redirected_from_the_output_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "f.csv"
    source.write_text(GOOD)
    with source.open("rb") as stdin:
        process = subprocess.run(
            [sys.executable, "-m", "zse", "installcode", "--csv", "-", "-o", str(source)],
            stdin=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    assert process.returncode == 2
    assert "is the input file" in process.stderr
    assert source.read_text() == GOOD


def _input(tmp_path: Path, data: bytes) -> tuple[Path, Path]:
    source = tmp_path / "in.csv"
    source.write_bytes(data)
    return source, tmp_path / "out.csv"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty: no header row and no devices"),
        ("eui64,install_code\n", "line 1: a header row but no devices"),
        ("eui64,install_code,label\n\n\n", "line 1: a header row but no devices"),
    ],
)
def test_an_empty_or_header_only_file_is_an_error(
    tmp_path: Path, content: str, message: str
) -> None:
    source, out = _input(tmp_path, content.encode())
    result = CliRunner().invoke(main, ["installcode", "--csv", str(source), "-o", str(out)])
    assert result.exit_code == 2
    assert result.stderr == f"error: {source}: {message}\n"
    assert not out.exists()
    assert os.listdir(tmp_path) == ["in.csv"]  # no temporary file left either


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (
            "eui64,install_code\n001BC5007000052B,83FED3407A932B70\n".encode("utf-16"),
            "not UTF-8 text but UTF-16: save it as UTF-8",
        ),
        (
            b"eui64,install_code,label\n001BC5007000052B,83FED3407A932B70,caf\xe9\n",
            "not UTF-8 text (byte 62 cannot be decoded)",
        ),
        (bytes(range(256)) * 8, "not UTF-8 text (byte 128 cannot be decoded)"),
        (b"\x00" * 64, "not a text file (a NUL byte at byte 0; UTF-16 without a byte-order mark?)"),
        ("eui64,install_code\n".encode("utf-16-le"), "not a text file (a NUL byte at byte 1;"),
    ],
)
def test_a_file_that_is_not_utf8_is_one_line_and_the_old_output_stays(
    tmp_path: Path, data: bytes, problem: str
) -> None:
    source, out = _input(tmp_path, data)
    out.write_text("the previous output\n")
    process = zse("installcode", "--csv", str(source), "-o", str(out))
    assert process.returncode == 2
    assert process.stderr.startswith(f"error: {source}: {problem}")
    assert len(process.stderr.splitlines()) == 1
    assert "Traceback" not in process.stderr
    assert out.read_text() == "the previous output\n"
    assert sorted(os.listdir(tmp_path)) == ["in.csv", "out.csv"]


def test_a_utf8_byte_order_mark_is_accepted_and_the_output_is_private(tmp_path: Path) -> None:
    source = tmp_path / "excel.csv"
    source.write_bytes(b"\xef\xbb\xbf" + GOOD.replace("\n", "\r\n").encode())
    out = tmp_path / "keys.csv"
    result = CliRunner().invoke(main, ["installcode", "--csv", str(source), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text() == f"eui64,install_code,link_key\n001BC5007000052B,{CODE},{KEY}\n"
    assert out.stat().st_mode & 0o777 == 0o600


def test_output_into_a_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text(GOOD)
    missing = tmp_path / "nope" / "keys.csv"
    result = CliRunner().invoke(main, ["installcode", "--csv", str(source), "-o", str(missing)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: cannot write --output {missing}: no such directory {missing.parent}\n"
    )


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_garbage_bytes_as_csv_never_give_a_traceback(data: bytes) -> None:
    result = CliRunner().invoke(main, ["installcode", "--csv", "-"], input=data)
    assert result.exit_code in (0, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    if result.exit_code == 2 and not re.search(r"^\d+ rows?: ", result.stderr, re.M):
        assert len(result.stderr.splitlines()) == 1


def test_installcode_accepts_the_shipped_example(tmp_path: Path) -> None:
    out = tmp_path / "keys.csv"
    result = CliRunner().invoke(
        main, ["installcode", "--csv", str(EXAMPLES / "devices.csv"), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == "1 row: 1 valid, 0 invalid\n"
    assert out.read_text().splitlines() == [
        "eui64,install_code,label,groups,link_key",
        "000D6F000A000002,0102030405060708090A0B0C0D0E0F1090FD,hall thermostat,street-7,"
        "F7DB70E028B72B3F67D90A54F6916FF4",
    ]
    again = CliRunner().invoke(
        main, ["installcode", "--csv", str(out), "-o", str(tmp_path / "2.csv")]
    )
    assert again.exit_code == 0, again.output  # its own output is a devices CSV too
    assert (tmp_path / "2.csv").read_text() == out.read_text()


CONFIG = """
[radio]
type = "ezsp"
device = "/dev/ttyUSB0"

[esi]
database = "han.db"
permit_seconds = 60
"""


async def _import(tmp_path: Path, path: Path) -> list[str]:
    operator = Operator()
    session = asyncio.get_running_loop().create_task(
        run_esi(
            parse_config(CONFIG, base=tmp_path),
            credentials=[ESI_CREDENTIALS],
            lines=operator.lines(),
            script=False,
            out=operator.out,
            app_factory=sim_factory(Air(seed=11)),
        )
    )
    await operator.sees("ESI running")
    operator.type(f"import '{path}'")
    operator.type("devices")
    await operator.sees("registry")
    operator.close()
    assert await asyncio.wait_for(session, 60) == 0
    return operator.output


async def test_esi_imports_the_installcode_output_with_labels_and_no_secret(tmp_path: Path) -> None:
    keys = tmp_path / "keys.csv"
    made = CliRunner().invoke(
        main, ["installcode", "--csv", str(EXAMPLES / "devices.csv"), "-o", str(keys)]
    )
    assert made.exit_code == 0, made.output
    output = await _import(tmp_path, keys)
    text = "\n".join(output)
    assert f"{keys}: 1 registered, 0 refused" in output
    assert "provisioned 00:0d:6f:00:0a:00:00:02 (hall thermostat): pending provisioning" in text
    assert any(line.endswith("hall thermostat") and "street-7" in line for line in output)
    for secret in ("F7DB70E028B72B3F67D90A54F6916FF4", "0102030405060708090A0B0C0D0E0F1090FD"):
        assert secret not in text.upper()


async def test_esi_imports_the_shipped_example(tmp_path: Path) -> None:
    output = await _import(tmp_path, EXAMPLES / "devices.csv")
    assert f"{EXAMPLES / 'devices.csv'}: 1 registered, 0 refused" in output


async def test_esi_import_of_a_utf16_file_is_one_line(tmp_path: Path) -> None:
    source = tmp_path / "u16.csv"
    source.write_bytes(GOOD.encode("utf-16"))
    output = await _import(tmp_path, source)
    errors = [line for line in output if line.startswith("error:")]
    assert errors == [f"error: {source}: not UTF-8 text but UTF-16: save it as UTF-8"]


async def test_esi_config_devices_csv_that_is_not_a_devices_csv_is_one_line(
    tmp_path: Path,
) -> None:
    source = tmp_path / "devices.csv"
    source.write_text("001BC5007000052B,83FED3407A932B70\n")  # no header
    operator = Operator()
    status = await run_esi(
        parse_config(CONFIG + 'devices_csv = ["devices.csv"]\n', base=tmp_path),
        credentials=[ESI_CREDENTIALS],
        lines=operator.lines(),
        out=operator.out,
        app_factory=sim_factory(Air(seed=12)),
    )
    errors = [line for line in operator.output if line.startswith("error:")]
    assert errors == [
        f"error: {source}: line 1: no header row: the first row must name the columns, e.g. "
        "eui64,install_code,label"
    ]
    assert status == 1  # the configuration could not be applied: the ESI does not run


def test_an_output_symlink_is_followed_not_replaced(tmp_path: Path) -> None:
    source, out = _input(tmp_path, GOOD.encode())
    real = tmp_path / "real.csv"
    real.write_text("old\n")
    out.symlink_to(real)
    result = CliRunner().invoke(main, ["installcode", "--csv", str(source), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_symlink()
    assert real.read_text() == f"eui64,install_code,link_key\n001BC5007000052B,{CODE},{KEY}\n"
