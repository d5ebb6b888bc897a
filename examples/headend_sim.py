"""A utility headend drives a meter's HAN by registry group, on the simulator.

The headend imports its device list (MAC address, install code, label, groups) from a CSV file
into the HAN registry (a bad row is reported and skipped), provisions every device on the meter
(the ESI) by install code, and the devices join and run CBKE: the registry follows them to
METER_READY by itself. One thermostat then goes out of range. The headend sends a display
message and a load control event to the group ``block-a``: each device's outcome is reported
(delivered / offline). When the thermostat comes back it resyncs and gets both — nothing is
lost — and its load control reports reach the headend like everyone else's.

Run it: ``.venv/bin/python examples/headend_sim.py [capture.pcap [capture.keys]]``: the frames
are encrypted; the key file (Wireshark's ZigBee key table) lets Wireshark decrypt them.
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

from zse.cbke import SUITE1
from zse.cbke.ca import TestCA
from zse.cbke.service import eui64_bytes
from zse.drlc import LoadControlEvent
from zse.installcode import InstallCode, parse_eui64
from zse.messaging import Message
from zse.provisioning.registry import HanRegistry
from zse.roles.esi import EnergyServiceInterface, ReportReceived
from zse.roles.han import InHomeDisplay, ProgrammableThermostat
from zse.sim import Air, run

START = 800_000_000  # ZigBee UTCTime at the start
CODES = [InstallCode.generate(rng=random.Random(n)) for n in range(3)]  # noqa: S311 - demo codes
DEVICES_CSV = f"""eui64,install_code,label,groups
00:0d:6f:00:0b:00:00:01,{CODES[0]},flat 1 display,block-a
00:0d:6f:00:0b:00:00:02,{CODES[1]},flat 1 thermostat,block-a
00:0d:6f:00:0b:00:00:03,{CODES[2]},flat 2 thermostat,block-a
00:0d:6f:00:0b:00:00:04,83FED3407A939738C553,flat 3 display,block-a
"""  # the last row has a mistyped install code


async def headend(
    capture: str | None = None, *, keys: str | None = None, say: Any = print
) -> dict[str, Any]:
    # keys: where to write the run's keys for Wireshark (its ZigBee key table, mode 0600)
    loop = asyncio.get_running_loop()

    def clock() -> int:
        return START + int(loop.time())

    air = Air(seed=3, capture=capture)
    app = await air.coordinator(channel=20)  # the meter: a zigpy coordinator
    ca = TestCA.generate()  # test certificates for everyone
    workdir = tempfile.TemporaryDirectory()
    registry = await HanRegistry.open(Path(workdir.name) / "han.db")
    esi = EnergyServiceInterface(
        app,
        credentials=ca.issue(eui64_bytes(app.state.node_info.ieee), SUITE1),
        registry=registry,
        clock=clock,
    )
    await esi.start()

    # 1. Bulk import: the good rows are registered, the bad one is reported with its line.
    report = await registry.import_csv(DEVICES_CSV.splitlines())
    say(f"imported {len(report.registered)} devices; refused: {report.errors}")

    # 2. Provision each registered device; the simulated devices join and run CBKE.
    roles = []
    for record in registry.devices():
        await esi.provision(record.eui64)
        device = air.device(
            record.eui64, install_code=InstallCode.parse(record.install_code), channel=20
        )
        role_class = InHomeDisplay if "display" in record.label else ProgrammableThermostat
        role = role_class(
            device, credentials=ca.issue(eui64_bytes(device.ieee), SUITE1), clock=clock
        )
        await role.start()
        roles.append(role)
    await asyncio.sleep(30)
    await esi.settle()
    states = {r.label: r.state.value for r in registry.devices()}
    say(f"registry: {states}")

    # 3. One thermostat is out of range; the headend sends to the group anyway.
    away = roles[2]
    air.silence(away.device)
    reports: list[ReportReceived] = []
    esi.on_event(lambda e: reports.append(e) if isinstance(e, ReportReceived) else None)
    message = Message(message_id=1, text="Water off 10:00-12:00", duration_in_minutes=180)
    sent_message = await esi.send_message(message, group="block-a")
    event = LoadControlEvent(
        issuer_event_id=500,
        device_class=0x0001,  # HVAC
        start_time=clock() + 600,
        duration_in_minutes=20,
        criticality_level=5,
        cooling_temperature_set_point=2600,
    )
    sent_event = await esi.send_load_control(event, group="block-a")
    for sent in (sent_message, sent_event):
        say(f"{sent.what} to {sent.target}:")
        for outcome in sent.outcomes:
            label = registry.get(outcome.device).label
            say(f"    {label:<18} {outcome.outcome.value}")

    # 4. It comes back and resyncs (Get Last Message, Get Scheduled Events): nothing is lost.
    await asyncio.sleep(120)
    air.restore(away.device)
    await away.resync()
    await asyncio.sleep(40 * 60)
    shown = away.messaging.current()
    say(f"flat 2 thermostat now shows: {shown.text if shown else None!r}")
    view = esi.drlc.view(500)
    statuses = {registry.get(d).label: [int(s) for s, _ in v.statuses] for d, v in view.items()}
    say(f"load control reports per device (1 received, 2 started, 3 completed): {statuses}")

    for role in roles:
        await role.stop()
    await esi.stop()
    await registry.close()
    await app.shutdown()
    air.close()
    if keys is not None:
        air.write_keys(keys)  # Wireshark's ZigBee key table: it decrypts the capture
    workdir.cleanup()
    return {
        "errors": report.errors,
        "states": states,
        "message": {o.device: o.outcome.value for o in sent_message.outcomes},
        "event": {o.device: o.outcome.value for o in sent_event.outcomes},
        "shown": None if shown is None else shown.message_id,
        "statuses": statuses,
        "signed": all(r.signed for r in reports),
        "away": str(parse_eui64(str(away.device.ieee))),
    }


if __name__ == "__main__":
    run(headend(*sys.argv[1:2], keys=sys.argv[2] if len(sys.argv) > 2 else None))
