"""#14.3: meter mirroring on the ESI as a sans-IO core (zse.metering.mirror): the pool, the
Request Mirror / Remove Mirror answers, and Report Attributes taken only from the owner."""

from __future__ import annotations

import dataclasses

import pytest
import zigpy.types as t
from hypothesis import given
from hypothesis import strategies as st
from zigpy.zcl import foundation

from tests.services.test_delivery import REQUEST
from zse.errors import InvalidFrame
from zse.metering.mirror import (
    MIRRORED_ATTRIBUTES,
    NO_MIRROR,
    UNDEFINED_MIRROR_METER,
    MirrorAdded,
    MirrorPool,
    MirrorProtocol,
    MirrorRemoved,
    MirrorUpdated,
    metering_type_id,
    mirror_endpoint,
    mirror_report_payload,
)
from zse.se.ids import METERING, MeteringClientCommand, MeteringServerCommand
from zse.se.ids import MeteringAttribute as A
from zse.zcl.reporting import report_payload

NOW = 800_000_000
GAS = t.EUI64.convert("00:0d:6f:00:0a:00:00:01")
WATER = t.EUI64.convert("00:0d:6f:00:0a:00:00:02")
HEAT = t.EUI64.convert("00:0d:6f:00:0a:00:00:03")
S = foundation.Status
REPORT = foundation.GeneralCommand.Report_Attributes
REQUEST_MIRROR = MeteringClientCommand.REQUEST_MIRROR
REMOVE_MIRROR = MeteringClientCommand.REMOVE_MIRROR


def command(command_id: int, device: t.EUI64 | None = GAS) -> object:
    """A Metering command from a meter (server to client) to the ESI's endpoint 9."""
    return dataclasses.replace(
        REQUEST,
        src_ieee=device,
        cluster_id=METERING,
        frame_control=0x01 | 0x08,
        command_id=command_id,
    )


def report(
    payload: bytes, *, device: t.EUI64 | None = GAS, endpoint: int = 10, **changes: object
) -> object:
    """Report Attributes from a meter's Metering server to mirror ``endpoint``."""
    fields: dict[str, object] = {
        "src_ieee": device,
        "dst_ep": endpoint,
        "cluster_id": METERING,
        "frame_control": 0x08,
        "command_id": REPORT,
        "payload": payload,
        **changes,
    }
    return dataclasses.replace(REQUEST, **fields)


def answer(step) -> tuple[int, int]:
    (send,) = step.sends
    assert send.cluster_id == METERING
    assert send.cluster_specific
    assert send.reply_to is not None
    return send.command_id, int.from_bytes(send.payload, "little")


SUMMATION = mirror_report_payload({A.CURRENT_SUMM_DELIVERED: 123_456, A.STATUS: 0})
#: What a new mirror holds before its meter reports: MeteringDeviceType "undefined mirror
#: meter" (0xFE, Silicon Labs' meter-mirror plugin), map8.
FRESH = {A.METERING_DEVICE_TYPE: (0x18, UNDEFINED_MIRROR_METER)}


def test_request_mirror_allocates_and_the_same_device_gets_its_own_back():
    core = MirrorProtocol(MirrorPool([10, 11]))
    step = core.receive(command(REQUEST_MIRROR), None, NOW)
    assert answer(step) == (MeteringServerCommand.REQUEST_MIRROR_RESPONSE, 10)
    assert step.events == (MirrorAdded(device=GAS, endpoint=10, new=True),)
    again = core.receive(command(REQUEST_MIRROR), None, NOW)
    assert answer(again) == (MeteringServerCommand.REQUEST_MIRROR_RESPONSE, 10)
    assert again.events == (MirrorAdded(device=GAS, endpoint=10, new=False),)
    other = core.receive(command(REQUEST_MIRROR, WATER), None, NOW)
    assert answer(other)[1] == 11
    assert (core.pool.owner(10), core.pool.owner(11), core.pool.free) == (GAS, WATER, 0)


def test_an_empty_pool_answers_0xffff():
    core = MirrorProtocol(MirrorPool([10]))
    core.receive(command(REQUEST_MIRROR), None, NOW)
    step = core.receive(command(REQUEST_MIRROR, WATER), None, NOW)
    assert answer(step) == (MeteringServerCommand.REQUEST_MIRROR_RESPONSE, NO_MIRROR)
    assert step.events == ()
    assert core.pool.endpoint_of(WATER) is None
    # a sender whose EUI-64 is unknown gets no mirror either
    unknown = core.receive(command(REQUEST_MIRROR, None), None, NOW)
    assert answer(unknown)[1] == NO_MIRROR


