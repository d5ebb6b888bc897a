"""Key Establishment over inter-PAN between a terminal that never joined and a hub (both
suites), then APS-secured and fragmented inter-PAN frames with the key; tshark decrypts them
given the key. On the simulator's air, virtual time."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.oracles import zigbee_key_options
from zse.cbke import SUITE1, SUITE2, Initiator
from zse.cbke.ca import TestCA
from zse.cbke.service import KeyEstablishmentFailed, eui64_bytes
from zse.interpan.fragment import Reassembler
from zse.interpan.ke import InterPanKeyServer, _ke_command, _zcl, establish_over_interpan
from zse.interpan.secure import InterPanSecurity
from zse.interpan.service import InterPanService
from zse.interpan.transports.sim import SimTransport
from zse.interpan.window import (
    KE_INTERPAN_COMMANDS,
    SE_INTERPAN_COMMANDS,
    AllowedCommand,
    CommandWhitelist,
    Direction,
    InterPanWindow,
)
from zse.se.ids import KEY_ESTABLISHMENT
from zse.security import format_key_table
from zse.sim import Air, run

CA = TestCA.generate()
TUNNELING = 0x0704
#: Tunneling Transfer Data (client to server) allowed over inter-PAN, secured only.
SECURED_DATA = AllowedCommand(TUNNELING, Direction.Client_to_Server, 0x02, "data", secured=True)
WHITELIST = CommandWhitelist((*SE_INTERPAN_COMMANDS, *KE_INTERPAN_COMMANDS, SECURED_DATA))


def transfer(data: bytes, tsn: int = 1) -> bytes:
    return bytes((0x11, tsn, 0x02, 0x07, 0x00)) + data


async def pair(seed: int, capture: Path | None = None, *, hub_suites=(SUITE1, SUITE2), clock=None):
    air = Air(seed=seed, capture=capture)
    hub = await air.coordinator(channel=20, pan_id=0x1111)
    hht = await air.coordinator(channel=20, pan_id=0x2222)
    hub_ieee, hht_ieee = hub.state.node_info.ieee, hht.state.node_info.ieee
    window = InterPanWindow(default_duration=3600, whitelist=WHITELIST)
    window.open(0)
    hub_svc = InterPanService(
        SimTransport(hub),
        ieee=hub_ieee,
        pan_id=0x1111,
        window=window,
        security=InterPanSecurity(),
        reassembler=Reassembler(),
        clock=clock,
    )
    hht_svc = InterPanService(
        SimTransport(hht),
        ieee=hht_ieee,
        pan_id=0x2222,
        whitelist=WHITELIST,
        security=InterPanSecurity(),
        reassembler=Reassembler(),
    )
    server = InterPanKeyServer(
        hub_svc, [CA.issue(eui64_bytes(hub_ieee), suite) for suite in hub_suites]
    )
    server.start()
    return air, hub, hht, hub_svc, hht_svc, server


async def another_terminal(air: Air, like: InterPanService):
    """A second terminal on PAN 0x3333 with ``like``'s whitelist and its own security."""
    other = await air.coordinator(channel=20, pan_id=0x3333)
    return other, InterPanService(
        SimTransport(other),
        ieee=other.state.node_info.ieee,
        pan_id=0x3333,
        whitelist=like.whitelist,
        security=InterPanSecurity(),
    )


