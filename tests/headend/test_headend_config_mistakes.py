"""A mistake in headend.toml's files (a path with a NUL character, an encrypted server key)
is one line naming the key, exit 2, from ``zse headend serve``: not a ``ValueError`` that names
nothing (exit 1), nor OpenSSL asking for a pass phrase on the terminal."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization

from zse.cli import main
from zse.headend.pki import HeadendConfigError, init_directory, load_config


def _serve(config: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["headend", "serve", "--config", str(config), "--sim", "1"])
    return result.exit_code, result.stderr


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('certificate = "server.pem"', 'certificate = "server\\u0000.pem"', "certificate"),
        ('key = "server-key.pem"', 'key = "server-key\\u0000.pem"', "key"),
        ('meters = "meters"', 'meters = "m\\u0000"', "meters"),
        ('database = "headend.sqlite"', 'database = "h\\u0000.sqlite"', "database"),
        ('ca = "ca.pem"', 'ca = "ca\\u0000.pem"', "ca"),
    ],
)
def test_a_path_with_a_nul_is_a_config_error_naming_its_key(
    tmp_path: Path, old: str, new: str, key: str
) -> None:
    """A file name with a NUL character escaped as ``ValueError: embedded null byte`` (exit
    1, no key named), or was read as "not a PEM certificate"."""
    init_directory(tmp_path)
    config = tmp_path / "headend.toml"
    config.write_text(config.read_text().replace(old, new, 1))
    code, err = _serve(config)
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith(f"error: {config}: {key} ")
    assert "has a NUL character" in err


def test_an_encrypted_server_key_is_a_config_error(tmp_path: Path) -> None:
    """An encrypted server key had OpenSSL ask for its pass phrase on the terminal (waiting
    there), or fail with "Invalid argument" without one."""
    init_directory(tmp_path)
    path = tmp_path / "server-key.pem"
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pass phrase"),
        )
    )
    code, err = _serve(tmp_path / "headend.toml")
    assert (code, err.count("\n")) == (2, 1)
    assert "server-key.pem: it is encrypted" in err


@pytest.mark.parametrize(
    ("old", "new", "said"),
    [
        ('certificate = "server.pem"', 'certificate = "headend.toml"', "certificate "),
        ('key = "server-key.pem"', 'key = "server.pem"', "key "),
        ('key = "server-key.pem"', 'key = "retailer-a-key.pem"', "key "),
    ],
)
def test_an_unusable_tls_file_is_named(tmp_path: Path, old: str, new: str, said: str) -> None:
    """A certificate that is no PEM certificate, a key file holding no key or another
    certificate's key was "the TLS files cannot be used ([SSL] PEM lib (_ssl.c:3905))": which
    file, and what is wrong with it, was left to guess."""
    init_directory(tmp_path)
    config = tmp_path / "headend.toml"
    config.write_text(config.read_text().replace(old, new, 1))
    (tmp_path / "server.pem").chmod(0o600)  # as a key: no warning line about its mode
    code, err = _serve(config)
    assert (code, err.count("\n")) == (2, 1), err
    file = new.split('"')[1]
    assert err.startswith(f"error: {config}: [server] {said}{tmp_path / file}: "), err
    assert "PEM lib" not in err


def test_a_meters_path_that_is_a_file_is_a_config_error(tmp_path: Path) -> None:
    """``[server] meters`` naming a file was "FileExistsError: [Errno 17] File exists" (exit
    1, the error of an unexpected bug)."""
    init_directory(tmp_path)
    config = tmp_path / "headend.toml"
    config.write_text(config.read_text().replace('meters = "meters"', 'meters = "ca.pem"', 1))
    code, err = _serve(config)
    assert (code, err.count("\n")) == (2, 1), err
    assert err == f"error: {config}: [server] meters {tmp_path / 'ca.pem'}: not a directory\n"


def test_an_empty_common_name_is_a_config_error(tmp_path: Path) -> None:
    """A retailer whose ``common_name`` is empty was served: no certificate carries an
    empty common name, so its retailer could never be let in, and nothing said so."""
    init_directory(tmp_path)
    config = tmp_path / "headend.toml"
    text = config.read_text().replace('common_name = "retailer-b"', 'common_name = ""', 1)
    config.write_text(text)
    with pytest.raises(HeadendConfigError) as raised:
        load_config(config)
    assert str(raised.value) == f"{config}: a retailer's common_name is empty"
