"""A network key change the stick missed (issue #16: "rejoin ... when the network key changes").

The ESI's Trust Center rotates the network key (ZB 4.6.3.5) while the stick is off the air; when
it is back, its frames fail NWK security at the meter and the meter's at the stick. EmberZNet
does not report that itself (``findAndRejoinNetwork``, ezsp.h: the application calls it when
"a device has missed a Network Key update"): the stick notices by its Trust Center Keep-Alive
reads going unanswered, its secure rejoin fails (the meter cannot read a request secured with
the old key) and the Trust Center rejoin, unsecured on the air, brings the new key in a
Transport Key APS-secured with the stick's link key (ZB 4.6.3.6). Then it reads the meter."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path

from tests.han_stick.stick_builder import STICK, close_stick, meter_and_stick, open_ihd
from tests.roles.test_roles_ihd_energy import CONFIG, serve_meter
from zse.roles.keepalive import KeepAliveClient


async def test_a_missed_key_change_is_caught_up_by_a_trust_center_rejoin(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    sh = await meter_and_stick(tmp_path, serial_link, keep_alive=(1, 0))
    han = sh.han
    serve_meter(han, 1_000_000, 1500)
    ihd = await open_ihd(sh, metering=True, metering_config=CONFIG)
    client: KeepAliveClient | None = None
    node = sh.ncp.node
    meter = han.app.radio
    try:
        await ihd.start()
        client = KeepAliveClient(ihd.endpoint, sh.device, rng=random.Random(1))
        assert await client.start()
        await asyncio.sleep(5)
        assert ihd.showing_energy().consumption == "1000.000 kWh"
        old_key, old_seq = node.network_key, node.network_key_seq
        link_key = node.link_keys[han.app.state.node_info.ieee]

        # the stick is off the air while the Trust Center rotates the key: it misses both the
        # Transport Key and the Switch Key
        han.air.silence(node)
        new_seq = await han.app.rotate_network_key()
        han.air.restore(node)
        assert meter.network_key_seq == new_seq != old_seq
        assert (node.network_key, node.network_key_seq) == (old_key, old_seq)
        serve_meter(han, 1_000_500, 1500)

        # three keep-alive reads unanswered (the stick's frames fail NWK security at the
        # meter), then the rejoin: secure fails, Trust Center rejoin succeeds
        dropped_before = meter.stats.nwk_unknown_key
        await asyncio.sleep(4 * 60 + 30)
        assert meter.stats.nwk_unknown_key > dropped_before
        assert client.rejoins == 1
        assert sh.ncp.rejoin_requests == [True, False]
        assert sh.device.rejoins == ["secure rejoin failed", "Trust Center rejoin"]
        assert (node.network_key, node.network_key_seq) == (meter.network_key, new_seq)
        assert node.link_keys[han.app.state.node_info.ieee] == link_key  # the CBKE key stays

        # back on the network with the new key: the meter is read again
        await asyncio.sleep(CONFIG.poll_interval + 5)
        assert ihd.showing_energy().consumption == "1000.500 kWh"
        assert (await ihd.read_time()).values
    finally:
        if client is not None:
            await client.stop()
        await close_stick(sh)


async def test_a_trust_center_rejoin_of_a_device_without_a_link_key_is_refused(
    tmp_path: Path, serial_link: Callable[..., None]
) -> None:
    sh = await meter_and_stick(tmp_path, serial_link)
    han = sh.han
    ihd = await open_ihd(sh)
    node = sh.ncp.node
    try:
        await ihd.start()
        han.air.silence(node)
        await han.app.rotate_network_key()
        han.air.restore(node)
        han.app.radio.link_keys.pop(STICK)  # the Trust Center no longer knows the stick
        assert not await sh.device.rejoin()
        assert sh.ncp.rejoin_requests == [True, False]
        assert sh.device.rejoins == ["secure rejoin failed", "Trust Center rejoin failed"]
        assert node.network_key != han.app.radio.network_key
    finally:
        await close_stick(sh)
