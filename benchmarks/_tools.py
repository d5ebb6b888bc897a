"""Shared by the benchmarks that need a tool from outside (Mosquitto, PostgreSQL, OpenSSL,
tshark): the servers are started as the tests start them (``tests/mqtt/broker.py``,
``tests/postgres_server.py``), and a tool that is missing or a server that does not start
(its port taken, say) ends the run with one line on stderr and exit status 1, not a
traceback (the tests' helpers fail a test with ``pytest.fail`` or an ``AssertionError``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests' servers: one way to start PostgreSQL and Mosquitto

if TYPE_CHECKING:
    from tests.mqtt.broker import Broker
    from tests.postgres_server import Server

#: The longest reason quoted from a tool's own output.
REASON_CHARS = 300
#: The lines of a tool's log worth quoting.
TELLING = r"error|fatal|could not|not installed|in use|denied|no such"


def gist(reason: object) -> str:
    """One line out of a tool's log: its lines that say what went wrong (an error, a port
    in use), else its last line."""
    lines = [line.strip(" '\"") for line in re.split(r"\n|\\n", str(reason))]
    lines = [line for line in lines if line]
    telling = [line for line in lines if re.search(TELLING, line, re.IGNORECASE)]
    return "; ".join(telling or lines[-1:])


def stop(what: str, reason: object) -> SystemExit:
    """The exit of this benchmark: one line naming the script, what failed and why."""
    said = " ".join(gist(reason).split())
    if len(said) > REASON_CHARS:
        said = said[: REASON_CHARS - 3] + "..."
    return SystemExit(f"{Path(sys.argv[0]).name}: {what}: {said}")


def need(*tools: str) -> None:
    """Exit (one line) unless every one of ``tools`` is on PATH."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise stop(
            "needs " + ", ".join(missing),
            "not found on PATH; run `make tools` (.ci/install-tools) to install them",
        )


def start_broker(directory: Path) -> Broker:
    """A Mosquitto of ``tests/mqtt/broker.py`` on a free loopback port, started."""
    import pytest  # noqa: PLC0415

    from tests.mqtt.broker import Broker  # noqa: PLC0415

    need("mosquitto", "mosquitto_pub")
    broker = Broker(directory)
    try:
        broker.start()
    except (AssertionError, pytest.fail.Exception) as failed:
        raise stop("mosquitto did not start", failed) from None
    return broker


def start_postgres(*, durable: bool = True) -> Server:
    """A PostgreSQL of ``tests/postgres_server.py`` (fsync on unless ``durable`` is False)."""
    import pytest  # noqa: PLC0415

    from tests import postgres_server  # noqa: PLC0415

    try:
        return postgres_server.start(durable=durable)
    except pytest.fail.Exception as failed:
        raise stop("cannot start PostgreSQL", failed) from None
    except subprocess.CalledProcessError as failed:  # initdb
        raise stop("PostgreSQL's initdb failed", failed.stderr or failed) from None
