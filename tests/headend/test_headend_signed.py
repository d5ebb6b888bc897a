"""Signed requests (RFC 9421 HTTP Message Signatures, ADR 0014) on the second listener, where no
client certificate is asked for: a request signed with the retailer's registered key is served
as that retailer; no signature, a bad one (another key, a changed body, a changed target), a
replayed nonce and a stale one are refused with 401 before any handler runs."""

from __future__ import annotations

import datetime
import json
import ssl
import uuid
from typing import Any

import aiohttp
import http_message_signatures as hms
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.headend.helpers import Reply, Service
from zse.headend.signatures import sign_request
from zse.store import hold_virtual_clock


def _key(service: Service, name: str) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(
        (service.directory / f"{name}-key.pem").read_bytes(), None
    )
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


async def _send(
    service: Service, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> Reply:
    context = ssl.create_default_context(cafile=service.directory / "ca.pem")
    url = f"https://127.0.0.1:{service.signed_port}{path}"
    with hold_virtual_clock():
        connector = aiohttp.TCPConnector(ssl=context, force_close=True)
        async with (
            aiohttp.ClientSession(
                connector=connector, skip_auto_headers=["Content-Type"]
            ) as session,
            session.request(method, url, headers=headers, data=body or None) as response,
        ):
            raw = await response.read()
            json_body = response.content_type == "application/json"
            return Reply(
                response.status, json.loads(raw) if json_body else raw, dict(response.headers)
            )


def _signed(
    service: Service,
    method: str,
    path: str,
    body: object = None,
    *,
    name: str = "retailer-a",
    **extra: Any,
) -> tuple[dict[str, str], bytes]:
    data = b"" if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data else {}
    url = f"https://127.0.0.1:{service.signed_port}{path}"
    signed = sign_request(
        method,
        url,
        headers,
        data,
        key_id=extra.get("key_id", "retailer-a"),
        key=_key(service, name),
        nonce=extra.get("nonce", uuid.uuid4().hex),
    )
    return signed, data


async def test_a_signed_request_is_served_as_its_retailer(service: Service) -> None:
    group = {"name": "signed", "meters": ["meter-1"]}
    headers, body = _signed(service, "POST", "/api/v1/groups", group)
    reply = await _send(service, "POST", "/api/v1/groups", headers, body)
    assert reply.status == 201, reply.body
    # the same group, seen through mutual TLS as retailer A
    seen = await service.call("retailer-a", "GET", "/api/v1/groups/signed")
    assert seen.body == {"name": "signed", "meters": ["meter-1"]}
    headers, _ = _signed(service, "GET", "/api/v1/groups")
    listed = await _send(service, "GET", "/api/v1/groups", headers)
    assert listed.body == {"groups": [group]}


async def test_bad_signatures_are_refused(service: Service) -> None:
    before = len(service.headend.records.groups)
    body = {"name": "x", "meters": ["meter-1"]}
    cases: list[tuple[str, dict[str, str], bytes, str]] = []
    cases.append(("none", {"Content-Type": "application/json"}, json.dumps(body).encode(), ""))
    headers, data = _signed(service, "POST", "/api/v1/groups", body, name="retailer-b")
    cases.append(("another key", headers, data, ""))  # B's key under A's key id
    headers, data = _signed(service, "POST", "/api/v1/groups", body)
    cases.append(("changed body", headers, data.replace(b'"x"', b'"y"'), ""))
    headers, data = _signed(service, "POST", "/api/v1/groups/other", body)
    cases.append(("other target", headers, data, ""))
    headers, data = _signed(service, "POST", "/api/v1/groups", body, key_id="retailer-z")
    cases.append(("unknown key id", headers, data, ""))
    for what, headers, data, _ in cases:
        reply = await _send(service, "POST", "/api/v1/groups", headers, data)
        assert reply.status == 401, what
        assert reply.body["error"]["field"] == "signature"
    assert len(service.headend.records.groups) == before

    # a replay of a good request is refused the second time
    headers, data = _signed(service, "POST", "/api/v1/groups", body, nonce="once")
    assert (await _send(service, "POST", "/api/v1/groups", headers, data)).status == 201
    replay = await _send(service, "POST", "/api/v1/groups", headers, data)
    assert replay.status == 401
    assert "replay" in replay.body["error"]["message"]


async def test_a_signed_body_over_the_limit_is_the_api_s_json_413(service: Service) -> None:
    """The signed listener reads the body to check its digest: one over aiohttp's 1 MiB
    (``client_max_size``) was aiohttp's own plain-text 413 there, not the API's JSON error
    (as on the mutual-TLS listener)."""
    group = {"name": "big", "meters": ["meter-1"], "pad": "x" * (1 << 20)}
    headers, data = _signed(service, "POST", "/api/v1/groups", group)
    reply = await _send(service, "POST", "/api/v1/groups", headers, data)
    assert reply.status == 413
    assert reply.headers["Content-Type"].startswith("application/json"), reply.body[:80]
    assert reply.body["error"]["status"] == 413
    assert "big" not in service.headend.records.groups


def _signed_by_hand(
    service: Service,
    method: str,
    path: str,
    covered: tuple[str, ...],
    *,
    created: datetime.datetime | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, str]:
    """Headers signed by the library itself, covering only ``covered`` (``created``: now)."""
    url = f"https://127.0.0.1:{service.signed_port}{path}"
    fields = dict(headers or {})

    class Key(hms.HTTPSignatureKeyResolver):
        def resolve_private_key(self, key_id: str) -> ec.EllipticCurvePrivateKey:
            return _key(service, "retailer-a")

    message = type("M", (), {"method": method, "url": url, "headers": fields})()
    signer = hms.HTTPMessageSigner(
        signature_algorithm=hms.algorithms.ECDSA_P256_SHA256, key_resolver=Key()
    )
    signer.sign(
        message,
        key_id="retailer-a",
        nonce=uuid.uuid4().hex,
        created=created or datetime.datetime.now(),
        covered_component_ids=covered,
    )
    return fields


async def test_a_stale_signature_is_refused(service: Service) -> None:
    created = datetime.datetime.now() - datetime.timedelta(hours=1)
    headers = _signed_by_hand(service, "GET", "/api/v1/meters", ("@method", "@target-uri"),
                              created=created)  # fmt: skip
    reply = await _send(service, "GET", "/api/v1/meters", headers)
    assert reply.status == 401


async def test_a_signature_that_does_not_cover_the_target_or_the_body_is_refused(
    service: Service,
) -> None:
    """ADR 0014: ``@method`` and ``@target-uri`` must be covered, and ``content-digest`` with a
    body; a good signature over less is refused (another target, any body could go with it)."""
    get = _signed_by_hand(service, "GET", "/api/v1/meters", ("@method",))
    assert (await _send(service, "GET", "/api/v1/meters", get)).status == 401
    body = json.dumps({"name": "uncovered", "meters": ["meter-1"]}).encode()
    post = _signed_by_hand(service, "POST", "/api/v1/groups", ("@method", "@target-uri"),
                           headers={"Content-Type": "application/json"})  # fmt: skip
    reply = await _send(service, "POST", "/api/v1/groups", post, body)
    assert reply.status == 401
    assert reply.body["error"]["field"] == "signature"
    assert "uncovered" not in service.headend.records.groups
