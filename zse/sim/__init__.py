"""zse.sim: a simulated ZigBee HAN on virtual time (see docs/simulator.md).

- :class:`Air`: the 802.15.4 medium (:class:`Medium`: channels, delivery, faults, air time,
  pcap capture) with the factories that put a coordinator and devices on it;
- :class:`SimControllerApplication`: a zigpy ``ControllerApplication`` on that air (the
  coordinator and Trust Center, e.g. the ESI);
- :class:`SimDevice` and :class:`Endpoint`: simulated HAN devices sending and receiving ZCL;
  every node keeps a :class:`BindingTable` its ZDO server changes and reports, and
  :class:`Fragmentation` settings for APS fragmentation;
- :class:`Household`: the HAN roles' loads adding up in a simulated household load model
  (:mod:`zse.metering.load`), a source of readings for the meter;
- :class:`VirtualClockLoop` and :func:`run`: asyncio on virtual time, so zigpy's own timers
  are simulated too and tests never sleep.

Example::

    from zse.se import IN_HOME_DISPLAY, MESSAGING, PRICE
    from zse.sim import Air, run

    async def main():
        air = Air(seed=1, capture="han.pcap")
        esi = await air.coordinator(channel=15)
        ihd = air.device("00:0d:6f:00:00:00:00:01", install_code=code, channel=15)
        ihd.add_endpoint(1, device_type=IN_HOME_DISPLAY, out_clusters=[PRICE, MESSAGING])
        await esi.permit_with_link_key(ihd.ieee, code.link_key, 60)
        await ihd.join()

    run(main())
"""

from zse.sim._air import AirStats, Faults, Medium
from zse.sim._app import CoordinatorNode, SimControllerApplication
from zse.sim._binding import BindingTable
from zse.sim._clock import PacedLoop, VirtualClockLoop, run
from zse.sim._fragment import Fragmentation
from zse.sim._han import Air
from zse.sim._household import Household
from zse.sim._node import (
    SE_PROFILE,
    ApsIndication,
    Beacon,
    DeliveryError,
    Endpoint,
    JoinRefused,
    Node,
    NodeStats,
    RawFrame,
    SimDevice,
    ZclMessage,
)
from zse.sim._route import RouteStats

__all__ = [
    "SE_PROFILE",
    "Air",
    "AirStats",
    "ApsIndication",
    "Beacon",
    "BindingTable",
    "CoordinatorNode",
    "DeliveryError",
    "Endpoint",
    "Faults",
    "Fragmentation",
    "Household",
    "JoinRefused",
    "Medium",
    "Node",
    "NodeStats",
    "PacedLoop",
    "RawFrame",
    "RouteStats",
    "SimControllerApplication",
    "SimDevice",
    "VirtualClockLoop",
    "ZclMessage",
    "run",
]
