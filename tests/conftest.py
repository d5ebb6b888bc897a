"""Shared fixtures: the spec's vectors, copied from ../shared/vectors."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
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


def _store_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "_connection_worker_thread" in t.name]


@pytest.fixture(autouse=True)
def no_store_left_open() -> Iterator[None]:
    """Every test closes the stores it opens: aiosqlite's worker thread is not a daemon, and one
    left running keeps the interpreter from exiting (a hang at Ctrl-C or at the end of a run)."""
    before = set(_store_threads())
    yield
    left = [t for t in _store_threads() if t not in before]
    for thread in left:
        thread.join(timeout=5)  # a close may still be finishing on its thread
    still = [t.name for t in left if t.is_alive()]
    assert not still, f"a store was left open ({len(still)} aiosqlite thread(s) still running)"
