"""Messaging (SE D.5): the sans-IO core (:mod:`zse.messaging.core`, re-exported here), its wire
(:mod:`zse.messaging.wire`) and its asyncio service (:mod:`zse.messaging.service`)."""

from zse.messaging.core import *  # noqa: F403
from zse.messaging.core import __all__ as __all__
