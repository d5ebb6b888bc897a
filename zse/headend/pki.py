"""Mutual TLS for the retailer headend: the configuration, the test PKI of ``zse headend init``,
the server's ``ssl.SSLContext`` and the mapping of a verified client certificate to a retailer.

The TLS handshake (Python's :mod:`ssl`, ``CERT_REQUIRED``, each certificate of the retailers'
CA files a trust anchor, ``VERIFY_X509_PARTIAL_CHAIN``) refuses a client without a certificate,
with an expired one, with one from another CA or, where the retailers have CRLs, with a revoked
one (``VERIFY_CRL_CHECK_LEAF``; a CRL file is read again when it changes, :class:`Crls`,
and signing certificates of signed requests are checked against the same CRLs);
:func:`identify` then names the retailer: the certificate must be
directly issued by a certificate of that retailer's CA file (a root or an issuing CA, in any
order) and carry its configured subject common name (docs/adr/0013).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import math
import os
import re
import ssl
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from zse._files import read_bounded, read_text_bounded, warn_if_shared
from zse.config import ConfigError, read_toml
from zse.errors import StoreError, ZseError
from zse.headend.core import GIVE_UP, shown
from zse.store_engine import is_postgres

__all__ = [
    "Crls",
    "HeadendConfig",
    "HeadendConfigError",
    "Retailer",
    "identify",
    "init_directory",
    "issue",
    "load_config",
    "new_ca",
    "server_context",
    "signed_context",
    "write_key",
]

LOGGER = logging.getLogger(__name__)

#: The retailers ``zse headend init`` writes certificates for.
INIT_RETAILERS = ("retailer-a", "retailer-b")


class HeadendConfigError(ZseError):
    """A headend configuration (``headend.toml``) or one of its files that cannot be used."""


@dataclass(frozen=True, kw_only=True)
class Retailer:
    """A retailer allowed in: its id, the certificates of its CA file (the CA that issues its
    client certificates, maybe with the CAs above it) and the subject common name its client
    certificates carry."""

    id: str
    cas: tuple[x509.Certificate, ...]
    common_name: str
    #: The public key of its registered signing certificate, for signed requests (ADR 0014).
    signing_key: ec.EllipticCurvePublicKey | None = None
    #: That signing certificate, checked against ``crls`` at each signed request.
    signing_certificate: x509.Certificate | None = field(default=None, repr=False)
    #: The retailers' CRLs (None: no CRLs configured).
    crls: Crls | None = field(default=None, repr=False, compare=False)

    def signing_revoked(self) -> bool:
        """Whether its signing certificate is on a current CRL of its CA (read again first
        if a CRL file changed)."""
        cert = self.signing_certificate
        return self.crls is not None and cert is not None and self.crls.revoked(cert)


@dataclass(frozen=True, kw_only=True)
class HeadendConfig:
    """``headend.toml``: where to listen, the server's certificate and key, the database and
    meters' directory, the rate limit and the retailers (paths relative to the file)."""

    path: Path
    host: str
    port: int
    #: The listener for signed requests (server TLS only), or None.
    signed_port: int | None
    certificate: Path
    key: Path
    #: The store: a ``postgresql://`` URL as given (left out of the repr: it may hold a
    #: password), or the SQLite file's path.
    database: Path | str = field(repr=False)
    meters: Path
    rate: float
    burst: int
    retailers: tuple[Retailer, ...]
    ca_files: tuple[Path, ...]
    #: The retailers' certificate revocation lists (all of them have one, or none does).
    crl_files: tuple[Path, ...] = ()
    #: Those CRLs as read, read again when a file changes (None: no CRLs).
    crls: Crls | None = field(default=None, repr=False, compare=False)
    #: ``[sends] give_up_days`` in seconds: a device not reached this long after a send is
    #: given up (its outcome ``expired``).
    give_up: float = GIVE_UP


def _pem_cert(config: Path, path: Path) -> x509.Certificate:
    """A certificate ``config`` names; errors name both files."""
    return _pem_certs(config, path)[0]


