"""Background tasks that are never left with an exception nobody retrieves (#12.20)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

__all__ = ["keep_task"]


def keep_task(
    tasks: set[asyncio.Task[Any]],
    task: asyncio.Task[Any],
    logger: logging.Logger,
    what: str,
    level: int = logging.WARNING,
) -> None:
    """Hold ``task`` in ``tasks`` until it ends, then log its failure, if any, as one line
    ``"<what>: <error>"`` (a reply the radio could not deliver is reported, not lost)."""
    tasks.add(task)

    def done(finished: asyncio.Task[Any]) -> None:
        tasks.discard(finished)
        if not finished.cancelled() and finished.exception() is not None:
            logger.log(level, "%s: %s", what, finished.exception())

    task.add_done_callback(done)
