"""Third-party loggers that print secrets at DEBUG are held at INFO (#12.23): aiosqlite prints
the registry's rows (install codes), zigpy's application its network key. Each test first
shows the leak with the loggers revealed, so it cannot pass by logging nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import aiosqlite
import pytest

from zse.cli._logging import REVEAL_VARIABLE, SECRET_LOGGERS, quiet_secret_loggers
from zse.installcode import InstallCode
from zse.provisioning.registry import HanRegistry
from zse.sim import Air

CODE = InstallCode.parse("83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5")


@pytest.fixture(autouse=True)
def levels() -> Iterator[None]:
    """Put every secret logger back as it was."""
    saved = {name: logging.getLogger(name).level for name in SECRET_LOGGERS}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def reset() -> None:
    for name in SECRET_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)


async def register_one(path) -> None:
    registry = await HanRegistry.open(path, clock=lambda: 1_700_000_000.0)
    try:
        await registry.register("00:0d:6f:00:0a:00:00:01", str(CODE), label="meter")
        registry.get("000D6F000A000001")
    finally:
        await registry.close()


async def _through_aiosqlite(path) -> None:
    """A statement with the code as a parameter through aiosqlite, as the store's reads and
    the headend's work queue send theirs (a store's commit goes to its thread whole, unlogged)."""
    async with aiosqlite.connect(path) as db:
        await db.execute("SELECT ?", (str(CODE),))


@pytest.mark.store_thread  # aiosqlite, whose debug log is the one that tells the rows
async def test_registry_rows_stay_out_of_debug_logs(tmp_path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    reset()
    assert quiet_secret_loggers(reveal=True) is False
    await register_one(tmp_path / "a.db")
    await _through_aiosqlite(tmp_path / "a2.db")
    assert str(CODE) in caplog.text  # aiosqlite prints a statement's parameters

    caplog.clear()
    assert quiet_secret_loggers() is True
    await register_one(tmp_path / "b.db")
    await _through_aiosqlite(tmp_path / "b2.db")
    assert str(CODE) not in caplog.text.upper()
    assert logging.getLogger("aiosqlite").level == logging.INFO


async def test_the_network_key_stays_out_of_debug_logs(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    reset()
    app = await Air(seed=3).coordinator(channel=15)
    key = bytes(app.state.network_info.network_key.key)
    spellings = (key.hex(), key.hex(":"))
    await app.startup(auto_form=False)  # logs "Network info: ..." at DEBUG
    assert any(s in caplog.text.lower() for s in spellings)

    caplog.clear()
    quiet_secret_loggers()
    await app.startup(auto_form=False)
    assert "Network info" not in caplog.text
    assert not any(s in caplog.text.lower() for s in spellings)
    await app.shutdown()


def test_the_environment_variable_reveals_and_a_higher_level_is_kept(monkeypatch, caplog) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: what the secret loggers inherit
    reset()
    monkeypatch.setenv(REVEAL_VARIABLE, "1")
    assert quiet_secret_loggers() is False
    assert logging.getLogger("aiosqlite").level == logging.NOTSET
    monkeypatch.setenv(REVEAL_VARIABLE, "0")
    logging.getLogger("bellows").setLevel(logging.WARNING)
    assert quiet_secret_loggers() is True
    assert logging.getLogger("bellows").level == logging.WARNING
    assert logging.getLogger("zigpy.backups").level == logging.INFO


def test_at_the_default_level_the_loggers_are_not_made_louder(caplog) -> None:
    """Held at INFO whatever the level, zigpy's "Network is not formed" and "New device ...
    joined" were printed by `zse esi` at its default level, warning."""
    caplog.set_level(logging.WARNING)
    reset()
    assert quiet_secret_loggers() is True
    assert all(logging.getLogger(name).level == logging.NOTSET for name in SECRET_LOGGERS)
    logging.getLogger("zigpy.application").info("New device 0x0684 joined the network")
    assert caplog.records == []
