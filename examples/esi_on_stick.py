"""An ESI on a real USB stick: admit an in-home display by install code, then talk to it.

What ``python -m zse esi`` does, as a short script of your own. The stick is the coordinator
and Trust Center; zse runs the Smart Energy side (CBKE, price, messages, load control) on it.

Run it (see docs/sticks.md first; the certificates must come from the display's CA)::

    .venv/bin/python examples/esi_on_stick.py --radio ezsp --device /dev/ttyUSB0 \
        --credentials esi-credentials.json

then power the display on within four minutes. The test (tests/cli_sticks) runs this very file
against the simulator through ``app_factory``.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from zse.cli.esi import load_credentials, run_esi
from zse.config import ConfigError, EsiConfig, RadioSettings

# The display's MAC address and install code, as printed on its label.
DISPLAY = "00:0d:6f:00:0a:00:00:01"
INSTALL_CODE = "83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5"

# What the headend does, in the ESI's own command language (`help` lists it).
SCRIPT = [
    f"provision {DISPLAY} '{INSTALL_CODE}' --label kitchen --group home",
    f"wait ready {DISPLAY} --timeout 240",  # joined, and CBKE replaced its link key
    "price 0.2451 --label Peak --group home",
    "message 'Peak price from 17:00' --confirm --group home",
    "load-control --duration 30 --duty-cycle 50 --group home",
    "sleep 60",  # status reports and the confirmation are printed as they arrive
    "devices",
]


async def commands() -> AsyncIterator[str]:
    for line in SCRIPT:
        yield line


async def main(
    radio: str,
    device: str,
    credentials: Path,
    *,
    database: Path = Path("han.db"),
    app_factory: Any = None,  # None: the real stick (tests pass the simulator's)
    out: Callable[[str], None] = print,
) -> int:
    config = EsiConfig(
        radio=RadioSettings(radio=radio, device=device),
        database=database,  # the registry survives restarts; so does zigpy's own database
    )
    return await run_esi(
        config,
        credentials=load_credentials([credentials]),  # the ESI's certificate and private key
        lines=commands(),  # a script: the first failing command stops the ESI (status 1)
        out=out,
        app_factory=app_factory,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--radio", choices=["ezsp", "znp"], required=True)
    parser.add_argument("--device", required=True, help="serial port, e.g. /dev/ttyUSB0")
    parser.add_argument("--credentials", type=Path, required=True)
    args = parser.parse_args()
    try:
        raise SystemExit(asyncio.run(main(args.radio, args.device, args.credentials)))
    except ConfigError as exc:  # a missing or unusable credentials file: one line, status 2
        parser.exit(2, f"error: {exc}\n")
