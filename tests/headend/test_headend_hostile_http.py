"""The headend's HTTPS surface against what an independent audit sent it: requests forged by
another site (a browser holding a retailer's certificate presents it to any page's forms),
forms that cannot be read, a signature made for another server, a replay just past the
signature's age, a CSV with a byte-order mark."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import uuid

import aiohttp
import pytest

from tests.headend.helpers import Reply, Service
from tests.headend.test_headend_signed import _key
from zse.headend.signatures import MAX_AGE, RequestVerifier, SignedRequestError, sign_request
from zse.headend.web import HEARTBEAT, IDLE_TIMEOUT
from zse.installcode import InstallCode
from zse.store import hold_virtual_clock

A = "retailer-a"
GROUP = {"name": "street", "meters": ["meter-1"]}


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},  # a sandboxed frame
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "https://evil.example"},
        {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
    ],
)
async def test_a_request_from_another_site_changes_nothing(
    service: Service, headers: dict[str, str]
) -> None:
    """A cross-site form (enctype text/plain) posting JSON to the API was served: 202 for a
    message or a load control event to a group, a de-provision, a cancel."""
    raw = json.dumps(GROUP).encode()
    form = {**headers, "Content-Type": "text/plain"}
    reply = await service.call(A, "POST", "/api/v1/groups", raw=raw, headers=form)
    assert reply.status == 403, reply.body
    assert "another site" in reply.body["error"]["message"]
    assert (await service.call(A, "GET", "/api/v1/groups")).body == {"groups": []}
    portal = await service.call(A, "POST", "/groups", form={"name": "x"}, headers=headers)
    assert portal.status == 403
    # reading is not refused: a cross-site GET changes nothing (and its answer is not readable)
    assert (await service.call(A, "GET", "/api/v1/groups", headers=headers)).status == 200


async def test_requests_of_this_site_and_of_clients_that_are_not_browsers_are_served(
    service: Service,
) -> None:
    own = service.base
    for headers in (
        {},  # curl, a script
        {"Origin": own, "Sec-Fetch-Site": "same-origin"},
        {"Origin": "null", "Sec-Fetch-Site": "same-origin"},  # Referrer-Policy: no-referrer
        {"Sec-Fetch-Site": "none"},  # typed by the user
    ):
        name = f"g{len(headers)}{uuid.uuid4().hex[:6]}"
        group = {"name": name, "meters": ["meter-1"]}
        reply = await service.call(A, "POST", "/api/v1/groups", group, headers=headers)
        assert reply.status == 201, (headers, reply.body)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"mac=%FF%FE&meter=\xff"),
        ("application/x-www-form-urlencoded; charset=x-nope", b"mac=1"),
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data\r\n\r\nzz"),
        ("multipart/form-data", b"abc"),
    ],
)
async def test_a_form_that_cannot_be_read_is_a_400(
    service: Service, content_type: str, body: bytes
) -> None:
    """Each was a 500 with a traceback in the log."""
    reply = await service.call(
        A, "POST", "/provision", raw=body, headers={"Content-Type": content_type}
    )
    assert reply.status == 400, reply.body
    assert reply.body["error"]["field"] == "form"


async def _signed_send(service: Service, host: str, path: str, body: bytes) -> Reply:
    """A request signed for ``https://{host}{path}``, sent to the signed listener with that
    Host."""
    headers = sign_request(
        "POST",
        f"https://{host}{path}",
        {"Content-Type": "application/json"},
        body,
        key_id=A,
        key=_key(service, A),
        nonce=uuid.uuid4().hex,
    )
    context = ssl.create_default_context(cafile=service.directory / "ca.pem")
    url = f"https://127.0.0.1:{service.signed_port}{path}"
    with hold_virtual_clock():
        connector = aiohttp.TCPConnector(ssl=context, force_close=True)
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.post(url, headers={**headers, "Host": host}, data=body) as response,
        ):
            return Reply(response.status, json.loads(await response.read()), {})


async def test_a_signature_made_for_another_server_is_refused(service: Service) -> None:
    """@target-uri is built from the Host the client sends: a request signed for a staging
    server (or another service with the same key) was served here."""
    body = json.dumps(GROUP).encode()
    reply = await _signed_send(service, "other.example", "/api/v1/groups", body)
    assert reply.status == 401
    assert "addressed to another server" in reply.body["error"]["message"]
    wrong_port = f"127.0.0.1:{service.signed_port + 1}"
    assert (await _signed_send(service, wrong_port, "/api/v1/groups", body)).status == 401
    here = f"127.0.0.1:{service.signed_port}"
    assert (await _signed_send(service, here, "/api/v1/groups", body)).status == 201


def test_a_nonce_outlives_the_signature_it_came_with(service: Service) -> None:
    """A nonce was forgotten MAX_AGE after its first use while the library still accepts the
    signature for a few seconds more (its allowance for clocks): a replay in between was
    taken."""
    verifier = RequestVerifier(service.config.retailers)
    url = "https://127.0.0.1/api/v1/groups"
    headers = sign_request("GET", url, {}, b"", key_id=A, key=_key(service, A), nonce="n1")
    assert verifier.verify("GET", url, headers.items(), b"", now=1000.0).id == A
    with pytest.raises(SignedRequestError, match="replay"):
        verifier.verify("GET", url, headers.items(), b"", now=1000.0 + MAX_AGE + 1)


async def test_a_csv_with_a_byte_order_mark_is_read(service: Service) -> None:
    """Excel writes one; the import refused the file ("unknown column '\\ufeffeui64'")."""
    device = next(d for d in service.sims.devices if d.meter == "meter-2")
    text = f"\ufeffeui64,install_code\n{device.mac},{device.install_code}\n"
    path = "/api/v1/devices/import?meter=meter-2&device_type=in-home%20display"
    csv = {"Content-Type": "text/csv"}
    reply = await service.call(A, "POST", path, raw=text.encode(), headers=csv)
    assert reply.status == 200, reply.body
    assert reply.body["errors"] == []
    assert len(reply.body["registered"]) == 1


async def test_api_errors_are_json_and_ids_and_labels_are_what_they_look_like(
    service: Service,
) -> None:
    """aiohttp's own 404, 405 and 413 were text/plain; ``int()`` read "+1", "1_0" and an
    Arabic-Indic digit as send ids; the API took a label with a NUL that the CSV import
    refuses."""
    missing = await service.call(A, "GET", "/api/v1/nothing")
    assert (missing.status, missing.body["error"]["status"]) == (404, 404)
    wrong = await service.call(A, "PUT", "/api/v1/devices", {})
    assert (wrong.status, wrong.body["error"]["status"]) == (405, 405)
    assert "GET" in wrong.headers["Allow"]
    big = await service.call(A, "POST", "/api/v1/groups", raw=b"x" * (1 << 20 + 1))
    assert (big.status, big.body["error"]["status"]) == (413, 413)
    for text in ("+1", "1_0", "\u0661", "%201"):
        reply = await service.call(A, "GET", f"/api/v1/sends/{text}")
        assert (reply.status, reply.body["error"]["field"]) == (404, "id"), text
    device = next(d for d in service.sims.devices if d.meter == "meter-1")
    body = {
        "mac": device.mac,
        "install_code": device.install_code,
        "meter": "meter-1",
        "device_type": device.device_type,
        "label": "hall\u0000",
    }
    reply = await service.call(A, "POST", "/api/v1/devices", body)
    assert (reply.status, reply.body["error"]["field"]) == (422, "label")


async def test_an_event_stream_whose_client_left_ends(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    """Thirty clients that opened a send's event stream and went away were kept as long as
    the send (for ever if it never finishes), each an error in the log at its next change."""
    from tests.headend.helpers import client_context  # noqa: PLC0415

    await service.call(A, "POST", "/api/v1/groups", GROUP)
    # a device that never joins (no such device on the air): the send never finishes
    code = InstallCode.from_data(bytes(range(16)))
    body = {"mac": "00:0d:6f:00:0b:01:ff:01", "install_code": str(code), "meter": "meter-1"}
    body["device_type"] = "in-home display"
    assert (await service.call(A, "POST", "/api/v1/devices", body)).status == 201
    send = await service.call(A, "POST", "/api/v1/sends/message", {"group": "street", "text": "x"})
    assert send.status == 202
    url = f"{service.base}/api/v1/sends/{send.body['id']}/events"
    with hold_virtual_clock():
        for _ in range(5):
            context = client_context(service.directory, A)
            connector = aiohttp.TCPConnector(ssl=context, force_close=True)
            async with aiohttp.ClientSession(connector=connector) as session:
                response = await session.get(url)
                assert response.status == 200
                response.close()  # the client goes away without reading
    watchers = service.headend._watchers
    for _ in range(100):  # real turns for the server to see the requests, then virtual time
        await asyncio.sleep(0)
    await asyncio.sleep(HEARTBEAT * 2)
    assert sum(len(queues) for queues in watchers.values()) == 0
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []  # quietly: no "Error handling request" for a client that left


def _raw_exchange(service: Service, request: bytes) -> bytes:
    """Send ``request`` as is over TLS to the signed listener and read what comes back until
    the server closes or 10 real seconds pass (a blocking socket, off the loop)."""
    import socket  # noqa: PLC0415

    context = ssl.create_default_context(cafile=service.directory / "ca.pem")
    with (
        socket.create_connection(("127.0.0.1", service.signed_port), timeout=10) as plain,
        context.wrap_socket(plain, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(request)
        received = b""
        try:
            while chunk := tls.recv(65536):
                received += chunk
                if b"\r\n\r\n" in received and b'"error"' in received:
                    break
        except TimeoutError:
            pass
        return received


async def test_an_unsigned_request_is_refused_before_its_body_is_read(service: Service) -> None:
    """The signed listener read a request's whole body (up to 1 MiB) before looking at its
    signature: anyone could make it read and hold a megabyte a connection. Here the body
    announced never comes: the answer does, at once."""
    host = f"127.0.0.1:{service.signed_port}".encode()
    request = (
        b"POST /api/v1/groups HTTP/1.1\r\nHost: " + host + b"\r\n"
        b'Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{"name":'
    )
    with hold_virtual_clock():
        answer = await asyncio.to_thread(_raw_exchange, service, request)
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:80]
    assert b"signature refused: " in answer
    assert b"another server" not in answer  # refused for its signature, not its Host


async def test_a_request_that_is_not_http_is_one_info_line(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    """A request line over aiohttp's limit (or any garbage) on a listener open to anyone was
    logged at ERROR with a traceback each time."""
    caplog.set_level(logging.INFO)
    with hold_virtual_clock():
        answer = await asyncio.to_thread(
            _raw_exchange, service, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n"
        )
    assert answer.split(b"\r\n")[0].endswith(b" 400 Bad Request"), answer[:80]
    server = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert [(r.levelno, r.getMessage()) for r in server] == [
        (logging.INFO, "refused a request from 127.0.0.1 that is not HTTP (LineTooLong)")
    ]
    assert all(r.exc_info is None for r in server)


async def test_a_duplicate_content_type_is_a_400_without_a_traceback(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    """Two Content-Type headers (aiohttp's parser refuses them: BadHttpMessage) were logged
    with a traceback; now one INFO line. The answer is aiohttp's own 400: the request never
    reached the API (its JSON errors are for requests it reads)."""
    caplog.set_level(logging.INFO)
    request = (
        b"POST /api/v1/groups HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Type: text/plain\r\n"
        b"Content-Length: 2\r\n\r\n{}"
    )
    with hold_virtual_clock():
        answer = await asyncio.to_thread(_raw_exchange, service, request)
    assert answer.split(b"\r\n")[0].endswith(b" 400 Bad Request"), answer[:80]
    server = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert [(r.levelno, r.getMessage()) for r in server] == [
        (logging.INFO, "refused a request from 127.0.0.1 that is not HTTP (BadHttpMessage)")
    ]
    assert all(r.exc_info is None for r in caplog.records)


async def test_a_connection_without_a_whole_request_is_closed(service: Service) -> None:
    """A client that opens a connection and dribbles its request line (or says nothing) held
    it for aiohttp's default hour; it is closed after IDLE_TIMEOUT."""
    context = ssl.create_default_context(cafile=service.directory / "ca.pem")
    loop = asyncio.get_running_loop()
    with hold_virtual_clock():
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", service.signed_port, ssl=context, server_hostname="127.0.0.1"
        )
        writer.write(b"GET /api/v1/gro")
        await writer.drain()
    opened = loop.time()
    assert await reader.read() == b""  # closed by the server, in virtual time
    assert IDLE_TIMEOUT <= loop.time() - opened <= IDLE_TIMEOUT + 1
    writer.close()


