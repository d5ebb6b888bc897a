"""Review of the EZSP HAN-device path against bellows' per-version tables and EmberZNet's
documented statuses: the stack statuses a refused join ends in besides JOIN_FAILED, and the
sl_status_t an EZSP 14+ NCP answers for a missing CBKE library."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import bellows.types as bt
import pytest

from tests.han_stick.stick_builder import STICK, close_stick, meter_and_stick, open_ihd
from zse.installcode import InstallCode
from zse.radios.ezsp import EzspError, EzspHanRadio
from zse.radios.han import JoinFailed

#: Join failures EmberZNet reports in stackStatusHandler besides JOIN_FAILED (bellows'
#: EmberStatus, whose comments say "an attempt to join ... failed"; Silicon Labs' framework
#: takes each for a failed join, ``emAfStackStatusHandler``).
JOIN_FAILURES = [
    bt.EmberStatus.NO_BEACONS,
    bt.EmberStatus.NO_NETWORK_KEY_RECEIVED,
    bt.EmberStatus.RECEIVED_KEY_IN_THE_CLEAR,
]


@pytest.mark.parametrize("version", [13, 18])
@pytest.mark.parametrize("status", JOIN_FAILURES, ids=lambda s: s.name)
async def test_a_join_failure_other_than_join_failed_ends_the_join_with_its_status(
    tmp_path: Path, serial_link: Callable[..., None], version: int, status: bt.EmberStatus
) -> None:
    """A refused join that the stick reports as NO_NETWORK_KEY_RECEIVED (or NO_BEACONS, ...,
    sl_status_t from EZSP 14) was not recognised: zse waited the whole join timeout and said
    the stick had not answered."""
    other = InstallCode.generate(rng=random.Random(1))
    sh = await meter_and_stick(tmp_path, serial_link, registered_code=other, version=version)
    sh.ncp.join_failure = int(status)
    ihd = await open_ihd(sh)
    try:
        with pytest.raises(JoinFailed, match=rf"refused the join .*{status.name}") as info:
            await ihd.start()
        assert info.value.status == int(status)
        assert "no answer" not in str(info.value)
        assert str(sh.code) not in str(info.value)
    finally:
        await close_stick(sh)


@pytest.mark.parametrize("version", [13, 18])
async def test_a_missing_cbke_library_is_named_in_every_ezsp_version(
    tmp_path: Path, serial_link: Callable[..., None], version: int
) -> None:
    """From EZSP 14 the NCP answers sl_status_t NOT_AVAILABLE (bellows' status table) where
    EZSP 13 answers EMBER_LIBRARY_NOT_PRESENT; only the latter was recognised."""
    sh = await meter_and_stick(tmp_path, serial_link, version=version)  # no CBKE tokens
    radio = await EzspHanRadio.open("/dev/fake-ncp")
    try:
        for suite in (1, 2):
            with pytest.raises(EzspError, match="no CBKE library"):
                await radio.cbke_generate(suite)
    finally:
        await radio.close()
        await close_stick(sh)


@pytest.mark.parametrize("version", [13, 18])
async def test_a_rejoin_failure_other_than_join_failed_ends_the_rejoin_with_its_status(
    tmp_path: Path, serial_link: Callable[..., None], version: int
) -> None:
    """As for a join: a Trust Center rejoin the stick reports as NO_NETWORK_KEY_RECEIVED."""
    sh = await meter_and_stick(tmp_path, serial_link, version=version)
    han = sh.han
    ihd = await open_ihd(sh)
    try:
        await ihd.start()
        # the Trust Center no longer knows the stick: its link key and its record gone, so the
        # secured rejoin the stick starts itself once the network is down (the Trust Center
        # admits one from the address it records) is refused as the Trust Center rejoin is
        han.app.radio.link_keys.pop(STICK)
        han.app.radio.children.pop(STICK)
        sh.ncp.join_failure = int(bt.EmberStatus.NO_NETWORK_KEY_RECEIVED)
        assert sh.radio is not None
        with pytest.raises(JoinFailed, match=r"rejoin failed .*NO_NETWORK_KEY_RECEIVED") as info:
            await sh.radio.rejoin(have_network_key=False, channels=(15,))
        assert info.value.status == int(bt.EmberStatus.NO_NETWORK_KEY_RECEIVED)
    finally:
        await close_stick(sh)
