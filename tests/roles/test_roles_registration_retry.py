"""A HAN device's registration survives a lost frame (Silicon Labs' Smart Energy Registration
plugin: every failed step is tried again after a delay, three errors at most). One lost or
late CBKE frame used to end the join; now the exchange is tried again after 10 s (the wait
time of a Terminate when one came), three attempts in all, and a refused certificate is never
tried again. A Match_Desc_req left unanswered is asked again 32 s later, three times in all.
The frames are lost on the simulated air (``Air.set_link_faults``) for as long as each test
says; everything runs on virtual time."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import pytest
import zigpy.types as t
import zigpy.zdo.types as zdo_t

from tests.roles.han_builder import EUIS, Han, build, close
from zse.cbke import SUITE1
from zse.cbke.ca import TestCA
from zse.cbke.machine import Established, Terminated
from zse.cbke.service import RETRY_DELAY, KeyEstablishmentFailed, establish_key, eui64_bytes
from zse.roles.han import (
    ESI_DISCOVERY_RETRY_DELAY,
    HanDevice,
    InHomeDisplay,
    Joined,
    KeyEstablished,
)
from zse.se.ids import KEY_ESTABLISHMENT
from zse.se.types import TerminateStatus

#: A CA the ESI does not trust: its certificates are answered UNKNOWN_ISSUER (SE C.3.1.3.4).
OTHER_CA = TestCA.generate(b"OTHERCA1", rng=random.Random(23))
#: Seconds the ESI's answers to the display stay lost once the loss starts: past every APS
#: resend of the ESI's reply, short of the display's next attempt.
LOST_FOR = 8


def outcomes(han: Han) -> list[Established | Terminated]:
    """The ESI's key establishment outcomes from now on, in order, as its server reports them."""
    seen: list[Established | Terminated] = []
    han.esi.key_establishment.on_event(lambda event: seen.append(event.result))
    return seen


def lose_answers(han: Han, display: HanDevice, seconds: float | None) -> None:
    """From now on the ESI's frames to ``display`` are lost, for ``seconds`` (None: for
    good); the display's own frames still arrive. They are sent without asking an APS
    acknowledgement, so that only the ESI's answer is lost, not the display's request with
    its acknowledgement."""
    air, radio, sim = han.air, han.app.radio, display.device
    sim.aps_ack = False
    air.set_link_faults(radio, sim, both_ways=False, loss=1.0)
    if seconds is not None:
        asyncio.get_running_loop().call_later(
            seconds, lambda: air.set_link_faults(radio, sim, both_ways=False)
        )


def once_joined(display: HanDevice, act: Callable[[], None]) -> None:
    """``act()`` when the display has found the ESI, before its key establishment."""

    def on_event(event: Any) -> None:
        if isinstance(event, Joined):
            act()

    display.on_event(on_event)


def unforeseen(han: Han, name: str, credentials: Any) -> InHomeDisplay:
    """A display joining with ``credentials`` (another CA's certificate, say)."""
    sim = han.air.device(EUIS[name], install_code=han.codes[name], channel=15)
    display = InHomeDisplay(sim, credentials=credentials, clock=han.clock)
    han.devices[name] = display
    return display


async def test_a_lost_cbke_answer_is_tried_again_and_the_display_registers(tmp_path) -> None:
    """The ESI's Confirm Key Data Response is lost: the ESI has switched to the new key, the
    display has not; its exchange times out (5 s plus the 10 s margin), it tries again 10 s
    later and both sides end with the key of the second exchange."""
    han = await build(tmp_path, seed=81)
    try:
        await han.esi.provision(EUIS["ihd"])
        display = han.add("ihd")
        seen = outcomes(han)

        def lose_the_last_answer(msg: Any) -> None:
            # after the ESI's server has answered the first Ephemeral Data Request: what the
            # ESI sends next, its Confirm Key Data Response, is lost
            if msg.command_id == 0x01 and not seen:
                lose_answers(han, display, LOST_FOR)

        han.esi.key_establishment.endpoint.add_handler(KEY_ESTABLISHMENT, lose_the_last_answer)
        loop = asyncio.get_running_loop()
        began = loop.time()
        await display.start()
        assert [type(o) for o in seen] == [Established, Established]
        assert seen[0].key_data != seen[1].key_data
        assert han.app.get_link_key(display.device.ieee) == seen[1].key_data
        assert display.device.link_keys[han.app.state.node_info.ieee] == seen[1].key_data
        assert [type(e) for e in han.device_events["ihd"]].count(KeyEstablished) == 1
        assert loop.time() - began >= 15 + RETRY_DELAY  # timed out, then waited as said
    finally:
        await close(han)


