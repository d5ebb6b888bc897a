"""``zse cert``: ca-new, issue and inspect through click's CliRunner."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from zse.cbke import Credentials, TestCA
from zse.cli import main


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    path = tmp_path / "ca.json"
    result = CliRunner().invoke(main, ["cert", "ca-new", "--out", str(path)])
    assert result.exit_code == 0, result.output
    assert os.stat(path).st_mode & 0o077 == 0
    return path


@pytest.mark.parametrize("suite", ["1", "2"])
def test_issue_then_inspect(ca_file: Path, tmp_path: Path, suite: str) -> None:
    runner = CliRunner()
    out = tmp_path / "dev.json"
    result = runner.invoke(
        main,
        ["cert", "issue", "--ca", str(ca_file), "--eui64", "00:1B:C5:00:70:00:05:2B",
         "--suite", suite, "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    creds = Credentials.load(out)
    assert creds.suite.id == int(suite)
    assert creds.eui64.hex().upper() == "001BC5007000052B"
    assert creds.ca_public_key == TestCA.load(ca_file).authority(int(suite)).public_key

    shown = runner.invoke(
        main, ["cert", "inspect", creds.certificate.hex(), "--ca", str(ca_file), "--json"]
    )
    assert shown.exit_code == 0, shown.output
    fields = json.loads(shown.output)
    assert fields["subject"] == "001BC5007000052B"
    assert fields["issuer"] == b"ZSETSTCA".hex().upper()
    assert fields["public_key"] == creds.public_key.hex().upper()
    if suite == "2":
        assert fields["expires_utc"] == "never"
        assert fields["key_agreement"] == "yes"
    # the credentials file works as --ca too, and so does the hex key
    for ca in (str(out), creds.ca_public_key.hex()):
        text = runner.invoke(main, ["cert", "inspect", creds.certificate.hex(), "--ca", ca])
        assert text.exit_code == 0, text.output
        assert creds.public_key.hex().upper() in text.output


def test_inspect_vector_certificate(c5: Any) -> None:
    result = CliRunner().invoke(
        main, ["cert", "inspect", c5["responder_V"]["certificate"], "--ca", c5["ca_public_key"]]
    )
    assert result.exit_code == 0
    assert "suite 1 (sect163k1) certificate, 48 bytes" in result.output
    assert "0000000000000001" in result.output
    assert c5["responder_V"]["static_public"] in result.output


def test_issue_to_stdout_with_validity(ca_file: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["cert", "issue", "--ca", str(ca_file), "--eui64", "0011223344556677", "--suite", "2",
         "--valid-from", "1000", "--valid-for", "60"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    cert = Credentials.from_json(result.output).certificate
    assert cert.fields()["expires"] == 1060


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cert", "inspect", "0011"], "48 bytes"),
        (["cert", "inspect", "zz"], "not valid hex"),
        (["cert", "issue", "--ca", "/nonexistent.json", "--eui64", "0011223344556677"], "read"),
        (["cert", "ca-new", "--issuer", "00"], "issuer must be 8 bytes"),
    ],
)
def test_bad_input_exits_2_with_one_line(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert message in result.output
    assert result.output.count("\n") == 1
    assert result.output.startswith("error: ")
    assert "Traceback" not in result.output


def test_bad_eui64_and_mismatched_ca(ca_file: Path, c5: Any) -> None:
    runner = CliRunner()
    bad = runner.invoke(main, ["cert", "issue", "--ca", str(ca_file), "--eui64", "00112233"])
    assert bad.exit_code == 2
    assert bad.output.startswith("error: ")
    other = runner.invoke(
        main, ["cert", "inspect", c5["responder_V"]["certificate"], "--ca", "0400"]
    )
    assert other.exit_code == 2
    assert other.output.startswith("error: ")
