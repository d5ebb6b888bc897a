"""ZigBee NWK and APS frame security (ZB 4.3, 4.4, 4.5), sans-IO.

The auxiliary security header and the CCM* nonce (:mod:`zse.security.header`), AES-CCM* at
ENC-MIC-32 and the keys derived from a link key (:mod:`zse.security.ccm`), securing and
checking NWK and APS frames (:mod:`zse.security.frames`) and per-sender incoming frame
counters (:mod:`zse.security.counters`), and Wireshark's ZigBee key table
(:mod:`zse.security.keytable`). The simulator (:mod:`zse.sim`) secures its frames with it.
"""

from __future__ import annotations

from zse.security.ccm import key_load_key, key_transport_key
from zse.security.counters import IncomingCounters
from zse.security.frames import (
    COUNTER_EXHAUSTED,
    Sealed,
    Unsecured,
    aps_header_length,
    aps_key,
    nwk_header_length,
    secure_aps,
    secure_nwk,
    split_aps,
    split_interpan_aps,
    split_nwk,
    unsecure_aps,
    unsecure_nwk,
)
from zse.security.header import ENC_MIC_32, MIC_LENGTH, AuxHeader, KeyId, nonce
from zse.security.keytable import KeyTableEntry, format_key_table

__all__ = [
    "COUNTER_EXHAUSTED",
    "ENC_MIC_32",
    "MIC_LENGTH",
    "AuxHeader",
    "IncomingCounters",
    "KeyId",
    "KeyTableEntry",
    "Sealed",
    "Unsecured",
    "aps_header_length",
    "aps_key",
    "format_key_table",
    "key_load_key",
    "key_transport_key",
    "nonce",
    "nwk_header_length",
    "secure_aps",
    "secure_nwk",
    "split_aps",
    "split_interpan_aps",
    "split_nwk",
    "unsecure_aps",
    "unsecure_nwk",
]
