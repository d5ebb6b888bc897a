"""Inter-PAN (SE 1.x Annex B): the frame codec, the receiving window, the hand-held terminal
command carrier, and transports for EZSP, Z-Stack and the simulator.

The codec, window and carrier are sans-IO; the radio transports are imported lazily from
:mod:`zse.interpan.transports` and need the ``ezsp`` / ``znp`` extras.
"""

from zse.interpan._codec import (
    BROADCAST_ADDRESS,
    MAX_MAC_FRAME_LENGTH,
    MAX_ZCL_LENGTH,
    MIN_PAYLOAD_LENGTH,
    SE_PROFILE_ID,
    DeliveryMode,
    InterPanFrame,
    max_payload_length,
)

__all__ = [
    "BROADCAST_ADDRESS",
    "MAX_MAC_FRAME_LENGTH",
    "MAX_ZCL_LENGTH",
    "MIN_PAYLOAD_LENGTH",
    "SE_PROFILE_ID",
    "DeliveryMode",
    "InterPanFrame",
    "max_payload_length",
]