def _pem_certs(config: Path, path: Path) -> tuple[x509.Certificate, ...]:
    """The certificates of a PEM file ``config`` names (at least one), each of a key the
    ``cryptography`` package reads (checked here: the UnsupportedAlgorithm of an SM2 key
    escaped the checks that follow); errors name both files."""
    try:
        certs = tuple(x509.load_pem_x509_certificates(read_bounded(path, error=HeadendConfigError)))
        for cert in certs:
            cert.public_key()
    except OSError as exc:
        raise HeadendConfigError(f"{config}: {path}: {exc.strerror}") from None
    except ValueError:
        raise HeadendConfigError(f"{config}: {path}: not a PEM certificate") from None
    except UnsupportedAlgorithm as exc:
        problem = _unsupported("a certificate", exc)
        raise HeadendConfigError(f"{config}: {path}: {problem}") from None
    return certs


def _issued_by(cert: x509.Certificate, cas: Sequence[x509.Certificate]) -> bool:
    """Whether one of ``cas`` directly issued ``cert`` (its name and signature)."""
    for ca in cas:
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return True
    return False


def _signs(ca: x509.Certificate, crl: x509.CertificateRevocationList) -> bool:
    """Whether ``ca`` issued ``crl`` (its name and signature)."""
    try:
        return ca.subject == crl.issuer and crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    except TypeError:  # a key that cannot sign
        return False


_CRL_PEM = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", re.DOTALL)


def _check_crls(
    config: Path, path: Path, cas: Sequence[x509.Certificate], now: datetime.datetime
) -> list[x509.CertificateRevocationList]:
    """A retailer's ``crl`` file: one or more PEM CRLs, each signed by a certificate of its CA
    file and current at ``now`` (OpenSSL refuses every certificate of a CA whose CRL has
    expired); errors name both files."""
    try:
        blocks = _CRL_PEM.findall(read_bounded(path, error=HeadendConfigError))
        crls = [x509.load_pem_x509_crl(block) for block in blocks]
    except OSError as exc:
        raise HeadendConfigError(f"{config}: {path}: {exc.strerror}") from None
    except ValueError:
        crls = []
    if not crls:
        raise HeadendConfigError(f"{config}: {path}: not a PEM certificate revocation list")
    for crl in crls:
        if not any(_signs(ca, crl) for ca in cas):
            raise HeadendConfigError(
                f"{config}: {path}: a CRL is not signed by a certificate of the retailer's ca"
            )
        if crl.last_update_utc > now:
            raise HeadendConfigError(
                f"{config}: {path}: a CRL is not valid before {crl.last_update_utc.isoformat()}"
            )
        if crl.next_update_utc is None or crl.next_update_utc <= now:
            when = "has no next update" if crl.next_update_utc is None else "has expired"
            raise HeadendConfigError(
                f"{config}: {path}: a CRL {when} ({crl.next_update_utc}): get a current one"
            )
    return crls


def _stat(path: Path) -> tuple[int, int, int] | None:
    """What tells that a file changed: its inode, size and modification time (None: gone)."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_ino, found.st_size, found.st_mtime_ns


class Crls:
    """The retailers' CRL files, read again when one changes: at each TLS handshake (the
    server contexts' ``sni_callback``, which OpenSSL calls at every ClientHello) and at each
    signed request. A changed file that is checked as at start (:func:`_check_crls`) is added
    to the TLS contexts' trust store (OpenSSL uses the newest current CRL of an issuer) and
    to the signing certificates' check; one that fails is logged and the CRLs read before
    stay."""

    def __init__(
        self,
        config: Path,
        cas: dict[Path, tuple[x509.Certificate, ...]],
        read: dict[Path, list[x509.CertificateRevocationList]],
    ) -> None:
        self.config = config
        self._cas = cas
        self._read = read
        self._seen = {path: _stat(path) for path in cas}
        self._contexts: list[ssl.SSLContext] = []

    @property
    def files(self) -> tuple[Path, ...]:
        return tuple(self._cas)

    def attach(self, context: ssl.SSLContext) -> None:
        """Load the CRLs into ``context`` and keep it up to date at each handshake."""
        for path in self._cas:
            context.load_verify_locations(cafile=path)
        self._contexts.append(context)
        context.sni_callback = self._handshake

    def _handshake(self, _tls: ssl.SSLObject, _name: str | None, _context: ssl.SSLContext) -> None:
        try:
            self.refresh()
        except Exception:  # never fail a handshake here: the CRLs read before stay
            LOGGER.exception("%s: reading the CRLs again failed", self.config)

    def refresh(self, now: datetime.datetime | None = None) -> None:
        """Read again each CRL file that changed since it was last looked at."""
        for path, cas in self._cas.items():
            seen = _stat(path)
            if seen == self._seen[path]:
                continue
            self._seen[path] = seen
            try:
                crls = _check_crls(
                    self.config, path, cas, now or datetime.datetime.now(datetime.UTC)
                )
                for context in self._contexts:
                    context.load_verify_locations(cafile=path)
            except (HeadendConfigError, OSError, ssl.SSLError) as exc:
                LOGGER.warning("%s; the CRLs read before are kept", exc)
                continue
            self._read[path] = crls
            LOGGER.info("%s: read %s again (%d CRLs)", self.config, path, len(crls))

    def revoked(self, cert: x509.Certificate) -> bool:
        """Whether ``cert`` is on its issuer's newest CRL (after :meth:`refresh`)."""
        self.refresh()
        newest = max(
            (c for crls in self._read.values() for c in crls if c.issuer == cert.issuer),
            key=lambda c: c.last_update_utc,
            default=None,
        )
        return (
            newest is not None
            and newest.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
        )


