"""tau-adic recoding of scalars for Koblitz curves (Solinas 2000; Hankerson et al. 3.4).

On a Koblitz curve over GF(2^m) the Frobenius map tau(x, y) = (x^2, y^2) satisfies
tau^2 - mu*tau + 2 = 0 with mu = (-1)^(1-a), so a scalar ``k`` can be rewritten as a short
expansion ``sum d_i tau^i`` and ``k*P`` computed with Frobenius maps (squarings) instead of
doublings. Elements of Z[tau] are pairs ``(c0, c1)`` meaning ``c0 + c1*tau``.

* :meth:`TauAdic.reduce`: Solinas' partial reduction of ``k`` modulo
  ``delta = (tau^m - 1)/(tau - 1)`` (Algorithms 3.61-3.63). ``delta`` kills exactly the points
  of the prime-order subgroup, so the result is only valid for such points.
* :meth:`TauAdic.digits`: the width-w tau-NAF (Algorithm 3.69) with digit values
  ``alpha_u = u mods tau^w``; :attr:`TauAdic.plan` says how to compute every ``alpha_u * P``
  from ``P`` with one point addition each.
"""

from __future__ import annotations

import itertools

__all__ = ["Element", "TauAdic"]

Element = tuple[int, int]
#: One precomputation step: alpha_u = s1 * tau^j1 * alpha_v1 + s2 * tau^j2 * alpha_v2.
PlanStep = tuple[int, int, int, int, int, int, int]

#: The plans :meth:`TauAdic._make_plan` finds for width 7 (the generator's and static keys'
#: tables on both curves), by (mu, width): the search takes ~0.2 s per curve, paid by every
#: process's first CBKE or signature; a plan depends on mu and the width only.
#: tests/cbke_hazmat/test_tnaf.py searches again and compares.
_PLANS: dict[tuple[int, int], tuple[PlanStep, ...]] = {
    (1, 7): (
        (15, -1, 0, 1, 1, 4, 1),
        (17, 1, 0, 1, 1, 4, 1),
        (21, 1, 1, 1, -1, 0, 17),
        (23, 1, 1, 1, -1, 0, 15),
        (25, -1, 3, 1, -1, 0, 15),
        (27, 1, 1, 17, 1, 0, 21),
        (29, 1, 0, 1, -1, 2, 17),
        (31, 1, 0, 1, 1, 1, 21),
        (33, -1, 0, 21, 1, 1, 25),
        (35, -1, 0, 1, 1, 2, 1),
        (37, -1, 0, 1, 1, 1, 1),
        (39, 1, 0, 1, 1, 1, 1),
        (41, 1, 1, 15, -1, 0, 17),
        (43, -1, 0, 15, 1, 1, 15),
        (45, 1, 1, 17, 1, 0, 39),
        (47, -1, 1, 1, -1, 0, 43),
        (49, -1, 0, 1, 1, 1, 35),
        (51, 1, 0, 1, 1, 1, 35),
        (53, 1, 1, 1, 1, 0, 15),
        (55, 1, 1, 1, 1, 0, 17),
        (57, -1, 0, 1, 1, 1, 15),
        (59, 1, 0, 1, 1, 1, 15),
        (61, 1, 1, 1, 1, 0, 23),
        (63, 1, 1, 1, 1, 0, 25),
        (3, 1, 1, 1, -1, 0, 35),
        (5, -1, 0, 1, 1, 1, 17),
        (7, 1, 0, 1, 1, 1, 17),
        (9, -1, 1, 1, 1, 0, 47),
        (11, 1, 1, 1, -1, 0, 27),
        (13, 1, 1, 1, -1, 0, 25),
        (19, 1, 0, 1, 1, 1, 51),
    ),
    (-1, 7): (
        (15, -1, 0, 1, 1, 4, 1),
        (17, 1, 0, 1, 1, 4, 1),
        (21, -1, 1, 1, -1, 0, 17),
        (23, -1, 1, 1, -1, 0, 15),
        (25, 1, 3, 1, -1, 0, 15),
        (27, -1, 1, 17, 1, 0, 21),
        (29, 1, 0, 1, -1, 2, 17),
        (31, 1, 0, 1, -1, 1, 21),
        (33, -1, 0, 21, -1, 1, 25),
        (35, -1, 0, 1, 1, 2, 1),
        (37, -1, 0, 1, -1, 1, 1),
        (39, 1, 0, 1, -1, 1, 1),
        (41, -1, 1, 15, -1, 0, 17),
        (43, -1, 0, 15, -1, 1, 15),
        (45, -1, 1, 17, 1, 0, 39),
        (47, 1, 1, 1, -1, 0, 43),
        (49, -1, 0, 1, -1, 1, 35),
        (51, 1, 0, 1, -1, 1, 35),
        (53, -1, 1, 1, 1, 0, 15),
        (55, -1, 1, 1, 1, 0, 17),
        (57, -1, 0, 1, -1, 1, 15),
        (59, 1, 0, 1, -1, 1, 15),
        (61, -1, 1, 1, 1, 0, 23),
        (63, -1, 1, 1, 1, 0, 25),
        (3, -1, 1, 1, -1, 0, 35),
        (5, -1, 0, 1, -1, 1, 17),
        (7, 1, 0, 1, -1, 1, 17),
        (9, 1, 1, 1, 1, 0, 47),
        (11, -1, 1, 1, -1, 0, 27),
        (13, -1, 1, 1, -1, 0, 25),
        (19, 1, 0, 1, -1, 1, 51),
    ),
}


