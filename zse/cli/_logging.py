"""Keep secrets out of the command line's logs (issue #12.23).

zse never logs a key or an install code itself. Some libraries under it do, at DEBUG: aiosqlite
logs every statement with its parameters (the HAN registry's rows carry install codes),
zigpy's ``zigpy.application`` logs the network information (network key and Trust Center link
key) at start and ``zigpy.backups`` every network backup (the same keys), and the radio
libraries log each frame they exchange with the stick (link keys as they are installed).

:func:`quiet_secret_loggers` holds those loggers at INFO, whatever level the rest of the
logging runs at, unless the user asks for them: ``reveal=True`` (a command-line option) or the
environment variable ``ZSE_LOG_SECRETS=1``.
"""

from __future__ import annotations

import logging
import os

__all__ = ["REVEAL_VARIABLE", "SECRET_LOGGERS", "quiet_secret_loggers"]

#: The environment variable that lets the loggers below print at DEBUG (``1``, ``yes``, ``true``).
REVEAL_VARIABLE = "ZSE_LOG_SECRETS"

#: Third-party loggers that print secrets at DEBUG, and what they print.
SECRET_LOGGERS: dict[str, str] = {
    "aiosqlite": "SQL parameters: registry rows with install codes",
    "zigpy.application": "the network information: network key, Trust Center link key",
    "zigpy.backups": "network backups: network key, Trust Center link key",
    "zigpy.appdb": "an event's arguments when SQLite fails on it: network backups, their keys",
    "bellows": "EZSP and ASH frames: link keys as they are installed",
    "zigpy_znp": "Z-Stack frames: link keys as they are installed",
}


def quiet_secret_loggers(*, reveal: bool | None = None) -> bool:
    """Hold :data:`SECRET_LOGGERS` at INFO or above; returns True if it did.

    ``reveal`` None reads :data:`REVEAL_VARIABLE`; a logger that would log at INFO or above
    anyway (its own level, or the one it inherits: warning by default) is left as it is, so
    that holding it never makes it louder. Call it after the logging level is chosen (``-v``,
    ``--log-level``).
    """
    if reveal is None:
        reveal = os.environ.get(REVEAL_VARIABLE, "").strip().lower() in ("1", "yes", "true")
    if reveal:
        return False
    for name in SECRET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.INFO:  # DEBUG, its own or inherited
            logger.setLevel(logging.INFO)
    return True
