"""Hypothesis properties of GF(2^m) and the Koblitz-curve group, and of the tau-adic recoding.

The fast paths (windowed multiplication, squaring table, linear-map tables, affine and
Lopez-Dahab tau-NAF, generator table, cached wide tables, simultaneous multiplication) are
compared with the schoolbook definitions (bit-by-bit carry-less product, affine double-and-add).
"""

from __future__ import annotations

import copy
import functools
import pickle
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zse.cbke.hazmat import INFINITY, SECT163K1, SECT283K1, Curve, Point
from zse.cbke.hazmat._tnaf import _PLANS, TauAdic

CURVES = [SECT163K1, SECT283K1]
curves = st.sampled_from(CURVES)


def _clmul_mod(a: int, b: int, modulus: int, m: int) -> int:
    """Schoolbook: bit-by-bit carry-less product, then long division by the modulus."""
    r = 0
    while b:
        if b & 1:
            r ^= a
        a <<= 1
        b >>= 1
    while r.bit_length() > m:
        r ^= modulus << (r.bit_length() - 1 - m)
    return r


@st.composite
def field_elements(draw: st.DrawFn, curve: Curve, count: int) -> list[int]:
    return [draw(st.integers(0, (1 << curve.m) - 1)) for _ in range(count)]


@st.composite
def curve_and_elements(draw: st.DrawFn) -> tuple[Curve, list[int]]:
    curve = draw(curves)
    return curve, draw(field_elements(curve, 3))


@st.composite
def curve_and_scalars(draw: st.DrawFn) -> tuple[Curve, list[int]]:
    curve = draw(curves)
    return curve, [draw(st.integers(0, 2 * curve.n)) for _ in range(3)]


def test_field_moduli_are_the_sec2_pentanomials() -> None:
    assert SECT163K1.field.modulus == (1 << 163) | (1 << 7) | (1 << 6) | (1 << 3) | 1
    assert SECT283K1.field.modulus == (1 << 283) | (1 << 12) | (1 << 7) | (1 << 5) | 1


@settings(max_examples=150, deadline=None)
@given(curve_and_elements())
def test_field_laws(ce: tuple[Curve, list[int]]) -> None:
    curve, (a, b, c) = ce
    f = curve.field
    mul = f.mul
    assert mul(a, b) == _clmul_mod(a, b, f.modulus, f.m)
    assert mul(a, b) == mul(b, a)
    assert mul(mul(a, b), c) == mul(a, mul(b, c))
    assert mul(a, b ^ c) == mul(a, b) ^ mul(a, c)
    assert mul(a, 1) == a
    assert f.sqr(a) == mul(a, a)
    assert f.sqr(f.sqrt(a)) == a
    assert f.multi_square(3)(a) == f.sqr(f.sqr(f.sqr(a)))
    assert f.trace(a ^ b) == f.trace(a) ^ f.trace(b)
    assert f.trace(f.sqr(a)) == f.trace(a)
    h = f.half_trace(a)
    assert f.sqr(h) ^ h == a ^ f.trace(a)
    if a:
        assert mul(a, f.inv(a)) == 1
        assert f.inv(f.inv(a)) == a


def test_trace_matches_definition() -> None:
    for curve in CURVES:
        f = curve.field
        for a in (1, 2, 3, 1 << (curve.m - 1), f.modulus ^ (1 << curve.m)):
            t, x = a, a
            for _ in range(curve.m - 1):
                x = f.sqr(x)
                t ^= x
            assert t == f.trace(a)


