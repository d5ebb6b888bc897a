"""The MQTT client's private key (``mqtt.key_file``) readable by other users was used without
a word (audit mqtt-ha-tls, finding 13); zse writes its own keys with mode 0600
(docs/security.md). Such a key is now used with a warning naming it."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from tests.mqtt.test_mqtt_tls import _certificates, _openssl
from zse.cli.mqtt import mqtt_settings
from zse.config import ConfigError
from zse.mqtt.bridge import mqtt_client
from zse.mqtt.core import MqttConfigError, parse_settings


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_key_file_others_may_read_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _certificates(tmp_path)
    config = tmp_path / "mqtt.toml"
    config.write_text(
        "[mqtt]\n"
        'url = "mqtts://127.0.0.1:8883"\n'
        f'ca_file = "{tmp_path / "ca.pem"}"\n'
        f'cert_file = "{tmp_path / "client.pem"}"\n'
        f'key_file = "{tmp_path / "client.key"}"\n'
    )
    key = tmp_path / "client.key"
    secret = key.read_text().splitlines()[1]
    for mode, warned in ((0o644, True), (0o640, True), (0o600, False), (0o400, False)):
        key.chmod(mode)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="zse"):
            assert mqtt_settings(None, config).key_file == str(key)
        said = [r.getMessage() for r in caplog.records]
        assert bool(said) is warned, (oct(mode), said)
        if warned:
            (line,) = said
            assert "mqtt.key_file" in line
            assert str(key) in line
            assert f"{mode:03o}" in line
            assert secret not in line


def test_an_encrypted_key_file_is_a_config_error_not_a_pass_phrase_prompt(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """An encrypted ``mqtt.key_file`` made OpenSSL ask for its pass phrase on the terminal
    and wait there (``zse mqtt --config`` at a terminal never started; without one it asked
    twice on standard error, then said "mqtt.cert_file: ...: Invalid argument"). It is one
    ConfigError naming the key file, as the headend refuses an encrypted server key."""
    _certificates(tmp_path)
    key = tmp_path / "encrypted.key"
    _openssl("pkey", "-in", "client.key", "-aes256", "-passout", "pass:guess-me",
             "-out", key.name, cwd=tmp_path)  # fmt: skip
    key.chmod(0o600)
    config = tmp_path / "mqtt.toml"
    config.write_text(
        "[mqtt]\n"
        'url = "mqtts://127.0.0.1:8883"\n'
        f'cert_file = "{tmp_path / "client.pem"}"\n'
        f'key_file = "{key}"\n'
    )
    with pytest.raises(ConfigError) as error:
        mqtt_settings(None, config)
    assert str(error.value) == (
        f"mqtt.key_file: {key}: it is encrypted; give an unencrypted key (mode 0600)"
    )
    assert "pass phrase" not in capfd.readouterr().err


async def test_the_library_refuses_an_encrypted_key_file_too(tmp_path: Path) -> None:
    """``mqtt_client`` (the Python API, which skips the CLI's check) handed the key to paho
    with no pass phrase callback: OpenSSL asked on the terminal, and waited. It is the same
    MqttConfigError naming the key file; an unencrypted key still makes a client."""
    _certificates(tmp_path)
    key = tmp_path / "encrypted.key"
    _openssl("pkey", "-in", "client.key", "-aes256", "-passout", "pass:guess-me",
             "-out", key.name, cwd=tmp_path)  # fmt: skip
    table = {
        "url": "mqtts://127.0.0.1:8883",
        "ca_file": str(tmp_path / "ca.pem"),
        "cert_file": str(tmp_path / "client.pem"),
        "key_file": str(key),
    }
    with pytest.raises(MqttConfigError) as error:
        mqtt_client(parse_settings(table))
    assert str(error.value) == (
        f"mqtt.key_file: {key}: it is encrypted; give an unencrypted key (mode 0600)"
    )
    plain = parse_settings({**table, "key_file": str(tmp_path / "client.key")})
    assert mqtt_client(plain) is not None
