"""#12.16: every loader of persisted state fails on a wrong-shaped record with a StoreError
(RecordError) naming the namespace and key, never a raw TypeError / KeyError / AttributeError /
AssertionError, never the record's content; with ``on_bad`` the other records still load."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.installer.site import HUB
from zse.cbke import SUITE1
from zse.cbke.keys import generate_key_pair
from zse.drlc import DrlcClientCore, DrlcServerCore, LoadControlEvent, Status, StatusReport
from zse.errors import StoreError
from zse.installcode import InstallCode
from zse.installer.core import BackOffice, CommandCode, HubLedger, Outcome, originators_of
from zse.messaging import Confirmation, Message, MessageBoard, MessageStore
from zse.provisioning import DeviceRecord, LifecycleState
from zse.records import RecordError

T0 = 800_000_000
EUI = "000D6F000A000001"
CODE = str(InstallCode.from_data(bytes(range(16))))

LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.binary(max_size=8)
)
JSON = st.recursive(
    LEAVES, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4),
    max_leaves=12,
)  # fmt: skip


def event(event_id: int) -> LoadControlEvent:
    return LoadControlEvent(
        issuer_event_id=event_id, device_class=0x0FFF, duration_in_minutes=30, criticality_level=3
    )


def server_records() -> dict[str, Any]:
    core = DrlcServerCore()
    for event_id in (1, 2):
        core.publish(event(event_id), now=T0, expected=["a", "b"])
        core.record(
            "a",
            StatusReport(
                issuer_event_id=event_id,
                event_status=Status.RECEIVED,
                event_status_time=T0 + 1,
                criticality_level_applied=3,
            ),
            signed=True,
        )
    core.cancel(2, effective_time=0, now=T0 + 60)
    return copy.deepcopy(core.records())


def client_table() -> dict[str, Any]:
    core = DrlcClientCore(device_class=0x0FFF, rng=random.Random(1))
    core.receive_event(event(1), esi="0:9", now=T0)
    core.receive_event(event(2), esi="0:9", now=T0)
    core.handle_timeout(T0 + 3600 * 3)
    core.receive_event(event(3), esi="0:9", now=T0 + 3600 * 3)
    return copy.deepcopy(core.snapshot())


def message_records() -> dict[str, Any]:
    store = MessageStore()
    store.set_members(5, ["a", "b"])
    store.display(Message(message_id=7, text="hello", confirmation_required=True), T0, device="a")
    store.display(Message(message_id=8, text="all"), T0, group=5)
    store.confirm("a", Confirmation(message_id=7, confirmation_time=T0 + 5, answer=True,
                                    response=b"ok"), T0 + 6)  # fmt: skip
    store.cancel_all(T0 + 100, T0 + 50)
    return copy.deepcopy(store.to_records())


def board_records() -> dict[str, Any]:
    board = MessageBoard()
    board.display(Message(message_id=7, text="hi", enhanced_confirmation_required=True), T0)
    board.display(Message(message_id=8, text="later", start_time=T0 + 600), T0)
    board.confirm(7, T0 + 1, answer=True, response=b"yes")
    board.cancel_all(T0 + 900, T0 + 2)
    return copy.deepcopy(board.to_records())


def device_json() -> dict[str, Any]:
    record = DeviceRecord(eui64=EUI, install_code=CODE, state=LifecycleState.METER_READY,
                          label="kitchen", groups=frozenset({"g1"}), joined=True)  # fmt: skip
    return record.to_json()


OFFICE = BackOffice(b"BACKOFF1", generate_key_pair(SUITE1)[0])
HUB_COMMANDS = [
    OFFICE.sign(CommandCode.READ_STATUS, counter=counter, target=HUB) for counter in (1, 2, 3)
]


def hub_records() -> dict[str, Any]:
    ledger = HubLedger(originators_of([OFFICE]), hub=HUB)
    for sent, status in zip(HUB_COMMANDS, (Outcome.EXECUTED, None, Outcome.FAILED), strict=True):
        command, _ = ledger.decide(sent.encode())
        assert command is not None
        ledger.begin(command)
        if status is not None:
            ledger.done(command, status, b"result")
    changes = ledger.changes()
    return copy.deepcopy({k: v for k, v in changes.items() if v is not None})


def mutate(data: st.DataObject, value: Any) -> Any:
    """``value`` with one place changed: a sub-value replaced, a field removed or added."""
    if isinstance(value, dict) and value and data.draw(st.integers(0, 3)):
        key = data.draw(st.sampled_from(sorted(value)))
        op = data.draw(st.sampled_from(["descend", "descend", "delete", "add"]))
        changed = dict(value)
        if op == "delete":
            del changed[key]
        elif op == "add":
            changed[data.draw(st.text(max_size=6))] = data.draw(JSON)
        else:
            changed[key] = mutate(data, value[key])
        return changed
    if isinstance(value, list) and value and data.draw(st.integers(0, 3)):
        i = data.draw(st.integers(0, len(value) - 1))
        changed = list(value)
        changed[i] = mutate(data, value[i])
        return changed
    return data.draw(JSON)


def fails_cleanly(load, *, secret: str | None = None) -> RecordError | None:
    """Run ``load``: it succeeds, or raises RecordError (anything else fails the test)."""
    error = None
    try:
        load()
    except RecordError as exc:
        error = exc
    if error is not None:
        assert isinstance(error, StoreError)
        if secret is not None:
            assert secret.lower() not in str(error).lower()
    return error


PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_valid_records_load():
    core = DrlcServerCore()
    core.load_records(server_records())
    assert core.records() == server_records()
    client = DrlcClientCore(device_class=0x0FFF)
    client.restore(client_table())
    assert client.snapshot() == client_table()
    assert MessageStore.from_records(message_records()).to_records() == message_records()
    assert MessageBoard.from_records(board_records()).to_records() == board_records()
    assert DeviceRecord.from_json(device_json()).to_json() == device_json()
    hub = HubLedger.from_records(hub_records(), originators_of([OFFICE]), hub=HUB)
    assert hub.last_counter(OFFICE.originator) == 3


@PROPERTY
@given(st.data())
def test_drlc_server_load_records(data):
    records = server_records()
    key = data.draw(st.sampled_from(sorted(records)))
    records[key] = mutate(data, records[key])
    error = fails_cleanly(lambda: DrlcServerCore().load_records(records, namespace="drlc.server/9"))
    if error is not None:
        assert (error.namespace, error.key) == ("drlc.server/9", key)
        assert str(error).startswith(f"record drlc.server/9/{key}: ")
        bad: list[RecordError] = []
        core = DrlcServerCore()
        core.load_records(records, namespace="drlc.server/9", on_bad=bad.append)
        assert [e.key for e in bad] == [key]
        assert sorted(core.records()) == sorted(k for k in records if k != key)


@PROPERTY
@given(st.data())
def test_drlc_server_legacy_restore(data):
    snapshot = mutate(data, DrlcServerCore().snapshot() | _by_kind(server_records()))
    core = DrlcServerCore()
    before = core.records()
    if fails_cleanly(lambda: core.restore(snapshot, namespace="drlc.server/9")) is not None:
        assert core.records() == before


def _by_kind(records: dict[str, Any]) -> dict[str, Any]:
    return {
        "events": [v for k, v in sorted(records.items()) if k.startswith("event/")],
        "reports": [v for k, v in sorted(records.items()) if k.startswith("report/")],
    }


@PROPERTY
@given(st.data())
def test_drlc_client_restore(data):
    table = mutate(data, client_table())
    core = DrlcClientCore(device_class=0x0FFF)
    error = fails_cleanly(lambda: core.restore(table, namespace="drlc.client/1", key="table"))
    if error is not None:
        assert str(error).startswith("record drlc.client/1/table: ")
        assert core.snapshot() == {"entries": {}, "finished": []}  # left as it was
    else:
        core.resume()  # what the service does next
        core.handle_timeout(T0 + 7 * 24 * 3600)


@PROPERTY
@given(st.data())
def test_message_store_from_records(data):
    records = message_records()
    key = data.draw(st.sampled_from(sorted(records)))
    records[key] = mutate(data, records[key])
    error = fails_cleanly(
        lambda: MessageStore.from_records(records, namespace="messaging.server/9")
    )
    if error is not None:
        assert (error.namespace, error.key) == ("messaging.server/9", key)
        bad: list[RecordError] = []
        store = MessageStore.from_records(
            records, namespace="messaging.server/9", on_bad=bad.append
        )
        assert [e.key for e in bad] == [key]
        assert sorted(store.to_records()) == sorted(k for k in records if k != key)
    else:
        store = MessageStore.from_records(records)
        store.last_message("a", T0 + 10)
        store.message_cancellation(0)


@PROPERTY
@given(st.data())
def test_message_board_from_records(data):
    records = board_records()
    key = data.draw(st.sampled_from(sorted(records)))
    records[key] = mutate(data, records[key])
    error = fails_cleanly(
        lambda: MessageBoard.from_records(records, namespace="messaging.client/1")
    )
    if error is not None:
        assert (error.namespace, error.key) == ("messaging.client/1", key)
        bad: list[RecordError] = []
        MessageBoard.from_records(records, namespace="messaging.client/1", on_bad=bad.append)
        assert [e.key for e in bad] == [key]
    else:
        board = MessageBoard.from_records(records)
        board.handle_timeout(T0 + 10)
        board.showing()


@PROPERTY
@given(st.data())
def test_device_record_from_json(data):
    value = mutate(data, device_json())
    error = fails_cleanly(
        lambda: DeviceRecord.from_json(value, namespace="registry.devices", key=EUI), secret=CODE
    )
    if error is not None:
        assert str(error).startswith(f"record registry.devices/{EUI}: ")


@PROPERTY
@given(st.data())
def test_installer_hub_from_records(data):
    records = hub_records()
    key = data.draw(st.sampled_from(sorted(records)))
    records[key] = mutate(data, records[key])
    originators = originators_of([OFFICE])
    error = fails_cleanly(
        lambda: HubLedger.from_records(records, originators, namespace="installer.hub/9", hub=HUB)
    )
    if error is not None:
        assert (error.namespace, error.key) == ("installer.hub/9", key)
        assert str(error).startswith(f"record installer.hub/9/{key}: ")
        bad: list[RecordError] = []
        HubLedger.from_records(
            records, originators, namespace="installer.hub/9", on_bad=bad.append, hub=HUB
        )
        assert [e.key for e in bad] == [key]
    else:  # what the hub does with a loaded ledger: answer a resend of each command
        ledger = HubLedger.from_records(records, originators, hub=HUB)
        for sent in HUB_COMMANDS:
            ledger.decide(sent.encode())


@PROPERTY
@given(st.dictionaries(st.sampled_from(["event/", "report/", "msg/", "conf/", "board",
                                        "members", "cancel_alls", "x"]) | st.text(max_size=12),
                       JSON, max_size=4))  # fmt: skip
def test_arbitrary_values_under_every_key(records):
    fails_cleanly(lambda: DrlcServerCore().load_records(records))
    fails_cleanly(lambda: MessageStore.from_records(records))
    fails_cleanly(lambda: MessageBoard.from_records(records))
    for value in records.values():
        fails_cleanly(lambda value=value: DrlcClientCore(device_class=1).restore(value))
        fails_cleanly(lambda value=value: DeviceRecord.from_json(value))


@pytest.mark.parametrize("depth", [50, 100_000])
def test_deep_nesting_is_a_record_error_not_a_recursion_error(depth):
    deep: Any = 0
    for _ in range(depth):
        deep = [deep]
    records = {"event/00000001": {"event": deep}, "msg/00000001": deep, "board": deep}
    for load in (
        lambda: DrlcServerCore().load_records(records),
        lambda: MessageStore.from_records(records),
        lambda: MessageBoard.from_records(records),
        lambda: DrlcClientCore(device_class=1).restore({"entries": {"1": deep}}),
        lambda: DeviceRecord.from_json({"eui64": deep}),
        lambda: HubLedger.from_records({f"{'00' * 8}:last": deep}, {}, hub=HUB),
    ):
        assert fails_cleanly(load) is not None


def test_a_wrong_install_code_is_not_echoed():
    value = device_json() | {"install_code": CODE[:-1] + ("0" if CODE[-1] != "0" else "1")}
    error = fails_cleanly(
        lambda: DeviceRecord.from_json(value, key=EUI), secret=value["install_code"]
    )
    assert str(error) == f"record registry.devices/{EUI}: invalid value (InvalidInstallCode)"
