"""Install codes, the AES-MMO hash and HMAC-MMO: the safe entry point for link keys.

>>> from zse.installcode import InstallCode
>>> code = InstallCode.parse("83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5")
>>> code.bits, hex(code.crc), code.link_key.hex().upper()
(128, '0xb5c3', '66B6900981E1EE3CA4206B6B861C02BB')
"""

from zse.errors import InvalidEui64, InvalidInstallCode
from zse.installcode._code import (
    DATA_LENGTHS,
    InstallCode,
    RandomBytes,
    canonical_eui64,
    crc16,
    format_eui64,
    oui,
    parse_eui64,
)
from zse.installcode._label import DeviceLabel, InvalidLabel, LabelForm, parse_label
from zse.installcode._mmo import MmoHash, hmac_mmo, mmo_hash

__all__ = [
    "DATA_LENGTHS",
    "DeviceLabel",
    "InstallCode",
    "InvalidEui64",
    "InvalidInstallCode",
    "InvalidLabel",
    "LabelForm",
    "MmoHash",
    "RandomBytes",
    "canonical_eui64",
    "crc16",
    "format_eui64",
    "hmac_mmo",
    "mmo_hash",
    "oui",
    "parse_eui64",
    "parse_label",
]
