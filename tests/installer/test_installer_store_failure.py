"""The hub's store fails a commit (for real: StoreError from the store's commit, not a mock of
its state): nothing is lost, nothing runs twice, and what the hub answers in-process is what a
restarted hub answers from the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.installer.site import HUB
from zse.cbke import SUITE1
from zse.cbke.keys import generate_key_pair
from zse.errors import StoreError
from zse.installer.core import (
    BackOffice,
    CommandCode,
    HubLedger,
    Outcome,
    SignedCommand,
    originators_of,
)
from zse.installer.service import InstallerHub
from zse.store import Batch, Store

OFFICE = BackOffice(b"BACKOFF1", generate_key_pair(SUITE1)[0])


class FailingStore(Store):
    """A store whose ``fail_at``-th commits (counted from 1) fail with StoreError, as a full
    or broken disk makes them fail: the batch is not committed."""

    fail_at: frozenset[int] = frozenset()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.commits = 0

    async def commit(self, batch: Batch) -> list[int]:
        self.commits += 1
        if self.commits in self.fail_at:
            raise StoreError(f"{self.where}: cannot commit: disk I/O error")
        return await super().commit(batch)


class Hub:
    """An installer hub on a store file, restartable; ``runs`` counts the handler's runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.runs: list[bytes] = []
        self.store: Store | None = None
        self.hub: InstallerHub | None = None

    async def start(self, fail_at: frozenset[int] = frozenset()) -> InstallerHub:
        FailingStore.fail_at = fail_at
        self.store = await FailingStore.open(self.path)
        handlers = {CommandCode.SET_TARIFF_LABEL: self.label}
        self.hub = InstallerHub(None, originators_of([OFFICE]), handlers, store=self.store, hub=HUB)  # type: ignore[arg-type]
        # what start() does, without a tunnel server: load the ledger from the store
        self.hub.ledger = HubLedger.from_records(
            await self.store.load(self.hub.namespace), self.hub.originators, hub=HUB
        )
        return self.hub

    def label(self, body: bytes) -> bytes:
        self.runs.append(body)
        return b"label " + body

    async def restart(self) -> InstallerHub:
        assert self.store is not None
        await self.store.close()
        return await self.start()

    async def close(self) -> None:
        if self.store is not None:
            await self.store.close()


def command(counter: int = 1) -> SignedCommand:
    return OFFICE.sign(CommandCode.SET_TARIFF_LABEL, b"E7", counter=counter, target=HUB)


async def test_a_begun_record_not_committed_lets_the_resend_run_it_once(tmp_path: Path) -> None:
    """The commit of the 'begun' record fails: the command has not run, and the terminal's
    resend runs it (not INTERRUPTED, which a restarted hub would not say either)."""
    site = Hub(tmp_path / "hub.db")
    try:
        hub = await site.start(fail_at=frozenset({1}))
        with pytest.raises(StoreError, match="cannot commit"):
            await hub.execute(command().encode())
        assert site.runs == []
        assert not hub.ledger.pending
        assert await site.store.load(hub.namespace) == {}  # type: ignore[union-attr]
        answer = await hub.execute(command().encode())  # the terminal sends it again
        assert (answer.status, answer.result) == (Outcome.EXECUTED, b"label E7")
        again = await hub.execute(command().encode())
        assert (again.status, again.result) == (Outcome.DUPLICATE, b"label E7")
        restarted = await site.restart()
        after = await restarted.execute(command().encode())
        assert (after.status, after.result) == (Outcome.DUPLICATE, b"label E7")
        assert site.runs == [b"E7"]  # once, in-process and across the restart
    finally:
        await site.close()


async def test_a_begun_record_not_committed_keeps_older_outcomes(tmp_path: Path) -> None:
    """Abandoning a begin restores the ledger as it was: the counter, and the outcome of the
    command before it (which the begin's bookkeeping may have evicted), are back."""
    site = Hub(tmp_path / "hub.db")
    try:
        hub = await site.start(fail_at=frozenset({3}))
        hub.ledger.keep = 1
        assert (await hub.execute(command(1).encode())).status is Outcome.EXECUTED
        with pytest.raises(StoreError):
            await hub.execute(command(2).encode())
        assert hub.ledger.last_counter(OFFICE.originator) == 1
        first = await hub.execute(command(1).encode())
        assert (first.status, first.result) == (Outcome.DUPLICATE, b"label E7")
        assert (await hub.execute(command(2).encode())).status is Outcome.EXECUTED
        assert site.runs == [b"E7", b"E7"]
    finally:
        await site.close()


async def test_an_outcome_not_committed_is_committed_before_the_next_answer(
    tmp_path: Path,
) -> None:
    """The commit of the 'done' record fails after the command ran: its outcome is not lost
    but committed before the hub answers the resend (DUPLICATE, the stored result), and a
    restarted hub answers the same; the command never runs again."""
    site = Hub(tmp_path / "hub.db")
    try:
        hub = await site.start(fail_at=frozenset({2}))
        with pytest.raises(StoreError, match="cannot commit"):
            await hub.execute(command().encode())
        assert site.runs == [b"E7"]
        assert hub.ledger.pending
        answer = await hub.execute(command().encode())
        assert (answer.status, answer.result) == (Outcome.DUPLICATE, b"label E7")
        assert not hub.ledger.pending
        restarted = await site.restart()
        after = await restarted.execute(command().encode())
        assert (after.status, after.result) == (Outcome.DUPLICATE, b"label E7")
        assert site.runs == [b"E7"]
    finally:
        await site.close()


async def test_an_outcome_whose_commit_fails_again_is_not_answered(tmp_path: Path) -> None:
    """While the outcome cannot be committed the hub answers nothing (StoreError), so it never
    tells the terminal what a restart would not know."""
    site = Hub(tmp_path / "hub.db")
    try:
        hub = await site.start(fail_at=frozenset({2, 3}))
        with pytest.raises(StoreError):
            await hub.execute(command().encode())
        with pytest.raises(StoreError):
            await hub.execute(command().encode())
        assert hub.ledger.pending
        answer = await hub.execute(command().encode())
        assert (answer.status, answer.result) == (Outcome.DUPLICATE, b"label E7")
        assert site.runs == [b"E7"]
    finally:
        await site.close()
