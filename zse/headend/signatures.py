"""Signed requests for retailers that cannot present a client certificate: RFC 9421 HTTP
Message Signatures, verified with the ``http-message-signatures`` library (docs/adr/0014).

A retailer registers a signing certificate (``signing_certificate`` in ``headend.toml``, issued by
its CA; ``zse headend init`` registers its client certificate). A signed request reaches the
headend on its second listener (``signed_port``: server TLS, no client certificate) and must
carry ``Signature-Input`` / ``Signature`` with ``keyid`` = the retailer's id, ECDSA P-256 with
SHA-256 (``ecdsa-p256-sha256``), covering ``@method``, ``@target-uri`` and, with a body,
``content-digest`` (RFC 9530, checked against the body), ``created`` no older than
:data:`MAX_AGE` seconds, and a ``nonce`` never seen before within that time (replays are
refused); the signing certificate must be within its validity period, as a client
certificate must in the TLS handshake, and, where the retailers have CRLs, on none of them
(read again when a CRL file changes, :class:`zse.headend.pki.Crls`). Anything else is refused
with 401.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import http_message_signatures as hms
from cryptography.hazmat.primitives.asymmetric import ec

from zse.errors import ZseError
from zse.headend.pki import Retailer

__all__ = ["MAX_AGE", "RequestVerifier", "SignedHeaders", "SignedRequestError", "sign_request"]

#: Oldest a signature may be (seconds since its ``created``), and how long nonces are kept.
MAX_AGE = 300
#: Seconds a nonce is remembered after its first use: past :data:`MAX_AGE` by more than the
#: signature library's allowance for clocks (5 s each way on ``created``), so that a request
#: replayed just after MAX_AGE is not taken while its signature still verifies.
NONCE_KEPT = MAX_AGE + 60
_ALGORITHM = hms.algorithms.ECDSA_P256_SHA256


class SignedRequestError(ZseError):
    """A signed request that is refused (no, a malformed, a bad or a replayed signature)."""


@dataclass(frozen=True)
class _Message:
    """The request as the library reads it: method, absolute URL, header field lines."""

    method: str
    url: str
    headers: Any


class _Headers:
    """Read-only header field lines, in order."""

    def __init__(self, lines: Iterable[tuple[str, str]]) -> None:
        self._lines = list(lines)

    def items(self) -> list[tuple[str, str]]:
        return list(self._lines)

    def __iter__(self) -> Any:
        return iter(dict.fromkeys(name for name, _ in self._lines))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(n.lower() == name.lower() for n, _ in self._lines)


class _Keys(hms.HTTPSignatureKeyResolver):
    def __init__(self, keys: Mapping[str, ec.EllipticCurvePublicKey]) -> None:
        self.keys = dict(keys)

    def resolve_public_key(self, key_id: str) -> ec.EllipticCurvePublicKey | None:
        return self.keys.get(key_id)

    def resolve_private_key(self, key_id: str) -> Any:
        raise KeyError(key_id)


class RequestVerifier:
    """Verify signed requests against the retailers' registered signing certificates."""

    def __init__(self, retailers: Sequence[Retailer]) -> None:
        self.retailers = {r.id: r for r in retailers if r.signing_key is not None}
        keys = {r.id: r.signing_key for r in self.retailers.values() if r.signing_key}
        self._verifier = hms.HTTPMessageVerifier(
            signature_algorithm=_ALGORITHM, key_resolver=_Keys(keys)
        )
        self._nonces: dict[tuple[str, str], float] = {}

    def verify(
        self,
        method: str,
        url: str,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        *,
        now: float,
    ) -> Retailer:
        """The retailer that signed the request, or :class:`SignedRequestError`. ``now``: Unix
        time (for the nonce cache)."""
        return self.finish(self.headers(method, url, headers, has_body=bool(body)), body, now=now)

    def headers(
        self, method: str, url: str, headers: Iterable[tuple[str, str]], *, has_body: bool
    ) -> SignedHeaders:
        """Verify the signature over the request's components before its body is read (an
        unsigned request is refused without reading it), by a signing certificate valid now
        (the wall clock, as the TLS handshake and the signature's ``created`` are checked:
        an expired one is refused) and not revoked; :meth:`finish` then checks the body
        against the signed ``Content-Digest`` and the nonce. :class:`SignedRequestError`."""
        message = _Message(method, url, _Headers(headers))
        required = ["@method", "@target-uri"] + (["content-digest"] if has_body else [])
        try:
            results = self._verifier.verify(
                message,
                max_age=datetime.timedelta(seconds=MAX_AGE),
                require_components=required,
            )
        except hms.HTTPMessageSignaturesException as exc:
            raise SignedRequestError(f"signature refused: {exc}") from None
        if len(results) != 1:
            raise SignedRequestError("signature refused: give exactly one signature")
        key_id = str(results[0].parameters.get("keyid", ""))
        if key_id not in self.retailers:  # pragma: no cover - the resolver knows only these
            raise SignedRequestError("signature refused: unknown key")
        if not results[0].nonce:
            raise SignedRequestError("signature refused: a nonce is required")
        if self.retailers[key_id].signing_revoked():  # the CRLs of the TLS handshake's check
            raise SignedRequestError("signature refused: the signing certificate is revoked")
        cert, now = self.retailers[key_id].signing_certificate, time.time()
        if cert is not None and not (
            cert.not_valid_before_utc.timestamp() <= now <= cert.not_valid_after_utc.timestamp()
        ):  # as the TLS handshake refuses a client certificate out of its validity
            raise SignedRequestError(
                "signature refused: the signing certificate is not valid now (expired, or"
                " not valid yet)"
            )
        return SignedHeaders(message, tuple(results))

    def finish(self, signed: SignedHeaders, body: bytes, *, now: float) -> Retailer:
        """The retailer of a request whose :meth:`headers` verified, once its ``body`` matches
        the signed digest and its nonce is new; :class:`SignedRequestError` otherwise."""
        try:
            (result,) = self._verifier.verify_body(signed.message, signed.results, body)
        except hms.HTTPMessageSignaturesException as exc:
            raise SignedRequestError(f"signature refused: {exc}") from None
        used = (str(result.parameters.get("keyid", "")), str(result.nonce))
        for key in [k for k, until in self._nonces.items() if until < now]:
            del self._nonces[key]
        if used in self._nonces:
            raise SignedRequestError("signature refused: the nonce was used before (a replay)")
        self._nonces[used] = now + NONCE_KEPT
        return self.retailers[used[0]]


@dataclass(frozen=True)
class SignedHeaders:
    """A request whose signature verified (:meth:`RequestVerifier.headers`), body unread."""

    message: _Message
    results: tuple[Any, ...]


def sign_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    key_id: str,
    key: ec.EllipticCurvePrivateKey,
    nonce: str,
) -> dict[str, str]:
    """The headers of a request signed as :class:`RequestVerifier` expects (a client helper):
    ``headers`` plus ``Content-Digest`` (with a body), ``Signature-Input`` and ``Signature``."""

    class _Private(hms.HTTPSignatureKeyResolver):
        def resolve_private_key(self, wanted: str) -> ec.EllipticCurvePrivateKey:
            if wanted != key_id:
                raise KeyError(wanted)
            return key

        def resolve_public_key(self, wanted: str) -> None:
            return None

    fields = dict(headers)
    message = _Message(method, url, fields)
    covered = ["@method", "@target-uri"] + (["content-digest"] if body else [])
    signer = hms.HTTPMessageSigner(signature_algorithm=_ALGORITHM, key_resolver=_Private())
    signer.sign(
        message,
        key_id=key_id,
        nonce=nonce,
        covered_component_ids=covered,
        body=body if body else None,
    )
    return fields
