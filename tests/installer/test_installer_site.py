"""The GB-style installer story end to end on the simulator: key establishment over inter-PAN,
APS-secured handover, the hub's device log, the join with the install code, a signed service
request over a tunnel, a link broken at every step and resumed, a restart: nothing twice."""

from __future__ import annotations

import asyncio

import pytest
import zigpy.types as t

from tests.installer.site import (
    CA,
    OFFICE,
    InstallerTerminal,
    bootstrap,
    build,
    establish_key,
    service_request,
    terminal_bootstrap,
    terminal_client,
)
from zse.cbke import SUITE1
from zse.cbke.messages import InitiateKeyEstablishmentRequest
from zse.cbke.service import KeyEstablishmentFailed
from zse.installcode import InstallCode
from zse.installer.core import CommandCode, Outcome
from zse.installer.service import HANDOVER_RETRY, hand_over, serve_handover
from zse.interpan._codec import DeliveryMode, InterPanFrame
from zse.interpan.acceptance import JoinAdmission, JoinVerdict
from zse.interpan.window import Verdict
from zse.sim import JoinRefused
from zse.sim import _frames as frames
from zse.store import Store


async def test_bootstrap_and_signed_service_request(tmp_path):
    store = await Store.open(tmp_path / "hub.db")
    try:
        site = await build(80, store)
        await bootstrap(site)
        assert site.device_log == [site.terminal.ieee]
        assert site.terminal.joined
        client = await terminal_client(site)
        terminal = InstallerTerminal(client, service_request(target=site.target))
        responses = await terminal.run()
        assert [r.status for r in responses] == [Outcome.EXECUTED] * 3
        assert responses[0].result == b"hub ok"
        assert site.clock_set == [820_000_000]
        # the terminal (or anyone who recorded the air) replays a command: not run again
        replay = InstallerTerminal(client, service_request(target=site.target)[1:2])
        assert [r.status for r in await replay.run()] == [Outcome.DUPLICATE]
        assert site.clock_set == [820_000_000]
        await terminal.close()
        await client.stop()
        await site.stop()
    finally:
        await store.close()


@pytest.mark.parametrize("broken_at", [0, 1, 2])
async def test_service_request_resumes_after_a_broken_link(broken_at):
    site = await build(81 + broken_at)
    await bootstrap(site)
    client = await terminal_client(site)
    commands = service_request(target=site.target)
    terminal = InstallerTerminal(client, commands, timeout=5, attempts=10)
    sent = asyncio.Event()
    executed_before = site.hub.execute

    async def execute_then_break(data: bytes):
        response = await executed_before(data)
        if len(site.hub.executed) == broken_at + 1 and not sent.is_set():
            sent.set()  # the command ran; its answer is lost, and so is the link for a while
            site.air.set_faults(loss=1.0)
            asyncio.get_running_loop().call_later(12, site.air.set_faults, None)
        return response

    site.hub.execute = execute_then_break  # type: ignore[method-assign]
    responses = await terminal.run()
    assert sent.is_set()
    assert [r.counter for r in responses] == [c.counter for c in commands]
    # the command whose answer was lost comes back DUPLICATE, with its stored result
    assert responses[broken_at].status is Outcome.DUPLICATE
    assert set(site.hub.executed.values()) == {1}  # nothing ran twice
    assert len(site.hub.executed) == 3
    await client.stop()
    await site.stop()


async def test_counters_survive_a_restart(tmp_path):
    store = await Store.open(tmp_path / "hub.db")
    try:
        site = await build(85, store)
        await bootstrap(site)
        client = await terminal_client(site)
        await InstallerTerminal(client, service_request(target=site.target)).run()
        # the hub restarts: a new InstallerHub on the same store
        from zse.installer.service import InstallerHub  # noqa: PLC0415

        restarted = InstallerHub(
            site.tunnels, site.hub.originators, site.hub.handlers, store=store, hub=site.hub.hub
        )
        await restarted.start()
        old = OFFICE.sign(
            CommandCode.SET_TIME, (1).to_bytes(4, "big"), counter=2, target=site.target
        )
        assert (await restarted.execute(old.encode())).status is Outcome.STALE_COUNTER
        again = service_request(target=site.target)[2]
        assert (await restarted.execute(again.encode())).status is Outcome.DUPLICATE
        new = OFFICE.sign(CommandCode.READ_STATUS, counter=4, target=site.target)
        assert (await restarted.execute(new.encode())).status is Outcome.EXECUTED
        assert site.clock_set == [820_000_000]
        await client.stop()
        await site.stop()
    finally:
        await store.close()


