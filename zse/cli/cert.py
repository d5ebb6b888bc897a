"""``zse cert``: a test CA for CBKE certificates (SEC 4 ECQV issuance) and a certificate reader.

- ``zse cert ca-new [--out CA.json] [--issuer HEX]``: a CA with keys for suites 1 and 2;
- ``zse cert issue --ca CA.json --eui64 EUI64 --suite 1|2 [--out FILE]``: credentials JSON
  (CA public key, certificate, private key) for a device;
- ``zse cert inspect HEX|FILE [--ca KEY]``: the certificate's fields, subject, issuer, validity
  and, given the CA public key (hex, or a CA/credentials JSON file), the reconstructed public
  key. FILE is a credentials file (its certificate, with its CA key unless ``--ca``) or a CA
  file (its issuer and public keys).

Bad input exits with status 2 and a one-line ``error:`` message, never a traceback; no message
echoes a value that may be secret. Output files (``-o``) are written atomically, mode 0600, and
never over the ``--ca`` file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import string
import time
from typing import Any, NoReturn

import click

from zse import jsontext
from zse._files import FileTooLarge, read_bounded
from zse.cbke.ca import TestCA
from zse.cbke.certificate import NO_EXPIRY, ImplicitCertificate, Suite2Certificate
from zse.cbke.credentials import hex_field
from zse.cbke.suites import SUITES
from zse.cli._errors import fail
from zse.cli._files import OutputError, atomic_output, refuse_input_as_output
from zse.cli._types import PlainInt
from zse.errors import DecodeError, InvalidJson
from zse.installcode import parse_eui64

__all__ = ["cert"]


def _fail(message: str) -> NoReturn:
    fail(message, 2)


def _write(text: str, out: str | None) -> None:
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        with atomic_output(out, "--out") as handle:
            handle.write(text)
    except OutputError as exc:
        _fail(str(exc))


_HEX = frozenset(string.hexdigits)


def _is_hex(text: str) -> bool:
    cleaned = "".join(ch for ch in text if ch not in " \t\r\n:-")
    return bool(cleaned) and len(cleaned) % 2 == 0 and set(cleaned) <= _HEX


def _neither(option: str, text: str, what: str) -> NoReturn:
    """A value that is no file and no hex: say the file is missing when it looks like a path;
    otherwise say what was expected, without echoing what may be a mistyped key."""
    if any(mark in text for mark in ("/", ".", os.sep)):
        _fail(f"{option} {text}: no such file")
    _fail(f"{option} is neither a file nor {what} in hex")


def _read_json(path: str) -> tuple[bytes, dict[str, Any]]:
    """A JSON object from a file, or a one-line error naming the file."""
    try:
        raw = read_bounded(path, error=FileTooLarge)
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror}")
    except FileTooLarge as exc:
        _fail(str(exc))
    try:
        document = jsontext.loads(raw)
    except InvalidJson as exc:
        _fail(f"{path} is not JSON: {exc} (expected a credentials or CA file from `zse cert`)")
    if not isinstance(document, dict):
        _fail(f"{path} is not a credentials or CA file (not a JSON object)")
    return raw, document


@click.group()
def cert() -> None:
    """CBKE certificates: a test CA (ca-new, issue) and a reader (inspect)."""


@cert.command("ca-new")
@click.option("--out", "-o", help="Write the CA JSON here (mode 0600) instead of stdout.")
@click.option(
    "--issuer",
    default=None,
    help="The 8-byte issuer id as 16 hex digits (default: derived from the CA's key).",
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
@click.option(
    "--suite",
    type=click.Choice(["1", "2"]),
    default="1",
    show_default=True,
    help="Crypto suite of the certificate: 1 (sect163k1, 48 bytes) or 2 (sect283k1, 74 bytes).",
)
@click.option("--out", "-o", help="Write the credentials JSON here (mode 0600) instead of stdout.")
@click.option(
    "--valid-from",
    type=PlainInt,
    default=None,
    help="Suite 2: start of validity, UTC seconds (default: now).",
)
@click.option(
    "--valid-for",
    type=PlainInt,
    default=None,
    help=f"Suite 2: seconds of validity, 1 to {NO_EXPIRY - 1} (default: no expiry).",
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
    options = _validity(int(suite), valid_from, valid_for)
    if out is not None:
        _write_check(out, ca_path)
    try:
        ca = TestCA.load(ca_path)
        try:
            subject = bytes(parse_eui64(eui64))[::-1]
        except DecodeError as exc:  # named as zse han's --meter and zse capture's are
            _fail(f"--eui64: {exc}")
        credentials = ca.issue(subject, int(suite), **options)
    except DecodeError as exc:
        _fail(str(exc))
    _write(credentials.to_json(), out)


def _write_check(out: str, ca_path: str) -> None:
    """Refuse ``--out`` over the CA file before the CA is even read."""
    try:
        refuse_input_as_output(out, [ca_path], "--out")
    except OutputError as exc:
        _fail(str(exc))


def _validity(suite: int, valid_from: int | None, valid_for: int | None) -> dict[str, int]:
    """The suite-2 validity options, checked (suite-1 certificates have no validity field)."""
    if suite == 1:
        given = [
            name
            for name, v in (("--valid-from", valid_from), ("--valid-for", valid_for))
            if v is not None
        ]
        if given:
            _fail(
                f"{' and '.join(given)} {'applies' if len(given) == 1 else 'apply'} to suite 2 "
                "only: a suite-1 certificate has no "
                "validity period (use --suite 2)"
            )
        return {}
    if valid_from is not None and not 0 <= valid_from < 1 << 40:
        _fail(f"--valid-from must be 0 to {(1 << 40) - 1} (UTC seconds, 40 bits)")
    if valid_for is not None and not 1 <= valid_for < NO_EXPIRY:
        _fail(f"--valid-for must be 1 to {NO_EXPIRY - 1} seconds (leave it out for no expiry)")
    options = {"valid_from": int(time.time()) if valid_from is None else valid_from}
    if valid_for is not None:
        options["valid_to"] = valid_for
    return options


def _ca_public_key(text: str, certificate: ImplicitCertificate) -> bytes:
    """The CA key for --ca: a CA JSON file, a credentials JSON file, or hex."""
    if os.path.exists(text):
        raw, document = _read_json(text)
        if "ca_public_key" in document:  # a credentials file: only its public part is read
            return hex_field(document["ca_public_key"], f"{text}: ca_public_key")
        if "issuer" in document:
            try:
                return TestCA.from_json(raw).authority(certificate.suite).public_key
            except DecodeError as exc:
                _fail(f"{text}: {exc}")
        _fail(f"{text} is neither a credentials file nor a CA file")
    if _is_hex(text):
        return hex_field(text, "--ca")
    _neither("--ca", text, "a CA public key")


def _utc(seconds: int) -> str:
    try:
        return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, ValueError, OSError):
        return "out of range"


def _certificate(text: str) -> tuple[ImplicitCertificate, str | None] | TestCA:
    """CERTIFICATE: hex, a credentials file (its certificate and CA key) or a CA file."""
    if os.path.exists(text):
        raw, document = _read_json(text)
        if "certificate" in document:  # a credentials file: the private key is never read
            if not isinstance(document["certificate"], str):
                _fail(f"{text}: certificate must be a hex string")
            ca_key = document.get("ca_public_key")
            return (
                ImplicitCertificate.from_hex(document["certificate"]),
                ca_key if isinstance(ca_key, str) else None,
            )
        if "issuer" in document:
            try:
                return TestCA.from_json(raw)
            except DecodeError as exc:
                _fail(f"{text}: {exc}")
        _fail(f"{text} is neither a credentials file nor a CA file")
    if _is_hex(text):
        return ImplicitCertificate.from_hex(text), None
    _neither("CERTIFICATE", text, "a certificate")


def _show_ca(ca: TestCA, as_json: bool) -> None:
    fields = {"issuer": ca.issuer.hex().upper()}
    for suite_id, authority in sorted(ca.authorities.items()):
        fields[f"suite{suite_id}_public_key"] = authority.public_key.hex().upper()
    if as_json:
        click.echo(json.dumps(fields, indent=2))
        return
    click.echo("test CA (the file holds its private keys: keep it secret)")
    for name, value in fields.items():
        click.echo(f"  {name:28} {value}")


@cert.command()
@click.argument("certificate")
@click.option("--ca", "ca_key", help="CA public key (hex) or a CA / credentials JSON file.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def inspect(certificate: str, ca_key: str | None, as_json: bool) -> None:
    """Show a certificate's fields; with --ca, the public key it reconstructs.

    CERTIFICATE is the certificate in hex, or a credentials file from `zse cert issue` (its
    certificate; its own CA key unless --ca is given), or a CA file (its issuer and public
    keys)."""
    try:
        found = _certificate(certificate)
        if isinstance(found, TestCA):
            _show_ca(found, as_json)
            return
        parsed, own_ca = found
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
        elif own_ca is not None:
            public = parsed.reconstruct_public_key(hex_field(own_ca, "ca_public_key"))
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