@pytest.mark.parametrize("suite", [SUITE1, SUITE2], ids=["suite1", "suite2"])
def test_key_establishment_then_secured_and_fragmented_frames(suite, tmp_path: Path) -> None:
    capture = tmp_path / "secured.pcap"

    async def main() -> dict[str, Any]:
        air, hub, hht, hub_svc, hht_svc, server = await pair(30 + suite.id, capture)
        out: dict[str, Any] = {}
        result = await establish_over_interpan(
            hht_svc,
            [CA.issue(eui64_bytes(hht_svc.ieee), suite)],
            hub=hub_svc.ieee,
            hub_pan_id=0x1111,
            hub_suites=suite.id,
        )
        out["suite"] = result.suite
        out["keys"] = (
            hub_svc.security.has_key(hht_svc.ieee),
            hht_svc.security.has_key(hub_svc.ieee),
        )
        # an unsecured Transfer Data is not admitted: the whitelist wants it secured (the
        # inbox made before it is sent: frames admitted before an inbox exists are not in it)
        tunnel = hub_svc.subscribe([TUNNELING])
        await hht_svc.transport.send(
            hht_svc.frame(
                cluster_id=TUNNELING,
                payload=transfer(b"plain"),
                dst_pan_id=0x1111,
                dst=hub_svc.ieee,
            )
        )
        out["plain"] = await tunnel.receive(timeout=2)
        # secured, one frame
        await hht_svc.send_message(
            cluster_id=TUNNELING,
            payload=transfer(b"hello"),
            dst=hub_svc.ieee,
            dst_pan_id=0x1111,
            secure=True,
        )
        got = await tunnel.receive(timeout=2)
        out["one"] = (got.payload, got.verified, got.reassembled)
        # secured, 300 octets: fragments, each answered, put together
        big = transfer(bytes(range(256)) + b"x" * 44, tsn=2)
        await hht_svc.send_message(
            cluster_id=TUNNELING, payload=big, dst=hub_svc.ieee, dst_pan_id=0x1111, secure=True
        )
        got = await tunnel.receive(timeout=5)
        out["big"] = (got.payload == big, got.verified, got.reassembled)
        out["completed"] = hub_svc.reassembler.counts["completed"]
        out["dropped"] = dict(hub_svc.security.dropped)
        key = hub_svc.security._keys[bytes(hht_svc.ieee.serialize())][0]
        out["keys_table"] = [line for line in format_key_table(air.keys).splitlines() if line]
        out["key"] = key.hex()
        await server.stop()
        await hub_svc.close()
        await hht_svc.close()
        await hub.shutdown()
        await hht.shutdown()
        air.close()
        return out

    out = run(main())
    assert out["suite"] == suite.name
    assert out["keys"] == (True, True)
    assert out["plain"] is None
    assert out["one"] == (transfer(b"hello"), True, False)
    assert out["big"] == (True, True, True)
    assert out["completed"] == 1
    assert out["dropped"] == dict.fromkeys(out["dropped"], 0)
    # tshark: the Key Establishment frames, the secured (decrypted with the key) frames
    packets = dissect_file(capture, out["keys_table"], out["key"])
    assert packets, "nothing captured"
    # Wireshark has no dissector for inter-PAN fragments (Silicon Labs' IPMF): it decrypts them
    # with the key and then reads the fragment header as a ZCL frame. Every other frame, the
    # network's included, dissects with no malformed packet.
    fragments = [
        p
        for p in packets
        if p.show("zbee_zcl.type") == ["0x00"] and p.show("zbee_aps.cluster") == ["0x0704"]
    ]
    assert len(fragments) >= 5
    assert all(p.show("zbee.sec.decryption_key") == ["inter-PAN"] for p in fragments)
    assert [p for p in packets if p.malformed and p not in fragments] == []
    shown = [name for p in packets for name, _, _ in p.fields]
    assert shown.count("zbee_zcl_se.ke.cmd.srv_rx.id") == 3  # initiate, ephemeral, confirm
    assert shown.count("zbee_zcl_se.ke.cmd.srv_tx.id") == 3
    assert shown.count("zbee_zcl_se.tun.cmd.srv_rx.id") == 1 + 1  # the plain one and "hello"


