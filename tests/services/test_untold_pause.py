"""zse.zcl.events.Untold.pause takes effect between the events of a batch being told: a
listener called with one lets the last listener go (the ESI's ``detach``, which pauses every
service), and the rest of the batch is held, first, for the next tell_untold, each told and
marked once. It was emitted to no one and marked told: lost."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.services.test_drlc_server_unsaved import ReportWrites, report_not_written
from tests.services.test_drlc_told import report_frame
from tests.services.test_told_in_hand import _restarted, drlc
from zse.drlc.service import DrlcServer, ReportReceived
from zse.se.ids import DRLC
from zse.zcl.events import EventStream, Untold


def _untold() -> tuple[EventStream[str], Untold[str], list[int]]:
    """An Untold on a stream, its marks recorded."""
    stream: EventStream[str] = EventStream()
    marked: list[int] = []

    async def mark(*seqs: int) -> None:
        marked.extend(seqs)

    return stream, Untold(stream, mark), marked


def _leaving(stream: EventStream[str], untold: Untold[str], heard: list[str]) -> None:
    """A listener that hears one event, then lets go, the last one (the ESI pauses)."""
    remove: Callable[[], None]

    def listener(event: str) -> None:
        heard.append(event)
        remove()
        untold.pause()

    remove = stream.on_event(listener)


async def _tell_a_batch(untold: Untold[str], how: str) -> None:
    """Tell a, b, c (seqs 1-3): held before the start then told, or told live."""
    batch = [(1, "a"), (2, "b"), (3, "c")]
    if how == "live":
        untold.hold([])
        await untold.tell_untold()
        await untold.tell(batch)
    else:
        untold.hold(batch)
        await untold.tell_untold()


@pytest.mark.parametrize("how", ["held at the start", "live"])
async def test_a_pause_while_a_batch_is_told_holds_the_rest(how: str) -> None:
    stream, untold, marked = _untold()
    first: list[str] = []
    _leaving(stream, untold, first)
    await _tell_a_batch(untold, how)
    assert (first, marked) == (["a"], [1])
    await untold.tell([(4, "d")])  # paused: held after the rest
    second: list[str] = []
    stream.on_event(second.append)
    await untold.tell_untold()
    assert (second, marked) == (["b", "c", "d"], [1, 2, 3, 4])


async def test_a_pause_between_the_reports_of_one_frame_holds_the_rest(tmp_path: Path) -> None:
    """The DRLC server tells two new reports with one device's frame (one an earlier write
    left, then the frame's): the application pauses at the first (the ESI's detach of its
    last listener); the second is held, told at the next tell_untold and marked, once (it
    was told to no one and marked: lost)."""
    path = tmp_path / "esi.db"
    heard: list[ReportReceived] = []
    server: DrlcServer | None = None

    def pausing(received: ReportReceived) -> None:
        heard.append(received)
        if len(heard) == 1 and server is not None:
            server.hold_untold()

    async with await ReportWrites.open(path) as store:
        assert isinstance(store, ReportWrites)
        port, server = await drlc(store, pausing)
        await report_not_written(store, port, "fails")
        await port.handlers[DRLC](report_frame(0x02))
        assert [r.report.event_status for r in heard] == [0x01]
        await server.tell_untold()
        assert [r.report.event_status for r in heard] == [0x01, 0x02]
        assert await store.unreported(server.namespace) == []
        await server.stop()
    assert await _restarted(path, DrlcServer) == []


@pytest.mark.parametrize("how", ["held at the start", "live"])
async def test_a_listener_that_raises_does_not_stop_the_telling(
    how: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A listener that raises on one event (the application's fault): the other listeners
    still get every event, the later ones too, and only that event stays unmarked (told again
    after the next start). The exception ended the telling: the rest of the batch and every
    later event were held until a restart, unsaid."""
    stream, untold, marked = _untold()
    heard: list[str] = []
    stream.on_event(heard.append)

    def faulty(event: str) -> None:
        if event == "b":
            raise RuntimeError("the application's bug")

    stream.on_event(faulty)
    await _tell_a_batch(untold, how)
    await untold.tell([(4, "d")])
    assert (heard, marked) == (["a", "b", "c", "d"], [1, 3, 4])
    assert "a listener failed with a str event" in caplog.text
    assert "the application's bug" in caplog.text  # its traceback, for the application
