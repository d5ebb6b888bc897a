"""The external oracles some tests compare against: tshark (Wireshark's dissectors), the
OpenSSL command line and the Mosquitto broker (issue #17). A missing one FAILS those tests with
the tool's name and how to install it, never skips them: a skip would let a run pass without
the cross-check it exists for."""

from __future__ import annotations

import shutil
from collections.abc import Iterable

import pytest

#: What each oracle is, for the failure message.
ORACLES = {
    "tshark": "Wireshark's dissectors, the oracle for frames and captures",
    "openssl": "the OpenSSL 3 command line, the oracle for curve arithmetic and ECDSA",
    "mosquitto": "the Mosquitto MQTT broker, the real broker of the `zse mqtt` tests",
    "mosquitto_sub": "Mosquitto's subscriber, the reference client of the `zse mqtt` tests",
    "mosquitto_pub": "Mosquitto's publisher, the reference client of the `zse mqtt` tests",
}


#: The Debian/Ubuntu package of a tool, where its name differs.
PACKAGES = {"mosquitto_sub": "mosquitto-clients", "mosquitto_pub": "mosquitto-clients"}


def missing(tool: str) -> str:
    """The failure message for a missing oracle."""
    return (
        f"{tool} is not installed ({ORACLES[tool]}); this test needs it: run `make tools` "
        f"(.ci/install-tools) or install the Debian/Ubuntu package {PACKAGES.get(tool, tool)}"
    )


def require(tool: str) -> str:
    """The path of ``tool`` on PATH; fails the calling test with :func:`missing` if absent."""
    path = shutil.which(tool)
    if path is None:
        pytest.fail(missing(tool), pytrace=False)
    return path


def zigbee_key_options(lines: Iterable[str]) -> list[str]:
    """tshark options giving it ZigBee keys: one ``-o uat:zigbee_pc_keys:LINE`` per line of
    Wireshark's key table (``"KEY","Normal","label"``, as ``Air.write_keys`` writes)."""
    return [arg for line in lines if line.strip() for arg in ("-o", f"uat:zigbee_pc_keys:{line}")]
