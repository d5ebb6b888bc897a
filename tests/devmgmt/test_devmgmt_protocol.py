"""The Device Management cores (SE 1.2 D.10) at the ZCL frame, with no event loop: each command
-> sends, events and the Default Response status; what the ESI holds is bounded and a damaged
stored record is not served; a change takes effect once, at its time."""

from __future__ import annotations

import dataclasses

import pytest
from zigpy.zcl import foundation

from tests.services.test_delivery import REQUEST
from zse.devmgmt.core import (
    MAX_EVENT_CONFIGURATIONS,
    ChangeOfSupplier,
    ChangeOfTenancy,
    CustomerId,
    DeviceManagementError,
    EventConfigurations,
    Kept,
    Password,
    Published,
    SiteId,
    StaleIssue,
    TenancyTakesEffect,
)
from zse.devmgmt.protocol import (
    ALL_EVENTS,
    DeviceManagementClientProtocol,
    DeviceManagementServerProtocol,
    EventConfigurationChanged,
    PasswordRequested,
    TenancyChanged,
    payload_of,
)
from zse.devmgmt.service import _step
from zse.devmgmt.wire import ConfigurationControl, DeviceManagement, configuration_payload
from zse.records import RecordError
from zse.zcl.codec import encode_command
from zse.zcl.delivery import Destination
from zse.zcl.frame import ZclMessage

NOW = 800_000_000
S = foundation.Status
REQUEST_DESTINATION = Destination.device(0x1234, 1)
TENANCY = ChangeOfTenancy(provider_id=5, issuer_event_id=10, implementation_time=NOW + 60)


def frame(command_id: int, payload: bytes = b"", *, from_server: bool = False) -> ZclMessage:
    return dataclasses.replace(
        REQUEST,
        frame_control=0x01 | (0x08 if from_server else 0),
        command_id=command_id,
        payload=payload,
    )


def server_frame(name: str, **fields) -> ZclMessage:
    definition = getattr(DeviceManagement.ServerCommandDefs, name)
    return frame(definition.id, encode_command(definition.schema(**fields)))


def test_the_get_commands_are_answered_or_not_found() -> None:
    core = DeviceManagementServerProtocol()
    for name in ("get_change_of_tenancy", "get_change_of_supplier", "get_site_id", "get_cin"):
        assert _step(core, server_frame(name), NOW).status == S.NOT_FOUND
    core.publish(TENANCY)
    step = _step(core, server_frame("get_change_of_tenancy"), NOW)
    (send,) = step.sends
    assert (send.command_id, send.payload) == payload_of(TENANCY)
    assert send.reply_to is not None
    # each Get answered with its own publication (D.10.2.3.1-2, 4, 6)
    supplier = ChangeOfSupplier(current_provider_id=5, issuer_event_id=6,
                                proposed_provider_id=9, implementation_time=NOW + 60)  # fmt: skip
    site = SiteId(issuer_event_id=3, provider_id=5, site_id="1200023305967")
    cin = CustomerId(issuer_event_id=4, provider_id=5, cin="CIN-0042")
    for item in (supplier, site, cin):
        core.publish(item)
    for name, item in (("get_change_of_tenancy", TENANCY), ("get_change_of_supplier", supplier),
                       ("get_site_id", site), ("get_cin", cin)):  # fmt: skip
        (send,) = _step(core, server_frame(name), NOW).sends
        assert (send.command_id, send.payload) == payload_of(item), name


def test_an_older_issue_is_refused_and_nothing_changes() -> None:
    core = DeviceManagementServerProtocol()
    core.publish(TENANCY)
    with pytest.raises(StaleIssue, match="older"):
        core.publish(dataclasses.replace(TENANCY, issuer_event_id=9))
    assert core.published.tenancy == TENANCY


def test_request_new_password() -> None:
    core = DeviceManagementServerProtocol()
    assert _step(core, server_frame("request_new_password", password_type=0), NOW).status == (
        S.INVALID_FIELD
    )
    missing = _step(core, server_frame("request_new_password", password_type=1), NOW)
    assert missing.status == S.NOT_FOUND
    assert missing.events[0] == PasswordRequested(
        source_nwk=REQUEST.src_nwk, source_ieee=REQUEST.src_ieee, password_type=1, answered=False
    )
    core.published.set_password(Password(password_type=1, issuer_event_id=1, value=b"abc"))
    (send,) = _step(core, server_frame("request_new_password", password_type=1), NOW).sends
    assert send.payload.endswith(b"\x01\x03abc")


def test_bad_frames_get_the_right_default_response() -> None:
    core = DeviceManagementServerProtocol()
    assert _step(core, frame(0x09), NOW).status == S.UNSUP_CLUSTER_COMMAND
    assert _step(core, frame(0x02, b""), NOW).status == S.MALFORMED_COMMAND
    assert _step(core, frame(0x00, from_server=True), NOW).status is None  # a server's: ignored
    client = DeviceManagementClientProtocol()
    bad_list = encode_command(
        DeviceManagement.ClientCommandDefs.set_event_configuration.schema(
            issuer_event_id=1,
            start_date_time=0,
            event_configuration=0x13,
            configuration_control=0,
            event_configuration_payload=b"\x05\x01\x00",  # 5 ids announced, 1 given
        )
    )
    assert _step(client, frame(0x04, bad_list, from_server=True), NOW).status == (
        S.MALFORMED_COMMAND
    )


