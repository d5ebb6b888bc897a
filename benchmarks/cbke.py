"""CBKE arithmetic benchmark: zse's pure-Python sect163k1 / sect283k1 against OpenSSL, same run.

Run: ``.venv/bin/python benchmarks/cbke.py`` (``--seconds N`` for OpenSSL's measuring time).
OpenSSL's figure comes from ``openssl speed -seconds N ecdhk163 ecdhk283`` (one ECDH
operation = one scalar multiplication of a peer point plus its overhead). Every row prints our
time per operation, the reference, the ratio and the goal; the exit status is 1 if a goal is
missed.

To add a row, decorate a setup function with :func:`row`: it receives nothing and returns the
zero-argument callable to time (setup work stays outside the timing).
"""

from __future__ import annotations

import argparse
import itertools
import random
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from _tools import need

from zse.cbke import Initiator, Responder, TestCA, ecdsa, ecmqv, run_inline
from zse.cbke.hazmat import SECT163K1, SECT283K1, Curve, Point
from zse.cbke.messages import Message
from zse.cbke.suites import SUITE1

OPENSSL = "openssl"


@dataclass
class Row:
    label: str
    setup: Callable[[], Callable[[], object]]
    reference: str | None  # "ecdhk163" / "ecdhk283" or None
    max_ratio: float | None = None  # goal: ours / reference
    max_ms: float | None = None  # goal: absolute time per operation


ROWS: list[Row] = []


def row(
    label: str,
    *,
    reference: str | None = None,
    max_ratio: float | None = None,
    max_ms: float | None = None,
) -> Callable[[Callable[[], Callable[[], object]]], Callable[[], Callable[[], object]]]:
    """Register a benchmark row (see the module docstring)."""

    def register(setup: Callable[[], Callable[[], object]]) -> Callable[[], Callable[[], object]]:
        ROWS.append(Row(label, setup, reference, max_ratio, max_ms))
        return setup

    return register


_rng = random.Random(2024)
#: Distinct points per row, more than the curve remembers (64 recently seen points, see
#: ``Curve._term``): every call pays for its precomputation, as with a fresh ephemeral key.
_FRESH = 150


def _fresh_points(curve: Curve) -> Iterator[Point]:
    return itertools.cycle([curve.mul_base(_rng.randrange(1, curve.n)) for _ in range(_FRESH)])


def _mul_add_row(curve: Curve, *, static: bool) -> Callable[[], object]:
    points = _fresh_points(curve)
    fixed = curve.mul_base(_rng.randrange(1, curve.n))
    a, b = _rng.randrange(curve.n), _rng.randrange(curve.n)
    if static:
        return lambda: curve.mul_add(a, next(points), b, fixed)
    return lambda: curve.mul_add(a, next(points), b, next(points))


def _mul_row(curve: Curve) -> Callable[[], object]:
    points = _fresh_points(curve)
    k = _rng.randrange(curve.n)
    return lambda: curve.mul(k, next(points))


@row("sect163k1 mul_add a*P + b*Q, both fresh", reference="ecdhk163", max_ratio=25)
def _mul_add_163() -> Callable[[], object]:
    return _mul_add_row(SECT163K1, static=False)


@row("sect163k1 mul_add, Q a cached static key", reference="ecdhk163")
def _mul_add_static_163() -> Callable[[], object]:
    return _mul_add_row(SECT163K1, static=True)


@row("sect163k1 mul k*P", reference="ecdhk163")
def _mul_163() -> Callable[[], object]:
    return _mul_row(SECT163K1)


@row("sect163k1 mul_base k*G", reference="ecdhk163")
def _mul_base_163() -> Callable[[], object]:
    k = _rng.randrange(SECT163K1.n)
    return lambda: SECT163K1.mul_base(k)


@row("sect163k1 decode_point (full validation)", reference="ecdhk163")
def _decode_163() -> Callable[[], object]:
    data = SECT163K1.encode_point(SECT163K1.mul_base(_rng.randrange(SECT163K1.n)))
    return lambda: SECT163K1.decode_point(data)


