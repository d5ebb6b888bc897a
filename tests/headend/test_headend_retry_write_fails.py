"""A back-off retry whose outcome cannot be written (the store fails once) is tried again
after the back-off's first step: the retry had taken the copy from the headend's retries,
so it waited for a restart, its copy ``offline`` in the records though delivered."""

from __future__ import annotations

import asyncio

import pytest

from tests.headend.helpers import Service
from tests.headend.test_headend_cancel import A, _register
from tests.headend.test_headend_cancel_at_once import (
    NO_APS_ACK,
    SLACK,
    _details,
    _failing_once,
    _off,
    _writes,
)
from zse.headend.core import RETRY_SCHEDULE
from zse.installcode import canonical_eui64, parse_eui64


async def test_a_retry_whose_outcome_cannot_be_written_is_tried_again(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = next(d for d in service.sims.devices if d.meter == "meter-1")
    mac = canonical_eui64(one.mac)
    await _register(service, [one])
    reply = await service.call(A, "POST", "/api/v1/groups", {"name": "g", "meters": ["meter-1"]})
    assert reply.status == 201, reply.body
    _off(service, [one])
    send_id = (await service.headend.send_message(A, {"group": "g", "text": "one"}))["id"]
    await asyncio.sleep(NO_APS_ACK + SLACK)
    assert _details(service, send_id)[mac][0] == "offline"
    service.sims.air_of(one).restore(parse_eui64(one.mac))
    refused = _failing_once(service, monkeypatch, lambda b: _writes(b, send_id, "delivered"))
    await asyncio.sleep(RETRY_SCHEDULE[0] + SLACK)  # the retry: delivered, not written
    assert refused
    assert _details(service, send_id)[mac][0] == "offline"
    await asyncio.sleep(RETRY_SCHEDULE[0] + SLACK)
    assert _details(service, send_id)[mac][0] == "delivered"
