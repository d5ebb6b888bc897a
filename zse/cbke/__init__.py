"""Certificate-based key establishment (SE 1.x Annex C): ECQV, ECMQV, ECDSA."""
