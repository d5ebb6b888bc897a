"""A cancel over gateways that does not reach its device (found by an audit): the gateway
answers ``ok`` with the device ``offline``, and the job ended ``done``, never sent again.
Now it is sent again on the back-off under a new correlation id until the device
acknowledges it, or ends once the send is over (both engines)."""

from __future__ import annotations

from typing import Any

from zse.headend.control import UNTIL, Control, ControlKind, control_key, untold
from zse.headend.queue import open_queue

DEVICE = "000D6F0000000001"


def _answer(outcome: str, detail: str = "") -> dict[str, Any]:
    """A bridge's ``ok`` answer to a cancel (``result_payload``: one outcome per device)."""
    result = {"outcomes": [{"device": DEVICE, "outcome": outcome, "detail": detail}]}
    return {"status": "ok", "result": result}


async def test_a_cancel_its_device_missed_is_sent_again_until_the_send_is_over(
    place: Any,
) -> None:
    queue = await open_queue(place("queue"))
    control = await Control.open(queue)
    try:
        kind = ControlKind.CANCEL_MESSAGE
        told, late = control_key(kind, 1, DEVICE), control_key(kind, 2, DEVICE)
        await control.enqueue(
            [
                (told, kind, "m1", DEVICE, {"device": DEVICE, "message_id": 1, UNTIL: 5_000.0}),
                (late, kind, "m1", DEVICE, {"device": DEVICE, "message_id": 2, UNTIL: 50.0}),
            ],
            now=0.0,
        )
        jobs = {j.key: j for j in await control.claim("w1", now=0.0, lease=60.0)}
        assert UNTIL not in jobs[told].command()  # the headend's own, never sent
        offline = untold(_answer("offline", "no APS acknowledgement"))
        assert offline == "offline: no APS acknowledgement"
        for job in jobs.values():
            assert await control.complete(job, "w1", answered=True, untold=offline, now=1.0)
        states = {k: (s, d) for k, s, d in await control.jobs()}
        assert states[told] == (
            "ready",
            "cancel not acknowledged by the device (offline: no APS acknowledgement): sent again",
        )
        again = {j.key: j for j in await control.claim("w1", now=100.0, lease=60.0)}
        assert again[told].command()["correlation_id"] == f"{told}:1"  # carried out again
        assert await control.complete(again[told], "w1", answered=True, untold="", now=101.0)
        assert await control.complete(again[late], "w1", answered=True, untold=offline, now=101.0)
        states = {k: (s, d) for k, s, d in await control.jobs()}
        assert states[told] == ("done", "")
        assert states[late] == (
            "done",
            "not told before the send was over (offline: no APS acknowledgement)",
        )
        # acknowledged, or a device that will never be told (de-provisioned): nothing to add
        assert untold(_answer("delivered")) == ""
        assert untold(_answer("skipped", "de-provision complete")) == ""
        assert untold(_answer("skipped", "pending provisioning")).startswith("skipped")
    finally:
        await queue.close()
