"""The simulated HAN users build: the 802.15.4 medium with the factories that put a zigpy
coordinator and HAN devices on it.

This module is the top of the simulator's stack: the medium (``_air``) knows its nodes only by
the :class:`~zse.sim._air.Station` protocol, the nodes (``_node``) import the medium, the
coordinator application (``_app``) imports both, and only ``Air`` here imports them all.
"""

# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import zigpy.types as t
import zigpy.zdo.types as zdo_t

from zse.sim._air import Medium
from zse.sim._app import SimControllerApplication, default_config
from zse.sim._indirect import DEFAULT_POLL_INTERVAL
from zse.sim._node import ALL_CHANNELS, SimDevice

if TYPE_CHECKING:
    import zigpy.backups

    from zse.installcode import InstallCode

__all__ = ["Air"]


class Air(Medium):
    """Simulated 802.15.4 air shared by every node; deterministic from ``seed``.

    ``capture`` (a path, a binary file or a :class:`~zse.pcap.PcapWriter`) receives every
    frame as it is transmitted, time-stamped on the virtual clock from ``epoch`` (the Unix
    time of the air's creation; default now). ``airtime=True`` serialises each
    channel at 250 kbit/s so that throughput figures mean something. The medium's own
    methods (faults, partitions, range and routing, capture) are those of
    :class:`~zse.sim.Medium`.
    """

    async def coordinator(
        self,
        *,
        channel: int = 15,
        pan_id: int | None = None,
        extended_pan_id: t.ExtendedPanId | None = None,
        network_key: bytes | None = None,
        ieee: t.EUI64 | str | None = None,
        config: dict[str, Any] | None = None,
        backup: zigpy.backups.NetworkBackup | None = None,
    ) -> SimControllerApplication:
        """Create a zigpy coordinator on this air, form its network and start zigpy.

        Network settings not given are drawn from the air's seeded RNG (deterministic).
        ``config`` entries are merged over the simulator's quiet default configuration.
        ``backup`` is what the radio held in non-volatile memory before (its node and
        network settings, the devices' addresses and link keys, as zigpy backs a radio up):
        the network is then resumed, not formed, as a stick restarted resumes its own.
        """
        pan = pan_id if pan_id is not None else self.rng.randrange(0x0001, 0xFFF7)
        epid = extended_pan_id or t.ExtendedPanId(self.rng.randbytes(8))
        key = network_key if network_key is not None else self.rng.randbytes(16)
        eui = _parse_ieee(ieee) if ieee is not None else t.EUI64(self.rng.randbytes(8))
        cfg = default_config(channel=channel, pan_id=pan, extended_pan_id=epid, network_key=key)
        for name, value in (config or {}).items():
            if isinstance(value, dict) and isinstance(cfg.get(name), dict):
                cfg[name] = {**cfg[name], **value}
            else:
                cfg[name] = value
        app = SimControllerApplication(cfg, air=self, ieee=eui)
        if backup is not None:
            await app.connect()
            await app.write_network_info(
                network_info=backup.network_info, node_info=backup.node_info
            )
        await app.startup(auto_form=True)
        return app

    def device(
        self,
        ieee: t.EUI64 | str | None = None,
        *,
        install_code: InstallCode | None = None,
        link_key: bytes | None = None,
        channel: int | None = None,
        logical_type: zdo_t.LogicalType | None = None,
        manufacturer_code: int = 0x0000,
        aps_ack: bool = True,
        rx_on_when_idle: bool = True,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> SimDevice:
        """Create a simulated HAN device; its preconfigured link key is ``link_key`` or the
        key derived from ``install_code`` (``InstallCode.link_key``). ``aps_ack``: whether
        its ZCL unicasts ask for an APS acknowledgement (:class:`~zse.sim.SimDevice`). A
        router unless ``rx_on_when_idle=False``: then a sleepy end device, polling its parent
        every ``poll_interval`` seconds (docs/simulator.md, "Sleepy end devices")."""
        if link_key is None and install_code is not None:
            link_key = install_code.link_key
        eui = _parse_ieee(ieee) if ieee is not None else t.EUI64(self.rng.randbytes(8))
        return SimDevice(
            self,
            eui,
            link_key=link_key,
            channels=(channel,) if channel is not None else ALL_CHANNELS,
            logical_type=logical_type,
            manufacturer_code=manufacturer_code,
            aps_ack=aps_ack,
            rx_on_when_idle=rx_on_when_idle,
            poll_interval=poll_interval,
        )


def _parse_ieee(ieee: t.EUI64 | str) -> t.EUI64:
    return ieee if isinstance(ieee, t.EUI64) else t.EUI64.convert(ieee)
