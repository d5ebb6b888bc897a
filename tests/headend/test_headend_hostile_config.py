"""What an audit of hostile input fed the headend's configuration and API: a rate of requests
so small that every limited request was a 500 (its wait overflowed), and errors that quoted
a 100 KB meter id or key whole."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.headend.helpers import Service, start_service
from zse.headend.core import MAX_WAIT, RateLimiter
from zse.headend.pki import HeadendConfigError, init_directory, load_config

A = "retailer-a"
HUGE = "m" * 100_000


@pytest.mark.parametrize(
    "rate", ["1e-320", "1e-4", "0.0", "-1", "1e7", "5e-324"], ids=lambda r: f"rate={r}"
)
def test_a_rate_out_of_range_is_a_config_error_naming_the_key(tmp_path: Path, rate: str) -> None:
    init_directory(tmp_path)
    config = tmp_path / "headend.toml"
    original = config.read_text()
    config.write_text(
        original.replace("\nrequests_per_second = 50\n", f"\nrequests_per_second = {rate}\n")
    )
    with pytest.raises(HeadendConfigError, match=r"\[limits\] requests_per_second") as error:
        load_config(config)
    assert str(config) in str(error.value)


@pytest.mark.parametrize(
    ("old", "new", "said"),
    [
        ("burst = 100", "burst = 1.5", "burst must be an integer"),
        ('host = "127.0.0.1"', "host = 1", "host must be a string"),
    ],
)
def test_a_value_of_the_wrong_type_is_said_in_words(
    tmp_path: Path, old: str, new: str, said: str
) -> None:
    """``burst = 1.5`` was "burst must be a int"."""
    init_directory(tmp_path)
    config = tmp_path / "headend.toml"
    config.write_text(config.read_text().replace(old, new, 1))
    with pytest.raises(HeadendConfigError) as error:
        load_config(config)
    assert str(error.value) == f"{config}: {said}"


def test_the_slowest_and_fastest_rates_allowed_load(tmp_path: Path) -> None:
    init_directory(tmp_path)
    config = tmp_path / "headend.toml"
    original = config.read_text()
    for rate in ("1e-3", "1e6"):
        config.write_text(
            original.replace("\nrequests_per_second = 50\n", f"\nrequests_per_second = {rate}\n")
        )
        assert load_config(config).rate == float(rate)


def test_a_tiny_rate_waits_at_most_a_day() -> None:
    """A limiter made by hand (not from headend.toml) with a subnormal rate: its wait was
    infinite, and the Retry-After header an OverflowError (500)."""
    limiter = RateLimiter(1e-320, 1)
    assert limiter.take(A, 0.0) is None
    assert limiter.take(A, 0.0) == MAX_WAIT


async def test_a_tiny_rate_is_a_429_not_a_500(tmp_path: Path) -> None:
    service = await start_service(tmp_path, rate=1e-320)
    try:
        statuses = [(await service.call(A, "GET", "/api/v1/meters")).status for _ in range(5)]
        assert 500 not in statuses
        assert statuses[-1] == 429
    finally:
        await service.close()


@pytest.mark.parametrize(
    ("key", "where"),
    [("[limits]\n", "[limits] "), ("[server]\n", "[server] ")],
)
def test_an_unknown_key_is_quoted_cut_short(tmp_path: Path, key: str, where: str) -> None:
    init_directory(tmp_path)
    config = tmp_path / "headend.toml"
    original = config.read_text()
    assert key in original
    config.write_text(original.replace(key, f"{key}{'k' * 100_000} = 1\n", 1))
    with pytest.raises(HeadendConfigError, match=re.escape(f"{where}unknown key 'kkk")) as error:
        load_config(config)
    assert len(str(error.value)) < 300 + len(str(config))


def test_a_port_of_many_digits_is_quoted_cut_short(tmp_path: Path) -> None:
    init_directory(tmp_path)
    config = tmp_path / "headend.toml"
    original = config.read_text()
    config.write_text(original.replace("\nport = 8443\n", f"\nport = {'9' * 4000}\n", 1))
    with pytest.raises(HeadendConfigError, match="is not a TCP port") as error:
        load_config(config)
    assert len(str(error.value)) < 300 + len(str(config))


async def test_a_huge_meter_id_is_not_echoed_whole(service: Service) -> None:
    group = {"name": "street", "meters": [HUGE]}
    device = next(d for d in service.sims.devices if d.meter == "meter-1")
    registration = {
        "mac": device.mac,
        "install_code": device.install_code,
        "meter": HUGE,
        "device_type": device.device_type,
    }
    for method, path, body in [
        ("POST", "/api/v1/groups", group),
        ("POST", "/api/v1/devices", registration),
    ]:
        reply = await service.call(A, method, path, body)
        assert reply.status == 404, reply.body
        message = reply.body["error"]["message"]
        assert "no meter 'mmmm" in message
        assert message.endswith("…")
        assert len(message) < 100
