"""How much ZCL payload one unfragmented SE frame carries (no APS fragmentation in zse).

Counted from the bottom (no source route, short addresses):

- aMaxPHYPacketSize 127 (IEEE 802.15.4-2006 6.4.1)
- MAC header 9 (frame control 2, sequence 1, PAN id 2, destination 2, source 2) and FCS 2
- NWK header 8 (frame control 2, destination 2, source 2, radius 1, sequence 1; ZB 3.3.1)
- NWK security 18 (auxiliary header 14: control 1, frame counter 4, source IEEE 8, key
  sequence 1; MIC 4; ZB 4.5.1): SE networks always use NWK security

= 90 octets of APS frame. Unicast: APS header 8 (frame control 1, destination endpoint 1,
cluster 2, profile 2, source endpoint 1, counter 1; ZB 2.2.5.1), with APS link-key security
9 more (control 1, frame counter 4, MIC 4). Group: APS header 9 (group address 2 replaces the
destination endpoint), no APS security (link keys are pairwise; SE 5.4.6). ZCL header 3
(frame control, TSN, command id; no manufacturer code; ZCL 2.4.1).

So the ZCL payload is at most 70 octets APS-encrypted unicast, 79 unicast without APS
security, 78 by group. SE D.5.2.3.1.1.5 says the same for an APS-encrypted unicast: "59 bytes
for the Message field ... (11 bytes for other Display Message fields)": 59 + 11 = 70. A
source route costs 2 + 2n more.
"""

from __future__ import annotations

__all__ = ["max_zcl_payload"]

_PHY_MAX = 127
_MAC_OVERHEAD = 11
_NWK_OVERHEAD = 8 + 14 + 4
_APS_UNICAST = 8
_APS_SECURITY = 5 + 4
_APS_GROUP = 9
_ZCL_HEADER = 3


def max_zcl_payload(*, group: bool, aps_encrypted: bool = True) -> int:
    """Largest ZCL payload in one unfragmented SE frame: 70 (APS-encrypted unicast), 79
    (unicast, NWK security only) or 78 (group, NWK security only)."""
    aps = _APS_GROUP if group else _APS_UNICAST + (_APS_SECURITY if aps_encrypted else 0)
    return _PHY_MAX - _MAC_OVERHEAD - _NWK_OVERHEAD - aps - _ZCL_HEADER
