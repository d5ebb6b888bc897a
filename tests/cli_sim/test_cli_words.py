"""Counts in what the commands print are in words a person reads (``zse._words.counted``):
``registry: han.db (1 devices)``, ``(1 gateway meters)`` and ``on 1 workers`` were printed."""

from __future__ import annotations

import pytest

from zse._words import counted


@pytest.mark.parametrize(
    ("count", "noun", "plural", "said"),
    [
        (1, "device", None, "1 device"),
        (0, "device", None, "0 devices"),
        (2, "gateway meter", None, "2 gateway meters"),
        (1, "entry", "entries", "1 entry"),
        (3, "entry", "entries", "3 entries"),
    ],
)
def test_a_count_takes_the_noun_s_plural_unless_it_is_one(
    count: int, noun: str, plural: str | None, said: str
) -> None:
    assert counted(count, noun, plural) == said
