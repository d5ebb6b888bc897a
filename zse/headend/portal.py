"""The retailer portal: small server-rendered HTML pages over the same operations and the same
mutual-TLS identity as the API (no JavaScript, no build step).

The screens of the utility guide: **HAN main** (``/``, the retailer's devices by state),
**HAN provisioning** (``/provision``: meter, device type, MAC address, label), **enter HAN
security credentials** (``/credentials``: the install code), **one view per lifecycle state**
(``/state/{state}``), a device's status with its history (``/devices/{mac}``), **groups**,
**send message / load control** forms (``/send``) and a send's per-device **outcomes**
(``/sends/{id}``, refreshed while it runs). Forms post back to the portal, which answers with
a redirect (303) or the page again with the error next to the field. A form posted from another
site is refused (403) with every request that changes something
(:func:`zse.headend.web.cross_site`).
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from zse.headend.core import DEVICE_TYPES, HeadendError, check_device, parse_send_id
from zse.headend.routing import Route, Served, retailer_of
from zse.provisioning.lifecycle import LifecycleState

__all__ = ["STYLE_SOURCE", "portal_routes"]

_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem}"
    "table{border-collapse:collapse}td,th{border:1px solid #888;padding:.25rem .5rem;"
    "text-align:left}label{display:block;margin:.5rem 0 .1rem}.error{color:#a00}"
    "nav a{margin-right:1rem}"
)
#: The pages' one inline style as a Content-Security-Policy source (its hash, CSP Level 3
#: 8.4): no other inline style (an injected one) applies.
STYLE_SOURCE = f"'sha256-{base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()}'"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _state_slug(state: LifecycleState) -> str:
    return state.value.replace(" ", "-")


def _page(title: str, body: str, *, retailer: str, refresh: bool = False) -> web.Response:
    states = "".join(
        f'<a href="/state/{_state_slug(s)}">{_e(s.value.capitalize())}</a>' for s in LifecycleState
    )
    meta = '<meta http-equiv="refresh" content="2">' if refresh else ""
    text = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{meta}<title>{_e(title)} - HAN service</title><style>{_CSS}</style></head><body>"
        f'<header><p>Signed in by certificate as <strong id="retailer">{_e(retailer)}</strong></p>'
        '<nav aria-label="Main"><a href="/">HAN main</a><a href="/provision">HAN provisioning</a>'
        '<a href="/groups">Groups</a><a href="/send">Send</a></nav>'
        f'<nav aria-label="Lifecycle states">{states}</nav></header>'
        f"<main><h1>{_e(title)}</h1>{body}</main></body></html>"
    )
    return web.Response(text=text, content_type="text/html")


def _table(headers: Iterable[str], rows: Iterable[Iterable[str]], *, caption: str) -> str:
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return (
        f"<table><caption>{_e(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _device_rows(devices: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            f'<a href="/devices/{_e(d["mac"])}">{_e(d["mac"])}</a>',
            _e(d["label"]),
            _e(d["device_type"]),
            _e(d["meter"]),
            _e(d["state"]),
            _e(", ".join(d["groups"])),
        ]
        for d in devices
    ]


_DEVICE_HEADERS = ("MAC address", "Label", "Type", "Meter", "State", "Groups")


def _field(
    name: str,
    label: str,
    value: str = "",
    *,
    errors: dict[str, str],
    kind: str = "text",
    extra: str = "",
) -> str:
    error = errors.get(name)
    described = f' aria-describedby="{name}-error" aria-invalid="true"' if error else ""
    note = f'<p class="error" id="{name}-error">{_e(error)}</p>' if error else ""
    return (
        f'<label for="{name}">{_e(label)}</label>'
        f'<input id="{name}" name="{name}" type="{kind}" value="{_e(value)}"{described}{extra}>'
        f"{note}"
    )


def _select(name: str, label: str, options: Iterable[str], chosen: str = "") -> str:
    items = "".join(
        f'<option value="{_e(o)}"{" selected" if o == chosen else ""}>{_e(o)}</option>'
        for o in options
    )
    return (
        f'<label for="{name}">{_e(label)}</label><select id="{name}" name="{name}">{items}</select>'
    )


def _errors(exc: HeadendError) -> dict[str, str]:
    return {exc.field or "form": exc.message}


def _form_error(errors: dict[str, str], beside: Iterable[str] = ()) -> str:
    """The errors not shown beside a field of the form (``beside``): the form's own, and any
    about a field the page has no input with an error for (a meter, a group), which were
    otherwise lost: the page came back with nothing said."""
    shown = set(beside)
    said = [message for field, message in errors.items() if field not in shown]
    return "".join(f'<p class="error" role="alert">{_e(message)}</p>' for message in said)


async def _posted(request: web.Request) -> Any:
    """The form posted, or a 400 naming ``form`` if it cannot be read (bytes that are not
    UTF-8, a charset Python lacks, a multipart body without its boundary or names)."""
    try:
        return await request.post()
    except (ValueError, LookupError, AssertionError):  # UnicodeDecodeError is a ValueError
        raise HeadendError(400, "the form could not be read", field="form") from None


def _retailer(request: web.Request) -> str:
    return retailer_of(request)


# -- pages -------------------------------------------------------------------------------------


async def _main(app: Served, request: web.Request) -> web.Response:
    retailer = _retailer(request)
    devices = app.headend.devices(retailer)
    counts = "".join(
        f'<li><a href="/state/{_state_slug(s)}">{_e(s.value.capitalize())}</a>: '
        f"{sum(d['state'] == s.value for d in devices)}</li>"
        for s in LifecycleState
    )
    body = f"<ul>{counts}</ul>" + _table(_DEVICE_HEADERS, _device_rows(devices), caption="Devices")
    return _page("HAN main", body, retailer=retailer)


async def _provision_form(
    app: Served, request: web.Request, errors: dict[str, str] | None = None
) -> web.Response:
    errors = errors or {}
    given = request.query if request.method == "GET" else await _posted(request)
    body = (
        '<form method="post" action="/provision">'
        + _form_error(errors, beside=("mac", "label"))
        + _select("meter", "Meter", list(app.headend.meter_ids), str(given.get("meter", "")))
        + _select("device_type", "Device type", DEVICE_TYPES, str(given.get("device_type", "")))
        + _field("mac", "MAC address (EUI-64)", str(given.get("mac", "")), errors=errors)
        + _field("label", "Label", str(given.get("label", "")), errors=errors)
        + '<p><button type="submit">Next: security credentials</button></p></form>'
    )
    return _page("HAN provisioning", body, retailer=_retailer(request))


async def _provision(app: Served, request: web.Request) -> web.Response:
    form = await _posted(request)
    values = {k: str(form.get(k, "")) for k in ("meter", "device_type", "mac", "label")}
    try:  # everything but the install code, checked before the next screen
        check_device(values, meters=app.headend.meter_ids)
    except HeadendError as exc:
        return await _provision_form(app, request, _errors(exc))
    raise web.HTTPSeeOther("/credentials?" + urlencode(values))


async def _credentials_form(
    app: Served, request: web.Request, errors: dict[str, str] | None = None
) -> web.Response:
    errors = errors or {}
    given = request.query if request.method == "GET" else await _posted(request)
    hidden = "".join(
        f'<input type="hidden" name="{k}" value="{_e(given.get(k, ""))}">'
        for k in ("meter", "device_type", "mac", "label")
    )
    body = (
        f"<p>Device {_e(given.get('mac', ''))} ({_e(given.get('device_type', ''))}) on meter "
        f"{_e(given.get('meter', ''))}.</p>"
        '<form method="post" action="/credentials">'
        + hidden
        + _form_error(errors, beside=("install_code",))
        + _field(
            "install_code",
            "Install code (as printed on the device, with its CRC)",
            errors=errors,
            extra=' autocomplete="off" spellcheck="false" autocapitalize="characters"',
        )
        + '<p><button type="submit">Provision</button></p></form>'
    )
    return _page("Enter HAN security credentials", body, retailer=_retailer(request))


async def _credentials(app: Served, request: web.Request) -> web.Response:
    form = await _posted(request)
    body = {
        k: str(form.get(k, "")) for k in ("meter", "device_type", "mac", "install_code", "label")
    }
    try:
        view = await app.headend.register(_retailer(request), body)
    except HeadendError as exc:
        return await _credentials_form(app, request, _errors(exc))
    raise web.HTTPSeeOther(f"/devices/{quote(view['mac'])}")


async def _state(app: Served, request: web.Request) -> web.Response:
    retailer = _retailer(request)
    slug = request.match_info["state"]
    states = {_state_slug(s): s for s in LifecycleState}
    if slug not in states:
        raise web.HTTPNotFound
    state = states[slug]
    devices = app.headend.devices(retailer, state=state.value)
    body = _table(_DEVICE_HEADERS, _device_rows(devices), caption=f"Devices {state.value}")
    return _page(state.value.capitalize(), body, retailer=retailer)


async def _device(
    app: Served, request: web.Request, errors: dict[str, str] | None = None
) -> web.Response:
    retailer, mac = _retailer(request), request.match_info["mac"]
    try:
        view = app.headend.device(retailer, mac)
        history = await app.headend.history(retailer, mac)
    except HeadendError:
        raise web.HTTPNotFound from None
    facts = "".join(
        f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>"
        for k, v in (
            ("MAC address", view["mac"]),
            ("Label", view["label"]),
            ("Type", view["device_type"]),
            ("Meter", view["meter"]),
            ("State", view["state"]),
            ("Groups", ", ".join(view["groups"]) or "none"),
        )
    )
    rows = [
        [_e(h["event"]), _e(h["from_state"] or ""), _e(h["to_state"]), _e(h["detail"])]
        for h in history
    ]
    deprovision = ""
    if view["state"] in ("pending provisioning", "meter ready"):
        deprovision = (
            f'<form method="post" action="/devices/{_e(view["mac"])}/deprovision">'
            '<button type="submit">De-provision</button></form>'
        )
    said = _form_error(errors or {})
    body = f'{said}<dl id="device">{facts}</dl>{deprovision}' + _table(
        ("Event", "From", "To", "Detail"), rows, caption="Lifecycle history"
    )
    return _page(f"Device {view['mac']}", body, retailer=retailer)


async def _deprovision(app: Served, request: web.Request) -> web.Response:
    """De-provision, then back to the device's page; a refusal (409: its state changed since
    the page was shown) is the device's page again saying why, as the forms' errors are
    (it was a redirect that said nothing)."""
    mac = request.match_info["mac"]
    try:
        await app.headend.deprovision(_retailer(request), mac)
    except HeadendError as exc:
        if exc.status == 404:
            raise web.HTTPNotFound from None
        return await _device(app, request, _errors(exc))
    raise web.HTTPSeeOther(f"/devices/{quote(mac)}")


async def _groups(
    app: Served, request: web.Request, errors: dict[str, str] | None = None
) -> web.Response:
    errors = errors or {}
    retailer = _retailer(request)
    rows = [[_e(g["name"]), _e(", ".join(g["meters"]))] for g in app.headend.groups(retailer)]
    meters = "".join(
        f'<label><input type="checkbox" name="meters" value="{_e(m)}"> {_e(m)}</label>'
        for m in list(app.headend.meter_ids)
    )
    body = (
        _table(("Group", "Meters"), rows, caption="Groups")
        + "<h2>New group</h2>"
        + '<form method="post" action="/groups">'
        + _form_error(errors, beside=("name",))
        + _field("name", "Name", errors=errors)
        + f"<fieldset><legend>Meters</legend>{meters}</fieldset>"
        + '<p><button type="submit">Save group</button></p></form>'
    )
    return _page("Groups", body, retailer=retailer)


async def _post_group(app: Served, request: web.Request) -> web.Response:
    form = await _posted(request)
    body = {
        "name": str(form.get("name", "")),
        "meters": [str(m) for m in form.getall("meters", [])],
    }
    try:
        await app.headend.put_group(_retailer(request), body)
    except HeadendError as exc:
        return await _groups(app, request, _errors(exc))
    raise web.HTTPSeeOther("/groups")


async def _send_forms(
    app: Served, request: web.Request, errors: dict[str, str] | None = None
) -> web.Response:
    errors = errors or {}
    retailer = _retailer(request)
    groups = [g["name"] for g in app.headend.groups(retailer)]
    rows = [
        [
            f'<a href="/sends/{s["id"]}">{s["id"]}</a>',
            _e(s["kind"]),
            _e(s["group"]),
            "finished" if s["finished"] else "running",
        ]
        for s in app.headend.sends(retailer)
    ]
    inline = ("text", "duty_cycle", "duration_minutes", "criticality_level")
    body = (
        _form_error(errors, beside=inline) + "<h2>Send display message by group</h2>"
        '<form method="post" action="/send/message">'
        + _select("message-group", "Group", groups)
        + _field("text", "Message (at most 57 characters)", errors=errors)
        + '<label><input type="checkbox" name="confirmation_required" value="1"> '
        "Ask for confirmation</label>"
        '<p><button type="submit">Send message</button></p></form>'
        "<h2>Send load control event by group</h2>"
        '<form method="post" action="/send/load-control">'
        + _select("lce-group", "Group", groups)
        + _field("duty_cycle", "Duty cycle (%)", "50", errors=errors, kind="number")
        + _field("duration_minutes", "Duration (minutes)", "60", errors=errors, kind="number")
        + _field("criticality_level", "Criticality level (1-15)", "1", errors=errors, kind="number")
        + '<p><button type="submit">Send load control</button></p></form>'
        + _table(("Send", "Kind", "Group", "Status"), rows, caption="Sends")
    )
    return _page("Send", body, retailer=retailer)


def _number(form: Any, name: str) -> object:
    value = str(form.get(name, ""))
    try:
        return int(value)
    except ValueError:
        return value  # refused by the validation, naming the field


async def _post_message(app: Served, request: web.Request) -> web.Response:
    form = await _posted(request)
    body = {
        "group": str(form.get("message-group", "")),
        "text": str(form.get("text", "")),
        "confirmation_required": bool(form.get("confirmation_required")),
    }
    try:
        view = await app.headend.send_message(_retailer(request), body)
    except HeadendError as exc:
        return await _send_forms(app, request, _errors(exc))
    raise web.HTTPSeeOther(f"/sends/{view['id']}")


async def _post_load_control(app: Served, request: web.Request) -> web.Response:
    form = await _posted(request)
    body = {
        "group": str(form.get("lce-group", "")),
        **{n: _number(form, n) for n in ("duty_cycle", "duration_minutes", "criticality_level")},
    }
    try:
        view = await app.headend.send_load_control(_retailer(request), body)
    except HeadendError as exc:
        return await _send_forms(app, request, _errors(exc))
    raise web.HTTPSeeOther(f"/sends/{view['id']}")


async def _send_page(app: Served, request: web.Request) -> web.Response:
    retailer = _retailer(request)
    try:
        view = app.headend.send(retailer, parse_send_id(request.match_info["id"]))
    except HeadendError:
        raise web.HTTPNotFound from None
    rows = [
        [_e(o["mac"]), _e(o["meter"]), _e(o["outcome"]), _e(o["attempts"]), _e(o["detail"])]
        for o in view["outcomes"]
    ]
    what = "Display message" if view["kind"] == "message" else "Load control event"
    status = "cancelled" if view["cancelled"] else "finished" if view["finished"] else "running"
    body = (
        f'<p>{_e(what)} to group {_e(view["group"])}: <strong id="status">{status}</strong></p>'
        + _table(
            ("MAC address", "Meter", "Outcome", "Attempts", "Detail"), rows, caption="Outcomes"
        )
    )
    return _page(f"Send {view['id']}", body, retailer=retailer, refresh=not view["finished"])


def portal_routes() -> list[Route]:
    """The portal's pages (not in the OpenAPI document)."""
    return [
        Route("GET", "/", _main, "HAN main", api=False),
        Route("GET", "/provision", _provision_form, "HAN provisioning", api=False),
        Route("POST", "/provision", _provision, "HAN provisioning", api=False),
        Route(
            "GET", "/credentials", _credentials_form, "Enter HAN security credentials", api=False
        ),
        Route("POST", "/credentials", _credentials, "Enter HAN security credentials", api=False),
        Route("GET", "/state/{state}", _state, "Devices in one lifecycle state", api=False),
        Route("GET", "/devices/{mac}", _device, "A device", api=False),
        Route("POST", "/devices/{mac}/deprovision", _deprovision, "De-provision", api=False),
        Route("GET", "/groups", _groups, "Groups", api=False),
        Route("POST", "/groups", _post_group, "Save a group", api=False),
        Route("GET", "/send", _send_forms, "Send forms", api=False),
        Route("POST", "/send/message", _post_message, "Send a message", api=False),
        Route("POST", "/send/load-control", _post_load_control, "Send load control", api=False),
        Route("GET", "/sends/{id}", _send_page, "A send's outcomes", api=False),
    ]
