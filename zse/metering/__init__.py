"""Metering (SE D.3): formatting raw readings as a display shows them
(:mod:`zse.metering.formatting`, re-exported here) and the cluster's wire
(:mod:`zse.metering.wire`)."""

from zse.metering.formatting import *  # noqa: F403
from zse.metering.formatting import __all__ as __all__
