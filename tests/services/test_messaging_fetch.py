"""#13.2: the Messaging client's start-up requests (Get Message Cancellation, then Get Last
Message, D.5.2.4) go to the ESI its role set after construction, and a malformed answer ends
the Cancel All loop instead of escaping from fetch()."""

from __future__ import annotations

from typing import Any

from tests.messaging.test_messaging_protocol import frame
from tests.services.test_server_records import Port
from zse.messaging import Message
from zse.messaging.protocol import display_payload
from zse.messaging.service import MessagingClient
from zse.se.ids import MessagingClientCommand, MessagingServerCommand
from zse.zcl.frame import ZclMessage

T0 = 800_000_000


def answer(command_id: int, payload: bytes) -> ZclMessage:
    """The ESI's answer to a request: a server-to-client Messaging command."""
    return frame(command_id, payload, from_server=True)[0]


class EsiPort(Port):
    """A device endpoint whose requests the ESI answers from ``answers`` (by command id)."""

    def __init__(self, answers: dict[int, ZclMessage]) -> None:
        super().__init__()
        self.answers = answers
        self.requests: list[tuple[int, int, int, bool]] = []

    async def request(self, dst: int, dst_ep: int, cluster_id: int, command_id: int,
                      payload: bytes = b"", **kwargs: Any) -> ZclMessage:  # fmt: skip
        self.requests.append((dst, dst_ep, command_id, kwargs["encrypt"]))
        return self.answers[command_id]


async def test_a_malformed_cancel_all_answer_ends_the_loop_and_get_last_message_follows() -> None:
    shown = Message(message_id=5, text="hello")
    port = EsiPort(
        {
            MessagingServerCommand.GET_MESSAGE_CANCELLATION: answer(
                MessagingClientCommand.CANCEL_ALL_MESSAGES,
                b"\x01\x02",  # 2 of its 4 bytes
            ),
            MessagingServerCommand.GET_LAST_MESSAGE: answer(
                MessagingClientCommand.DISPLAY_MESSAGE, display_payload(shown)
            ),
        }
    )
    client = MessagingClient(port, server_ep=0, clock=lambda: T0)
    client.server_nwk, client.server_ep = 0x0000, 7  # as the HAN role does once it found the ESI
    await client.start()
    try:
        assert port.requests == [
            (0x0000, 7, MessagingServerCommand.GET_MESSAGE_CANCELLATION, True),
            (0x0000, 7, MessagingServerCommand.GET_LAST_MESSAGE, True),
        ]
        assert client.current() == shown
    finally:
        await client.stop()
