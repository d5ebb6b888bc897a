"""Whole-file loaders on a huge file or an endless device (hostile-input audit D8): each reads at
most its limit and raises its own named error naming the file and the limit; the CLI prints one
line and exits non-zero instead of reading ``/dev/zero`` until the memory is gone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.zse_cli import invoke_zse
from zse import _files
from zse.capture import KeyFileError
from zse.cbke.ca import TestCA
from zse.cbke.credentials import Credentials, InvalidCredentials
from zse.cli import main
from zse.cli.capture import load_keys
from zse.config import ConfigError, load_config
from zse.headend import pki

LIMIT = _files.CONFIG_LIMIT


@pytest.fixture(scope="module")
def huge(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A regular file one byte over the limit (spaces: valid UTF-8, TOML and JSON whitespace)."""
    path = tmp_path_factory.mktemp("huge") / "huge.txt"
    path.write_bytes(b" " * (LIMIT + 1))
    return path


LOADERS = {
    "esi config": (load_config, ConfigError),
    "headend config": (lambda path: pki.load_config(Path(path)), pki.HeadendConfigError),
    "credentials": (Credentials.load, InvalidCredentials),
    "test CA": (TestCA.load, InvalidCredentials),
    "key file": (lambda path: load_keys((str(path),), (), (), ()), KeyFileError),
}


@pytest.mark.parametrize(("load", "error"), LOADERS.values(), ids=LOADERS.keys())
def test_a_file_over_the_limit_is_the_loaders_error_naming_file_and_limit(huge, load, error):
    with pytest.raises(error, match=rf"{huge}: larger than {LIMIT} bytes"):
        load(huge)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
@pytest.mark.parametrize(("load", "error"), LOADERS.values(), ids=LOADERS.keys())
def test_dev_zero_is_refused_after_the_limit(load, error):
    with pytest.raises(error, match=rf"/dev/zero: larger than {LIMIT} bytes"):
        load("/dev/zero")


def test_read_bounded_reads_a_file_at_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "exact"
    path.write_bytes(b"x" * 10)
    assert _files.read_bounded(path, 10, error=ValueError) == b"x" * 10
    with pytest.raises(ValueError, match=r"exact: larger than 9 bytes"):
        _files.read_bounded(path, 9, error=ValueError)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
@pytest.mark.parametrize(
    "args",
    [
        ("esi", "--radio", "sim", "--config", "/dev/zero"),
        ("capture", "--keys", "/dev/zero", "/dev/null"),
        ("cert", "issue", "--ca", "/dev/zero", "--eui64", "000D6F000A000001", "-o", "x.json"),
        ("mqtt", "--radio", "sim", "--config", "/dev/zero"),
    ],
    ids=["esi --config", "capture --keys", "cert issue --ca", "mqtt --config"],
)
def test_the_cli_on_dev_zero_prints_one_line(args, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "zse", *args],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert f"larger than {LIMIT} bytes" in lines[0]


@pytest.mark.parametrize("content", [b"garbage", b"{}", b"\xff\xfe"], ids=["text", "{}", "bytes"])
def test_esi_sim_refuses_garbage_credentials_in_one_line(
    tmp_path: Path, content: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The simulator brings its own credentials, but a --credentials file given to it is
    checked, not silently ignored: one line, exit 2 (as for any other radio). What the
    command says: in this process."""
    bad = tmp_path / "garbage.json"
    bad.write_bytes(content)
    script = tmp_path / "empty.txt"
    script.write_text("")
    monkeypatch.chdir(tmp_path)
    args = ["--radio", "sim", "--credentials", str(bad), "--commands", str(script)]
    result = invoke_zse("esi", *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: credentials {bad}: ")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_the_other_files_the_command_line_reads_are_bounded_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``zse cert --ca FILE``, ``zse headend --meters FILE``: one line, exit 2."""
    from zse.cli.cert import _read_json  # noqa: PLC0415
    from zse.cli.headend import _gateway_ids  # noqa: PLC0415

    for read in (lambda: _read_json("/dev/zero"), lambda: _gateway_ids((), Path("/dev/zero"))):
        with pytest.raises(SystemExit) as ended:
            read()
        assert ended.value.code == 2
        (line,) = capsys.readouterr().err.splitlines()
        assert f"larger than {LIMIT} bytes" in line


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_esi_commands_and_an_imported_csv_from_dev_zero_end_in_one_line(tmp_path: Path) -> None:
    """``zse esi --commands /dev/zero`` is a config error; ``import /dev/zero`` in a script is
    refused at its first chunk (the file is read in chunks, not whole: it read without end)."""
    ran = subprocess.run(
        [sys.executable, "-m", "zse", "esi", "--radio", "sim", "--commands", "/dev/zero"],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert ran.returncode == 2, ran.stderr
    assert f"larger than {LIMIT} bytes" in ran.stderr
    script = tmp_path / "script.txt"
    script.write_text("import /dev/zero\n")
    ran = subprocess.run(
        [sys.executable, "-m", "zse", "esi", "--radio", "sim", "--commands", str(script)],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert ran.returncode != 0
    assert "Traceback" not in ran.stderr
    (refused,) = [x for x in ran.stdout.splitlines() if x.startswith("error: /dev/zero: ")]
    assert "save it as UTF-8" in refused
    assert "stopping: a scripted command failed" in ran.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("esi", "--radio", "sim", "--config", "{f}"),
        ("esi", "--radio", "sim", "--commands", "{f}"),
        ("mqtt", "--radio", "sim", "--config", "{f}"),
        ("han", "watch", "--device", "/dev/null", "--mqtt-config", "{f}"),
        ("headend", "serve", "--config", "{f}", "--sim", "1"),
    ],
    ids=["esi --config", "esi --commands", "mqtt --config", "han --mqtt-config", "headend"],
)
def test_a_file_that_is_not_utf8_is_said_so(args: tuple[str, ...], tmp_path: Path) -> None:
    """A Latin-1 file was "'utf-8' codec can't decode byte 0xe9 in position 5: invalid
    continuation byte" from all but ``zse esi --config``: the same words from each now."""
    path = tmp_path / "latin1.txt"
    path.write_bytes("# caf\u00e9\n".encode("latin-1"))
    argv = [a.replace("{f}", str(path)) for a in args]
    result = CliRunner().invoke(main, argv, env={"ZSE_INSTALL_CODE": "83FED3407A932B70"})
    assert result.exit_code == 2, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].endswith(f"{path}: not UTF-8 text"), lines[0]
