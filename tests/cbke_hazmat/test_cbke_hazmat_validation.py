"""Point validation (SEC 1 3.2.2.1; SE 07-5356 C.4.2.2): every invalid class rejected.

Each class of bad encoding must raise :class:`zse.errors.InvalidPoint` with a message that says
which check failed, and arbitrary bytes must never raise anything else.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zse.cbke.hazmat import INFINITY, SECT163K1, SECT283K1, Curve, Point
from zse.errors import InvalidPoint

CURVES = [SECT163K1, SECT283K1]
ids = pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)


def _valid(curve: Curve, seed: int = 7) -> bytes:
    return curve.encode_point(curve.mul_base(random.Random(seed).randrange(1, curve.n)))


def _any_point_with_x(curve: Curve, x: int) -> Point | None:
    """A curve point with this x (either y), whatever its order, or None."""
    f = curve.field
    beta = x ^ curve.a ^ f.sqr(f.inv(x))
    if f.trace(beta):
        return None
    return Point(x, f.mul(x, f.half_trace(beta)))


def _order_two(curve: Curve) -> Point:
    return Point(0, 1)  # (0, sqrt(b)), b = 1


def _halve(curve: Curve, p: Point) -> Point:
    """A point Q with 2Q = P (P must satisfy Tr(x) = Tr(a))."""
    f = curve.field
    lam = f.half_trace(p.x ^ curve.a)
    u = f.sqrt(p.y ^ f.mul(p.x, lam ^ 1))
    q = Point(u, f.mul(u, lam) ^ f.sqr(u))
    assert curve.double(q) == p
    return q


@ids
@pytest.mark.parametrize("length_delta", [-1, 1, -21, 20])
def test_wrong_length(curve: Curve, length_delta: int) -> None:
    data = _valid(curve)
    bad = data[: len(data) + length_delta] if length_delta < 0 else data + bytes(length_delta)
    with pytest.raises(InvalidPoint, match=f"must be {curve.point_size} bytes, got {len(bad)}"):
        curve.decode_point(bad)


@ids
def test_empty(curve: Curve) -> None:
    with pytest.raises(InvalidPoint, match="got 0"):
        curve.decode_point(b"")


@ids
@pytest.mark.parametrize("prefix", [0x00, 0x01, 0x05, 0x12, 0xFF])
def test_bad_prefix(curve: Curve, prefix: int) -> None:
    data = bytes((prefix,)) + _valid(curve)[1:]
    with pytest.raises(InvalidPoint, match=f"prefix at offset 0 is {prefix:02x}"):
        curve.decode_point(data)


@ids
def test_uncompressed_rejected(curve: Curve) -> None:
    p = curve.mul_base(12345)
    size = curve.point_size - 1
    uncompressed = b"\x04" + p.x.to_bytes(size) + p.y.to_bytes(size)
    with pytest.raises(InvalidPoint, match="uncompressed"):
        curve.decode_point(uncompressed)
    # Same length as a compressed point but prefix 04: still rejected for the prefix.
    with pytest.raises(InvalidPoint, match="uncompressed"):
        curve.decode_point(b"\x04" + _valid(curve)[1:])


@ids
def test_x_not_in_field(curve: Curve) -> None:
    size = curve.point_size - 1
    for x in (1 << curve.m, (1 << (8 * size)) - 1, (1 << curve.m) | 1):
        with pytest.raises(InvalidPoint, match=f"x >= 2\\^{curve.m}"):
            curve.decode_point(b"\x02" + x.to_bytes(size))


@ids
def test_trace_one_x_rejected(curve: Curve) -> None:
    """About half of all x are not abscissas (Tr(x + a + b/x^2) = 1): decompression must fail."""
    rng = random.Random(11)
    f = curve.field
    found = 0
    while found < 5:
        x = rng.getrandbits(curve.m) or 1
        if f.trace(x ^ curve.a ^ f.sqr(f.inv(x))) == 1:
            found += 1
            for prefix in (2, 3):
                with pytest.raises(InvalidPoint, match="not the x-coordinate of a curve point"):
                    curve.decode_point(bytes((prefix,)) + x.to_bytes(curve.point_size - 1))


@ids
def test_order_two_point_at_x_zero(curve: Curve) -> None:
    t = _order_two(curve)
    assert curve.is_on_curve(t)
    assert curve.double(t) == INFINITY
    for prefix in (2, 3):
        with pytest.raises(InvalidPoint, match="order 2"):
            curve.decode_point(bytes((prefix,)) + bytes(curve.point_size - 1))


@ids
def test_small_order_components_rejected(curve: Curve) -> None:
    """P + T for every small-order T (order 2, and order 4 on sect283k1): on the curve, valid
    encoding, but not in the prime-order subgroup."""
    t2 = _order_two(curve)
    torsion = [t2]
    if curve.h == 4:
        t4 = _halve(curve, t2)
        assert curve.mul_naive(4, t4) == INFINITY
        torsion += [t4, curve.negate(t4)]
        # the order-4 points themselves
        for t in (t4, curve.negate(t4)):
            with pytest.raises(InvalidPoint, match="not in the prime-order subgroup"):
                curve.decode_point(curve.encode_point(t))
    rng = random.Random(5)
    for _ in range(3):
        p = curve.mul_base(rng.randrange(1, curve.n))
        for t in torsion:
            bad = curve.add(p, t)
            assert curve.is_on_curve(bad)
            assert not curve.order_check(bad)
            with pytest.raises(InvalidPoint, match="not in the prime-order subgroup"):
                curve.decode_point(curve.encode_point(bad))


@ids
def test_subgroup_check_agrees_with_n_times_p(curve: Curve) -> None:
    """The trace/halving test equals ``n*P == O`` on random curve points of every coset."""
    rng = random.Random(3)
    seen = {True: 0, False: 0}
    while min(seen.values()) < 4:
        x = rng.getrandbits(curve.m) or 1
        p = _any_point_with_x(curve, x)
        if p is None:
            continue
        expected = curve.order_check(p)
        assert curve.in_subgroup(p) == expected
        seen[expected] += 1


@ids
def test_infinity_has_no_encoding(curve: Curve) -> None:
    with pytest.raises(InvalidPoint, match="infinity"):
        curve.encode_point(INFINITY)


@ids
def test_not_bytes(curve: Curve) -> None:
    with pytest.raises(InvalidPoint, match="must be bytes"):
        curve.decode_point("02" * curve.point_size)  # type: ignore[arg-type]


@ids
def test_round_trip_and_both_prefixes(curve: Curve) -> None:
    rng = random.Random(9)
    prefixes = set()
    for _ in range(8):
        p = curve.mul_base(rng.randrange(1, curve.n))
        data = curve.encode_point(p)
        prefixes.add(data[0])
        assert curve.decode_point(data) == p
        assert curve.decode_point(bytearray(data)) == p
        flipped = bytes((data[0] ^ 1,)) + data[1:]
        assert curve.decode_point(flipped) == curve.negate(p)
    assert prefixes == {2, 3}


@settings(max_examples=300, deadline=None)
@given(curve=st.sampled_from(CURVES), data=st.binary(max_size=80))
def test_garbage_raises_only_invalid_point(curve: Curve, data: bytes) -> None:
    """Anything but InvalidPoint propagates and fails the test; successes must be genuine."""
    message = None
    try:
        p = curve.decode_point(data)
    except InvalidPoint as exc:
        message = str(exc)
    if message is not None:
        assert message.startswith(curve.name + ": ")
    else:
        assert curve.in_subgroup(p)
        assert curve.encode_point(p) == data


@settings(max_examples=200, deadline=None)
@given(
    curve=st.sampled_from(CURVES),
    prefix=st.sampled_from([2, 3]),
    x=st.integers(min_value=0),
)
def test_structured_garbage(curve: Curve, prefix: int, x: int) -> None:
    """Right length and prefix, random x: valid points come back, the rest is InvalidPoint."""
    x %= 1 << (8 * (curve.point_size - 1))
    data = bytes((prefix,)) + x.to_bytes(curve.point_size - 1)
    try:
        p = curve.decode_point(data)
    except InvalidPoint:
        return
    assert curve.order_check(p)
