"""Binary field GF(2^m) in polynomial basis, elements as Python ints (bit i = coefficient of z^i).

SEC 1 v2 section 2.1.2 / SEC 2 v2 section 3.1: the fields of sect163k1 and sect283k1 are defined
by the pentanomials z^163 + z^7 + z^6 + z^3 + 1 and z^283 + z^12 + z^7 + z^5 + 1.
"""

from __future__ import annotations

__all__ = ["BinaryField"]


def _spread_byte(value: int) -> int:
    """Insert a zero bit after each bit of ``value`` (the square of a degree-7 polynomial)."""
    out = 0
    for bit in range(8):
        if value >> bit & 1:
            out |= 1 << (2 * bit)
    return out


# Squaring table: for each byte ``v``, the low and the high byte of v(z)^2 (SEC 1's
# squaring is linear, so a byte-wise table plus an interleave does a whole element).
_SQUARE_LOW = bytes(_spread_byte(v & 0x0F) for v in range(256))
_SQUARE_HIGH = bytes(_spread_byte(v >> 4) for v in range(256))


class BinaryField:
    """GF(2^m) reduced by ``z^m + sum(z^k for k in low_terms)`` where ``0 in low_terms``."""

    __slots__ = (
        "_byte_len",
        "_half_trace_basis",
        "_mask",
        "_shifts",
        "_sqrt_z",
        "_trace_mask",
        "m",
        "modulus",
    )

    def __init__(self, m: int, low_terms: tuple[int, ...]) -> None:
        if 0 not in low_terms or max(low_terms) * 2 >= m:
            raise ValueError("the reduction needs a polynomial with small middle terms")
        self.m = m
        self.modulus = (1 << m) | sum(1 << k for k in low_terms)
        self._mask = (1 << m) - 1
        self._shifts = tuple(sorted(low_terms))
        self._byte_len = (m + 7) // 8
        # sqrt(z) = z^(2^(m-1)); sqrt(a) = even part + sqrt(z) * odd part.
        self._sqrt_z = self.pow2k(2, m - 1)
        # Tr(a) = parity of a & trace_mask: Tr is linear, Tr(z^i) computed once per basis element.
        trace_mask = 0
        for i in range(m):
            if self._trace_slow(1 << i):
                trace_mask |= 1 << i
        self._trace_mask = trace_mask
        # Half-trace is linear too (m odd): H(a) = xor of H(z^i) over the set bits of a.
        self._half_trace_basis = tuple(self._half_trace_slow(1 << i) for i in range(m))

    # -- reduction and arithmetic ---------------------------------------------------------

    def reduce(self, c: int) -> int:
        """Reduce a polynomial of degree < 2m modulo the field polynomial."""
        m = self.m
        mask = self._mask
        shifts = self._shifts
        while c >> m:
            hi = c >> m
            c &= mask
            for s in shifts:
                c ^= hi << s
        return c

    def mul(self, a: int, b: int) -> int:
        """Product ``a * b`` (4-bit windowed carry-less multiplication, then reduction)."""
        if a.bit_length() < b.bit_length():
            a, b = b, a
        a2 = a << 1
        a3 = a2 ^ a
        a4 = a << 2
        table = (
            0,
            a,
            a2,
            a3,
            a4,
            a4 ^ a,
            a4 ^ a2,
            a4 ^ a3,
            a << 3,
            (a << 3) ^ a,
            (a << 3) ^ a2,
            (a << 3) ^ a3,
            (a << 3) ^ a4,
            (a << 3) ^ a4 ^ a,
            (a << 3) ^ a4 ^ a2,
            (a << 3) ^ a4 ^ a3,
        )
        r = 0
        shift = (b.bit_length() + 3) & ~3
        while shift:
            shift -= 4
            r = (r << 4) ^ table[(b >> shift) & 15]
        return self.reduce(r)

    def sqr(self, a: int) -> int:
        """Square ``a * a`` by the byte squaring table (squaring is linear over GF(2))."""
        data = a.to_bytes(self._byte_len)
        out = bytearray(2 * len(data))
        out[0::2] = data.translate(_SQUARE_HIGH)
        out[1::2] = data.translate(_SQUARE_LOW)
        return self.reduce(int.from_bytes(out))

    def pow2k(self, a: int, k: int) -> int:
        """``a^(2^k)`` (k squarings)."""
        for _ in range(k):
            a = self.sqr(a)
        return a

    def inv(self, a: int) -> int:
        """Multiplicative inverse of a non-zero ``a`` (binary extended Euclid on polynomials)."""
        if a == 0:
            raise ZeroDivisionError("0 has no inverse in GF(2^m)")
        u, v = a, self.modulus
        g1, g2 = 1, 0
        while u != 1:
            j = u.bit_length() - v.bit_length()
            if j < 0:
                u, v = v, u
                g1, g2 = g2, g1
                j = -j
            u ^= v << j
            g1 ^= g2 << j
        return self.reduce(g1)

    def sqrt(self, a: int) -> int:
        """Square root ``a^(2^(m-1))`` from the even and odd coefficient halves."""
        even = odd = 0
        bit = 0
        while a:
            if a & 1:
                even |= 1 << bit
            if a & 2:
                odd |= 1 << bit
            a >>= 2
            bit += 1
        return even ^ self.mul(self._sqrt_z, odd)

    def trace(self, a: int) -> int:
        """Absolute trace ``Tr(a) = a + a^2 + ... + a^(2^(m-1))`` (0 or 1)."""
        return (a & self._trace_mask).bit_count() & 1

    def half_trace(self, a: int) -> int:
        """Half-trace ``H(a) = sum a^(2^(2i)), i = 0..(m-1)/2``; solves ``z^2 + z = a + Tr(a)``."""
        basis = self._half_trace_basis
        h = 0
        i = 0
        while a:
            if a & 1:
                h ^= basis[i]
            a >>= 1
            i += 1
        return h

    def _trace_slow(self, a: int) -> int:
        t = a
        for _ in range(self.m - 1):
            a = self.sqr(a)
            t ^= a
        return t

    def _half_trace_slow(self, a: int) -> int:
        h = a
        for _ in range((self.m - 1) // 2):
            a = self.sqr(self.sqr(a))
            h ^= a
        return h

    def is_element(self, a: int) -> bool:
        """Whether ``a`` is a reduced field element (0 <= a < 2^m)."""
        return 0 <= a <= self._mask