@row("suite 1 ECDSA verify", reference="ecdhk163")
def _verify_163() -> Callable[[], object]:
    d = _rng.randrange(1, SECT163K1.n).to_bytes(21)
    public = SECT163K1.encode_point(SECT163K1.mul_base(int.from_bytes(d)))
    signature = ecdsa.sign(SUITE1, d, b"benchmark")
    return lambda: ecdsa.verify(SUITE1, public, b"benchmark", signature)


def _signers(count: int) -> list[tuple[bytes, bytes]]:
    """``count`` (public key, signature of b"benchmark") pairs of suite 1."""
    out = []
    for _ in range(count):
        d = _rng.randrange(1, SECT163K1.n).to_bytes(21)
        public = SECT163K1.encode_point(SECT163K1.mul_base(int.from_bytes(d)))
        out.append((public, ecdsa.sign(SUITE1, d, b"benchmark")))
    return out


@row("suite 1 ECDSA verify, 256 keys in turn", reference="ecdhk163")
def _verify_many_163() -> Callable[[], object]:
    """An ESI's reports from more devices than the curve caches tables for (16)."""
    turn = itertools.cycle(_signers(256))
    return lambda: ecdsa.verify(SUITE1, *_pair(next(turn)))


@row("suite 1 ECDSA verify, 256 VerifyingKeys", reference="ecdhk163")
def _verify_prepared_163() -> Callable[[], object]:
    """The same with each device's key prepared once (as the DRLC server keeps them)."""
    keys = [(ecdsa.VerifyingKey(SUITE1, p), s) for p, s in _signers(256)]
    turn = itertools.cycle(keys)
    return lambda: ecdsa.verify(SUITE1, *_pair(next(turn)))


def _pair(
    item: tuple[bytes | ecdsa.VerifyingKey, bytes],
) -> tuple[bytes | ecdsa.VerifyingKey, bytes, bytes]:
    key, signature = item
    return key, b"benchmark", signature


def _key_pair(curve: Curve) -> tuple[bytes, bytes]:
    d = _rng.randrange(1, curve.n)
    return d.to_bytes(curve.scalar_size), curve.encode_point(curve.mul_base(d))


def _ecmqv_row(*, new_static: bool) -> Callable[[], object]:
    static_private, _ = _key_pair(SECT163K1)
    ephemerals = itertools.cycle([_key_pair(SECT163K1)[0] for _ in range(_FRESH)])
    peer_ephemerals = itertools.cycle([_key_pair(SECT163K1)[1] for _ in range(_FRESH)])
    if new_static:
        statics = itertools.cycle([_key_pair(SECT163K1)[1] for _ in range(_FRESH)])
    else:
        statics = itertools.repeat(_key_pair(SECT163K1)[1])
    return lambda: ecmqv(
        SUITE1, static_private, next(ephemerals), next(statics), next(peer_ephemerals)
    )


@row("suite 1 ecmqv(), peer's static key recurring", reference="ecdhk163", max_ratio=25)
def _ecmqv_163() -> Callable[[], object]:
    """Both peer keys decoded and validated, our ephemeral public key recomputed; the peer's
    static key is one seen before (a partner re-keying), as in every exchange after the first."""
    return _ecmqv_row(new_static=False)


@row("suite 1 ecmqv(), peer's static key new", reference="ecdhk163", max_ratio=25)
def _ecmqv_new_static_163() -> Callable[[], object]:
    """As above with a never-seen static key every time (a first exchange)."""
    return _ecmqv_row(new_static=True)


