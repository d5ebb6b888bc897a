"""HAN provisioning: the lifecycle core (:mod:`zse.provisioning.lifecycle`, re-exported here)
and the persisted registry (:mod:`zse.provisioning.registry`)."""

from zse.provisioning.lifecycle import *  # noqa: F403
from zse.provisioning.lifecycle import __all__ as __all__
