"""An installer's hand-held terminal (HHT) commissions a meter over inter-PAN, on the simulator.

The meter runs its own network (PAN 0x1A2B) and, after the installer's PIN, opens its inter-PAN
window for five minutes, trusting the terminal's address. The terminal, on its own PAN (0x7E57),
runs one service request of six commands: set the meter's time, then read five registers. After
the third answer the radio link breaks (the simulator partitions the air); the terminal retries,
gives up, and when the link is back a *new* terminal session asks the meter where it stands and
continues exactly there. The meter executes each command once.

Run it: ``.venv/bin/python examples/hht.py [capture.pcap]`` (the capture opens in Wireshark).
"""

from __future__ import annotations

import asyncio
import struct
import sys
from typing import Any

from zse.interpan.hht import (
    SET_TIME,
    Command,
    HhtMeter,
    HhtTerminal,
    MemoryLog,
    carrier_whitelist,
    set_time_body,
    set_time_from_body,
)
from zse.interpan.service import InterPanService, LinkLost, run_terminal, serve_meter
from zse.interpan.transports.sim import SimTransport
from zse.interpan.window import SE_INTERPAN_COMMANDS, CommandWhitelist, InterPanWindow
from zse.sim import Air, run

READ_REGISTER = 0x02
METER_PAN, HHT_PAN = 0x1A2B, 0x7E57


class MeterApp:
    """The meter's application side: a clock and some registers."""

    def __init__(self) -> None:
        self.utc = 0
        self.reads: list[int] = []

    def set_time(self, body: bytes) -> bytes:
        self.utc = set_time_from_body(body)
        return b""

    def read_register(self, body: bytes) -> bytes:
        register = body[0]
        self.reads.append(register)
        return struct.pack("<BI", register, 1000 * register + 7)


async def demo(capture: str | None = None, *, say: Any = print) -> dict[str, Any]:
    air = Air(seed=42, capture=capture)
    meter_node = await air.coordinator(channel=15, pan_id=METER_PAN, ieee="00:0d:6f:00:00:00:00:4d")
    hht_node = await air.coordinator(channel=15, pan_id=HHT_PAN, ieee="00:0d:6f:00:00:00:00:77")
    meter_ieee, hht_ieee = meter_node.state.node_info.ieee, hht_node.state.node_info.ieee
    whitelist = CommandWhitelist([*SE_INTERPAN_COMMANDS, *carrier_whitelist()])

    app = MeterApp()

    def read_register(body: bytes) -> bytes:
        result = app.read_register(body)
        if body[0] == 2:  # the link breaks just after the meter executed this one
            air.partition([meter_node.radio], [hht_node.radio])
            say(f"t={air.now:.2f}s  link lost: the meter's answer to register 2 is not heard")
        return result

    carrier = HhtMeter(MemoryLog(), {SET_TIME: app.set_time, READ_REGISTER: read_register})
    window = InterPanWindow(default_duration=300, whitelist=whitelist)
    meter = InterPanService(
        SimTransport(meter_node), ieee=meter_ieee, pan_id=METER_PAN, window=window
    )
    window.open(meter.now(), trusted=[hht_ieee])  # the installer entered the PIN
    server = asyncio.get_running_loop().create_task(serve_meter(meter, carrier))
    say(f"meter {meter_ieee} opened its inter-PAN window until t={window.deadline:.0f}s")

    commands = [Command(0x5EC0_0001, SET_TIME, set_time_body(0x2F00_0000))]
    commands += [Command(0x5EC0_0001 + r, READ_REGISTER, bytes([r])) for r in range(1, 6)]

    terminal = HhtTerminal(0x0B0B, commands, timeout=2.0)
    hht = InterPanService(
        SimTransport(hht_node), ieee=hht_ieee, pan_id=HHT_PAN, whitelist=whitelist
    )

    try:
        await run_terminal(hht, terminal, meter=meter_ieee, meter_pan_id=METER_PAN)
    except LinkLost as exc:
        say(f"t={hht.now():.2f}s  terminal gave up after 3 tries: {exc}")
    for txid, result in sorted(terminal.results.items()):
        say(f"    transaction 0x{txid:08X}: {result.status.name} {result.result.hex()}")
    stopped_at = terminal.position

    await asyncio.sleep(30)
    air.heal()
    say(f"t={hht.now():.2f}s  link back; a new terminal session asks where to resume")
    fresh = HhtTerminal(0x0B0B, commands, timeout=2.0)
    results = await run_terminal(hht, fresh, meter=meter_ieee, meter_pan_id=METER_PAN, resume=True)
    say(f"t={hht.now():.2f}s  resumed at command {fresh.resumed_at}; finished: {fresh.done}")
    for txid, result in sorted(results.items()):
        say(f"    transaction 0x{txid:08X}: {result.status.name} {result.result.hex()}")
    say(f"meter clock set to {app.utc} (UTCTime); registers read: {app.reads}")
    say(f"commands executed by the meter: {carrier.executions} of {len(commands)}")

    await hht.close()
    await meter.close()
    await server
    await meter_node.shutdown()
    await hht_node.shutdown()
    air.close()
    return {
        "stopped_at": stopped_at,
        "resumed_at": fresh.resumed_at,
        "resumed_results": results,
        "executions": carrier.executions,
        "reads": app.reads,
        "utc": app.utc,
        "window": dict(window.counts),
    }


if __name__ == "__main__":
    run(demo(sys.argv[1] if len(sys.argv) > 1 else None))
