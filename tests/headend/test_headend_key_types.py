"""A certificate whose key the ``cryptography`` package cannot read (an SM2 key, OpenSSL's
``genpkey -algorithm SM2``: its curve 1.2.156.10197.1.301 is not one cryptography supports)
in a retailer's CA file, as a retailer's signing certificate or as the server's certificate
is a HeadendConfigError naming the file, and ``zse headend serve`` says it in one line with
status 2. Found by the garbage audit: ``load_config`` raised cryptography's
UnsupportedAlgorithm (``zse headend serve``: "error: UnsupportedAlgorithm: ...", status 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.headend.test_headend_retailer_pki import _openssl
from tests.zse_cli import run_zse
from zse.headend.pki import HeadendConfigError, init_directory, load_config, server_context


def _sm2(directory: Path) -> None:
    """``sm2-key.pem``, its public key, and a self-signed certificate of it, ``sm2.pem``."""
    _openssl(directory, "genpkey", "-algorithm", "SM2", "-out", "sm2-key.pem")
    _openssl(directory, "pkey", "-in", "sm2-key.pem", "-pubout", "-out", "sm2-public.pem")
    _openssl(directory, "req", "-x509", "-new", "-key", "sm2-key.pem", "-subj", "/CN=sm2",
             "-days", "30", "-sm3", "-sigopt", "distid:1234567812345678",
             "-out", "sm2.pem")  # fmt: skip


def _ca_file(directory: Path) -> Path:
    ca = directory / "ca.pem"
    ca.write_text(ca.read_text() + (directory / "sm2.pem").read_text())
    return ca


def _signing_certificate(directory: Path) -> Path:
    """retailer-a's signing certificate, of the SM2 key, issued by its CA."""
    _openssl(directory, "x509", "-new", "-subj", "/CN=retailer-a", "-force_pubkey",
             "sm2-public.pem", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-days", "30",
             "-sha256", "-out", "retailer-a.pem")  # fmt: skip
    return directory / "retailer-a.pem"


def _server_certificate(directory: Path) -> Path:
    (directory / "server.pem").write_bytes((directory / "sm2.pem").read_bytes())
    (directory / "server-key.pem").write_bytes((directory / "sm2-key.pem").read_bytes())
    return directory / "server.pem"


@pytest.mark.parametrize("place", [_ca_file, _signing_certificate, _server_certificate])
def test_a_certificate_of_an_unsupported_key_is_a_config_error(tmp_path: Path, place) -> None:
    init_directory(tmp_path)
    _sm2(tmp_path)
    named = place(tmp_path)
    config = tmp_path / "headend.toml"
    with pytest.raises(HeadendConfigError) as error:
        server_context(load_config(config))
    said = str(error.value)
    assert said.startswith(f"{config}: ")
    assert f"{named}: a certificate of a kind zse cannot use (Curve 1.2.156.10197.1.301" in said
    result = run_zse("headend", "serve", "--config", str(config), "--sim", "1")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {error.value}"]
