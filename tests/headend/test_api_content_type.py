"""The API takes a JSON body only when it says it is JSON (RFC 9110 15.5.16): every route that
reads one (register a device, a group, a message or a load control event to a group) answered
a form, a text, or a body without a Content-Type as if it were JSON; each is now a 415 with the
API's JSON error naming ``Content-Type``, and nothing is written. ``application/json`` (any
case, with ``charset=utf-8``) and ``+json`` types (RFC 6839) are served as before, and the
portal's own HTML forms (``application/x-www-form-urlencoded``) still post. The devices CSV
import took any body as CSV: it is a 415 too unless the body says ``text/csv``."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from tests.headend.helpers import Reply, Service, client_context, registration
from zse.store import hold_virtual_clock

A = "retailer-a"
GROUP = {"name": "street", "meters": ["meter-1"]}
MESSAGE = {"group": "street", "text": "Peak 5-7 pm"}
LOAD_CONTROL = {"group": "street", "duty_cycle": 50, "duration_minutes": 1}
#: Content-Types that do not say JSON (each was served as JSON).
NOT_JSON = [
    "text/plain",
    "application/x-www-form-urlencoded",
    "text/csv",
    "application/octet-stream",
    "application/jsonp",
    "application/json; charset=latin-1",
]


async def _post(service: Service, path: str, body: object, content_type: str | None) -> Reply:
    """``body`` as JSON text (bytes: as they are), with ``content_type`` (None: no
    Content-Type at all)."""
    headers = {} if content_type is None else {"Content-Type": content_type}
    with hold_virtual_clock():
        connector = aiohttp.TCPConnector(ssl=client_context(service.directory, A), force_close=True)
        async with (
            aiohttp.ClientSession(
                connector=connector, skip_auto_headers=["Content-Type"]
            ) as session,
            session.post(
                service.base + path,
                data=body if isinstance(body, bytes) else json.dumps(body).encode(),
                headers=headers,
            ) as response,
        ):
            return Reply(response.status, json.loads(await response.read()), dict(response.headers))


def _routes(service: Service) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("/api/v1/devices", registration(service.sims.devices[0])),
        ("/api/v1/groups", GROUP),
        ("/api/v1/sends/message", MESSAGE),
        ("/api/v1/sends/load-control", LOAD_CONTROL),
    ]


@pytest.mark.parametrize("content_type", [*NOT_JSON, None])
async def test_a_body_not_declared_json_is_a_415_on_every_json_route(
    service: Service, content_type: str | None
) -> None:
    assert (await service.call(A, "POST", "/api/v1/groups", GROUP)).status == 201  # to send to
    for path, body in _routes(service):
        reply = await _post(service, path, body, content_type)
        assert reply.status == 415, (path, reply.body)
        assert reply.headers["Content-Type"].startswith("application/json")
        error = reply.body["error"]
        assert (error["status"], error["field"]) == (415, "Content-Type"), path
        assert "application/json" in error["message"]
    assert (await service.call(A, "GET", "/api/v1/devices")).body == {"devices": []}
    assert (await service.call(A, "GET", "/api/v1/sends")).body == {"sends": []}


async def test_json_in_any_spelling_is_served(service: Service) -> None:
    for content_type, name in [
        ("application/json", "a"),
        ("Application/JSON; charset=UTF-8", "b"),
        ("application/merge-patch+json", "c"),
    ]:
        reply = await _post(service, "/api/v1/groups", {**GROUP, "name": name}, content_type)
        assert reply.status == 201, (content_type, reply.body)
    device = await _post(
        service, "/api/v1/devices", registration(service.sims.devices[0]), "application/json"
    )
    assert device.status == 201, device.body


async def test_an_empty_body_without_a_content_type_is_still_the_400_naming_the_body(
    service: Service,
) -> None:
    reply = await service.call(A, "POST", "/api/v1/groups")
    assert (reply.status, reply.body["error"]["field"]) == (400, "body")


async def test_the_portals_forms_still_post(service: Service) -> None:
    """The portal's routes read forms, not JSON: its urlencoded posts are not refused."""
    saved = await service.call(A, "POST", "/groups", form={"name": "home", "meters": "meter-1"})
    assert saved.status == 303
    groups = (await service.call(A, "GET", "/api/v1/groups")).body["groups"]
    assert [g["name"] for g in groups] == ["home"]


# -- the devices CSV import: text/csv ----------------------------------------------------------

IMPORT = "/api/v1/devices/import?meter=meter-1&device_type=in-home%20display"
#: Content-Types that do not say CSV (each was read as CSV).
NOT_CSV = [
    "application/octet-stream",
    "text/plain",
    "application/json",
    "application/x-www-form-urlencoded",
    "text/csv-schema",
    "application/csv",
]


def _csv(service: Service) -> bytes:
    device = service.sims.devices[0]
    return f"eui64,install_code\n{device.mac},{device.install_code}\n".encode()


@pytest.mark.parametrize("content_type", [*NOT_CSV, None])
async def test_a_csv_import_not_declared_text_csv_is_a_415(
    service: Service, content_type: str | None
) -> None:
    reply = await _post(service, IMPORT, _csv(service), content_type)
    assert reply.status == 415, reply.body
    assert reply.headers["Content-Type"].startswith("application/json")
    error = reply.body["error"]
    assert (error["status"], error["field"]) == (415, "Content-Type")
    assert "text/csv" in error["message"]
    assert (await service.call(A, "GET", "/api/v1/devices")).body == {"devices": []}


@pytest.mark.parametrize(
    "content_type", ["text/csv", "Text/CSV; charset=utf-8", "text/csv; header=present"]
)
async def test_a_csv_import_declared_text_csv_is_read(service: Service, content_type: str) -> None:
    reply = await _post(service, IMPORT, _csv(service), content_type)
    assert reply.status == 200, reply.body
    assert (len(reply.body["registered"]), reply.body["errors"]) == (1, [])
