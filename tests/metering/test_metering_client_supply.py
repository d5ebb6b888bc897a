"""The Metering client core follows the meter's Supply Status (SE 1.2, 0x0014) when asked:
read at start, its reports asked for with the summation's (an enum8: no reportable change),
each new value said; refused, it is read every poll interval; a meter without it is said once.
And a report of another attribute than summation or demand (Supply Status alone) is no sign
that the summation is still reported: the client polls when those stop."""

from __future__ import annotations

import pytest
from zigpy.zcl import foundation

from tests.metering.test_metering_client_protocol import (
    FORMAT,
    METER,
    NOW,
    configured,
    feed,
    message,
    read_response,
    report,
)
from zse.metering.protocol import (
    SUMMATION,
    SUPPLY_STATUS,
    AttributeUnsupported,
    MeteringClientConfig,
    MeteringClientProtocol,
    MeterReading,
    Polling,
    SupplyStatusChanged,
    read_attributes_payload,
)
from zse.metering.supply import ARMED, OFF, ON

G = foundation.GeneralCommand
FOLLOW = MeteringClientConfig(supply_status=True, poll_interval=60)


def unsupported_record(attr: int, status: int = foundation.Status.UNSUPPORTED_ATTRIBUTE) -> bytes:
    """A Configure Reporting Response record (ZCL 2.5.8.1): status, direction, attribute."""
    return bytes((status, 0)) + attr.to_bytes(2, "little")


def following(config: MeteringClientConfig = FOLLOW) -> MeteringClientProtocol:
    """A client that follows Supply Status, started, the formatting read."""
    core = MeteringClientProtocol(METER, config)
    core.start(NOW)
    feed(core, read_response(FORMAT))
    return core


def test_a_report_of_supply_status_alone_does_not_keep_summation_counted_as_reported() -> None:
    """The meter reports Supply Status (a display asked, on a change and hourly) but its
    summation's reports stopped: the client counted any Report Attributes as the summation's
    and never polled, showing a summation ever older."""
    core = MeteringClientProtocol(METER, MeteringClientConfig(max_interval=300, poll_interval=60))
    core.start(NOW)
    feed(core, read_response(FORMAT))
    feed(core, configured(b"\x00"), NOW)
    feed(core, report({SUMMATION: 1}), NOW + 50)
    for at in range(NOW + 100, NOW + 650, 100):
        feed(core, report({SUPPLY_STATUS: ON}), at)
    assert core.next_deadline() == NOW + 650  # twice the maximum interval after the summation
    step = core.handle_timeout(NOW + 650)
    assert step.events == (
        Polling(active=True, reason="no report within twice the maximum interval"),
    )
    events = feed(core, report({SUPPLY_STATUS: OFF}), NOW + 660)
    assert not [e for e in events if isinstance(e, Polling)]
    assert core.polling  # still polling


def test_start_reads_supply_status_and_asks_for_its_reports_without_a_reportable_change() -> None:
    config = MeteringClientConfig(supply_status=True, supply_min_interval=2, supply_max_interval=0)
    core = MeteringClientProtocol(METER, config)
    read, configure = core.start(NOW).sends
    assert read.payload.endswith(read_attributes_payload([SUMMATION, 0x0400, SUPPLY_STATUS]))
    # direction 0, attribute 0x0014, enum8, min 2 s, max 0 (on a change only), and nothing more
    assert configure.payload.endswith(bytes.fromhex("00 1400 30 0200 0000"))
    assert len(configure.payload) == 14 + 11 + 8  # uint48 and int24 changes, then none


def test_supply_status_reported_or_read_is_said_when_it_is_new() -> None:
    core = MeteringClientProtocol(METER, FOLLOW)
    core.start(NOW)
    events = feed(core, read_response({**FORMAT, SUPPLY_STATUS: ON}))
    assert events == (SupplyStatusChanged(status=ON, before=None, reported=False, at=NOW),)
    assert feed(core, configured(b"\x00"), NOW + 1) == ()
    assert core.supply_reporting is True
    changed = feed(core, report({SUPPLY_STATUS: OFF}), NOW + 10)
    assert changed == (SupplyStatusChanged(status=OFF, before=ON, reported=True, at=NOW + 10),)
    assert feed(core, report({SUPPLY_STATUS: OFF}), NOW + 20) == ()  # no change, nothing said
    assert core.supply_status == OFF
    assert core.read_request().payload == read_attributes_payload([SUMMATION, 0x0400])


