"""A simulated utility (issue #19 item 3): many meters, each a gateway on an MQTT broker.

``zse sim utility --meters N --devices-per-meter K --broker mqtt://HOST:PORT`` runs N
independent HANs, each on an air of its own (its own PAN, out of the others' radio range): an
ESI (the meter and Trust Center, :class:`~zse.roles.esi.EnergyServiceInterface` on the
simulator's coordinator) with a registry, and K HAN devices (an in-home display, a thermostat, a
load control device, in turn) provisioned by their install codes, which join and run CBKE. Each
ESI runs the MQTT bridge of ``zse mqtt`` (:class:`zse.mqtt.bridge.MqttBridge`) as that meter's
gateway, under ``<base>/<meter>`` (the meter's EUI-64 in 16 hex digits) with the client id
``<client id>-<meter>``, so a headend commands each meter on its own topics
(``<base>/<meter>/bridge/request/load_control``, the registry group ``utility``) and gets the
outcomes and reports back on the meter's topics.

The meters are spread over worker processes (:func:`plan_workers`), each on a
:class:`~zse.sim.VirtualClockLoop`: its meters come up on virtual time as fast as the CPU goes
(joins, CBKE), then their bridges connect and the clock runs ``speed`` times the real one while
the loop is idle (time it spends working does not count, so a busy worker never sees its
timers expire early; each bridge's MQTT client services its keepalive once a real second,
however busy the worker: :func:`zse.mqtt.bridge.mqtt_client`). The parent
(:func:`run_utility`) publishes ``<base>/utility/state`` (retained): ``starting``, then
``{"state": "ready", ...}`` once every device of every meter is METER_READY, ``stopped`` on a
clean stop (``offline`` is its Last Will). SIGTERM or Ctrl-C
stops every worker (their bridges publish ``offline`` first); a worker sent a second SIGTERM
or SIGINT while it stops ends at once (:func:`_end_at_once`). A worker ends on its own once the
parent is gone, however it ended (SIGKILL too: :func:`_watch_the_parent`); a worker that
dies ends the utility with one line saying how (:func:`_ended`), the others stopped.

Device EUI-64s, install codes, keys and certificates come from ``seed`` and the meter's index:
two runs with the same plan build the same meters (test keys, never for real devices).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import json
import logging
import logging.config
import os
import random
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import aiomqtt

from zse._words import counted
from zse.errors import ZseError
from zse.mqtt.core import MqttSettings

__all__ = [
    "DEVICE_ROLES",
    "UTILITY_GROUP",
    "SimulatedMeter",
    "UtilityError",
    "UtilityPlan",
    "device_eui",
    "meter_eui",
    "meter_topic",
    "plan_workers",
    "run_utility",
    "serve_meters",
]

#: By name, not ``__name__``: a worker runs this module as ``__main__`` (``python -m``).
LOGGER = logging.getLogger("zse.sim.utility")

#: The registry group of every meter's devices: ``{"group": "utility"}`` in a command.
UTILITY_GROUP = "utility"
#: The roles of a meter's devices, in turn (K = 3: one of each).
DEVICE_ROLES = ("InHomeDisplay", "ProgrammableThermostat", "LoadControlDevice")
#: The most meters one utility runs, and the most devices per meter (a HAN, not a city).
MAX_METERS = 100_000
MAX_DEVICES_PER_METER = 32
#: Seconds (virtual) between a device's attempts to join, and how many it makes.
JOIN_RETRY = 5.0
JOIN_ATTEMPTS = 5
#: Joins (and CBKEs) under way at once in one worker: more only queue on the same core.
CONCURRENT_JOINS = 4
#: Real seconds a meter's bridge is given to be on the broker once its devices are in.
CONNECT_WITHIN = 60.0
#: Real seconds a worker is given to stop after SIGTERM before it is killed.
STOP_WITHIN = 30.0
_CHANNEL = 15


class UtilityError(ZseError):
    """A utility that cannot run: a bad plan, a broker that cannot be reached, a worker that
    failed (the message says which and why, in one line)."""


@dataclass(frozen=True, kw_only=True)
class UtilityPlan:
    """What to simulate: ``meters`` HANs of ``devices_per_meter`` devices each, over
    ``workers`` processes (default: the machine's cores), virtual time at ``speed``."""

    meters: int
    devices_per_meter: int = 3
    workers: int = 0
    speed: float = 1.0
    seed: int = 1

    def checked(self) -> UtilityPlan:
        """This plan with its worker count settled; :class:`UtilityError` if it is bad."""
        if not 1 <= self.meters <= MAX_METERS:
            raise UtilityError(f"--meters must be 1 to {MAX_METERS}, not {self.meters}")
        if not 1 <= self.devices_per_meter <= MAX_DEVICES_PER_METER:
            raise UtilityError(
                f"--devices-per-meter must be 1 to {MAX_DEVICES_PER_METER}, "
                f"not {self.devices_per_meter}"
            )
        if not (self.speed > 0 and self.speed < float("inf")):
            raise UtilityError(f"--speed must be a positive number, not {self.speed}")
        workers = self.workers or os.cpu_count() or 1
        if workers < 1:
            raise UtilityError(f"--workers must be 1 or more, not {self.workers}")
        return dataclasses.replace(self, workers=min(workers, self.meters))


def meter_eui(index: int) -> str:
    """The EUI-64 of meter ``index`` (0-based), as zse prints EUI-64s."""
    return _eui(0x000D_6FFE_0000_0000 | index)


def device_eui(index: int, device: int) -> str:
    """The EUI-64 of device ``device`` of meter ``index``."""
    return _eui(0x000D_6F01_0000_0000 | (index << 8) | device)


def meter_topic(base: str, index: int) -> str:
    """The base topic of meter ``index``'s bridge: ``<base>/<meter EUI-64, 16 hex digits>``."""
    return f"{base}/{meter_eui(index).replace(':', '')}"


def plan_workers(plan: UtilityPlan) -> list[list[int]]:
    """The meters of each worker: contiguous runs of indices, as even as can be."""
    plan = plan.checked()
    share, extra = divmod(plan.meters, plan.workers)
    out, start = [], 0
    for worker in range(plan.workers):
        size = share + (1 if worker < extra else 0)
        out.append(list(range(start, start + size)))
        start += size
    return out


def _eui(value: int) -> str:
    return ":".join(f"{b:02x}" for b in value.to_bytes(8, "big"))


# -- one meter ------------------------------------------------------------------------------


@dataclass
class SimulatedMeter:
    """One HAN of the utility: its air, ESI, registry, devices and bridge (:meth:`start`)."""

    index: int
    plan: UtilityPlan
    settings: MqttSettings
    #: Its worker's store, of which the meter's registry (and its bridge's journal) is a view.
    store: Any
    ca: Any
    air: Any = None
    app: Any = None
    esi: Any = None
    registry: Any = None
    bridge: Any = None
    roles: list[Any] = field(default_factory=list)
    _stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    @property
    def eui(self) -> str:
        return meter_eui(self.index)

    def _rng(self, what: str) -> random.Random:
        return random.Random(f"{self.plan.seed}/{self.index}/{what}")  # noqa: S311 - test keys

    async def start(self, joins: asyncio.Semaphore) -> None:
        """Form the network, start the ESI, and bring every device in (provisioned, joined,
        keyed: METER_READY), at most ``joins`` at once in the worker, each provisioned just
        before it joins (so its admission window is open then); :class:`UtilityError` if
        one never gets in."""
        from zse.cbke import SUITE1  # noqa: PLC0415 - the simulator's layer imports lazily
        from zse.cbke.service import eui64_bytes  # noqa: PLC0415
        from zse.installcode import InstallCode, parse_eui64  # noqa: PLC0415
        from zse.provisioning.registry import HanRegistry  # noqa: PLC0415
        from zse.roles import han  # noqa: PLC0415
        from zse.roles.esi import EnergyServiceInterface  # noqa: PLC0415
        from zse.sim import Air  # noqa: PLC0415
        from zse.sim._clock import InlineExecutor  # noqa: PLC0415
        from zse.time.service import system_clock  # noqa: PLC0415

        stack = self._stack
        loop = asyncio.get_running_loop()
        base = system_clock() - int(loop.time())

        def clock() -> int:
            return base + int(loop.time())

        self.air = Air(seed=self.plan.seed * 1_000_003 + self.index)
        stack.callback(self.air.close)
        self.app = await self.air.coordinator(channel=_CHANNEL, ieee=self.eui)
        stack.push_async_callback(self.app.shutdown)
        self.registry = await HanRegistry.attach(self.store.view(f"{self.eui}/"))
        stack.push_async_callback(self.registry.close)
        ieee = parse_eui64(self.eui)
        credentials = self.ca.issue(eui64_bytes(ieee), SUITE1, rng=self._rng("esi"))
        self.esi = EnergyServiceInterface(
            self.app, credentials=credentials, registry=self.registry, clock=clock
        )
        await self.esi.start()
        stack.push_async_callback(self.esi.stop)
        inline = InlineExecutor()
        codes = self._rng("codes")
        for device in range(self.plan.devices_per_meter):
            eui = device_eui(self.index, device)
            code = InstallCode.generate(rng=codes)
            kind = DEVICE_ROLES[device % len(DEVICE_ROLES)]
            sim = self.air.device(eui, install_code=code, channel=_CHANNEL)
            role = getattr(han, kind)(
                sim,
                credentials=self.ca.issue(eui64_bytes(sim.ieee), SUITE1, rng=self._rng(eui)),
                clock=clock,
                rng=self._rng(f"{eui}/role"),
                cbke_rng=self._rng(f"{eui}/cbke"),
                executor=inline,
            )
            self.roles.append(role)
            stack.push_async_callback(role.stop)
            await self.registry.register(eui, str(code), label=kind, groups=[UTILITY_GROUP])
        await asyncio.gather(*(self._join(role, joins) for role in self.roles))
        await self.esi.settle()
        pending = [r.eui64 for r in self.registry.devices() if r.state.value != "meter ready"]
        if pending:
            raise UtilityError(f"meter {self.eui}: devices not ready: {', '.join(pending)}")

    async def connect(self, within: float) -> None:
        """Start the meter's MQTT bridge and wait until it is online and subscribed to its
        commands (:class:`UtilityError` after ``within`` seconds); later it reconnects on
        its own."""
        from zse.mqtt.bridge import MqttBridge  # noqa: PLC0415

        self.bridge = MqttBridge(self.esi, self.settings, store=self.registry.store)
        await self.bridge.start()
        self._stack.push_async_callback(self.bridge.stop)
        try:
            async with asyncio.timeout(within):
                await self.bridge.connected.wait()
        except TimeoutError:
            raise UtilityError(
                f"meter {self.eui}: not on the broker at {self.settings.host}:"
                f"{self.settings.port} after {CONNECT_WITHIN:g} s"
            ) from None

    async def _join(self, role: Any, joins: asyncio.Semaphore) -> None:
        from zse.sim import JoinRefused  # noqa: PLC0415

        for attempt in range(JOIN_ATTEMPTS):
            async with joins:
                try:
                    await self.esi.provision(role.device.ieee)
                    await role.start()
                    return
                except (JoinRefused, TimeoutError, OSError, ZseError) as exc:
                    if attempt == JOIN_ATTEMPTS - 1:
                        raise UtilityError(
                            f"meter {self.eui}: {role.device.ieee} did not get in: {exc}"
                        ) from None
            await asyncio.sleep(JOIN_RETRY)

    async def stop_bridge(self) -> None:
        """Stop the bridge (``offline`` published), if it was started."""
        if self.bridge is not None:
            await self.bridge.stop()

    async def stop(self) -> None:
        """Stop the bridge (``offline`` published), the devices, the ESI; close the rest."""
        await self._stack.aclose()


# -- a worker -------------------------------------------------------------------------------


async def serve_meters(
    plan: UtilityPlan,
    settings: MqttSettings,
    indices: Sequence[int],
    directory: Path,
    *,
    on_ready: Callable[[int, int], None] = lambda meters, devices: None,
) -> None:
    """A worker's body: start the meters ``indices`` (on a virtual-time loop as fast as it
    goes: every device joined and keyed), then connect their bridges with the loop's clock at
    ``plan.speed`` times the real one, call ``on_ready(meters, devices)``, serve until
    cancelled, then stop them all. The meters keep their state in one store of the worker's
    (``meters-<first>-<last>.db`` in ``directory``), each in a view of its own: their
    commits share transactions, one sync to disk for many meters (they live and die with
    the worker's process anyway)."""
    from zse.cbke.ca import TestCA  # noqa: PLC0415
    from zse.store import Store  # noqa: PLC0415

    ca = TestCA.generate(rng=random.Random(f"{plan.seed}/ca"))  # noqa: S311 - test keys
    joins = asyncio.Semaphore(CONCURRENT_JOINS)
    meters: list[SimulatedMeter] = []
    store = await Store.open(directory / f"meters-{min(indices)}-{max(indices)}.db")
    try:
        for index in indices:
            meter = SimulatedMeter(
                index,
                plan,
                dataclasses.replace(
                    settings,
                    base_topic=meter_topic(settings.base_topic, index),
                    client_id=f"{settings.client_id}-{meter_eui(index).replace(':', '')}",
                    reading_interval=0,
                ),
                store,
                ca,
            )
            meters.append(meter)
        try:
            async with asyncio.TaskGroup() as group:
                for meter in meters:
                    group.create_task(meter.start(joins))
        except BaseExceptionGroup as failed:  # the first failure, in one line
            raise _first(failed) from None
        with _real_clock(plan.speed):
            await asyncio.gather(*(meter.connect(CONNECT_WITHIN * plan.speed) for meter in meters))
            on_ready(len(meters), len(meters) * plan.devices_per_meter)
            await asyncio.Event().wait()
    finally:
        # the bridges first, together, on the real clock: none stays connected while the
        # loop's clock runs free through the rest of the stop (its timers, its reconnects)
        with _real_clock(plan.speed):
            await asyncio.gather(*(m.stop_bridge() for m in meters), return_exceptions=True)
        for meter in reversed(meters):
            with contextlib.suppress(Exception):
                await meter.stop()
        await store.close()


def _real_clock(speed: float) -> contextlib.AbstractContextManager[Any]:
    """The simulator's loop following the real clock at ``speed`` (nothing on another)."""
    real_time = getattr(asyncio.get_running_loop(), "real_time", None)
    return real_time(speed) if real_time is not None else contextlib.nullcontext()


def _first(failed: BaseExceptionGroup[Any]) -> BaseException:
    """The first exception of a (nested) group that is not a cancellation."""
    for inner in failed.exceptions:
        exc = _first(inner) if isinstance(inner, BaseExceptionGroup) else inner
        if not isinstance(exc, asyncio.CancelledError):
            return exc
    return failed.exceptions[0]


class _WorkerLines(logging.Formatter):
    """A handler's formatter whose every line (a traceback's too) starts with ``worker PID:``:
    the workers share the parent's standard error, and its errors name a worker so."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self._inner = inner or logging.Formatter()
        self._prefix = f"worker {os.getpid()}: "

    def format(self, record: logging.LogRecord) -> str:
        text = self._inner.format(record)
        return "\n".join(self._prefix + line for line in text.splitlines() or [""])


def _worker_logging(config: dict[str, Any] | None) -> None:
    """Configure a worker's logging: ``config``, a :func:`logging.config.dictConfig` dict the
    parent passed (``zse sim utility``: its level, its handlers' filters), else errors only,
    to standard error; each line prefixed with the worker (:class:`_WorkerLines`)."""
    if config:
        logging.config.dictConfig(config)
    else:
        logging.basicConfig(level=logging.ERROR)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(_WorkerLines(handler.formatter))


def _tell(line: str) -> None:
    """A line to the parent, on standard output; none when it is gone (a closed pipe: the
    rest of the worker's output goes to the null device, as Python's docs advise, rather than
    a BrokenPipeError traceback at each write and at the exit's flush)."""
    try:
        print(line, flush=True)
    except BrokenPipeError:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)


def _worker_main() -> int:
    """``python -m zse.sim.utility``: one worker, its spec one JSON line on stdin (plan,
    settings, indices, directory, logging: not on the command line, which others may read).
    Says ``ready M D`` on stdout once its meters are up, ``error TEXT`` if not; logs to the
    standard error it shares with the parent."""
    from zse.sim import VirtualClockLoop  # noqa: PLC0415

    line = sys.stdin.readline()
    if not line.strip():  # the parent gone before it gave the spec: nothing to run
        _tell("error no spec on standard input (the utility is gone?)")
        return 1
    spec = json.loads(line)
    plan = UtilityPlan(**spec["plan"])
    settings = MqttSettings(**spec["settings"])
    indices = list(spec["indices"])
    directory = Path(spec["directory"])
    _worker_logging(spec.get("logging"))

    stdin = sys.stdin.fileno()  # the spec read; the parent keeps its end open for our life

    def ready(meters: int, devices: int) -> None:
        # what bringing the meters up built (millions of objects at thousands of meters) is
        # kept for the worker's life: out of the collector's way, or each full collection
        # walks it all and their cost per device grows with the meters (docs/performance.md)
        gc.collect()
        gc.freeze()
        _tell(f"ready {meters} {devices}")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        stopping = asyncio.Event()

        signals: list[int] = []

        def stop() -> None:
            # once: the parent's SIGTERM and its closed pipe come together, and a second
            # cancellation would cut the stop short (the store left open, its thread keeping
            # the process alive until STOP_WITHIN ran out)
            if not stopping.is_set():
                stopping.set()
                task.cancel()

        def signalled(signum: int) -> None:
            # a second signal (not the closed pipe that comes with the parent's SIGTERM)
            # while the stop is under way: the user wants it over, as a daemon's users do
            if signals:
                _end_at_once(signum)
            signals.append(signum)
            LOGGER.info(
                "%s: stopping (a second SIGTERM or SIGINT ends the worker at once)",
                signal.Signals(signum).name,
            )
            stop()

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, signalled, signum)
        assert isinstance(loop, VirtualClockLoop)
        threading.Thread(
            target=_watch_the_parent, args=(stdin, loop, stop), name="zse-parent", daemon=True
        ).start()
        await serve_meters(plan, settings, indices, directory, on_ready=ready)

    try:
        # the worker's meters share one store: on aiosqlite's thread, the commits its meters
        # make while one is written group into the next (one sync to disk for many meters)
        with asyncio.Runner(loop_factory=lambda: VirtualClockLoop(inline_io=False)) as runner:
            runner.run(main())
    except asyncio.CancelledError:
        return 0
    except Exception as exc:  # one line for the parent, which says it
        _tell(f"error {exc}")
        return 1
    return 0


def _end_at_once(signum: int) -> NoReturn:
    """End the worker now, its stop cut short, with the exit status a shell gives a process
    a signal ended (128 + its number: 143 for SIGTERM, 130 for SIGINT), saying so in one line
    on the standard error it shares with the parent. Nothing is lost that a SIGKILL would not
    lose either: the store's transactions are atomic (SQLite's journal), and a bridge's
    Last Will says ``offline`` at the broker."""
    status = 128 + signum
    line = (
        f"worker {os.getpid()}: a second {signal.Signals(signum).name} while stopping: "
        f"ended at once, exit status {status}\n"
    )
    with contextlib.suppress(OSError):
        os.write(2, line.encode())  # the standard error, unbuffered: nothing flushes it after
    os._exit(status)


def _watch_the_parent(fd: int, loop: asyncio.AbstractEventLoop, stop: Callable[[], None]) -> None:
    """A worker's thread: once ``fd``, its standard input, a pipe whose one write end the
    parent holds, reads end of file (the parent closed it, or ended, however: SIGKILL, the OOM
    killer; the kernel closes its descriptors), stop the worker as SIGTERM does (``stop``
    called on the loop: its bridges say ``offline``), and end it outright if it has not ended
    :data:`STOP_WITHIN` real seconds later. It polled its parent's pid once a virtual second:
    100 real seconds at ``--speed 0.01``, and for ever when the parent died before the first
    look. A pipe, not Linux's ``PR_SET_PDEATHSIG``: it works wherever there are pipes, and
    does not end with the thread that started the worker."""
    with contextlib.suppress(OSError):
        while os.read(fd, 4096):  # nothing more is sent: this waits for the end
            pass
    with contextlib.suppress(RuntimeError):  # the loop closed: the worker is ending anyway
        loop.call_soon_threadsafe(stop)
    threading.Event().wait(STOP_WITHIN)  # a bound on the stop, on the real clock
    os._exit(1)


# -- the parent -----------------------------------------------------------------------------


async def run_utility(
    plan: UtilityPlan,
    settings: MqttSettings,
    *,
    on_ready: Callable[[str], None] = lambda text: None,
    directory: Path | None = None,
    worker_logging: dict[str, Any] | None = None,
) -> None:
    """Run the utility until cancelled: the workers (:func:`plan_workers`), the state on
    ``<base>/utility/state``, ``on_ready`` called with one line once every meter is up.
    ``worker_logging``: each worker's logging, a :func:`logging.config.dictConfig` dict
    (JSON-able; None: errors only), to the standard error they share with this process,
    each line starting ``worker PID:``.
    :class:`UtilityError` for a bad plan, a broker that cannot be reached or a worker that
    fails; every worker is stopped on the way out, whatever the reason."""
    from zse.mqtt.bridge import mqtt_client  # noqa: PLC0415 - the simulator's layer imports lazily

    plan = plan.checked()
    state_topic = f"{settings.base_topic}/utility/state"
    # the bridge's client: a cancellation (SIGTERM, Ctrl-C) landing as the broker answers a
    # publication is raised, not lost (the utility went on, its workers never stopped)
    client = mqtt_client(
        dataclasses.replace(settings, client_id=f"{settings.client_id}-utility"),
        clean=True,
        will=aiomqtt.Will(state_topic, "offline", qos=1, retain=True),
    )
    try:
        await client.__aenter__()
    except aiomqtt.MqttError as exc:
        raise UtilityError(
            f"cannot reach the broker at {settings.host}:{settings.port}: {exc}"
        ) from None
    try:
        await client.publish(state_topic, "starting", qos=1, retain=True)
        with contextlib.ExitStack() as files:
            where = directory or Path(files.enter_context(tempfile.TemporaryDirectory()))
            workers: list[asyncio.subprocess.Process] = []
            try:  # those spawned before a cancellation are stopped too
                await _spawn(plan, settings, where, workers, worker_logging)
                await _until_ready(workers, plan, client, state_topic, on_ready)
                await _watch(workers)
            finally:
                await _stop(workers)
    finally:
        with contextlib.suppress(Exception):
            await client.publish(state_topic, "stopped", qos=1, retain=True)
        with contextlib.suppress(Exception):
            await client.__aexit__(None, None, None)


async def _spawn(
    plan: UtilityPlan,
    settings: MqttSettings,
    directory: Path,
    workers: list[asyncio.subprocess.Process],
    worker_logging: dict[str, Any] | None,
) -> None:
    """Start the workers, each added to ``workers`` as soon as it exists (a cancellation
    during the spawning leaves none the caller cannot stop)."""
    fields = dataclasses.asdict(settings)
    for indices in plan_workers(plan):
        spec = {
            "plan": dataclasses.asdict(plan),
            "settings": fields,
            "indices": indices,
            "directory": str(directory),
            "logging": worker_logging,
        }
        workers.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "zse.sim.utility",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                start_new_session=True,  # Ctrl-C reaches the parent, which stops the workers
            )
        )
        stdin = workers[-1].stdin
        assert stdin is not None
        stdin.write(json.dumps(spec).encode() + b"\n")
        await stdin.drain()  # left open: the worker ends once it is closed (_watch_the_parent)


