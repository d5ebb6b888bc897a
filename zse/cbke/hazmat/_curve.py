"""Koblitz curves ``y^2 + xy = x^3 + a x^2 + 1`` over GF(2^m): points, codec, scalar multiplication.

SEC 1 v2 sections 2.2.2 (group law), 2.3.3/2.3.4 (compressed point encoding), 3.2.2.1
(public key validation); SEC 2 v2 sections 3.2.1 (sect163k1) and 3.4.1 (sect283k1).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from zse.cbke.hazmat._field import BinaryField
from zse.cbke.hazmat._tnaf import TauAdic
from zse.errors import InvalidPoint

__all__ = ["INFINITY", "Curve", "Point", "StaticPoint"]


@dataclass(frozen=True, slots=True)
class Point:
    """An affine point; ``x`` and ``y`` are polynomial-basis field elements as ints.

    :data:`INFINITY` (``infinity=True``) is the identity; every other instance is affine.
    """

    x: int
    y: int
    infinity: bool = False

    def __repr__(self) -> str:
        if self.infinity:
            return "INFINITY"
        return f"Point(x={self.x:#x}, y={self.y:#x})"


#: The point at infinity (the group identity).
INFINITY = Point(0, 0, infinity=True)


@dataclass(frozen=True, slots=True, eq=False)
class StaticPoint:
    """A subgroup point prepared once for many multiplications (:meth:`Curve.prepare`): a
    partner's static key, whose wide table its holder keeps for as long as it keeps the key
    (the curve's own cache of recurring points holds only a few)."""

    point: Point
    table: tuple[tuple[int, int], ...]


#: Longest run of Frobenius maps done by one multi-squaring table (7 tables per field).
_MAX_FROBENIUS_STEP = 8
#: Wide tables kept per curve for recurring points (static keys, CA key, peers' keys).
_TABLE_CACHE_SIZE = 16
#: Recently seen points remembered to recognise recurring ones (public values only).
_SEEN_SIZE = 64

_Affine = tuple[int, int]
_LD = tuple[int, int, int]


class Curve:
    """A Koblitz curve ``E: y^2 + xy = x^3 + a x^2 + 1`` (a in {0, 1}) with a prime subgroup."""

    def __init__(
        self,
        *,
        name: str,
        m: int,
        middle_terms: tuple[int, int, int],
        a: int,
        gx: int,
        gy: int,
        n: int,
        h: int,
        window: int = 5,
        base_window: int = 7,
        static_window: int = 7,
        affine_accumulator: bool = True,
        chains: int = 2,
    ) -> None:
        self.name = name
        self._params: dict[str, Any] = {
            "name": name,
            "m": m,
            "middle_terms": middle_terms,
            "a": a,
            "gx": gx,
            "gy": gy,
            "n": n,
            "h": h,
            "window": window,
            "base_window": base_window,
            "static_window": static_window,
            "affine_accumulator": affine_accumulator,
            "chains": chains,
        }
        self.field = BinaryField(m, middle_terms)
        self.m = m
        self.a = a
        self.b = 1
        self.n = n
        self.h = h
        self.scalar_size = (n.bit_length() + 7) // 8
        self.point_size = 1 + (m + 7) // 8
        self.generator = Point(gx, gy)
        if h & (h - 1):
            raise ValueError("the subgroup check assumes a power-of-two cofactor")
        self._cofactor_log2 = h.bit_length() - 1
        # How scalar multiplications accumulate (see _acc_add_affine): measured per field.
        self._acc_add: Callable[[_LD | None, _Affine], _LD | None] = (
            self._acc_add_affine if affine_accumulator else self._ld_add_affine
        )
        self._chains = chains
        self._tau = TauAdic(m=m, a=a, n=n, h=h, width=window)
        self._base_window = base_window
        self._static_window = static_window
        self._wide_taus: dict[int, TauAdic] = {}  # built on first use (a plan takes ~50 ms)
        self._base_rows: list[list[_Affine]] = []
        self._table_cache: dict[_Affine, list[_Affine]] = {}
        self._seen: dict[_Affine, None] = {}
        self._cache_lock = threading.Lock()
        if not self.is_on_curve(self.generator):
            raise ValueError(f"{name}: generator is not on the curve")

    def __repr__(self) -> str:
        return f"<Curve {self.name}>"

    # A curve is an immutable value with caches: copies are the object itself, and pickling
    # (process pools, hypothesis) rebuilds it from its parameters, or returns the named curve.
    def __copy__(self) -> Curve:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Curve:
        return self

    def __reduce__(self) -> tuple[Callable[[dict[str, Any]], Curve], tuple[dict[str, Any]]]:
        return (_rebuild_curve, (self._params,))

    # -- group law (SEC 1 section 2.2.2), affine ------------------------------------------

    def is_on_curve(self, p: Point) -> bool:
        """Whether ``p`` satisfies the curve equation (INFINITY counts as on the curve)."""
        if p.infinity:
            return True
        f = self.field
        x, y = p.x, p.y
        if not (f.is_element(x) and f.is_element(y)):
            return False
        x2 = f.sqr(x)
        lhs = f.sqr(y) ^ f.mul(x, y)
        rhs = f.mul(x2, x) ^ (x2 if self.a else 0) ^ self.b
        return lhs == rhs

    def negate(self, p: Point) -> Point:
        """``-P = (x, x + y)``."""
        if p.infinity:
            return p
        return Point(p.x, p.x ^ p.y)

    def add(self, p: Point, q: Point) -> Point:
        """``P + Q`` (affine chord-and-tangent, SEC 1 section 2.2.2)."""
        if p.infinity:
            return q
        if q.infinity:
            return p
        f = self.field
        if p.x == q.x:
            if p.y != q.y or p.x == 0:
                return INFINITY  # Q = -P, or P = -P (the point of order 2)
            return self.double(p)
        lam = f.mul(p.y ^ q.y, f.inv(p.x ^ q.x))
        x3 = f.sqr(lam) ^ lam ^ p.x ^ q.x ^ self.a
        y3 = f.mul(lam, p.x ^ x3) ^ x3 ^ p.y
        return Point(x3, y3)

    def double(self, p: Point) -> Point:
        """``2P``."""
        if p.infinity or p.x == 0:
            return INFINITY
        f = self.field
        lam = p.x ^ f.mul(p.y, f.inv(p.x))
        x3 = f.sqr(lam) ^ lam ^ self.a
        y3 = f.sqr(p.x) ^ f.mul(lam ^ 1, x3)
        return Point(x3, y3)

    def frobenius(self, p: Point) -> Point:
        """``tau(P) = (x^2, y^2)``."""
        if p.infinity:
            return p
        return Point(self.field.sqr(p.x), self.field.sqr(p.y))

    # -- scalar multiplication --------------------------------------------------------------

    def mul_naive(self, k: int, p: Point) -> Point:
        """``k*P`` by affine double-and-add: the slow reference, valid for any point and ``k``."""
        if k < 0:
            return self.mul_naive(-k, self.negate(p))
        r = INFINITY
        for bit in bin(k)[2:]:
            r = self.double(r)
            if bit == "1":
                r = self.add(r, p)
        return r

    def mul(self, k: int, p: Point) -> Point:
        """``k*P`` for ``P`` in the prime-order subgroup (as :meth:`decode_point` returns).

        tau-adic width-w NAF (w = 5 for a point seen once, 7 for a recurring one), Frobenius
        maps and additions into an affine or Lopez-Dahab accumulator. ``k`` is reduced modulo
        ``delta`` (equivalently ``n``), which is only correct for subgroup points: use
        :meth:`mul_naive` for anything else.
        """
        k %= self.n
        if k == 0 or p.infinity:
            return INFINITY
        return self._to_point(self._sum_terms([self._term(k, p)]))

    def mul_base(self, k: int) -> Point:
        """``k*G`` from a table of ``tau^i * alpha_u * G``: additions only, no Frobenius."""
        k %= self.n
        if k == 0:
            return INFINITY
        return self._to_point(self._base_sum(k))

    def prepare(self, p: Point) -> StaticPoint:
        """``p`` (a subgroup point, as :meth:`decode_point` returns) with its width-
        ``static_window`` table, for :meth:`mul_base_add`."""
        if p.infinity:
            raise ValueError("the point at infinity needs no preparation")
        table = self._compute_table(self._wide_tau(self._static_window), p.x, p.y)
        return StaticPoint(p, tuple(table))

    def mul_base_add(self, a: int, b: int, q: StaticPoint) -> Point:
        """``a*G + b*Q`` for a prepared ``Q`` (ECDSA verification, SEC 1 4.1.4 step 5): the
        generator table for ``a``, ``Q``'s own table for ``b``; the same sum as
        :meth:`mul_add` without building or looking up ``Q``'s table."""
        a %= self.n
        b %= self.n
        acc = self._base_sum(a) if a else None
        if b:
            tau = self._wide_tau(self._static_window)
            other = self._sum_terms([(tau.digits(*tau.reduce(b)), q.table)])
            if other is not None:
                acc = self._acc_add(acc, self._to_affine(other))
        return self._to_point(acc)

    def mul_add(self, a: int, p: Point, b: int, q: Point) -> Point:
        """``a*P + b*Q`` for subgroup points, with one shared Frobenius chain (ECMQV's core).

        A term on the generator uses the generator table instead.
        """
        a %= self.n
        b %= self.n
        if p.infinity:
            a = 0
        if q.infinity:
            b = 0
        if p == self.generator and a and b:
            p, q, a, b = q, p, b, a
        if q == self.generator and b:
            acc = self._base_sum(b)
            if a:
                other = self._sum_terms([self._term(a, p)])
                if other is not None:
                    acc = self._acc_add(acc, self._to_affine(other))
            return self._to_point(acc)
        # A coefficient of 1 (certificate reconstruction e*B + Q_CA) needs no table.
        if b == 1:
            return self.add(self.mul(a, p), q)
        if a == 1:
            return self.add(p, self.mul(b, q))
        terms = [self._term(k, point) for k, point in ((a, p), (b, q)) if k]
        if not terms:
            return INFINITY
        return self._to_point(self._sum_terms(terms))

    # -- internals: affine tuples (x, y) and Lopez-Dahab triples (X, Y, Z), x = X/Z, y = Y/Z^2
    #
    # Accumulators are triples. In CPython a field inversion by binary Euclid costs only
    # about five multiplications on sect163k1 and seven on sect283k1 (interpreter steps
    # dominate both), so an affine addition (I + 2M + S) beats Lopez-Dahab's mixed addition
    # (8M + 5S, and one inversion at the end), and Frobenius maps touch two coordinates
    # instead of three: accumulators are affine, triples with Z = 1 (``affine_accumulator``,
    # the default). Independent additions share one inversion (Montgomery's trick): the
    # generator table's terms are summed as a tree (:meth:`_affine_sum`) and the two terms
    # of ``mul_add`` run as ``chains`` Horner chains in lockstep (:meth:`_horner_lockstep`).
    # Lopez-Dahab (``affine_accumulator=False, chains=0``) stays as the projective path,
    # tested against the affine one, for interpreters where inversion is relatively dearer.

    def _to_point(self, acc: _LD | None) -> Point:
        if acc is None:
            return INFINITY
        x, y = self._to_affine(acc)
        return Point(x, y)

    def _to_affine(self, acc: _LD) -> _Affine:
        f = self.field
        x_, y_, z_ = acc
        if z_ == 1:
            return (x_, y_)
        zi = f.inv(z_)
        return (f.mul(x_, zi), f.mul(y_, f.sqr(zi)))

    def _affine_add(self, p: _Affine | None, q: _Affine | None) -> _Affine | None:
        """Affine ``P + Q`` on tuples (None is infinity)."""
        if p is None:
            return q
        if q is None:
            return p
        r = self.add(Point(*p), Point(*q))
        return None if r.infinity else (r.x, r.y)

    def _affine_frobenius(self, p: _Affine, j: int) -> _Affine:
        sqr = self.field.sqr
        x, y = p
        for _ in range(j):
            x = sqr(x)
            y = sqr(y)
        return (x, y)

    def _term(self, k: int, p: Point) -> tuple[list[int], Sequence[_Affine]]:
        """The tau-NAF digits of ``k`` and the table of ``alpha_u * P`` they index.

        A point seen for the first time (an ephemeral key) gets a width-``window`` table,
        built and dropped. A point seen again recently is taken to be a static key (the
        partner's, the CA's) and gets a wider table (fewer additions per multiplication),
        built once and cached.
        """
        key = (p.x, p.y)
        table = self._table_cache.get(key)
        if table is None:
            with self._cache_lock:
                recurring = key in self._seen
                if not recurring:
                    self._seen[key] = None
                    while len(self._seen) > _SEEN_SIZE:
                        del self._seen[next(iter(self._seen))]
            if not recurring:
                table = self._compute_table(self._tau, *key)
                return self._tau.digits(*self._tau.reduce(k)), table
            table = self._compute_table(self._wide_tau(self._static_window), *key)
            with self._cache_lock:
                self._table_cache[key] = table
                while len(self._table_cache) > _TABLE_CACHE_SIZE:
                    del self._table_cache[next(iter(self._table_cache))]
        tau = self._wide_tau(self._static_window)
        return tau.digits(*tau.reduce(k)), table

    def _wide_tau(self, width: int) -> TauAdic:
        """The recoding for the generator's and static keys' wider tables, built once."""
        tau = self._wide_taus.get(width)
        if tau is None:
            with self._cache_lock:
                tau = self._wide_taus.get(width)
                if tau is None:
                    tau = TauAdic(m=self.m, a=self.a, n=self.n, h=self.h, width=width)
                    self._wide_taus[width] = tau
        return tau

    def _compute_table(self, tau: TauAdic, x: int, y: int) -> list[_Affine]:
        table: list[_Affine | None] = [None] * (1 << (tau.width - 2))
        table[0] = (x, y)
        for u, s1, j1, v1, s2, j2, v2 in tau.plan:
            terms = []
            for sign, j, v in ((s1, j1, v1), (s2, j2, v2)):
                base = table[v >> 1]
                assert base is not None
                term = self._affine_frobenius(base, j)
                if sign < 0:
                    term = (term[0], term[0] ^ term[1])
                terms.append(term)
            point = self._affine_add(terms[0], terms[1])
            if point is None:  # pragma: no cover - alpha_u * P = O is impossible for P of order n
                raise ValueError("precomputation hit infinity: point not in the subgroup")
            table[u >> 1] = point
        return [t for t in table if t is not None]

    def _ld_double(self, acc: _LD) -> _LD | None:
        """Lopez-Dahab doubling with b = 1 (Hankerson et al. 3.2.3)."""
        f = self.field
        mul, sqr = f.mul, f.sqr
        x1, y1, z1 = acc
        if x1 == 0:
            return None
        t1 = sqr(x1)
        t2 = sqr(z1)
        z3 = mul(t1, t2)
        t4 = sqr(t2)
        x3 = sqr(t1) ^ t4
        inner = sqr(y1) ^ t4 ^ (z3 if self.a else 0)
        return (x3, mul(t4, z3) ^ mul(x3, inner), z3)

    def _ld_add_affine(self, acc: _LD | None, q: _Affine) -> _LD | None:
        """``acc + Q`` with ``Q`` affine (mixed Lopez-Dahab addition, 8M + 5S)."""
        if acc is None:
            return (q[0], q[1], 1)
        f = self.field
        mul, sqr = f.mul, f.sqr
        x1, y1, z1 = acc
        x2, y2 = q
        t1 = sqr(z1)
        a_ = mul(y2, t1) ^ y1
        b_ = mul(x2, z1) ^ x1
        if b_ == 0:
            if a_ == 0:
                return self._ld_double(acc)
            return None
        c_ = mul(z1, b_)
        z3 = sqr(c_)
        d_ = mul(x2, z3)
        e_ = mul(a_, c_)
        x3 = sqr(a_) ^ e_ ^ mul(sqr(b_), c_) ^ (z3 if self.a else 0)
        y3 = mul(d_ ^ x3, e_ ^ z3) ^ mul(y2 ^ x2, sqr(z3))
        return (x3, y3, z3)

    def _acc_add_affine(self, acc: _LD | None, q: _Affine) -> _LD | None:
        """``acc + Q`` for an affine accumulator ``(x, y, 1)`` (SEC 1 2.2.2, I + 2M + S)."""
        if acc is None:
            return (q[0], q[1], 1)
        x1, y1, _ = acc
        x2, y2 = q
        dx = x1 ^ x2
        if dx == 0:
            if y1 != y2 or x1 == 0:
                return None  # Q = -acc, or acc = Q is the point of order 2
            doubled = self.double(Point(x1, y1))
            return (doubled.x, doubled.y, 1)
        f = self.field
        lam = f.mul(y1 ^ y2, f.inv(dx))
        x3 = f.sqr(lam) ^ lam ^ dx ^ self.a
        return (x3, f.mul(lam, x1 ^ x3) ^ x3 ^ y1, 1)

    def _frobenius_power(self, k: int) -> Callable[[int], int]:
        """``a -> a^(2^k)``: one squaring for k = 1, a cached byte-table linear map above."""
        if k == 1:
            return self.field.sqr
        return self.field.multi_square(k)

    def _sum_terms(self, terms: list[tuple[list[int], Sequence[_Affine]]]) -> _LD | None:
        """Sum of the terms' expansions, by the method measured fastest for this curve."""
        if self._chains and len(terms) > 1:
            return self._horner_lockstep(terms, self._chains)
        return self._horner(terms)

    def _horner(self, terms: list[tuple[list[int], Sequence[_Affine]]]) -> _LD | None:
        """Sum of ``d_i tau^i alpha_|d_i| P`` over the terms: Horner over the non-zero digit
        positions, applying ``tau^gap`` to (X, Y, Z) with one table lookup chain per gap."""
        add = self._acc_add
        length = max(len(d) for d, _ in terms)
        positions = sorted(
            {i for digits, _ in terms for i, d in enumerate(digits) if d}, reverse=True
        )
        acc: _LD | None = None
        previous = length
        # stop at every non-zero position, and at 0 for the trailing Frobenius maps
        stops = positions if positions and positions[-1] == 0 else [*positions, 0]
        for i in stops:
            gap = previous - i if acc is not None else 0
            while gap:
                step = min(gap, _MAX_FROBENIUS_STEP)
                power = self._frobenius_power(step)
                assert acc is not None
                x_, y_, z_ = acc
                acc = (power(x_), power(y_), z_ if z_ == 1 else power(z_))
                gap -= step
            previous = i
            for digits, table in terms:
                if i < len(digits):
                    d = digits[i]
                    if d > 0:
                        acc = add(acc, table[d >> 1])
                    elif d < 0:
                        x, y = table[(-d) >> 1]
                        acc = add(acc, (x, x ^ y))
        return acc

    def _base_table_row(self, i: int) -> list[_Affine]:
        """Row ``i`` of the generator table: ``tau^i * alpha_u * G`` (grown on demand)."""
        rows = self._base_rows
        if len(rows) <= i:
            tau = self._wide_tau(self._base_window)  # takes the lock itself
            with self._cache_lock:
                if not rows:
                    g = self.generator
                    rows.append(self._compute_table(tau, g.x, g.y))
                while len(rows) <= i:
                    rows.append([self._affine_frobenius(p, 1) for p in rows[-1]])
        return rows[i]

    def _base_sum(self, k: int) -> _LD | None:
        """``k*G`` as the sum of one generator-table entry per non-zero digit (no Frobenius)."""
        tau = self._wide_tau(self._base_window)
        digits = tau.digits(*tau.reduce(k))
        terms: list[_Affine] = []
        for i, d in enumerate(digits):
            if d:
                row = self._base_table_row(i)
                if d > 0:
                    terms.append(row[d >> 1])
                else:
                    x, y = row[(-d) >> 1]
                    terms.append((x, x ^ y))
        total = self._affine_sum(terms)
        return None if total is None else (total[0], total[1], 1)

    def _affine_add_many(self, pairs: list[tuple[_Affine, _Affine]]) -> list[_Affine | None]:
        """``P + Q`` for independent pairs, sharing one inversion (Montgomery's trick).

        One inversion and three multiplications per extra pair replace an inversion each;
        then 2M + S per addition (SEC 1 2.2.2). Pairs with equal x (doubling, or P = -Q)
        go through the general :meth:`add`.
        """
        f = self.field
        mul, sqr = f.mul, f.sqr
        a = self.a
        out: list[_Affine | None] = [None] * len(pairs)
        batch = []
        for j, (p, q) in enumerate(pairs):
            if p[0] == q[0]:
                out[j] = self._affine_add(p, q)  # rare
            else:
                batch.append(j)
        if not batch:
            return out
        # prefix products of the denominators, one inversion, then walk back
        dens = [pairs[j][0][0] ^ pairs[j][1][0] for j in batch]
        prefix = [dens[0]]
        for den in dens[1:]:
            prefix.append(mul(prefix[-1], den))
        running = f.inv(prefix[-1])
        for t in range(len(batch) - 1, -1, -1):
            if t:
                dx_inv = mul(running, prefix[t - 1])
                running = mul(running, dens[t])
            else:
                dx_inv = running
            (x1, y1), (x2, y2) = pairs[batch[t]]
            lam = mul(y1 ^ y2, dx_inv)
            x3 = sqr(lam) ^ lam ^ x1 ^ x2 ^ a
            out[batch[t]] = (x3, mul(lam, x1 ^ x3) ^ x3 ^ y1)
        return out

    def _affine_sum(self, terms: list[_Affine]) -> _Affine | None:
        """The sum of independent affine points, as a tree of pairwise additions whose levels
        share one inversion each (~20 terms: ~5 inversions instead of 20)."""
        points = terms
        while len(points) > 1:
            pairs = [(points[j], points[j + 1]) for j in range(0, len(points) - 1, 2)]
            carry = [points[-1]] if len(points) % 2 else []
            points = [r for r in self._affine_add_many(pairs) if r is not None] + carry
        return points[0] if points else None

    def _horner_lockstep(
        self, terms: list[tuple[list[int], Sequence[_Affine]]], chains: int
    ) -> _LD | None:
        """:meth:`_horner` with affine accumulators in independent chains run in lockstep.

        The non-zero digits of each term are dealt in turn to ``max(1, chains // len(terms))``
        chains (so every chain spans the whole expansion and ends near position 0); each
        chain is its own Horner evaluation, and the additions of one round, one per chain,
        share an inversion (:meth:`_affine_add_many`). The chains' results are summed at
        the end. With inversion at ~5 multiplications in CPython this beats both a single
        affine chain and Lopez-Dahab's 8M + 5S per addition.
        """
        per_term = max(1, chains // len(terms))
        runs: list[list[tuple[int, _Affine]]] = []
        for digits, table in terms:
            dealt: list[list[tuple[int, _Affine]]] = [[] for _ in range(per_term)]
            turn = 0
            for i in range(len(digits) - 1, -1, -1):
                d = digits[i]
                if d:
                    x, y = table[(d if d > 0 else -d) >> 1]
                    dealt[turn].append((i, (x, y) if d > 0 else (x, x ^ y)))
                    turn = (turn + 1) % per_term
            runs += [run for run in dealt if run]
        accs: list[_Affine | None] = [None] * len(runs)
        previous = [0] * len(runs)
        frobenius = self._affine_frobenius_by
        for step in range(max((len(c) for c in runs), default=0)):
            pairs: list[tuple[_Affine, _Affine]] = []
            owners: list[int] = []
            for c, run in enumerate(runs):
                if step < len(run):
                    i, point = run[step]
                    acc = accs[c]
                    if acc is None:
                        accs[c] = point
                    else:
                        pairs.append((frobenius(acc, previous[c] - i), point))
                        owners.append(c)
                    previous[c] = i
            for c, result in zip(owners, self._affine_add_many(pairs), strict=True):
                accs[c] = result
        finals = [frobenius(acc, previous[c]) for c, acc in enumerate(accs) if acc is not None]
        total = self._affine_sum(finals)
        return None if total is None else (total[0], total[1], 1)

    def _affine_frobenius_by(self, p: _Affine, k: int) -> _Affine:
        """``tau^k(P)`` for an affine tuple, by multi-squaring tables."""
        x, y = p
        while k:
            step = min(k, _MAX_FROBENIUS_STEP)
            power = self._frobenius_power(step)
            x, y = power(x), power(y)
            k -= step
        return (x, y)

    # -- encoding (SEC 1 sections 2.3.3 and 2.3.4) and validation (3.2.2.1) -----------------

    def encode_point(self, p: Point) -> bytes:
        """SEC 1 compressed encoding: ``02|03`` then x; the prefix bit is ``y/x``'s bit 0."""
        if p.infinity:
            raise InvalidPoint(f"{self.name}: the point at infinity has no compressed encoding")
        f = self.field
        ybit = 0 if p.x == 0 else f.mul(p.y, f.inv(p.x)) & 1
        return bytes((2 | ybit,)) + p.x.to_bytes(self.point_size - 1)

    def decode_point(self, data: bytes) -> Point:
        """Decode and fully validate a SEC 1 compressed point; raise :class:`InvalidPoint`.

        Checks, in order: length, prefix (02/03 only), x < 2^m, that x is the abscissa of a
        curve point (``Tr(x + a + 1/x^2) = 0``), the curve equation, not infinity, and
        membership of the prime-order subgroup.
        """
        name = self.name
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidPoint(f"{name}: point must be bytes, not {type(data).__name__}")
        data = bytes(data)
        if data[:1] in (b"\x04", b"\x06", b"\x07"):
            raise InvalidPoint(
                f"{name}: point prefix at offset 0 is {data[0]:02x} (uncompressed/hybrid form); "
                "CBKE uses compressed points (02/03) only"
            )
        if len(data) != self.point_size:
            raise InvalidPoint(
                f"{name}: compressed point must be {self.point_size} bytes, got {len(data)}"
            )
        prefix = data[0]
        if prefix not in (2, 3):
            raise InvalidPoint(
                f"{name}: point prefix at offset 0 is {prefix:02x}, expected 02 or 03"
            )
        x = int.from_bytes(data[1:])
        f = self.field
        if not f.is_element(x):
            raise InvalidPoint(f"{name}: x-coordinate is not a field element (x >= 2^{self.m})")
        if x == 0:
            # The only point with x = 0 is (0, sqrt(b)) = (0, 1), of order 2.
            raise InvalidPoint(
                f"{name}: x = 0 is the point of order 2, not in the prime-order subgroup"
            )
        beta = x ^ self.a ^ f.sqr(f.inv(x))  # b = 1
        if f.trace(beta):
            raise InvalidPoint(
                f"{name}: x is not the x-coordinate of a curve point (Tr(x + a + b/x^2) = 1)"
            )
        z = f.half_trace(beta)
        if (z & 1) != (prefix & 1):
            z ^= 1
        p = Point(x, f.mul(x, z))
        if not self.is_on_curve(p):  # pragma: no cover - decompression guarantees it
            raise InvalidPoint(f"{name}: decompressed point is not on the curve")
        if not self.in_subgroup(p):
            raise InvalidPoint(f"{name}: point is not in the prime-order subgroup (n*P != O)")
        return p

    def in_subgroup(self, p: Point) -> bool:
        """Whether an on-curve point ``P`` is in the subgroup of prime order ``n``, cheaply.

        E(GF(2^m)) is cyclic of order h*n with h = 2^e, so the subgroup is h*E. A point is in
        2*E iff Tr(x) = Tr(a) (Seroussi; Knudsen's point halving); then one of its halves
        (u, v), u = sqrt(y + x (lambda + 1)) with lambda^2 + lambda = x + a, is taken and
        tested again, e times in all. Equivalent to ``n*P = O`` (tested against it).
        """
        if p.infinity:
            return False
        f = self.field
        tr_a = f.trace(self.a)
        x, y = p.x, p.y
        for step in range(self._cofactor_log2):
            if f.trace(x) != tr_a:
                return False
            if step + 1 == self._cofactor_log2:
                break
            lam = f.half_trace(x ^ self.a)
            u = f.sqrt(y ^ f.mul(x, lam ^ 1))
            if u == 0:
                return False
            x, y = u, f.mul(u, lam) ^ f.sqr(u)
        return True

    def order_check(self, p: Point) -> bool:
        """Whether ``n*P = O`` and ``P != O``, by the slow reference multiplication."""
        return not p.infinity and self.mul_naive(self.n, p).infinity


def _rebuild_curve(params: dict[str, Any]) -> Curve:
    """Unpickle a curve: the module's own instance when the parameters match."""
    for curve in (SECT163K1, SECT283K1):
        if curve._params == params:
            return curve
    return Curve(**params)


#: SEC 2 section 3.2.1: sect163k1, a = 1, b = 1, cofactor 2 (CBKE suite 1).
SECT163K1 = Curve(
    name="sect163k1",
    m=163,
    middle_terms=(7, 6, 3),
    a=1,
    gx=0x02FE13C0537BBC11ACAA07D793DE4E6D5E5C94EEE8,
    gy=0x0289070FB05D38FF58321F2E800536D538CCDAA3D9,
    n=0x04000000000000000000020108A2E0CC0D99F8A5EF,
    h=2,
)

#: SEC 2 section 3.4.1: sect283k1, a = 0, b = 1, cofactor 4 (CBKE suite 2).
SECT283K1 = Curve(
    name="sect283k1",
    m=283,
    middle_terms=(12, 7, 5),
    a=0,
    gx=0x0503213F78CA44883F1A3B8162F188E553CD265F23C1567A16876913B0C2AC2458492836,
    gy=0x01CCDA380F1C9E318D90F95D07E5426FE87E45C0E8184698E45962364E34116177DD2259,
    n=0x01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFE9AE2ED07577265DFF7F94451E061E163C61,
    h=4,
)
