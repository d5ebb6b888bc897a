"""A simulated meter (the ESI with its registry) and a HAN device on a fake EZSP stick beside it.

The ESI is the role tests' (tests/roles/han_builder.py); the stick is bellows' real EZSP/ASH
code over the fake serial link to :class:`~tests.han_stick.fake_han_ncp.HanNcp`, whose radio is
a node on the same air.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zigpy.serial
import zigpy.types as zt
import zigpy.zdo.types as zdo_t

from tests.han_stick.fake_han_ncp import HanNcp
from tests.roles.han_builder import CA, Han, build, close
from zse.cbke import SUITE1
from zse.cbke.credentials import Credentials
from zse.cbke.service import eui64_bytes
from zse.installcode import InstallCode
from zse.radios.ezsp import EzspHanRadio
from zse.roles.han import InHomeDisplay
from zse.roles.han_stick import NetworkChoice, StickDevice, choose_credentials

STICK = zt.EUI64.convert("00:0d:6f:00:0f:00:00:16")


@dataclass
class StickHan:
    han: Han
    ncp: HanNcp
    code: InstallCode
    radio: EzspHanRadio | None = None
    device: StickDevice | None = None
    ihd: InHomeDisplay | None = None
    mode: str = ""


async def meter_and_stick(
    tmp_path: Path,
    serial_link: Callable[..., None],
    *,
    version: int = 13,
    registered_code: InstallCode | None = None,
    tokens: list[Credentials] = [],  # noqa: B006 - read only
    libraries: set[int] | None = None,
    **esi_options: Any,
) -> StickHan:
    """The simulated meter, permitting the stick's install code, and the stick's fake NCP
    (EZSP 13 unless told: CBKE in the host needs 12+, where the Trust Center link key can be
    written)."""
    han = await build(tmp_path, **esi_options)
    code = InstallCode.generate(rng=random.Random(16))
    await han.esi.provision(STICK, registered_code or code, label="stick")
    ncp = HanNcp(han.air, STICK, version=version, tokens=tokens, libraries=libraries)
    serial_link(zigpy.serial, "create_serial_connection", ncp)
    return StickHan(han=han, ncp=ncp, code=code)


async def open_ihd(sh: StickHan, **options: Any) -> InHomeDisplay:
    """bellows connects to the stick; an in-home display runs on it (not started)."""
    sh.radio = await EzspHanRadio.open("/dev/fake-ncp")
    sh.device = StickDevice(
        sh.radio,
        link_key=sh.code.link_key,
        choice=NetworkChoice(channels=(15,)),
        store=options.pop("store", None),
    )
    host = options.pop("credentials", CA.issue(eui64_bytes(STICK), SUITE1, rng=random.Random(16)))
    credentials, sh.mode = await choose_credentials(sh.radio, host)
    sh.ihd = InHomeDisplay(
        sh.device, credentials=credentials, clock=sh.han.clock, rng=random.Random(16), **options
    )
    return sh.ihd


async def close_stick(sh: StickHan) -> None:
    """Stop the display and its device, disconnect bellows, stop the meter."""
    if sh.ihd is not None:
        await sh.ihd.stop()
    if sh.device is not None:
        await sh.device.close()
    if sh.radio is not None:
        await sh.radio.close()
    for task in list(sh.ncp.tasks):
        task.cancel()
    await close(sh.han)


def match_descs(sh: StickHan) -> Counter[int]:
    """The clusters the stick asked for in its ZDO Match_Desc_req (ZB 2.4.3.1.7: sequence
    number, NWKAddrOfInterest, ProfileID, NumInClusters, InClusterList), counted; from
    EZSP 13's sendUnicast fields (EZSP 14 renamed them)."""
    asked: Counter[int] = Counter()
    for name, request in sh.ncp.requests:
        if (
            name != "sendUnicast"
            or int(request["apsFrame"].clusterId) != zdo_t.ZDOCmd.Match_Desc_req
        ):
            continue
        payload = bytes(request["messageContents"])
        asked.update(
            int.from_bytes(payload[6 + 2 * i : 8 + 2 * i], "little") for i in range(payload[5])
        )
    return asked


def zcl_sent(sh: StickHan, cluster: int) -> int:
    """How many frames the stick sent on ``cluster`` (an application endpoint's)."""
    return sum(
        1
        for name, request in sh.ncp.requests
        if name == "sendUnicast"
        and int(request["apsFrame"].profileId) != 0
        and int(request["apsFrame"].clusterId) == cluster
    )
