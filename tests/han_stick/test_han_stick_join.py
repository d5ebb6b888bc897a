"""A HAN device on an EZSP stick joins the simulated meter by install code, runs CBKE in the
host (mode a) and reads the meter: bellows' real EZSP/ASH code over a fake serial link to a fake
NCP whose radio is a node on the simulator's air (tests/han_stick/fake_han_ncp.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.han_stick.stick_builder import STICK, meter_and_stick, open_ihd
from tests.roles.han_builder import close
from zse.roles.han import Joined, KeyEstablished


async def test_the_stick_joins_runs_cbke_in_the_host_and_reads_the_meter(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    sh = await meter_and_stick(tmp_path, serial_link)
    ihd = await open_ihd(sh)
    events: list[object] = []
    ihd.on_event(events.append)
    await ihd.start()
    joined = [e for e in events if isinstance(e, Joined)]
    keyed = [e for e in events if isinstance(e, KeyEstablished)]
    assert joined and joined[0].nwk == sh.ncp.node.nwk
    assert keyed and keyed[0].suite == 1
    # the CBKE key went into the NCP's key table and replaced the install-code key there
    tc = sh.han.app.state.node_info.ieee
    assert sh.ncp.node.link_keys[tc] != sh.code.link_key
    assert sh.ncp.node.link_keys[tc] == sh.han.app.link_keys[STICK]  # type: ignore[attr-defined]
    await ihd.stop()
    assert sh.radio is not None
    await sh.radio.close()
    await close(sh.han)
