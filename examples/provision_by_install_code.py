"""Turn a utility portal's (MAC address, install code) pairs into Trust Center link keys.

Run: .venv/bin/python examples/provision_by_install_code.py

A headend receives these pairs from installers or a manufacturer's file; each pair is checked
(so a mistyped digit is caught before it reaches the meter) and the link key the meter must
be given for that device is derived. ``ControllerApplication.permit_with_link_key(eui64, key)``
is the zigpy call that hands it to the Trust Center.
"""

from __future__ import annotations

from zse.errors import DecodeError
from zse.installcode import InstallCode, format_eui64, parse_eui64

PORTAL_ENTRIES = [
    ("00:1B:C5:00:70:00:05:2B", "83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5"),
    ("001bc5007000052c", "83fed3407a939738c552"),
    ("001BC5007000052D", "83FED3407A939738C553"),  # one digit mistyped
]


def main() -> None:
    for mac_text, code_text in PORTAL_ENTRIES:
        try:
            mac = parse_eui64(mac_text)
            code = InstallCode.parse(code_text)
        except DecodeError as exc:
            print(f"{mac_text}: refused: {exc}")
            continue
        print(f"{format_eui64(mac, ':')}: {code.bits}-bit code, link key {code.link_key.hex()}")


if __name__ == "__main__":
    main()
