"""HAZMAT: sect163k1 / sect283k1 arithmetic for CBKE (SEC 1 v2, SEC 2 v2; SE 07-5356 Annex C).

**THIS CODE IS NOT CONSTANT-TIME.** Field multiplication, inversion, the tau-adic recoding of
scalars and the scalar multiplications branch and index tables on secret data, and Python's
big integers take data-dependent time. An attacker who can time many operations with the same
private key (remotely over a network or locally on the same machine) may learn bits of that
key. That is acceptable for a headend, a test bench, a simulator or a commissioning tool whose
timing an attacker cannot measure finely; a meter or gateway that keeps a long-term CBKE key
and answers key establishment from untrusted parties should assume its timing leaks and use a
constant-time implementation (a secure element, or a hardened C library) for that key.

What it does promise: every point received from outside goes through
:meth:`Curve.decode_point`, which rejects anything that is not a valid compressed point of the
prime-order subgroup (see ``docs/security.md``), so invalid-curve and small-subgroup attacks
(CVE-2026-26007's class) do not apply. Use the recipes in :mod:`zse.cbke` rather than this
module directly.
"""

from zse.cbke.hazmat._curve import INFINITY, SECT163K1, SECT283K1, Curve, Point, StaticPoint
from zse.cbke.hazmat._field import BinaryField

__all__ = [
    "INFINITY",
    "SECT163K1",
    "SECT283K1",
    "BinaryField",
    "Curve",
    "Point",
    "StaticPoint",
]