@pytest.mark.parametrize("step", ["key", "handover", "join"])
async def test_bootstrap_recovers_from_a_broken_link_at_every_step(step):
    site = await build(90 + len(step))
    boot = terminal_bootstrap(site)
    done_before = boot.STEPS[: boot.STEPS.index(step)]
    if done_before:
        await _run_until(boot, step)  # the steps before run fine
    site.air.set_faults(loss=1.0)
    with pytest.raises((KeyEstablishmentFailed, TimeoutError, JoinRefused)):
        await boot.run()
    assert boot.done == list(done_before)
    site.air.set_faults(None)
    await boot.run()
    assert boot.done == ["key", "handover", "join"]
    assert site.device_log == [site.terminal.ieee]  # told once, whatever was resent
    assert site.terminal.joined
    await site.stop()


async def _run_until(boot, step: str) -> None:
    """Run the bootstrap's steps before ``step`` only."""
    join = boot.join

    async def refuse() -> None:
        raise JoinRefused("not yet")

    if step == "join":
        boot.join = refuse
        with pytest.raises(JoinRefused):
            await boot.run()
        boot.join = join
    elif step == "handover":
        await establish_key(boot)


async def test_handover_answer_lost_is_resent_and_told_once():
    site = await build(99)
    boot = terminal_bootstrap(site)
    await _run_until(boot, "handover")
    # the hub hears the handover, its answers are lost for a while
    site.air.set_link_faults(site.hub_ieee, site.terminal.ieee, loss=1.0, both_ways=False)
    with pytest.raises(TimeoutError):
        await boot.run()
    assert site.device_log == [site.terminal.ieee]  # the hub did enter it
    site.air.set_link_faults(site.hub_ieee, site.terminal.ieee, None, both_ways=False)
    await boot.run()
    assert site.device_log == [site.terminal.ieee]  # the resends were not told again
    assert site.terminal.joined
    await site.stop()


async def test_a_join_flood_does_not_starve_the_terminal():
    """1,000 association requests from spoofed addresses (100 a second) while the terminal
    bootstraps: each is refused (no install-code key for it), the terminal joins and runs its
    request. Joining is admitted per device by its install code's key, not by a shared budget."""
    site = await build(124)
    attacker = site.air.device("00:0d:6f:00:0e:ee:ee:ee", channel=20)
    attacker.listen(20)
    loop = asyncio.get_running_loop()

    async def flood() -> None:
        start = loop.time()
        for i in range(1000):
            spoofed = t.EUI64((0x5A00_0000_0000_0000 + i).to_bytes(8, "little"))
            header = frames.MacHeader(
                frames.MAC_COMMAND, i, site.pan_id, 0x0000, 0xFFFF, spoofed, True
            )
            request = bytes((frames.MAC_CMD_ASSOCIATION_REQUEST, 0x8E))
            await site.air.transmit(site.air.frame(attacker, frames.encode_mac(header, request)))
            await asyncio.sleep(max(0.0, start + (i + 1) / 100 - loop.time()))

    flooding = loop.create_task(flood())
    await asyncio.sleep(2)
    await bootstrap(site)
    client = await terminal_client(site)
    responses = await InstallerTerminal(client, service_request(target=site.target)).run()
    assert [r.status for r in responses] == [Outcome.EXECUTED] * 3
    await flooding
    assert list(site.app.radio.children) == [site.terminal.ieee]  # no spoofed device admitted
    await client.stop()
    await site.stop()


