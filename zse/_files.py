"""Reading a whole file that a user names, with a bound on its size.

Key files, credentials, CA files and configuration files are small; a device (``/dev/zero``),
a huge file or a wrong path given instead must not be read into memory without end. Every
loader reads through :func:`read_bounded`, which reads at most ``limit + 1`` bytes and raises
the loader's own error, naming the file and the limit, for a longer file (hostile-input audit
D8). Errors opening or reading the file (:class:`OSError`) are left to the loader.
"""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = ["CONFIG_LIMIT", "FileTooLarge", "read_bounded", "read_text_bounded"]


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
