"""The command line's output files survive a power cut (audit: persistence #7): the file
was fsynced and renamed over the target, but the directory was not fsynced, so the rename
itself could be lost and the old file come back. ``os.fsync`` is watched, not replaced."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.store.helpers import watch_fsync
from zse.cli._files import atomic_binary_output, atomic_output


@pytest.mark.parametrize("binary", [False, True])
def test_the_directory_is_synced_after_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, binary: bool
) -> None:
    target = tmp_path / "out"
    target.write_text("old")
    synced = watch_fsync(monkeypatch, target.read_text)  # (a directory?, the content then)
    if binary:
        with atomic_binary_output(str(target), "--write") as out:
            out.write(b"new")
    else:
        with atomic_output(str(target), "--out") as handle:
            handle.write("new")
    assert synced == [(False, "old"), (True, "new")]  # the file, then the renamed directory
