"""The hub checks signed commands' signatures off the event loop (docs/cbke.md: pure-Python
curve work never runs on the loop).

Each command's ECDSA check (2 to 17 ms of curve arithmetic) ran on the event loop, under the
hub's lock. It now runs in the hub's executor; the commands are still judged in the order they
came, none runs twice, and every answer is the one the sans-IO ledger gives.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.installer.site import HUB
from zse.cbke import SUITE1
from zse.cbke.keys import generate_key_pair
from zse.installer.core import (
    BackOffice,
    CommandCode,
    CommandResponse,
    HubLedger,
    Outcome,
    originators_of,
)
from zse.installer.service import InstallerHub
from zse.sim import VirtualClockLoop

OFFICE = BackOffice(b"BACKOFF1", generate_key_pair(SUITE1)[0])
#: The office's name with another key: its signatures are bad.
FORGER = BackOffice(OFFICE.originator, generate_key_pair(SUITE1)[0])


class NotingExecutor(ThreadPoolExecutor):
    """A thread pool that notes the name of what it runs and the thread it runs on."""

    def __init__(self) -> None:
        super().__init__(max_workers=4)
        self.ran: list[tuple[str, int]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        def noted() -> Any:
            self.ran.append((getattr(fn, "__name__", ""), threading.get_ident()))
            return fn(*args, **kwargs)

        return super().submit(noted)


class LastFirst(Executor):
    """Holds the jobs until ``batch`` have come, then runs them last first: the checks of
    commands sent together finish in the reverse of their order."""

    def __init__(self, batch: int) -> None:
        self.batch = batch
        self.jobs: list[tuple[Future[Any], Callable[[], Any]]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self.jobs.append((future, functools.partial(fn, *args, **kwargs)))
        if len(self.jobs) == self.batch:
            for job_future, job in reversed(self.jobs):
                job_future.set_result(job())
        return future


@functools.cache
def signed(forged: bool, counter: int, body: bytes) -> bytes:
    return (
        (FORGER if forged else OFFICE)
        .sign(CommandCode.READ_STATUS, body, target=HUB, counter=counter)
        .encode()
    )


async def test_signatures_are_checked_in_the_executor() -> None:
    """Each command's signature is checked on one of the executor's threads, not the loop's."""
    with NotingExecutor() as executor:
        hub = InstallerHub(
            None,  # type: ignore[arg-type]  # execute() alone: no tunnel
            originators_of([OFFICE]),
            {CommandCode.READ_STATUS: lambda body: b"status " + body},
            executor=executor,
            hub=HUB,
        )
        good = await hub.execute(signed(False, 1, b"a"))
        forged = await hub.execute(signed(True, 2, b"b"))
    assert (good.status, good.result, forged.status) == (
        Outcome.EXECUTED,
        b"status a",
        Outcome.BAD_SIGNATURE,
    )
    assert [name for name, _ in executor.ran] == ["verify", "verify"]
    assert threading.get_ident() not in {thread for _, thread in executor.ran}


COMMAND = st.one_of(
    st.tuples(st.booleans(), st.integers(1, 5), st.sampled_from([b"a", b"b"])).map(
        lambda drawn: signed(*drawn)
    ),
    st.binary(max_size=60),  # garbage: MALFORMED
)


def sequentially(commands: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """The sans-IO ledger's answers, one command after another, and the bodies run."""
    ledger = HubLedger(originators_of([OFFICE]), hub=HUB)
    answers, ran = [], []
    for data in commands:
        command, decision = ledger.decide(data)
        if decision.response is None:
            assert command is not None
            ledger.begin(command)
            ran.append(command.body)
            response = ledger.done(command, Outcome.EXECUTED, b"status " + command.body)
        else:
            response = decision.response
        answers.append(response.encode())
    return answers, ran


@settings(max_examples=40, deadline=None)
@given(commands=st.lists(COMMAND, min_size=1, max_size=8))
def test_commands_sent_at_once_are_answered_as_one_after_another(commands: list[bytes]) -> None:
    """Commands arriving together, their checks finishing last first, are judged in the order
    they came: the answers and the commands run are the sequential ledger's, and none runs
    twice."""
    ran: list[bytes] = []

    async def handler(body: bytes) -> bytes:
        await asyncio.sleep(0)  # let the other commands' checks go on meanwhile
        ran.append(body)
        return b"status " + body

    async def main(executor: Executor) -> list[CommandResponse]:
        hub = InstallerHub(
            None,  # type: ignore[arg-type]
            originators_of([OFFICE]),
            {CommandCode.READ_STATUS: handler},
            executor=executor,
            hub=HUB,
        )
        answers = await asyncio.gather(*(hub.execute(data) for data in commands))
        assert set(hub.executed.values()) <= {1}
        return answers

    loop = VirtualClockLoop()
    try:
        answers = loop.run_until_complete(main(LastFirst(len(commands))))
    finally:
        loop.close()
    assert ([answer.encode() for answer in answers], ran) == sequentially(commands)
