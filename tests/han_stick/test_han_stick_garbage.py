"""Garbage into what the HAN stick decodes: received frames, Read Attributes Responses for
keep-alive, and the stored network record."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import zigpy.types as t
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zse.errors import DecodeError
from zse.radios.han import Incoming
from zse.roles.han_stick import NAMESPACE, StickDevice, StickStateError
from zse.roles.keepalive import BASE_RANGE, JITTER_RANGE, KeepAlive, _values
from zse.store import Batch, Store
from zse.zcl.frame import ZclMessage


class Silent:
    """A radio that is never asked anything here (the device only decodes)."""

    name = "garbage radio"
    eui64 = t.EUI64.convert("00:0d:6f:00:00:00:00:01")

    def on_incoming(self, callback: Any) -> Any:
        return lambda: None

    on_network_down = on_incoming


def message(payload: bytes, command_id: int = 0x01) -> ZclMessage:
    return ZclMessage(
        src_nwk=0,
        src_ieee=None,
        src_ep=1,
        dst_ep=1,
        cluster_id=0x0025,
        profile_id=0x0109,
        frame_control=0x08,
        manufacturer=None,
        tsn=1,
        command_id=command_id,
        payload=payload,
        aps_encrypted=True,
        group=None,
        broadcast=False,
        timestamp=0.0,
    )


@given(st.binary(max_size=64))
def test_keep_alive_responses_decode_or_raise_value_error(payload: bytes) -> None:
    try:
        values = _values(message(payload))
    except DecodeError:
        return
    assert all(isinstance(v, int) for v in values.values())


@given(st.integers(-(2**40), 2**40), st.integers(-(2**40), 2**40))
def test_keep_alive_takes_only_valid_periods(base: int, jitter: int) -> None:
    core = KeepAlive()
    core.answered(0.0, base, jitter)
    assert core.base_minutes in BASE_RANGE
    assert core.jitter_seconds in JITTER_RANGE


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=50)
@given(st.binary(max_size=80), st.integers(0, 0xFFFF), st.integers(0, 0xFF))
def test_received_frames_are_dispatched_or_counted(
    payload: bytes, cluster: int, dst_ep: int
) -> None:
    async def run() -> None:
        device = StickDevice(Silent(), link_key=bytes(16))  # type: ignore[arg-type]
        endpoint = device.add_endpoint(1, in_clusters=[0x0025])
        for profile in (0x0000, 0x0109):
            device._incoming(
                Incoming(
                    src_nwk=0,
                    src_ep=1,
                    dst_ep=dst_ep if profile else 0,
                    cluster_id=cluster,
                    profile_id=profile,
                    payload=payload,
                    aps_encrypted=True,
                    broadcast=False,
                    group=None,
                    lqi=255,
                    rssi=-40,
                )
            )
        assert endpoint is not None

    asyncio.run(run())


@pytest.mark.parametrize(
    "record",
    [
        "text",
        [],
        {},
        {"channel": 99, "extended_pan_id": "00:11:22:33:44:55:66:77", "trust_center": "x"},
        {"channel": 15, "extended_pan_id": "zz", "trust_center": "00:11:22:33:44:55:66:77"},
        {"channel": 15, "extended_pan_id": "00:11:22:33:44:55:66:77", "trust_center": 5},
        # wrong lengths: zigpy's EUI64.convert asserts the length (an AssertionError got out)
        {"channel": 15, "extended_pan_id": "00:11:22:33:44:55:66:77", "trust_center": "00:11"},
        {"channel": 15, "extended_pan_id": "00", "trust_center": "00:11:22:33:44:55:66:77"},
        {"channel": 15, "extended_pan_id": "00:11:22:33:44:55:66:77:88", "trust_center": "1" * 16},
    ],
)
async def test_a_stored_network_of_another_shape_is_a_named_error(
    tmp_path: Path, record: object
) -> None:
    async with await Store.open(tmp_path / "s.db") as store:
        await store.commit(Batch().put(NAMESPACE, "network", record))
        with pytest.raises(StickStateError, match="delete the state file"):
            await StickDevice.remembered(store)


def test_no_secret_in_the_reprs() -> None:
    from zse.cli.han import HanOptions  # noqa: PLC0415
    from zse.installcode import InstallCode  # noqa: PLC0415

    code = InstallCode.parse("83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5")
    device = StickDevice(Silent(), link_key=code.link_key)  # type: ignore[arg-type]
    options = HanOptions(device="/dev/x", install_code=code)
    for text in (repr(device), repr(options)):
        assert code.link_key.hex() not in text.lower()
        assert "83FE" not in text.upper().replace(" ", "")
