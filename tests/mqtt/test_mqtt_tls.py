"""The bridge over TLS with the broker's CA, a client certificate, and a username and
password (issue #17.1: the [mqtt] table's ca_file, cert_file, key_file, username, password),
against Mosquitto with certificates made by the OpenSSL command line."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.mqtt.broker import Broker
from tests.mqtt.helpers import real_wait
from tests.oracles import require
from zse.cli.mqtt import simulated_esi
from zse.mqtt.bridge import MqttBridge
from zse.mqtt.core import parse_settings


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run([require("openssl"), *args], cwd=cwd, check=True, capture_output=True)


def _certificates(directory: Path) -> None:
    """A test CA, the broker's certificate (for 127.0.0.1) and a client's, all signed by it."""
    new_key = ("-newkey", "rsa:2048", "-nodes")
    _openssl("req", "-x509", *new_key, "-days", "2", "-subj", "/CN=zse test CA",
             "-keyout", "ca.key", "-out", "ca.pem", cwd=directory)  # fmt: skip
    for name, extra in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "")):
        _openssl("req", *new_key, "-subj", f"/CN={name}",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=directory)  # fmt: skip
        options = ["-extfile", f"{name}.ext"] if extra else []
        if extra:
            (directory / f"{name}.ext").write_text(extra + "\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-out", f"{name}.pem", *options,
                 cwd=directory)  # fmt: skip


async def test_tls_with_a_client_certificate_and_a_password(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    _certificates(certs)
    passwords = certs / "passwords"
    subprocess.run(
        [require("mosquitto_passwd"), "-c", "-b", str(passwords), "meter", "s3cret"],
        check=True,
        capture_output=True,
    )
    directory = tmp_path / "broker"
    directory.mkdir()
    broker = Broker(
        directory,
        listener=(
            f"cafile {certs / 'ca.pem'}\ncertfile {certs / 'server.pem'}\n"
            f"keyfile {certs / 'server.key'}\nrequire_certificate true\n"
            f"allow_anonymous false\npassword_file {passwords}\n"
        ),
    )
    broker.start()
    try:
        settings = parse_settings(
            {
                "url": f"mqtts://127.0.0.1:{broker.port}",
                "ca_file": str(certs / "ca.pem"),
                "cert_file": str(certs / "client.pem"),
                "key_file": str(certs / "client.key"),
                "username": "meter",
                "password": "s3cret",
            }
        )
        assert "s3cret" not in repr(settings)
        async with simulated_esi(tmp_path) as sim:
            bridge = MqttBridge(sim.esi, settings, store=sim.registry.store)
            await bridge.start()
            try:
                await real_wait(bridge.connected.wait())
                await real_wait(bridge.drained.wait())
            finally:
                await bridge.stop()
        assert bridge.connections == 1
        assert any("u'meter'" in line for line in broker.log), broker.log  # by its password
    finally:
        broker.stop()