def test_remove_mirror_frees_the_endpoint_for_another_meter():
    core = MirrorProtocol(MirrorPool([10]))
    core.receive(command(REQUEST_MIRROR), None, NOW)
    assert core.report(report(SUMMATION), NOW).status == S.SUCCESS
    step = core.receive(command(REMOVE_MIRROR), None, NOW)
    assert answer(step) == (MeteringServerCommand.MIRROR_REMOVED, 10)
    assert step.events == (MirrorRemoved(device=GAS, endpoint=10),)
    assert core.pool.values(10) == {}
    assert answer(core.receive(command(REMOVE_MIRROR), None, NOW))[1] == NO_MIRROR
    assert answer(core.receive(command(REQUEST_MIRROR, WATER), None, NOW))[1] == 10
    # the old owner's reports are refused now
    assert core.report(report(SUMMATION), NOW).status == S.NOT_AUTHORIZED


def test_the_owner_report_fills_the_mirror():
    core = MirrorProtocol(MirrorPool([10]))
    core.receive(command(REQUEST_MIRROR), None, NOW)
    values = {A.CURRENT_SUMM_DELIVERED: 5_000, A.STATUS: 0, A.METERING_DEVICE_TYPE: 1}
    step = core.report(report(mirror_report_payload(values)), NOW)
    assert (step.status, step.sends) == (S.SUCCESS, ())
    held = {**values, A.METERING_DEVICE_TYPE: 128}  # Gas (1) mirrored: 128 Mirrored Gas
    assert step.events == (MirrorUpdated(device=GAS, endpoint=10, attributes=tuple(held.items())),)
    assert core.pool.values(10) == {a: (metering_type_id(a), v) for a, v in held.items()}
    core.report(report(mirror_report_payload({A.CURRENT_SUMM_DELIVERED: 5_100})), NOW)
    assert core.pool.values(10)[A.CURRENT_SUMM_DELIVERED][1] == 5_100
    assert core.pool.values(10)[A.METERING_DEVICE_TYPE][1] == 128  # kept


def test_a_new_mirror_is_an_undefined_mirror_meter_until_its_meter_reports():
    # Silicon Labs' meter-mirror plugin writes 0xFE on allocation (a value SE leaves
    # reserved); a repeat Request Mirror does not reset what the meter reported
    core = MirrorProtocol(MirrorPool([10]))
    core.receive(command(REQUEST_MIRROR), None, NOW)
    assert core.pool.values(10) == FRESH
    core.report(report(mirror_report_payload({A.METERING_DEVICE_TYPE: 2})), NOW)  # water
    core.receive(command(REQUEST_MIRROR), None, NOW)
    assert core.pool.values(10) == {A.METERING_DEVICE_TYPE: (0x18, 129)}  # Mirrored Water


@pytest.mark.parametrize(
    ("reported", "held"),
    [(0, 127), (1, 128), (12, 139), (15, 142), (126, 253), (127, 127), (128, 128), (254, 254)],
)
def test_metering_device_type_is_stored_as_the_mirrored_kind(reported, held):
    # D.3.2.2.4.7: 127 Mirrored Electric ... 142; a meter's own 0-126 is stored plus 127
    # (as Silicon Labs' meter-mirror plugin does), a value already mirrored is kept
    core = MirrorProtocol(MirrorPool([10]))
    core.receive(command(REQUEST_MIRROR), None, NOW)
    payload = report_payload([(A.METERING_DEVICE_TYPE, reported)], {A.METERING_DEVICE_TYPE: 0x18})
    assert core.report(report(payload), NOW).status == S.SUCCESS
    assert core.pool.values(10)[A.METERING_DEVICE_TYPE] == (0x18, held)


FORMATTING_BITMAPS = (
    A.SUMMATION_FORMATTING,
    A.DEMAND_FORMATTING,
    A.HISTORICAL_CONSUMPTION_FORMATTING,
    A.METERING_DEVICE_TYPE,
)


