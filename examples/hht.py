"""An installer's hand-held terminal (HHT) commissions a meter over inter-PAN, on the simulator.

The meter runs its own network (PAN 0x1A2B) and, after the installer's PIN, opens its inter-PAN
window for five minutes, trusting the terminal's address. The terminal has never joined any
network: it only listens on the meter's channel (``SimDevice.listen``) and speaks from PAN
0xFFFF. It first asks for the current price (SE Get Current Price, answered by Publish Price
over inter-PAN), then runs one service request of six commands: set the meter's time, then read
five registers. The meter executes the third command (read register 2), and the radio link
breaks before its answer is heard (the simulator partitions the air); the terminal retries, gives
up, and when the link is back a *new* terminal session asks the meter where it stands and goes
on exactly there, at the fourth command. The meter executes each command once. The output counts
commands from 1, as a reader does ("command 4 of 6"); the terminal's ``position`` and
``resumed_at`` count from 0 (``resumed_at`` is 3).

Run it: ``.venv/bin/python examples/hht.py [capture.pcap]`` (the capture opens in Wireshark).
"""

from __future__ import annotations

import asyncio
import struct
import sys
from typing import Any

from zigpy.types import EUI64

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
from zse.interpan.se import InterPanEsi, InterPanSeClient
from zse.interpan.service import InterPanService, LinkLost, run_terminal, serve_meter
from zse.interpan.transports.sim import SimTransport
from zse.interpan.window import SE_INTERPAN_COMMANDS, CommandWhitelist, InterPanWindow
from zse.price import PriceEvent, PriceSchedule
from zse.sim import Air, run

READ_REGISTER = 0x02
METER_PAN, NO_PAN = 0x1A2B, 0xFFFF
START = 800_000_000  # ZigBee UTCTime when the example starts
TARIFF = PriceEvent(
    provider_id=0x0000_2A2A,
    rate_label=b"DAY",
    issuer_event_id=1,
    unit_of_measure=0,  # kWh
    currency=826,  # GBP
    price_trailing_digit=4,
    price_tier=1,
    number_of_price_tiers=2,
    register_tier=1,
    start_time=0,
    duration_in_minutes=0xFFFF,
    price=2_1530,  # 2.1530 per kWh
)


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


def tariff(now: int) -> PriceSchedule:
    """The meter's prices (it serves them to terminals and displays over inter-PAN)."""
    prices = PriceSchedule()
    prices.add(TARIFF, now)
    return prices


def named(commands: list[Command], index: int | None) -> str:
    """Command ``index`` (counted from 0, as the terminal's ``position`` and ``resumed_at``
    are) as a reader counts it: index 3 is ``command 4 of 6 (read register 3)``."""
    if index is None:  # a terminal that never resumed
        return "no command"
    command = commands[index]
    what = "set the time" if command.code == SET_TIME else f"read register {command.body[0]}"
    return f"command {index + 1} of {len(commands)} ({what})"


async def read_price(client: InterPanSeClient, meter: EUI64, say: Any) -> PriceEvent:
    """SE Get Current Price over inter-PAN, answered by the meter's Publish Price."""
    price = await client.get_current_price(dst=meter, dst_pan_id=METER_PAN)
    assert price is not None
    digits = price.price_trailing_digit
    say(
        f"t={client.service.now():.2f}s  terminal (never joined) read the price over inter-PAN: "
        f"{price.rate_label.decode()} {price.price / 10**digits:.{digits}f} per kWh, "
        f"currency {price.currency}"
    )
    return price


async def demo(capture: str | None = None, *, say: Any = print) -> dict[str, Any]:
    air = Air(seed=42, capture=capture)
    meter_node = await air.coordinator(channel=15, pan_id=METER_PAN, ieee="00:0d:6f:00:00:00:00:4d")
    hht_node = air.device("00:0d:6f:00:00:00:00:77", channel=15)
    hht_node.listen()  # never joined: on the meter's channel, on no PAN
    meter_ieee, hht_ieee = meter_node.state.node_info.ieee, hht_node.ieee
    loop = asyncio.get_running_loop()

    def clock() -> int:
        return START + int(loop.time())

    whitelist = CommandWhitelist([*SE_INTERPAN_COMMANDS, *carrier_whitelist()])

    app = MeterApp()

    def read_register(body: bytes) -> bytes:
        result = app.read_register(body)
        if body[0] == 2:  # the link breaks just after the meter executed this one
            air.partition([meter_node.radio], [hht_node])
            lost = f"link lost: the meter executed {named(commands, 2)}; its answer is not heard"
            say(f"t={air.now:.2f}s  {lost}")
        return result

    carrier = HhtMeter(MemoryLog(), {SET_TIME: app.set_time, READ_REGISTER: read_register})
    window = InterPanWindow(default_duration=300, whitelist=whitelist)
    meter = InterPanService(
        SimTransport(meter_node), ieee=meter_ieee, pan_id=METER_PAN, window=window
    )
    window.open(meter.now(), trusted=[hht_ieee])  # the installer entered the PIN
    server = loop.create_task(serve_meter(meter, carrier))
    pricing = loop.create_task(InterPanEsi(meter, schedule=tariff(clock()), clock=clock).serve())
    say(f"meter {meter_ieee} opened its inter-PAN window until t={window.deadline:.0f}s")

    commands = [Command(0x5EC0_0001, SET_TIME, set_time_body(0x2F00_0000))]
    commands += [Command(0x5EC0_0001 + r, READ_REGISTER, bytes([r])) for r in range(1, 6)]

    terminal = HhtTerminal(0x0B0B, commands, timeout=2.0)
    hht = InterPanService(SimTransport(hht_node), ieee=hht_ieee, pan_id=NO_PAN, whitelist=whitelist)
    price_client = InterPanSeClient(hht, clock=clock)
    price = await read_price(price_client, meter_ieee, say)

    try:
        await run_terminal(hht, terminal, meter=meter_ieee, meter_pan_id=METER_PAN)
    except LinkLost as exc:
        say(
            f"t={hht.now():.2f}s  terminal gave up after 3 tries: "
            f"no answer to {named(commands, exc.position)}"
        )
    for txid, result in sorted(terminal.results.items()):
        say(f"    transaction 0x{txid:08X}: {result.status.name} {result.result.hex()}")
    stopped_at = terminal.position

    await asyncio.sleep(30)
    air.heal()
    say(f"t={hht.now():.2f}s  link back; a new terminal session asks where to resume")
    fresh = HhtTerminal(0x0B0B, commands, timeout=2.0)
    results = await run_terminal(hht, fresh, meter=meter_ieee, meter_pan_id=METER_PAN, resume=True)
    say(
        f"t={hht.now():.2f}s  the meter had executed it: "
        f"resumed at {named(commands, fresh.resumed_at)}; done: {fresh.done}"
    )
    for txid, result in sorted(results.items()):
        say(f"    transaction 0x{txid:08X}: {result.status.name} {result.result.hex()}")
    say(f"meter clock set to {app.utc} (UTCTime); registers read: {app.reads}")
    say(f"commands executed by the meter: {carrier.executions} of {len(commands)}")

    await price_client.close()
    await hht.close()
    await meter.close()
    await server
    await pricing
    await meter_node.shutdown()
    air.close()
    return {
        "price": price,
        "hht_joined": hht_node.joined,
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
