"""Background tasks of the roles are held, ended at stop and have their failures retrieved.

- The ESI's permit task (``permit_with_link_key``) was put in its task set only once the caller's
  few-second wait returned: a caller cancelled meanwhile (a timeout, Ctrl-C, a gone MQTT or HTTP
  caller) left it in no set, so ``stop()`` did not end it and its failure was asyncio's "Task
  exception was never retrieved". The ``zse esi`` shell's provision task did the same.
- A load control device whose opt-out policy said yes to a mandatory (Emergency) event fired an
  opt-out the DRLC core refuses (SE D.2.2.3.1.1.6) in a task whose ``OptOutRefused`` nobody
  retrieved; the policy is no longer asked about events that cannot be opted out of.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
from collections.abc import Callable
from typing import Any

from tests.roles.han_builder import EUIS, Han, build, close
from tests.roles.test_roles_household_load import (
    NORMAL,
    WATER,
    WATER_HEATER,
    at,
    household,
    lce,
)
from zse.cli.esi import Session
from zse.config import EsiConfig
from zse.drlc import LoadControlEvent
from zse.se.types import CriticalityLevel


def znp_like(han: Han) -> None:
    """The radio holds ``permit_with_link_key`` while joining is open, as zigpy-znp does, then
    fails."""

    async def permit(ieee: Any, key: Any, time_s: int = 60) -> None:
        await asyncio.sleep(time_s)
        raise RuntimeError("NCP reset while joining was open")

    han.app.permit_with_link_key = permit  # type: ignore[method-assign]


def named(name: str) -> list[asyncio.Task[Any]]:
    return [task for task in asyncio.all_tasks() if task.get_coro().__qualname__ == name]  # type: ignore[union-attr]


async def cancelled_after_one_second(start: Callable[[], Any]) -> None:
    caller = asyncio.get_running_loop().create_task(start())
    await asyncio.sleep(1)  # the virtual clock: inside the few seconds the caller waits
    caller.cancel()
    await asyncio.gather(caller, return_exceptions=True)


async def settle_and_collect() -> None:
    await asyncio.sleep(300)
    gc.collect()
    await asyncio.sleep(0)


async def test_a_cancelled_provision_leaves_no_permit_task_after_stop(
    tmp_path, unretrieved
) -> None:
    """The permit task of a cancelled provision() is ended by stop(), and nothing is left to
    asyncio's "never retrieved"."""
    han = await build(tmp_path)
    znp_like(han)
    await cancelled_after_one_second(lambda: han.esi.provision(EUIS["lcd"]))
    assert named("EnergyServiceInterface._open_joining")
    await han.esi.stop()
    assert named("EnergyServiceInterface._open_joining") == []
    await settle_and_collect()
    await close(han)
    assert [context.get("message") for context in unretrieved] == []


async def test_a_cancelled_provisions_late_permit_failure_is_logged(
    tmp_path, unretrieved, caplog
) -> None:
    """The permit of a cancelled provision() that fails later is logged by the ESI, not left
    to asyncio."""
    caplog.set_level(logging.ERROR, logger="zse")
    han = await build(tmp_path)
    znp_like(han)
    await cancelled_after_one_second(lambda: han.esi.provision(EUIS["lcd"]))
    await settle_and_collect()
    assert "opening joining failed" in caplog.text
    assert "RuntimeError" in caplog.text
    await close(han)
    assert [context.get("message") for context in unretrieved] == []


async def test_a_cancelled_shell_provision_is_ended_by_close(tmp_path, unretrieved) -> None:
    """The ``zse esi`` shell's provision task, its command cancelled, is ended by close()."""
    han = await build(tmp_path)
    znp_like(han)
    out: list[str] = []
    session = Session(han.esi, EsiConfig(), out.append, han.clock)
    await cancelled_after_one_second(lambda: session.provision(EUIS["lcd"], None))
    assert named("EnergyServiceInterface.provision")
    await session.close()
    assert named("EnergyServiceInterface.provision") == []
    await han.esi.stop()
    assert named("EnergyServiceInterface._open_joining") == []
    await settle_and_collect()
    await close(han)
    assert [context.get("message") for context in unretrieved] == []


async def test_the_opt_out_policy_is_not_asked_about_a_mandatory_event(
    tmp_path, unretrieved
) -> None:
    """A policy that opts out of everything is not asked about an Emergency event (mandatory,
    SE D.2.2.3.1.1.6): the device takes part, and no refused opt-out is left to asyncio."""
    asked: list[LoadControlEvent] = []

    def policy(event: LoadControlEvent) -> bool:
        asked.append(event)
        return True

    han, house, t0 = await household(tmp_path, opt_out=policy)
    start = t0 + 60
    emergency = dataclasses.replace(
        lce(0x1400_0009, WATER_HEATER, start, duty_cycle=0),
        criticality_level=CriticalityLevel.Emergency,
    )
    await han.esi.send_load_control(emergency, device=EUIS["lcd"])
    await at(han, start + 10)
    assert asked == []
    assert house.model.demand_watts(start + 10) == NORMAL - WATER  # it takes part
    await at(han, start + 20)
    optional = lce(0x1400_000A, WATER_HEATER, start + 200, duty_cycle=0)
    await han.esi.send_load_control(optional, device=EUIS["lcd"])
    await at(han, start + 210)
    assert [event.issuer_event_id for event in asked] == [0x1400_000A]
    gc.collect()
    await asyncio.sleep(0)
    await close(han)
    assert [context.get("message") for context in unretrieved] == []
