"""Write Attributes on a Time server that is not a Master (ZCL 3.12.2.2.1-3.12.2.2.2): Time
and TimeStatus are read/write there (a HAN device's time server is set over the network),
and TimeZone and DST without MasterZoneDst. Before, every attribute but ValidUntilTime
answered READ_ONLY whatever TimeStatus said. An ESI (a Master) stays read only."""

from __future__ import annotations

import pytest
from zigpy.zcl import foundation

from zse.se.ids import TIME, TimeAttribute
from zse.sim import Air
from zse.time.core import write_refusal, written_status
from zse.time.service import TimeServer, TimeStatus

A = TimeAttribute
START = 800_000_000
READ_ONLY, INVALID_VALUE = foundation.Status.READ_ONLY, foundation.Status.INVALID_VALUE
ZONE = (A.TIME_ZONE, A.DST_START, A.DST_END, A.DST_SHIFT)


@pytest.mark.parametrize(
    ("status", "writable"),
    [
        (0x01, ()),  # Master
        (0x09, ()),  # Master, Superseding (an ESI)
        (0x05, ()),  # Master, MasterZoneDst
        (0x00, (A.TIME, A.TIME_STATUS, *ZONE)),
        (0x02, (A.TIME, A.TIME_STATUS, *ZONE)),  # Synchronized
        (0x04, (A.TIME, A.TIME_STATUS)),  # MasterZoneDst: the zone is the server's own
    ],
)
def test_what_a_server_lets_a_client_write(status: int, writable: tuple[A, ...]) -> None:
    for attribute in A:
        if attribute == A.VALID_UNTIL_TIME:
            continue  # its own rule (later than LastSetTime)
        expected = None if attribute in writable else READ_ONLY
        assert write_refusal(attribute, 0, status) == expected, attribute


def test_only_synchronized_is_taken_from_a_written_time_status() -> None:
    assert written_status(0x00, 0x0F) == 0x02
    assert written_status(0x0A, 0x00) == 0x08
    assert write_refusal(A.TIME_ZONE, 86_401, 0x00) == INVALID_VALUE
    assert write_refusal(A.DST_SHIFT, -86_401, 0x00) == INVALID_VALUE


def server(status: TimeStatus | None = None, **kwargs: object) -> TimeServer:
    endpoint = (
        Air(seed=60)
        .device("00:0d:6f:00:0d:00:00:07", channel=15)
        .add_endpoint(1, device_type=0x0502, in_clusters=[TIME])
    )
    time = TimeServer(endpoint, clock=lambda: START, status=status, **kwargs)  # type: ignore[arg-type]
    time.start()
    return time


def read(time: TimeServer, attribute: A) -> int:
    value = time.endpoint.attribute_value(TIME, attribute)  # type: ignore[attr-defined]
    return int(value.value)


def test_a_device_time_server_is_set_by_a_write() -> None:
    device = server(TimeStatus(master=False, superseding=False))
    assert device.write(A.TIME, START + 1000) == foundation.Status.SUCCESS
    assert (read(device, A.TIME), read(device, A.LAST_SET_TIME)) == (START + 1000, START + 1000)
    assert device.now() == START + 1000
    assert device.write(A.TIME_STATUS, 0x0F) == foundation.Status.SUCCESS
    assert read(device, A.TIME_STATUS) == 0x02  # Synchronized only
    assert device.write(A.TIME_ZONE, 3600) == foundation.Status.SUCCESS
    assert read(device, A.STANDARD_TIME) == START + 1000 + 3600
    assert device.write(A.TIME_ZONE, 90_000) == INVALID_VALUE


def test_an_esi_stays_read_only() -> None:
    esi = server(zone="Europe/London")
    for attribute in (A.TIME, A.TIME_STATUS, *ZONE):
        assert esi.write(attribute, 0) == READ_ONLY
    assert read(esi, A.TIME) == START
    assert esi.status == TimeStatus(master_zone_dst=True)