@settings(max_examples=25, deadline=None)
@given(curve_and_scalars())
def test_group_laws(cs: tuple[Curve, list[int]]) -> None:
    curve, (a, b, c) = cs
    g = curve.generator
    pa, pb, pc = curve.mul_base(a), curve.mul_base(b), curve.mul_base(c)
    assert curve.add(curve.add(pa, pb), pc) == curve.add(pa, curve.add(pb, pc))
    assert curve.add(pa, pb) == curve.add(pb, pa)
    assert curve.mul_base(a + b) == curve.add(pa, pb)
    assert curve.add(pa, curve.negate(pa)) == INFINITY
    assert curve.add(pa, INFINITY) == pa
    assert curve.mul(b, pa) == curve.mul(a, pb) == curve.mul_base(a * b)
    assert curve.mul_add(a, pb, c, g) == curve.mul_base(a * b + c)
    assert curve.mul_add(a, pb, c, pa) == curve.add(curve.mul(a, pb), curve.mul(c, pa))
    assert curve.mul(a, g) == pa
    for p in (pa, pb, pc):
        assert curve.is_on_curve(p)
        if not p.infinity:
            assert curve.in_subgroup(p)


@settings(max_examples=12, deadline=None)
@given(curve_and_scalars())
def test_tau_naf_matches_double_and_add(cs: tuple[Curve, list[int]]) -> None:
    curve, (a, b, _) = cs
    p = curve.mul_base(b | 1)
    expected = curve.mul_naive(a, p)
    assert curve.mul(a, p) == expected
    assert curve.mul_base(a) == curve.mul_naive(a, curve.generator)
    assert curve.mul_add(a, p, b, curve.generator) == curve.add(
        expected, curve.mul_naive(b, curve.generator)
    )


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_edge_scalars(curve: Curve) -> None:
    g = curve.generator
    p = curve.mul_base(987654321)
    for k in (0, 1, 2, 3, 4, 5, 17, curve.n - 1, curve.n, curve.n + 1, 2 * curve.n - 1, -1):
        assert curve.mul_base(k) == curve.mul_naive(k % curve.n, g)
        assert curve.mul(k, p) == curve.mul_naive(k % curve.n, p)
    # mul_add where the two terms cancel or coincide (exceptional additions inside)
    assert curve.mul_add(1, p, curve.n - 1, p) == INFINITY
    assert curve.mul_add(3, p, 5, p) == curve.mul(8, p)
    assert curve.mul_add(1, g, 1, g) == curve.double(g)
    assert curve.mul_add(0, p, 0, g) == INFINITY
    q = curve.mul_base(4242)
    assert curve.mul_add(5, p, 1, q) == curve.add(curve.mul_naive(5, p), q)
    assert curve.mul_add(1, p, 9, q) == curve.add(p, curve.mul_naive(9, q))
    assert curve.mul_add(1, p, 1, q) == curve.add(p, q)
    assert curve.mul_add(7, INFINITY, 2, p) == curve.mul(2, p)
    assert curve.mul(5, INFINITY) == INFINITY
    assert curve.double(INFINITY) == INFINITY


@settings(max_examples=200, deadline=None)
@given(curve=curves, k=st.integers(min_value=0), width=st.sampled_from([4, 5, 6]))
def test_partial_reduction_and_digits(curve: Curve, k: int, width: int) -> None:
    """rho = k partmod delta is congruent to k modulo delta, short, and its width-w tau-NAF
    spells rho, with every non-zero digit followed by w-1 zeros."""
    tau = TauAdic(m=curve.m, a=curve.a, n=curve.n, h=curve.h, width=width)
    k %= curve.n
    r0, r1 = tau.reduce(k)
    # (k - rho) / delta must be in Z[tau]: (k - rho) * conj(delta) divisible by N(delta) = n
    num = tau.mul((k - r0, -r1), tau.conj(tau.delta))
    assert num[0] % curve.n == 0
    assert num[1] % curve.n == 0
    digits = tau.digits(r0, r1)
    assert tau.value(digits) == (r0, r1)
    assert len(digits) <= curve.m + 4
    for i, d in enumerate(digits):
        if d:
            assert d % 2
            assert abs(d) < 1 << (width - 1)
            assert not any(digits[i + 1 : i + width])


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_stored_plans_are_what_the_search_finds_and_compute_every_alpha(curve: Curve) -> None:
    """The width-7 plans kept in the module (a search of ~0.2 s each) are the search's own
    result, and each step's one addition gives its alpha_u."""
    tau = TauAdic(m=curve.m, a=curve.a, n=curve.n, h=curve.h, width=7)
    assert (tau.mu, 7) in _PLANS
    assert tau.plan == tau._make_plan()
    known = {1: (1, 0)}
    for u, s1, j1, v1, s2, j2, v2 in tau.plan:
        x = tau.mul(tau.tau_power(j1), known[v1])
        y = tau.mul(tau.tau_power(j2), known[v2])
        known[u] = (s1 * x[0] + s2 * y[0], s1 * x[1] + s2 * y[1])
        assert known[u] == tau.alphas[u]
    assert known.keys() == tau.alphas.keys()


