"""A mistake in headend.toml's files (a path with a NUL character, an encrypted server key)
is one line naming the key, exit 2, from ``zse headend serve``: not a ``ValueError`` that names
nothing (exit 1), nor OpenSSL asking for a pass phrase on the terminal."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization

from zse.cli import main
from zse.headend.pki import init_directory


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
