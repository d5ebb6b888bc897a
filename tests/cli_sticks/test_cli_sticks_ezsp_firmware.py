"""Firmware zse cannot drive, on the coordinator path (``zse esi``, ``zse interpan``) over
bellows' real application and the fake coordinator NCP (tests/cli_sticks/fake_stick.py).

- An EZSP version bellows has no command table for (15, or one newer than it knows): bellows
  starts anyway with another version's table (a warning in its log), and zse's own frames
  (link keys, inter-PAN) would be encoded for a protocol the firmware does not speak. The
  HAN-device path refused such firmware (``zse.radios.ezsp.EzspHanRadio.open``); the
  coordinator started. It now stops before registering an endpoint, with one line.
- A firmware without the raw send command: bellows' ``InvalidCommandError`` escaped
  ``zse interpan send``; it is now zse's :class:`~zse.radios.ezsp.MissingCommand`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zigpy.serial
from bellows.exception import InvalidCommandError

from tests.cli_sticks.fake_stick import StickNcp
from tests.cli_sticks.sticks_helpers import ESI_CREDENTIALS, IHD, Operator, ezsp_factory
from tests.interpan.test_interpan_ezsp_transport import (
    INVALID_COMMAND,
    SEND_RAW,
    SEND_RAW_EXT,
    FakeNcp,
    connect_ezsp,
    sample,
)
from zse.cli._radio import RadioOptions, esi_descriptors, zigpy_config
from zse.cli.esi import run_esi
from zse.cli.interpan import StickOptions, run_listen, run_send
from zse.config import EsiConfig, NetworkSettings, RadioSettings
from zse.interpan import DeliveryMode
from zse.radios.ezsp import (
    EzspTransport,
    MissingCommand,
    UnsupportedFirmware,
    coordinator_class,
)

__all__ = ["connect_ezsp"]  # the fixture, imported for this module's tests

RADIO = RadioSettings(radio="ezsp", device="/dev/fake-ncp")
SUPPORTED = "supported: EZSP 4-14, 16-19"
#: EzspStatus EZSP_ERROR_INVALID_FRAME_ID: the reason given for a frame id the build lacks.
INVALID_FRAME_ID = 0x31


def speaking(version: int) -> StickNcp:
    """A coordinator NCP whose firmware answers the version command with ``version`` (and
    otherwise keeps to bellows' newest table near it, which bellows then uses)."""
    ncp = StickNcp(19 if version > 15 else 16)
    ncp.version = version
    return ncp


@pytest.mark.parametrize(("version", "descriptors"), [(15, True), (20, True), (20, False)])
async def test_the_coordinator_does_not_connect_to_an_unsupported_ezsp_version(
    serial_link: Callable[..., None], version: int, descriptors: bool
) -> None:
    """bellows' application, as zse's radio module gives it, with the ESI's endpoints or
    without (``zse interpan``): it connected and registered every endpoint; now it stops
    with :class:`~zse.radios.ezsp.UnsupportedFirmware` before the first."""
    ncp = speaking(version)
    serial_link(zigpy.serial, "create_serial_connection", ncp)
    config = zigpy_config(RadioOptions(radio=RADIO, network=NetworkSettings()))
    app = coordinator_class(esi_descriptors() if descriptors else ())(config)
    try:
        with pytest.raises(UnsupportedFirmware) as info:
            await app.connect()
    finally:
        await app.disconnect()
    assert ncp.endpoints == {}
    assert info.value.status == version
    assert str(info.value) == (
        f"the stick's firmware speaks EZSP {version}, which zse does not support for a "
        f"coordinator ({SUPPORTED})"
    )


@pytest.mark.parametrize("version", [15, 20])
async def test_zse_esi_refuses_firmware_of_an_unsupported_ezsp_version(
    tmp_path: Path, serial_link: Callable[..., None], version: int
) -> None:
    ncp = speaking(version)
    operator = Operator()
    operator.type("quit")
    errors: list[str] = []
    status = await run_esi(
        EsiConfig(radio=RADIO, database=tmp_path / "han.db"),
        credentials=[ESI_CREDENTIALS],
        lines=operator.lines(),
        out=operator.out,
        err=errors.append,
        app_factory=ezsp_factory(ncp, serial_link),
    )
    assert "ESI running" not in operator.text()
    assert (status, errors) == (
        1,
        [
            f"error: ezsp radio on /dev/fake-ncp did not start: the stick's firmware speaks "
            f"EZSP {version}, which zse does not support for a coordinator ({SUPPORTED})"
        ],
    )
    assert ncp.endpoints == {}  # stopped before anything of zse's reached the NCP
    assert ncp.transient_keys == []


async def test_zse_interpan_refuses_it_too(serial_link: Callable[..., None]) -> None:
    """``zse interpan`` starts bellows' application without the SE endpoint: checked all
    the same."""
    ncp = speaking(20)
    errors: list[str] = []
    options = StickOptions(radio=RADIO, app_factory=ezsp_factory(ncp, serial_link))
    status = await run_listen(options, count=1, out=Operator().out, err=errors.append)
    assert (status, errors) == (
        1,
        [
            "error: ezsp radio on /dev/fake-ncp did not start: the stick's firmware speaks "
            f"EZSP 20, which zse does not support for a coordinator ({SUPPORTED})"
        ],
    )


class NoRawSendNcp(StickNcp):
    """A coordinator NCP whose firmware was built without raw MAC sends: it answers them
    ``invalidCommand``."""

    def _ezsp(self, frame: bytes) -> None:
        seq, frame_id, _params = self._parse(frame)
        if frame_id in (SEND_RAW, SEND_RAW_EXT):
            self._seq = seq
            self.frames_seen.append(frame_id)
            self._respond(seq, INVALID_COMMAND, self._status(INVALID_FRAME_ID))
            return
        super()._ezsp(frame)


@pytest.mark.parametrize(
    ("version", "command"),
    [(8, "sendRawMessage"), (13, "sendRawMessage"), (14, "sendRawMessageExtended")],
)
async def test_the_transport_says_which_raw_send_the_firmware_lacks(
    connect_ezsp: Callable[[FakeNcp], Any], version: int, command: str
) -> None:
    ezsp = await connect_ezsp(NoRawSendNcp(version))
    transport = EzspTransport(ezsp)
    try:
        await transport.start()
        with pytest.raises((MissingCommand, InvalidCommandError)) as info:
            await transport.send(sample(DeliveryMode.BROADCAST, 1))
    finally:
        await transport.close()
        await ezsp.disconnect()
    assert isinstance(info.value, MissingCommand)
    assert info.value.command == command
    assert str(info.value) == (
        f"EZSP stick: its firmware does not have the EZSP command {command}, which inter-PAN "
        "(SE Annex B) needs (the stick answered invalidCommand)"
    )


async def test_zse_interpan_send_says_it_in_one_line(serial_link: Callable[..., None]) -> None:
    """It escaped ``zse interpan send`` as bellows' ``InvalidCommandError``."""
    ncp = NoRawSendNcp(8)
    errors: list[str] = []
    options = StickOptions(radio=RADIO, app_factory=ezsp_factory(ncp, serial_link))
    status = await run_send(
        options, "message", text="Peak", message_id=7, to=IHD, out=Operator().out, err=errors.append
    )
    assert SEND_RAW in ncp.frames_seen  # asked, and refused
    assert (status, errors) == (
        1,
        [
            "error: not sent: EZSP stick: its firmware does not have the EZSP command "
            "sendRawMessage, which inter-PAN (SE Annex B) needs (the stick answered "
            "invalidCommand)"
        ],
    )
