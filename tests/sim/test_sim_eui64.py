"""The simulator's EUI-64 with its hash computed once (``zse.sim._frames.Eui64``) is zigpy's
EUI64 in every way a table can tell: equal, hashed alike, found in each other's dicts, and
pickled without its cached hash (a string's hash differs from one process to the next)."""

from __future__ import annotations

import pickle
import subprocess
import sys

import zigpy.types as t
from hypothesis import given
from hypothesis import strategies as st

from zse.sim._frames import Eui64, eui64


@given(st.binary(min_size=8, max_size=8))
def test_it_is_zigpys_eui64_to_any_table(raw):
    ours, theirs = Eui64(raw), t.EUI64(raw)
    assert ours == theirs
    assert isinstance(ours, t.EUI64)
    assert hash(ours) == hash(theirs) == hash(ours)  # the cached hash, the second time
    assert {theirs: 1}[ours] == 1
    assert {ours: 2}[theirs] == 2
    assert repr(ours) == repr(theirs)
    assert ours.serialize() == theirs.serialize() == raw
    assert eui64(ours) is ours
    assert eui64(theirs) == theirs


def test_a_pickled_one_hashes_as_the_receiving_process_hashes():
    ours = Eui64(bytes(range(8)))
    hash(ours)  # cached in this process
    code = (
        "import pickle, sys, zigpy.types as t; "
        "e = pickle.loads(sys.stdin.buffer.read()); "
        "print(hash(e) == hash(t.EUI64(bytes(range(8)))), type(e).__name__)"
    )
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            input=pickle.dumps(ours),
            capture_output=True,
            check=True,
            env={"PYTHONHASHSEED": seed},
        ).stdout
        assert out.split() == [b"True", b"Eui64"]
