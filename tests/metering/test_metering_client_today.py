"""A display's "today" (CurrentDayConsumptionDelivered, SE 1.2 D.3.2.2.5) in its Metering
client core: read after each new summation when followed, shown with
HistoricalConsumptionFormatting, unknown (nothing shown) when the meter does not serve it,
and then never asked again."""

from __future__ import annotations

from tests.metering.test_metering_client_protocol import (
    FORMAT,
    METER,
    NOW,
    TYPES,
    G,
    feed,
    read_response,
    report,
)
from zse.metering.protocol import (
    SUMMATION,
    AttributeUnsupported,
    MeteringClientConfig,
    MeteringClientProtocol,
    TodayConsumption,
    decode_global,
)
from zse.se.ids import MeteringAttribute as A

TODAY = A.CURRENTDAY_CONSUMPTION_DELIVERED
#: uint24, as Wireshark and zigpy declare it.
TYPED = {**TYPES, TODAY: 0x22}
#: Three digits right of the point for historical consumption (D.3.2.2.4.6).
SHOWN = {**FORMAT, A.HISTORICAL_CONSUMPTION_FORMATTING: 0x03}


def follows_today(*, answered: bool = True) -> MeteringClientProtocol:
    """A display following today, its first read (formatting and summation) taken: that
    read of the summation asks for today; ``answered``: today's answer (0) taken too."""
    core = MeteringClientProtocol(METER, MeteringClientConfig(today=True))
    core.start(NOW)
    msg = read_response({**SHOWN, SUMMATION: 1000})
    step = core.receive(msg, decode_global(msg), NOW)
    assert [s.payload for s in step.sends] == [TODAY.to_bytes(2, "little")]
    if answered:
        feed(core, read_response({TODAY: 0}, types=TYPED), NOW)
    return core


def today_read(core: MeteringClientProtocol, values: dict[int, int], at: int) -> list[bytes]:
    """The payloads of the reads of today a message carrying ``values`` makes the core send."""
    msg = report(values)
    step = core.receive(msg, decode_global(msg), at)
    return [s.payload for s in step.sends if s.command_id == G.Read_Attributes]


def test_today_is_read_after_a_new_summation_and_shown_as_historical() -> None:
    core = follows_today()
    assert today_read(core, {SUMMATION: 1250}, NOW + 10) == [TODAY.to_bytes(2, "little")]
    assert today_read(core, {SUMMATION: 1260}, NOW + 11) == []  # one read waits
    (told,) = feed(core, read_response({TODAY: 250}, types=TYPED), NOW + 12)
    assert isinstance(told, TodayConsumption)
    assert (told.raw, str(told.reading)) == (250, "0.250 kWh")
    assert str(core.today) == "0.250 kWh"
    assert today_read(core, {SUMMATION: 1270}, NOW + 20) != []  # answered: asked again
    feed(core, read_response({TODAY: 0xFFFFFF}, types=TYPED), NOW + 21)  # uint24 non-value
    assert core.today is None


def test_a_read_not_answered_is_asked_again_after_the_answer_timeout() -> None:
    core = follows_today()
    assert today_read(core, {SUMMATION: 1250}, NOW + 10) != []
    timeout = core.config.answer_timeout
    assert today_read(core, {SUMMATION: 1260}, NOW + 10 + timeout - 1) == []
    assert today_read(core, {SUMMATION: 1270}, NOW + 10 + timeout) != []


def test_a_meter_that_does_not_serve_today_shows_nothing_and_is_not_asked_again() -> None:
    core = follows_today(answered=False)
    events = feed(core, read_response({}, unsupported=(TODAY,)), NOW + 11)
    assert [e for e in events if isinstance(e, AttributeUnsupported)] == [
        AttributeUnsupported(attribute=TODAY, at=NOW + 11)
    ]
    assert core.today is None
    assert today_read(core, {SUMMATION: 1300}, NOW + 100) == []
    assert feed(core, read_response({}, unsupported=(TODAY,)), NOW + 101) == ()  # said once


def test_a_display_not_following_today_never_reads_it() -> None:
    core = MeteringClientProtocol(METER)
    core.start(NOW)
    feed(core, read_response({**SHOWN, SUMMATION: 1000}))
    assert today_read(core, {SUMMATION: 1250}, NOW + 10) == []
    assert core.today is None
