"""Running a command's coroutine so that Ctrl-C is taken by its event loop.

``asyncio.run`` alone answers SIGINT with a Python signal handler, which runs between any two
bytecodes: inside one of the loop's callbacks too. One that cancels the main task in the middle of
asyncio's own connect callback (a stick's socket just connected) makes that callback set a result
on a future that is cancelled by then, and asyncio logs the callback's ``InvalidStateError`` with
its traceback after the command's one line. Here SIGINT goes through the loop
(``loop.add_signal_handler``): it is handled between callbacks, never inside one.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

_T = TypeVar("_T")


def run_until_ctrl_c(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """``asyncio.run(coroutine)``, SIGINT cancelling it from the loop. Raises
    :class:`KeyboardInterrupt` when SIGINT ended it (as ``asyncio.run`` does), whatever
    instant the signal came at. Another SIGINT while the command ends cancels it again."""
    interrupted = False

    async def main() -> _T:
        task = asyncio.current_task()
        assert task is not None

        def on_sigint() -> None:
            nonlocal interrupted
            interrupted = True
            task.cancel()

        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on this platform
            asyncio.get_running_loop().add_signal_handler(signal.SIGINT, on_sigint)
        return await coroutine

    try:
        return asyncio.run(main())
    except asyncio.CancelledError:
        if interrupted:
            raise KeyboardInterrupt from None
        raise
    finally:
        coroutine.close()  # never started (SIGINT before ``main``): no "never awaited" warning
