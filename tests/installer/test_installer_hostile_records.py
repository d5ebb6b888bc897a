"""The hub's saved ledger, wrong-shaped (another zse version, a bug, a hand edit; the checksum
is valid): each bad record is a RecordError, quarantined by the store, and the hub starts with
the rest; a stored status that is no Outcome cannot make a resend raise."""

from __future__ import annotations

from typing import Any

import pytest

from tests.installer.site import HUB
from zse.cbke import SUITE1
from zse.cbke.keys import generate_key_pair
from zse.installer.core import BackOffice, CommandCode, HubLedger, Outcome, originators_of
from zse.installer.service import InstallerHub
from zse.records import RecordError
from zse.store import Batch, Store

OFFICE = BackOffice(b"BACKOFF1", generate_key_pair(SUITE1)[0])
ORIGINATOR = OFFICE.originator.hex()
COMMAND = OFFICE.sign(CommandCode.SET_TARIFF_LABEL, b"E7", counter=1, target=HUB)
KEY = f"{ORIGINATOR}:{1:020d}"
GOOD = {"digest": COMMAND.digest, "status": int(Outcome.EXECUTED), "result": b"ok".hex()}

BAD: list[tuple[str, Any]] = [
    (f"{ORIGINATOR}:last", {}),  # was KeyError
    ("zz:last", {"last": 1}),  # was ValueError (fromhex)
    (KEY, 5),  # was TypeError
    (f"{ORIGINATOR}:last", {"last": "7"}),
    (f"{ORIGINATOR}:last", {"last": -1}),
    (f"{ORIGINATOR}:x", GOOD),
    (f"{ORIGINATOR}:{-1:020d}", GOOD),
    (f"{ORIGINATOR}:{2**64:020d}", GOOD),
    (KEY, GOOD | {"status": 99}),  # loaded, then decide() raised on the resend
    (KEY, GOOD | {"status": True}),
    (KEY, GOOD | {"result": "zz"}),  # loaded, then fromhex raised on the resend
    (KEY, GOOD | {"result": "abc"}),
    (KEY, GOOD | {"digest": None}),
    (KEY, GOOD | {"begun": "yes"}),
    (KEY, GOOD | {"extra": 1}),
    (KEY, {"digest": COMMAND.digest}),
]


@pytest.mark.parametrize(("key", "value"), BAD)
def test_a_wrong_shaped_record_is_a_record_error(key, value):
    with pytest.raises(RecordError) as refused:
        HubLedger.from_records({key: value}, originators_of([OFFICE]), namespace="hub/1", hub=HUB)
    assert (refused.value.namespace, refused.value.key) == ("hub/1", key)
    assert str(refused.value).startswith(f"record hub/1/{key}: ")


@pytest.mark.parametrize(("key", "value"), BAD)
def test_with_on_bad_the_rest_load_and_a_resend_is_answered(key, value):
    other = f"{ORIGINATOR}:{2:020d}"
    good = {other: GOOD | {"digest": OFFICE.sign(CommandCode.SET_TARIFF_LABEL, b"E8",
                                                    counter=2, target=HUB).digest}}  # fmt: skip
    bad: list[RecordError] = []
    ledger = HubLedger.from_records(
        {key: value} | good, originators_of([OFFICE]), on_bad=bad.append, hub=HUB
    )
    assert [e.key for e in bad] == [key]
    assert ledger.last_counter(OFFICE.originator) == 2
    _, decision = ledger.decide(COMMAND.encode())  # the resend: answered, never an exception
    assert not decision.run


class _Tunnels:
    def serve(self, *args: Any, **kwargs: Any) -> None:
        pass

    def on_event(self, listener: Any) -> Any:
        return lambda: None


async def test_the_hub_starts_and_quarantines_its_bad_records(tmp_path):
    async with await Store.open(tmp_path / "hub.db") as store:
        batch = Batch()
        batch.put("installer.hub", KEY, GOOD | {"status": 99})
        batch.put("installer.hub", "zz:last", {"last": 1})
        batch.put("installer.hub", f"{ORIGINATOR}:last", {"last": 1})
        await store.commit(batch)
        hub = InstallerHub(_Tunnels(), originators_of([OFFICE]), {}, store=store, hub=HUB)  # type: ignore[arg-type]
        await hub.start()
        assert hub.ledger.last_counter(OFFICE.originator) == 1
        assert sorted(q.key for q in await store.quarantined("installer.hub")) == [KEY, "zz:last"]
        _, decision = hub.ledger.decide(COMMAND.encode())
        assert decision.response is not None
        assert decision.response.status is Outcome.STALE_COUNTER
        assert sorted(await store.load("installer.hub")) == [f"{ORIGINATOR}:last"]


def test_records_the_ledger_writes_load_back():
    ledger = HubLedger(originators_of([OFFICE]), hub=HUB)
    decided, _ = ledger.decide(COMMAND.encode())
    assert decided is not None
    ledger.begin(decided)
    begun = ledger.changes()
    HubLedger.from_records(
        {k: v for k, v in begun.items() if v is not None}, ledger.originators, hub=HUB
    )
    ledger.done(decided, Outcome.EXECUTED, b"\xff" * 300)
    done = {k: v for k, v in ledger.changes().items() if v is not None}
    again = HubLedger.from_records(done, ledger.originators, hub=HUB)
    _, decision = again.decide(COMMAND.encode())
    assert decision.response is not None
    assert decision.response.status is Outcome.DUPLICATE
    assert decision.response.result == b"\xff" * 300
