"""Calendar (SE 1.2 D.9): the sans-IO core (:mod:`zse.calendar.core`, re-exported here), its
wire (:mod:`zse.calendar.wire`)."""

from zse.calendar.core import *  # noqa: F403
from zse.calendar.core import __all__ as __all__
