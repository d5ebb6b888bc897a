"""The ESI's servers store what changed, not their whole state: a report or a confirmation
is one record written, however many devices answered before (a headend's 10^5 devices)."""

from __future__ import annotations

import pytest
import zigpy.types as t
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.drlc.test_drlc_client_core import MIN, T0, event
from tests.drlc.test_drlc_server_core import report
from zse.drlc import DrlcServerCore, Status, UnknownEvent
from zse.drlc.service import _REPORT_EVENT_STATUS, DRLC, DrlcServer, _report_payload
from zse.messaging import Confirmation, Message, MessageStore
from zse.store import Batch, Store
from zse.zcl.endpoint import ZclMessage

DEVICES = [f"00:0d:6f:00:00:00:{i >> 8:02x}:{i & 0xFF:02x}" for i in range(64)]


def apply(mirror: dict, changes: dict) -> None:
    for key, value in changes.items():
        if value is None:
            mirror.pop(key, None)
        else:
            mirror[key] = value


# -- the cores: changes() keeps a mirror equal to the whole record set ---------------------------

drlc_ops = st.lists(
    st.tuples(
        st.sampled_from(["publish", "expect", "cancel", "cancel_all", "record"]),
        st.integers(1, 4),  # event id
        st.integers(0, 7),  # device
        st.sampled_from([Status.RECEIVED, Status.STARTED, Status.COMPLETED, Status.OPTED_OUT]),
        st.integers(0, 90),  # minutes after T0
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(ops=drlc_ops)
def test_drlc_server_changes_mirror_the_whole_state(ops):
    core = DrlcServerCore()
    mirror: dict = {}
    for kind, eid, dev, status, minutes in ops:
        now = T0 + minutes * MIN
        published = eid in {e.issuer_event_id for e in core.events()}
        if kind == "publish":
            core.publish(event(eid, T0 + MIN, 30), now=now, expected=DEVICES[:dev])
        elif kind == "expect" and published:
            core.expect(eid, DEVICES[dev : dev + 3])
        elif kind == "cancel" and published:
            core.cancel(eid, effective_time=0, now=now)
        elif kind == "cancel_all":
            core.cancel_all(now=now)
        elif kind == "record" and published:
            core.record(DEVICES[dev], report(eid, status, now))
        elif kind == "record":  # an event never issued: refused, nothing stored (#12.24)
            with pytest.raises(UnknownEvent):
                core.record(DEVICES[dev], report(eid, status, now))
        apply(mirror, core.changes())
        assert mirror == core.records()
        assert core.changes() == {}  # taken once
    again = DrlcServerCore()
    again.load_records(mirror)
    assert again.snapshot() == core.snapshot()


message_ops = st.lists(
    st.tuples(
        st.sampled_from(["display", "redisplay", "cancel", "cancel_all", "confirm", "members"]),
        st.integers(1, 3),  # message id
        st.integers(0, 7),  # device
        st.integers(0, 90),  # minutes after T0
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(ops=message_ops)
def test_message_store_changes_mirror_the_whole_state(ops):
    store = MessageStore()
    mirror: dict = {}
    for kind, mid, dev, minutes in ops:
        now = T0 + minutes * 60
        if kind == "display":
            store.display(Message(message_id=mid, text="hi"), now, group=dev)
        elif kind == "redisplay":  # same id, new text: earlier confirmations lapse
            store.display(Message(message_id=mid, text=f"v{minutes}"), now)
        elif kind == "cancel" and mid in store.messages:
            store.cancel(mid, now)
        elif kind == "cancel_all":
            store.cancel_all(0, now)
        elif kind == "confirm":
            store.confirm(DEVICES[dev], Confirmation(message_id=mid, confirmation_time=now), now)
        elif kind == "members":
            store.set_members(dev, DEVICES[:dev])
        apply(mirror, store.changes())
        assert mirror == store.to_records()
    assert MessageStore.from_records(mirror).to_records() == store.to_records()


def test_a_new_content_under_an_old_id_deletes_the_lapsed_confirmations():
    store = MessageStore()
    store.display(Message(message_id=1, text="a"), T0)
    store.confirm(DEVICES[0], Confirmation(message_id=1, confirmation_time=T0 + 1), T0 + 1)
    store.changes()
    store.display(Message(message_id=1, text="b"), T0 + 2)
    changes = store.changes()
    assert changes[f"conf/00000001/{DEVICES[0]}"] is None
    assert changes["msg/00000001"]["message"]["text"] == "b"


# -- the service: one record per report, whatever came before ------------------------------------


class RecordingStore(Store):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.batches: list[Batch] = []

    async def commit(self, batch: Batch) -> list[int]:
        self.batches.append(batch)
        return await super().commit(batch)


class Port:
    """Just enough of a ZclPort for the server: handlers, and sends that go nowhere."""

    endpoint_id = 9

    def __init__(self) -> None:
        self.handlers: dict = {}

    def add_handler(self, cluster_id, handler):
        self.handlers[cluster_id] = handler
        return lambda: self.handlers.pop(cluster_id, None)

    async def send(self, *args, **kwargs) -> None:
        return None

    async def reply(self, *args, **kwargs) -> None:
        return None


def report_frame(device: int, status: int, at: int) -> ZclMessage:
    ieee = t.EUI64.convert(f"00:0d:6f:00:00:01:{device >> 8:02x}:{device & 0xFF:02x}")
    return ZclMessage(
        src_nwk=0x1000 + device,
        src_ieee=ieee,
        src_ep=9,
        dst_ep=9,
        cluster_id=DRLC,
        profile_id=0x0109,
        frame_control=0x01,  # cluster command, client to server
        manufacturer=None,
        tsn=device & 0xFF,
        command_id=_REPORT_EVENT_STATUS,
        payload=_report_payload(report(1, status, at), None),
        aps_encrypted=True,
        group=None,
        broadcast=False,
        timestamp=0.0,
    )


@pytest.mark.parametrize("answered_before", [0, 300])
async def test_a_report_writes_one_record_however_many_came_before(tmp_path, answered_before):
    clock = iter(range(T0, T0 + 10**6)).__next__
    async with await RecordingStore.open(tmp_path / "esi.db") as store:
        port = Port()
        server = DrlcServer(port, clock=clock, store=store)
        await server.start()
        await server.publish(event(1, T0 + MIN, 30))
        handler = port.handlers[DRLC]
        for device in range(answered_before):
            await handler(report_frame(device, Status.RECEIVED, T0 + 1))
        store.batches.clear()
        frame = report_frame(1000, Status.STARTED, T0 + MIN)
        assert await handler(frame) is not None
        written = [[(op, key) for op, _, key, _ in b._ops] for b in store.batches]
        key = f"report/{frame.src_ieee}/00000001/02/{T0 + MIN:08x}"
        # that report's record with its "to tell" entry (one commit), then the entry marked
        # once told; nothing else
        (seq,) = [k for op, k in written[1]]
        assert written == [[("put", key), ("append", "told")], [("mark", seq)]]
        await handler(frame)  # a repeat: nothing written
        assert len(store.batches) == 2
        view = server.core.view(1)
    async with await Store.open(tmp_path / "esi.db") as store:
        again = DrlcServer(Port(), clock=clock, store=store)
        await again.start()
        assert again.core.view(1) == view
        assert len(view) == answered_before + 1


async def test_the_single_state_record_of_earlier_releases_is_moved_to_records(tmp_path):
    old = DrlcServerCore()
    old.publish(event(1, T0 + MIN, 30), now=T0, expected=DEVICES[:3])
    old.record(DEVICES[0], report(1, Status.RECEIVED, T0 + 1))
    old.record(DEVICES[1], report(1, Status.STARTED, T0 + MIN))
    async with await Store.open(tmp_path / "esi.db") as store:
        await store.commit(Batch().put("drlc.server/9", "state", old.snapshot()))
        server = DrlcServer(Port(), clock=lambda: T0 + 2 * MIN, store=store)
        await server.start()
        assert server.core.snapshot() == old.snapshot()
        records = await store.load("drlc.server/9")
    assert "state" not in records
    assert records == old.records()
    async with await Store.open(tmp_path / "esi.db") as store:
        again = DrlcServer(Port(), clock=lambda: T0 + 2 * MIN, store=store)
        await again.start()
        assert again.never_answered(1) == [DEVICES[2]]
        assert again.started(1) == [DEVICES[1]]
