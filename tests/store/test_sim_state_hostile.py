"""The simulator's saved network (``<database>-sim.json``, :mod:`zse.cli._sim`) on a bad day:
a full disk or a directory in the way of its save is a StoreError naming the state file, the
last saved state kept and no partial copy of its keys left beside it; the devices are switched
off all the same."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.cli_sim.test_cli_sim_restart import zse_esi
from tests.store.helpers import run_python, watch_fsync
from zse.cli._sim import _write_private, load_state
from zse.config import ConfigError

SAVING = """
import resource, sys
from pathlib import Path
from zse.cli._sim import _write_private
from zse.errors import StoreError

resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))  # the disk fills up
try:
    _write_private(Path(sys.argv[1]), "k" * 5000)
except StoreError as exc:
    print(exc)
"""


def test_a_save_on_a_full_disk_is_a_store_error_and_keeps_the_last_state(tmp_path: Path) -> None:
    """It was an OSError (EFBIG) out of the save, leaving ``esi-1-sim.json.tmp`` behind with
    the part of the keys that fitted."""
    state = tmp_path / "esi-1-sim.json"
    state.write_text('{"version": 1}')
    said = run_python(SAVING, str(state)).splitlines()
    [line] = said
    assert line.startswith(f"{state}: cannot save the simulator's network: "), said
    assert state.read_text() == '{"version": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["esi-1-sim.json"]


def test_a_failed_save_at_the_end_is_one_line_naming_the_state_file(tmp_path: Path) -> None:
    """A directory where the save writes (``esi-1-sim.json.tmp``): the stop said
    "IsADirectoryError: Is a directory (esi-1-sim.json.tmp)"; the saved state is kept."""
    status, _, stderr = zse_esi(tmp_path, "quit\n")
    assert status == 0, stderr
    state = tmp_path / "esi-1-sim.json"
    saved = state.read_bytes()
    (tmp_path / "esi-1-sim.json.tmp").mkdir()
    status, lines, stderr = zse_esi(tmp_path, "sleep 5\nquit\n")
    assert status == 1, "\n".join(lines) + stderr
    assert "ESI stopped" in lines
    [said] = stderr.strip().splitlines()
    assert said.startswith("error: esi-1-sim.json: cannot save the simulator's network: "), said
    assert state.read_bytes() == saved


def test_the_directory_is_synced_after_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state was fsynced and renamed over the last one, its directory never fsynced: a
    power cut could bring the last state back (devices joined since then strangers).
    ``os.fsync`` is watched, not replaced."""
    state = tmp_path / "esi-1-sim.json"
    state.write_text("old")
    synced = watch_fsync(monkeypatch, state.read_text)  # (a directory?, the content then)
    _write_private(state, "new")
    assert synced == [(False, "old"), (True, "new")]  # the file, then the renamed directory
    assert stat.S_IMODE(state.stat().st_mode) == 0o600


def test_a_saved_device_of_a_wrong_length_eui64_is_a_config_error(tmp_path: Path) -> None:
    """A saved device keyed by an EUI-64 of the wrong length let zigpy's ``EUI64.convert``
    assert (AssertionError out of ``load_state``: ``zse esi --radio sim`` stopped with it);
    it is the ConfigError every other damage of the file is."""
    status, _, stderr = zse_esi(tmp_path, "quit\n")
    assert status == 0, stderr
    state = tmp_path / "esi-1-sim.json"
    saved = json.loads(state.read_text())
    assert load_state(state) is not None
    for device in ("00:0d", "", "00:0d:6f:00:0a:00:00:01:02"):
        state.write_text(json.dumps(saved | {"devices": {device: 1}}))
        with pytest.raises(ConfigError, match="not the simulator's saved network"):
            load_state(state)