def test_tau_naf_terminates_on_small_elements() -> None:
    """Every element near the origin has a finite expansion (no cycles in Algorithm 3.69)."""
    for curve in CURVES:
        for width in (4, 5, 6):
            tau = TauAdic(m=curve.m, a=curve.a, n=curve.n, h=curve.h, width=width)
            for r0 in range(-40, 41):
                for r1 in range(-40, 41):
                    digits = tau.digits(r0, r1)
                    assert len(digits) < 30
                    assert tau.value(digits) == (r0, r1)


def test_concurrent_use_of_a_fresh_curve() -> None:
    """Lazily built tables (generator rows, point tables, multi-squaring maps) are safe to
    build from several threads at once (the key establishment runs in an executor)."""
    curve = Curve(
        name="sect163k1-copy",
        m=163,
        middle_terms=(7, 6, 3),
        a=1,
        gx=SECT163K1.generator.x,
        gy=SECT163K1.generator.y,
        n=SECT163K1.n,
        h=2,
    )
    scalars = [3**i % curve.n for i in range(60, 76)]
    points = [SECT163K1.mul_base(k) for k in scalars]
    with ThreadPoolExecutor(max_workers=4) as pool:
        bases = list(pool.map(curve.mul_base, scalars))
        products = list(pool.map(lambda p: curve.mul(77, p), points * 2))
    assert bases == points
    assert products == [SECT163K1.mul_naive(77, p) for p in points] * 2


def test_curves_copy_and_pickle_as_themselves() -> None:
    """Curves hold caches and a lock; copies and unpickled curves are the same objects."""
    for curve in CURVES:
        assert copy.copy(curve) is curve
        assert copy.deepcopy({"c": curve})["c"] is curve
        assert pickle.loads(pickle.dumps(curve)) is curve


def _twin(curve: Curve, **changes: object) -> Curve:
    """A fresh curve with the same parameters (own caches), some construction options changed."""
    params = {**curve._params, **changes}
    params["name"] = f"{curve.name}-twin"
    return Curve(**params)


#: Multiplication strategies: affine / Lopez-Dahab accumulators, 0 (one shared Horner chain)
#: or several lockstep chains for ``mul_add``. The curves use the first; all must agree.
STRATEGIES = [
    {"affine_accumulator": True, "chains": 2},
    {"affine_accumulator": True, "chains": 0},
    {"affine_accumulator": False, "chains": 0},
    {"affine_accumulator": True, "chains": 4},
    {"affine_accumulator": False, "chains": 3},
]


@functools.cache
def _naive(curve: Curve, k: int, p: Point) -> Point:
    """Schoolbook ``k*P``, remembered across the strategies (it is the slow part)."""
    return curve.mul_naive(k, p)


