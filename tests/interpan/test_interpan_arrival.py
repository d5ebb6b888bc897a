"""The inter-PAN key server judges each frame by when it arrived (zse.interpan.service.Arrival),
not by when it read it: the Key Establishment machines end an exchange whose message comes at
or after its deadline (SE C.3.1), and a frame that came in time but waited in the inbox while
the hub answered others (a burst) was timed out. On virtual time."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.interpan.test_interpan_hostile import (
    CA,
    FLOODER,
    HUB,
    HUB_PAN,
    TERMINAL,
    WHITELIST,
    SlowRadio,
    initiated,
    to_hub,
)
from zse.cbke import SUITE1
from zse.cbke.machine import run_inline
from zse.cbke.messages import EphemeralDataResponse, decode_server_command
from zse.cbke.service import eui64_bytes
from zse.interpan import InterPanFrame
from zse.interpan._zcl import Direction
from zse.interpan.ke import InterPanKeyServer, _ke_command
from zse.interpan.secure import InterPanSecurity
from zse.interpan.service import InterPanService
from zse.sim import run

#: Garbled Initiates delivered at once, before the terminal's message: the hub answers each
#: (Terminate, one :data:`AIRTIME` on the air), 0.15 s in all.
BURST = 30
#: When the burst and, if in time, the terminal's message come: this long before the deadline.
AHEAD = 0.1


class Recording(SlowRadio):
    """:class:`SlowRadio` that keeps what the hub sent, and when."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[float, object]] = []

    async def send(self, frame: InterPanFrame) -> None:
        command = _ke_command(frame, Direction.Server_to_Client)
        assert command is not None
        self.sent.append((asyncio.get_running_loop().time(), decode_server_command(*command)))
        await super().send(frame)


@pytest.mark.parametrize(
    ("late", "served"), [(-AHEAD, True), (0.01, False)], ids=["in-time", "after-the-deadline"]
)
def test_a_message_is_judged_by_when_it_arrived_not_when_it_was_read(
    caplog: pytest.LogCaptureFixture, late: float, served: bool
) -> None:
    """The terminal's Ephemeral Data Request comes ``late`` seconds after its session's
    deadline, behind a burst the hub is still answering at the deadline: one that came before
    it is answered (though read after it; it was timed out), one that came after is not."""

    async def main() -> tuple[float, list[tuple[float, object]], list[str]]:
        loop = asyncio.get_running_loop()
        radio = Recording()
        hub_svc = InterPanService(
            radio, ieee=HUB, pan_id=HUB_PAN, whitelist=WHITELIST, security=InterPanSecurity()
        )
        server = InterPanKeyServer(hub_svc, [CA.issue(eui64_bytes(HUB), SUITE1)])
        server.start()
        initiator, session = await initiated(radio, server)
        deadline = session.next_deadline()
        assert deadline is not None
        [(_, response)] = radio.sent
        step = initiator.receive(response, loop.time())  # type: ignore[arg-type]
        [ephemeral] = run_inline(initiator, step, loop.time()).send
        radio.sent.clear()
        await asyncio.sleep(deadline - AHEAD - loop.time())
        for _ in range(BURST):  # malformed Initiates: each answered Terminate BAD_MESSAGE
            radio.deliver(to_hub(FLOODER, 0x00, b"\x01", 7))
        await asyncio.sleep(deadline + late - loop.time())
        radio.deliver(to_hub(TERMINAL, ephemeral.command_id, ephemeral.encode(), 2))
        await asyncio.sleep(2)
        await server.stop()
        await hub_svc.close()
        ended = [r.getMessage() for r in caplog.records if str(TERMINAL) in r.getMessage()]
        return deadline, radio.sent, ended

    with caplog.at_level(logging.INFO, logger="zse.interpan.ke"):
        deadline, sent, ended = run(main())
    answered = [at for at, message in sent if isinstance(message, EphemeralDataResponse)]
    if served:
        assert len(answered) == 1
        assert answered[0] > deadline  # read after it, answered
        assert ended == []
    else:
        assert answered == []  # timed out first (then the message, for no session: refused)
        assert "timed_out=True" in ended[0]
