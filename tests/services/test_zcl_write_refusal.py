"""An attribute's ``on_write`` refusing a written value (ZCL 2.5.3.3, 2.5.5): a check that
can only be made when the value is committed (against state another frame's write changes
meanwhile, as the Time server's ValidUntilTime against LastSetTime) answers its status for
that record, and the value is neither kept nor served. A value is served only once its
``on_write`` took it: while it runs, a Read Attributes answers the value held before."""

from __future__ import annotations

import asyncio
from typing import Any

from zigpy.zcl import foundation

from tests.services.test_zcl_review import (
    PRICE,
    Bench,
    answers,
    message,
    settle,
    write_statuses,
)
from zse.zcl.endpoint import ZclEndpointBase

S = foundation.Status


def held(bench: ZclEndpointBase, attr_id: int) -> Any:
    value = bench.attribute_value(PRICE, attr_id)
    assert value is not None
    return value.value


def refusing_bench() -> Bench:
    """Price uint8 attributes 0x0000 (held 5: its on_write refuses a value over 10 with
    INVALID_VALUE, takes 10 saying SUCCESS), 0x0001 (held 6, written freely)."""
    bench = Bench()
    bench.set_attribute(PRICE, 0x0000, 5, type_id=0x20)
    bench.set_attribute(PRICE, 0x0001, 6, type_id=0x20)

    def on_write(value: Any) -> S | None:
        if value == 10:
            return S.SUCCESS
        return S.INVALID_VALUE if value > 10 else None

    bench.set_writable(PRICE, 0x0000, on_write=on_write)
    bench.set_writable(PRICE, 0x0001)
    return bench


def write(*records: tuple[int, int]) -> bytes:
    """A Write Attributes frame (TSN 0x40) of uint8 records (attribute id, value)."""
    body = b"".join(attr.to_bytes(2, "little") + bytes((0x20, value)) for attr, value in records)
    return b"\x00\x40\x02" + body


async def test_an_on_write_refusing_answers_its_status_and_keeps_the_value_held() -> None:
    bench = refusing_bench()
    sent = await answers(bench, write((0x0000, 11), (0x0001, 8)))
    assert [write_statuses(frame) for frame in sent] == [[(S.INVALID_VALUE, 0x0000)]]
    assert (held(bench, 0x0000), held(bench, 0x0001)) == (5, 8)
    assert bench.escaped == []


async def test_an_on_write_saying_success_or_nothing_takes_the_value() -> None:
    bench = refusing_bench()
    for value in (9, 10):
        sent = await answers(bench, write((0x0000, value)))
        assert [write_statuses(frame) for frame in sent] == [[(S.SUCCESS, None)]]
        assert held(bench, 0x0000) == value


async def test_a_value_is_served_only_once_its_on_write_took_it() -> None:
    """A coroutine ``on_write`` still running (a commit under way): a read serves the value
    held before, whether it then refuses the new one (its status answered, the old value
    kept) or takes it (SUCCESS, the new value served)."""
    bench = Bench()
    bench.set_attribute(PRICE, 0x0000, 5, type_id=0x20)
    verdicts: asyncio.Queue[S | None] = asyncio.Queue()

    async def on_write(value: Any) -> S | None:
        return await verdicts.get()

    bench.set_writable(PRICE, 0x0000, on_write=on_write)
    for verdict, value, answer, after in (
        (S.INVALID_VALUE, 7, [(S.INVALID_VALUE, 0x0000)], 5),
        (None, 8, [(S.SUCCESS, None)], 8),
    ):
        bench.sent.clear()
        bench._accept(message(write((0x0000, value))))
        await settle()
        assert (bench.sent, held(bench, 0x0000)) == ([], 5)
        verdicts.put_nowait(verdict)
        await settle()
        statuses = [write_statuses(frame) for _, _, _, frame in bench.sent]
        assert (statuses, held(bench, 0x0000)) == ([answer], after)
