"""``zse mqtt`` as a subprocess (issue #17.4): ``--sim`` on a real Mosquitto until SIGTERM,
one-line errors with the other commands' exit statuses, and the extra missing."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mqtt.broker import Broker
from tests.mqtt.helpers import Subscriber
from tests.oracles import require
from zse.cli.mqtt import mqtt_settings
from zse.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]
#: Real seconds a subprocess may take (bounds, not pauses: each wait ends on its output).
TIMEOUT = 60
ZSE = [sys.executable, "-m", "zse", "mqtt"]


class _Running(subprocess.Popen[str]):
    out: tuple[str, str] = ("", "")


@contextlib.contextmanager
def running(argv: list[str]) -> Iterator[_Running]:
    """``argv`` running; on the way out SIGTERM and its output in ``.out`` (killed if it
    does not end within TIMEOUT)."""
    process = _Running(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        try:
            yield process
        except BaseException as failure:  # say what the process said: the cause is often there
            if process.poll() is None:
                process.kill()
            out, err = process.communicate()
            failure.add_note(f"the process's stdout (end): {out[-1500:]}")
            failure.add_note(f"the process's stderr (end): {err[-3000:]}")
            raise
        process.send_signal(signal.SIGTERM)
        process.out = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def zse(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ZSE, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env=env,
    )


def _count(count: int) -> list[str]:
    return ["-C", str(count), "-W", str(TIMEOUT), "-v"]


def sub(broker: Broker, topic: str, count: int) -> list[str]:
    """``count`` messages of ``topic`` through mosquitto_sub (retained ones included)."""
    result = subprocess.run(
        [require("mosquitto_sub"), *broker.client_args(), "-t", topic, *_count(count)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT + 5,
        check=True,
    )
    return result.stdout.splitlines()


def test_sim_publishes_readings_and_goes_offline_on_sigterm(broker: Broker, tmp_path: Path) -> None:
    with running([*ZSE, "--broker", broker.url, "--sim", "--speed", "600"]) as process:
        assert sub(broker, "zse/bridge/state", 1) == ["zse/bridge/state online"]
        lines = sub(broker, "zse/+/metering", 3)
        readings = [json.loads(line.partition(" ")[2]) for line in lines]
        assert all(r["summation_delivered_unit"] == "kWh" for r in readings)
        assert readings[-1]["summation_delivered_raw"] > readings[0]["summation_delivered_raw"]
    out, err = process.out
    assert process.returncode == 0, err
    assert "bridge to mqtt://127.0.0.1" in out
    assert sub(broker, "zse/bridge/state", 1) == ["zse/bridge/state offline"]


def test_sim_role_han_publishes_what_the_display_shows(broker: Broker) -> None:
    """`zse mqtt --sim --role han`: the HAN devices' bridge; the display's readings of the
    meter and its state (retained) arrive."""
    argv = [*ZSE, "--broker", broker.url, "--sim", "--role", "han", "--speed", "600"]
    with running(argv) as process:
        assert sub(broker, "zse/bridge/state", 1) == ["zse/bridge/state online"]
        lines = sub(broker, "zse/000d6f000a000001/metering", 2)
        readings = [json.loads(line.partition(" ")[2]) for line in lines]
        assert all(r["summation_delivered_unit"] == "kWh" for r in readings)
        (state,) = sub(broker, "zse/000d6f000a000001/state", 1)
        assert set(json.loads(state.partition(" ")[2])) >= {"message", "price_per_unit"}
    out, err = process.out
    assert process.returncode == 0, err
    assert "under zse/ (Ctrl-C stops)" in out


def _stream_until(broker: Broker, topic: str, text: str, seconds: float = TIMEOUT) -> list[str]:
    """mosquitto_sub's lines of ``topic`` until one contains ``text`` (bounded)."""
    process = subprocess.Popen(
        [require("mosquitto_sub"), *broker.client_args(), "-t", topic, "-v"],
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + seconds
    try:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while not any(text in line for line in lines):
                left = deadline - time.monotonic()
                assert left > 0, f"no {text!r} on {topic}: {lines}"
                if selector.select(left):
                    lines.append(process.stdout.readline())
    finally:
        process.kill()
        process.communicate()
    return lines


def _provision(request: dict[str, str]) -> list[str]:
    return ["-t", "zse/bridge/request/provision", "-m", json.dumps(request)]


def test_config_over_the_esi_s_radio_provisions_by_mqtt(broker: Broker, tmp_path: Path) -> None:
    """`zse mqtt --config esi.toml`: the ESI of `zse esi` (here its simulator radio) with the
    bridge; a device is provisioned by an MQTT command, joins and becomes METER_READY."""
    config = tmp_path / "esi.toml"
    config.write_text(
        f'[esi]\npermit_seconds = 60\n\n[mqtt]\nurl = "{broker.url}"\n\n'
        '[[prices]]\nprice = "0.2451"\nrate_label = "Peak"\n'
    )
    with running([*ZSE, "--config", str(config), "--radio", "sim"]) as process:
        assert sub(broker, "zse/bridge/state", 1) == ["zse/bridge/state online"]
        # the config's price, published at start (not by MQTT), is on the meter's topic
        (price,) = sub(broker, "zse/+/price", 1)
        sent = json.loads(price.partition(" ")[2])
        assert (sent["event"], sent["rate_label"], sent["price_per_unit"]) == (
            "PriceEvent",
            "Peak",
            0.2451,
        )
        assert sent["target"] == "broadcast"
        request = {
            "correlation_id": "p-1",
            "mac": "00:0D:6F:00:0A:00:00:01",
            "install_code": "83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5",
            "label": "kitchen display",
        }
        subprocess.run(
            [require("mosquitto_pub"), *broker.client_args(), "-q", "1", *_provision(request)],
            timeout=TIMEOUT,
            check=True,
        )
        # joining and CBKE run on the real clock here (as on a stick): 4 s alone, more on a
        # loaded machine (once over 60 s during the whole suite on two shared cores)
        lines = _stream_until(broker, "zse/000d6f000a000001/lifecycle", '"meter ready"', 240)
    out, err = process.out
    assert process.returncode == 0, err
    assert "meter ready (key established)" in out
    assert '"to_state":"meter ready"' in lines[-1]
    # the code is printed once, as on the simulated device's label, and never again
    assert (out + err).count("83FE") == 1


def test_the_esi_shell_s_sends_reach_the_broker(broker: Broker, tmp_path: Path) -> None:
    """`zse mqtt --config esi.toml --radio sim --shell`: a price sent from `zse esi`'s shell
    (stdin), not by MQTT, is on the meter's price topic; the end of stdin stops it cleanly."""
    config = tmp_path / "esi.toml"
    config.write_text(f'[mqtt]\nurl = "{broker.url}"\n')
    argv = [*ZSE, "--config", str(config), "--radio", "sim", "--shell"]
    process = subprocess.Popen(
        argv, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert process.stdin is not None
        process.stdin.write(b"price 0.3333 --label Shell --id 77 --broadcast\n")
        process.stdin.flush()
        (price,) = sub(broker, "zse/+/price", 1)  # retained: there even if sent before
        sent = json.loads(price.partition(" ")[2])
        assert (sent["rate_label"], sent["issuer_event_id"], sent["price_per_unit"]) == (
            "Shell",
            77,
            0.3333,
        )
        out, err = process.communicate(timeout=TIMEOUT)  # stdin closed: the shell ends
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert b"ESI stopped" in out
    assert sub(broker, "zse/bridge/state", 1) == ["zse/bridge/state offline"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--broker", "http://x", "--sim"], "error: mqtt.url: expected mqtt://HOST[:PORT]"),
        (["--sim"], "error: give --broker mqtt://HOST:PORT or a config with mqtt.url"),
        (["--broker", "mqtt://x"], "error: give --sim, or --config FILE"),
        (["--broker", "mqtt://x", "--base-topic", "a/#", "--sim"], "error: mqtt.base_topic"),
        (["--broker", "mqtt://x", "--client-id", "", "--sim"], "error: mqtt.client_id: empty"),
        (["--broker", "mqtt://x", "--role", "han"], "error: --role han/both needs --sim"),
        (["--broker", "mqtt://x", "--sim", "--shell"], "error: --shell goes with --config"),
    ],
)
def test_usage_errors_are_one_line_exit_2(args: list[str], message: str) -> None:
    result = zse(*args)
    assert result.returncode == 2
    assert result.stderr.startswith(message)
    assert result.stderr.count("\n") == 1


def test_a_config_s_mqtt_table_is_read(tmp_path: Path) -> None:
    config = tmp_path / "esi.toml"
    config.write_text('[esi]\npermit_seconds = 60\n\n[mqtt]\nurl = "mqtt://h"\nqos = 7\n')
    result = zse("--config", str(config), "--sim")
    assert result.returncode == 2
    assert result.stderr == "error: mqtt.qos: expected 0, 1 or 2\n"
    config.write_text("[esi]\n")
    assert zse("--config", str(config), "--sim").stderr == (
        f"error: {config}: no [mqtt] table, or give --broker mqtt://HOST:PORT\n"
    )
    config.write_text("[esi]\n[mqtt]\n")
    assert zse("--config", str(config), "--sim").stderr == (
        "error: give --broker mqtt://HOST:PORT or a config with mqtt.url\n"
    )
    config.write_text("mqtt = 3\n")
    assert zse("--config", str(config), "--sim").stderr == (
        f"error: {config}: mqtt is not a table ([mqtt])\n"
    )


def test_an_esi_s_config_without_an_mqtt_table_takes_the_broker_option(tmp_path: Path) -> None:
    """`zse mqtt --config esi.toml --broker URL`: the ESI's file needs no [mqtt] table when the
    broker is given (it said "no [mqtt] table"); a file only for the broker still needs one."""
    config = tmp_path / "esi.toml"
    for text in ("[esi]\n", "[esi]\n[mqtt]\n"):
        config.write_text(text)
        settings = mqtt_settings("mqtt://broker.example:1884", config, table_optional=True)
        assert (settings.host, settings.port) == ("broker.example", 1884)
    config.write_text("[esi]\n")
    with pytest.raises(ConfigError, match=r"no \[mqtt\] table$"):
        mqtt_settings("mqtt://broker.example:1884", config, config_option="--mqtt-config")


def test_without_the_extra_one_line_exit_1() -> None:
    hide = "import sys; sys.modules['aiomqtt'] = None; from zse.cli import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", hide, "mqtt", "--broker", "mqtt://x", "--sim"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env={**os.environ},
    )
    assert result.returncode == 1
    assert result.stderr == 'error: zse mqtt needs the mqtt extra: pip install "zigpy-se[mqtt]"\n'


