"""A simulated frame's repr shows no key (#12.23): a :class:`Transmission` shares what the
receivers decoded from it, and the decryption under a network key was cached with the key
itself as the dictionary key, so ``repr(tx)`` (a failing test's assertion, ``--showlocals``, a
debug print) showed the network key, and the decrypted NWK payloads beside it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import zigpy.types as t

import zse.sim._air as air_module
from tests.security.test_security_secrets import assert_hidden
from zse.installcode import InstallCode
from zse.sim import Air

CODE = InstallCode.parse("83FED3407A939723A5C639B26916D505C3B5")


async def test_a_decrypted_frame_s_repr_shows_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []
    transmit = air_module.Medium.transmit

    def keep(self: Any, tx: Any) -> Any:
        seen.append(tx)
        return transmit(self, tx)

    monkeypatch.setattr(air_module.Medium, "transmit", keep)
    air = Air(seed=3)
    app = await air.coordinator(channel=15)
    device = air.device("00:0d:6f:00:0a:00:00:01", install_code=CODE, channel=15)
    await app.permit_with_link_key(device.ieee, t.KeyData(CODE.link_key), 60)
    await device.join()
    await asyncio.sleep(2)  # the virtual clock: the frames after the join, NWK-secured
    network_key = bytes(app.state.network_info.network_key.key)
    opened = [tx for tx in seen if any("nwk-open" in str(k) for k in tx.decoded)]
    assert opened, "no NWK frame was decrypted"
    for tx in opened:
        text = repr(tx)
        assert text.startswith("Transmission(data=")
        assert_hidden(network_key, text)
        assert_hidden(CODE.link_key, text)
        assert_hidden(network_key, repr(list(tx.decoded)))  # the cache's keys name no key
    await app.shutdown()
    air.close()
