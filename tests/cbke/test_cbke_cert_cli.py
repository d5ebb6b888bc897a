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
    assert fields["issuer"] == TestCA.load(ca_file).issuer.hex().upper()
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
        (["cert", "inspect", "zz"], "CERTIFICATE is neither a file nor a certificate in hex"),
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
    assert bad.output == "error: --eui64: EUI-64 has 8 hex digits; it must have 16 (8 octets)\n"
    other = runner.invoke(
        main, ["cert", "inspect", c5["responder_V"]["certificate"], "--ca", "0400"]
    )
    assert other.exit_code == 2
    assert other.output.startswith("error: ")


# -- #12.13: messages that say what is wrong, exit status 2 for every usage error ----------------


def _issue(ca_file: Path, *extra: str) -> Any:
    return CliRunner().invoke(
        main, ["cert", "issue", "--ca", str(ca_file), "--eui64", "0011223344556677", *extra]
    )


def _one_error(result: Any) -> str:
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1, result.output
    assert result.output.startswith("error: ")
    return str(result.output.strip())


@pytest.fixture
def dev_file(ca_file: Path, tmp_path: Path) -> Path:
    path = tmp_path / "dev.json"
    assert _issue(ca_file, "--suite", "2", "-o", str(path)).exit_code == 0
    return path


def test_inspect_reads_the_credentials_file_issue_writes(dev_file: Path) -> None:
    creds = Credentials.load(dev_file)
    result = CliRunner().invoke(main, ["cert", "inspect", str(dev_file)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("suite 2 (sect283k1) certificate, 74 bytes\n")
    # its own CA key reconstructs the public key; the private key is never shown
    assert f"public_key                   {creds.public_key.hex().upper()}" in result.output
    assert creds.private_key.hex().upper() not in result.output.upper()


def test_inspect_reads_the_ca_file_without_showing_its_private_keys(ca_file: Path) -> None:
    ca = TestCA.load(ca_file)
    result = CliRunner().invoke(main, ["cert", "inspect", str(ca_file), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "issuer": ca.issuer.hex().upper(),
        "suite1_public_key": ca.authority(1).public_key.hex().upper(),
        "suite2_public_key": ca.authority(2).public_key.hex().upper(),
    }
    for suite in (1, 2):
        assert ca.authority(suite).private_key.hex().upper() not in result.output


@pytest.mark.parametrize(
    ("ca", "message"),
    [
        ("missing.json", "error: --ca missing.json: no such file"),
        ("keys/ca", "error: --ca keys/ca: no such file"),
        # a mistyped key is not echoed: it may be a private key pasted by mistake
        ("00D4B46F34C2F864464F5B5B28F77103FFDFF33F1X", "error: --ca is neither a file nor a CA "
         "public key in hex"),
    ],
)  # fmt: skip
def test_a_missing_ca_file_is_said_to_be_missing(dev_file: Path, ca: str, message: str) -> None:
    certificate = Credentials.load(dev_file).certificate.hex()
    assert _one_error(CliRunner().invoke(main, ["cert", "inspect", certificate, "--ca", ca])) == (
        message
    )


def test_files_that_are_not_credentials_are_one_line(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"\xff\xfe not json")
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    runner = CliRunner()
    assert _one_error(runner.invoke(main, ["cert", "inspect", str(notes)])) == (
        f"error: {notes} is not JSON: not UTF-8 text (byte 1) "
        "(expected a credentials or CA file from `zse cert`)"
    )
    assert _one_error(runner.invoke(main, ["cert", "inspect", str(other)])) == (
        f"error: {other} is neither a credentials file nor a CA file"
    )
    assert _one_error(runner.invoke(main, ["cert", "inspect", str(tmp_path)])) == (
        f"error: cannot read {tmp_path}: Is a directory"
    )
    assert _one_error(runner.invoke(main, ["cert", "inspect", "certs/dev.json"])) == (
        "error: CERTIFICATE certs/dev.json: no such file"
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--suite", "2", "--valid-for", "-100"], "error: --valid-for must be 1 to 4294967294 "
         "seconds (leave it out for no expiry)"),
        (["--suite", "2", "--valid-for", "0"], "error: --valid-for must be 1 to 4294967294"),
        (["--suite", "2", "--valid-for", "4294967295"], "error: --valid-for must be 1 to"),
        (["--suite", "2", "--valid-from", "-1"], "error: --valid-from must be 0 to 1099511627775"),
        (["--valid-for", "100"], "error: --valid-for applies to suite 2 only: a suite-1 "
         "certificate has no validity period (use --suite 2)"),
        (["--suite", "1", "--valid-from", "0", "--valid-for", "1"], "error: --valid-from and "
         "--valid-for apply to suite 2 only"),
    ],
)  # fmt: skip
def test_validity_options_are_checked(ca_file: Path, extra: list[str], message: str) -> None:
    assert _one_error(_issue(ca_file, *extra)).startswith(message)


def test_the_longest_validity_is_accepted(ca_file: Path) -> None:
    result = _issue(ca_file, "--suite", "2", "--valid-from", "7", "--valid-for", "4294967294")
    assert result.exit_code == 0, result.output
    assert Credentials.from_json(result.output).certificate.fields()["expires"] == 7 + 4294967294


def test_output_into_a_missing_directory_is_a_usage_error(ca_file: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "x.json"
    runner = CliRunner()
    assert _one_error(runner.invoke(main, ["cert", "ca-new", "-o", str(missing)])) == (
        f"error: cannot write --out {missing}: no such directory {missing.parent}"
    )
    assert _one_error(_issue(ca_file, "-o", str(missing))) == (
        f"error: cannot write --out {missing}: no such directory {missing.parent}"
    )


@pytest.mark.parametrize("how", ["same path", "symlink"])
def test_issue_never_writes_over_its_ca(ca_file: Path, tmp_path: Path, how: str) -> None:
    before = ca_file.read_bytes()
    target = ca_file
    if how == "symlink":
        target = tmp_path / "link.json"
        target.symlink_to(ca_file)
    assert _one_error(_issue(ca_file, "-o", str(target))) == (
        f"error: --out {target} is the input file: writing it would destroy the input; "
        "choose another name"
    )
    assert ca_file.read_bytes() == before


def test_output_is_replaced_whole_or_not_at_all(ca_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "dev.json"
    out.write_text("previous")
    assert _issue(ca_file, "--eui64", "0000000000000000", "-o", str(out)).exit_code == 2
    assert out.read_text() == "previous"
    assert _issue(ca_file, "-o", str(out)).exit_code == 0
    assert Credentials.load(out).eui64.hex() == "0011223344556677"
    assert os.stat(out).st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.json", "dev.json"]
