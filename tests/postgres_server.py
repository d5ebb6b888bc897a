"""A real PostgreSQL server for the tests (and the benchmark): initdb + postgres in a temporary
directory, on a free loopback port, started once per test session and stopped at its end.

PostgreSQL refuses to run as root: as root it runs as the ``postgres`` system user the Debian
package creates (``runuser``), in a directory that user owns; otherwise as the current user.
Logins need a password (SCRAM), random per server, so that the tests can check that no message
ever shows it. ``.ci/install-tools`` installs the server (package ``postgresql``) when missing.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ENGINES = ("sqlite", "postgresql")
#: The session's server (``server()`` starts it at the first use).
_RUNNING: dict[str, Server] = {}
_NAMES = itertools.count()


@dataclass
class Server:
    """A running server: its superuser's URL (with the password) and how to stop it."""

    base: Path
    port: int
    password: str
    prefix: list[str]
    bindir: str

    @property
    def url(self) -> str:
        return f"postgresql://zse:{self.password}@127.0.0.1:{self.port}/postgres"

    def store_url(self, schema: str, **params: Any) -> str:
        query = "".join(f"&{k}={v}" for k, v in params.items())
        return f"{self.url}?schema={schema}{query}"

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.prefix, f"{self.bindir}/pg_ctl", "-D", str(self.base / "data"), *args],
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.pg_ctl("-m", "immediate", "-w", "stop")
        shutil.rmtree(self.base, ignore_errors=True)


def _bindir() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if not found:
        pytest.fail(
            "PostgreSQL is not installed: run .ci/install-tools (Debian package postgresql)"
        )
    return os.path.dirname(found[-1])


def _version(path: str) -> int:
    match = re.search(r"/(\d+)/bin/", path)
    return int(match.group(1)) if match else 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(*, durable: bool = False) -> Server:
    """initdb and start a server; ``durable`` keeps fsync on (the benchmark), else off."""
    bindir = _bindir()
    base = Path(tempfile.mkdtemp(prefix="zse-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses root: the package's system user runs it
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(base)
            pytest.fail("running as root, and no postgres user: run .ci/install-tools")
        os.chown(base, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    password = secrets.token_hex(12)
    pwfile = base / "pw"
    pwfile.write_text(password + "\n")
    if prefix:
        os.chown(pwfile, user.pw_uid, -1)
    subprocess.run(
        [
            *prefix,
            f"{bindir}/initdb",
            "-D",
            str(base / "data"),
            "-U",
            "zse",
            f"--pwfile={pwfile}",
            "-A",
            "scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--data-checksums",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    pwfile.unlink()
    port = _free_port()
    settings = f"-p {port} -k {base} -c listen_addresses=127.0.0.1"
    if not durable:
        settings += " -c fsync=off -c full_page_writes=off -c synchronous_commit=off"
    server = Server(base=base, port=port, password=password, prefix=prefix, bindir=bindir)
    try:
        server.pg_ctl("-l", str(base / "log"), "-w", "-t", "60", "-o", settings, "start")
    except subprocess.CalledProcessError:
        log = (base / "log").read_text() if (base / "log").exists() else ""
        server.stop()
        pytest.fail(f"PostgreSQL did not start:\n{log}")
    return server


def server() -> Server:
    """The session's server, started at the first use."""
    if "session" not in _RUNNING:
        _RUNNING["session"] = start()
    return _RUNNING["session"]


def stop_server() -> None:
    if "session" in _RUNNING:
        _RUNNING.pop("session").stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Server]:
    """The session's PostgreSQL server."""
    yield server()
    stop_server()


def unique_schema(name: str) -> str:
    """A schema name no other store of this session has."""
    return f"t{next(_NAMES)}_{re.sub(r'[^a-z0-9]', '_', name.lower())}"[:63]


@pytest.fixture(params=ENGINES)
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """``place(name)``: where a store called ``name`` lives on this test's engine (the same
    name, the same store): a file in ``tmp_path``, or a fresh schema of the session's server."""
    return _places(request, tmp_path, request.param)


@pytest.fixture
def pg_place(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """:func:`place` on PostgreSQL only (its own equivalents of the SQLite-only tests)."""
    return _places(request, tmp_path, "postgresql")


def _places(request: pytest.FixtureRequest, tmp_path: Path, engine: str) -> Any:
    names: dict[str, str] = {}

    def where(name: str = "state.db") -> Any:
        if engine == "sqlite":
            return tmp_path / name
        if name not in names:
            names[name] = request.getfixturevalue("postgres").store_url(unique_schema(name))
        return names[name]

    where.engine = engine  # type: ignore[attr-defined]
    return where


async def raw_sql(location: Any, *statements: str | tuple[str, tuple[Any, ...]]) -> list[Any]:
    """Run SQL on a store's database behind the store's back (``?`` placeholders); the rows of
    the last statement."""
    import sqlite3  # noqa: PLC0415

    import asyncpg  # noqa: PLC0415

    from zse.store_engine import hold_virtual_clock  # noqa: PLC0415
    from zse.store_postgres import _numbered, parse_url  # noqa: PLC0415

    pairs = [(s, ()) if isinstance(s, str) else s for s in statements]
    if not isinstance(location, str):
        raw = sqlite3.connect(location)
        try:
            rows: list[Any] = []
            for sql, params in pairs:
                rows = raw.execute(sql, params).fetchall()
            raw.commit()
            return rows
        finally:
            raw.close()
    url = parse_url(location)
    with hold_virtual_clock():
        connection = await asyncpg.connect(
            host=url.host,
            port=url.port,
            user=url.user,
            password=url.password,
            database=url.database,
            server_settings={"search_path": url.schema},
        )
        try:
            await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{url.schema}"')
            rows = []
            for sql, params in pairs:
                rows = [tuple(r) for r in await connection.fetch(_numbered(sql), *params)]
            return rows
        finally:
            await connection.close()


async def wait_released(location: Any) -> None:
    """Wait until no session holds the single-writer lock of the store at ``location`` (a
    killed client's server process ends when it sees the socket closed: not at once). A
    blocking ``pg_advisory_lock``, bounded by a statement timeout; nothing to wait for on
    SQLite, whose lock the kernel drops with the process."""
    if not isinstance(location, str):
        return
    from zse.store_postgres import parse_url  # noqa: PLC0415

    key = parse_url(location).lock_key
    await raw_sql(
        location,
        "SET statement_timeout = '30s'",
        ("SELECT pg_advisory_lock(?)", (key,)),
        ("SELECT pg_advisory_unlock(?)", (key,)),
    )
