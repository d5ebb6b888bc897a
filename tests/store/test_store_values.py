"""What a store row holds (:func:`zse.store_engine.dump` / :func:`~zse.store_engine.load`):
every value a caller may store reads back equal, and any text a damaged row holds gives only
:class:`~zse.store_engine.NotJson` (its row quarantined).

A dict of the caller's whose only key was ``$bytes`` read back as bytes, or raised
``TypeError`` out of the store (``{"$bytes": 5}``): the tag of a stored ``bytes`` value; such a
dict is now stored escaped and given back as it was."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zse.store_engine import NotJson, dump, load

KEYS = st.sampled_from(["$bytes", "$$bytes", "$$$bytes", "x$bytes", "$bytes ", "a", ""]) | st.text(
    max_size=5
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.binary(max_size=8)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=2),
    max_leaves=10,
)


@pytest.mark.parametrize(
    "value",
    [
        {"$bytes": 5},
        {"$bytes": None},
        {"$bytes": "00"},
        [{"$bytes": "zz"}],
        {"$$bytes": 1},
        {"$bytes": {"$bytes": b"\x00"}},
    ],
)
def test_a_dict_like_the_bytes_tag_reads_back_as_it_was(value: Any) -> None:
    assert load(dump(value)) == value


@settings(max_examples=150, deadline=None)
@given(VALUES)
def test_every_storable_value_reads_back_equal(value: Any) -> None:
    assert load(dump(value)) == value


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=40) | st.sampled_from(['{"$bytes": 5}', '{"$bytes": "z"}', "[" * 5000]))
def test_any_text_is_a_value_or_not_json(text: str) -> None:
    with contextlib.suppress(NotJson):  # and nothing else: TypeError, RecursionError...
        load(text)
