"""A time zone name that zoneinfo cannot read as a zone, whatever it raises (a tzdata
directory: IsADirectoryError; a name too long for a file name: OSError; a file that is not a
zone: ValueError): one TimeZoneError, its message one bounded line."""

from __future__ import annotations

import pytest

from zse.config import ConfigError, parse_config
from zse.time.core import IanaZone, TimeZoneError

NAMES = [
    "Europe",  # a directory of tzdata: was IsADirectoryError
    "America/Argentina",
    "x" * 300,  # was OSError: File name too long
    "Europe/" + "y" * 5000,
    "Europe/London/x",
    "tzdata.zi",
    "Nowhere/Zone",
    "a\x00b",
    "../../etc/passwd",
]


@pytest.mark.parametrize("name", NAMES, ids=lambda n: n[:20])
def test_a_name_that_is_not_a_zone_is_a_time_zone_error(name):
    with pytest.raises(TimeZoneError) as refused:
        IanaZone(name)
    said = str(refused.value)
    assert said.startswith("unknown time zone ")
    assert "\n" not in said
    assert len(said) < 120


@pytest.mark.parametrize("name", ["Europe", "x" * 300], ids=["directory", "long"])
def test_the_config_says_it_as_a_config_error(name):
    with pytest.raises(ConfigError) as refused:
        parse_config(f'[esi]\ntime_zone = "{name}"\n')
    assert str(refused.value).startswith("config: [esi] time_zone: unknown time zone ")
    assert len(str(refused.value)) < 200


def test_a_real_zone_still_loads():
    assert IanaZone("Europe/London").name == "Europe/London"
