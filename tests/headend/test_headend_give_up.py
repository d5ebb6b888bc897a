"""A device a send cannot reach is given up after the headend's give-up time (``[sends]
give_up_days``, default three days): its outcome is ``expired`` with the reason, the send
finishes, and it is not tried again (a cancel still withdraws it). An "until changed" message
(SE D.5.2.3.1.1.4) to a device that never became METER READY was tried every 900 s for ever."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.headend.helpers import Service
from tests.headend.test_headend_cancel import A, _register
from tests.headend.test_headend_story import _until
from zse.headend.core import GIVE_UP
from zse.headend.pki import HeadendConfigError, init_directory, load_config
from zse.headend.sim import SimDevice
from zse.installcode import canonical_eui64, parse_eui64

HOUR = 3600.0


async def silent_and_skipped(
    service: Service, device: SimDevice, kind: str, body: dict[str, object]
) -> tuple[int, str, Callable[[], dict[str, object]]]:
    """``device`` registered but silent (pending provisioning), a send of ``kind`` to its
    meter's group "g", waited for until its copy is skipped: the send's id, the device's
    canonical MAC and a function giving its copy's outcome now."""
    service.sims.air_of(device).silence(parse_eui64(device.mac))
    registration = {
        "mac": device.mac,
        "install_code": device.install_code,
        "meter": device.meter,
        "device_type": device.device_type,
    }
    assert (await service.call(A, "POST", "/api/v1/devices", registration)).status == 201
    reply = await service.call(A, "POST", "/api/v1/groups", {"name": "g", "meters": [device.meter]})
    assert reply.status == 201, reply.body
    sent = await service.call(A, "POST", f"/api/v1/sends/{kind}", {"group": "g", **body})
    assert sent.status == 202, sent.body
    send_id, mac = sent.body["id"], canonical_eui64(device.mac)

    def outcome() -> dict[str, object]:
        view = service.headend.send(A, send_id)
        return next(o for o in view["outcomes"] if o["mac"] == mac)

    async def skipped() -> bool:
        return outcome()["outcome"] == "skipped"

    await _until(service, skipped, step=1.0)
    return send_id, mac, outcome


async def test_an_until_changed_message_to_a_device_never_ready_expires(service: Service) -> None:
    """The thermostat is never heard (pending provisioning): its copy of an "until changed"
    message was ``skipped`` and retried for ever; after the give-up time it is ``expired``."""
    ihd, thermostat = [d for d in service.sims.devices if d.meter == "meter-1"][:2]
    service.headend.give_up = 2 * HOUR
    await _register(service, [ihd])
    send_id, mac, outcome = await silent_and_skipped(service, thermostat, "message", {"text": "Hi"})
    await asyncio.sleep(HOUR)
    assert outcome()["outcome"] == "skipped"  # still tried within the give-up time
    assert service.headend.retries.pending() == [(send_id, mac)]
    await asyncio.sleep(HOUR + 60)
    expired = outcome()
    assert expired["outcome"] == "expired"
    assert expired["detail"] == (
        "given up: not reached within 2 hours of the send (last try: pending provisioning)"
    )
    assert service.headend.retries.pending() == []
    view = (await service.call(A, "GET", f"/api/v1/sends/{send_id}")).body
    assert view["finished"] is True
    await asyncio.sleep(HOUR)
    assert outcome() == expired  # not tried again
    cancel = await service.call(A, "POST", f"/api/v1/sends/{send_id}/cancel")
    assert cancel.status == 202
    # the ESI still holds it for the thermostat: the expired copy is cancelled too, its
    # Cancel sent again until the thermostat takes it (it was left expired)
    cancelled = outcome()
    assert cancelled["outcome"] == "cancelled"
    assert cancelled["detail"] == (
        "cancel not acknowledged by the device (pending provisioning): sent again"
    )


def test_give_up_days_is_read_from_the_config(tmp_path: Path) -> None:
    """``[sends] give_up_days`` sets the give-up time; three days when it is not given."""
    init_directory(tmp_path)
    path = tmp_path / "headend.toml"
    assert load_config(path).give_up == GIVE_UP == 3 * 86_400
    path.write_text(path.read_text() + "\n[sends]\ngive_up_days = 0.5\n")
    assert load_config(path).give_up == 43_200


@pytest.mark.parametrize("days", ["0", "-1", "367", "nan", '"3"'])
def test_a_give_up_time_out_of_range_is_a_config_error(tmp_path: Path, days: str) -> None:
    """A give-up time of none (every device given up at its first miss), or past a year."""
    init_directory(tmp_path)
    path = tmp_path / "headend.toml"
    path.write_text(path.read_text() + f"\n[sends]\ngive_up_days = {days}\n")
    with pytest.raises(HeadendConfigError, match="give_up_days"):
        load_config(path)