def test_supply_status_reports_refused_alone_it_is_read_every_poll_interval() -> None:
    """zse's choice: a meter that refuses Supply Status reports (UNSUPPORTED_ATTRIBUTE for
    0x0014 alone) still reports the summation (no polling), and Supply Status is read on its
    own every poll interval; while the client polls, each poll reads it."""
    core = following()
    assert feed(core, configured(unsupported_record(SUPPLY_STATUS)), NOW + 1) == ()
    assert (core.reporting, core.polling, core.supply_reporting) == (True, False, False)
    assert core.next_deadline() == NOW + 61
    (read,) = core.handle_timeout(NOW + 61).sends
    assert (read.command_id, read.payload) == (G.Read_Attributes, b"\x14\x00")
    (armed,) = feed(core, read_response({SUPPLY_STATUS: ARMED}), NOW + 62)
    assert (armed.status, armed.before, armed.reported) == (ARMED, None, False)
    assert core.next_deadline() == NOW + 121
    feed(core, report({SUMMATION: 5}), NOW + 100)
    (polling,) = core.handle_timeout(NOW + 700).events  # the summation's reports stopped
    assert polling.active
    assert core.read_request().payload.endswith(read_attributes_payload([SUPPLY_STATUS]))
    assert core.next_deadline() == NOW + 760  # one poll, no read of its own
    events = feed(core, report({SUMMATION: 6}), NOW + 710)
    assert events[0] == Polling(active=False, reason="the meter reports")
    assert core.next_deadline() == NOW + 770  # read on its own again


def test_a_whole_configure_reporting_refused_polls_supply_status_with_the_values() -> None:
    core = following()
    refusal = message(
        G.Default_Response, bytes((G.Configure_Reporting, foundation.Status.UNSUP_GENERAL_COMMAND))
    )
    (polling,) = feed(core, refusal, NOW + 1)
    assert polling.active
    assert core.supply_reporting is False
    (poll,) = core.handle_timeout(NOW + 61).sends
    assert poll.payload == read_attributes_payload([SUMMATION, 0x0400, SUPPLY_STATUS])


def test_a_meter_without_supply_control_is_said_once_and_not_read_again() -> None:
    core = MeteringClientProtocol(METER, FOLLOW)
    core.start(NOW)
    events = feed(core, read_response(FORMAT, unsupported=(SUPPLY_STATUS,)))
    assert events == (AttributeUnsupported(attribute=SUPPLY_STATUS, at=NOW),)
    assert feed(core, configured(unsupported_record(SUPPLY_STATUS)), NOW + 1) == ()
    assert (core.reporting, core.polling, core.supply_reporting) == (True, False, False)
    assert core.next_deadline() == NOW + 601  # the next summation report only
    assert core.read_request().payload == read_attributes_payload([SUMMATION, 0x0400])
    again = read_response({SUMMATION: 1}, unsupported=(SUPPLY_STATUS,))
    assert [type(e) for e in feed(core, again, NOW + 2)] == [MeterReading]  # said once
    # a later start (a display restarted) does not ask for its reports either
    schema = foundation.GENERAL_COMMANDS[G.Configure_Reporting].schema
    records, _ = schema.deserialize(core.configure_request().payload)
    assert SUPPLY_STATUS not in [r.attrid for r in records.config_records]


@pytest.mark.parametrize(("low", "high"), [(5, 2), (-1, 10), (0, 0xFFFF)])
def test_supply_status_intervals_are_checked(low: int, high: int) -> None:
    with pytest.raises(ValueError, match="Supply Status reporting intervals"):
        MeteringClientConfig(supply_min_interval=low, supply_max_interval=high)
    assert MeteringClientConfig(supply_min_interval=5, supply_max_interval=0).supply_status is False
