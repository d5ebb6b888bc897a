"""A device's report moves only its own meter's outcomes (found by an audit): the headend's
workers recorded a Report Event Status or a Message Confirmation for the device its payload
named, whatever meter's topic it came on (alone or in a batch, ADR 0027), so a compromised or
misconfigured gateway could mark another meter's device "started" on a send it never had.
Now a report counts only for a job of the meter whose topic it came on, on both engines
(PostgreSQL's compare-and-set write and its locking one), as a lifecycle change already did;
one whose meter is not known (a caller of ``JobQueue.report`` that does not say) moves as
before."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from tests.fleet.helpers import PREFIX, lce, until, worker
from tests.mqtt.broker import Broker
from tests.mqtt.helpers import Subscriber
from zse.headend import queue as queue_module
from zse.headend.core import Outcome, SendKind
from zse.headend.gateway import GatewayLink
from zse.headend.link import Report
from zse.headend.queue import Completion, JobQueue, ReportedOutcome, open_queue
from zse.mqtt.core import parse_settings

ONE, TWO, THREE = "000D6F0000000001", "000D6F0000000002", "000D6F0000000003"
DEVICES = [(ONE, "meter-1"), (TWO, "meter-1"), (THREE, "meter-2")]
QUEUE_LOG = "zse.headend.queue"
#: Gateways' devices: as a payload names them, as a topic level, as the headend keys them.
MAC_1, NODE_1, KEY_1 = "00:0d:6f:00:0a:00:00:01", "000d6f000a000001", "000D6F000A000001"
MAC_2, NODE_2, KEY_2 = "00:0d:6f:00:0a:00:00:02", "000d6f000a000002", "000D6F000A000002"


def _report(device: str, outcome: Outcome, meter: str | None) -> ReportedOutcome:
    kind = SendKind.LOAD_CONTROL
    return ReportedOutcome(send=4, device=device, kind=kind, outcome=outcome, meter=meter)


def _refused(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the queue said of reports refused as another meter's."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == QUEUE_LOG and r.levelno == logging.WARNING and "of meter" in r.getMessage()
    ]


async def _only_its_meters_jobs_move(queue: JobQueue, caplog: pytest.LogCaptureFixture) -> None:
    await queue.enqueue(4, SendKind.LOAD_CONTROL, {"issuer_event_id": 4}, DEVICES, now=0.0)
    held, *others = await queue.claim("a", now=0.0, lease=60.0)  # ONE's stays leased
    assert held.device == ONE
    # the others handed out, their gateways' answers lost: on a retry's back-off (a job
    # never handed out moves on no report at all: test_fleet_foreign_event.py)
    lost = [Completion(job=j, outcome=Outcome.OFFLINE, answered=False) for j in others]
    assert await queue.complete_many("a", lost, now=0.5) == [True, True]
    reports = [
        _report(ONE, Outcome.STARTED, "meter-2"),  # meter-2's gateway on meter-1's device
        _report(THREE, Outcome.RECEIVED, "meter-2"),  # on its own
        _report(TWO, Outcome.RECEIVED, None),  # the meter not known: as before
        _report(ONE, Outcome.COMPLETED, "meter-2"),  # again: said once
        _report(ONE, Outcome.RECEIVED, "meter-1"),  # meter-1's: it moves
    ]
    with caplog.at_level(logging.WARNING, logger=QUEUE_LOG):
        assert await queue.report_many(reports, now=1.0) == [False, True, True, False, True]
        rows = {r.device: (r.outcome, r.state) for r in await queue.rows(4)}
        assert rows == {
            ONE: (Outcome.RECEIVED, "leased"),  # still its holder's to complete
            TWO: (Outcome.RECEIVED, "sent"),
            THREE: (Outcome.RECEIVED, "sent"),
        }
        (said,) = _refused(caplog)
        assert all(name in said for name in ("'meter-2'", f"'{ONE}'", "'meter-1'"))
        assert not any(word in said for word in ("started", "completed", "load"))  # no payload
        kind = SendKind.LOAD_CONTROL
        assert not await queue.report(4, TWO, kind, Outcome.STARTED, now=2.0, meter="meter-2")
        assert not await queue.report(4, ONE, kind, Outcome.STARTED, now=2.0, meter="meter-2")
        assert await queue.report(4, TWO, kind, Outcome.STARTED, now=2.0, meter="meter-1")
        assert await queue.report(4, THREE, kind, Outcome.STARTED, now=2.0)  # the old call
        assert len(_refused(caplog)) == 2  # (meter-2, TWO) said; (meter-2, ONE) not again
    rows = {r.device: r.outcome for r in await queue.rows(4)}
    assert rows == {ONE: Outcome.RECEIVED, TWO: Outcome.STARTED, THREE: Outcome.STARTED}


async def test_a_report_moves_only_a_job_of_its_meter(
    place: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """SQLite (one locking transaction) and PostgreSQL (compare and set)."""
    queue = await open_queue(place("queue"))
    try:
        await _only_its_meters_jobs_move(queue, caplog)
    finally:
        await queue.close()


async def test_postgresqls_locking_write_checks_the_meter_too(
    pg_place: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No round of compare and set: the rows written in a locking transaction at once (what
    is left after :data:`~zse.headend.queue.SWAP_ROUNDS` rounds lost to other workers)."""
    monkeypatch.setattr(queue_module, "SWAP_ROUNDS", 0)
    queue = await open_queue(pg_place("queue"))
    try:
        await _only_its_meters_jobs_move(queue, caplog)
    finally:
        await queue.close()


