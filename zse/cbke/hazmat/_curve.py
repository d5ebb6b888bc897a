"""Koblitz curves ``y^2 + xy = x^3 + a x^2 + 1`` over GF(2^m): points, codec, scalar multiplication.

SEC 1 v2 sections 2.2.2 (group law), 2.3.3/2.3.4 (compressed point encoding), 3.2.2.1
(public key validation); SEC 2 v2 sections 3.2.1 (sect163k1) and 3.4.1 (sect283k1).
"""

from __future__ import annotations

from dataclasses import dataclass

from zse.cbke.hazmat._field import BinaryField
from zse.errors import InvalidPoint

__all__ = ["INFINITY", "Curve", "Point"]


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


class Curve:
    """A Koblitz curve ``E: y^2 + xy = x^3 + a x^2 + 1`` (a in {0, 1}) with a prime subgroup."""

    def __init__(
        self,
        *,
        name: str,
        m: int,
        low_terms: tuple[int, ...],
        a: int,
        gx: int,
        gy: int,
        n: int,
        h: int,
    ) -> None:
        self.name = name
        self.field = BinaryField(m, low_terms)
        self.m = m
        self.a = a
        self.b = 1
        self.n = n
        self.h = h
        self.scalar_size = (n.bit_length() + 7) // 8
        self.point_size = 1 + (m + 7) // 8
        self.generator = Point(gx, gy)
        if not self.is_on_curve(self.generator):
            raise ValueError(f"{name}: generator is not on the curve")

    def __repr__(self) -> str:
        return f"<Curve {self.name}>"

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
        """``k*P`` by affine double-and-add (the slow reference; any integer ``k``)."""
        if k < 0:
            return self.mul_naive(-k, self.negate(p))
        r = INFINITY
        for bit in bin(k)[2:]:
            r = self.double(r)
            if bit == "1":
                r = self.add(r, p)
        return r

    def mul(self, k: int, p: Point) -> Point:
        """``k*P`` for ``P`` in the prime-order subgroup (``k`` is reduced modulo ``n``)."""
        return self.mul_naive(k % self.n, p)

    def mul_base(self, k: int) -> Point:
        """``k*G``."""
        return self.mul(k, self.generator)

    def mul_add(self, a: int, p: Point, b: int, q: Point) -> Point:
        """``a*P + b*Q`` for subgroup points (ECMQV's core)."""
        return self.add(self.mul(a, p), self.mul(b, q))

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
        if len(data) != self.point_size:
            raise InvalidPoint(
                f"{name}: compressed point must be {self.point_size} bytes, got {len(data)}"
            )
        prefix = data[0]
        if prefix not in (2, 3):
            what = "uncompressed (04)" if prefix == 4 else f"{prefix:#04x}"
            raise InvalidPoint(f"{name}: point prefix at offset 0 is {what}, expected 02 or 03")
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
        """Whether ``n*P = O`` for a point ``P`` on the curve (not infinity)."""
        return self.mul_naive(self.n, p).infinity and not p.infinity


#: SEC 2 section 3.2.1: sect163k1, a = 1, b = 1, cofactor 2 (CBKE suite 1).
SECT163K1 = Curve(
    name="sect163k1",
    m=163,
    low_terms=(7, 6, 3, 0),
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
    low_terms=(12, 7, 5, 0),
    a=0,
    gx=0x0503213F78CA44883F1A3B8162F188E553CD265F23C1567A16876913B0C2AC2458492836,
    gy=0x01CCDA380F1C9E318D90F95D07E5426FE87E45C0E8184698E45962364E34116177DD2259,
    n=0x01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFE9AE2ED07577265DFF7F94451E061E163C61,
    h=4,
)
