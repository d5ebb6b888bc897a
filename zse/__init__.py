"""zse: an asyncio ZigBee Smart Energy (SE 1.x) stack for Python, built on zigpy.

The package root stays small and imports nothing heavy; use the subpackages:

- :mod:`zse.installcode`: install codes, their CRC, AES-MMO and HMAC-MMO, EUI-64 parsing;
- :mod:`zse.cbke`: certificate-based key establishment (ECQV, ECMQV, ECDSA);
- :mod:`zse.zcl`: the ZCL runtime (codec, endpoint, delivery rule) zse's services share;
- a package per SE feature (:mod:`zse.drlc`, :mod:`zse.messaging`, :mod:`zse.price`,
  :mod:`zse.time`, :mod:`zse.provisioning`): its sans-IO core, wire and asyncio service;
- :mod:`zse.errors`: the exceptions zse raises.

Importing zse never changes zigpy's global cluster registry.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
