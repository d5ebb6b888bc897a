"""Smart Energy cluster wire definitions for zigpy (SE 07-5356).

Each cluster is a zigpy :class:`~zigpy.zcl.Cluster` subclass with spec names in snake_case and
fields in wire order. They set ``_skip_registry = True``: importing zse never replaces zigpy's
own (stub) classes in its global registry; zse attaches these to its SE endpoints explicitly.
"""

from zigpy.zcl import Cluster

from zse.clusters.codec import command_def, decode_command, encode_command
from zse.clusters.drlc import Drlc
from zse.clusters.messaging import Messaging
from zse.clusters.price import Price

__all__ = [
    "SE_CLUSTERS",
    "Drlc",
    "KeyEstablishment",
    "Messaging",
    "Price",
    "command_def",
    "decode_command",
    "encode_command",
]

#: The SE cluster classes zse defines, by cluster id (Key Establishment's wire is
#: :mod:`zse.cbke.messages`; ``KeyEstablishment`` here is deprecated).
SE_CLUSTERS: dict[int, type[Cluster]] = {cls.cluster_id: cls for cls in (Price, Drlc, Messaging)}


def __getattr__(name: str) -> type[Cluster]:
    """``KeyEstablishment``, deprecated (with a DeprecationWarning)."""
    if name == "KeyEstablishment":
        from zse.clusters import key_establishment  # noqa: PLC0415

        return getattr(key_establishment, name)  # type: ignore[no-any-return]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
