"""``zse headend init`` is all or nothing: a file it could not write left the ones written
before it, and running it again then said "ca.pem exists; not overwriting". A failure now
removes what this run created (files, a file written halfway, directories it made) and
nothing that was there before, then says the error in one line."""

from __future__ import annotations

import os
from pathlib import Path

from click.testing import CliRunner

from tests.zse_cli import run_zse
from zse.cli import main


def test_a_later_file_that_cannot_be_written_leaves_the_directory_as_it_was(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "pki"
    directory.mkdir()
    (directory / "notes.txt").write_text("mine\n")  # not init's: stays
    (directory / "headend.toml").symlink_to(tmp_path / "gone" / "headend.toml")  # the last file
    result = CliRunner().invoke(main, ["headend", "init", str(directory)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: cannot write {directory / 'headend.toml'}: No such file or directory\n"
    )
    assert sorted(p.name for p in directory.iterdir()) == ["headend.toml", "notes.txt"]
    assert (directory / "headend.toml").is_symlink()
    assert (directory / "notes.txt").read_text() == "mine\n"
    (directory / "headend.toml").unlink()
    again = CliRunner().invoke(main, ["headend", "init", str(directory)])  # was "exists"
    assert again.exit_code == 0, again.stderr
    assert len(list(directory.iterdir())) == 10


def test_a_file_failing_halfway_and_the_directories_made_are_removed(tmp_path: Path) -> None:
    """Files limited to 800 bytes: ``ca.pem`` and its key fit, the server's certificate (a
    long ``--host`` in it) fails partway through its write."""
    directory = tmp_path / "made" / "pki"
    host = "h" * 60 + "." + "h" * 60 + ".example"
    result = run_zse("headend", "init", str(directory), "--host", host, limit=800)
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"error: cannot write {directory / 'server.pem'}: File too large\n"
    assert list(tmp_path.iterdir()) == []


def test_a_directory_that_is_a_special_file_is_said_so(tmp_path: Path) -> None:
    """``zse headend init /dev/null`` (or a FIFO: click's own check refuses a regular file
    only) was "cannot write /dev/null: File exists"."""
    path = tmp_path / "fifo"
    os.mkfifo(path)
    result = CliRunner().invoke(main, ["headend", "init", str(path)])
    assert (result.exit_code, result.output) == (2, f"error: {path}: not a directory\n")