async def _until_ready(
    workers: list[asyncio.subprocess.Process],
    plan: UtilityPlan,
    client: aiomqtt.Client,
    state_topic: str,
    on_ready: Callable[[str], None],
) -> None:
    async def one(worker: asyncio.subprocess.Process) -> tuple[int, int]:
        assert worker.stdout is not None
        line = (await worker.stdout.readline()).decode(errors="replace").strip()
        word, _, rest = line.partition(" ")
        if word == "ready":
            meters, devices = (int(x) for x in rest.split())
            return meters, devices
        if rest:
            raise UtilityError(f"worker {worker.pid}: {rest}")
        await worker.wait()
        raise UtilityError(_ended(worker))

    counts = await asyncio.gather(*(one(worker) for worker in workers))
    meters = sum(m for m, _ in counts)
    devices = sum(d for _, d in counts)
    state = {
        "state": "ready",
        "meters": meters,
        "devices": devices,
        "workers": len(workers),
        "speed": plan.speed,
        "group": UTILITY_GROUP,
    }
    await client.publish(state_topic, json.dumps(state), qos=1, retain=True)
    said = ", ".join(
        (counted(meters, "meter"), counted(devices, "device"), counted(len(workers), "worker"))
    )
    on_ready(f"ready: {said}")


async def _watch(workers: list[asyncio.subprocess.Process]) -> None:
    """Until cancelled; a worker that ends on its own is an error, said with its own reason
    (its ``error TEXT`` line) or how it ended (:func:`_ended`)."""
    waits = {asyncio.ensure_future(worker.wait()): worker for worker in workers}
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
    worker = waits[next(iter(done))]
    assert worker.stdout is not None
    said = (await worker.stdout.read()).decode(errors="replace").splitlines()
    reasons = [line.partition(" ")[2] for line in said if line.startswith("error ")]
    if reasons:
        raise UtilityError(f"worker {worker.pid}: {reasons[-1]}")
    raise UtilityError(_ended(worker))


