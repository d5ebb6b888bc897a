"""``zse esi``'s TOML: ``[prepayment]`` and ``[prepayment.codes]`` make a prepay meter; without
them the ESI is a credit meter. Bad settings are refused with the code masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from zse.calendar.core import CalendarType
from zse.config import ConfigError, parse_config
from zse.prepayment.core import PrepayConfig

CODE = "12345678901234567890"


def test_a_prepayment_table_configures_the_account_and_its_codes() -> None:
    config = parse_config(
        f"""
        [prepayment]
        initial_credit = 1000
        emergency_credit_limit = 500
        emergency_credit_threshold = 100
        [prepayment.codes]
        "{CODE}" = 2000
        """
    )
    assert config.prepayment == PrepayConfig(
        initial_credit=1000, emergency_credit_limit=500, emergency_credit_threshold=100
    )
    assert config.prepayment_codes == {CODE: 2000}
    assert CODE not in repr(config)
    assert parse_config("").prepayment is None  # a credit meter by default


def test_the_friendly_credit_warning_and_the_currency_are_read() -> None:
    table = "[prepayment]\nfriendly_credit_warning = 30\ncurrency = 826"
    assert parse_config(table).prepayment == PrepayConfig(friendly_credit_warning=30, currency=826)
    assert PrepayConfig().friendly_credit_warning == 60  # DSR ZBOSS's hour


@pytest.mark.parametrize(
    "table",
    [
        "[prepayment]\nemergency_credit_limit = -1",
        "[prepayment]\ninitial_credit = true",
        "[prepayment]\ncredit = 5",
        "[prepayment]\nfriendly_credit = 1",
        "[prepayment]\nfriendly_credit_warning = 256",
        "[prepayment]\ncurrency = 65536",
        '[prepayment]\nfriendly_credit = "yes"',
        f'[prepayment.codes]\n"{CODE}" = "20.00"',
        f'[prepayment.codes]\n"{CODE}" = 0',
        f'[prepayment.codes]\n"{CODE}1234567890123456789012" = 5',
        # one code listed twice, spelled two ways (it would be applied once, for which amount?)
        f'[prepayment.codes]\n"{CODE}" = 2000\n"1234 5678 9012 3456 7890" = 5000',
    ],
)
def test_bad_prepayment_settings_are_refused_without_the_code(table: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(table)
    assert "[prepayment" in str(caught.value)
    assert CODE[:16] not in str(caught.value)


@pytest.mark.parametrize(
    "key", ["initial_credit", "low_credit_warning_level", "emergency_credit_limit", "cut_off_value"]
)
def test_an_integer_of_thousands_of_digits_is_one_config_error(key: str) -> None:
    """A value Python cannot print (``repr`` of an integer past 4,300 digits raises
    ValueError) was a crash of ``zse esi``; it is a config error naming its width."""
    text = f"[prepayment]\n{key} = 0x{'9' * 4000}\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert "a 16000-bit integer" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_friendly_credit_is_off_unless_asked() -> None:
    assert parse_config("[prepayment]").prepayment == PrepayConfig()
    assert not PrepayConfig().friendly_credit
    config = parse_config("[prepayment]\nfriendly_credit = true").prepayment
    assert config == PrepayConfig(friendly_credit=True)


def test_the_documented_friendly_credit_calendar_reads_as_one() -> None:
    """docs/prepayment.md's ``[prepayment]`` and ``[[calendars]]`` example: friendly credit
    on, and a Friendly Credit calendar on from 22:00 to 07:00."""
    text = (Path(__file__).parents[2] / "docs" / "prepayment.md").read_text()
    example = text.split("### Friendly credit periods", 1)[1].split("```toml", 1)[1]
    config = parse_config(example.split("```", 1)[0])
    assert config.prepayment is not None
    assert config.prepayment.friendly_credit
    (entry,) = config.calendars
    calendar = entry.calendar
    assert calendar.calendar_type == CalendarType.FRIENDLY_CREDIT
    assert calendar.days[0].entries == ((0, 1), (7 * 60, 0), (22 * 60, 1))
