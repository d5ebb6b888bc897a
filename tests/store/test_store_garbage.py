"""#19.4: garbage never escapes as anything but StoreError or a quarantine (hypothesis).

Garbage URLs give a parsed URL or one StoreError (never the password); garbage rows written with
SQL behind the store's back, on both engines, are served or quarantined, each one, and nothing
raises on the way.
"""

from __future__ import annotations

import asyncio
import itertools
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.postgres_server import ENGINES, raw_sql, unique_schema
from zse.errors import StoreError
from zse.store import Store, _entry_sum, _record_sum
from zse.store_postgres import PostgresUrl, parse_url

SECRET = st.text(alphabet="QWXZ#%!", min_size=8, max_size=16)
PIECE = st.text(alphabet=string.ascii_lowercase + string.digits + "@:/?&=[]%.-_ ", max_size=20)


@given(st.text(max_size=80) | st.builds("postgresql://{}".format, st.text(max_size=60)))
def test_any_text_parses_or_is_one_store_error(text):
    try:
        url = parse_url(text)
    except StoreError as exc:
        refusal = str(exc)
    else:
        assert isinstance(url, PostgresUrl)
        assert url.where.startswith("postgresql://")
        return
    assert refusal.startswith("invalid PostgreSQL URL: ")
    assert "\n" not in refusal


@given(user=PIECE, password=SECRET, host=PIECE, rest=PIECE)
def test_the_password_is_never_shown(user, password, host, rest):
    text = f"postgresql://{user}:{password}@{host}{rest}"
    try:
        url = parse_url(text)
    except StoreError as exc:
        shown = [str(exc)]
    else:
        shown = [url.where, repr(url)]
    assert all(password not in text for text in shown)


@settings(max_examples=25, deadline=None)
@given(user=PIECE, password=SECRET, database=PIECE, query=PIECE)
def test_garbage_urls_to_a_closed_port_are_one_store_error(user, password, database, query):
    async def attempt() -> None:
        url = f"postgresql://{user}:{password}@127.0.0.1:1/{database}?{query}"
        with pytest.raises(StoreError) as refused:
            await Store.open(url)
        assert password not in str(refused.value)
        assert "\n" not in str(refused.value)

    asyncio.run(attempt())


def _text(engine: str) -> st.SearchStrategy[str]:
    # PostgreSQL's text holds no NUL character and no lone surrogate
    return st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))


def _cells(engine: str) -> st.SearchStrategy[Any]:
    """A stored value: JSON or not; SQLite's columns also take numbers and bytes."""
    text = _text(engine) | st.just("[[[") | st.just('{"$bytes":"zz"}') | st.just("[1]")
    if engine == "sqlite":
        numbers = st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False)
        return text | numbers | st.binary(max_size=8)
    return text


@st.composite
def garbage(draw: st.DrawFn, engine: str) -> tuple[list[Any], list[Any]]:
    names = st.sampled_from(["ns", "other", "é"])
    records, entries = [], []
    for i in range(draw(st.integers(0, 6))):
        namespace, value = draw(names), draw(_cells(engine))
        key = f"k{i}-" + draw(_text(engine))
        fine = draw(st.booleans())
        checksum = _record_sum(namespace, key, value) if fine else draw(st.none() | _text(engine))
        records.append((namespace, key, value, checksum))
    for seq in range(1, draw(st.integers(0, 6)) + 1):
        namespace, kind, value = draw(names), draw(_text(engine)), draw(_cells(engine))
        reported = draw(st.integers(-(2**31), 2**31 - 1) | st.sampled_from([0, 1]))
        fine = draw(st.booleans())
        checksum = (
            _entry_sum(seq, namespace, kind, value, reported)
            if fine
            else draw(st.none() | _text(engine))
        )
        entries.append((seq, namespace, kind, value, reported, checksum))
    return records, entries


_RUNS = itertools.count()


@pytest.mark.parametrize("engine", ENGINES)
def test_garbage_rows_are_served_or_quarantined(engine, request, tmp_path_factory):
    def location() -> Any:
        if engine == "sqlite":
            return tmp_path_factory.mktemp("garbage") / "s.db"
        return request.getfixturevalue("postgres").store_url(unique_schema("garbage"))

    @settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(rows=garbage(engine))
    def check(rows: tuple[list[Any], list[Any]]) -> None:
        asyncio.run(_served_or_quarantined(location(), *rows))

    check()


async def _served_or_quarantined(path: Any, records: list[Any], entries: list[Any]) -> None:
    async with await Store.open(path):
        pass  # a new store
    await raw_sql(
        path,
        *[("INSERT INTO records VALUES (?, ?, ?, ?)", row) for row in records],
        *[
            (
                "INSERT INTO journal (seq, namespace, kind, value, reported, checksum)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                row,
            )
            for row in entries
        ],
    )
    async with await Store.open(path) as store:
        served = 0
        for namespace in await store.namespaces():
            served += len(await store.load(namespace))
            served += len(await store.journal(namespace))
            assert isinstance(await store.unreported(namespace), list)
        quarantined = await store.quarantined()
        assert served + len(quarantined) == len(records) + len(entries)
        assert all(item.reason for item in quarantined)
