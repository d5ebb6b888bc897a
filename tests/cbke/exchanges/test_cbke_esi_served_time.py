"""The ESI checks a suite-2 certificate's validity dates (SE C.4.2.2) at the time it serves
the HAN (its Time server's Time, ZCL 3.12.2.2.1), the time the HAN's devices check the ESI's
own certificate against. It read its raw ``clock()``, which differs from the served Time once
the ESI, no longer a Master, has had its Time written (its status then Synchronized)."""

from __future__ import annotations

import pytest
from zigpy.zcl import foundation

from tests.roles.han_builder import CA, EUIS, START, build, close
from zse.cbke import SUITE1, SUITE2
from zse.cbke.messages import TerminateStatus
from zse.cbke.service import KeyEstablishmentFailed, eui64_bytes
from zse.roles.han import InHomeDisplay
from zse.se.ids import TimeAttribute
from zse.time.service import ZIGBEE_EPOCH, TimeStatus

DAY = 86_400
AHEAD = 60 * DAY  # the served Time, ahead of the ESI's clock


@pytest.mark.parametrize(
    ("valid_from", "established"),
    [(-DAY, False), (AHEAD - DAY, True)],
    ids=["expired-at-the-served-time", "valid-at-the-served-time-only"],
)
async def test_the_esi_checks_a_certificate_at_the_time_it_serves(
    tmp_path, valid_from: int, established: bool
) -> None:
    """The ESI lost its upstream time (not a Master) and was set to the network's time, 60
    days ahead of its clock (Synchronized). A certificate of 30 days valid at its clock but
    expired at the served time is refused INVALID_CERTIFICATE; one valid only at the served
    time is accepted."""
    han = await build(tmp_path, suites=(SUITE1, SUITE2))
    try:
        han.esi.time.status = TimeStatus(master=False, synchronized=True)
        served = han.clock() + AHEAD
        assert (
            await han.esi.time.write_stored(TimeAttribute.TIME, served) == foundation.Status.SUCCESS
        )
        await han.esi.provision(EUIS["ihd"])
        sim = han.air.device(EUIS["ihd"], install_code=han.codes["ihd"], channel=15)
        credentials = CA.issue(
            eui64_bytes(sim.ieee),
            SUITE2,
            valid_from=START + ZIGBEE_EPOCH + valid_from,
            valid_to=30 * DAY,
        )
        ihd = InHomeDisplay(sim, credentials=credentials, clock=han.clock)
        if established:
            await ihd.start()
        else:
            with pytest.raises(KeyEstablishmentFailed) as failed:
                await ihd.start()
            assert failed.value.status is TerminateStatus.INVALID_CERTIFICATE
        assert abs(han.esi.time.now() - served) < DAY  # the served time, still ahead
        await ihd.stop()
    finally:
        await close(han)
