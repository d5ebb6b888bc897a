"""Deprecated (#13): zse's services moved to their feature packages (:mod:`zse.drlc.service`,
:mod:`zse.messaging.service`, :mod:`zse.price.service`, :mod:`zse.time.service`,
:mod:`zse.cbke.service`, :mod:`zse.provisioning.registry`) and the ZCL runtime to :mod:`zse.zcl`.
Each ``zse.services.<x>`` module still imports, and resolves its names with a
DeprecationWarning, for one release."""

from zse._moved import install

#: old module -> its new home (docs/adr/0008-feature-packages.md)
MOVED = {
    "zcl": "zse.zcl.endpoint",
    "endpoint": "zse.zcl.se_endpoint",
    "delivery": "zse.zcl.delivery",
    "_events": "zse.zcl.events",
    "_tasks": "zse.zcl._tasks",
    "drlc": "zse.drlc.service",
    "messaging": "zse.messaging.service",
    "price": "zse.price.service",
    "time": "zse.time.service",
    "key_establishment": "zse.cbke.service",
    "registry": "zse.provisioning.registry",
}

install(__name__, MOVED)