@pytest.mark.parametrize("separator", ["\u2028", "\x0c", "\x85", "\x1e"])
async def test_a_csv_label_with_a_line_separator_is_refused_on_its_own_line(
    service: Service, separator: str
) -> None:
    """The import split the text with ``str.splitlines``, which also ends a line at U+2028,
    a form feed, NEL and the ASCII separators: a quoted label holding one lost it (registered
    as "kitchen", where ``zse installcode --csv`` refuses it), and the rows after it were
    reported a line too far."""
    first, second = [d for d in service.sims.devices if d.meter == "meter-1"][:2]
    text = (
        "eui64,install_code,label\n"
        f'{first.mac},{first.install_code},"kit{separator}chen"\n'
        f"{second.mac},{second.install_code},x\n"
        "00:0d:6f:00:0a:ff:ff:ff,not-a-code,y\n"
    )
    path = "/api/v1/devices/import?meter=meter-1&device_type=in-home%20display"
    csv = {"Content-Type": "text/csv"}
    reply = await service.call(A, "POST", path, raw=text.encode(), headers=csv)
    assert reply.status == 200, reply.body
    assert [error["line"] for error in reply.body["errors"]] == [2, 4]
    assert "label has" in reply.body["errors"][0]["error"]
    assert len(reply.body["registered"]) == 1