@pytest.mark.parametrize("attribute", FORMATTING_BITMAPS)
@pytest.mark.parametrize("type_id", [0x18, 0x20, 0x30], ids=["map8", "uint8", "enum8"])
def test_formatting_bitmaps_are_map8_and_uint8_or_enum8_are_taken(attribute, type_id):
    # SE D.3.2.2.4: SummationFormatting, DemandFormatting, HistoricalConsumptionFormatting and
    # MeteringDeviceType are map8 (0x18); a report with the summation and one of them in
    # map8 is stored whole, and uint8 / enum8 (one octet too) are taken and held as map8
    assert metering_type_id(attribute) == 0x18
    core = MirrorProtocol(MirrorPool([10]))
    core.receive(command(REQUEST_MIRROR), None, NOW)
    payload = SUMMATION + report_payload([(attribute, 0x2B)], {attribute: type_id})
    assert core.report(report(payload), NOW).status == S.SUCCESS
    assert core.pool.values(10)[A.CURRENT_SUMM_DELIVERED] == (0x25, 123_456)
    held = 0x2B if attribute != A.METERING_DEVICE_TYPE else 0x2B + 127
    assert core.pool.values(10)[attribute] == (0x18, held)
    # the meter's side sends them as map8
    assert mirror_report_payload({attribute: 1})[2] == 0x18


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"device": WATER}, S.NOT_AUTHORIZED),  # not the owner
        ({"device": None}, S.NOT_AUTHORIZED),  # unknown sender
        ({"endpoint": 11}, S.NOT_AUTHORIZED),  # a free mirror endpoint
        ({"endpoint": 9}, S.NOT_AUTHORIZED),  # not a mirror endpoint
        ({"cluster_id": 0x0700}, S.UNREPORTABLE_ATTRIBUTE),  # not Metering
        ({"frame_control": 0x00}, S.FAILURE),  # client to server: not a report of a server
        ({"manufacturer": 0x1234}, S.UNSUP_MANUF_GENERAL_COMMAND),
        ({"command_id": foundation.GeneralCommand.Configure_Reporting}, S.UNSUP_GENERAL_COMMAND),
    ],
)
def test_reports_not_from_the_owner_as_a_meter_are_refused(changes, status):
    core = MirrorProtocol(MirrorPool([10, 11]))
    core.receive(command(REQUEST_MIRROR), None, NOW)
    step = core.report(report(SUMMATION, **changes), NOW)
    assert (step.status, step.events, step.sends) == (status, (), ())
    assert core.pool.values(10) == FRESH


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        (b"", S.MALFORMED_COMMAND),
        (b"\x00\x00\x25\x01\x02", S.MALFORMED_COMMAND),  # uint48 cut short
        (b"\x00\x00\xfe\x01", S.MALFORMED_COMMAND),  # unknown data type
        (report_payload([(0x0000, 7)], {0x0000: 0x23}), S.INVALID_DATA_TYPE),  # uint32, not 48
        (report_payload([(0x7777, 7)], {0x7777: 0x20}), S.UNSUPPORTED_ATTRIBUTE),
        (SUMMATION + report_payload([(0x0300, 1)], {0x0300: 0x20}), S.INVALID_DATA_TYPE),
        # a Formatting bitmap in a wider type than one octet
        (SUMMATION + report_payload([(0x0303, 1)], {0x0303: 0x19}), S.INVALID_DATA_TYPE),
        (SUMMATION + report_payload([(0x0306, 1)], {0x0306: 0x21}), S.INVALID_DATA_TYPE),
    ],
)
def test_a_bad_report_is_refused_whole(payload, status):
    core = MirrorProtocol(MirrorPool([10]))
    core.receive(command(REQUEST_MIRROR), None, NOW)
    step = core.report(report(payload), NOW)
    assert (step.status, step.events, core.pool.values(10)) == (status, (), FRESH)


def test_other_metering_commands_are_unsupported():
    core = MirrorProtocol(MirrorPool([10]))
    get_profile = dataclasses.replace(command(0x00), frame_control=0x01)  # client to server
    assert core.receive(get_profile, None, NOW).status == S.UNSUP_CLUSTER_COMMAND
    fast_poll = command(MeteringClientCommand.REQUEST_FAST_POLL_MODE_RESPONSE)
    assert core.receive(fast_poll, None, NOW).status == S.UNSUP_CLUSTER_COMMAND
    assert core.next_deadline() is None
    assert core.handle_timeout(NOW).sends == ()


