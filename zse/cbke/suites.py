"""The two CBKE cryptographic suites (SE 07-5356 sections C.1 and C.3.1, Table C-1 / C-2).

Suite 1 (``0x0001``) runs on sect163k1 with 48-byte implicit certificates; suite 2
(``0x0002``) runs on sect283k1 with 74-byte certificates. Both hash with AES-MMO.
"""

from __future__ import annotations

from dataclasses import dataclass

from zse.cbke.hazmat import SECT163K1, SECT283K1, Curve

__all__ = ["SUITE1", "SUITE2", "SUITES", "Suite", "suite_by_id"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Suite:
    """One CBKE suite: its id (the Key Establishment Suite bitmap value), curve and sizes."""

    id: int
    name: str
    curve: Curve
    certificate_size: int
    public_key_size: int
    private_key_size: int
    signature_size: int

    @property
    def bit(self) -> int:
        """The suite's bit in the Key Establishment Suite attribute bitmap (its id)."""
        return self.id

    def __repr__(self) -> str:
        return f"<Suite {self.id:#06x} {self.name}>"


#: Crypto suite 1: sect163k1, ECQV 48-byte certificates, ECMQV, AES-MMO (SE C.1).
SUITE1 = Suite(
    id=0x0001,
    name="suite 1 (sect163k1)",
    curve=SECT163K1,
    certificate_size=48,
    public_key_size=SECT163K1.point_size,
    private_key_size=SECT163K1.scalar_size,
    signature_size=2 * SECT163K1.scalar_size,
)

#: Crypto suite 2: sect283k1, ECQV 74-byte certificates, ECMQV, AES-MMO (SE C.1, SE 1.2+).
SUITE2 = Suite(
    id=0x0002,
    name="suite 2 (sect283k1)",
    curve=SECT283K1,
    certificate_size=74,
    public_key_size=SECT283K1.point_size,
    private_key_size=SECT283K1.scalar_size,
    signature_size=2 * SECT283K1.scalar_size,
)

#: Suites by id, lowest first.
SUITES: dict[int, Suite] = {SUITE1.id: SUITE1, SUITE2.id: SUITE2}


def suite_by_id(suite_id: int) -> Suite:
    """The suite with this id; ``KeyError`` if zse does not support it."""
    return SUITES[suite_id]