class TauAdic:
    """Scalar recoding for one Koblitz curve (``a`` in {0, 1}, field degree ``m``, order ``n``)."""

    def __init__(self, *, m: int, a: int, n: int, h: int, width: int) -> None:
        self.mu = mu = 1 if a == 1 else -1
        self.width = width
        t_m = self.tau_power(m)
        # delta = (tau^m - 1) / (tau - 1); N(tau - 1) = #E(F_2) = h, N(delta) = n.
        num = self.mul((t_m[0] - 1, t_m[1]), self.conj((-1, 1)))
        if num[0] % h or num[1] % h:
            raise ValueError("tau - 1 does not divide tau^m - 1 (wrong cofactor?)")
        self.delta: Element = (num[0] // h, num[1] // h)
        if self.norm(self.delta) != n:
            raise ValueError("N(delta) != n: curve parameters inconsistent")
        self.n = n
        # k / delta = k * conj(delta) / n
        self._s = self.conj(self.delta)
        # t_w = 2 U_{w-1} U_w^{-1} mod 2^w (Hankerson Theorem 3.67), tau^w = U_w tau - 2 U_{w-1}.
        u_prev, u_cur = 0, 1
        for _ in range(width - 1):
            u_prev, u_cur = u_cur, mu * u_cur - 2 * u_prev
        modulus = 1 << width
        self.t_w = 2 * u_prev * pow(u_cur, -1, modulus) % modulus
        tau_w = self.tau_power(width)
        self.alphas: dict[int, Element] = {
            u: self._remainder(u, tau_w) for u in range(1, 1 << (width - 1), 2)
        }
        known = _PLANS.get((mu, width))
        self.plan = list(known) if known is not None else self._make_plan()

    # -- arithmetic in Z[tau] ---------------------------------------------------------------

    def mul(self, x: Element, y: Element) -> Element:
        """``x * y`` using tau^2 = mu*tau - 2."""
        return (
            x[0] * y[0] - 2 * x[1] * y[1],
            x[0] * y[1] + x[1] * y[0] + self.mu * x[1] * y[1],
        )

    def conj(self, x: Element) -> Element:
        """The conjugate (tau -> mu - tau)."""
        return (x[0] + self.mu * x[1], -x[1])

    def norm(self, x: Element) -> int:
        """``N(x) = x * conj(x)``, a non-negative integer."""
        return x[0] * x[0] + self.mu * x[0] * x[1] + 2 * x[1] * x[1]

    def tau_power(self, k: int) -> Element:
        """``tau^k``."""
        c0, c1 = 1, 0
        for _ in range(k):
            c0, c1 = -2 * c1, c0 + self.mu * c1
        return (c0, c1)

    def _round(self, num0: int, num1: int, den: int) -> Element:
        """Round ``(num0 + num1 tau) / den`` to a nearby element (Algorithm 3.63), in integers."""
        mu = self.mu
        f0 = (2 * num0 + den) // (2 * den)
        f1 = (2 * num1 + den) // (2 * den)
        e0 = num0 - f0 * den  # eta_i * den, with eta_i in [-1/2, 1/2)
        e1 = num1 - f1 * den
        h0 = h1 = 0
        eta = 2 * e0 + mu * e1
        if eta >= den:
            if e0 - 3 * mu * e1 < -den:
                h1 = mu
            else:
                h0 = 1
        elif e0 + 4 * mu * e1 >= 2 * den:
            h1 = mu
        if eta < -den:
            if e0 - 3 * mu * e1 >= den:
                h1 = -mu
            else:
                h0 = -1
        elif e0 + 4 * mu * e1 < -2 * den:
            h1 = -mu
        return (f0 + h0, f1 + h1)

    def _remainder(self, k: int, divisor: Element) -> Element:
        """``k mods divisor``: ``k - divisor * round(k / divisor)``."""
        c = self.conj(divisor)
        q = self._round(k * c[0], k * c[1], self.norm(divisor))
        dq = self.mul(divisor, q)
        return (k - dq[0], -dq[1])

    def reduce(self, k: int) -> Element:
        """``rho = k partmod delta`` (Algorithm 3.62 with exact rounding): ``rho*P = k*P``."""
        s0, s1 = self._s
        q = self._round(k * s0, k * s1, self.n)
        dq = self.mul(self.delta, q)
        return (k - dq[0], -dq[1])

    # -- recoding ---------------------------------------------------------------------------

    def digits(self, r0: int, r1: int) -> list[int]:
        """Width-w tau-NAF of ``r0 + r1 tau``, least significant first; digit ``+-u`` means
        ``+-alpha_u``, 0 means none (Algorithm 3.69)."""
        mu = self.mu
        t_w = self.t_w
        modulus = 1 << self.width
        half = modulus >> 1
        alphas = self.alphas
        out: list[int] = []
        append = out.append
        while r0 or r1:
            if r0 & 1:
                u = (r0 + r1 * t_w) % modulus
                if u >= half:
                    u -= modulus
                    b, g = alphas[-u]
                    r0 += b
                    r1 += g
                else:
                    b, g = alphas[u]
                    r0 -= b
                    r1 -= g
                append(u)
            else:
                append(0)
            half_r0 = r0 >> 1  # r0 is even here
            r0, r1 = r1 + mu * half_r0, -half_r0
        return out

    def value(self, digits: list[int]) -> Element:
        """The element an expansion stands for (for tests)."""
        total: Element = (0, 0)
        power: Element = (1, 0)
        for d in digits:
            if d:
                a = self.alphas[abs(d)]
                sign = 1 if d > 0 else -1
                term = self.mul(power, a)
                total = (total[0] + sign * term[0], total[1] + sign * term[1])
            power = self.mul(power, (0, 1))
        return total

    def _make_plan(self) -> list[PlanStep]:
        """Steps computing each alpha_u (u >= 3) with one addition of tau-powers of known ones.

        Search over the already-known alphas (initially alpha_1 = 1), tau exponents up to
        w + 1 and signs; the cheapest (fewest squarings) combination wins. Repeats until
        every alpha is reachable.
        """
        known: dict[int, Element] = {1: (1, 0)}
        powers = [self.tau_power(j) for j in range(self.width + 2)]
        plan: list[PlanStep] = []
        missing = [u for u in self.alphas if u != 1]
        signs = ((1, 1), (1, -1), (-1, 1), (-1, -1))
        while missing:
            progress = False
            for u in list(missing):
                target = self.alphas[u]
                best: tuple[int, PlanStep] | None = None
                for (v1, e1), (v2, e2) in itertools.product(list(known.items()), repeat=2):
                    for j1, j2 in itertools.product(range(len(powers)), repeat=2):
                        if best is not None and j1 + j2 >= best[0]:
                            continue
                        x = self.mul(powers[j1], e1)
                        y = self.mul(powers[j2], e2)
                        for s1, s2 in signs:
                            if (s1 * x[0] + s2 * y[0], s1 * x[1] + s2 * y[1]) == target:
                                best = (j1 + j2, (u, s1, j1, v1, s2, j2, v2))
                                break
                if best is not None:
                    plan.append(best[1])
                    known[u] = target
                    missing.remove(u)
                    progress = True
            if not progress:
                raise ValueError(f"no one-addition plan for alpha_{missing[0]}")
        return plan