@pytest.mark.parametrize("strategy", STRATEGIES, ids=repr)
@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_multiplication_strategies_agree(curve: Curve, strategy: dict[str, object]) -> None:
    """Every accumulator / chain layout gives the schoolbook points, exceptional cases too."""
    g = curve.generator
    other = _twin(curve, **strategy)
    p = curve.mul_base(0xC0FFEE)
    q = curve.mul_base(0xBADC0DE)
    for k in (3, 0x1234567, curve.n - 2, curve.n // 3):
        assert other.mul(k, p) == _naive(curve, k, p)
        assert other.mul_base(k) == _naive(curve, k, g)
        expected = curve.add(_naive(curve, k, p), _naive(curve, k + 1, q))
        assert other.mul_add(k, p, k + 1, q) == expected
        assert other.mul_add(k, p, k + 1, g) == curve.add(
            _naive(curve, k, p), _naive(curve, k + 1, g)
        )
    # the two terms cancel, coincide, or one is a multiple of the other
    assert other.mul_add(5, p, curve.n - 5, p) == INFINITY
    assert other.mul_add(5, p, 6, p) == _naive(curve, 11, p)
    assert other.mul_add(2**90 + 7, p, 3, _naive(curve, 2**90 + 7, p)) == _naive(
        curve, 4 * (2**90 + 7), p
    )


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_affine_sums_with_equal_and_opposite_terms(curve: Curve) -> None:
    """Batched additions (one shared inversion) fall back to the general law when two
    terms share x: doubling, cancelling, and an empty sum."""
    p, q, r = (curve.mul_base(k) for k in (11, 12, 13))
    affine = {pt: (pt.x, pt.y) for pt in (p, q, r, curve.negate(q))}
    terms = [affine[p], affine[p], affine[q], affine[curve.negate(q)], affine[r]]
    total = curve.mul_naive(11 + 11 + 13, curve.generator)  # q and -q cancel
    assert curve._affine_sum(terms) == (total.x, total.y)
    assert curve._affine_sum([affine[q], affine[curve.negate(q)]]) is None
    assert curve._affine_sum([]) is None
    pairs = [(affine[p], affine[q]), (affine[q], affine[q]), (affine[r], affine[curve.negate(q)])]
    sums = curve._affine_add_many(pairs)
    expected = [curve.add(p, q), curve.double(q), curve.add(r, curve.negate(q))]
    assert sums == [(e.x, e.y) for e in expected]


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_recurring_points_get_a_cached_wide_table(curve: Curve) -> None:
    """A point's first multiplication uses a throw-away width-5 table; from its second on, a
    cached width-7 one. Both give the schoolbook result, and the cache stays bounded."""
    fresh = _twin(curve)
    p = curve.mul_base(0xFEED)
    key = (p.x, p.y)
    for use, k in enumerate((0xABCDEF, curve.n - 12345, 2**80 + 1)):
        assert fresh.mul(k, p) == curve.mul_naive(k, p)
        if use:
            assert len(fresh._table_cache[key]) == 32  # alpha_u * P for odd u < 2^6
        else:
            assert key not in fresh._table_cache
    for k in range(2, 40):
        point = curve.mul_base(k)
        fresh.mul_add(k, point, 3, p)
        fresh.mul_add(k, point, 3, p)
    assert len(fresh._table_cache) <= 16
    assert len(fresh._seen) <= 64
    assert fresh.mul_add(7, p, 9, q := curve.mul_base(77)) == curve.add(
        curve.mul_naive(7, p), curve.mul_naive(9, q)
    )


@settings(max_examples=12, deadline=None)
@given(curve_and_scalars())
def test_prepared_points_multiply_as_the_schoolbook(cs: tuple[Curve, list[int]]) -> None:
    """``mul_base_add(a, b, prepare(Q))`` (ECDSA verification with a device's key prepared
    once) is ``a*G + b*Q`` by double-and-add, zero coefficients and ``b*Q = -a*G`` included."""
    curve, (a, b, c) = cs
    q = curve.mul_base(c | 1)
    prepared = curve.prepare(q)
    assert prepared.point == q
    assert len(prepared.table) == 32  # the static window's alpha_u * Q, odd u < 2^6
    expected = curve.add(curve.mul_naive(a, curve.generator), curve.mul_naive(b, q))
    assert curve.mul_base_add(a, b, prepared) == expected
    assert curve.mul_base_add(0, b, prepared) == curve.mul_naive(b, q)
    assert curve.mul_base_add(a, 0, prepared) == curve.mul_naive(a, curve.generator)
    assert curve.mul_base_add(0, 0, prepared) == INFINITY
    # b*Q = -a*G: the sum is the identity (c | 1 is Q's discrete log)
    assert curve.mul_base_add(curve.n - (c | 1), 1, prepared) == INFINITY
    with pytest.raises(ValueError, match="infinity"):
        curve.prepare(INFINITY)
