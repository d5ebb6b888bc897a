"""The portal's screens over the same mutual TLS (an HTTP client, not yet a browser): HAN main,
HAN provisioning, enter HAN security credentials, the lifecycle state views, groups, the send
forms and a send's outcomes; a form from another origin is refused; errors sit next to the
field (issue #18 item 3)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlparse

from tests.headend.helpers import Service, registration


async def test_the_portal_story(service: Service) -> None:
    a = "retailer-a"
    main = await service.call(a, "GET", "/")
    assert main.status == 200
    assert "<h1>HAN main</h1>" in main.body
    assert '<strong id="retailer">retailer-a</strong>' in main.body
    device = service.sims.devices[0]
    form = {
        "meter": device.meter,
        "device_type": device.device_type,
        "mac": device.mac,
        "label": "hall",
    }
    step = await service.call(a, "POST", "/provision", form=form)
    assert step.status == 303
    credentials = await service.call(a, "GET", step.headers["Location"])
    assert "<h1>Enter HAN security credentials</h1>" in credentials.body
    wrong = await service.call(a, "POST", "/credentials", form={**form, "install_code": "1234"})
    assert wrong.status == 200
    assert 'aria-invalid="true"' in wrong.body
    done = await service.call(
        a, "POST", "/credentials", form={**form, "install_code": device.install_code}
    )
    assert done.status == 303
    page = urlparse(done.headers["Location"]).path
    assert page == f"/devices/{device.mac.replace(':', '').upper()}"
    for _ in range(60):
        view = await service.call(a, "GET", "/state/meter-ready")
        if device.mac.replace(":", "").upper() in view.body:
            break
        await asyncio.sleep(5)
    else:
        raise AssertionError("never METER READY")
    for state in (
        "new",
        "pending-provisioning",
        "pending-de-provisioning",
        "de-provision-complete",
    ):
        assert (await service.call(a, "GET", f"/state/{state}")).status == 200
    status = await service.call(a, "GET", page)
    assert "meter ready" in status.body
    assert "Lifecycle history" in status.body
    saved = await service.call(a, "POST", "/groups", form={"name": "home", "meters": device.meter})
    assert saved.status == 303
    sent = await service.call(
        a, "POST", "/send/message", form={"message-group": "home", "text": "Hello"}
    )
    assert sent.status == 303
    outcome_page = sent.headers["Location"]
    for _ in range(30):
        shown = await service.call(a, "GET", outcome_page)
        if '<strong id="status">finished</strong>' in shown.body:
            break
        await asyncio.sleep(1)
    assert "<td>delivered</td>" in shown.body
    lce = await service.call(
        a,
        "POST",
        "/send/load-control",
        form={
            "lce-group": "home",
            "duty_cycle": "500",
            "duration_minutes": "1",
            "criticality_level": "1",
        },
    )
    assert lce.status == 200
    assert "duty_cycle: must be 0 to 100" in lce.body
    forged = await service.call(
        a,
        "POST",
        "/groups",
        form={"name": "x", "meters": device.meter},
        origin="https://evil.example",
    )
    assert forged.status == 403
    assert (await service.call("retailer-b", "GET", page)).status == 404


async def test_an_error_about_a_field_without_an_input_is_said(service: Service) -> None:
    """A meter or a group that does not exist came back as the same form with nothing said
    (the page shows errors beside the fields it has inputs for only)."""
    a = "retailer-a"
    provision = {"meter": "nope", "device_type": "in-home display", "mac": "0011223344556677"}
    lce = {"duty_cycle": "50", "duration_minutes": "60", "criticality_level": "1"}
    cases = [
        ("/provision", provision),
        ("/send/load-control", {"lce-group": "nope", **lce}),
        ("/send/message", {"message-group": "nope", "text": "hi"}),
    ]
    for path, form in cases:
        page = await service.call(a, "POST", path, form=form)
        assert page.status == 200, path
        assert '<p class="error" role="alert">' in page.body, path
        assert "nope" in page.body, path


async def test_a_refused_de_provision_says_why(service: Service) -> None:
    """The de-provision button of a page shown before the device's state changed (here: it
    was registered again at its meter, NEW, which cannot be de-provisioned) came back to the
    device's page with nothing said: the 409 was dropped."""
    a = "retailer-a"
    device = service.sims.devices[0]
    done = await service.call(a, "POST", "/credentials", form=registration(device))
    assert done.status == 303
    page = urlparse(done.headers["Location"]).path
    meter = service.headend.directory.esis[device.meter]  # type: ignore[attr-defined]
    for _ in range(50):  # the meter admits it in the background
        if "De-provision</button>" in (await service.call(a, "GET", page)).body:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("never pending provisioning")
    await meter.esi.deprovision(device.mac)  # at the meter, behind the page's back:
    await meter.registry.register(device.mac, device.install_code)  # NEW again
    refused = await service.call(a, "POST", f"{page}/deprovision", form={})
    assert refused.status == 200, refused.headers
    assert '<p class="error" role="alert">state: device ' in refused.body
    assert "&#x27;new&#x27;: &#x27;deprovision&#x27; is allowed only from" in refused.body
    assert '<dl id="device">' in refused.body  # the device's page, its state shown
