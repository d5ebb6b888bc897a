"""A cancellation that lands in the loop turn the awaited thing completes.

On Python 3.11 ``asyncio.wait_for`` returns the result instead of raising when its task is
cancelled after the awaited future completed but before the task resumed (CPython gh-86296,
fixed in 3.12): the cancel is accepted and lost, and a reader loop cancelled at close runs
on. :func:`cancel_as_it_completes` makes that order happen, deterministically.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any


async def cancel_as_it_completes(
    waiting: Coroutine[Any, Any, Any], complete: Callable[[], None]
) -> tuple[bool, bool]:
    """Run ``waiting`` until it waits, ``complete()`` what it waits for, and cancel its task
    two loop turns later (after an inner task of ``wait_for`` finished, before the outer one
    resumes). Whether the cancel was accepted (the task still pending), and whether the task
    ended cancelled (not returning, nor raising anything else); a cancel accepted must end
    it cancelled."""
    loop = asyncio.get_running_loop()
    task = loop.create_task(waiting)
    for _ in range(3):
        await asyncio.sleep(0)  # the task (and any inner task) now waits
    accepted: list[bool] = []
    complete()
    loop.call_soon(lambda: loop.call_soon(lambda: accepted.append(task.cancel())))
    try:
        await task
    except asyncio.CancelledError:
        return accepted == [True], True
    except Exception:  # ended otherwise than cancelled: that is what matters here
        return accepted == [True], False
    return accepted == [True], False
