"""SE 1.2 supply control on the simulated air: the ESI hosts a prepay meter with supply control
(zse.metering.supply) and a display follows it. One supply state: credit running out turns
the supply off and the display cannot restore it (Local Change Supply NOT_AUTHORIZED); a
top-up gives it back; the utility arms the supply and the consumer restores it from the
display; a Change Supply for later waits across a restart (stored before it is answered) and
applies once at its time; the utility's commands from the display are refused, and with an
authorised sender answered with a Supply Status Response; hostile frames get ZCL statuses.
Real components, virtual time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from zigpy.zcl import foundation

from tests.events.test_events_store_failure import FailingStore
from tests.joined import joined_device
from tests.metering.test_meter_protocol import ENUM8, record
from tests.roles.han_builder import EUIS, START, build, close, restarted
from tests.roles.test_roles_esi_registry import price
from tests.roles.test_roles_prepayment import CODE, METER, PREPAY
from tests.services.test_messaging_restart import CrashingStore, Killed
from tests.services.test_metering_server import reports_to
from zse.errors import StoreError
from zse.metering.core import Readings
from zse.metering.service import MeteringServer
from zse.metering.supply import ARMED, OFF, ON, SupplyChanged
from zse.metering.wire import Metering
from zse.prepayment.core import PrepayConfig, SupplyInterrupted
from zse.prepayment.wire import TopUpResult
from zse.roles.esi import EnergyServiceInterface
from zse.se.ids import METERING
from zse.se.ids import MeteringAttribute as A
from zse.sim import Air
from zse.store import Batch, Store
from zse.zcl.codec import decode_command, encode_command
from zse.zcl.se_endpoint import SE_ENDPOINT_ID, SeEndpoint

S = foundation.Status
G = foundation.GeneralCommand
HOUR = 3600


def esi_options(**supply: object) -> dict:
    return {
        "meter": {**METER, "supply": True, **supply},
        "prepayment": {**PREPAY, "config": PrepayConfig(**PREPAY["config"])},
    }


def change_supply(status: int, when: int, issuer: int, ack: int = 1) -> bytes:
    schema = Metering.ServerCommandDefs.change_supply.schema
    return encode_command(
        schema(provider_id=7, issuer_event_id=issuer, request_date_time=START,
               implementation_date_time=when, proposed_supply_status=status,
               supply_control_bits=ack)
    )  # fmt: skip


async def joined(
    tmp_path, store: Store | None = None, display: dict | None = None, **supply: object
):
    """The ESI (a prepay meter with supply control, ``supply`` its options; ``store``: its
    store) and a prepay display following it (``display``: more of its options), joined and
    settled."""
    options = esi_options(**supply) if store is None else {**esi_options(**supply), "store": store}
    han = await build(tmp_path, **options)
    await han.esi.provision(EUIS["ihd"])
    ihd = han.add("ihd", metering=True, prepayment=True, **(display or {}))
    await ihd.start()
    await asyncio.sleep(30)
    await han.esi.settle()
    assert han.esi.meter is not None
    assert han.esi.meter.supply is not None
    told: list[object] = []
    han.esi.meter.on_event(told.append)
    return han, ihd, told


async def send(ihd, command_id: int, payload: bytes, **options: object):
    return await ihd.metering.endpoint.request(
        0x0000, SE_ENDPOINT_ID, METERING, command_id, payload, encrypt=True, **options
    )


async def restarted_esi(han, **supply: object) -> EnergyServiceInterface:
    """The ESI with supply control restarted on the same store (:func:`restarted`)."""
    again = await restarted(han, **esi_options(**supply))
    assert again.meter is not None
    assert again.meter.supply is not None
    return again


async def meter_on_air(seed: int) -> tuple[Air, SeEndpoint, Any, Callable[[], int]]:
    """A zigpy ESI's SE endpoint serving Metering (no meter yet: the test starts its own) and
    a device joined to it, on the simulated air, 30 s after the join: the air, the SE
    endpoint, the device's endpoint 1 (a Metering client, the utility's sender) and ZigBee
    time running with the loop from START."""
    air = Air(seed=seed)
    app = await air.coordinator(channel=15)
    loop = asyncio.get_running_loop()

    def clock() -> int:
        return START + int(loop.time())

    se = SeEndpoint(app, in_clusters=[METERING])
    await se.start()
    dev = await joined_device(air, app, EUIS["ihd"], device_type=0x0502, out_clusters=[METERING])
    return air, se, dev.endpoints[1], clock


async def test_credit_and_the_consumer_share_one_supply_state(tmp_path) -> None:
    han, ihd, told = await joined(tmp_path)
    esi, meter = han.esi, han.esi.meter
    try:
        assert await ihd.read_supply_status() == ON
        await esi.publish_price(price(1), device=EUIS["ihd"])
        await meter.feed(Readings(summation_delivered=0))
        await meter.feed(Readings(summation_delivered=40_000))  # 40 kWh at 25 p: credit gone
        assert any(isinstance(e, SupplyInterrupted) for e in han.events)
        await asyncio.sleep(1)
        changes = [(e.status, e.before, e.cause) for e in told if isinstance(e, SupplyChanged)]
        assert changes == [(OFF, ON, "credit")]
        assert [e for e in han.events if isinstance(e, SupplyChanged)] == [
            e for e in told if isinstance(e, SupplyChanged)
        ]  # the ESI's application hears it too
        assert await ihd.read_supply_status() == OFF
        # the consumer cannot restore a supply interrupted for credit
        assert await ihd.local_change_supply() == S.NOT_AUTHORIZED
        assert meter.supply.status == OFF
        # a top-up gives it back
        assert (await ihd.top_up(CODE)).result == TopUpResult.Accepted_Supply_Enabled
        await asyncio.sleep(1)
        assert await ihd.read_supply_status() == ON
        # the utility arms the supply; the consumer restores it from the display
        await meter.change_supply(ARMED)
        assert await ihd.read_supply_status() == ARMED
        assert await ihd.local_change_supply() == S.SUCCESS
        assert await ihd.read_supply_status() == ON
        assert [e.cause for e in told if isinstance(e, SupplyChanged)] == [
            "credit", "credit", "change supply", "local change supply"
        ]  # fmt: skip
        # off (not armed): the consumer may not turn it on
        await meter.change_supply(OFF)
        assert await ihd.local_change_supply() == S.NOT_AUTHORIZED
        assert await ihd.read_supply_status() == OFF
    finally:
        await close(han)


async def test_a_change_for_later_waits_across_a_restart_and_applies_once(tmp_path) -> None:
    han, ihd, _ = await joined(tmp_path, authorize=lambda msg: True)
    meter = han.esi.meter
    try:
        at = han.clock() + HOUR
        reply = await send(ihd, 0x0B, change_supply(ARMED, at, issuer=5))
        assert not reply.is_cluster_command
        assert reply.payload[1] == S.SUCCESS
        # stored before it was answered
        stored = await meter.store.load(meter.namespace)
        assert [p[1] for p in stored["supply"]["pending"]] == [5]
        # the ESI restarts (its store on the same file); the change still waits
        again = await restarted_esi(han, authorize=lambda msg: True)
        assert again.meter is not None
        assert again.meter.supply is not None
        told: list[object] = []
        again.on_event(told.append)  # the ESI's listener: the meter holds events until one
        assert again.meter.supply.status == ON
        assert [p.issuer_event_id for p in again.meter.supply.pending] == [5]
        await asyncio.sleep(at - han.clock() - 1)
        assert again.meter.supply.status == ON
        await asyncio.sleep(2)
        assert again.meter.supply.status == ARMED
        assert [e for e in told if isinstance(e, SupplyChanged)] == [
            SupplyChanged(status=ARMED, before=ON, cause="change supply", time=at)
        ]
        assert await ihd.read_supply_status() == ARMED
        assert again.meter.supply.pending == []
        await asyncio.sleep(2 * HOUR)
        assert len([e for e in told if isinstance(e, SupplyChanged)]) == 1  # once
        # now, acknowledged: the Supply Status Response answers
        reply = await send(ihd, 0x0B, change_supply(ON, 0, issuer=6))
        assert reply.is_cluster_command
        assert reply.command_id == 0x0C
        answer, _ = decode_command(Metering, 0x0C, reply.payload, from_server=True)
        assert (answer.issuer_event_id, answer.supply_status) == (6, ON)
    finally:
        await close(han)


async def test_a_display_that_asked_hears_the_supply_status_change_after_a_restart_too(
    tmp_path,
) -> None:
    """The display configures reporting of Supply Status (0x0014, enum8: on a change, 5 s
    apart at least) and hears each change without reading: Off when credit runs out, On when
    a top-up gives it back (5 s after the Off, not sooner), Off/Armed from the utility. The
    record is stored: after the ESI restarts (nothing changed, nothing reported) it hears
    the consumer restore the supply and the credit run out anew, having asked nothing more."""
    han, ihd, _ = await joined(tmp_path)
    esi = han.esi
    try:
        got = reports_to(ihd.metering.endpoint, han.clock)

        def heard() -> list[tuple[int, int]]:
            return [
                (at, values[A.SUPPLY_STATUS]) for at, values in got if A.SUPPLY_STATUS in values
            ]

        configure = record(A.SUPPLY_STATUS, ENUM8, 5, 0)
        reply = await send(ihd, G.Configure_Reporting, configure, cluster_specific=False)
        assert (reply.command_id, reply.payload) == (G.Configure_Reporting_rsp, b"\x00")
        await esi.publish_price(price(1), device=EUIS["ihd"])
        assert esi.meter is not None
        await esi.meter.feed(Readings(summation_delivered=0))
        await asyncio.sleep(10)
        assert heard() == []  # no change, no report (maximum interval 0)
        await esi.meter.feed(Readings(summation_delivered=40_000))  # 40 kWh at 25 p: credit gone
        await asyncio.sleep(1)
        assert [status for _, status in heard()] == [OFF]
        assert (await ihd.top_up(CODE)).result == TopUpResult.Accepted_Supply_Enabled
        await asyncio.sleep(6)
        (off_at, _), (on_at, on) = heard()
        assert (on, on_at - off_at) == (ON, 5)  # the minimum interval after the last report
        await esi.meter.change_supply(ARMED)
        await asyncio.sleep(6)
        assert [status for _, status in heard()] == [OFF, ON, ARMED]
        again = await restarted_esi(han)
        assert again.meter is not None
        again.on_event(han.events.append)  # the ESI holds its account's events until one listens
        await asyncio.sleep(60)
        assert len(heard()) == 3  # Off/Armed stored, and reported before: nothing to report
        assert await ihd.local_change_supply() == S.SUCCESS
        await asyncio.sleep(1)
        await again.publish_price(price(2), device=EUIS["ihd"])  # prices are not stored
        await again.meter.feed(Readings(summation_delivered=40_000 + 80_000))  # the top-up gone
        await asyncio.sleep(6)
        assert again.meter.supply is not None
        assert again.meter.supply.status == OFF
        assert [status for _, status in heard()] == [OFF, ON, ARMED, ON, OFF]
    finally:
        await close(han)


async def test_a_credit_cut_off_is_told_once_not_again_at_each_restart(tmp_path) -> None:
    """Credit runs out: the supply goes Off and SupplyChanged (cause "credit") is told once.
    The ESI restarts on the same store (twice): the supply is still Off, stored with the
    supply, and nothing is told again (before, the meter did not store the credit's
    interruption and the account's state told at start turned it Off once more). Restarted
    without a prepay account, nothing interrupts the supply for credit: On, told once."""
    han, ihd, _ = await joined(tmp_path)
    esi = han.esi
    try:
        await esi.publish_price(price(1), device=EUIS["ihd"])
        assert esi.meter is not None
        await esi.meter.feed(Readings(summation_delivered=0))
        await esi.meter.feed(Readings(summation_delivered=40_000))  # 40 kWh at 25 p: credit gone
        await asyncio.sleep(1)
        cut = [(e.status, e.before, e.cause) for e in han.events if isinstance(e, SupplyChanged)]
        assert cut == [(OFF, ON, "credit")]
        for _ in range(2):
            heard: list[object] = []
            again = await restarted(han, listener=heard.append, **esi_options())
            await asyncio.sleep(1)
            assert again.meter is not None
            assert again.meter.supply is not None
            assert again.meter.supply.status == OFF
            assert [e for e in heard if isinstance(e, SupplyChanged)] == []
            assert await ihd.read_supply_status() == OFF
        heard = []
        again = await restarted(han, listener=heard.append, meter={**METER, "supply": True})
        await asyncio.sleep(1)
        changes = [(e.status, e.before, e.cause) for e in heard if isinstance(e, SupplyChanged)]
        assert changes == [(ON, OFF, "credit")]
        assert await ihd.read_supply_status() == ON
    finally:
        await close(han)


class SupplyWritesFail(Store):
    """A store whose commits of the meter's supply record fail while ``failing`` is set (a
    full disk at that moment), the others going through."""

    failing = False

    async def commit(self, batch: Batch) -> list[int]:
        if self.failing and any(op[0] == "put" and op[2] == "supply" for op in batch._ops):
            raise StoreError("disk full")
        return await super().commit(batch)


async def credit_gone_unstored(tmp_path) -> tuple[SupplyWritesFail, Any, Any]:
    """The ESI (its store, :class:`SupplyWritesFail`) and a display joined; credit runs out
    at a reading whose supply write fails (failing again cleared): the store, HAN, display."""
    store = await SupplyWritesFail.open(tmp_path / "esi.db")
    han, ihd, _ = await joined(tmp_path, store=store)
    esi = han.esi
    assert esi.meter is not None
    await esi.publish_price(price(1), device=EUIS["ihd"])
    await esi.meter.feed(Readings(summation_delivered=0))
    store.failing = True
    await esi.meter.feed(Readings(summation_delivered=40_000))  # 40 kWh at 25 p: credit gone
    store.failing = False
    return store, han, ihd


async def test_a_cut_off_the_meter_could_not_store_is_made_at_the_next_reading(tmp_path) -> None:
    """Credit runs out, the account stores it, but the meter's write of the supply fails:
    the supply stays On (nothing unstored kept). Before, it stayed On until the ESI
    restarted (the account's event is told again only then); now the next reading makes the
    supply follow the account: Off, told once."""
    store, han, ihd = await credit_gone_unstored(tmp_path)
    esi = han.esi
    try:
        assert esi.meter is not None
        assert esi.meter.supply is not None
        await asyncio.sleep(1)
        assert any(isinstance(e, SupplyInterrupted) for e in han.events)
        assert esi.meter.supply.status == ON
        await esi.meter.feed(Readings(summation_delivered=40_000))
        await asyncio.sleep(1)
        assert esi.meter.supply.status == OFF
        cut = [(e.status, e.before, e.cause) for e in han.events if isinstance(e, SupplyChanged)]
        assert cut == [(OFF, ON, "credit")]
        assert await ihd.read_supply_status() == OFF
    finally:
        await close(han)
        await store.close()


async def test_an_account_event_told_again_after_a_restart_does_not_cut_a_supply_with_credit(
    tmp_path,
) -> None:
    """Credit runs out but the meter's write fails: the account's SupplyInterrupted stays
    untold (told again after the next start). The next reading cuts the supply off, a top-up
    gives it back, and the ESI restarts. The old SupplyInterrupted told again must not turn
    Off a supply the account (topped up) does not interrupt: the meter follows the account
    as it is, not an event of what it was."""
    store, han, ihd = await credit_gone_unstored(tmp_path)
    esi = han.esi
    try:
        assert esi.meter is not None
        await esi.meter.feed(Readings(summation_delivered=40_000))  # the supply follows: Off
        assert (await ihd.top_up(CODE)).result == TopUpResult.Accepted_Supply_Enabled
        await asyncio.sleep(1)
        assert await ihd.read_supply_status() == ON
        heard: list[object] = []
        again = await restarted(han, listener=heard.append, store=store, **esi_options())
        await asyncio.sleep(1)
        assert again.prepayment is not None
        assert not again.prepayment.account.interrupted
        assert [e for e in heard if isinstance(e, SupplyChanged)] == []
        assert again.meter is not None
        assert again.meter.supply is not None
        assert again.meter.supply.status == ON
        assert await ihd.read_supply_status() == ON
    finally:
        await close(han)
        await store.close()


async def test_the_display_may_not_send_the_utilitys_commands_and_garbage_gets_a_status(
    tmp_path,
) -> None:
    han, ihd, told = await joined(tmp_path)
    meter = han.esi.meter
    try:
        reply = await send(ihd, 0x0B, change_supply(OFF, 0, issuer=1))
        assert not reply.is_cluster_command
        assert reply.payload[1] == S.NOT_AUTHORIZED
        reply = await send(ihd, 0x0A, bytes(8))  # Reset Load Limit Counter
        assert reply.payload[1] == S.NOT_AUTHORIZED
        reply = await send(ihd, 0x0C, b"")  # Local Change Supply without its field
        assert reply.payload[1] == S.MALFORMED_COMMAND
        reply = await send(ihd, 0x0C, b"\x09")
        assert reply.payload[1] == S.INVALID_VALUE
        assert meter.supply.status == ON
        assert not [e for e in told if isinstance(e, SupplyChanged)]
    finally:
        await close(han)


@pytest.mark.parametrize("after", [False, True], ids=["before", "after"])
async def test_killed_at_the_supply_commit_a_change_is_kept_only_once_stored(
    tmp_path, after
) -> None:
    """The meter is killed (nothing after the commit runs) at the commit of a Change Supply
    for later, before or after it: no SUCCESS went out either way; restarted on the same
    file, the change waits (and applies at its time) only if it was stored."""
    air, se, ep, clock = await meter_on_air(seed=80 + after)
    path = tmp_path / f"killed-{after}.db"
    store = await CrashingStore.open(path)
    options = {"clock": clock, "supply": True, "authorize": lambda msg: True}
    meter = MeteringServer(se, store=store, **options)
    await meter.start()
    store.crash_at, store.after = len(store.commits) + 1, after
    at = clock() + HOUR
    try:
        reply = await ep.request(
            0x0000, SE_ENDPOINT_ID, METERING, 0x0B, change_supply(OFF, at, issuer=3, ack=0),
            encrypt=True,
        )  # fmt: skip
    except (TimeoutError, Killed):
        pass  # no answer: the process died
    else:
        assert reply.payload[1] != S.SUCCESS  # never a SUCCESS for a change not kept
    assert store.dead
    with contextlib.suppress(Killed):  # the dead process's stop: its store is dead too
        await meter.stop()
    await Store.close(store)
    store = await Store.open(path)
    meter = MeteringServer(se, store=store, **options)
    await meter.start()
    assert meter.supply is not None
    assert [p.issuer_event_id for p in meter.supply.pending] == ([3] if after else [])
    await asyncio.sleep(at - clock() + 1)
    assert meter.supply.status == (OFF if after else ON)
    await meter.stop()
    await store.close()
    air.close()


async def test_a_change_supply_whose_write_fails_changes_nothing(tmp_path) -> None:
    """The store write of a Change Supply fails (a full disk): the sender is answered
    FAILURE and the supply is as it was, served and held (it was Off in memory, written with
    the next commit, while the utility was told the change failed)."""
    air, se, ep, clock = await meter_on_air(seed=82)
    store = await FailingStore.open(tmp_path / "meter.db")
    meter = MeteringServer(se, store=store, clock=clock, supply=True, authorize=lambda _m: True)
    try:
        await meter.start()
        assert meter.supply is not None
        store.fail_next = True
        reply = await ep.request(
            0x0000, SE_ENDPOINT_ID, METERING, 0x0B, change_supply(OFF, 0, issuer=3, ack=0),
            encrypt=True,
        )  # fmt: skip
        assert reply.payload[1] == S.FAILURE
        assert meter.supply.status == ON
        assert not meter.supply.changed
        # the next write does not carry it either: the store still says On
        await meter.change_supply(ARMED)
        await meter.change_supply(ON)
        assert (await store.load(meter.namespace))["supply"]["utility"] == ON
        reply = await ep.request(
            0x0000, SE_ENDPOINT_ID, METERING, 0x0B, change_supply(OFF, 0, issuer=4, ack=0),
            encrypt=True,
        )  # fmt: skip
        assert reply.payload[1] == S.SUCCESS
        assert meter.supply.status == OFF
        # the application's own change and count, their writes failing: not made either
        told: list[object] = []
        meter.on_event(told.append)
        for call in (meter.change_supply(ON), meter.count_load_limit()):
            store.fail_next = True
            with pytest.raises(StoreError):
                await call
        assert (meter.supply.status, meter.supply.load_limit_counter) == (OFF, 0)
        assert (told, meter.supply.changed) == ([], False)
        await meter.count_load_limit()  # the next write carries neither
        stored = (await store.load(meter.namespace))["supply"]
        assert (stored["utility"], stored["load_limit_counter"]) == (OFF, 1)
    finally:
        await meter.stop()
        await Store.close(store)
        air.close()