def test_the_client_tells_a_new_issue_once_and_its_taking_effect_once() -> None:
    client = DeviceManagementClientProtocol()
    command_id, payload = payload_of(TENANCY)
    step = _step(client, frame(command_id, payload, from_server=True), NOW)
    assert [type(e) for e in step.events] == [TenancyChanged]
    assert _step(client, frame(command_id, payload, from_server=True), NOW).events == ()
    assert client.next_deadline() == NOW + 60
    assert client.handle_timeout(NOW + 59).events == ()
    assert client.handle_timeout(NOW + 60).events == (TenancyTakesEffect(change=TENANCY),)
    assert client.handle_timeout(NOW + 61).events == ()
    assert client.next_deadline() is None
    older = dataclasses.replace(TENANCY, issuer_event_id=9, implementation_time=NOW + 600)
    command_id, payload = payload_of(older)
    assert _step(client, frame(command_id, payload, from_server=True), NOW + 62).events == ()
    assert client.next_deadline() is None  # an older issue is not taken


def test_set_and_get_event_configuration() -> None:
    client = DeviceManagementClientProtocol(EventConfigurations({0x06C1: 0x03, 0x0300: 0x00}))
    set_by_list = DeviceManagementServerProtocol.set_event_configuration(
        REQUEST_DESTINATION,
        issuer_event_id=2,
        configuration=0x13,
        control=ConfigurationControl.APPLY_BY_LIST,
        value=[0x0300, 0x0604],
    )
    step = _step(client, frame(set_by_list.command_id, set_by_list.payload, from_server=True), NOW)
    assert step.events == (
        EventConfigurationChanged(
            issuer_event_id=2, event_ids=(0x0300, 0x0604), configuration=0x13
        ),
    )
    by_log = configuration_payload(ConfigurationControl.APPLY_BY_LOG_TYPE, 3)
    frame_by_log = encode_command(
        DeviceManagement.ClientCommandDefs.set_event_configuration.schema(
            issuer_event_id=3,
            start_date_time=0,
            event_configuration=0x04,
            configuration_control=2,
            event_configuration_payload=by_log,
        )
    )
    step = _step(client, frame(0x04, frame_by_log, from_server=True), NOW)
    assert step.events[0].event_ids == (0x06C1, 0x0300, 0x0604)  # all logged as general
    get = DeviceManagementServerProtocol.get_event_configuration(REQUEST_DESTINATION, ALL_EVENTS)
    (report,) = _step(client, frame(get.command_id, get.payload, from_server=True), NOW).sends
    server = DeviceManagementServerProtocol()
    told = _step(server, frame(report.command_id, report.payload), NOW).events[0]
    assert told.configurations == ((0x0300, 0x04), (0x0604, 0x04), (0x06C1, 0x04))


def test_event_configurations_are_bounded() -> None:
    table = EventConfigurations()
    table.apply(ConfigurationControl.APPLY_BY_LIST, list(range(MAX_EVENT_CONFIGURATIONS)), 3)
    with pytest.raises(DeviceManagementError, match="at most"):
        table.apply(ConfigurationControl.APPLY_BY_LIST, [0xFFF0], 3)
    assert len(table) == MAX_EVENT_CONFIGURATIONS


def test_apply_by_event_group_takes_the_group_ids_high_octet() -> None:
    """Event Group ID 0x0300 is the events 0x03xx (the high octet, as an event id's; Silicon
    Labs' device-management-client.c), not those of group 0x00."""
    table = EventConfigurations({0x0003: 0x00, 0x0300: 0x00, 0x03C1: 0x01, 0x0604: 0x00})
    changed = table.apply(ConfigurationControl.APPLY_BY_EVENT_GROUP, 0x0300, 0x13)
    assert changed == [0x0300, 0x03C1]
    assert table.records() == [(0x0003, 0x00), (0x0300, 0x13), (0x03C1, 0x13), (0x0604, 0x00)]


def test_apply_by_log_type_and_by_configuration_match_take_only_their_matches() -> None:
    """Apply by Log Type: the events whose configuration logs to that log (bits 0-2, whatever
    their push bits); by Configuration Match: those whose configuration is that value."""
    table = EventConfigurations({0x0001: 0x03, 0x0002: 0x1B, 0x0003: 0x02, 0x0004: 0x13})
    assert table.apply(ConfigurationControl.APPLY_BY_LOG_TYPE, 3, 0x04) == [1, 2, 4]
    assert table.records() == [(1, 0x04), (2, 0x04), (3, 0x02), (4, 0x04)]
    matched = table.apply(ConfigurationControl.APPLY_BY_CONFIGURATION_MATCH, 0x04, 0x05)
    assert matched == [1, 2, 4]
    assert table.apply(ConfigurationControl.APPLY_BY_CONFIGURATION_MATCH, 0x03, 0x00) == []
    assert table.records() == [(1, 0x05), (2, 0x05), (3, 0x02), (4, 0x05)]


def test_a_damaged_record_is_handed_over_and_not_served() -> None:
    published = Published()
    published.publish(TENANCY)
    published.publish(SiteId(issuer_event_id=1, provider_id=5, site_id="S"))
    published.set_password(Password(password_type=3, issuer_event_id=1, value=b"\x00\xff"))
    records = published.to_records()
    assert Published.from_records(records, namespace="n").to_records() == records
    records["tenancy"] = {**records["tenancy"], "control": -1}
    records["password/3"] = {**records["password/3"], "value": "zz"}
    bad: list[RecordError] = []
    loaded = Published.from_records(records, namespace="n", on_bad=bad.append)
    assert sorted(e.key for e in bad) == ["password/3", "tenancy"]
    assert loaded.tenancy is None
    assert loaded.passwords == {}
    assert loaded.site_id is not None
    for error in bad:
        assert "00ff" not in str(error)


def test_kept_ignores_older_issues() -> None:
    kept = Kept()
    supplier = ChangeOfSupplier(current_provider_id=1, issuer_event_id=5, proposed_provider_id=2)
    assert kept.take(supplier)
    assert not kept.take(dataclasses.replace(supplier, issuer_event_id=4))
    assert kept.supplier == supplier
