"""Shared fixtures: the spec's vectors, copied from ../shared/vectors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

VECTORS = Path(__file__).parent / "vectors"


def load_vectors(name: str) -> Any:
    """A vector file from tests/vectors/."""
    return json.loads((VECTORS / name).read_text())


@pytest.fixture(scope="session")
def installcode_vectors() -> Any:
    return load_vectors("installcode.json")


@pytest.fixture(scope="session")
def mmo_vectors() -> Any:
    return load_vectors("mmo.json")