@given(st.binary(max_size=64), st.sampled_from([GAS, WATER, None]), st.integers(0, 255))
def test_garbage_reports_give_statuses_only(payload, device, endpoint):
    core = MirrorProtocol(MirrorPool([10]))
    core.receive(command(REQUEST_MIRROR), None, NOW)
    step = core.report(report(payload, device=device, endpoint=endpoint), NOW)
    assert step.sends == ()
    assert isinstance(step.status, S)
    if step.status != S.SUCCESS:
        assert (step.events, core.pool.values(10)) == ((), FRESH)


def test_the_pool_checks_its_endpoints_and_round_trips_its_records():
    with pytest.raises(ValueError, match="repeated"):
        MirrorPool([10, 10])
    with pytest.raises(ValueError, match="application endpoint"):
        MirrorPool([241])
    pool = MirrorPool([10, 11])
    pool.allocate(HEAT)
    pool.store(10, [(A.CURRENT_SUMM_DELIVERED, 0x25, 42)])
    with pytest.raises(KeyError):
        pool.store(11, [(A.CURRENT_SUMM_DELIVERED, 0x25, 42)])
    record = pool.record(10)
    assert pool.record(11) is None
    again = MirrorPool([10, 11])
    again.restore(10, record)
    assert (again.owner(10), again.values(10)) == (HEAT, pool.values(10))
    for bad in ({}, {"device": "nope", "values": {}},
                {"device": "", "values": {}}, {"device": ":", "values": {}},
                {"device": None, "values": {}}, {"device": "0" * 40, "values": {}},
                {"device": str(GAS), "values": []},
                {"device": str(GAS), "values": {"0000": [0x23, 1]}},
                {"device": str(GAS), "values": {"zz": [0x25, 1]}}):  # fmt: skip
        fresh = MirrorPool([10])
        with pytest.raises(ValueError, match="not a mirror record"):
            fresh.restore(10, bad)
        assert fresh.owner(10) is None
    with pytest.raises(ValueError, match="not in the mirror pool"):
        MirrorPool([10]).restore(12, record)
    with pytest.raises(ValueError, match="not mirrored"):
        pool.store(10, [(A.SUMMATION_FORMATTING, 0x21, 1)])


def test_a_record_kept_before_map8_is_restored_in_the_declared_types():
    # mirrors persisted when zse held SummationFormatting... as uint8 and MeteringDeviceType
    # as enum8 with the meter's own value come back as map8, the device type mirrored
    old = {
        "device": str(GAS),
        "values": {"0000": [0x25, 7], "0303": [0x20, 0x2B], "0306": [0x30, 1]},
    }
    pool = MirrorPool([10])
    pool.restore(10, old)
    assert pool.values(10) == {
        A.CURRENT_SUMM_DELIVERED: (0x25, 7),
        A.SUMMATION_FORMATTING: (0x18, 0x2B),
        A.METERING_DEVICE_TYPE: (0x18, 128),
    }


def test_the_meter_side_helpers():
    values = dict.fromkeys(MIRRORED_ATTRIBUTES, 1)
    assert mirror_report_payload(values).startswith(b"\x00\x00\x25")  # uint48 summation
    with pytest.raises(ValueError, match="not a Metering attribute"):
        mirror_report_payload({0x7777: 1})
    assert mirror_endpoint(MeteringServerCommand.REQUEST_MIRROR_RESPONSE, b"\x0a\x00") == 10
    assert mirror_endpoint(MeteringServerCommand.MIRROR_REMOVED, b"\xff\xff") is None
    with pytest.raises(InvalidFrame):
        mirror_endpoint(MeteringServerCommand.REQUEST_MIRROR_RESPONSE, b"\x0a")
    with pytest.raises(InvalidFrame):
        mirror_endpoint(MeteringServerCommand.REQUEST_FAST_POLL_MODE, b"\x01\x01")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(st.dictionaries(st.sampled_from(["device", "values", "x"]), JSON, max_size=3))
def test_garbage_records_restore_to_value_error_only(record):
    pool = MirrorPool([10])
    try:
        pool.restore(10, record)
    except ValueError:
        assert pool.owner(10) is None
        assert pool.values(10) == {}
