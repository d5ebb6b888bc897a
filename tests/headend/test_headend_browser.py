"""The portal driven in a real headless Chromium (the system package, through Selenium and the
system chromedriver), presenting the retailer's client certificate itself: the story through
the screens, with screenshots saved under the test's temporary directory (issue #18, Proof).

How Chromium gets the certificate, with nothing in between: on Linux it finds client
certificates in the NSS database ``$HOME/.pki/nssdb``; the test gives Chromium a fresh HOME
whose database holds retailer A's certificate and key (imported through the system NSS
library, :mod:`tests.headend.nssdb`), and a fresh profile whose preferences auto-select the
certificate issued by the test CA for the server's origin (the ``AutoSelectCertificateForUrls``
content setting, written as a user preference instead of a machine-wide policy). The server's
certificate is accepted by its public key hash (``--ignore-certificate-errors-spki-list``), not
by turning certificate checks off.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.headend.helpers import Service

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None, reason="the system chromium/chromedriver are missing"
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1000,900",
)
_T = TypeVar("_T")


def _spki_hash(path: Path) -> str:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def _browser_home(service: Service, tmp: Path, *, with_certificate: bool) -> tuple[Path, Path]:
    """A fresh HOME (with the retailer's certificate in its NSS database) and profile."""
    home, profile = tmp / "home", tmp / "profile"
    if with_certificate:
        subprocess.run(
            [
                sys.executable,
                str(Path(__file__).with_name("nssdb.py")),
                str(home / ".pki" / "nssdb"),
                str(service.directory / "retailer-a.pem"),
                str(service.directory / "retailer-a-key.pem"),
                "retailer-a",
            ],
            check=True,
        )
    else:
        home.mkdir(parents=True)
    (profile / "Default").mkdir(parents=True)
    origin = f"{service.base},*"
    issuer = {"CN": "zse headend test CA"}
    prefs = {
        "profile": {
            "content_settings": {
                "exceptions": {
                    "auto_select_certificate": {
                        origin: {"setting": {"filters": [{"ISSUER": issuer}]}}
                    }
                }
            }
        }
    }
    (profile / "Default" / "Preferences").write_text(json.dumps(prefs))
    return home, profile


async def _off_loop(work: Callable[..., _T], *args: Any) -> _T:
    """Run a blocking browser call in a thread; the virtual clock waits for it."""
    return await asyncio.get_running_loop().run_in_executor(None, work, *args)


async def test_without_the_certificate_chromium_gets_no_page(
    service: Service, tmp_path: Path
) -> None:
    home, profile = _browser_home(service, tmp_path, with_certificate=False)
    command = [
        str(CHROMIUM),
        *FLAGS,
        f"--user-data-dir={profile}",
        f"--ignore-certificate-errors-spki-list={_spki_hash(service.directory / 'server.pem')}",
        "--dump-dom",
        f"{service.base}/",
    ]
    done = await _off_loop(
        lambda: subprocess.run(
            command,
            check=False,
            capture_output=True,
            env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
            timeout=60,
        )
    )
    assert "HAN main" not in done.stdout.decode()
    assert service.app.requests == 0


async def test_the_portal_in_headless_chromium(service: Service, tmp_path: Path) -> None:
    from selenium import webdriver  # noqa: PLC0415
    from selenium.common.exceptions import TimeoutException, WebDriverException  # noqa: PLC0415
    from selenium.webdriver.chrome.service import Service as DriverService  # noqa: PLC0415
    from selenium.webdriver.common.by import By  # noqa: PLC0415
    from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: PLC0415

    home, profile = _browser_home(service, tmp_path, with_certificate=True)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        *FLAGS,
        f"--user-data-dir={profile}",
        f"--ignore-certificate-errors-spki-list={_spki_hash(service.directory / 'server.pem')}",
    ):
        options.add_argument(flag)
    driver_service = DriverService(
        executable_path=str(CHROMEDRIVER), env={"HOME": str(home), "PATH": "/usr/bin:/bin"}
    )
    driver = await _off_loop(lambda: webdriver.Chrome(service=driver_service, options=options))
    try:

        async def open_page(path: str, shot: str) -> str:
            await _off_loop(driver.get, service.base + path)
            await _off_loop(driver.save_screenshot, str(shots / f"{shot}.png"))
            return str(driver.title)

        def left_page(_driver: object = None) -> bool:
            """The document marked before a click is gone and the next one has loaded."""
            return bool(
                driver.execute_script(
                    "return window.zseOldPage === undefined && document.readyState === 'complete'"
                )
            )

        async def submit(shot: str, form: str = "form") -> None:
            """Click the form's button and wait until the next page has replaced this one.

            The old page is told apart by a mark on its window, not by its nodes: Chromium may
            answer a question about a node of a page being replaced with "unknown error"
            rather than "stale element", which Selenium's ``staleness_of`` does not expect.
            """
            await _off_loop(driver.save_screenshot, str(shots / f"{shot}.png"))
            driver.execute_script("window.zseOldPage = true")
            wait = WebDriverWait(driver, 30, ignored_exceptions=(WebDriverException,))
            for attempt in range(3):  # Chromium may renumber its nodes under a found button
                button = driver.find_element(By.CSS_SELECTOR, f"{form} button[type=submit]")
                try:
                    await _off_loop(button.click)
                    break
                except WebDriverException:
                    # The click may have gone through all the same: click again only if the
                    # marked page is still there some seconds later, so nothing is sent twice.
                    settled = WebDriverWait(driver, 5, ignored_exceptions=(WebDriverException,))
                    try:
                        await _off_loop(settled.until, left_page)
                        break
                    except TimeoutException:
                        if attempt == 2:
                            raise
            await _off_loop(wait.until, left_page)

        assert await open_page("/", "1-han-main") == "HAN main - HAN service"
        assert driver.find_element(By.ID, "retailer").text == "retailer-a"
        device = service.sims.devices[0]
        await open_page("/provision", "2-han-provisioning")
        Select(driver.find_element(By.ID, "meter")).select_by_value(device.meter)
        Select(driver.find_element(By.ID, "device_type")).select_by_value(device.device_type)
        driver.find_element(By.ID, "mac").send_keys(device.mac)
        driver.find_element(By.ID, "label").send_keys("hall display")
        await submit("2b-han-provisioning-filled")
        assert driver.title == "Enter HAN security credentials - HAN service"
        driver.find_element(By.ID, "install_code").send_keys(device.install_code)
        await submit("3-enter-han-security-credentials")
        mac = device.mac.replace(":", "").upper()
        assert driver.title == f"Device {mac} - HAN service"
        for _ in range(60):
            await asyncio.sleep(5)  # virtual: the device joins and runs CBKE
            if service.headend.device("retailer-a", mac)["state"] == "meter ready":
                break
        for slug in (
            "new",
            "pending-provisioning",
            "meter-ready",
            "pending-de-provisioning",
            "de-provision-complete",
        ):
            await open_page(f"/state/{slug}", f"4-state-{slug}")
        await open_page("/state/meter-ready", "4-state-meter-ready")
        assert mac in driver.find_element(By.TAG_NAME, "table").text
        await open_page("/groups", "5-groups")
        driver.find_element(By.ID, "name").send_keys("home")
        driver.find_element(By.CSS_SELECTOR, f"input[value='{device.meter}']").click()
        await submit("5b-groups-filled")
        await open_page("/send", "6-send")
        driver.find_element(By.ID, "text").send_keys("Peak price 5-8pm")
        await submit("6b-send-message")
        assert driver.title.startswith("Send ")
        for _ in range(30):
            await asyncio.sleep(1)
            await _off_loop(driver.refresh)
            if driver.find_element(By.ID, "status").text == "finished":
                break
        await _off_loop(driver.save_screenshot, str(shots / "7-outcomes.png"))
        assert "delivered" in driver.find_element(By.TAG_NAME, "table").text
        await open_page("/send", "7b-send")
        duty = driver.find_element(By.ID, "duty_cycle")
        duty.clear()
        duty.send_keys("40")
        await submit("7c-send-load-control", "form[action='/send/load-control']")
        assert driver.title.startswith("Send ")
        for _ in range(30):
            await asyncio.sleep(1)
            await _off_loop(driver.refresh)
            if mac in driver.find_element(By.TAG_NAME, "table").text and "pending" not in (
                driver.find_element(By.TAG_NAME, "table").text
            ):
                break
        await _off_loop(driver.save_screenshot, str(shots / "7d-load-control-outcomes.png"))
        table = driver.find_element(By.TAG_NAME, "table").text
        assert mac in table
        assert any(word in table for word in ("delivered", "received", "started")), table
        await open_page(f"/devices/{mac}", "8-device")
        await submit("8b-deprovision")
        assert service.headend.device("retailer-a", mac)["state"] in (
            "pending de-provisioning",
            "de-provision complete",
        )
    finally:
        await _off_loop(driver.quit)
    assert len(list(shots.glob("*.png"))) >= 15
