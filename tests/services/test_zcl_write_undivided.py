"""Write Attributes Undivided is all or nothing also when committed (ZCL 2.5.4.3): a
cluster's owner may take a whole frame's records at once (``set_undivided_commit``), check
them together in the frame's order under its own serialization, and commit all or none.
The response has a status record for each record refused, none for the others (ZCL 2.5.5);
a commit that raises is FAILURE for each record. Before, each record's ``on_write`` took it
alone, so one refused or failing at commit left the frame's earlier records written. The
ordinary Write Attributes keeps the per-record path."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import pytest
from zigpy.zcl import foundation

from tests.services.test_zcl_review import PRICE, Bench, answers, message, settle, write_statuses
from tests.services.test_zcl_write_refusal import held

S = foundation.Status
G = foundation.GeneralCommand


class Budget:
    """The owner of Price uint8 attributes 0x0000 (held 5) and 0x0001 (held 6) on ``bench``,
    written freely but for a budget: a value that would bring the sum of the values written
    by a Write Attributes past 20 answers INVALID_VALUE, which only the owner can judge, at
    commit. ``taken``: what it was given to commit, frame by frame."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.taken: list[list[tuple[int, Any]]] = []
        self.spent = 0
        bench.set_attribute(PRICE, 0x0000, 5, type_id=0x20)
        bench.set_attribute(PRICE, 0x0001, 6, type_id=0x20)
        for attr_id in (0x0000, 0x0001):
            bench.set_writable(PRICE, attr_id, on_write=self.on_write)
        bench.set_undivided_commit(PRICE, self.commit)

    def on_write(self, value: Any) -> S | None:
        """One record of a Write Attributes (the per-record path)."""
        self.taken.append([(-1, value)])
        if self.spent + value > 20:
            return S.INVALID_VALUE
        self.spent += value
        return None

    async def commit(self, records: Sequence[tuple[int, Any]]) -> list[S | None]:
        """A Write Attributes Undivided frame: judged in order, then all served or none."""
        self.taken.append(list(records))
        spent, statuses = 0, []
        for _, value in records:
            statuses.append(S.INVALID_VALUE if spent + value > 20 else None)
            spent += value
        if not any(statuses):
            for attr_id, value in records:
                self.bench.set_attribute(PRICE, attr_id, value, type_id=0x20)
        return statuses


def undivided(*records: tuple[int, int], command: int = G.Write_Attributes_Undivided) -> bytes:
    """A Write Attributes Undivided frame (TSN 0x41) of uint8 records (attribute, value)."""
    body = b"".join(attr.to_bytes(2, "little") + bytes((0x20, value)) for attr, value in records)
    return bytes((0x00, 0x41, command)) + body


async def test_a_record_refused_at_commit_leaves_the_frame_unwritten() -> None:
    """The second record of an Undivided frame refused at commit: only it answered, and the
    first, which would have been written, is not (it was). A record the endpoint refuses
    when the frame arrives (unsupported) reaches no commit. The same frame as a Write
    Attributes goes record by record to ``on_write``, as before: the first written."""
    bench = Bench()
    owner = Budget(bench)
    sent = await answers(bench, undivided((0x0000, 9), (0x0001, 15)))
    assert [write_statuses(frame) for frame in sent] == [[(S.INVALID_VALUE, 0x0001)]]
    assert (held(bench, 0x0000), held(bench, 0x0001)) == (5, 6)
    assert owner.taken == [[(0x0000, 9), (0x0001, 15)]]
    owner.taken.clear()
    sent = await answers(bench, undivided((0x0000, 1), (0x0009, 1)))
    assert [write_statuses(frame) for frame in sent] == [[(S.UNSUPPORTED_ATTRIBUTE, 0x0009)]]
    assert (owner.taken, held(bench, 0x0000)) == ([], 5)
    sent = await answers(bench, undivided((0x0000, 9), (0x0001, 15), command=G.Write_Attributes))
    assert [write_statuses(frame) for frame in sent] == [[(S.INVALID_VALUE, 0x0001)]]
    assert (held(bench, 0x0000), held(bench, 0x0001)) == (9, 6)
    assert owner.taken == [[(-1, 9)], [(-1, 15)]]
    assert bench.escaped == []


async def test_a_frame_taken_whole_is_served_as_its_owner_committed_it() -> None:
    """All records taken: SUCCESS alone, each value served once the commit returned (not
    while it runs)."""
    bench = Bench()
    owner = Budget(bench)
    gate = asyncio.Event()

    async def slow(records: Sequence[tuple[int, Any]]) -> list[S | None]:
        await gate.wait()  # a commit under way: the owner's database
        return await owner.commit(records)

    bench.set_undivided_commit(PRICE, slow)
    bench._accept(message(undivided((0x0001, 12), (0x0000, 8))))
    await settle()
    assert (bench.sent, held(bench, 0x0000), held(bench, 0x0001)) == ([], 5, 6)
    gate.set()
    await settle()
    assert owner.taken == [[(0x0001, 12), (0x0000, 8)]]
    assert [write_statuses(frame) for _, _, _, frame in bench.sent] == [[(S.SUCCESS, None)]]
    assert (held(bench, 0x0000), held(bench, 0x0001)) == (8, 12)


async def test_a_commit_that_raises_is_failure_for_each_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The commit raising (mid-frame, in the owner's hands): none of the records is known
    written, so each answers FAILURE (logged once), and nothing is served."""
    bench = Bench()
    Budget(bench)

    def broken(records: Sequence[tuple[int, Any]]) -> list[S | None]:
        raise RuntimeError("the owner's store refused the frame")

    bench.set_undivided_commit(PRICE, broken)
    with caplog.at_level(logging.ERROR, "zse.zcl.endpoint"):
        sent = await answers(bench, undivided((0x0000, 1), (0x0001, 2)))
    assert [write_statuses(frame) for frame in sent] == [[(S.FAILURE, 0x0000), (S.FAILURE, 0x0001)]]
    assert (held(bench, 0x0000), held(bench, 0x0001)) == (5, 6)
    assert len(caplog.records) == 1
    assert bench.escaped == []