def _drlc(mac: str, send: int, status: int = 2) -> dict[str, Any]:
    """A bridge's ``ReportReceived`` payload (docs/mqtt.md); status 2: started."""
    told = {"issuer_event_id": send, "event_status": status}
    return {"event": "ReportReceived", "device": mac, "time": 1, "report": told}


async def test_the_link_names_the_meter_of_the_reports_topic() -> None:
    """Each report names the meter level of its topic (a batch's for each of its events),
    whatever device its payload names."""
    link = GatewayLink(
        parse_settings({"url": "mqtt://127.0.0.1", "client_id": "w1"}), prefix=PREFIX
    )
    seen: list[Report] = []
    link.on_report(seen.append)
    confirmed = {"event": "MessageConfirmed", "device": MAC_1, "message": {"message_id": 9}}
    link._handle(f"{PREFIX}/meter-2/{NODE_1}/drlc", json.dumps(_drlc(MAC_1, 4)).encode())
    link._handle(f"{PREFIX}/meter-3/{NODE_1}/message", json.dumps(confirmed).encode())
    entries = [{"topic": f"{NODE_1}/drlc", "payload": _drlc(MAC_1, 5)}]
    entries += [{"topic": f"{NODE_1}/message", "payload": confirmed}]
    link._handle(f"{PREFIX}/meter-4/bridge/events", json.dumps({"events": entries}).encode())
    assert [(r.meter, r.device, r.send) for r in seen] == [
        ("meter-2", MAC_1, 4),
        ("meter-3", MAC_1, 9),
        ("meter-4", MAC_1, 5),
        ("meter-4", MAC_1, 9),
    ]
    await link.close()


@pytest.mark.parametrize("batched", [False, True], ids=["alone", "in-a-batch"])
async def test_a_forged_report_from_another_meters_gateway_moves_nothing(
    broker: Broker, place: Any, caplog: pytest.LogCaptureFixture, batched: bool
) -> None:
    """On a real Mosquitto, a worker of ``zse headend worker``: meter-2's gateway publishes a
    "started" on meter-1's device, then one on its own device; only its own moves. The same
    report from meter-1's gateway moves meter-1's device."""
    queue = await open_queue(place("queue"))
    forger = Subscriber(broker, "forger")
    await forger.connect()

    async def publish(meter: str, *events: tuple[str, dict[str, Any]]) -> None:
        if batched:
            entries = [{"topic": f"{node}/drlc", "payload": payload} for node, payload in events]
            await forger.publish(f"{PREFIX}/{meter}/bridge/events", {"events": entries})
        else:
            for node, payload in events:
                await forger.publish(f"{PREFIX}/{meter}/{node}/drlc", payload)

    outcomes: dict[str, Outcome] = {}

    def reached(device: str) -> Any:
        async def check() -> bool:
            outcomes.update({r.device: r.outcome for r in await queue.rows(11)})
            return outcomes[device] is Outcome.STARTED

        return check

    try:
        devices = [(KEY_1, "meter-1"), (KEY_2, "meter-2")]
        await queue.enqueue(11, SendKind.LOAD_CONTROL, lce(11), devices, now=0.0)
        # leased elsewhere for good: the worker here delivers nothing, it only records reports
        assert len(await queue.claim("elsewhere", now=0.0, lease=1e12)) == 2
        with caplog.at_level(logging.WARNING, logger=QUEUE_LOG):
            async with worker(broker, place("queue"), "w1"):
                await publish("meter-2", (NODE_1, _drlc(MAC_1, 11)), (NODE_2, _drlc(MAC_2, 11)))
                await until(reached(KEY_2))  # recorded after (or with) the forged one
                assert outcomes[KEY_1] is Outcome.PENDING
                await publish("meter-1", (NODE_1, _drlc(MAC_1, 11)))
                await until(reached(KEY_1))
        (said,) = _refused(caplog)
        assert all(name in said for name in ("'meter-2'", f"'{KEY_1}'", "'meter-1'"))
    finally:
        await forger.close()
        await queue.close()
