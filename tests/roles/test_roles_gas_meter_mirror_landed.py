"""A mirror's change whose store write does not end normally (simulator, virtual clock): one
cancelled during its transaction, which the store carries out (``Batch.landed``), is served
and told as stored; one that fails or is cancelled before its transaction changes nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import zigpy.types as t
from zigpy.zcl import foundation

from tests.events.test_events_store_failure import CommitWaits, FailingStore
from tests.metering.test_metering_mirror_notification import frame
from tests.roles.han_builder import Han, build, close
from tests.roles.test_roles_gas_meter_mirror import GAS_EUI, meter
from tests.roles.test_roles_gas_meter_notified_told import restarted
from tests.services.test_supply_told import TransactionSlow, cancelled_in_its_transaction
from tests.services.test_told_in_hand import Keeping
from zse.metering.core import Readings
from zse.metering.mirroring import MirrorServer
from zse.metering.notification import (
    FUNCTIONAL_FLAGS,
    FunctionalFlag,
    NotificationFlagsRaised,
    NotifiedMessageRequested,
)
from zse.metering.wire import Metering
from zse.roles.gas_meter import MirrorRefused
from zse.se.ids import METERING
from zse.store import Store

GAS = t.EUI64.convert(GAS_EUI)
MIRROR = 10
TIME_SYNC = int(FunctionalFlag.TIME_SYNC)
DISPLAY = int(FunctionalFlag.DISPLAY_MESSAGE)


class MirrorWrites(FailingStore, CommitWaits, TransactionSlow):
    """The mirrors' store: its next commit fails, waits until cancelled, or is slow once
    begun (the mirror's record, key ``"10"``)."""

    key = str(MIRROR)


async def mirrored(tmp_path: Path) -> tuple[Han, MirrorServer, MirrorWrites]:
    """A gas meter with a mirror (TimeSync raised), whose next writes go to a
    :class:`MirrorWrites` store."""
    han = await build(tmp_path, mirrors=1)
    await meter(han, GAS_EUI, notifications=1)
    mirrors = han.esi.mirrors
    assert mirrors is not None
    await mirrors.raise_flags(GAS_EUI, TIME_SYNC)
    store = await MirrorWrites.open(tmp_path / "mirrors.db")
    mirrors.store = store
    return han, mirrors, store


def served_flags(mirrors: MirrorServer) -> int:
    """The mirror's FunctionalNotificationFlags as its endpoint answers a read of them."""
    return int(mirrors.endpoints[MIRROR].client_attributes[METERING][FUNCTIONAL_FLAGS].value)


def get_notified_message() -> Any:
    """The gas meter's Get Notified Message for TimeSync, as its mirror endpoint decodes it."""
    return frame(
        Metering.ClientCommandDefs.get_notified_message,
        GAS,
        MIRROR,
        notification_scheme=1,
        notification_flag_attribute_id=FUNCTIONAL_FLAGS,
        notification_flags=TIME_SYNC,
    )


def told(han: Han) -> list[int]:
    return [e.flags for e in han.events if isinstance(e, NotificationFlagsRaised)]


async def test_flags_whose_write_is_cancelled_during_its_transaction_are_served_and_told(
    tmp_path,
) -> None:
    """Before, they were held and stored but served (read by the meter, or answered in its
    next Mirror Report Attribute Response... that one from memory) and told only with the
    mirror's next change: the application never heard of them."""
    han, mirrors, store = await mirrored(tmp_path)
    try:
        await cancelled_in_its_transaction(store, mirrors.raise_flags(GAS_EUI, DISPLAY))
        assert (served_flags(mirrors), told(han)) == (
            TIME_SYNC | DISPLAY,
            [TIME_SYNC, TIME_SYNC | DISPLAY],
        )
    finally:
        await Store.close(store)
        await close(han)


async def test_a_get_notified_message_cancelled_during_its_write_is_told_at_once(
    tmp_path,
) -> None:
    """The meter's Get Notified Message (as its mirror endpoint decodes it) is cancelled once
    its write's transaction has begun, which the store carries out: the
    flags are cleared, as stored, and the application is told the request at once, marked,
    not again after the restart. Before, it was told only after the next restart."""
    han, mirrors, store = await mirrored(tmp_path)
    asked = get_notified_message()
    try:
        await cancelled_in_its_transaction(store, mirrors._on_configure(asked))
        await asyncio.sleep(1)  # the ESI runs on
        assert [
            (e.attribute, e.flags) for e in han.events if isinstance(e, NotifiedMessageRequested)
        ] == [(FUNCTIONAL_FLAGS, TIME_SYNC)]
    finally:
        await Store.close(store)
        await close(han)
    assert await restarted(tmp_path / "mirrors.db") == []  # told once


async def test_flags_whose_write_is_cancelled_before_its_transaction_are_not_raised(
    tmp_path,
) -> None:
    """Before, they stayed raised in memory (answered to the meter's next report) and the
    mirror's next write stored them, never told."""
    han, mirrors, store = await mirrored(tmp_path)
    try:
        store.wait_next = True
        raising = asyncio.ensure_future(mirrors.raise_flags(GAS_EUI, DISPLAY))
        await asyncio.sleep(1)
        raising.cancel()
        with pytest.raises(asyncio.CancelledError):
            await raising
        assert mirrors.pool.notifications(MIRROR).flags == {FUNCTIONAL_FLAGS: TIME_SYNC}
    finally:
        await Store.close(store)
        await close(han)


async def test_a_report_whose_write_fails_changes_nothing(tmp_path) -> None:
    """The meter's report is answered FAILURE and the mirror holds what the store does.
    Before, the values stayed in memory, served with the mirror's next change and written
    then, though the meter was told they were not taken."""
    han, mirrors, store = await mirrored(tmp_path)
    try:
        held = dict(mirrors.pool.values(MIRROR))
        store.fail_next = True
        gas = han.devices[GAS_EUI]
        assert await gas.wake_up(Readings(summation_delivered=4242)) == foundation.Status.FAILURE
        assert mirrors.pool.values(MIRROR) == held
    finally:
        await Store.close(store)
        await close(han)


async def test_a_remove_mirror_whose_write_fails_frees_nothing(tmp_path) -> None:
    """Before, the mirror was freed in memory (offered to the next meter asking) while the
    store, and so a restart, kept it the gas meter's."""
    han, mirrors, store = await mirrored(tmp_path)
    try:
        store.fail_next = True
        with pytest.raises(MirrorRefused):  # answered FAILURE
            await han.devices[GAS_EUI].remove_mirror()
        assert mirrors.pool.owner(MIRROR) == GAS
    finally:
        await Store.close(store)
        await close(han)


async def test_a_change_made_while_another_waits_is_not_undone_by_its_put_back(
    tmp_path,
) -> None:
    """Changes to the mirrors are made one at a time: a change whose write is cancelled
    before its transaction puts the mirror back as it was before it, which must not take
    back another change made meanwhile. Before, the second change was made (and stored,
    with the first's flag) while the first waited, and the first's put back undid both in
    memory: memory and the store apart until a restart."""
    han, mirrors, store = await mirrored(tmp_path)
    stay_awake = int(FunctionalFlag.STAY_AWAKE_REQUEST_HAN)
    try:
        store.wait_next = True
        first = asyncio.ensure_future(mirrors.raise_flags(GAS_EUI, DISPLAY))
        await asyncio.sleep(1)
        second = asyncio.ensure_future(mirrors.raise_flags(GAS_EUI, stay_awake))
        await asyncio.sleep(1)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        await second
        assert mirrors.pool.notifications(MIRROR).flags == {
            FUNCTIONAL_FLAGS: TIME_SYNC | stay_awake
        }
        assert await store.get(mirrors.namespace, str(MIRROR)) == mirrors.pool.record(MIRROR)
    finally:
        await Store.close(store)
        await close(han)


@pytest.mark.parametrize("held", [False, True], ids=["live", "held-then-told"])
async def test_the_esis_stop_waits_for_a_request_being_told(tmp_path, held: bool) -> None:
    """The meter's Get Notified Message, told in the mirrors' task (the answer does not wait
    for the listeners), or held (no listener) and told once one is attached (the ESI's
    task): the ESI's stop waits until the application has it in hand, and it is marked, not
    told again after the restart (the stop cancelled the telling: told twice)."""
    han, mirrors, store = await mirrored(tmp_path)
    keeping = Keeping()
    if held:
        han.esi._hold_untold()  # as a detach of the last listener does
    else:
        han.esi.on_event(keeping)
    try:
        await mirrors._on_configure(get_notified_message())
        await asyncio.sleep(1)
        if held:
            assert keeping.events == []
            han.esi.on_event(keeping)  # tells what is held, in the ESI's task
            await asyncio.sleep(1)
        assert [type(e) for e in keeping.events] == [NotifiedMessageRequested]
        stopping = asyncio.ensure_future(han.esi.stop())
        await asyncio.sleep(1)
        assert not stopping.done()  # waits for the application
        keeping.futures[0].set_result(None)
        await stopping
    finally:
        await Store.close(store)
        await close(han)
    assert await restarted(tmp_path / "mirrors.db") == []  # told once
