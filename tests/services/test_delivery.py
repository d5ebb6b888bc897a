"""The one delivery rule (#13.2): addressing, APS encryption and Default Response of every
service's frames, decided by :mod:`zse.zcl.delivery` and seen in the bytes sent."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import zigpy.types as t
import zigpy.zdo.types as zdo_t

from zse.zcl.delivery import (
    Delivery,
    Destination,
    deliver,
    delivery,
    device_name,
    response_delivery,
)
from zse.zcl.endpoint import ZclEndpointBase, ZclMessage

#: A Get Current Price as received, APS-encrypted, for tests that answer a frame.
REQUEST = ZclMessage(
    src_nwk=0x1234,
    src_ieee=t.EUI64.convert("00:0d:6f:00:0a:00:00:01"),
    src_ep=1,
    dst_ep=9,
    cluster_id=0x0700,
    profile_id=0x0109,
    frame_control=0x01,
    manufacturer=None,
    tsn=7,
    command_id=0x00,
    payload=b"",
    aps_encrypted=True,
    group=None,
    broadcast=False,
    timestamp=0.0,
)

_DDR = 0x10  # ZCL frame control: Disable Default Response (ZCL 2.4.1.1.4)
_SERVER_TO_CLIENT = 0x08


class Recorder(ZclEndpointBase):
    """A real ZCL endpoint whose radio records what it would put on the air."""

    def __init__(self) -> None:
        descriptor = zdo_t.SimpleDescriptor(
            endpoint=9,
            profile=0x0109,
            device_type=0x0500,
            device_version=0,
            input_clusters=[0x0700],
            output_clusters=[],
        )
        super().__init__(descriptor, first_tsn=1)
        self.sent: list[dict[str, Any]] = []

    async def _transmit(self, **kwargs: Any) -> None:
        self.sent.append(kwargs)


DESTINATIONS = {
    "unicast": Destination.device(0x1A2B, 1),
    "group": Destination.group(0x0042),
    "broadcast": Destination.broadcast(),
}


@pytest.mark.parametrize(
    ("where", "default_response", "expected"),
    [
        ("unicast", True, Delivery(encrypt=True, disable_default_response=False)),
        ("unicast", False, Delivery(encrypt=True, disable_default_response=True)),
        ("group", True, Delivery(encrypt=False, disable_default_response=True)),
        ("group", False, Delivery(encrypt=False, disable_default_response=True)),
        ("broadcast", True, Delivery(encrypt=False, disable_default_response=True)),
        ("broadcast", False, Delivery(encrypt=False, disable_default_response=True)),
    ],
)
def test_the_rule_for_a_command(where: str, default_response: bool, expected: Delivery) -> None:
    assert delivery(DESTINATIONS[where], default_response=default_response) == expected


@pytest.mark.parametrize("encrypted", [True, False])
def test_the_rule_for_a_response_mirrors_the_request(encrypted: bool) -> None:
    assert response_delivery(encrypted) == Delivery(
        encrypt=encrypted, disable_default_response=True
    )


@pytest.mark.parametrize(
    ("where", "mode", "address", "endpoint", "encrypt", "ddr"),
    [
        ("unicast", t.AddrMode.NWK, 0x1A2B, 1, True, 0),
        ("group", t.AddrMode.Group, 0x0042, 0xFF, False, _DDR),
        ("broadcast", t.AddrMode.Broadcast, 0xFFFD, 0xFF, False, _DDR),
    ],
)
async def test_a_command_leaves_as_the_rule_says(
    where: str, mode: t.AddrMode, address: int, endpoint: int, encrypt: bool, ddr: int
) -> None:
    radio = Recorder()
    tsn = await deliver(radio, DESTINATIONS[where], 0x0700, 0x00, b"\xaa")
    (frame,) = radio.sent
    assert (frame["dst_mode"], frame["dst"], frame["dst_ep"]) == (mode, address, endpoint)
    assert frame["encrypt"] is encrypt
    # cluster-specific, server to client (0x0700 is a server cluster here), DDR per the rule
    assert frame["data"] == bytes((0x01 | _SERVER_TO_CLIENT | ddr, tsn, 0x00, 0xAA))


async def test_a_unicast_may_rely_on_the_aps_acknowledgement() -> None:
    radio = Recorder()
    await deliver(radio, DESTINATIONS["unicast"], 0x0700, 0x02, default_response=False)
    assert radio.sent[0]["encrypt"] is True
    assert radio.sent[0]["data"][0] & _DDR


@pytest.mark.parametrize("encrypted", [True, False])
async def test_a_response_goes_back_encrypted_as_its_request(encrypted: bool) -> None:
    radio = Recorder()
    request = dataclasses.replace(
        REQUEST, src_nwk=0x1A2B, src_ieee=None, tsn=0x33, payload=b"\x01", aps_encrypted=encrypted
    )
    await radio.reply(request, 0x00, b"\xbb")
    (frame,) = radio.sent
    assert (frame["dst_mode"], frame["dst"], frame["dst_ep"]) == (t.AddrMode.NWK, 0x1A2B, 1)
    assert frame["encrypt"] is encrypted
    assert frame["data"] == bytes((0x01 | _SERVER_TO_CLIENT | _DDR, 0x33, 0x00, 0xBB))


def test_destination_of_the_services_arguments() -> None:
    assert Destination.of(0x0042, dst_mode=t.AddrMode.Group) == DESTINATIONS["group"]
    assert Destination.of(0x1A2B, 1) == DESTINATIONS["unicast"]
    assert not Destination.of(0xFFFD, dst_mode=t.AddrMode.Broadcast).unicast


# -- the one device-naming helper ---------------------------------------------------------------


def test_a_device_is_named_by_its_printed_eui64_whatever_the_spelling() -> None:
    ieee = t.EUI64.convert("00:0d:6f:00:0a:00:00:01")
    assert device_name(ieee) == "00:0d:6f:00:0a:00:00:01"
    assert device_name("000D6F000A000001") == "00:0d:6f:00:0a:00:00:01"
    assert device_name(ieee, 0x1A2B) == "00:0d:6f:00:0a:00:00:01"


def test_an_unknown_device_is_named_by_its_nwk_address_as_the_drlc_server_stored_it() -> None:
    assert device_name(None, 0x1A2B) == "nwk:0x1A2B"
    assert device_name(None, 0x0007) == "nwk:0x0007"


def test_a_device_with_no_address_cannot_be_named() -> None:
    with pytest.raises(ValueError, match="EUI-64 or a NWK address"):
        device_name(None)