#: A TOML value's kind in words, for the messages of :func:`_get`.
_KINDS = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _get(path: Path, section: dict[str, Any], name: str, kind: type, default: Any = None) -> Any:
    """``section[name]`` of type ``kind`` (an int is a float), or ``default``."""
    value = section.get(name, default)
    if value is None or isinstance(value, bool) is not (kind is bool):
        raise HeadendConfigError(f"{path}: {name} is missing or not {_KINDS[kind]}")
    if kind is float and isinstance(value, int):
        try:
            value = float(value)
        except OverflowError:
            raise HeadendConfigError(f"{path}: {name} is too large") from None
    if not isinstance(value, kind):
        raise HeadendConfigError(f"{path}: {name} must be {_KINDS[kind]}")
    if isinstance(value, float) and not math.isfinite(value):
        raise HeadendConfigError(f"{path}: {name} must be a finite number, not {value}")
    return value


def _file_name(path: Path, section: dict[str, Any], name: str, default: Any = None) -> str:
    """``section[name]``, a file's name (or a URL): text without a NUL character (a path
    with one is no file; Python refuses it with a ``ValueError`` that names nothing)."""
    value: str = _get(path, section, name, str, default)
    if "\0" in value:  # the database's is not shown: a URL may hold a password
        quoted = "" if name == "database" else f" {shown(value)}"
        raise HeadendConfigError(f"{path}: {name}{quoted} has a NUL character")
    return value


#: The rates ``[limits] requests_per_second`` may be (a request every 1,000 s at the least).
MIN_RATE, MAX_RATE = 1e-3, 1e6
#: The days ``[sends] give_up_days`` may be (an hour to a year).
MIN_GIVE_UP_DAYS, MAX_GIVE_UP_DAYS = 1 / 24, 366.0
_SERVER_KEYS = ("host", "port", "signed_port", "certificate", "key", "database", "meters")


def _known(path: Path, where: str, table: dict[str, Any], known: tuple[str, ...]) -> None:
    """A :class:`HeadendConfigError` for a key of ``table`` that is none of ``known`` (a
    misspelt one would otherwise be ignored, its default silently used)."""
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise HeadendConfigError(
            f"{path}: {where}unknown key {shown(unknown[0])} (known: {', '.join(known)})"
        )


