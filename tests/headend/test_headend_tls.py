"""Mutual TLS on a real socket: a retailer's certificate is served; no certificate, an expired
one and one from another CA are refused in the TLS handshake (the server's alert says why); a
verified certificate that names no retailer gets 403; retailer A cannot see or touch B's
devices (404: nothing of them is shown), and registering a MAC B holds is refused 409 as if A
held it (a refusal cannot hide that it is taken); curl with --cert works as the README shows."""

from __future__ import annotations

import asyncio
import datetime
import shutil
import socket
import ssl
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tests.headend.helpers import Service, client_context
from zse.headend.pki import issue, new_ca, write_key
from zse.store import hold_virtual_clock


def _load_ca(directory: Path) -> tuple[object, object]:
    from cryptography import x509  # noqa: PLC0415

    cert = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
    key = serialization.load_pem_private_key((directory / "ca-key.pem").read_bytes(), None)
    return cert, key


def _context_for(directory: Path, name: str, pair: tuple[object, object]) -> ssl.SSLContext:
    cert, key = pair
    (directory / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))  # type: ignore[attr-defined]
    write_key(directory / f"{name}-key.pem", key)  # type: ignore[arg-type]
    return client_context(directory, name)


def _blocking_request(port: int, context: ssl.SSLContext) -> bytes:
    """GET /api/v1/devices over Python's ssl client; the reply, or the TLS error it raises
    (with TLS 1.3 the server's alert arrives on the first read)."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"GET /api/v1/devices HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        chunks = []
        while chunk := tls.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


async def _raw_request(service: Service, context: ssl.SSLContext) -> bytes:
    """The request in a thread (the virtual clock waits for it), the server on this loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, _blocking_request, service.port, context)


async def test_a_retailer_certificate_is_served(service: Service) -> None:
    reply = await service.call("retailer-a", "GET", "/api/v1/devices")
    assert reply.status == 200
    assert reply.body == {"devices": []}
    raw = await _raw_request(service, client_context(service.directory, "retailer-b"))
    assert raw.startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("case", ["none", "expired", "other-ca"])
async def test_bad_client_certificates_are_refused_in_the_handshake(
    service: Service, case: str
) -> None:
    directory = service.directory
    if case == "none":
        context = client_context(directory, None)
    elif case == "expired":
        past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=30)
        pair = issue(
            _load_ca(directory),  # type: ignore[arg-type]
            "retailer-a",
            not_before=past,
            not_after=past + datetime.timedelta(days=1),
        )
        context = _context_for(directory, "expired", pair)
    else:
        pair = issue(new_ca("another CA"), "retailer-a")
        context = _context_for(directory, "stranger", pair)
    before = service.app.requests
    # asyncio's TLS server closes the connection when the handshake fails (without flushing
    # its alert): the client reads no HTTP at all, and the application saw no request
    try:
        reply = await _raw_request(service, context)
    except (ssl.SSLError, ConnectionResetError):
        reply = b""
    assert reply == b""
    assert service.app.requests == before
    good = await _raw_request(service, client_context(directory, "retailer-a"))
    assert good.startswith(b"HTTP/1.1 200")
    assert service.app.requests == before + 1


async def test_a_verified_certificate_of_no_retailer_is_forbidden(service: Service) -> None:
    pair = issue(_load_ca(service.directory), "retailer-z")  # type: ignore[arg-type]
    reply = await service.call(_context_for(service.directory, "z", pair), "GET", "/api/v1/devices")
    assert reply.status == 403
    assert reply.body["error"]["status"] == 403


async def test_a_retailer_sees_and_touches_only_its_own(service: Service) -> None:
    device = service.sims.devices[0]
    body = {
        "mac": device.mac,
        "install_code": device.install_code,
        "meter": device.meter,
        "device_type": device.device_type,
    }
    assert (await service.call("retailer-a", "POST", "/api/v1/devices", body)).status == 201
    group = {"name": "north", "meters": ["meter-1"]}
    assert (await service.call("retailer-a", "POST", "/api/v1/groups", group)).status == 201
    send = await service.call(
        "retailer-a", "POST", "/api/v1/sends/message", {"group": "north", "text": "hi"}
    )
    assert send.status == 202
    mac = device.mac
    b = "retailer-b"
    for method, path in (
        ("GET", f"/api/v1/devices/{mac}"),
        ("GET", f"/api/v1/devices/{mac}/history"),
        ("POST", f"/api/v1/devices/{mac}/deprovision"),
        ("GET", "/api/v1/groups/north"),
        ("DELETE", "/api/v1/groups/north"),
        ("GET", f"/api/v1/sends/{send.body['id']}"),
        ("POST", f"/api/v1/sends/{send.body['id']}/cancel"),
        ("GET", f"/api/v1/sends/{send.body['id']}/events"),
        ("GET", f"/devices/{mac}"),
        ("GET", f"/sends/{send.body['id']}"),
    ):
        reply = await service.call(b, method, path)
        assert reply.status == 404, (method, path, reply.status)
    assert (await service.call(b, "GET", "/api/v1/devices")).body == {"devices": []}
    assert (await service.call(b, "GET", "/api/v1/sends")).body == {"sends": []}
    # B may not register A's device elsewhere either: it is provisioned
    taken = await service.call(b, "POST", "/api/v1/devices", {**body, "meter": "meter-2"})
    assert taken.status == 409
    assert taken.body["error"]["field"] == "mac"
    # A still has everything
    assert (await service.call("retailer-a", "GET", f"/api/v1/devices/{mac}")).status == 200


async def test_a_taken_mac_is_refused_alike_whoever_holds_it(service: Service) -> None:
    """The docs said another retailer's registration of a MAC already provisioned got 404 "so
    ids do not leak"; it gets 409 (a refusal cannot hide that the MAC is taken), the very
    answer its holder gets, naming neither the retailer nor the meter."""
    device = service.sims.devices[0]
    body = {
        "mac": device.mac,
        "install_code": device.install_code,
        "meter": device.meter,
        "device_type": device.device_type,
    }
    assert (await service.call("retailer-a", "POST", "/api/v1/devices", body)).status == 201
    mine = await service.call("retailer-a", "POST", "/api/v1/devices", body)
    other = {**body, "meter": "meter-2" if device.meter == "meter-1" else "meter-1"}
    theirs = await service.call("retailer-b", "POST", "/api/v1/devices", other)
    assert mine.status == theirs.status == 409
    assert mine.body == theirs.body
    assert theirs.body["error"]["field"] == "mac"
    message = theirs.body["error"]["message"]
    assert "already provisioned" in message
    assert "retailer" not in message
    assert device.meter not in message


@pytest.mark.skipif(shutil.which("curl") is None, reason="the system curl is not installed")
async def test_curl_with_a_client_certificate(service: Service) -> None:
    directory = service.directory
    command = [
        "curl", "--silent", "--show-error", "--cacert", str(directory / "ca.pem"),
        "--cert", str(directory / "retailer-a.pem"), "--key", str(directory / "retailer-a-key.pem"),
        f"{service.base}/api/v1/meters",
    ]  # fmt: skip
    with hold_virtual_clock():
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await process.communicate()
    assert process.returncode == 0, err
    assert out == b'{"meters": ["meter-1", "meter-2"]}'
    without = [c for c in command if c not in ("--cert", "--key") and "retailer-a" not in c]
    with hold_virtual_clock():
        process = await asyncio.create_subprocess_exec(
            *without, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, _ = await process.communicate()
    assert process.returncode != 0
    assert out == b""