async def test_killed_and_started_again_a_command_is_not_carried_out_twice(
    broker: Broker, tmp_path: Path
) -> None:
    """`zse mqtt --sim --state-dir DIR` killed (SIGKILL) after carrying out a command, then
    started again on DIR: the same command is answered from the record, not carried out
    again, and its send is on the meter's topic once."""
    subscriber = Subscriber(broker)
    await subscriber.connect()
    argv = [*ZSE, "--broker", broker.url, "--sim", "--speed", "60"]
    argv += ["--state-dir", str(tmp_path / "state")]
    message = {"message_id": 3, "text": "hello"}
    command = {"correlation_id": "k-1", "device": "00:0d:6f:00:0a:00:00:01", "message": message}
    response = "zse/bridge/response/display_message"
    state = subscriber.on
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    metering = "zse/000d6f00000000e5/metering"
    try:
        # a reading comes once the bridge subscribed (first time: no session to queue in)
        await subscriber.until(lambda: state(metering))
        await subscriber.publish("zse/bridge/request/display_message", command)
        (first,) = await subscriber.until(lambda: state(response))
        assert first["status"] == "ok"
        process.kill()
        process.wait(timeout=TIMEOUT)
        await subscriber.until(lambda: state("zse/bridge/state")[-1:] == ["offline"])  # its Will
        process = subprocess.Popen(
            argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        await subscriber.until(lambda: state("zse/bridge/state")[-1:] == ["online"])
        await subscriber.publish("zse/bridge/request/display_message", command)
        # (the first answer may come again: one the broker had not acknowledged before the
        # kill is published again, at least once)
        again = await subscriber.until(lambda: [v for v in state(response) if v.get("duplicate")])
        assert again == [{**first, "duplicate": True}]
        assert all(v == first for v in state(response) if not v.get("duplicate"))
        sent = [v for t, v, _ in subscriber.received if t.endswith("/message") and "outcomes" in v]
        # sent once: its publication may come twice (at least once), the same each time
        assert {json.dumps(v, sort_keys=True) for v in sent} == {
            json.dumps(sent[0], sort_keys=True)
        }
        assert sent[0]["event"] == "MessageSent"
    finally:
        process.terminate()
        process.communicate(timeout=TIMEOUT)
        await subscriber.close()


def test_an_esi_s_config_without_a_radio_points_at_the_simulator_option(tmp_path: Path) -> None:
    """It said `(or type = "sim")`, which the configuration then refuses (the simulator is
    the --radio sim option, not a radio type)."""
    config = tmp_path / "esi.toml"
    config.write_text("[esi]\n")
    result = zse("--config", str(config), "--broker", "mqtt://127.0.0.1:1")
    assert result.returncode == 2
    assert result.stderr == f"error: {config}: [radio] needs type and device (or --radio sim)\n"
