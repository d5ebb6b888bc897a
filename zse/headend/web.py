"""The retailer headend over HTTPS with mutual TLS (aiohttp): the API, its OpenAPI document and
the portal (docs/adr/0013).

The routes are declared once, as :class:`Route` values (:func:`api_routes` and the portal's);
the aiohttp router and the OpenAPI 3.1 document at ``/openapi.json`` are both built from them.
Every request passes three checks, in order:

1. the TLS handshake (Python's :mod:`ssl`, :func:`zse.headend.pki.server_context`): no client
   certificate, an expired one, one from another CA or a revoked one (with CRLs) never reaches
   the application;
2. the retailer: :func:`zse.headend.pki.identify` maps the verified certificate to a configured
   retailer, else 403; on the signed-request listener (no client certificate,
   :func:`zse.headend.pki.signed_context`) the request's RFC 9421 signature names it
   (:mod:`zse.headend.signatures`), else 401;
3. the retailer's rate limit (:class:`zse.headend.core.RateLimiter`), else 429 with
   ``Retry-After``.

Errors are JSON: ``{"error": {"status", "field", "message"}}`` (:class:`HeadendError`); any
other fault in a handler is a 500 of that shape with a generic message, its traceback logged.
A JSON body must say so (``Content-Type: application/json`` or a ``+json`` type): another, or
none, is a 415 (:func:`body_json`), and so is a devices CSV not sent as ``text/csv``; the
portal's forms post to the portal's own routes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from zse import __version__, jsontext
from zse.device_csv import DeviceCsvError, decode_lines
from zse.errors import InvalidJson, ZseError
from zse.headend.core import (
    DEVICE_TYPES,
    HeadendError,
    Outcome,
    RateLimiter,
    parse_send_id,
    shown,
)
from zse.headend.pki import Retailer, identify
from zse.headend.portal import STYLE_SOURCE, portal_routes
from zse.headend.routing import RETAILER, Handler, Route, retailer_of
from zse.headend.service import Headend
from zse.headend.signatures import RequestVerifier, SignedRequestError

__all__ = [
    "BODY_TIMEOUT",
    "IDLE_TIMEOUT",
    "SECURITY_HEADERS",
    "HeadendApp",
    "ListenError",
    "all_routes",
    "api_routes",
    "openapi",
    "serve",
]

LOGGER = logging.getLogger(__name__)

#: The message of a 500 (a fault in the server; its traceback is logged, its text not shown).
INTERNAL_ERROR = "internal error: the server failed to answer (its log says why)"
#: Set on a request whose streamed answer has begun (no error answer can follow it).
_STREAMING = web.RequestKey("streaming", bool)

#: Seconds a connection is kept without a whole request: idle between requests, or sending
#: its request line and headers (a client that dribbles them holds no connection longer;
#: aiohttp's own default is an hour). A request being answered (an event stream) is not cut.
IDLE_TIMEOUT = 75.0
#: Seconds a request's body may take to arrive once its headers have (a client that dribbles
#: it held its connection, and the handler waiting on it, for ever): then a 408 and the
#: connection closed. A megabyte (the largest body) at 20 kB/s arrives in time.
BODY_TIMEOUT = 60.0


class _BodyTimeout(TimeoutError):
    """Raised by a read of a request body that did not arrive within :data:`BODY_TIMEOUT`
    (a :class:`TimeoutError`: aiohttp's lingering read of the rest stops on it quietly)."""


def _security_headers() -> dict[str, str]:
    """The headers every answer carries (OWASP Secure Headers; CSP Level 3): nothing runs a
    script (the portal has none: an injected one is not run either), its one inline style
    by its hash, forms post only to this server, no page framed (clickjacking), no sniffing
    of JSON or text as HTML, no referrer (paths name devices), nothing cached (every answer
    holds a retailer's data), HTTPS only (RFC 6797), no other site's page may embed or open
    an answer (Cross-Origin-Resource-Policy, Cross-Origin-Opener-Policy), and no software
    versions named (Server)."""
    policy = (
        f"default-src 'none'; style-src {STYLE_SOURCE}; form-action 'self';"
        " frame-ancestors 'none'; base-uri 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "Strict-Transport-Security": "max-age=31536000",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Server": "zse",  # aiohttp's own names the Python and aiohttp versions
    }


#: The headers of :func:`_security_headers`, set on every answer (aiohttp's own errors too).
SECURITY_HEADERS = _security_headers()


class HeadendApp:
    """The aiohttp application over a :class:`~zse.headend.service.Headend`."""

    def __init__(
        self,
        headend: Headend,
        retailers: Sequence[Retailer],
        *,
        limiter: RateLimiter,
        routes: Sequence[Route] | None = None,
        clock: Callable[[], float] = time.time,
        hosts: Iterable[str] | None = None,
    ) -> None:
        self.headend = headend
        #: the names a signed request may be addressed to (None: any)
        self.hosts = None if hosts is None else frozenset(h.lower() for h in hosts)
        self.retailers = tuple(retailers)
        self.limiter = limiter
        self.verifier = RequestVerifier(self.retailers)
        self.clock = clock
        #: Requests that reached the application (past the TLS handshake).
        self.requests = 0
        self.routes = tuple(routes if routes is not None else all_routes())
        self.app = web.Application(middlewares=[self._middleware])
        self.app.on_response_prepare.append(_secure)
        for route in self.routes:
            handler = route.handler

            async def handle(request: web.Request, handler: Handler = handler) -> Any:
                return await handler(self, request)

            self.app.router.add_route(route.method, route.path, handle)

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.requests += 1
        expiry = None
        if request.body_exists and not request.content.is_eof():
            expiry = asyncio.get_running_loop().call_later(BODY_TIMEOUT, _expire, request)
        try:
            return await self._answer(request, handler)
        except _BodyTimeout:
            response = _error(HeadendError(408, f"the body did not come in {BODY_TIMEOUT:g} s"))
            response.force_close()
            return response
        except web.HTTPException:  # aiohttp's own, let through by _answer (not the API's)
            raise
        except Exception:  # a fault: the JSON error, without its text (it may hold a secret)
            LOGGER.exception("%s %s failed", request.method, request.path)
            if request.get(_STREAMING):  # its answer has begun: aiohttp closes it
                raise
            return _error(HeadendError(500, INTERNAL_ERROR))
        finally:
            if expiry is not None:
                expiry.cancel()

    async def _answer(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """The request's answer: who sent it, its rate limit, its handler; a
        :class:`HeadendError` (aiohttp's own errors under ``/api/``) as the JSON error."""
        try:
            retailer = await self._identify(request)
        except HeadendError as exc:
            return _error(exc)
        except web.HTTPException as exc:  # a signed body over client_max_size: 413
            return _api_error(request, exc)
        wait = self.limiter.take(retailer.id, asyncio.get_running_loop().time())
        if wait is not None:
            response = _error(HeadendError(429, f"rate limit: retry in {wait:.1f} s"))
            response.headers["Retry-After"] = str(max(1, round(wait + 0.5)))
            return response
        request[RETAILER] = retailer.id
        try:
            refused = cross_site(request)
            if refused is not None:
                raise HeadendError(403, refused)
            return await handler(request)
        except HeadendError as exc:
            return _error(exc)
        except web.HTTPException as exc:  # aiohttp's own: no route, a method, a body too big
            return _api_error(request, exc)

    async def _identify(self, request: web.Request) -> Retailer:
        """Who sent ``request``: its client certificate's retailer, or on the signed-request
        listener its signature's; :class:`HeadendError` 403 / 401 otherwise."""
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        der = (
            ssl_object.getpeercert(binary_form=True)
            if isinstance(ssl_object, ssl.SSLObject)
            else None
        )
        if der is not None:
            found = identify(der, self.retailers)
            if found is None:
                raise HeadendError(403, "the client certificate is not a retailer's")
            return found
        elsewhere = self._elsewhere(request)  # the signed-request listener: the signature says
        if elsewhere is not None:
            raise HeadendError(401, elsewhere, field="signature")
        try:
            signed = self.verifier.headers(  # before the body is read: unsigned, never read
                request.method,
                str(request.url),
                [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers],
                has_body=request.body_exists,
            )
            return self.verifier.finish(signed, await request.read(), now=self.clock())
        except SignedRequestError as exc:
            raise HeadendError(401, str(exc), field="signature") from None

    def _elsewhere(self, request: web.Request) -> str | None:
        """Why a signed request is not this server's (its ``@target-uri`` is built from the
        request's Host, which the client chooses: a request signed for another server with
        the same key must not be taken here), or None."""
        if self.hosts is None:
            return None
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        port = sockname[1] if isinstance(sockname, tuple) and len(sockname) >= 2 else None
        if (request.url.host or "").lower() not in self.hosts or (
            port is not None and request.url.port != port
        ):
            return "signature refused: the request is addressed to another server"
        return None

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI document of this application's API routes."""
        return openapi(self.routes)


#: The methods a cross-site request may not make (the others change nothing).
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def cross_site(request: web.Request) -> str | None:
    """Why a request that changes something is refused as another site's (a browser holding a
    retailer's certificate selects it for any page's forms: cross-site request forgery), or
    None. A browser says where a request comes from: ``Sec-Fetch-Site`` (Fetch Metadata)
    must be ``same-origin`` or ``none`` (typed by the user), ``Origin`` this server's own
    (``null``, which a sandboxed frame sends, only with ``Sec-Fetch-Site: same-origin``:
    Chromium's form posts under ``Referrer-Policy: no-referrer``). Clients that are not
    browsers send neither and are not concerned."""
    if request.method not in _UNSAFE:
        return None
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return f"a request from another site (Sec-Fetch-Site: {site[:20]})"
    origin = request.headers.get("Origin")
    own = f"{request.scheme}://{request.host}"
    if origin is not None and origin != own and not (origin == "null" and site == "same-origin"):
        return "a request from another site (Origin)"
    return None


def _api_error(request: web.Request, exc: web.HTTPException) -> web.StreamResponse:
    """aiohttp's own error ``exc`` (no route, a method, a body too big) under ``/api/`` as
    the API's JSON error; ``exc`` raised again elsewhere (the portal's, a redirect)."""
    if exc.status < 400 or not request.path.startswith("/api/"):
        raise exc
    response = _error(HeadendError(exc.status, exc.reason))
    if "Allow" in exc.headers:  # a 405 says which methods (RFC 9110 15.5.6)
        response.headers["Allow"] = exc.headers["Allow"]
    return response


def _expire(request: web.Request) -> None:
    """End the wait for ``request``'s body, if it is not all in (:data:`BODY_TIMEOUT`)."""
    if not request.content.is_eof():
        request.content.set_exception(_BodyTimeout())


async def _secure(request: web.Request, response: web.StreamResponse) -> None:
    """Give ``response`` the :data:`SECURITY_HEADERS` it does not set itself."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers["Server"] = SECURITY_HEADERS["Server"]  # aiohttp's is set before this


def _error(exc: HeadendError) -> web.Response:
    return web.json_response(exc.to_json(), status=exc.status)


#: The field a 415 names: the header that said what the body is.
_CONTENT_TYPE = "Content-Type"


def _json_media_type(media_type: str) -> bool:
    """Whether ``media_type`` (aiohttp's parse: lower case, no parameters) is JSON:
    ``application/json`` (RFC 8259 11) or a ``+json`` structured syntax suffix (RFC 6839 3.1)."""
    kind, _, subtype = media_type.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def _undeclared(
    request: web.Request, kind: str, send: str, accepts: Callable[[str], bool]
) -> str | None:
    """Why ``request``'s body is not declared ``kind`` (a media type ``accepts`` takes; the
    message says to ``send`` one), for a 415, or None."""
    if request.headers.get(_CONTENT_TYPE) is None:
        return f"the body has no Content-Type: send {send}"
    if not accepts(request.content_type):
        return f"Content-Type {shown(request.content_type)} is not {kind}: send {send}"
    return None


def _not_json(request: web.Request) -> str | None:
    """Why ``request``'s body is not declared JSON (for a 415), or None."""
    problem = _undeclared(request, "JSON", "application/json", _json_media_type)
    if problem is not None:
        return problem
    if (request.charset or "utf-8").lower() not in ("utf-8", "utf8"):
        return (
            f"charset {shown(request.charset)} is not UTF-8: send application/json in UTF-8"
            " (RFC 8259 8.1)"
        )
    return None


async def body_json(request: web.Request) -> object:
    """The request's JSON body (UTF-8, zse.jsontext's rules), or a 400 naming ``body``; a 415
    (RFC 9110 15.5.16) naming ``Content-Type`` when the body is not declared JSON (another
    media type, a charset other than UTF-8, or a body without a Content-Type), so that a
    form or a text posted to the API is refused as what it is; no body at all is the 400.
    The body is read first: its size and time bounds (413, 408) hold whatever it says it is."""
    body = await request.read()
    problem = _not_json(request) if body else None
    if problem is not None:
        raise HeadendError(415, problem, field=_CONTENT_TYPE)
    try:
        return jsontext.loads(body)
    except InvalidJson as exc:
        raise HeadendError(400, f"the request body is not JSON: {exc}", field="body") from None


def _query(request: web.Request, name: str) -> str | None:
    return request.query.get(name)


def _send_id(request: web.Request) -> int:
    return parse_send_id(request.match_info["id"])


# -- API handlers ------------------------------------------------------------------------------


async def _openapi(app: HeadendApp, request: web.Request) -> web.Response:
    return web.json_response(app.openapi())


async def _meters(app: HeadendApp, request: web.Request) -> web.Response:
    return web.json_response({"meters": list(app.headend.meter_ids)})


async def _devices(app: HeadendApp, request: web.Request) -> web.Response:
    devices = app.headend.devices(
        retailer_of(request),
        meter=_query(request, "meter"),
        group=_query(request, "group"),
        state=_query(request, "state"),
    )
    return web.json_response({"devices": devices})


async def _register(app: HeadendApp, request: web.Request) -> web.Response:
    view = await app.headend.register(retailer_of(request), await body_json(request))
    return web.json_response(view, status=201)


async def _import(app: HeadendApp, request: web.Request) -> web.Response:
    meter, device_type = _query(request, "meter"), _query(request, "device_type")
    if meter is None:
        raise HeadendError(422, "meter: missing", field="meter")
    if device_type is None:
        raise HeadendError(422, "device_type: missing", field="device_type")
    body = await request.read()  # first, as body_json: its bounds hold whatever it says
    problem = _undeclared(request, "CSV", "text/csv", "text/csv".__eq__) if body else None
    if problem is not None:  # a 415 as the JSON routes' (text/csv's parameters are taken)
        raise HeadendError(415, problem, field=_CONTENT_TYPE)
    try:  # as `zse installcode --csv` reads a file: UTF-8 whatever the charset says, a
        text = "".join(decode_lines([body]))  # byte-order mark (Excel's) dropped
    except DeviceCsvError as exc:
        raise HeadendError(422, f"csv: {exc}", field="csv") from None
    report = await app.headend.import_csv(
        retailer_of(request), text, meter=meter, device_type=device_type
    )
    return web.json_response(report)


async def _device(app: HeadendApp, request: web.Request) -> web.Response:
    return web.json_response(app.headend.device(retailer_of(request), request.match_info["mac"]))


async def _history(app: HeadendApp, request: web.Request) -> web.Response:
    entries = await app.headend.history(retailer_of(request), request.match_info["mac"])
    return web.json_response({"history": entries})


async def _deprovision(app: HeadendApp, request: web.Request) -> web.Response:
    view = await app.headend.deprovision(retailer_of(request), request.match_info["mac"])
    return web.json_response(view, status=202)


async def _groups(app: HeadendApp, request: web.Request) -> web.Response:
    return web.json_response({"groups": app.headend.groups(retailer_of(request))})


async def _put_group(app: HeadendApp, request: web.Request) -> web.Response:
    view = await app.headend.put_group(retailer_of(request), await body_json(request))
    return web.json_response(view, status=201)


async def _group(app: HeadendApp, request: web.Request) -> web.Response:
    return web.json_response(app.headend.group(retailer_of(request), request.match_info["name"]))


async def _delete_group(app: HeadendApp, request: web.Request) -> web.Response:
    await app.headend.delete_group(retailer_of(request), request.match_info["name"])
    return web.Response(status=204)


async def _send_message(app: HeadendApp, request: web.Request) -> web.Response:
    view = await app.headend.send_message(retailer_of(request), await body_json(request))
    return web.json_response(view, status=202)


async def _send_load_control(app: HeadendApp, request: web.Request) -> web.Response:
    view = await app.headend.send_load_control(retailer_of(request), await body_json(request))
    return web.json_response(view, status=202)


async def _sends(app: HeadendApp, request: web.Request) -> web.Response:
    return web.json_response({"sends": app.headend.sends(retailer_of(request))})


async def _send(app: HeadendApp, request: web.Request) -> web.Response:
    return web.json_response(app.headend.send(retailer_of(request), _send_id(request)))


async def _cancel(app: HeadendApp, request: web.Request) -> web.Response:
    view = await app.headend.cancel(retailer_of(request), _send_id(request))
    return web.json_response(view, status=202)


#: Seconds between the comments that keep an event stream's connection checked: a client gone
#: (aiohttp does not cancel a handler when its client leaves) is found at the next one.
HEARTBEAT = 15.0


async def _events(app: HeadendApp, request: web.Request) -> web.StreamResponse:
    """Server-sent events: each outcome of the send, then each change, then ``finished``; a
    comment every :data:`HEARTBEAT` seconds meanwhile, so that a stream whose client went away
    ends (it was kept, and logged an error at the send's next change, for every such client)."""
    retailer, send_id = retailer_of(request), _send_id(request)
    app.headend.send(retailer, send_id)  # a 404 before the stream starts
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    await response.prepare(request)
    request[_STREAMING] = True
    stream = aiter(app.headend.watch(retailer, send_id))
    nxt: asyncio.Task[dict[str, Any]] | None = None
    count = 0
    try:
        while True:
            nxt = nxt or asyncio.ensure_future(anext(stream))
            done, _ = await asyncio.wait({nxt}, timeout=HEARTBEAT)
            if not done:
                await response.write(b": waiting\n\n")
                continue
            task, nxt = nxt, None
            try:
                outcome = task.result()
            except StopAsyncIteration:
                break
            count += 1
            await response.write(_event(count, "outcome", outcome))
        view = app.headend.send(retailer, send_id)
        finished = {"id": send_id, "cancelled": view["cancelled"]}
        await response.write(_event(count + 1, "finished", finished))
        await response.write_eof()
    except ConnectionError:  # the client went away: nothing more to say to it
        pass
    finally:
        if nxt is not None:  # its generator is running in it: cancelled there, then closed
            nxt.cancel()
            await asyncio.gather(nxt, return_exceptions=True)
        await stream.aclose()  # type: ignore[attr-defined]
    return response


def _event(seq: int, name: str, data: object) -> bytes:
    return f"id: {seq}\nevent: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


# -- schemas -----------------------------------------------------------------------------------

_STR = {"type": "string"}
_INT = {"type": "integer"}
_REGISTER = {
    "type": "object",
    "required": ["mac", "install_code", "meter", "device_type"],
    "additionalProperties": False,
    "properties": {
        "mac": {**_STR, "description": "EUI-64, any printed form"},
        "install_code": {**_STR, "description": "install code with its CRC, any printed form"},
        "meter": _STR,
        "device_type": {"enum": list(DEVICE_TYPES)},
        "label": {**_STR, "maxLength": 64},
    },
}
_GROUP = {
    "type": "object",
    "required": ["name", "meters"],
    "additionalProperties": False,
    "properties": {"name": _STR, "meters": {"type": "array", "items": _STR}},
}
_MESSAGE = {
    "type": "object",
    "required": ["group", "text"],
    "additionalProperties": False,
    "properties": {
        "group": _STR,
        "text": {**_STR, "description": "at most 57 UTF-8 octets (SE D.5.2.3.1)"},
        "duration_minutes": {**_INT, "minimum": 1, "maximum": 65535},
        "importance": {**_INT, "minimum": 0, "maximum": 3},
        "confirmation_required": {"type": "boolean"},
    },
}
_LOAD_CONTROL = {
    "type": "object",
    "required": ["group"],
    "additionalProperties": False,
    "properties": {
        "group": _STR,
        "device_class": {**_INT, "minimum": 1, "maximum": 65535},
        "duration_minutes": {**_INT, "minimum": 1, "maximum": 1440},
        "criticality_level": {**_INT, "minimum": 1, "maximum": 15},
        "duty_cycle": {**_INT, "minimum": 0, "maximum": 100},
        "average_load_adjustment_percentage": {**_INT, "minimum": -100, "maximum": 100},
        "cooling_temperature_offset": {**_INT, "minimum": 0, "maximum": 254},
        "heating_temperature_offset": {**_INT, "minimum": 0, "maximum": 254},
        "start_delay_minutes": {**_INT, "minimum": 0, "maximum": 1440},
    },
}

#: The API's times: each time field ``X`` has ``X_iso`` beside it, the same instant in ISO 8601
#: UTC; ``X`` itself keeps the number it always was (ZigBee UTCTime or Unix time, as said).
_ZIGBEE_TIME = {
    **_INT,
    "description": "ZigBee UTCTime: seconds since 2000-01-01T00:00:00Z (not Unix time);"
    " {iso} is the same instant in ISO 8601",
}
_ISO = {**_STR, "format": "date-time", "description": "ISO 8601 UTC ({of})"}
_OUTCOME = {
    "type": "object",
    "properties": {
        "send": _INT,
        "mac": _STR,
        "meter": _STR,
        "outcome": {"type": "string", "enum": [outcome.value for outcome in Outcome]},
        "detail": _STR,
        "attempts": _INT,
        "updated": {
            **_ZIGBEE_TIME,
            "description": _ZIGBEE_TIME["description"].format(iso="updated_iso"),
        },
        "updated_iso": {**_ISO, "description": "when the outcome last changed, ISO 8601 UTC"},
    },
}
_SEND = {
    "type": "object",
    "properties": {
        "id": _INT,
        "kind": {"enum": ["message", "load-control"]},
        "group": _STR,
        "request": {"type": "object"},
        "created": {
            **_ZIGBEE_TIME,
            "description": _ZIGBEE_TIME["description"].format(iso="created_iso"),
        },
        "created_iso": {**_ISO, "description": "when the send was made, ISO 8601 UTC"},
        "cancelled": {"type": "boolean"},
        "finished": {"type": "boolean"},
        "outcomes": {"type": "array", "items": {"$ref": "#/components/schemas/Outcome"}},
    },
}
_HISTORY_ENTRY = {
    "type": "object",
    "properties": {
        "time": {
            "type": "number",
            "description": "Unix time: seconds since 1970-01-01T00:00:00Z (with fractions"
            " for meters in this process, whole seconds for meters as MQTT gateways), however"
            " the meters are served; time_iso is the same instant in ISO 8601",
        },
        "time_iso": {
            **_ISO,
            "type": ["string", "null"],
            "description": "when it happened, ISO 8601 UTC (null for a time no date can"
            " hold: one a gateway sent past ZigBee UTCTime's 32 bits before they were"
            " bounded)",
        },
        "event": _STR,
        "from_state": {"type": ["string", "null"]},
        "to_state": _STR,
        "detail": _STR,
    },
}
_SEND_REPLY = {"$ref": "#/components/schemas/Send"}
_SENDS_REPLY = {
    "type": "object",
    "properties": {"sends": {"type": "array", "items": _SEND_REPLY}},
}
_HISTORY_REPLY = {
    "type": "object",
    "properties": {
        "history": {"type": "array", "items": {"$ref": "#/components/schemas/HistoryEntry"}}
    },
}

_V1 = "/api/v1"


def api_routes() -> list[Route]:
    """The API's routes (the OpenAPI document lists exactly these)."""
    return [
        Route("GET", "/openapi.json", _openapi, "This document"),
        Route("GET", f"{_V1}/meters", _meters, "The meters devices can be registered on"),
        Route(
            "GET",
            f"{_V1}/devices",
            _devices,
            "List the retailer's devices, by meter, group or lifecycle state",
            query=("meter", "group", "state"),
        ),
        Route("POST", f"{_V1}/devices", _register, "Register a HAN device", _REGISTER, status=201),
        Route(
            "POST",
            f"{_V1}/devices/import",
            _import,
            "Register the devices of a devices CSV (as `zse installcode --csv` writes) on a meter",
            "text/csv",
            query=("meter", "device_type"),
        ),
        Route("GET", f"{_V1}/devices/{{mac}}", _device, "A device's status"),
        Route(
            "GET",
            f"{_V1}/devices/{{mac}}/history",
            _history,
            "A device's lifecycle history",
            reply=_HISTORY_REPLY,
        ),
        Route(
            "POST",
            f"{_V1}/devices/{{mac}}/deprovision",
            _deprovision,
            "De-provision a device",
            status=202,
        ),
        Route("GET", f"{_V1}/groups", _groups, "List the retailer's groups"),
        Route("POST", f"{_V1}/groups", _put_group, "Create or replace a group", _GROUP, status=201),
        Route("GET", f"{_V1}/groups/{{name}}", _group, "A group"),
        Route("DELETE", f"{_V1}/groups/{{name}}", _delete_group, "Delete a group", status=204),
        Route(
            "POST",
            f"{_V1}/sends/message",
            _send_message,
            "Send Display Message by Group",
            _MESSAGE,
            status=202,
            reply=_SEND_REPLY,
        ),
        Route(
            "POST",
            f"{_V1}/sends/load-control",
            _send_load_control,
            "Send Load Control Event by Group",
            _LOAD_CONTROL,
            status=202,
            reply=_SEND_REPLY,
        ),
        Route("GET", f"{_V1}/sends", _sends, "List the retailer's sends", reply=_SENDS_REPLY),
        Route(
            "GET",
            f"{_V1}/sends/{{id}}",
            _send,
            "A send and its per-device outcomes",
            reply=_SEND_REPLY,
        ),
        Route(
            "POST",
            f"{_V1}/sends/{{id}}/cancel",
            _cancel,
            "Cancel a send where it is still under way (409 if no device's copy is)",
            status=202,
            reply=_SEND_REPLY,
        ),
        Route(
            "GET",
            f"{_V1}/sends/{{id}}/events",
            _events,
            "Stream a send's per-device outcomes (server-sent events)",
        ),
    ]


def all_routes() -> list[Route]:
    """The API's routes and the portal's pages."""
    return [*api_routes(), *portal_routes()]


def openapi(routes: Sequence[Route]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API routes among ``routes``."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not route.api:
            continue
        operation: dict[str, Any] = {
            "summary": route.summary,
            "operationId": route.handler.__name__.strip("_"),
            "responses": {
                str(route.status): {"description": "success"}
                | (
                    {"content": {"application/json": {"schema": route.reply}}}
                    if route.reply is not None
                    else {}
                ),
                "4XX": {
                    "description": "refused: the JSON error names the field",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
                "5XX": {
                    "description": "a fault in the server: the JSON error, a generic message",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
            },
        }
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": _STR}
            for name in _path_names(route.path)
        ] + [
            {"name": name, "in": "query", "required": False, "schema": _STR} for name in route.query
        ]
        if parameters:
            operation["parameters"] = parameters
        if isinstance(route.body, dict):
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": route.body}},
            }
        elif isinstance(route.body, str):
            operation["requestBody"] = {"required": True, "content": {route.body: {"schema": _STR}}}
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "zse retailer HAN service",
            "version": __version__,
            "description": "Mutual TLS: the retailer's client certificate identifies it (this"
            " document too). Times: `created` and `updated` are ZigBee UTCTime (seconds since"
            " 2000-01-01 UTC); a history entry's `time` is Unix time (seconds since 1970-01-01"
            " UTC), however the meters are served; each has an ISO 8601 UTC twin, `X_iso`.",
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Send": _SEND,
                "Outcome": _OUTCOME,
                "HistoryEntry": _HISTORY_ENTRY,
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {
                            "type": "object",
                            "properties": {
                                "status": _INT,
                                "field": {"type": ["string", "null"]},
                                "message": _STR,
                            },
                        }
                    },
                },
            },
            "securitySchemes": {"mutualTLS": {"type": "mutualTLS"}},
        },
        "security": [{"mutualTLS": []}],
    }


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


