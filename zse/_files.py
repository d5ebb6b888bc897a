"""Reading a whole file that a user names, with a bound on its size.

Key files, credentials, CA files and configuration files are small; a device (``/dev/zero``),
a huge file or a wrong path given instead must not be read into memory without end. Every
loader reads through :func:`read_bounded`, which reads at most ``limit + 1`` bytes and raises
the loader's own error, naming the file and the limit, for a longer file (hostile-input audit
D8). Errors opening or reading the file (:class:`OSError`) are left to the loader.
:func:`warn_if_shared` warns of a private key file that users other than its owner may read.
:func:`sync_directory` makes a file's new name (a rename, a file just created) durable.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Callable

__all__ = [
    "CONFIG_LIMIT",
    "FileTooLarge",
    "read_bounded",
    "read_text_bounded",
    "sync_directory",
    "warn_if_shared",
]


class FileTooLarge(ValueError):
    """A file larger than its reader takes: the ``error`` of callers that have no error
    class of their own (the command line's one-line errors)."""


#: the largest configuration, key, credentials or CA file read (bytes)
CONFIG_LIMIT = 4 * 1024 * 1024


def read_bounded(
    path: str | os.PathLike[str],
    limit: int = CONFIG_LIMIT,
    *,
    error: Callable[[str], Exception],
) -> bytes:
    """The bytes of ``path``, at most ``limit``; a longer file (or an endless device) raises
    ``error("<path>: larger than <limit> bytes")``. :class:`OSError` passes through."""
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise error(f"{os.fspath(path)}: larger than {limit} bytes: not a file zse reads here")
    return data


def read_text_bounded(
    path: str | os.PathLike[str],
    limit: int = CONFIG_LIMIT,
    *,
    error: Callable[[str], Exception],
) -> str:
    """:func:`read_bounded` decoded as UTF-8 (:class:`UnicodeDecodeError` passes through)."""
    return read_bounded(path, limit, error=error).decode("utf-8")


def read_text_file(
    path: str | os.PathLike[str], *, error: Callable[[str], Exception], limit: int = CONFIG_LIMIT
) -> str:
    """:func:`read_text_bounded`, a file that cannot be read raising ``error("cannot read
    PATH: why")``: the system's words (no such file), or ``not UTF-8 text`` (not Python's
    codec message, which names a byte and a position no editor shows)."""
    try:
        return read_text_bounded(path, limit, error=error)
    except OSError as exc:
        raise error(f"cannot read {os.fspath(path)}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise error(f"cannot read {os.fspath(path)}: not UTF-8 text") from None


def warn_if_shared(path: str | os.PathLike[str], setting: str, logger: logging.Logger) -> bool:
    """Warn on ``logger`` when the private key ``path`` (given as ``setting``, such as
    ``mqtt.key_file``) may be read by users other than its owner (zse writes its own keys
    with mode 0600, docs/security.md): it is used all the same. The warning names the file
    and its mode, never its content; a file that cannot be looked at is its loader's to
    report. Whether it warned (POSIX only: elsewhere there are no such modes)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    if os.name != "posix" or not mode & 0o077:
        return False
    logger.warning(
        "%s: %s may be read by other users (mode %03o): chmod 600 it",
        setting,
        os.fspath(path),
        stat.S_IMODE(mode),
    )
    return True


def sync_directory(directory: str | os.PathLike[str]) -> None:
    """fsync ``directory``: a rename into it, or a file just created in it, keeps its name
    after a power cut (fsyncing the file alone does not promise that, POSIX ``fsync``); where
    a directory cannot be opened or synced (Windows, some file systems) it is left to the
    system."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
