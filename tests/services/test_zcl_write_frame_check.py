"""A cluster's owner may check a Write Attributes frame's records when it arrives in the
frame's order, each as if the records before it were written (ZCL 2.5.3.3), in place of each
attribute's own check (``set_frame_check``): it is given the records the endpoint's own
checks passed, and answers a status per record; raising is FAILURE for each (logged)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pytest
from zigpy.zcl import foundation

from tests.services.test_zcl_review import PRICE, Bench, answers, write_statuses
from tests.services.test_zcl_write_refusal import held
from tests.services.test_zcl_write_undivided import undivided

S = foundation.Status
G = foundation.GeneralCommand


def bench_with(check: Any) -> Bench:
    """Price uint8 attributes 0x0000 (held 5) and 0x0001 (held 6), writable, each with a
    check refusing everything (the frame check stands in for it), and ``check`` the frame's."""
    bench = Bench()
    for attr_id, value in ((0x0000, 5), (0x0001, 6)):
        bench.set_attribute(PRICE, attr_id, value, type_id=0x20)
        bench.set_writable(PRICE, attr_id, check=lambda _: S.NOT_AUTHORIZED)
    bench.set_frame_check(PRICE, check)
    return bench


@pytest.mark.parametrize("command", [G.Write_Attributes, G.Write_Attributes_Undivided])
async def test_a_frame_check_judges_each_record_after_the_ones_before_it(command: int) -> None:
    """A frame check holding the frame's sum to 20: of 9, 15 (unsupported 0x0009 between
    them, never given to it) the 15 is refused, in place of the attributes' own checks; the
    divided frame writes the 9."""
    given: list[list[tuple[int, Any]]] = []

    def budget(records: Sequence[tuple[int, Any]]) -> list[S | None]:
        given.append(list(records))
        spent, statuses = 0, []
        for _, value in records:
            statuses.append(S.INVALID_VALUE if spent + value > 20 else None)
            spent += value if spent + value <= 20 else 0
        return statuses

    bench = bench_with(budget)
    sent = await answers(bench, undivided((0x0000, 9), (0x0009, 1), (0x0001, 15), command=command))
    assert [write_statuses(frame) for frame in sent] == [
        [(S.UNSUPPORTED_ATTRIBUTE, 0x0009), (S.INVALID_VALUE, 0x0001)]
    ]
    assert given == [[(0x0000, 9), (0x0001, 15)]]
    divided = command == G.Write_Attributes  # its records written in turn, the 9 taken
    assert (held(bench, 0x0000), held(bench, 0x0001)) == (9 if divided else 5, 6)
    sent = await answers(bench, undivided((0x0000, 9), (0x0001, 11), command=command))
    assert [write_statuses(frame) for frame in sent] == [[(S.SUCCESS, None)]]
    assert (held(bench, 0x0000), held(bench, 0x0001)) == (9, 11)


async def test_a_frame_check_that_raises_is_failure_for_each_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Nothing written, FAILURE for each record the check was given, logged once."""

    def broken(records: Sequence[tuple[int, Any]]) -> list[S | None]:
        raise RuntimeError("the owner could not judge the frame")

    bench = bench_with(broken)
    with caplog.at_level(logging.ERROR, "zse.zcl.endpoint"):
        sent = await answers(bench, undivided((0x0000, 1), (0x0001, 2), command=G.Write_Attributes))
    assert [write_statuses(frame) for frame in sent] == [[(S.FAILURE, 0x0000), (S.FAILURE, 0x0001)]]
    assert (held(bench, 0x0000), held(bench, 0x0001)) == (5, 6)
    assert len(caplog.records) == 1
    assert bench.escaped == []
