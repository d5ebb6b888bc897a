"""The portal attacked in a real headless Chromium that holds retailer A's certificate (set up
as in ``test_headend_browser.py``): another site's page framing it (clickjacking), posting
forms and ``fetch`` requests to it (cross-site request forgery), and markup in what a
retailer types (a label, a MAC address, the query of a page) that must stay text. A payload
that runs sets ``window.zseRan``: the test reads it."""

from __future__ import annotations

import html
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web

from tests.headend.helpers import Service, registration
from tests.headend.test_headend_browser import (
    CHROMEDRIVER,
    CHROMIUM,
    FLAGS,
    _browser_home,
    _off_loop,
    _spki_hash,
)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None, reason="the system chromium/chromedriver are missing"
)
A = "retailer-a"
#: Markup that sets window.zseRan if a browser runs it (each at most 64 characters: a label).
PAYLOADS = (
    '<img src=x onerror="window.zseRan=1">',
    '"><script>window.zseRan=2</script>',
    "'><svg onload=window.zseRan=3>",
    "</title></style><script>window.zseRan=4</script>",
)


@pytest.fixture
async def driver(service: Service, tmp_path: Path) -> AsyncIterator[Any]:
    """Chromium under chromedriver, presenting retailer A's certificate to the server."""
    from selenium import webdriver  # noqa: PLC0415
    from selenium.webdriver.chrome.service import Service as DriverService  # noqa: PLC0415

    home, profile = _browser_home(service, tmp_path, with_certificate=True)
    spki = _spki_hash(service.directory / "server.pem")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    flags = [*FLAGS, f"--user-data-dir={profile}", f"--ignore-certificate-errors-spki-list={spki}"]
    for flag in flags:
        options.add_argument(flag)
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    chromium = await _off_loop(
        lambda: webdriver.Chrome(
            service=DriverService(executable_path=str(CHROMEDRIVER), env=env), options=options
        )
    )
    try:
        yield chromium
    finally:
        await _off_loop(chromium.quit)


@pytest.fixture
async def other_site() -> AsyncIterator[tuple[dict[str, str], str]]:
    """Another site (plain HTTP on ``localhost``, another port): its pages by path, its base."""
    pages: dict[str, str] = {}

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=pages[request.path], content_type="text/html")

    app = web.Application()
    app.router.add_get("/{name}", page)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "localhost", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield pages, f"http://localhost:{port}"
    finally:
        await runner.cleanup()


async def _until(driver: Any, script: str) -> Any:
    """Wait (30 real seconds at most) until ``script`` returns something true; that."""
    from selenium.common.exceptions import WebDriverException  # noqa: PLC0415
    from selenium.webdriver.support.ui import WebDriverWait  # noqa: PLC0415

    wait = WebDriverWait(driver, 30, ignored_exceptions=(WebDriverException,))
    return await _off_loop(wait.until, lambda d: d.execute_script(script))


async def _open(driver: Any, url: str) -> None:
    await _off_loop(driver.get, url)
    await _until(driver, "return document.readyState === 'complete'")


async def test_another_site_cannot_frame_the_portal(
    service: Service, driver: Any, other_site: tuple[dict[str, str], str]
) -> None:
    """Another site's page showed the portal in a frame, the retailer's certificate
    presented: a transparent frame over its own buttons gets the retailer's clicks."""
    pages, base = other_site
    pages["/frame"] = (
        f'<iframe id="portal" src="{service.base}/send" onload="window.framed = true"></iframe>'
    )
    before = service.app.requests
    await _open(driver, f"{base}/frame")
    await _until(driver, "return window.framed === true")
    assert service.app.requests > before  # the frame's request came, certificate and all
    await _off_loop(driver.switch_to.frame, "portal")
    try:
        shown = str(await _off_loop(lambda: driver.page_source))
    finally:
        await _off_loop(driver.switch_to.default_content)
    assert "Signed in by certificate" not in shown
    assert "Send display message" not in shown


async def test_no_injected_script_runs_and_the_style_applies(service: Service, driver: Any) -> None:
    """The pages had no Content-Security-Policy: markup that got in (a bug in escaping, an
    extension) would run. Here a script and an inline handler are put into the page as an
    injection would put them: neither runs; the page's own style still applies (its hash)."""
    await _open(driver, f"{service.base}/")
    width = driver.execute_script("return getComputedStyle(document.body).maxWidth")
    assert width == "960px"  # 60rem: the inline style is allowed by its hash
    driver.execute_script(
        "const s = document.createElement('script'); s.textContent = 'window.zseRan = 1';"
        " document.body.appendChild(s);"
        " document.body.insertAdjacentHTML('beforeend',"
        ' \'<img id="probe" src="data:,x" onerror="window.zseRan = 2"'
        ' onload="window.zseRan = 3">\');'
        " document.body.insertAdjacentHTML('beforeend',"
        ' \'<div id="styled" style="color: rgb(1, 2, 3)">x</div>\');'
    )
    await _until(driver, "return document.getElementById('probe') !== null")
    # the image's load or error has happened (or was blocked) once the next frames are drawn
    await _off_loop(
        driver.execute_async_script,
        "const done = arguments[0]; requestAnimationFrame(() => setTimeout(done, 200));",
    )
    assert driver.execute_script("return window.zseRan") is None
    color = driver.execute_script(
        "return getComputedStyle(document.getElementById('styled')).color"
    )
    assert color != "rgb(1, 2, 3)"  # an injected inline style does not apply either


