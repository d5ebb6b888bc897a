"""``InHomeDisplay(prepayment="if served")``: the display lists the Prepayment client and asks
the ESI once, when it starts, whether it serves Prepayment (ZDO Match_Desc_req on the SE
profile, SE 5.4.7.1); a prepay meter's credit is then read as with ``prepayment=True`` (SE 1.2
D.7.2.2.1); an answer that does not decode is a warning and no credit is read. Simulator,
virtual time."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from tests.roles.han_builder import EUIS, build, close
from tests.roles.test_roles_find_esi import answer_match_desc, match_rsp
from tests.roles.test_roles_prepayment import esi_options
from zse.prepayment.service import PrepayStatus
from zse.roles.han import IF_SERVED, InHomeDisplay, KeyEstablished
from zse.se.ids import PREPAYMENT


async def test_a_display_if_served_reads_a_prepay_meter_s_credit(tmp_path: Path) -> None:
    han = await build(tmp_path, **esi_options())
    try:
        await han.esi.provision(EUIS["ihd"])
        ihd = han.add("ihd", prepayment=IF_SERVED)
        assert PREPAYMENT in ihd.endpoint.out_clusters
        await ihd.start()
        await asyncio.sleep(5)
        assert isinstance(ihd, InHomeDisplay)
        assert ihd.prepayment is not None
        statuses = [e for e in han.device_events["ihd"] if isinstance(e, PrepayStatus)]
        assert [s.credit_remaining for s in statuses] == [1000]  # read at the resync
    finally:
        await close(han)


async def test_a_garbled_answer_is_a_warning_and_no_credit_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    han = await build(tmp_path, **esi_options())
    answer_match_desc(monkeypatch, han, match_rsp(0x00, b"\x09")[:-1], cluster=PREPAYMENT)
    caplog.set_level(logging.WARNING, logger="zse.roles.han")
    try:
        await han.esi.provision(EUIS["ihd"])
        ihd = han.add("ihd", prepayment=IF_SERVED)
        await ihd.start()
        await asyncio.sleep(5)
        assert isinstance(ihd, InHomeDisplay)
        assert ihd.prepayment is None
        assert not any(isinstance(e, PrepayStatus) for e in han.device_events["ihd"])
        warned = [r.getMessage() for r in caplog.records if r.name == "zse.roles.han"]
        assert len(warned) == 1, warned
        assert "did not say whether it serves Prepayment" in warned[0]
    finally:
        await close(han)


def test_prepayment_is_true_false_or_if_served() -> None:
    with pytest.raises(ValueError, match="prepayment: True, False or 'if served'"):
        InHomeDisplay(object(), credentials=[], prepayment="yes")  # type: ignore[arg-type]


async def test_a_meter_lost_right_after_the_join_is_a_warning_not_a_failed_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The meter goes out of range once keys are established: the Match_Desc_req for
    Prepayment and the resync's requests are not acknowledged (zigpy's DeliveryError, as a
    stick reports a missed acknowledgement). The display starts all the same, with a warning
    and notes, as when the meter does not answer (it raised DeliveryError)."""
    han = await build(tmp_path, **esi_options())
    caplog.set_level(logging.WARNING, logger="zse.roles.han")
    try:
        await han.esi.provision(EUIS["ihd"])
        ihd = han.add("ihd", prepayment=IF_SERVED)

        def lose_the_meter(event: object) -> None:
            if isinstance(event, KeyEstablished):
                han.air.out_of_range(han.app.radio, ihd.device)

        ihd.on_event(lose_the_meter)
        await ihd.start()
        assert isinstance(ihd, InHomeDisplay)
        assert ihd.prepayment is None
        warned = [r.getMessage() for r in caplog.records if r.name == "zse.roles.han"]
        assert any("did not say whether it serves Prepayment" in w for w in warned), warned
        notes = [e for e in han.device_events["ihd"] if type(e).__name__ == "Note"]
        assert any("resync request failed" in str(n) for n in notes), notes
    finally:
        await close(han)
