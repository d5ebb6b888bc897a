"""``zse demo``: the main job of ``make demo``.

Until the simulated HAN demo lands, it walks through install-code provisioning: the example
codes of a utility's HAN provisioning guide, checked and turned into the link keys the meter's
Trust Center would be given for each device's MAC address.
"""

from __future__ import annotations

import click

from zse.installcode import InstallCode, format_eui64, oui, parse_eui64

__all__ = ["EXAMPLE_CODES", "demo"]

#: The four printed examples of a utility's HAN provisioning guide (48/64/96/128 bits).
EXAMPLE_CODES = (
    "83FED3407A932B70",
    "83FED3407A939738C552",
    "83FED3407A939723A5C639FF4C12",
    "83FED3407A939723A5C639B26916D505C3B5",
)
_EXAMPLE_MACS = ("001BC5007000052B", "001BC5007000052C", "001BC5007000052D", "001BC5007000052E")


@click.command()
def demo() -> None:
    """Provision example HAN devices by install code and MAC address."""
    click.echo("zse demo: provisioning HAN devices by install code + MAC address\n")
    for mac_text, code_text in zip(_EXAMPLE_MACS, EXAMPLE_CODES, strict=True):
        mac = parse_eui64(mac_text)
        code = InstallCode.parse(code_text)
        click.echo(f"device {format_eui64(mac, ':')} (OUI {oui(mac)})")
        click.echo(f"  install code  {code.grouped()}  ({code.bits}-bit, CRC {code.crc:04X})")
        click.echo(f"  link key      {code.link_key.hex().upper()}")
    mistyped = EXAMPLE_CODES[0][:-1] + "1"
    click.echo(f"\na mistyped code is caught before it reaches the meter: {mistyped}")
    try:
        InstallCode.parse(mistyped)
    except ValueError as exc:
        click.echo(f"  {exc}")
