"""The ESI sends only through its services' public API (#13.3): it encodes no payload, sends
no frame on the endpoint itself, and touches no service's private or internal state."""

from __future__ import annotations

import ast
from pathlib import Path

import zse.roles.esi

SERVICES = {"price", "time", "messaging", "drlc", "key_establishment"}
TREE = ast.parse(Path(zse.roles.esi.__file__).read_text())


def _service_attribute_chains() -> list[str]:
    """Every ``self.<service>.<attr>...`` chain in the ESI, as text."""
    chains = []
    for node in ast.walk(TREE):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute):
            inner = node.value
            if (
                isinstance(inner.value, ast.Name)
                and inner.value.id == "self"
                and inner.attr in SERVICES
            ):
                chains.append(f"self.{inner.attr}.{node.attr}")
    return chains


def test_the_esi_imports_no_payload_encoder() -> None:
    imported = {
        alias.name
        for node in ast.walk(TREE)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert not {name for name in imported if name.endswith("_payload")}


def test_the_esi_sends_no_frame_on_its_endpoint() -> None:
    assert "self.endpoint.send" not in ast.unparse(TREE)


def test_the_esi_reaches_into_no_service_state() -> None:
    chains = _service_attribute_chains()
    assert chains  # the walk sees the services at all
    private = [c for c in chains if c.rsplit(".", 1)[1].startswith("_")]
    internal = [c for c in chains if c.rsplit(".", 1)[1] in {"core", "messages", "endpoint"}]
    assert private == []
    assert internal == []
