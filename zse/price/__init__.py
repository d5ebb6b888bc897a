"""Price essentials (SE D.4): the sans-IO core (:mod:`zse.price.core`, re-exported here), its wire
(:mod:`zse.price.wire`) and its asyncio service (:mod:`zse.price.service`)."""

from zse.price.core import *  # noqa: F403
from zse.price.core import __all__ as __all__
