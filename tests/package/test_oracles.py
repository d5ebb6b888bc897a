"""A missing test oracle (tshark, openssl) fails the tests that need it with a message naming the
tool and `make tools`, never a skip nor a FileNotFoundError traceback (issue #12, item 8)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.oracles import ORACLES, missing, require

#: Its outcome cannot depend on the Python version: the main interpreter only (ADR 0025).
pytestmark = pytest.mark.main_interpreter

ROOT = Path(__file__).resolve().parents[2]

ORACLE_TESTS = {
    "tshark": "tests/sim/test_pcap_writer.py::test_tshark_accepts_fcs_and_dissects",
    "openssl": "tests/cbke_hazmat/test_cbke_hazmat_openssl.py::test_ecdh_matches_openssl_derive",
    "mosquitto": "tests/mqtt/test_mqtt_broker.py::test_the_broker_starts_and_stops",
}


@pytest.mark.parametrize("tool", sorted(ORACLES))
def test_require_names_the_missing_tool_and_make_tools(tool, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(pytest.fail.Exception) as failed:
        require(tool)
    message = str(failed.value)
    assert message == missing(tool)
    assert f"{tool} is not installed" in message
    assert "`make tools` (.ci/install-tools)" in message


@pytest.mark.parametrize("tool", sorted(ORACLE_TESTS))
def test_an_oracle_test_fails_without_its_tool(tool, tmp_path):
    """The real test, run by pytest with the tool off PATH: failed (or an error in its fixture),
    the message, no skip."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", ORACLE_TESTS[tool]],
        cwd=ROOT,
        env={**os.environ, "PATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert missing(tool) in result.stdout
    summary = result.stdout.splitlines()[-1]
    assert re.fullmatch(r"\d+ (failed|errors?) in [\d.]+s", summary), result.stdout


def test_every_oracle_is_found_through_require():
    """No test looks a tool up on its own (a bare which() or a fixed /usr/bin path would turn a
    missing tool into an unclear error or a test that passes on a path that is not there)."""
    lookup = re.compile(r"which\(\s*[\"'](?:tshark|openssl)|/usr/bin/(?:tshark|openssl)")
    calls = re.compile(r"require\(\"(?:tshark|openssl)\"\)")
    sources = {
        p: p.read_text() for p in (ROOT / "tests").rglob("*.py") if p.name != "test_oracles.py"
    }
    assert [str(path) for path, text in sources.items() if lookup.search(text)] == []
    assert sum(len(calls.findall(text)) for text in sources.values()) >= 6
