"""Every error the API answers is its JSON error (``{"error": {"status", "field",
"message"}}``): a fault nobody foresaw too, and a refusal names the field at fault."""

from __future__ import annotations

import logging

import pytest

from tests.headend.helpers import Service


async def test_an_unexpected_fault_is_a_json_500_without_its_text(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    """A fault that is not a HeadendError (here the store closed under the service) was
    aiohttp's plain-text 500; it is the JSON error now, with a generic message (the fault's
    text could hold a secret) and the traceback in the log."""
    a = "retailer-a"
    await service.store.close()
    with caplog.at_level(logging.ERROR, logger="zse.headend.web"):
        reply = await service.call(a, "POST", "/api/v1/groups", {"name": "g", "meters": []})
    assert reply.status == 500
    assert reply.headers["Content-Type"].startswith("application/json")
    error = reply.body["error"]
    assert error == {"status": 500, "field": None, "message": error["message"]}
    assert "store" not in error["message"].lower()
    (logged,) = [r for r in caplog.records if r.name == "zse.headend.web"]
    assert logged.exc_info is not None
    assert "POST /api/v1/groups" in logged.getMessage()


async def test_an_install_code_in_use_names_install_code(service: Service) -> None:
    """A second device registered with an install code another device holds was refused
    409 naming ``mac``; it is the install code that is in use."""
    a = "retailer-a"
    first, second = service.sims.devices[0], service.sims.devices[1]
    body = {
        "mac": first.mac,
        "install_code": first.install_code,
        "meter": first.meter,
        "device_type": first.device_type,
    }
    assert (await service.call(a, "POST", "/api/v1/devices", body)).status == 201
    reply = await service.call(a, "POST", "/api/v1/devices", {**body, "mac": second.mac})
    assert reply.status == 409
    assert reply.body["error"]["field"] == "install_code"
    assert reply.body["error"]["message"].startswith("install_code: ")
    assert first.install_code not in reply.body["error"]["message"]
    assert (await service.call(a, "GET", f"/api/v1/devices/{second.mac}")).status == 404
