"""A database URL typed wrong is refused, never a file named with its password (#12.23).

``postgresql//user:pw@host/db`` (a colon missing) has no ``://``: it was taken as an SQLite
file's path, and the error for that file printed the path, password and all (an audit found
it through ``zse headend serve --database`` and ``zse headend worker --database``). A location
that looks like a database URL but is not one is now a :class:`StoreError` that shows it with
the password as ``***``; a file's path is still a file."""

from __future__ import annotations

import pytest

from zse.errors import StoreError
from zse.headend.queue import open_queue
from zse.store import Store
from zse.store_engine import is_postgres, redact_location

PASSWORD = "s3cret-Pw"
MISTYPED = [
    f"postgresql//audit:{PASSWORD}@127.0.0.1:1/db",  # the colon missing
    f"postgres//audit:{PASSWORD}@127.0.0.1/db",
    f"POSTGRESQL//audit:{PASSWORD}@127.0.0.1/db",
    f"postgres@ql://audit:{PASSWORD}@127.0.0.1/db",  # a stray character in the scheme
    f"//audit:{PASSWORD}@127.0.0.1/db",  # the scheme missing
    f"audit:{PASSWORD}@127.0.0.1/db",
]


def refused_line(exc: pytest.ExceptionInfo[StoreError]) -> str:
    text = str(exc.value)
    assert "\n" not in text
    assert PASSWORD not in text
    assert PASSWORD not in repr(exc.value)
    assert "looks like a database URL but is not one" in text
    assert "postgresql://USER@HOST/DATABASE" in text
    return text


@pytest.mark.parametrize("location", MISTYPED)
async def test_a_mistyped_url_is_refused_without_its_password(
    tmp_path, monkeypatch, location
) -> None:
    monkeypatch.chdir(tmp_path)  # where a relative "file" would go
    with pytest.raises(StoreError) as refused:
        await Store.open(location)
    assert refused_line(refused).startswith(redact_location(location))
    assert ":***@127.0.0.1" in str(refused.value)
    with pytest.raises(StoreError) as refused:
        await open_queue(location)  # zse headend worker --database
    refused_line(refused)
    assert not any(tmp_path.iterdir()), "a file was created under the URL's name"


async def test_a_path_joined_with_a_url_is_refused_too(tmp_path) -> None:
    """A URL joined onto a directory (what headend.toml's [server] database was): the
    ``user:password@`` in the path gives it away."""
    joined = tmp_path / f"postgresql://audit:{PASSWORD}@127.0.0.1:1/db"
    with pytest.raises(StoreError) as refused:
        await Store.open(joined)
    refused_line(refused)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "name", ["postgres.db", "postgresql-backup.sqlite", "postgresql/han.db", "a@b.db"]
)
async def test_files_whose_names_start_like_a_url_are_still_files(tmp_path, name) -> None:
    assert is_postgres(name) is False
    path = tmp_path / name
    path.parent.mkdir(exist_ok=True)
    store = await Store.open(path)
    await store.close()
    assert path.exists()


def test_the_password_is_redacted() -> None:
    assert redact_location("postgresql//u:pw@h:5432/db") == "postgresql//u:***@h:5432/db"
    assert redact_location("postgres@ql://u:p@w@h/db") == "postgres@ql:***@h/db"
    assert redact_location("han.db") == "han.db"
    assert redact_location("postgresql//u@h/db") == "postgresql//u@h/db"
