"""The headend's web side as a web attacker sees it, without a browser: the headers every
answer carries (a page, the API's JSON, an error of the API's or aiohttp's own, an event
stream) and a request whose body never comes. The browser's side (what Chromium runs,
frames and posts across sites) is ``test_headend_web_review_browser.py``."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.headend.helpers import Service, client_context, registration
from zse.headend.web import BODY_TIMEOUT
from zse.store import hold_virtual_clock

A = "retailer-a"


@pytest.mark.parametrize(
    ("method", "path", "status", "kind"),
    [
        ("GET", "/", 200, "text/html"),
        ("GET", "/send", 200, "text/html"),
        ("GET", "/api/v1/devices", 200, "application/json"),
        ("GET", "/openapi.json", 200, "application/json"),
        ("GET", "/api/v1/devices/0011223344556677", 404, "application/json"),
        ("POST", "/api/v1/groups", 400, "application/json"),
        ("GET", "/devices/0011223344556677", 404, "text/plain"),  # aiohttp's own
        ("TRACE", "/", 405, "text/plain"),
        ("GET", "/static/../../etc/passwd", 404, "text/plain"),
    ],
)
async def test_every_answer_carries_the_browser_security_headers(
    service: Service, method: str, path: str, status: int, kind: str
) -> None:
    """No answer had a Content-Security-Policy, X-Frame-Options (any site could frame the
    portal under its own page and have the retailer click: clickjacking), nosniff,
    Referrer-Policy, Cache-Control (pages of devices and sends kept in the browser's cache)
    or Strict-Transport-Security."""
    reply = await service.call(A, method, path)
    assert (reply.status, reply.headers["Content-Type"].split(";")[0]) == (status, kind)
    policy = {
        part.split()[0]: part.split()[1:]
        for part in reply.headers["Content-Security-Policy"].split(";")
    }
    assert policy["default-src"] == ["'none'"]
    assert "script-src" not in policy  # no script at all: default-src 'none'
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert [s.startswith("'sha256-") for s in policy["style-src"]] == [True]
    assert reply.headers["X-Frame-Options"] == "DENY"
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["Referrer-Policy"] == "no-referrer"
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.headers["Strict-Transport-Security"].startswith("max-age=")
    assert reply.headers["Cross-Origin-Resource-Policy"] == "same-origin"
    assert "Access-Control-Allow-Origin" not in reply.headers
    assert reply.headers["Server"] == "zse"  # not the Python and aiohttp versions


async def test_an_event_stream_carries_them_too(service: Service) -> None:
    await service.call(A, "POST", "/api/v1/groups", {"name": "street", "meters": ["meter-1"]})
    send = await service.call(A, "POST", "/api/v1/sends/message", {"group": "street", "text": "x"})
    assert send.status == 202, send.body
    reply = await service.call(A, "GET", f"/api/v1/sends/{send.body['id']}/events")
    assert reply.headers["Content-Type"] == "text/event-stream"
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in reply.headers["Content-Security-Policy"]


async def _dribble(service: Service, request: bytes) -> tuple[bytes, float]:
    """Send a request's headers and the start of its body with retailer A's certificate,
    then nothing: what the server answers and the virtual seconds until it closes."""
    context = client_context(service.directory, A)
    loop = asyncio.get_running_loop()
    with hold_virtual_clock():
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", service.port, ssl=context, server_hostname="127.0.0.1"
        )
        writer.write(request)
        await writer.drain()
    opened = loop.time()
    try:
        async with asyncio.timeout(BODY_TIMEOUT * 10):
            answer = await reader.read()
    finally:
        writer.close()
    return answer, loop.time() - opened


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/api/v1/groups", "application/json"),
        ("/groups", "application/x-www-form-urlencoded"),  # the portal's form
        ("/api/v1/devices/import?meter=meter-1&device_type=range%20extender", "text/csv"),
    ],
)
async def test_a_body_that_never_comes_is_a_408_and_the_connection_closed(
    service: Service, path: str, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A retailer's client that announced a body and dribbled it (slowloris on the body)
    held its connection and the handler waiting on it for ever (an hour here: no answer)."""
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {kind}\r\n"
        "Content-Length: 100000\r\n\r\nname"
    ).encode()
    answer, took = await _dribble(service, request)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
    assert b'"status":408' in answer.replace(b" ", b"")
    assert BODY_TIMEOUT <= took <= BODY_TIMEOUT + 1
    groups = await service.call(A, "GET", "/api/v1/groups")
    assert groups.body == {"groups": []}
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.mark.parametrize(
    ("label", "named"),
    [
        ("hall\u200b", "an invisible format character U+200B ZERO WIDTH SPACE at position 5"),
        (
            "\u202eexe.txt",
            "an invisible format character U+202E RIGHT-TO-LEFT OVERRIDE at position 1",
        ),
        ("ki\u2066tchen", "U+2066 LEFT-TO-RIGHT ISOLATE at position 3"),
        ("hall\x1b[2J", "a control character U+001B at position 5"),
        ("x\u00a0y", "a space other than the plain one U+00A0 NO-BREAK SPACE at position 2"),
    ],
)
async def test_a_label_refused_names_the_character(
    service: Service, label: str, named: str
) -> None:
    """A zero-width space got the generic "has a control character", and a bidi override or
    a control character was refused without saying which: the label looks fine on screen."""
    device = service.sims.devices[0]
    body = {**registration(device), "label": label}
    reply = await service.call(A, "POST", "/api/v1/devices", body)
    assert (reply.status, reply.body["error"]["field"]) == (422, "label"), reply.body
    assert reply.body["error"]["message"].endswith(named)
    assert device.install_code not in reply.body["error"]["message"]
    portal = await service.call(
        A, "POST", "/provision", form={k: v for k, v in body.items() if k != "install_code"}
    )
    assert portal.status == 200
    assert named in portal.body
