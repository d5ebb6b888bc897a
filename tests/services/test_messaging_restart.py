"""Kill-and-restart: a process killed at every commit of a message's life, on either side,
loses no accepted message and ends with each transition reported exactly once."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from tests.services.test_messaging_service import han as sim_han
from zse.messaging import Message, MessageDisplayed
from zse.messaging.service import (
    MESSAGING,
    DeviceAddress,
    MessageConfirmed,
    MessagingClient,
    MessagingServer,
)
from zse.store import Batch, Store
from zse.zcl.se_endpoint import SE_ENDPOINT_ID

MESSAGE = Message(message_id=0x77, text="Meter read tomorrow 9:00", duration_in_minutes=30,
                  confirmation_required=True)  # fmt: skip
CONFIRM = 0x01


class Killed(BaseException):
    """The process dies here (a BaseException: nothing in zse catches it)."""


class CrashingStore(Store):
    """A store whose process is killed at its ``crash_at``-th commit, before or after it."""

    crash_at: int | None = None
    after = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.commits: list[tuple[str, ...]] = []
        self.dead = False

    async def commit(self, batch: Batch) -> list[int]:
        if self.dead:
            raise Killed
        self.commits.append(tuple(sorted({op for op, *_ in batch._ops})))
        if len(self.commits) == self.crash_at and not self.after:
            self.dead = True
            raise Killed
        result = await super().commit(batch)
        if len(self.commits) == self.crash_at:
            self.dead = True
            raise Killed
        return result


async def han(seed: int):
    _, _, se, _, [(dev, ep)], clock = await sim_han(seed, serve=False)
    wire: list[int] = []  # Message Confirmation frames the ESI received
    se.add_handler(
        MESSAGING,
        lambda m: (
            wire.append(m.command_id) if not m.from_server and m.command_id == CONFIRM else None
        ),
    )
    return se, ep, DeviceAddress(nwk=dev.nwk, ieee=dev.ieee, endpoint=1), clock, wire


async def device_life(tmp_path, seed: int, crash_at: int | None, after: bool):
    """The device's side of a message's life, killed at one commit, then restarted."""
    se, ep, address, clock, wire = await han(seed)
    server = MessagingServer(se, clock=clock)
    await server.start()
    told: list[MessageConfirmed] = []
    server.on_event(told.append)
    shown: list[int] = []
    path = tmp_path / f"device-{crash_at}-{after}.db"
    store = await CrashingStore.open(path)
    store.crash_at, store.after = crash_at, after
    client = MessagingClient(ep, server_ep=SE_ENDPOINT_ID, clock=clock, store=store)
    client.on_event(lambda e: shown.append(e.message.message_id)
                    if isinstance(e, MessageDisplayed) else None)  # fmt: skip
    end = None
    try:
        await client.start()
        await server.display(MESSAGE, device=address)
        end = clock() + 30 * 60
        await asyncio.sleep(1)
        if store.dead:
            raise Killed
        await client.confirm(MESSAGE.message_id)
        await asyncio.sleep(end - clock() + 1)
        if store.dead:
            raise Killed
    except Killed:
        await client.stop()
        await Store.close(store)
        await asyncio.sleep(5)  # the device reboots
        store = await CrashingStore.open(path)
        client = MessagingClient(ep, server_ep=SE_ENDPOINT_ID, clock=clock, store=store)
        client.on_event(lambda e: shown.append(e.message.message_id)
                        if isinstance(e, MessageDisplayed) else None)  # fmt: skip
        await client.start()  # replays confirmations owed, fetches the last message
        if end is None:
            await server.display(MESSAGE, device=address)
            end = clock() + 30 * 60
            await asyncio.sleep(1)
        if client.current() == MESSAGE and client.board.confirmation_of(0x77) is None:
            await client.confirm(MESSAGE.message_id)
        # A message fetched again is re-timed to whole minutes (rounded up): up to 59 s more.
        await asyncio.sleep(max(0, end - clock() + 60))
    owed = await store.unreported(client.namespace)
    commits = store.commits
    await client.stop()
    await Store.close(store)
    return commits, told, shown, wire, owed, client


async def test_device_uninterrupted_life_and_its_commits(tmp_path):
    commits, told, shown, wire, owed, client = await device_life(tmp_path, 50, None, False)
    # start, display accepted, confirmation written ahead, confirmation marked, expiry
    assert commits == [("clear", "put"), ("clear", "put"), ("append", "clear", "put"),
                       ("mark",), ("clear", "put")]  # fmt: skip
    assert [c.device for c in told] == [str(client.endpoint.device.ieee)]
    assert (shown, wire, owed, client.current()) == ([0x77], [CONFIRM], [], None)


@pytest.mark.parametrize("after", [False, True], ids=["before", "after"])
@pytest.mark.parametrize("crash_at", [1, 2, 3, 4, 5])
async def test_device_killed_at_each_commit(tmp_path, crash_at, after):
    _, told, shown, wire, owed, client = await device_life(tmp_path, 50, crash_at, after)
    # The ESI's application hears of the confirmation exactly once, whatever happened.
    assert len(told) == 1
    assert told[0].confirmation.message_id == 0x77
    # The message was accepted and shown (again after the reboot, if it was on screen).
    assert set(shown) == {0x77}
    # On the wire the confirmation went once, twice only if killed between send and mark.
    sent_not_marked = crash_at == 4 and not after
    assert wire == [CONFIRM] * (2 if sent_not_marked else 1)
    # Nothing owed, nothing left on screen after the message's 30 minutes.
    assert owed == []
    assert client.current() is None
    assert client.held() == []


async def esi_life(tmp_path, seed: int, crash_at: int | None, after: bool):
    """The ESI's side: it is killed at one commit, then restarted on the same endpoint."""
    se, ep, address, clock, _ = await han(seed)
    path = tmp_path / f"esi-{crash_at}-{after}.db"
    store = await CrashingStore.open(path)
    store.crash_at, store.after = crash_at, after
    server = MessagingServer(se, clock=clock, store=store)
    told: list[MessageConfirmed] = []
    server.on_event(told.append)
    client = MessagingClient(ep, server_ep=SE_ENDPOINT_ID, clock=clock, retry_interval=60)
    await client.start(fetch=False)
    sent = False
    try:
        await server.start()
        await server.display(MESSAGE, device=address)
        sent = True
        await asyncio.sleep(1)
        await client.confirm(MESSAGE.message_id)
        await asyncio.sleep(1)
        if store.dead:
            raise Killed
    except Killed:
        with contextlib.suppress(Killed):  # the stop's commit of what it holds: dead too
            await server.stop()
        await Store.close(store)
        await asyncio.sleep(30)  # the ESI reboots
        store = await CrashingStore.open(path)
        server = MessagingServer(se, clock=clock, store=store)
        server.on_event(told.append)
        await server.start()  # tells confirmations not yet told
        if not sent:
            await server.display(MESSAGE, device=address)
            await asyncio.sleep(1)
            await client.confirm(MESSAGE.message_id)
        await asyncio.sleep(120)  # the device retries a confirmation it still owes
    owed = await store.unreported(server.namespace)
    view = server.confirmations(MESSAGE.message_id)
    commits = store.commits
    with contextlib.suppress(Killed):
        await Store.close(store)
    await client.stop()
    return commits, told, view, owed, client