async def test_a_key_establishment_flood_does_not_starve_a_terminal_without_pin():
    """No PIN: 3,000 spoofed Initiate Key Establishment Requests, each from another address,
    100 a second for 30 s, while the terminal bootstraps. Its first Initiate shares the
    newcomers' budget with the flood and is lost; its second, 16 s later, is a returning
    source's and is admitted, and its session's next messages are vouched for (issue #20.4)."""
    site = await build(125)
    attacker = site.air.device("00:0d:6f:00:0e:ee:ee:ee", channel=20)
    attacker.listen(20)
    template = CA.issue(bytes(8), SUITE1).certificate.data
    loop = asyncio.get_running_loop()

    async def flood() -> None:
        start = loop.time()
        for i in range(3000):
            source = (0x5A00_0000_0000_0000 + i).to_bytes(8, "big")
            request = InitiateKeyEstablishmentRequest(
                suite=1,
                ephemeral_data_generate_time=5,
                confirm_key_generate_time=5,
                identity=template[:22] + source + template[30:],
            )
            frame = InterPanFrame(
                src_pan_id=0xFFFF,
                src_ieee=t.EUI64(source[::-1]),
                dst_pan_id=site.pan_id,
                dst_address=site.hub_ieee,
                delivery_mode=DeliveryMode.UNICAST,
                cluster_id=0x0800,
                payload=bytes((0x11, i & 0xFF, 0x00)) + request.encode(),
            )
            await attacker.send_interpan(frame.to_bytes())
            await asyncio.sleep(max(0.0, start + (i + 1) / 100 - loop.time()))

    flooding = loop.create_task(flood())
    await asyncio.sleep(2.013)
    started = loop.time()
    await site.bootstrap(key_attempts=4).run()
    client = await terminal_client(site)
    responses = await InstallerTerminal(client, service_request(target=site.target)).run()
    assert [r.status for r in responses] == [Outcome.EXECUTED] * 3
    assert loop.time() - started < 20  # its second try, while the flood goes on
    assert not flooding.done()
    await flooding
    window = site.interpan.window
    assert window is not None
    assert site.ke.established == 1
    assert window.counts[Verdict.ACCEPTED] <= 3 + 32 + 10  # newcomers' budget, the terminal's
    await client.stop()
    await site.stop()


async def test_a_busy_hub_tells_the_terminal_to_hand_over_later():
    """The hub's join permits are taken (issue #20.4: joins are rate-limited): the handover is
    answered busy with the wait; the terminal hands over again after it and joins."""
    site = await build(126)
    site.joins = JoinAdmission(max_pending=1, permit_duration=40)
    site.tasks[-1].cancel()  # serve the handover with the smaller admission
    site.tasks.append(serve_handover(site.interpan, _log_and_permit(site), admission=site.joins))
    loop = asyncio.get_running_loop()
    other = t.EUI64.convert("00:0d:6f:00:0f:00:00:99")
    assert site.joins.decide(other, "another terminal's code", loop.time())[0] is JoinVerdict.ADMIT
    started = loop.time()
    await site.bootstrap().run()
    assert 40 <= loop.time() - started < 45  # handed over again once the other permit ended
    assert site.joins.counts[JoinVerdict.BUSY] == 1
    assert site.device_log == [site.terminal.ieee]
    assert site.terminal.joined
    assert len(site.joins) == 0  # the terminal joined: its permit ended
    await site.stop()


async def test_a_hub_failing_to_take_a_handover_answers_busy_and_serves_on(caplog):
    """``on_handover`` raising (the stick refused the permit) ended the serving task: that
    handover and every later one went unanswered. Now it is logged and answered busy; the
    terminal hands over again after the wait and joins."""
    site = await build(128)
    permit = _log_and_permit(site)
    failures = [RuntimeError("the stick refused the permit")]

    async def flaky(handover) -> bool:
        if failures:
            raise failures.pop()
        return await permit(handover)

    site.tasks[-1].cancel()
    site.tasks.append(serve_handover(site.interpan, flaky, admission=site.joins))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await site.bootstrap().run()
    assert HANDOVER_RETRY <= loop.time() - started < HANDOVER_RETRY + 5
    assert not site.tasks[-1].done()
    assert site.device_log == [site.terminal.ieee]
    assert site.terminal.joined
    assert "on_handover failed" in caplog.text
    await site.stop()


async def test_another_install_code_from_the_same_terminal_is_refused():
    site = await build(127)
    boot = terminal_bootstrap(site)
    await _run_until(boot, "join")
    with pytest.raises(PermissionError):
        await hand_over(
            site.terminal_ip,
            hub=site.hub_ieee,
            hub_pan_id=site.pan_id,
            install_code=InstallCode.generate(rng=site.air.rng),
        )
    assert site.device_log == [site.terminal.ieee]  # the second code was not acted on
    assert site.joins.counts[JoinVerdict.REFUSED] == 1
    await site.stop()


def _log_and_permit(site):
    async def on_handover(handover) -> bool:
        site.device_log.append(handover.terminal)
        await site.app.permit_with_link_key(
            handover.terminal, t.KeyData(handover.install_code.link_key), 120
        )
        return True

    return on_handover