async def test_a_refused_certificate_ends_the_retries(tmp_path) -> None:
    """The first attempt's answer is lost (a timeout, tried again); the second is the ESI's
    UNKNOWN_ISSUER: the display stops there (SE C.3.1.3.4: not to be retried), and the error
    says both attempts and why each failed, with no key material."""
    han = await build(tmp_path, seed=82)
    try:
        name = "thermostat"
        await han.esi.provision(EUIS[name])
        own = OTHER_CA.issue(eui64_bytes(EUIS[name]), SUITE1, rng=random.Random(5))
        display = unforeseen(han, name, own)
        seen = outcomes(han)
        # the answer to its Key Establishment Suite read is lost: no answer in time
        once_joined(display, lambda: lose_answers(han, display, LOST_FOR))
        with pytest.raises(KeyEstablishmentFailed) as failed:
            await display.start()
        assert failed.value.status is TerminateStatus.UNKNOWN_ISSUER
        assert failed.value.attempts == (
            "the partner did not answer in time",
            "the partner terminated with UNKNOWN_ISSUER, do not retry",
        )
        message = str(failed.value)
        assert message.startswith("key establishment failed after 2 attempts: attempt 1: ")
        assert own.private_key.hex() not in message.lower()
        await asyncio.sleep(120)  # no third attempt comes
        assert [getattr(o, "status", None) for o in seen] == [TerminateStatus.UNKNOWN_ISSUER]
    finally:
        await close(han)


async def test_a_silent_esi_is_tried_three_times_then_the_error_says_why(tmp_path) -> None:
    """The ESI's answers never reach the display after it found the ESI: three attempts, 10 s
    apart, then one error naming the three attempts and why each failed."""
    han = await build(tmp_path, seed=83)
    try:
        await han.esi.provision(EUIS["lcd"])
        display = han.add("lcd")
        loop = asyncio.get_running_loop()
        began: list[float] = []
        # the ESI found: from now on it is not heard

        def silence() -> None:
            lose_answers(han, display, None)
            began.append(loop.time())

        once_joined(display, silence)
        with pytest.raises(KeyEstablishmentFailed) as failed:
            await display.start()
        assert failed.value.terminated.timed_out
        assert len(failed.value.attempts) == 3
        assert all("unreachable" in why or "in time" in why for why in failed.value.attempts)
        message = str(failed.value)
        assert "after 3 attempts: attempt 1: " in message
        assert "attempt 3: " in message
        assert loop.time() - began[0] >= 2 * RETRY_DELAY
        assert KeyEstablished not in {type(e) for e in han.device_events["lcd"]}
    finally:
        await close(han)


def swallow_match_desc(monkeypatch: pytest.MonkeyPatch, han: Han, times: int | None) -> list[float]:
    """The coordinator leaves the first ``times`` Match_Desc_req unanswered (every one when
    None); returns when each Match_Desc_req arrived."""
    node = han.app.radio
    serve = node._zdo_serve
    heard: list[float] = []
    loop = asyncio.get_running_loop()

    def lossy(ind: Any) -> bool:
        if ind.cluster_id == zdo_t.ZDOCmd.Match_Desc_req:
            heard.append(loop.time())
            if times is None or len(heard) <= times:
                return True  # heard, never answered (its answer lost)
        return bool(serve(ind))

    monkeypatch.setattr(node, "_zdo_serve", lossy)
    return heard


async def test_an_unanswered_match_desc_is_asked_again(tmp_path, monkeypatch) -> None:
    han = await build(tmp_path, seed=84)
    try:
        await han.esi.provision(EUIS["ihd"])
        display = han.add("ihd")
        heard = swallow_match_desc(monkeypatch, han, times=1)
        await display.start()
        assert len(heard) == 2
        assert heard[1] - heard[0] >= ESI_DISCOVERY_RETRY_DELAY
        assert KeyEstablished in {type(e) for e in han.device_events["ihd"]}
    finally:
        await close(han)


async def test_a_coordinator_that_never_answers_match_desc_is_asked_three_times(
    tmp_path, monkeypatch
) -> None:
    han = await build(tmp_path, seed=85)
    try:
        await han.esi.provision(EUIS["ihd"])
        display = han.add("ihd")
        heard = swallow_match_desc(monkeypatch, han, times=None)
        with pytest.raises(TimeoutError, match="in 3 attempts") as failed:
            await display.start()
        assert len(heard) == 3
        assert "attempt 3: no answer in time" in str(failed.value)
    finally:
        await close(han)


async def test_an_injected_ephemeral_key_is_for_one_attempt_only() -> None:
    """A key injected for the spec's vectors would be used again by a second attempt (an
    ECMQV run makes its own ephemeral key pair, SEC 1 v2 6.2): refused before anything is
    sent; one attempt with it is fine, as the vectors need."""
    sent: list[Any] = []

    class Nowhere:
        def __getattr__(self, name: str) -> Any:
            sent.append(name)
            raise AssertionError(f"nothing is to be sent ({name})")

    with pytest.raises(ValueError, match="ephemeral_private_key is for one exchange"):
        await establish_key(
            Nowhere(),  # type: ignore[arg-type]
            partner_nwk=0,
            partner_endpoint=9,
            partner_eui64=t.EUI64.convert(EUIS["ihd"]),
            credentials=[],
            attempts=3,
            ephemeral_private_key=bytes(21),
        )
    assert sent == []