class _ServerLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's server log: a request that is not HTTP (garbage, a line or header over
    aiohttp's limits: answered 400 by aiohttp) is the client's doing, one INFO line; any
    other error keeps its traceback at ERROR."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        if isinstance(exc_info, HttpProcessingError):
            where = args[0] if args else "?"
            self.info(
                "refused a request from %s that is not HTTP (%s)", where, type(exc_info).__name__
            )
            return
        super().exception(msg, *args, exc_info=exc_info, **kwargs)


class ListenError(ZseError, OSError):
    """A listener that could not start: the message names the address and port and says
    why (``cannot listen on 127.0.0.1:8443: address already in use``); ``errno`` is the
    system's."""


def _listen_error(host: str, port: int, exc: OSError) -> ListenError:
    if isinstance(exc, socket.gaierror):  # a resolver's error number is no errno
        why = exc.strerror or str(exc)
    else:  # asyncio's own strerror is a long sentence repeating the address
        why = os.strerror(exc.errno) if exc.errno else str(exc)
    where = f"[{host}]" if ":" in host else host
    error = ListenError(f"cannot listen on {where}:{port}: {why[:1].lower()}{why[1:]}")
    error.errno = exc.errno
    return error


async def serve(
    app: HeadendApp,
    context: ssl.SSLContext,
    *,
    host: str,
    port: int,
    signed: tuple[ssl.SSLContext, int] | None = None,
) -> tuple[web.AppRunner, list[int]]:
    """Serve ``app`` over mutual TLS on ``host:port`` (0: a free port) and, with ``signed``
    (a server-only TLS context and a port), signed requests on a second listener. Returns
    the runner (call ``cleanup()`` to stop) and the bound ports, mutual TLS first; a port
    that cannot be listened on (in use) is :class:`ListenError`, nothing left listening."""
    runner = web.AppRunner(
        app.app,
        access_log=None,
        handle_signals=False,
        keepalive_timeout=IDLE_TIMEOUT,
        logger=_ServerLog(logging.getLogger("aiohttp.server")),
    )
    await runner.setup()
    listeners = [(context, port)] + ([signed] if signed is not None else [])
    try:
        for tls, number in listeners:
            try:
                await web.TCPSite(runner, host, number, ssl_context=tls).start()
            except OSError as exc:
                raise _listen_error(host, number, exc) from exc
    except BaseException:
        await runner.cleanup()
        raise
    return runner, [int(address[1]) for address in runner.addresses]