def _exchange(initiator: Initiator, responder: Responder) -> bytes:
    """One complete exchange, both machines, computations inline; returns the shared key."""
    queue: list[tuple[Initiator | Responder, Message]] = [
        (responder, m) for m in initiator.start(now=0.0).send
    ]
    while queue:
        machine, message = queue.pop(0)
        step = run_inline(machine, machine.receive(message, now=0.0), now=0.0)
        peer: Initiator | Responder = initiator if machine is responder else responder
        queue += [(peer, m) for m in step.send]
    if initiator.key_data is None or initiator.key_data != responder.key_data:
        raise SystemExit("benchmark exchange did not establish a key")
    return initiator.key_data


@row("suite 1 exchange, both parties (machines)", max_ms=25)
def _exchange_163() -> Callable[[], object]:
    ca = TestCA.generate()
    meter = ca.issue(bytes.fromhex("0011223344556677"), SUITE1)
    ihd = ca.issue(bytes.fromhex("8899AABBCCDDEEFF"), SUITE1)
    # Fresh machines and fresh ephemeral keys (from secrets) every time, as on the air.
    return lambda: _exchange(Initiator(ihd, meter.eui64), Responder(meter, ihd.eui64))


@row("sect283k1 mul k*P", reference="ecdhk283", max_ratio=30)
def _mul_283() -> Callable[[], object]:
    return _mul_row(SECT283K1)


@row("sect283k1 mul_add a*P + b*Q, both fresh", reference="ecdhk283")
def _mul_add_283() -> Callable[[], object]:
    return _mul_add_row(SECT283K1, static=False)


@row("sect283k1 mul_base k*G", reference="ecdhk283")
def _mul_base_283() -> Callable[[], object]:
    k = _rng.randrange(SECT283K1.n)
    return lambda: SECT283K1.mul_base(k)


def openssl_speed(seconds: int) -> dict[str, float]:
    """Seconds per ECDH operation, keyed by the ``openssl speed`` algorithm name."""
    out = subprocess.run(
        [OPENSSL, "speed", "-seconds", str(seconds), "ecdhk163", "ecdhk283"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = {}
    for bits, name in (("163", "ecdhk163"), ("283", "ecdhk283")):
        match = re.search(rf"^\s*{bits} bits ecdh \(nistk{bits}\)\s+(\S+)s\s+([\d.]+)", out, re.M)
        if match is None:
            raise SystemExit(f"cannot parse `openssl speed` output for {name}:\n{out}")
        result[name] = 1.0 / float(match.group(2))
    return result


def measure(fn: Callable[[], object], budget: float = 0.6) -> float:
    """Seconds per call: the best of several batches (least disturbed by other processes)."""
    fn()  # warm caches and lazily built tables
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-6)
    per_batch = max(1, int(budget / 5 / once))
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(per_batch):
            fn()
        best = min(best, (time.perf_counter() - start) / per_batch)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=1, help="openssl speed -seconds")
    parser.add_argument("--only", default="", help="the rows whose label contains this")
    args = parser.parse_args()
    need(OPENSSL)
    reference = openssl_speed(args.seconds)
    for name, seconds in reference.items():
        print(f"OpenSSL {name}: {seconds * 1e3:.3f} ms/op")
    print(f"{'operation':44} {'zse ms':>9} {'ref':>9} {'ratio':>7}  goal")
    missed = 0
    for r in ROWS:
        if args.only not in r.label:
            continue
        ours = measure(r.setup())
        ref = reference.get(r.reference) if r.reference else None
        ratio = ours / ref if ref else None
        goals = []
        ok = True
        if r.max_ratio is not None and ratio is not None:
            goals.append(f"<= {r.max_ratio:g}x")
            ok = ok and ratio <= r.max_ratio
        if r.max_ms is not None:
            goals.append(f"<= {r.max_ms:g} ms")
            ok = ok and ours * 1e3 <= r.max_ms
        verdict = ("met" if ok else "MISSED") if goals else ""
        missed += not ok
        print(
            f"{r.label:44} {ours * 1e3:9.3f} "
            f"{(ref * 1e3 if ref else float('nan')):9.3f} "
            f"{(f'{ratio:.1f}x' if ratio else '-'):>7}  {' '.join(goals)} {verdict}"
        )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
