"""#14.2: the meter's stored profile (MeterCore.snapshot / restore): a round trip keeps what Get
Profile answers; anything else under the key is refused with a Mismatch (quarantined by the
service as a RecordError naming the record), never another exception, and changes nothing."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zse.metering.core import MeterCore, Readings
from zse.records import Mismatch, RecordError, load_each
from zse.se.ids import MeteringAttribute as A
from zse.se.types import IntervalChannel

T0 = 1800 * 1000


def meter(**kwargs: int | bool) -> MeterCore[str]:
    return MeterCore(formatting={A.DIVISOR: 1000}, now=T0, profile_period=3, **kwargs)  # type: ignore[arg-type]


def used() -> MeterCore[str]:
    m = meter()
    for minute in range(0, 121, 15):
        m.update(Readings(summation_delivered=minute * 11, status=2), T0 + minute * 60)
    return m


def test_round_trip_answers_get_profile_the_same() -> None:
    before = used()
    after = meter()
    after.restore(json.loads(json.dumps(before.snapshot())))
    channel = IntervalChannel.Consumption_Delivered
    now = T0 + 7200
    assert after.get_profile(channel, 0, 24, now) == before.get_profile(channel, 0, 24, now)
    assert after.read(A.CURRENT_SUMM_DELIVERED) == 1320
    assert after.read(A.STATUS) == 2
    assert after.interval_end == before.interval_end


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda r: r.update(period=1), ".period: 1, this meter's is 3"),
        (lambda r: r["channels"].update({"1": r["channels"]["0"]}), ".channels: not this meter's"),
        (lambda r: r["values"].update({"512": 256}), "not a reading of attribute 0x0200"),
        (
            lambda r: r["values"].update({"1": 5}),
            "a delivered-only meter has no summation received",
        ),
        (lambda r: r["channels"]["0"]["intervals"].append([1, 0x1000000]), "integer outside"),
    ],
)
def test_another_meters_or_a_damaged_profile_is_refused(change, reason: str) -> None:
    record = used().snapshot()
    change(record)
    m = meter()
    before = m.snapshot()
    with pytest.raises(Mismatch, match=re.escape(reason)):
        m.restore(record)
    assert m.snapshot() == before  # nothing changed


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def loaded(m: MeterCore[str], value: object) -> RecordError | None:
    """``value`` loaded into ``m`` as the store's loader does it: the RecordError naming the
    record (quarantined), or None when it loaded; any other exception escapes."""
    bad: list[RecordError] = []
    load_each(
        [("profile", value)],
        lambda _, v: m.restore(v),
        namespace="metering.server/9",
        on_bad=bad.append,
    )
    if bad:
        assert str(bad[0]).startswith("record metering.server/9/profile: ")
    return bad[0] if bad else None


@settings(max_examples=200, deadline=None)
@given(value=JSON)
def test_any_json_is_a_record_error_or_loads(value: object) -> None:
    loaded(meter(), value)
