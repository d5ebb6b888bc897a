"""The Smart Energy vocabulary: every id, enumeration, bitmap and sentinel zse uses, once.

The floor of the package: it imports only :mod:`zigpy.types`, so the sans-IO cores, the wire
definitions and the shells all name SE values from here (SE 07-5356, ZCL 07-5123).
"""

from zse.se import ids, types
from zse.se.ids import *  # noqa: F403
from zse.se.types import *  # noqa: F403

__all__: list[str] = []
__all__ += ids.__all__
__all__ += types.__all__
