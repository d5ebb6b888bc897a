"""Garbage to the loaders of stored records no other property test reached (#12.16's rule: a
wrong-shaped record is a StoreError, RecordError, naming its namespace and key, never a raw
TypeError / KeyError / AttributeError / OverflowError and never the record's content): Device
Management's published items and passwords and the device's applied changes and waiting
event configurations (SE 1.2 D.10), the Events logs (D.11), the Calendar server's calendars
(D.9), the mirror's journalled Get Notified Message requests and the time server's written
attributes. Each valid record has one place changed (a value replaced, a field dropped or
added), as the store's loaders see them (zse.records.load_each / load_one)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zigpy.types as t
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.calendar.tou import tou_calendar
from tests.store.test_loader_shapes import JSON, fails_cleanly, mutate
from zse.calendar.core import calendar_from_record, calendar_record
from zse.devmgmt import service as devmgmt_service
from zse.devmgmt.core import (
    ChangeOfSupplier,
    ChangeOfTenancy,
    CustomerId,
    EventConfigurations,
    Password,
    Published,
    SiteId,
)
from zse.devmgmt.protocol import WaitingConfiguration, waiting_records
from zse.devmgmt.wire import ConfigurationControl, configuration_payload
from zse.events.core import EventLog
from zse.metering.notification import FlagCommands, NotifiedMessageRequested
from zse.records import RecordError, load_one
from zse.store import Batch, Store
from zse.time import service as time_service
from zse.time.core import ZoneYear

NAMESPACE = "hostile/1"
SECRET = "5a5e"  # the password's octets, "Z^", as stored (hex)


def published() -> dict[str, Any]:
    state = Published()
    state.publish(ChangeOfTenancy(provider_id=1, issuer_event_id=2, implementation_time=3,
                                  control=1, tariff_type=1))  # fmt: skip
    state.publish(ChangeOfSupplier(current_provider_id=1, issuer_event_id=2,
                                   proposed_provider_id=3, provider_name="Acme",
                                   contact_details="0800"))  # fmt: skip
    state.publish(SiteId(issuer_event_id=2, provider_id=1, site_id="1012345678901"))
    state.publish(CustomerId(issuer_event_id=2, provider_id=1, cin="C-42"))
    state.set_password(Password(password_type=2, issuer_event_id=2, value=bytes.fromhex(SECRET)))
    return state.to_records()


def device_management_client() -> dict[str, Any]:
    waiting = [
        WaitingConfiguration(issuer_event_id=issuer, when=when, configuration=3, control=control,
                             payload=configuration_payload(ConfigurationControl(control), value))
        for issuer, when, control, value in ((1, 50, 0, [1, 2]), (2, 60, 1, 0x0100), (3, 70, 2, 4))
    ]  # fmt: skip
    return {
        "applied": {"tenancy": 2, "supplier": 3},
        "event_configuration/waiting": waiting_records(waiting),
    }


def event_logs() -> dict[str, Any]:
    log = EventLog(EventConfigurations({1: 0x01, 2: 0x02, 3: 0x03}))
    for event_id, now, data in ((1, 100, b"ab"), (2, 200, b""), (3, 300, b"\x01"), (1, 400, b"")):
        log.record(event_id, now, data)
    return log.changes()


def notified() -> dict[str, Any]:
    request = NotifiedMessageRequested(
        device=t.EUI64.convert("00:0d:6f:00:0a:00:00:01"), endpoint=10, scheme=1, attribute=1,
        flags=0x0003, commands=FlagCommands(0x0700, 0x1234, (0, 1)),
    )  # fmt: skip
    return {"told/1": request.record()}


def written() -> dict[str, Any]:
    record = time_service._Written(
        time=(800_000_000, 799_999_000), valid_until_time=900_000_000, synchronized=True,
        zone=ZoneYear(time_zone=3600, dst_start=1, dst_end=2, dst_shift=3600),
    )  # fmt: skip
    return {"written": record.record()}


def _each(build: Callable[[Any], Any]) -> Callable[[dict[str, Any]], Any]:
    """A loader of a namespace whose records ``build`` reads one at a time (load_one)."""
    return lambda records: [load_one(k, v, build, namespace=NAMESPACE) for k, v in records.items()]


#: name -> (valid records, their loader)
LOADERS: dict[str, tuple[Callable[[], dict[str, Any]], Callable[[dict[str, Any]], Any]]] = {
    "device management server": (
        published,
        lambda records: Published.from_records(records, namespace=NAMESPACE),
    ),
    "device management client": (
        device_management_client,
        lambda records: devmgmt_service._applied(NAMESPACE)(records, _raise),
    ),
    "events": (event_logs, lambda records: EventLog().load(records, namespace=NAMESPACE)),
    "calendar": (
        lambda: {"calendar/5/40": calendar_record(tou_calendar())},
        _each(calendar_from_record),
    ),
    "notified message": (notified, _each(NotifiedMessageRequested.from_record)),
    "time written": (written, _each(time_service._Written.from_record)),
}


def _raise(error: RecordError) -> None:
    raise error


@pytest.mark.parametrize("name", LOADERS)
def test_valid_records_load(name: str) -> None:
    records, load = LOADERS[name]
    assert fails_cleanly(lambda: load(records())) is None


@pytest.mark.parametrize("name", LOADERS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_damaged_record_loads_or_is_a_record_error_naming_it(
    name: str, data: st.DataObject
) -> None:
    make, load = LOADERS[name]
    records = copy.deepcopy(make())
    key = data.draw(st.sampled_from(sorted(records)))
    records[key] = mutate(data, records[key])
    error = fails_cleanly(lambda: load(records), secret=SECRET)
    if error is not None:
        assert (error.namespace, error.key) == (NAMESPACE, key)


@pytest.mark.parametrize("name", LOADERS)
@settings(max_examples=30, deadline=None)
@given(key=st.text(max_size=24), value=JSON)
def test_any_record_under_any_key_loads_or_is_a_record_error(
    name: str, key: str, value: Any
) -> None:
    fails_cleanly(lambda: LOADERS[name][1]({key: value}))


@pytest.mark.parametrize("device", ["", "00:0d", "00:0d:6f:00:0a:00:00:01:02", "not an eui"])
def test_a_journalled_request_of_a_wrong_length_eui64_is_quarantined(
    tmp_path: Path, device: str
) -> None:
    """The mirror's journal of Get Notified Message requests read at start
    (``Store.unreported_with``, zse/metering/mirroring.py): a device EUI-64 of the wrong
    length made zigpy's ``EUI64.convert`` raise AssertionError, which ``from_record`` let out
    (it caught KeyError, TypeError, AttributeError and ValueError), so the ESI did not start.
    It is quarantined as a damaged entry; the sound entry beside it is told."""
    good = notified()["told/1"]

    async def run() -> tuple[list[int], list[str]]:
        store = await Store.open(tmp_path / "state.sqlite")
        try:
            batch = Batch()
            batch.append("mirroring/1", "told", good | {"device": device})
            batch.append("mirroring/1", "told", good)
            await store.commit(batch)
            told = await store.unreported_with("mirroring/1", NotifiedMessageRequested.from_record)
            quarantined = [q.key for q in await store.quarantined("mirroring/1")]
        finally:
            await store.close()
        return [seq for seq, _ in told], quarantined

    told, quarantined = asyncio.run(run())
    assert (told, quarantined) == ([2], ["1"])