def _ended(worker: asyncio.subprocess.Process) -> str:
    """How a worker that has ended did: killed by which signal (the OOM killer's SIGKILL), or
    its exit status."""
    status = worker.returncode
    if status is not None and status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        return f"worker {worker.pid} was killed by {name}"
    return f"worker {worker.pid} ended with exit status {status}"


async def _stop(workers: list[asyncio.subprocess.Process]) -> None:
    """SIGTERM to every worker still running (and its standard input closed), then SIGKILL
    to those not gone in time; a stop that did not end cleanly (killed, or its own bound
    ran out: exit status 1) is logged as a warning (one ended by the SIGTERM, before it
    handled it, is not: it was still coming up)."""
    running = [worker for worker in workers if worker.returncode is None]
    for worker in workers:
        if worker.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                worker.send_signal(signal.SIGTERM)
        if worker.stdin is not None:
            worker.stdin.close()
    for worker in running:
        try:
            async with asyncio.timeout(STOP_WITHIN):
                await worker.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                worker.kill()
            await worker.wait()
            LOGGER.warning("worker %d did not stop within %g s: killed", worker.pid, STOP_WITHIN)
            continue
        if worker.returncode not in {0, -signal.SIGTERM}:  # SIGTERM's own: not up yet
            LOGGER.warning("%s as it stopped", _ended(worker))


if __name__ == "__main__":
    sys.exit(_worker_main())
