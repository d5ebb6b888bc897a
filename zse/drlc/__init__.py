"""Demand Response and Load Control (SE D.2 and Annex E): the sans-IO core
(:mod:`zse.drlc.core`, re-exported here), its wire (:mod:`zse.drlc.wire`) and its asyncio
service (:mod:`zse.drlc.service`)."""

from zse.drlc.core import *  # noqa: F403
from zse.drlc.core import __all__ as __all__
