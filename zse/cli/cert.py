"""``zse cert``: a test CA for CBKE certificates (SEC 4 ECQV issuance) and a certificate reader.

- ``zse cert ca-new [--out CA.json] [--issuer HEX]``: a CA with keys for suites 1 and 2;
- ``zse cert issue --ca CA.json --eui64 EUI64 --suite 1|2 [--out FILE]``: credentials JSON
  (CA public key, certificate, private key) for a device;
- ``zse cert inspect HEX [--ca KEY]``: the certificate's fields, subject, issuer, validity and,
  given the CA public key (hex, or a CA/credentials JSON file), the reconstructed public key.

Bad input exits with status 2 and a one-line ``error:`` message, never a traceback.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from typing import NoReturn

import click

from zse.cbke.ca import TestCA
from zse.cbke.certificate import ImplicitCertificate, Suite2Certificate
from zse.cbke.credentials import Credentials, hex_field
from zse.cbke.suites import SUITES
from zse.errors import DecodeError
from zse.installcode import parse_eui64

__all__ = ["cert"]


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _write(text: str, out: str | None) -> None:
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        _fail(f"cannot write {out}: {exc.strerror}")


@click.group()
def cert() -> None:
    """CBKE certificates: a test CA (ca-new, issue) and a reader (inspect)."""


@cert.command("ca-new")
@click.option("--out", "-o", help="Write the CA JSON here (mode 0600) instead of stdout.")
@click.option(
    "--issuer", default=None, help="The 8-byte issuer id as 16 hex digits (default ZSETSTCA)."
)
def ca_new(out: str | None, issuer: str | None) -> None:
    """Create a test CA with key pairs for suites 1 and 2 (keep the file secret)."""
    try:
        ca = TestCA.generate() if issuer is None else TestCA.generate(_issuer(issuer))
    except DecodeError as exc:
        _fail(str(exc))
    _write(ca.to_json(), out)


def _issuer(text: str) -> bytes:
    value = hex_field(text, "issuer")
    if len(value) != 8:
        _fail(f"issuer must be 8 bytes (16 hex digits), got {len(value)}")
    return value


@cert.command()
@click.option("--ca", "ca_path", required=True, help="The CA JSON file (from `zse cert ca-new`).")
@click.option("--eui64", required=True, help="The device's EUI-64, as printed on its label.")
@click.option("--suite", type=click.Choice(["1", "2"]), default="1", show_default=True)
@click.option("--out", "-o", help="Write the credentials JSON here (mode 0600).")
@click.option(
    "--valid-from",
    type=int,
    default=None,
    help="Suite 2: start of validity, UTC seconds (default: now).",
)
@click.option(
    "--valid-for",
    type=int,
    default=None,
    help="Suite 2: seconds of validity (default: no expiry).",
)
def issue(  # noqa: PLR0917 - click passes options positionally
    ca_path: str,
    eui64: str,
    suite: str,
    out: str | None,
    valid_from: int | None,
    valid_for: int | None,
) -> None:
    """Issue a certificate and private key for a device."""
    try:
        ca = TestCA.load(ca_path)
        subject = bytes(parse_eui64(eui64))[::-1]
        options: dict[str, int] = {}
        if int(suite) == 2:
            options["valid_from"] = int(time.time()) if valid_from is None else valid_from
            if valid_for is not None:
                options["valid_to"] = valid_for
        credentials = ca.issue(subject, int(suite), **options)
    except DecodeError as exc:
        _fail(str(exc))
    _write(credentials.to_json(), out)


def _ca_public_key(text: str, certificate: ImplicitCertificate) -> bytes:
    """The CA key for --ca: hex, a CA JSON file or a credentials JSON file."""
    if not os.path.exists(text):
        return hex_field(text, "--ca")
    with open(text, "rb") as handle:
        raw = handle.read()
    try:
        document = json.loads(raw)
    except ValueError:
        _fail(f"{text} is not JSON")
    if isinstance(document, dict) and "ca_public_key" in document:
        return Credentials.from_json(raw).ca_public_key
    return TestCA.from_json(raw).authority(certificate.suite).public_key


def _utc(seconds: int) -> str:
    try:
        return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, ValueError, OSError):
        return "out of range"


@cert.command()
@click.argument("certificate")
@click.option("--ca", "ca_key", help="CA public key (hex) or a CA / credentials JSON file.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def inspect(certificate: str, ca_key: str | None, as_json: bool) -> None:
    """Show a certificate's fields; with --ca, the public key it reconstructs."""
    try:
        parsed = ImplicitCertificate.from_hex(certificate)
        fields = parsed.fields()
        fields["suite"] = parsed.suite.id
        if isinstance(parsed, Suite2Certificate):
            fields["valid_from_utc"] = _utc(parsed.valid_from)
            expires = parsed.expires
            fields["expires_utc"] = "never" if expires is None else _utc(expires)
            fields["key_agreement"] = "yes" if parsed.allows_key_agreement else "no"
        if ca_key is not None:
            public = parsed.reconstruct_public_key(_ca_public_key(ca_key, parsed))
            fields["public_key"] = public.hex().upper()
    except DecodeError as exc:
        _fail(str(exc))
    if as_json:
        click.echo(json.dumps(fields, indent=2))
        return
    click.echo(f"{SUITES[parsed.suite.id].name} certificate, {len(parsed.data)} bytes")
    for name, value in fields.items():
        if name == "suite":
            continue
        click.echo(f"  {name:28} {value}")