def _port(path: Path, name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFF:
        raise HeadendConfigError(f"{path}: {name} {shown(value)} is not a TCP port")
    return value


def _retailer(
    path: Path, entry: object, now: datetime.datetime
) -> tuple[Retailer, Path, Path | None, list[x509.CertificateRevocationList]]:
    """One ``[[retailers]]`` entry, its CA file, its CRL file (or None) and the CRLs in it."""
    if not isinstance(entry, dict):
        raise HeadendConfigError(f"{path}: [[retailers]] entries must be tables")
    _known(path, "[[retailers]] ", entry, ("id", "ca", "common_name", "signing_certificate", "crl"))
    if not _get(path, entry, "id", str).strip():
        raise HeadendConfigError(f"{path}: a retailer's id is empty")
    ca_file = path.parent / _file_name(path, entry, "ca")
    cas = _pem_certs(path, ca_file)
    crl_file, crls = None, []
    if "crl" in entry:
        crl_file = path.parent / _file_name(path, entry, "crl")
        crls = _check_crls(path, crl_file, cas, now)
    signing_key, signing = None, None
    if "signing_certificate" in entry:
        signing = _pem_cert(path, path.parent / _file_name(path, entry, "signing_certificate"))
        if not _issued_by(signing, cas):
            raise HeadendConfigError(
                f"{path}: a signing_certificate is not issued by its retailer's ca"
            )
        public = signing.public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp256r1":
            raise HeadendConfigError(f"{path}: a signing_certificate must hold a P-256 key")
        signing_key = public
    common_name = _get(path, entry, "common_name", str)
    if not common_name:  # no certificate has one (RFC 5280: a DirectoryString of 1 or more)
        raise HeadendConfigError(f"{path}: a retailer's common_name is empty")
    retailer = Retailer(
        id=_get(path, entry, "id", str),
        cas=cas,
        common_name=common_name,
        signing_key=signing_key,
        signing_certificate=signing,
    )
    return retailer, ca_file, crl_file, crls


def _check_distinct(path: Path, retailers: Sequence[Retailer], crls: Sequence[Path | None]) -> None:
    """Refuse retailers :func:`identify` could not tell apart (the same common name and a CA
    of the same name and key: the first would take every certificate of both), and CRLs for
    some retailers only (``VERIFY_CRL_CHECK_LEAF`` refuses a certificate whose issuer has none)."""
    if len({r.id for r in retailers}) != len(retailers):
        raise HeadendConfigError(f"{path}: two retailers with the same id")
    seen: dict[tuple[str, bytes, bytes], str] = {}
    for retailer in retailers:
        for ca in retailer.cas:
            key = ca.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            issuer = (retailer.common_name, ca.subject.public_bytes(), key)
            other = seen.setdefault(issuer, retailer.id)
            if other != retailer.id:
                raise HeadendConfigError(
                    f"{path}: retailers {shown(other)} and {shown(retailer.id)} have the same "
                    f"common_name {shown(retailer.common_name)} and CA "
                    f"{shown(ca.subject.rfc4514_string())}: their client certificates cannot "
                    "be told apart"
                )
    without = [r.id for r, crl in zip(retailers, crls, strict=True) if crl is None]
    if without and len(without) != len(retailers):
        raise HeadendConfigError(
            f"{path}: retailer {shown(without[0])} has no crl: when one retailer has a crl, "
            "every retailer needs one (each client certificate is checked against its CA's CRL)"
        )


def load_config(path: Path, *, now: datetime.datetime | None = None) -> HeadendConfig:
    """Read ``headend.toml``; anything wrong raises :class:`HeadendConfigError` naming it.
    ``now`` (default: the system's time) is when the retailers' CRLs must be current. A
    server key that users other than its owner may read is warned about (used all the
    same)."""
    try:
        data = read_toml(read_text_bounded(path, error=HeadendConfigError), str(path))
    except OSError as exc:
        raise HeadendConfigError(f"{path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise HeadendConfigError(f"{path}: not UTF-8 text") from None
    except ConfigError as exc:
        raise HeadendConfigError(str(exc)) from None
    _known(path, "", data, ("server", "limits", "sends", "retailers"))
    base = path.parent
    tables = {}
    for name in ("server", "limits", "sends"):
        tables[name] = data.get(name, {})
        if not isinstance(tables[name], dict):
            raise HeadendConfigError(f"{path}: [{name}] must be a table")
    server, limits, sends = tables["server"], tables["limits"], tables["sends"]
    _known(path, "[server] ", server, _SERVER_KEYS)
    _known(path, "[limits] ", limits, ("requests_per_second", "burst"))
    _known(path, "[sends] ", sends, ("give_up_days",))
    give_up_days = _get(path, sends, "give_up_days", float, GIVE_UP / 86_400)
    if not MIN_GIVE_UP_DAYS <= give_up_days <= MAX_GIVE_UP_DAYS:
        raise HeadendConfigError(
            f"{path}: [sends] give_up_days must be {MIN_GIVE_UP_DAYS:g} to"
            f" {MAX_GIVE_UP_DAYS:g}, not {shown(give_up_days)}"
        )
    given = data.get("retailers", [])
    if not isinstance(given, list) or not given:
        raise HeadendConfigError(f"{path}: no [[retailers]]")
    now = now or datetime.datetime.now(datetime.UTC)
    loaded = [_retailer(path, entry, now) for entry in given]
    retailers = tuple(r for r, _, _, _ in loaded)
    _check_distinct(path, retailers, [crl for _, _, crl, _ in loaded])
    crls = None
    if any(crl is not None for _, _, crl, _ in loaded):
        cas: dict[Path, tuple[x509.Certificate, ...]] = {}
        read: dict[Path, list[x509.CertificateRevocationList]] = {}
        for retailer, _, crl, got in loaded:
            assert crl is not None  # every retailer has one (_check_distinct)
            cas[crl] = (*cas.get(crl, ()), *retailer.cas)
            read[crl] = got
        crls = Crls(path, cas, read)
        retailers = tuple(dataclasses.replace(r, crls=crls) for r in retailers)
    signed_port = server.get("signed_port")
    rate = _get(path, limits, "requests_per_second", float, 50.0)
    burst = _get(path, limits, "burst", int, 100)
    if not MIN_RATE <= rate <= MAX_RATE:  # a subnormal rate: waits of infinity, a 500 each
        raise HeadendConfigError(
            f"{path}: [limits] requests_per_second must be {MIN_RATE:g} to {MAX_RATE:g}, "
            f"not {shown(rate)}"
        )
    if burst < 1:
        raise HeadendConfigError(f"{path}: [limits] burst must be positive, not {shown(burst)}")
    key = base / _file_name(path, server, "key", "server-key.pem")
    warn_if_shared(key, f"{path}: [server] key", LOGGER)  # its loading reports the rest
    return HeadendConfig(
        path=path,
        host=_get(path, server, "host", str, "127.0.0.1"),
        port=_port(path, "port", server.get("port", 8443)),
        signed_port=None if signed_port is None else _port(path, "signed_port", signed_port),
        certificate=base / _file_name(path, server, "certificate", "server.pem"),
        key=key,
        database=_database(path, _file_name(path, server, "database", "headend.sqlite")),
        meters=_meters(path, base / _file_name(path, server, "meters", "meters")),
        rate=rate,
        burst=burst,
        retailers=retailers,
        ca_files=tuple(dict.fromkeys(f for _, f, _, _ in loaded)),
        crl_files=tuple(dict.fromkeys(f for _, _, f, _ in loaded if f is not None)),
        crls=crls,
        give_up=give_up_days * 86_400,
    )


def _meters(path: Path, meters: Path) -> Path:
    """``[server] meters``: a directory, made when missing (by ``serve --sim``)."""
    if meters.exists() and not meters.is_dir():
        raise HeadendConfigError(f"{path}: [server] meters {meters}: not a directory")
    return meters


def _database(path: Path, value: str) -> Path | str:
    """``[server] database``: a ``postgresql://`` URL is kept as it is, a file's path is
    taken relative to the configuration file; a value that looks like a URL but is not one
    is refused without its password."""
    try:
        url = is_postgres(value)
    except StoreError as exc:
        raise HeadendConfigError(f"{path}: [server] database: {exc}") from None
    return value if url else path.parent / value


def server_names(config: HeadendConfig) -> frozenset[str]:
    """The names the server answers to: its certificate's (DNS names and IP addresses of its
    subject alternative name) and the configured host."""
    names = {config.host}
    with contextlib.suppress(OSError, ValueError, x509.ExtensionNotFound):
        certificate = x509.load_pem_x509_certificate(
            read_bounded(config.certificate, error=ValueError)
        )
        alternative = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names.update(alternative.value.get_values_for_type(x509.DNSName))
        names.update(str(a) for a in alternative.value.get_values_for_type(x509.IPAddress))
    return frozenset(name.lower() for name in names)


def _tls_error(exc: OSError | ssl.SSLError) -> str:
    """What went wrong with a TLS file, naming the file when the error does."""
    if isinstance(exc, OSError) and exc.filename and not isinstance(exc, ssl.SSLError):
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


class _Big(Exception):
    """A TLS file too large to be one (:func:`~zse._files.read_bounded`'s error)."""


def _tls_files_problem(config: HeadendConfig) -> str | None:
    """Which of ``[server] certificate`` and ``key`` OpenSSL could not use, and why, or None:
    its own errors name neither (``[SSL] PEM lib``). The key is read to compare public keys;
    nothing of it is said."""
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        data = read_bounded(config.certificate, error=_Big)
        cert = x509.load_pem_x509_certificates(data)[0].public_key().public_bytes(*spki)
    except (_Big, OSError, ValueError, UnsupportedAlgorithm) as exc:
        return f"[server] certificate {_unusable(config.certificate, exc, 'certificate')}"
    try:
        data = read_bounded(config.key, error=_Big)
        key = serialization.load_pem_private_key(data, None).public_key().public_bytes(*spki)
    except TypeError:  # encrypted: said by _no_password's refusal
        return None
    except (_Big, OSError, ValueError, UnsupportedAlgorithm) as exc:
        return f"[server] key {_unusable(config.key, exc, 'private key')}"
    if key != cert:
        return f"[server] key {config.key}: not the key of certificate {config.certificate}"
    return None


def _unusable(path: Path, exc: Exception, what: str) -> str:
    """A TLS file that could not be read (:class:`OSError`), is too large (:class:`_Big`,
    which names it) or holds no PEM ``what`` (:class:`ValueError`, or an algorithm the
    ``cryptography`` package does not support), in words."""
    if isinstance(exc, _Big):
        return str(exc)
    if isinstance(exc, OSError):
        return f"{path}: {exc.strerror}"
    if isinstance(exc, UnsupportedAlgorithm):
        return f"{path}: {_unsupported(f'a {what}', exc)}"
    return f"{path}: not a PEM {what}"


def _unsupported(what: str, exc: UnsupportedAlgorithm) -> str:
    """``what`` (a certificate, a key) of an algorithm the ``cryptography`` package does not
    support, as its error names it (an OID, never key material)."""
    return f"{what} of a kind zse cannot use ({exc})"


def _tls_files_error(config: HeadendConfig, exc: OSError | ssl.SSLError) -> HeadendConfigError:
    """The configuration error of the server's TLS files not loading (``exc``)."""
    problem = _tls_files_problem(config)
    if problem is None:
        problem = f"the TLS files cannot be used ({_tls_error(exc)})"
    return HeadendConfigError(f"{config.path}: {problem}")


def _no_password(config: HeadendConfig) -> Callable[[], str]:
    """The ``password`` of ``load_cert_chain``: an encrypted server key is a configuration
    error (without it, OpenSSL asks for the pass phrase on the terminal, and waits)."""

    def refuse() -> str:
        raise HeadendConfigError(
            f"{config.path}: key {config.key}: it is encrypted; give the server an"
            " unencrypted key (mode 0600)"
        )

    return refuse


def server_context(config: HeadendConfig) -> ssl.SSLContext:
    """The server's TLS context: its certificate and key, client certificates required and
    verified against the retailers' CAs only, TLS 1.2 or later.

    Each certificate of a CA file is a trust anchor, an issuing CA without its root too
    (``VERIFY_X509_PARTIAL_CHAIN``); with CRLs, a client certificate must be on none of them
    and its CA's CRL must be loaded and current (``VERIFY_CRL_CHECK_LEAF``, Python's ssl
    documentation); a CRL file that changes is read again at the next handshake
    (:class:`Crls`)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    if config.crl_files:
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    try:
        context.load_cert_chain(config.certificate, config.key, password=_no_password(config))
        for ca in config.ca_files:
            context.load_verify_locations(cafile=ca)
        if config.crls is not None:
            config.crls.attach(context)
        else:
            for crl in config.crl_files:
                context.load_verify_locations(cafile=crl)
    except (OSError, ssl.SSLError) as exc:
        raise _tls_files_error(config, exc) from None
    return context


def signed_context(config: HeadendConfig) -> ssl.SSLContext:
    """The TLS context of the signed-request listener: the server's certificate, no client
    certificate asked for (the request's signature identifies the retailer)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(config.certificate, config.key, password=_no_password(config))
    except (OSError, ssl.SSLError) as exc:
        raise _tls_files_error(config, exc) from None
    return context


def identify(der: bytes | None, retailers: Sequence[Retailer]) -> Retailer | None:
    """The retailer whose CA file holds the certificate that directly issued this (already
    TLS-verified) certificate and whose common name it carries, or None."""
    if not der:
        return None
    try:
        cert = x509.load_der_x509_certificate(der)
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:
        return None
    common_name = names[0].value if names else None
    for retailer in retailers:
        if retailer.common_name == common_name and _issued_by(cert, retailer.cas):
            return retailer
    return None


# -- the test PKI ----------------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "zse headend (test)"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def new_ca(
    common_name: str, *, now: datetime.datetime | None = None
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed test CA (P-256), valid for ten years from ``now``."""
    now = now or datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def issue(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    common_name: str,
    *,
    server: bool = False,
    hosts: Sequence[str] = ("localhost", "127.0.0.1"),
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A certificate and key issued by ``ca``: a TLS server's (with ``hosts`` as subject
    alternative names) or a client's; valid from ``not_before`` (default now) to
    ``not_after`` (default two years)."""
    import ipaddress  # noqa: PLC0415

    ca_cert, ca_key = ca
    start = not_before or datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    end = not_after or start + datetime.timedelta(days=730)
    key = ec.generate_private_key(ec.SECP256R1())
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if server:
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """Write a private key (PEM, unencrypted), readable by its owner only."""
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with _named(path):
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_bytes(data)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    with _named(path):
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


@contextlib.contextmanager
def _named(path: Path) -> Iterator[None]:
    """An :class:`OSError` writing ``path`` (a full disk) names it, as one opening it does."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None:
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from None


_CONFIG = """\
# zse headend configuration, written by `zse headend init` (test certificates: not for
# production). Paths are relative to this file.
[server]
host = "127.0.0.1"
port = {port}
# signed requests (RFC 9421) from a registered certificate, for clients without mutual TLS
signed_port = {signed_port}
certificate = "server.pem"
key = "server-key.pem"
database = "headend.sqlite"
meters = "meters"

[limits]
# per retailer: a token bucket
requests_per_second = 50
burst = 100
{retailers}"""

_RETAILER = """
[[retailers]]
id = "{name}"
ca = "ca.pem"
common_name = "{name}"
signing_certificate = "{name}.pem"
"""


def init_directory(directory: Path, *, port: int = 8443, hosts: Sequence[str] = ()) -> list[Path]:
    """Write a test CA (``ca.pem``, ``ca-key.pem``), the server's certificate and key
    (``server.pem``, ``server-key.pem``), ``retailer-a.pem``/``retailer-a-key.pem`` and
    ``retailer-b...``, and ``headend.toml``. Existing files are not overwritten
    (:class:`HeadendConfigError`). All or nothing: when one cannot be written, the files and
    directories this call created are removed (never one that was there) and the error
    raised."""
    names = [
        "ca.pem",
        "ca-key.pem",
        "server.pem",
        "server-key.pem",
        *(f"{r}{s}" for r in INIT_RETAILERS for s in (".pem", "-key.pem")),
        "headend.toml",
    ]
    made = [d for d in (directory, *directory.parents) if not os.path.lexists(d)]
    created: list[Path] = []

    def new(name: str) -> Path:
        """``directory / name``, counted as this call's when nothing is there yet."""
        path = directory / name
        if not os.path.lexists(path):
            created.append(path)
        return path

    if os.path.lexists(directory) and not directory.is_dir():
        raise HeadendConfigError(f"{directory}: not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        present = [n for n in names if (directory / n).exists()]
        if present:
            raise HeadendConfigError(f"{directory}: {present[0]} exists; not overwriting")
        ca = new_ca("zse headend test CA")
        _write_cert(new("ca.pem"), ca[0])
        write_key(new("ca-key.pem"), ca[1])
        cert, key = issue(ca, "localhost", server=True, hosts=("localhost", "127.0.0.1", *hosts))
        _write_cert(new("server.pem"), cert)
        write_key(new("server-key.pem"), key)
        for retailer in INIT_RETAILERS:
            cert, key = issue(ca, retailer)
            _write_cert(new(f"{retailer}.pem"), cert)
            write_key(new(f"{retailer}-key.pem"), key)
        retailers = "".join(_RETAILER.format(name=r) for r in INIT_RETAILERS)
        config = _CONFIG.format(port=port, signed_port=port + 1 if port else 0, retailers=retailers)
        path = new("headend.toml")
        with _named(path):
            path.write_text(config)
    except BaseException:
        for path in reversed(created):
            with contextlib.suppress(OSError):
                path.unlink()
        for made_directory in made:  # the deepest first; one not empty stays
            with contextlib.suppress(OSError):
                made_directory.rmdir()
        raise
    return [directory / n for n in names]
