"""Binary field GF(2^m) in polynomial basis, elements as Python ints (bit i = coefficient of z^i).

SEC 1 v2 section 2.1.2 / SEC 2 v2 section 3.1: the fields of sect163k1 and sect283k1 are defined
by the pentanomials z^163 + z^7 + z^6 + z^3 + 1 and z^283 + z^12 + z^7 + z^5 + 1.

Speed in pure Python comes from doing as much per interpreted step as the int type allows:
multiplication is a 4-bit-window carry-less product consumed a byte at a time, squaring is a
byte table plus an interleave done by ``bytes.translate`` and slice assignment, reduction uses
the pentanomial's shape (two folds of shifts and xors), and the linear maps (square root,
half-trace, repeated squaring) are tables indexed by the bytes of the input.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["BinaryField", "LinearMap"]


def _spread_nibble(value: int) -> int:
    """Insert a zero bit after each bit of a 4-bit ``value`` (its square as a polynomial)."""
    out = 0
    for bit in range(4):
        if value >> bit & 1:
            out |= 1 << (2 * bit)
    return out


# Squaring table: for each byte ``v``, the high and the low byte of v(z)^2.
_SQUARE_LOW = bytes(_spread_nibble(v & 0x0F) for v in range(256))
_SQUARE_HIGH = bytes(_spread_nibble(v >> 4) for v in range(256))
# Each byte split into its two 4-bit windows (for the multiplication loop).
_HIGH_NIBBLE = bytes(v >> 4 for v in range(256))
_LOW_NIBBLE = bytes(v & 15 for v in range(256))


class LinearMap:
    """A GF(2)-linear map on field elements, applied by per-byte lookup tables.

    ``images[i]`` is the image of ``z^i``; :meth:`__call__` xors one table entry per input
    byte (for 163 bits: 21 lookups), which beats bit-by-bit evaluation by an order of magnitude.
    """

    __slots__ = ("_byte_len", "_tables")

    def __init__(self, images: list[int]) -> None:
        byte_len = (len(images) + 7) // 8
        self._byte_len = byte_len
        tables: list[list[int]] = []
        # table for byte position p (0 = most significant byte of the big-endian encoding)
        for p in range(byte_len):
            low_bit = 8 * (byte_len - 1 - p)
            basis = [images[low_bit + b] if low_bit + b < len(images) else 0 for b in range(8)]
            table = [0] * 256
            for v in range(1, 256):
                low = v & -v
                table[v] = table[v ^ low] ^ basis[low.bit_length() - 1]
            tables.append(table)
        self._tables = tables

    def __call__(self, a: int) -> int:
        r = 0
        for table, byte in zip(self._tables, a.to_bytes(self._byte_len), strict=True):
            r ^= table[byte]
        return r


def _make_reduce(m: int, shifts: tuple[int, int, int]) -> Callable[[int], int]:
    s1, s2, s3 = shifts
    mask = (1 << m) - 1

    def reduce(c: int) -> int:
        """Reduce a polynomial of degree < 2m (two folds suffice for small middle terms)."""
        hi = c >> m
        c = (c & mask) ^ hi ^ (hi << s1) ^ (hi << s2) ^ (hi << s3)
        hi = c >> m
        return (c & mask) ^ hi ^ (hi << s1) ^ (hi << s2) ^ (hi << s3)

    return reduce


def _make_mul(m: int, shifts: tuple[int, int, int]) -> Callable[[int, int], int]:
    s1, s2, s3 = shifts
    mask = (1 << m) - 1
    byte_len = (m + 7) // 8

    def mul(a: int, b: int) -> int:
        """``a * b``: 4-bit window table of ``a``; ``b`` consumed a byte (two windows) per step."""
        a2 = a << 1
        a3 = a2 ^ a
        a4 = a << 2
        a5 = a4 ^ a
        a6 = a4 ^ a2
        a7 = a4 ^ a3
        a8 = a << 3
        t: tuple[int, ...] = (0, a, a2, a3, a4, a5, a6, a7, a8, a8 ^ a, a8 ^ a2, a8 ^ a3)
        t += (a8 ^ a4, a8 ^ a5, a8 ^ a6, a8 ^ a7)
        r = 0
        data = b.to_bytes(byte_len)
        for high, low in zip(
            data.translate(_HIGH_NIBBLE), data.translate(_LOW_NIBBLE), strict=True
        ):
            r = (r << 8) ^ (t[high] << 4) ^ t[low]
        hi = r >> m
        r = (r & mask) ^ hi ^ (hi << s1) ^ (hi << s2) ^ (hi << s3)
        hi = r >> m
        return (r & mask) ^ hi ^ (hi << s1) ^ (hi << s2) ^ (hi << s3)

    return mul


def _make_sqr(m: int, shifts: tuple[int, int, int]) -> Callable[[int], int]:
    s1, s2, s3 = shifts
    mask = (1 << m) - 1
    byte_len = (m + 7) // 8
    out_len = 2 * byte_len
    high = _SQUARE_HIGH
    low = _SQUARE_LOW

    def sqr(a: int) -> int:
        """``a^2``: spread every byte through the squaring table, then reduce."""
        data = a.to_bytes(byte_len)
        out = bytearray(out_len)
        out[0::2] = data.translate(high)
        out[1::2] = data.translate(low)
        r = int.from_bytes(out)
        hi = r >> m
        r = (r & mask) ^ hi ^ (hi << s1) ^ (hi << s2) ^ (hi << s3)
        hi = r >> m
        return (r & mask) ^ hi ^ (hi << s1) ^ (hi << s2) ^ (hi << s3)

    return sqr


class BinaryField:
    """GF(2^m) reduced by the pentanomial ``z^m + z^k3 + z^k2 + z^k1 + 1``.

    ``mul``, ``sqr`` and ``reduce`` are plain functions (closures) for speed: call them as
    ``field.mul(a, b)``. Operands must be reduced elements (``0 <= a < 2^m``).
    """

    mul: Callable[[int, int], int]
    sqr: Callable[[int], int]
    reduce: Callable[[int], int]

    def __init__(self, m: int, middle_terms: tuple[int, int, int]) -> None:
        if m % 2 == 0 or max(middle_terms) * 2 >= m:
            raise ValueError("needs odd m and a pentanomial with small middle terms")
        self.m = m
        self.modulus = (1 << m) | (1 << middle_terms[0]) | (1 << middle_terms[1])
        self.modulus |= (1 << middle_terms[2]) | 1
        self.byte_len = (m + 7) // 8
        self._mask = (1 << m) - 1
        self.mul = _make_mul(m, middle_terms)
        self.sqr = _make_sqr(m, middle_terms)
        self.reduce = _make_reduce(m, middle_terms)
        self._sqrt_map: LinearMap | None = None
        self._half_trace_map: LinearMap | None = None
        self._trace_mask: int | None = None
        self._multi_square: dict[int, LinearMap] = {}

    def _compose(self, outer: list[int], inner: list[int]) -> list[int]:
        """Images of ``outer o inner`` from the images of two linear maps."""
        apply = LinearMap(outer)
        return [apply(v) for v in inner]

    def _build_half_trace(self) -> None:
        """Half-trace and trace tables: H = sum of Q^j, j < (m+1)/2, Q(a) = a^4.

        Built by binary doubling over maps (S_2k = S_k + S_k o Q^k), ~2 log2(m) compositions
        instead of m^2 / 2 squarings; then Tr(a) = H(a)^2 + H(a) + a.
        """
        m = self.m
        sqr = self.sqr
        identity = [1 << i for i in range(m)]
        quad = [sqr(sqr(v)) for v in identity]  # Q
        count = (m + 1) // 2
        s_k, q_k = identity, quad  # S_1, Q^1
        for bit in bin(count)[3:]:
            s_k = [x ^ y for x, y in zip(s_k, self._compose(s_k, q_k), strict=True)]
            q_k = self._compose(q_k, q_k)
            if bit == "1":
                s_k = [x ^ y for x, y in zip(s_k, q_k, strict=True)]
                q_k = self._compose(quad, q_k)
        self._half_trace_map = LinearMap(s_k)
        mask = 0
        for i, h in enumerate(s_k):
            if sqr(h) ^ h ^ (1 << i):
                mask |= 1 << i
        self._trace_mask = mask

    @property
    def trace_mask(self) -> int:
        """The elements ``z^i`` of trace 1, as a bit mask: ``Tr(a) = parity(a & mask)``."""
        if self._trace_mask is None:
            self._build_half_trace()
        assert self._trace_mask is not None
        return self._trace_mask

    def pow2k(self, a: int, k: int) -> int:
        """``a^(2^k)`` by ``k`` squarings."""
        sqr = self.sqr
        for _ in range(k):
            a = sqr(a)
        return a

    def multi_square(self, k: int) -> LinearMap:
        """The linear map ``a -> a^(2^k)`` as byte tables (built on first use, then cached)."""
        table = self._multi_square.get(k)
        if table is None:
            table = LinearMap([self.pow2k(1 << i, k) for i in range(self.m)])
            self._multi_square[k] = table
        return table

    def inv(self, a: int) -> int:
        """Multiplicative inverse of a non-zero ``a`` (binary extended Euclid on polynomials).

        Invariants ``g1 * a = u`` and ``g2 * a = v`` (mod the modulus); the larger of u, v is
        reduced by a shifted copy of the other until one of them is 1. Two loops instead of
        swaps, degrees kept in variables: in CPython the interpreter steps are the cost.
        """
        if a == 0:
            raise ZeroDivisionError("0 has no inverse in GF(2^m)")
        u, v = a, self.modulus
        g1, g2 = 1, 0
        du, dv = u.bit_length(), v.bit_length()
        while True:
            while du >= dv:
                j = du - dv
                u ^= v << j
                g1 ^= g2 << j
                du = u.bit_length()
            if u == 1:
                return self.reduce(g1)
            while dv >= du:
                j = dv - du
                v ^= u << j
                g2 ^= g1 << j
                dv = v.bit_length()
            if v == 1:
                return self.reduce(g2)

    def sqrt(self, a: int) -> int:
        """Square root ``a^(2^(m-1))``, linear: sqrt(z^2i) = z^i, sqrt(z^2i+1) = z^i sqrt(z)."""
        if self._sqrt_map is None:
            root_z = self.pow2k(2, self.m - 1)
            self._sqrt_map = LinearMap(
                [
                    1 << (i >> 1) if i % 2 == 0 else self.mul(1 << (i >> 1), root_z)
                    for i in range(self.m)
                ]
            )
        return self._sqrt_map(a)

    def trace(self, a: int) -> int:
        """Absolute trace ``Tr(a) = a + a^2 + ... + a^(2^(m-1))`` (0 or 1)."""
        return (a & self.trace_mask).bit_count() & 1

    def half_trace(self, a: int) -> int:
        """Half-trace ``H(a) = sum a^(2^(2i)), i = 0..(m-1)/2``; solves ``z^2 + z = a + Tr(a)``."""
        if self._half_trace_map is None:
            self._build_half_trace()
            assert self._half_trace_map is not None
        return self._half_trace_map(a)

    def is_element(self, a: int) -> bool:
        """Whether ``a`` is a reduced field element (0 <= a < 2^m)."""
        return 0 <= a <= self._mask
