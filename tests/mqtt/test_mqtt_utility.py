"""``zse sim utility`` (issue #19 item 3) against a real Mosquitto: a small utility comes up,
each meter answers commands on its own topics with per-device outcomes and reports, SIGTERM
stops every worker; one-line errors; the plan's checks and its split over the workers."""

from __future__ import annotations

import json
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.mqtt.broker import Broker, free_port
from tests.mqtt.test_mqtt_cli import ROOT, TIMEOUT, running, sub
from tests.oracles import require
from tests.zse_cli import invoke_zse
from zse.sim.utility import (
    UtilityError,
    UtilityPlan,
    device_eui,
    meter_eui,
    meter_topic,
    plan_workers,
)

UTILITY = [sys.executable, "-m", "zse", "sim", "utility"]
#: Real seconds for the whole utility to come up (3 meters x 2 devices, CBKE each: a few
#: seconds alone, more on a loaded machine). A bound: the wait ends on the state message.
UP_WITHIN = 180


class _Stream:
    """mosquitto_sub on ``topics``, its lines read as they come (bounded waits)."""

    def __init__(self, broker: Broker, *topics: str) -> None:
        args = [a for topic in topics for a in ("-t", topic)]
        self.process = subprocess.Popen(
            [require("mosquitto_sub"), *broker.client_args(), "-q", "1", *args, "-v"],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []

    def until(self, done, seconds: float = TIMEOUT) -> list[str]:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + seconds
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while not done(self.lines):
                left = deadline - time.monotonic()
                assert left > 0, f"not there within {seconds} s: {self.lines}"
                if selector.select(left):
                    self.lines.append(self.process.stdout.readline().rstrip("\n"))
        return self.lines

    def close(self) -> None:
        self.process.kill()
        self.process.communicate()


def publish(broker: Broker, topic: str, message: dict[str, object]) -> None:
    subprocess.run(
        [
            require("mosquitto_pub"),
            *broker.client_args(),
            "-q",
            "1",
            "-t",
            topic,
            "-m",
            json.dumps(message),
        ],
        timeout=TIMEOUT,
        check=True,
    )


def _payload(line: str) -> dict[str, object]:
    return dict(json.loads(line.partition(" ")[2]))


def _drlc(lines: list[str]) -> list[tuple[str, Any]]:
    """The devices' ``drlc`` events among ``lines``, (topic, payload): those on their own
    topics and those in a meter's batches (``<base>/bridge/events``, ADR 0027)."""
    found = []
    for line in lines:
        topic = line.split(" ")[0]
        if topic.endswith("/drlc"):
            found.append((topic, _payload(line)))
        elif topic.endswith("/bridge/events"):
            base = topic[: -len("/bridge/events")]
            events: Any = _payload(line)["events"]
            for entry in events:
                if entry["topic"].endswith("/drlc"):
                    found.append((f"{base}/{entry['topic']}", entry["payload"]))
    return found


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def test_a_small_utility_answers_each_meter_and_stops_every_worker_on_sigterm(
    broker: Broker,
) -> None:
    argv = [*UTILITY, "--meters", "3", "--devices-per-meter", "2", "--workers", "2"]
    argv += ["--no-send-events"]  # gateways for a headend (ADR 0023): the ESI's sends unpublished
    argv += ["--event-batches"]  # and their devices' events in batches (ADR 0027)
    with running([*argv, "--broker", broker.url, "--speed", "30"]) as process:
        state = _Stream(broker, "zse/utility/state")
        try:
            (ready,) = [
                _payload(line)
                for line in state.until(lambda lines: any('"ready"' in x for x in lines), UP_WITHIN)
                if '"ready"' in line
            ]
        finally:
            state.close()
        assert ready == {
            "state": "ready",
            "meters": 3,
            "devices": 6,
            "workers": 2,
            "speed": 30.0,
            "group": "utility",
        }
        workers = _children(process.pid)
        assert len(workers) == 2
        replies = _Stream(broker, "zse/+/bridge/response/+", "zse/+/+/drlc", "zse/+/bridge/events")
        try:
            for index in range(3):
                base = meter_topic("zse", index)
                publish(
                    broker,
                    f"{base}/bridge/request/load_control",
                    {
                        "correlation_id": f"lc-{index}",
                        "group": "utility",
                        "event": {
                            "issuer_event_id": 0x1000 + index,
                            "device_class": 0x0FFF,
                            "duration_in_minutes": 1,
                            "criticality_level": 1,
                            "cooling_temperature_set_point": 2700,
                            "duty_cycle": 50,
                        },
                    },
                )
                publish(
                    broker,
                    f"{base}/bridge/request/display_message",
                    {
                        "correlation_id": f"m-{index}",
                        "device": device_eui(index, 0),
                        "message": {"message_id": 7, "text": f"hello meter {index}"},
                    },
                )

            def answered(lines: list[str]) -> bool:
                responses = [x for x in lines if "/bridge/response/" in x]
                return len(responses) == 6 and len(_drlc(lines)) >= 6

            lines = replies.until(answered, UP_WITHIN)
        finally:
            replies.close()
    out, err = process.out
    assert process.returncode == 0, err
    assert err == ""  # every worker stopped cleanly: none killed, none at its own bound
    assert "ready: 3 meters, 6 devices, 2 workers" in out
    for index in range(3):
        base = meter_topic("zse", index)
        (control,) = [_payload(x) for x in lines if x.startswith(f"{base}/bridge/response/load")]
        assert control["correlation_id"] == f"lc-{index}"
        result = control["result"]
        assert isinstance(result, dict)
        assert sorted((o["device"], o["outcome"]) for o in result["outcomes"]) == [
            (device_eui(index, 0), "delivered"),
            (device_eui(index, 1), "delivered"),
        ]
        (shown,) = [_payload(x) for x in lines if x.startswith(f"{base}/bridge/response/display")]
        result = shown["result"]
        assert isinstance(result, dict)
        assert result["outcomes"] == [
            {"detail": "", "device": device_eui(index, 0), "outcome": "delivered"}
        ]
        # each device's Report Event Status for the meter's event came back on its topic
        for device in range(2):
            topic = f"{base}/{device_eui(index, device).replace(':', '')}/drlc"
            reports = [payload for told, payload in _drlc(lines) if told == topic]
            assert reports, f"no report on {topic}"
            assert {r["report"]["issuer_event_id"] for r in reports} == {0x1000 + index}
            assert reports[0]["device"] == device_eui(index, device)
        # --no-send-events: the meter's own LoadControlSent not published (its answer was)
        sent = f"{base}/{meter_eui(index).replace(':', '')}/drlc "
        assert [x for x in lines if x.startswith(sent)] == []
    # SIGTERM stopped every worker: gone, their bridges said offline, the utility stopped
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists()
    states = sub(broker, "zse/+/bridge/state", 3) + sub(broker, "zse/utility/state", 1)
    # on failure, what the broker saw of the meters' connections (an intermittent one: CI)
    seen = "\n".join(line.rstrip() for line in broker.log if "d6ffe" in line.lower())
    assert sorted(states) == sorted(
        [f"{meter_topic('zse', i)}/bridge/state offline" for i in range(3)]
        + ["zse/utility/state stopped"]
    ), seen[-8000:]


@pytest.mark.parametrize(
    ("args", "message", "status"),
    [
        (["--meters", "0", "--broker", "mqtt://127.0.0.1:1"], "--meters must be 1 to 100000", 2),
        (
            ["--meters", "2", "--devices-per-meter", "99", "--broker", "mqtt://127.0.0.1:1"],
            "--devices-per-meter must be 1 to 32",
            2,
        ),
        (["--meters", "2", "--broker", "http://x"], "expected mqtt://HOST[:PORT]", 2),
        (["--meters", "2"], "give --broker", 2),
    ],
)
def test_usage_errors_are_one_line(args: list[str], message: str, status: int) -> None:
    """What the command says, in this process (a broker that cannot be reached: below, in a
    process of its own)."""
    done = invoke_zse("sim", "utility", *args)
    assert done.returncode == status
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("error: ")
    assert message in done.stderr


def test_a_broker_that_cannot_be_reached_is_one_line_exit_1() -> None:
    port = free_port()  # nobody listens there
    done = subprocess.run(
        [*UTILITY, "--meters", "1", "--broker", f"mqtt://127.0.0.1:{port}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: cannot reach the broker at 127.0.0.1:{port}: ")
    assert done.stderr.count("\n") == 1


def test_the_plan_is_checked_and_split_evenly_over_the_workers() -> None:
    assert plan_workers(UtilityPlan(meters=7, workers=3)) == [[0, 1, 2], [3, 4], [5, 6]]
    assert plan_workers(UtilityPlan(meters=2, workers=8)) == [[0], [1]]  # no idle worker
    assert UtilityPlan(meters=5).checked().workers >= 1  # default: the cores
    for bad in (
        UtilityPlan(meters=0),
        UtilityPlan(meters=1, devices_per_meter=0),
        UtilityPlan(meters=1, speed=0),
        UtilityPlan(meters=1, workers=-1),
    ):
        with pytest.raises(UtilityError):
            bad.checked()
    assert meter_eui(1) == "00:0d:6f:fe:00:00:00:01"
    assert device_eui(1, 2) == "00:0d:6f:01:00:00:01:02"
    assert meter_topic("zse", 1) == "zse/000d6ffe00000001"


def test_ctrl_c_stops_every_worker(broker: Broker) -> None:
    """SIGINT (Ctrl-C) as SIGTERM: the worker ends, its bridge says offline, the utility
    stopped; also when started where SIGINT was ignored (a background job of a script)."""
    argv = [*UTILITY, "--meters", "1", "--devices-per-meter", "1", "--workers", "1"]
    process = subprocess.Popen(
        [*argv, "--broker", broker.url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # noqa: PLW1509
    )
    try:
        state = _Stream(broker, "zse/utility/state")
        try:
            state.until(lambda lines: any('"ready"' in x for x in lines), UP_WITHIN)
        finally:
            state.close()
        (worker,) = _children(process.pid)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert err == ""  # the worker stopped cleanly (its store closed), not killed at a bound
    assert out.splitlines()[-1] == "stopped"
    assert not Path(f"/proc/{worker}").exists()
    assert sub(broker, f"{meter_topic('zse', 0)}/bridge/state", 1) == [
        f"{meter_topic('zse', 0)}/bridge/state offline"
    ]
    assert sub(broker, "zse/utility/state", 1) == ["zse/utility/state stopped"]
