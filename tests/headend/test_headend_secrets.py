"""``[server] database`` in ``headend.toml``: a ``postgresql://`` URL is used as a URL, and no
password reaches an error message or a repr (#12.23).

The setting used to be joined onto the configuration's directory as a file's path (docs/
headend.md documents a URL there): ``serve --sim`` then opened ``.../postgresql:/user:pw@...``
as an SQLite file, and its error printed the password."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.postgres_server import postgres, unique_schema
from tests.security.test_security_secrets import assert_hidden
from zse.cli import main
from zse.headend.control import ControlJob, ControlKind
from zse.headend.gateway import _Outgoing
from zse.headend.pki import HeadendConfigError, init_directory, load_config
from zse.headend.run import queue_location
from zse.installcode import InstallCode
from zse.store import Store

__all__ = ["postgres"]  # the fixture, imported for this module's tests

PASSWORD = "s3cret-Pw"
CODE = InstallCode.parse("83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5")


def configured(tmp_path: Path, database: str) -> Path:
    """``zse headend init``'s directory, with ``[server] database = database``."""
    directory = tmp_path / "pki"
    init_directory(directory, port=0)
    path = directory / "headend.toml"
    text = path.read_text()
    assert 'database = "headend.sqlite"' in text
    path.write_text(text.replace('database = "headend.sqlite"', f'database = "{database}"'))
    return path


def test_a_url_is_kept_as_a_url(tmp_path: Path) -> None:
    url = f"postgresql://audit:{PASSWORD}@127.0.0.1:1/db?schema=headend"
    config = load_config(configured(tmp_path, url))
    assert config.database == url
    assert queue_location(config.database) == url
    assert PASSWORD not in repr(config)


def test_a_file_is_still_relative_to_the_configuration(tmp_path: Path) -> None:
    config = load_config(configured(tmp_path, "data/headend.sqlite"))
    assert config.database == tmp_path / "pki" / "data" / "headend.sqlite"


@pytest.mark.parametrize(
    "database",
    [
        f"postgresql//audit:{PASSWORD}@127.0.0.1:1/db",
        f"postgres@ql://audit:{PASSWORD}@127.0.0.1:1/db",
        f"audit:{PASSWORD}@127.0.0.1:1/db",
    ],
)
def test_a_mistyped_url_is_a_config_error_without_the_password(
    tmp_path: Path, database: str
) -> None:
    path = configured(tmp_path, database)
    with pytest.raises(HeadendConfigError) as refused:
        load_config(path)
    text = str(refused.value)
    assert text.startswith(f"{path}: [server] database: ")
    assert "looks like a database URL but is not one" in text
    assert ":***@127.0.0.1" in text
    assert PASSWORD not in text


def zse(*args: str) -> Any:
    return CliRunner().invoke(main, ["headend", *args])


def test_serve_reaches_the_configured_url_and_says_so_without_the_password(
    tmp_path: Path,
) -> None:
    """What the audit ran: ``serve --sim 1`` over a headend.toml naming a PostgreSQL URL
    nothing listens at: one line, the URL without its password, exit 1."""
    path = configured(tmp_path, f"postgresql://audit:{PASSWORD}@127.0.0.1:1/db")
    done = zse("serve", "--config", str(path), "--sim", "1", "--port", "0")
    assert done.exit_code == 1, done.output
    assert done.stderr.count("\n") == 1
    assert "postgresql://audit@127.0.0.1:1/db: cannot connect" in done.stderr
    assert PASSWORD not in done.output
    assert not (tmp_path / "pki" / "postgresql:").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["serve", "--config", "{config}", "--meter", "m1", "--port", "0"],
        ["worker", "--broker", "mqtt://127.0.0.1:1"],
    ],
)
def test_a_mistyped_database_option_is_one_line_without_the_password(
    tmp_path: Path, command: list[str]
) -> None:
    config = str(configured(tmp_path, "headend.sqlite"))
    argv = [config if a == "{config}" else a for a in command]
    done = zse(*argv, "--database", f"postgresql//audit:{PASSWORD}@127.0.0.1:1/db")
    assert done.exit_code != 0, done.output
    assert done.stderr.count("\n") == 1, done.stderr
    assert "looks like a database URL but is not one" in done.stderr
    assert PASSWORD not in done.output


async def test_the_configured_url_opens_the_postgresql_store(tmp_path: Path, postgres) -> None:
    url = postgres.store_url(unique_schema("headend_toml"))
    config = load_config(configured(tmp_path, url))
    store = await Store.open(config.database)
    try:
        assert store.where.startswith("postgresql://zse@127.0.0.1:")
        assert store.path is None  # no SQLite file
    finally:
        await store.close()
    assert not list((tmp_path / "pki").glob("postgresql*"))


@pytest.mark.parametrize("code_text", [CODE.grouped(), str(CODE), "not a code 83FED3407A93"])
async def test_a_gateway_command_waiting_to_go_shows_no_install_code(code_text: str) -> None:
    """The provision job's body (ControlJob.command()) as the gateway link holds it until its
    publication: the install code shows as InstallCode's fingerprint."""
    job = ControlJob(
        key="k-1",
        kind=ControlKind.PROVISION,
        meter="meter-1",
        device="000D6F000A000001",
        payload={"mac": "00:0d:6f:00:0a:00:00:01", "install_code": code_text, "label": "ihd"},
    )
    waiter = asyncio.get_running_loop().create_future()
    outgoing = _Outgoing("provision", job.command(), None, waiter)
    text = repr(outgoing)
    assert_hidden(bytes(CODE), text)
    assert "83FED3407A93" not in text.replace(" ", "")
    assert text.startswith("_Outgoing(name='provision', body={'correlation_id': 'k-1', ")
    assert "'mac': '00:0d:6f:00:0a:00:00:01'" in text
    shown = repr(CODE) if code_text != "not a code 83FED3407A93" else "'<install code>'"
    assert f"'install_code': {shown}" in text
    waiter.cancel()
