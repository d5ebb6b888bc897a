"""The API's contract: bad input is a 4xx JSON error naming the field and writes nothing; the
rate limit answers 429 with Retry-After; the OpenAPI document lists exactly the routes served;
bulk CSV import reports its bad rows (issue #18 items 2 and 5)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.headend.helpers import Service, start_service
from zse.headend.core import (
    HeadendError,
    Outcome,
    parse_group,
    parse_load_control,
    parse_message,
    parse_registration,
)
from zse.headend.web import api_routes, openapi


def _body(service: Service, index: int = 0, **changes: Any) -> dict[str, Any]:
    device = service.sims.devices[index]
    return {
        "mac": device.mac,
        "install_code": device.install_code,
        "meter": device.meter,
        "device_type": device.device_type,
        **changes,
    }


#: The devices CSV import reads a body that says it is CSV.
CSV = {"Content-Type": "text/csv"}

BAD_REGISTRATIONS = [
    ({"mac": "00:0d:6f:00"}, 422, "mac"),
    ({"mac": "zz:0d:6f:00:0b:01:00:01"}, 422, "mac"),
    ({"install_code": "83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B6"}, 422, "install_code"),
    ({"install_code": "12"}, 422, "install_code"),
    ({"meter": "meter-9"}, 404, "meter"),
    ({"device_type": "toaster"}, 422, "device_type"),
    ({"label": "x" * 65}, 422, "label"),
    ({"colour": "red"}, 422, "colour"),
]


#: Request bodies that are not JSON zse reads (zse.jsontext): nesting past the recursion
#: limit, an integer past the interpreter's digits, NaN, a float that overflows, a lone
#: surrogate.
NOT_JSON = [
    "{not json",
    "[" * 100_000,
    "9" * 5000,
    '{"mac": NaN}',
    '{"mac": 1e999}',
    '{"mac": "\\ud800"}',
]


async def test_bad_registrations_name_the_field_and_write_nothing(service: Service) -> None:
    a = "retailer-a"
    for change, status, field in BAD_REGISTRATIONS:
        reply = await service.call(a, "POST", "/api/v1/devices", _body(service, **change))
        assert reply.status == status, (change, reply.body)
        assert reply.body["error"]["field"] == field
        assert service.sims.devices[0].install_code not in reply.body["error"]["message"]
    missing = {k: v for k, v in _body(service).items() if k != "meter"}
    reply = await service.call(a, "POST", "/api/v1/devices", missing)
    assert (reply.status, reply.body["error"]["field"]) == (422, "meter")
    for text in NOT_JSON:  # each was a 500 with a traceback in the log, but the first
        reply = await service.call(
            a, "POST", "/api/v1/devices", text=text, headers={"Content-Type": "application/json"}
        )
        assert (reply.status, reply.body["error"]["field"]) == (400, "body"), text[:20]
    assert (await service.call(a, "GET", "/api/v1/devices")).body == {"devices": []}
    for meter in service.headend.meters.values():
        assert meter.registry.devices() == []
    assert await service.headend.records.store.load("headend.devices") == {}
    # a device already provisioned
    assert (await service.call(a, "POST", "/api/v1/devices", _body(service))).status == 201
    again = await service.call(a, "POST", "/api/v1/devices", _body(service, meter="meter-2"))
    assert (again.status, again.body["error"]["field"]) == (409, "mac")


async def test_bad_sends_name_the_field(service: Service) -> None:
    a = "retailer-a"
    await service.call(a, "POST", "/api/v1/groups", {"name": "g", "meters": ["meter-1"]})
    cases = [
        ("message", {"group": "g", "text": "x" * 58}, 413, "text"),
        ("message", {"group": "g", "text": ""}, 422, "text"),
        ("message", {"group": "nope", "text": "hi"}, 404, "group"),
        ("message", {"group": "g", "text": "hi", "importance": 4}, 422, "importance"),
        ("load-control", {"group": "g", "duty_cycle": 101}, 422, "duty_cycle"),
        (
            "load-control",
            {"group": "g", "duty_cycle": 5, "criticality_level": 0},
            422,
            "criticality_level",
        ),
        (
            "load-control",
            {"group": "g", "duty_cycle": 5, "duration_minutes": 1441},
            422,
            "duration_minutes",
        ),
        ("load-control", {"group": "g"}, 422, "duty_cycle"),
        ("load-control", {"group": "g", "duty_cycle": True}, 422, "duty_cycle"),
    ]
    for kind, body, status, field in cases:
        reply = await service.call(a, "POST", f"/api/v1/sends/{kind}", body)
        assert (reply.status, reply.body["error"]["field"]) == (status, field), body
    assert (await service.call(a, "GET", "/api/v1/sends")).body == {"sends": []}
    reply = await service.call(a, "POST", "/api/v1/groups", {"name": "h", "meters": ["meter-7"]})
    assert (reply.status, reply.body["error"]["field"]) == (404, "meters")


async def test_bulk_csv_import_reports_bad_rows(service: Service) -> None:
    good = service.sims.devices[:2]
    lines = ["eui64,install_code,label"]
    lines += [f"{d.mac},{d.install_code},{d.device_type}" for d in good]
    lines.append("00:0d:6f:00:0b:01:00:09,1234,broken")
    reply = await service.call(
        "retailer-a",
        "POST",
        "/api/v1/devices/import?meter=meter-1&device_type=in-home%20display",
        text="\n".join(lines) + "\n",
        headers=CSV,
    )
    assert reply.status == 200, reply.body
    assert len(reply.body["registered"]) == 2
    assert [e["line"] for e in reply.body["errors"]] == [4]
    listed = await service.call("retailer-a", "GET", "/api/v1/devices?meter=meter-1")
    assert len(listed.body["devices"]) == 2
    bad = await service.call(
        "retailer-a",
        "POST",
        "/api/v1/devices/import?meter=meter-1&device_type=in-home%20display",
        text="nothing",
        headers=CSV,
    )
    assert (bad.status, bad.body["error"]["field"]) == (422, "csv")


async def test_the_openapi_document_is_the_router(service: Service) -> None:
    reply = await service.call("retailer-b", "GET", "/openapi.json")
    assert reply.status == 200
    document = reply.body
    assert document == openapi(api_routes())
    served = {
        (route.method, route.resource.canonical)
        for route in service.app.app.router.routes()
        if route.resource is not None
    }
    documented = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    assert documented <= served
    api_served = {(m, p) for m, p in served if p.startswith("/api/") or p == "/openapi.json"}
    assert api_served == documented


async def test_every_time_says_its_epoch_and_has_an_iso_8601_twin(service: Service) -> None:
    """Sends' ``created`` / ``updated`` are ZigBee UTCTime, history's ``time`` Unix time (meters
    in this process): each has ``<name>_iso``, the same instant in ISO 8601 UTC, and the
    OpenAPI document says which epoch each number counts from."""
    assert (
        await service.call("retailer-a", "POST", "/api/v1/devices", _body(service))
    ).status == 201
    group = {"name": "street", "meters": ["meter-1"]}
    assert (await service.call("retailer-a", "POST", "/api/v1/groups", group)).status == 201
    sent = await service.call(
        "retailer-a", "POST", "/api/v1/sends/message", {"group": "street", "text": "hi"}
    )
    assert sent.status == 202, sent.body
    zigbee_epoch = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    created = dt.datetime.fromisoformat(sent.body["created_iso"])
    assert created == zigbee_epoch + dt.timedelta(seconds=sent.body["created"])
    (outcome,) = sent.body["outcomes"]
    assert outcome["updated_iso"] == sent.body["created_iso"]  # the same instant, in ISO
    mac = service.sims.devices[0].mac
    history = await service.call("retailer-a", "GET", f"/api/v1/devices/{mac}/history")
    first = history.body["history"][0]
    at = dt.datetime.fromisoformat(first["time_iso"])
    assert abs(at.timestamp() - first["time"]) < 0.001  # Unix time
    schemas = openapi(api_routes())["components"]["schemas"]
    assert "2000-01-01" in schemas["Send"]["properties"]["created"]["description"]
    assert "2000-01-01" in schemas["Outcome"]["properties"]["updated"]["description"]
    assert "1970-01-01" in schemas["HistoryEntry"]["properties"]["time"]["description"]


async def test_rate_limit_per_retailer(tmp_path: Any) -> None:
    service = await start_service(tmp_path, meters=1, rate=0.001)
    try:
        statuses = [
            (await service.call("retailer-a", "GET", "/api/v1/meters")).status for _ in range(4)
        ]
        assert statuses == [200, 200, 200, 429]
        limited = await service.call("retailer-a", "GET", "/api/v1/meters")
        assert int(limited.headers["Retry-After"]) >= 1
        assert (await service.call("retailer-b", "GET", "/api/v1/meters")).status == 200
    finally:
        await service.close()


@given(
    st.one_of(
        st.none(),
        st.integers(),
        st.text(),
        st.lists(st.integers()),
        st.dictionaries(st.text(), st.one_of(st.text(), st.integers(), st.booleans(), st.none())),
    )
)
def test_parsers_take_garbage(body: object) -> None:
    for parse in (
        lambda b: parse_registration(b, meters=["meter-1"]),
        parse_message,
        parse_load_control,
    ):
        refused: HeadendError | None = None
        try:
            parse(body)
        except HeadendError as exc:
            refused = exc
        if refused is not None:
            assert 400 <= refused.status < 500
            assert refused.field


@pytest.mark.parametrize(("key", "field"), [("colour", "colour"), ("", "''"), (" a", "' a'")])
def test_an_unknown_field_is_named_quoted_when_it_would_not_show(key: str, field: str) -> None:
    """A body field of an empty name was refused as ": unknown field" with field ""."""
    with pytest.raises(HeadendError) as error:
        parse_message({"group": "g", "text": "t", key: 1})
    assert (error.value.status, error.value.field) == (422, field)
    assert error.value.message == f"{field}: unknown field"


def test_a_lone_surrogate_is_not_text() -> None:
    """A string the Python API is given with an unpaired surrogate (JSON over HTTP cannot
    carry one: zse.jsontext) is refused naming the field, not a UnicodeEncodeError later."""
    for parse, body, field in [
        (parse_message, {"group": "g", "text": "a\ud800"}, "text"),
        (parse_message, {"group": "\udfff", "text": "a"}, "group"),
        (lambda b: parse_group(b, meters=[]), {"name": "g\ud800", "meters": []}, "name"),
    ]:
        with pytest.raises(HeadendError) as error:
            parse(body)
        assert (error.value.status, error.value.field) == (422, field)


@pytest.mark.parametrize(
    "body",
    [
        {"group": "g", "text": "é" * 28},
        {"group": "g", "text": "ok", "duration_minutes": 1, "importance": 3},
    ],
)
def test_good_messages_parse(body: dict[str, Any]) -> None:
    assert parse_message(body).text == body["text"]


def test_the_api_document_lists_every_outcome() -> None:
    """A client validating against /openapi.json learns every outcome a copy can have,
    `expired` (given up) among them; the document said only "a string"."""
    document = openapi(api_routes())
    listed = document["components"]["schemas"]["Outcome"]["properties"]["outcome"]["enum"]
    assert listed == [outcome.value for outcome in Outcome]
    assert {"delivered", "cancelled", "expired"} <= set(listed)