async def test_esi_uninterrupted_life_and_its_commits(tmp_path):
    commits, told, view, owed, client = await esi_life(tmp_path, 51, None, False)
    # display stored, confirmation stored with its event written ahead, event marked told;
    # only the records that changed are written (no rewrite of the whole state)
    assert commits == [("put",), ("append", "put"), ("mark",)]
    assert len(told) == 1
    assert list(view) == [str(client.endpoint.device.ieee)]
    assert owed == []


@pytest.mark.parametrize("after", [False, True], ids=["before", "after"])
@pytest.mark.parametrize("crash_at", [1, 2, 3])
async def test_esi_killed_at_each_commit(tmp_path, crash_at, after):
    _, told, view, owed, client = await esi_life(tmp_path, 51, crash_at, after)
    ieee = str(client.endpoint.device.ieee)
    # The confirmation is in the ESI's view once, and nothing is owed.
    assert list(view) == [ieee]
    assert owed == []
    # The application is told once; twice only if killed after telling, before the mark.
    told_not_marked = crash_at == 3 and not after
    assert [c.device for c in told] == [ieee] * (2 if told_not_marked else 1)


async def test_tampered_message_is_quarantined_and_the_server_serves_the_rest(tmp_path):
    """#12.16/#12.17: a stored message edited behind zse's back fails its checksum; the
    server still starts, with that record set aside (kept, logged, listed), the rest served."""
    import dataclasses  # noqa: PLC0415
    import sqlite3  # noqa: PLC0415

    se, _, address, clock, _ = await han(52)
    path = tmp_path / "esi.db"
    other = dataclasses.replace(MESSAGE, message_id=0x78, text="Tariff change")
    async with await Store.open(path) as store:
        server = MessagingServer(se, clock=clock, store=store)
        await server.start()
        await server.display(MESSAGE, device=address)
        await server.display(other, device=address)
        await server.stop()
    raw = sqlite3.connect(path)
    raw.execute("UPDATE records SET value = '{' WHERE key = 'msg/00000077'")
    raw.commit()
    raw.close()
    async with await Store.open(path) as store:
        server = MessagingServer(se, clock=clock, store=store)
        await server.start()
        await server.stop()
        assert sorted(server.messages.messages) == [0x78]
        [bad] = await store.quarantined("messaging.server/9")
        assert (bad.key, bad.value) == ("msg/00000077", "{")
        assert bad.reason.startswith("checksum mismatch")