async def test_markup_a_retailer_or_a_page_gives_stays_text(service: Service, driver: Any) -> None:
    """Labels, the query a page reflects and a refused MAC address are shown as text: no
    element of theirs is made and nothing runs (what the server sends, and what Chromium
    runs)."""
    devices = service.sims.devices
    macs = []
    for device, label in zip(devices, PAYLOADS, strict=False):
        reply = await service.call(
            A, "POST", "/api/v1/devices", {**registration(device), "label": label}
        )
        assert reply.status == 201, reply.body
        macs.append(reply.body["mac"])
    shown = PAYLOADS[: len(macs)]
    query = "&".join(f"{k}={quote(PAYLOADS[i])}" for i, k in enumerate(("mac", "label", "meter")))
    for path, expected in (
        ("/", shown),
        ("/state/pending-provisioning", ()),
        (f"/devices/{macs[0]}", shown[:1]),
        (f"/provision?{query}", ()),
        (f"/credentials?{query}&device_type={quote(PAYLOADS[3])}", (PAYLOADS[0],)),
    ):
        await _open(driver, service.base + path)
        text = driver.find_element("tag name", "body").text
        for payload in expected:
            assert payload in text, (path, payload)
        assert driver.find_elements("css selector", "main img, main script, main svg") == []
        assert driver.execute_script("return window.zseRan") is None, path
        source = await service.call(A, "GET", path)
        for payload in PAYLOADS:
            assert payload not in source.body, (path, payload)  # escaped by the server
        for payload in expected:
            assert html.escape(payload) in source.body, (path, payload)
    # a refused MAC address: the error beside the field, the value kept, both as text
    await _open(driver, f"{service.base}/provision")
    await _off_loop(  # off the loop: the server answers the post meanwhile
        driver.execute_script,
        "document.getElementById('mac').value = arguments[0]; document.forms[0].submit();",
        PAYLOADS[1],
    )
    await _until(driver, "return document.getElementById('mac-error') !== null")
    assert driver.find_element("id", "mac").get_attribute("value") == PAYLOADS[1]
    assert driver.find_elements("css selector", "main img, main script, main svg") == []
    assert driver.execute_script("return window.zseRan") is None


async def test_another_sites_forms_and_fetches_change_nothing(
    service: Service, driver: Any, other_site: tuple[dict[str, str], str]
) -> None:
    """Another site's page in the retailer's browser posts to the portal's forms and the API
    (a form, ``fetch`` with credentials: the certificate is presented) to create a group,
    de-provision a device and send a message: every one of them arrives and is refused."""
    device = service.sims.devices[0]
    reply = await service.call(A, "POST", "/api/v1/devices", registration(device))
    mac = reply.body["mac"]
    group = {"name": "street", "meters": [device.meter]}
    assert (await service.call(A, "POST", "/api/v1/groups", group)).status == 201
    message = json.dumps({"group": "street", "text": "forged"})
    target = service.base
    pages, base = other_site
    pages["/forge"] = f"""<!doctype html><title>forging</title>
<iframe name="a"></iframe><iframe name="b"></iframe><iframe name="c"></iframe>
<form target="a" method="post" action="{target}/groups">
<input name="name" value="evil"><input name="meters" value="{device.meter}"></form>
<form target="b" method="post" action="{target}/devices/{mac}/deprovision"></form>
<form target="c" method="post" action="{target}/api/v1/devices/{mac}/deprovision"
 enctype="text/plain"></form>
<script>
let left = 5;
const done = () => {{ if (--left === 0) document.title = "done"; }};
for (const form of document.forms) {{
  document.getElementsByName(form.target)[0].onload = done; form.submit();
}}
const post = {{method: "POST", mode: "no-cors", credentials: "include",
  headers: {{"Content-Type": "text/plain"}}, body: {json.dumps(message)}}};
fetch("{target}/api/v1/sends/message", post).then(done, done);
fetch("{target}/api/v1/devices/{mac}/deprovision", {{...post, body: ""}}).then(done, done);
</script>"""
    before = service.app.requests
    await _open(driver, f"{base}/forge")
    await _until(driver, "return document.title === 'done'")
    assert service.app.requests - before >= 5  # each arrived, certificate and all
    assert [g["name"] for g in service.headend.groups(A)] == ["street"]
    assert service.headend.sends(A) == []
    state = service.headend.device(A, mac)["state"]
    assert state in ("pending provisioning", "meter ready"), state
