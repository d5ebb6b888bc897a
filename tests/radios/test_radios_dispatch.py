"""``zse.radios``: which radio an application runs on, lazily; the simulator path end to end."""

from __future__ import annotations

import subprocess
import sys

import pytest
import zigpy.types as t

from zse.errors import DecodeError
from zse.installcode import InstallCode
from zse.radios import (
    SUPPORTED_RADIOS,
    UnsupportedRadio,
    install_link_key,
    link_key_installer,
    radio_of,
    remove_link_key,
)
from zse.sim import Air

CODE = InstallCode.parse("83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5")
KEY_DATA = bytes(range(0x40, 0x50))


def test_importing_zse_radios_loads_no_radio_library() -> None:
    code = (
        "import sys, zse.radios\n"
        "loaded = [m for m in ('bellows', 'zigpy_znp', 'zse.sim') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "class App: pass\n"
        "try:\n"
        "    zse.radios.install_link_key(App(), None, bytes(16)).send(None)\n"
        "except zse.radios.UnsupportedRadio:\n"
        "    pass\n"
        "loaded = [m for m in ('bellows', 'zigpy_znp') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "import zse.radios.ezsp, zse.radios.znp\n"
        "assert 'bellows' in sys.modules and 'zigpy_znp' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


async def test_an_unknown_radio_is_refused_naming_the_supported_ones() -> None:
    class DeconzLikeApp:
        pass

    with pytest.raises(UnsupportedRadio, match="DeconzLikeApp") as info:
        link_key_installer(DeconzLikeApp())
    for radio in SUPPORTED_RADIOS:
        assert radio in str(info.value)
    assert "bellows" in str(info.value)
    assert "zigpy-znp" in str(info.value)
    with pytest.raises(UnsupportedRadio):
        await install_link_key(DeconzLikeApp(), t.EUI64(bytes(8)), KEY_DATA)


async def test_the_simulator_installs_through_set_link_key() -> None:
    air = Air(seed=5)
    esi = await air.coordinator(channel=15)
    meter = air.device("00:0d:6f:00:0a:00:00:07", install_code=CODE, channel=15)
    await esi.permit_with_link_key(meter.ieee, t.KeyData(CODE.link_key), 60)
    await meter.join()
    assert radio_of(esi) == "sim"
    assert esi.get_link_key(meter.ieee) == CODE.link_key
    install = link_key_installer(esi)
    await install(meter.ieee, KEY_DATA)
    assert esi.get_link_key(meter.ieee) == KEY_DATA
    with pytest.raises(DecodeError, match="16 bytes, got 17"):
        await install(meter.ieee, KEY_DATA + b"\x00")
    assert esi.get_link_key(meter.ieee) == KEY_DATA
    air.close()


async def test_the_simulator_erases_the_link_key_and_the_pending_install_code_key() -> None:
    """remove_link_key on the simulator drops both keys the Trust Center holds for a device:
    the one CBKE gave it and a pending install-code key, so it can join no more."""
    air = Air(seed=5)
    esi = await air.coordinator(channel=15)
    meter = air.device("00:0d:6f:00:0a:00:00:07", install_code=CODE, channel=15)
    await esi.permit_with_link_key(meter.ieee, t.KeyData(CODE.link_key), 60)
    await meter.join()
    await esi.permit_with_link_key(meter.ieee, t.KeyData(CODE.link_key), 60)  # pending again
    assert await remove_link_key(esi, meter.ieee) is True
    assert esi.get_link_key(meter.ieee) is None
    assert meter.ieee not in esi.radio.pending_keys
    assert await remove_link_key(esi, meter.ieee) is False
    air.close()