def dissect_file(capture: Path, table: list[str], key: str):
    import subprocess  # noqa: PLC0415
    import xml.etree.ElementTree as ET  # noqa: PLC0415

    from tests.clusters.se_frames import Dissected, tshark  # noqa: PLC0415

    options = zigbee_key_options([*table, f'"{key}","Normal","inter-PAN"'])
    pdml = subprocess.run(
        [tshark(), "-r", str(capture), *options, "-T", "pdml"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    packets = []
    for packet in ET.fromstring(pdml).iter("packet"):
        fields = [
            (f.get("name", ""), f.get("show", ""), f.get("value", "")) for f in packet.iter("field")
        ]
        malformed = any(n.startswith("_ws.malformed") or n == "_ws.expert" for n, _, _ in fields)
        packets.append(Dissected(fields, malformed))
    return packets


def test_unsupported_suite_is_refused() -> None:
    async def main() -> str:
        _, hub, hht, hub_svc, hht_svc, server = await pair(40, hub_suites=(SUITE1,))
        try:
            with pytest.raises(KeyEstablishmentFailed) as failed:
                await establish_over_interpan(
                    hht_svc,
                    [CA.issue(eui64_bytes(hht_svc.ieee), SUITE2)],
                    hub=hub_svc.ieee,
                    hub_pan_id=0x1111,
                    hub_suites=SUITE2.id,
                )
            return str(failed.value)
        finally:
            await server.stop()
            await hub_svc.close()
            await hht_svc.close()
            await hub.shutdown()
            await hht.shutdown()

    assert "UNSUPPORTED_SUITE" in run(main())


def test_stop_does_not_swallow_the_callers_cancellation() -> None:
    """``InterPanKeyServer.stop`` called from a task that is cancelled while it waits lets that
    cancellation go on up (as ``zse.zcl.timer.Timer.stop`` does); the serving task's own
    cancellation ends in stop()."""

    async def main() -> tuple[list[str], bool, bool]:
        air, hub, hht, hub_svc, hht_svc, server = await pair(41)
        reached: list[str] = []

        async def caller() -> None:
            await server.stop()
            reached.append("after stop")  # a cancelled caller must not get here

        task = asyncio.get_running_loop().create_task(caller())
        await asyncio.sleep(0)  # the caller is in stop(), waiting for the serving task
        task.cancel()
        cancelled = False
        try:
            await task
        except asyncio.CancelledError:
            cancelled = True
        # an uncancelled caller's stop() ends quietly
        server.start()
        await server.stop()
        quiet = server._task is None
        await hub_svc.close()
        await hht_svc.close()
        await hub.shutdown()
        await hht.shutdown()
        air.close()
        return reached, cancelled, quiet

    assert run(main()) == ([], True, True)


def test_a_terminal_starting_again_after_its_deadline_keeps_its_window_budget() -> None:
    """A terminal's exchange went quiet and it starts again; the hub reads its new Initiate
    after the old session's deadline (queued while the hub served others): the old session
    times out, the new one is served, and the terminal is vouched for until the new
    session's deadline (issue #20.4). The old session's end was told after the new one was
    vouched for, and took the vouch away: the terminal competed with a flood again."""
    clock = [0.0]

    async def main() -> tuple[bool, bool]:
        _, hub, hht, hub_svc, hht_svc, server = await pair(42, clock=lambda: clock[0])
        await server.stop()  # its frames handed to it here, at the hub's clock
        credentials = CA.issue(eui64_bytes(hht_svc.ieee), SUITE1)
        assert hub_svc.window is not None
        limiter = hub_svc.window.limiter
        try:

            async def initiate() -> None:
                request = Initiator(credentials, eui64_bytes(hub_svc.ieee)).start(clock[0])
                frame = hht_svc.frame(
                    cluster_id=KEY_ESTABLISHMENT,
                    payload=_zcl(request.send[0], 1, from_server=False),
                    dst_pan_id=0x1111,
                    dst=hub_svc.ieee,
                )
                command = _ke_command(frame, Direction.Client_to_Server)
                assert command is not None
                await server._on_command(frame, clock[0], *command)  # arrived now

            await initiate()
            deadline = server.core.next_deadline()
            assert deadline is not None
            first = limiter.established(hht_svc.ieee, deadline - 1)
            clock[0] = deadline + 1
            await initiate()
            return first, limiter.established(hht_svc.ieee, deadline + 2)
        finally:
            await hub_svc.close()
            await hht_svc.close()
            await hub.shutdown()
            await hht.shutdown()

    assert run(main()) == (True, True)
