"""What the inter-PAN service does with a received frame before the window judges it: the
address checks first, then security and fragments (audit of inter-PAN, findings 1 and 3).

The transport is a receive queue fed raw MAC frames, as the EZSP transport is; the clock is
the simulator's virtual-time loop."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from zigpy.types import EUI64

from zse.interpan import BROADCAST_ADDRESS, SE_PROFILE_ID, DeliveryMode, InterPanFrame
from zse.interpan.fragment import Reassembler, fragment_response, split
from zse.interpan.service import InterPanService
from zse.interpan.transports import ReceiveQueue
from zse.interpan.window import InterPanWindow, SourceLimiter, Verdict
from zse.sim import run

ME = EUI64.convert("00:0d:6f:00:00:00:00:01")
OTHER_NODE = EUI64.convert("00:0d:6f:00:00:00:00:02")
TERMINAL = EUI64.convert("00:0d:6f:00:0a:bc:de:f0")
MY_PAN = 0x1234
TUNNELING = 0x0704
MESSAGE = bytes((0x11, 1, 0x02, 0x07, 0x00)) + bytes(range(256)) * 2  # 517 octets


class RecordingTransport(ReceiveQueue):
    """Received frames are raw MAC frames (decoded as EZSP's transport does); sent frames are
    kept."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[InterPanFrame] = []

    async def send(self, frame: InterPanFrame) -> None:
        self.sent.append(frame)


@dataclass
class Node:
    transport: RecordingTransport = field(default_factory=RecordingTransport)
    reassembler: Reassembler = field(default_factory=Reassembler)
    window: InterPanWindow | None = None

    def __post_init__(self) -> None:
        self.service = InterPanService(
            self.transport,
            ieee=ME,
            pan_id=MY_PAN,
            window=self.window,
            reassembler=self.reassembler,
        )
        self.inbox = self.service.subscribe()

    async def hear(self, *frames: bytes) -> None:
        """Each frame on the air at once, then 10 ms (virtual) for the service to handle them."""
        for frame in frames:
            self.transport.deliver_bytes(frame)
        await asyncio.sleep(0.01)


def fragment_frame(
    fragment: bytes,
    *,
    src: EUI64 = TERMINAL,
    mode: DeliveryMode = DeliveryMode.UNICAST,
    dst: EUI64 = ME,
    dst_pan: int = MY_PAN,
    profile: int = SE_PROFILE_ID,
) -> bytes:
    return InterPanFrame(
        src_pan_id=0x4321,
        src_ieee=src,
        dst_pan_id=dst_pan,
        dst_address=dst if mode is DeliveryMode.UNICAST else BROADCAST_ADDRESS,
        delivery_mode=mode,
        group_id=7 if mode is DeliveryMode.GROUP else None,
        cluster_id=TUNNELING,
        profile_id=profile,
        payload=fragment,
    ).to_bytes()


def silicon_labs_fragments(message: bytes) -> list[bytes]:
    """``message`` cut as Silicon Labs' plugin cuts it (``interpan.c``: 91 octets of message
    a fragment, 95 with the fragment header, a 125-octet MAC frame but the last) and sent
    unicast to this node."""
    return [fragment_frame(fragment) for fragment in split(message, 91)]


def test_silicon_labs_full_size_fragments_are_answered_and_reassembled() -> None:
    """Audit finding 1: every fragment but the last of a Silicon Labs message is a 127-octet
    PHY frame with 95 octets of payload; zse answers each and puts the message together."""

    async def main() -> None:
        node = Node()
        frames = silicon_labs_fragments(MESSAGE)
        assert [len(f) for f in frames] == [125] * 5 + [125 - 91 + len(MESSAGE) % 91]
        await node.hear(*frames)
        assert node.transport.invalid == 0
        assert [f.payload for f in node.transport.sent] == [
            fragment_response(i, ok=True) for i in range(6)
        ]
        assert node.reassembler.counts["completed"] == 1
        await node.service.close()

    run(main())


def test_fragments_not_for_this_node_are_neither_answered_nor_held() -> None:
    """Audit finding 3: a fragment unicast to another node, for another PAN or profile, or
    broadcast or group (Silicon Labs sends fragments unicast only) gets no answer and no
    reassembly slot, so it cannot crowd out the real terminal."""

    async def main() -> None:
        node = Node(reassembler=Reassembler(max_partners=4))
        first = split(MESSAGE, 87)[0]
        strangers = [EUI64.convert(f"aa:00:00:00:00:00:00:{i:02x}") for i in range(6)]
        await node.hear(
            fragment_frame(first, src=strangers[0], dst=OTHER_NODE),
            fragment_frame(first, src=strangers[1], dst_pan=0x9999),
            fragment_frame(first, src=strangers[2], profile=0x0104),
            fragment_frame(first, src=strangers[3], mode=DeliveryMode.BROADCAST),
            fragment_frame(
                first, src=strangers[4], mode=DeliveryMode.BROADCAST, dst_pan=BROADCAST_ADDRESS
            ),
            fragment_frame(first, src=strangers[5], mode=DeliveryMode.GROUP),
        )
        assert node.transport.sent == []
        assert len(node.reassembler) == 0
        await node.hear(fragment_frame(first))  # the real terminal's first fragment
        assert [f.payload for f in node.transport.sent] == [fragment_response(0, ok=True)]
        assert node.transport.sent[0].dst_address == TERMINAL
        await node.service.close()

    run(main())


def test_a_fragment_starting_a_message_must_pass_the_window() -> None:
    """Audit finding 3: with a window, a fragment that starts a message is answered and held
    only while the window is open and its rate limiter lets the sender in; the fragments that
    continue a message in progress are not charged again."""

    async def main() -> None:
        window = InterPanWindow(limiter=SourceLimiter(newcomer_burst=2, first_contact_reserve=0))
        node = Node(window=window)
        first = split(MESSAGE, 87)
        await node.hear(fragment_frame(first[0]))
        assert node.transport.sent == []  # closed window: no answer
        assert window.counts[Verdict.CLOSED] == 1
        window.open(asyncio.get_running_loop().time())
        strangers = [EUI64.convert(f"aa:00:00:00:00:00:01:{i:02x}") for i in range(5)]
        await node.hear(*(fragment_frame(first[0], src=s) for s in strangers))
        assert len(node.transport.sent) == 2  # the newcomer budget, then rate limited
        assert window.counts[Verdict.RATE_LIMITED] == 3
        assert len(node.reassembler) == 2
        # a partner whose message is in progress goes on without a token
        await node.hear(*(fragment_frame(f, src=strangers[0]) for f in first[1:]))
        answered = [f.payload for f in node.transport.sent if f.dst_address == strangers[0]]
        assert answered == [fragment_response(i, ok=True) for i in range(len(first))]
        assert node.reassembler.counts["completed"] == 1
        await node.service.close()

    run(main())


def test_a_broadcast_payload_that_looks_like_a_fragment_is_judged_as_zcl() -> None:
    """A ZCL frame may start 0x00 (profile-wide, client to server); broadcast, it is never a
    fragment: it goes to the window (here the whitelist, which refuses it), unanswered."""

    async def main() -> None:
        node = Node()
        (whole,) = split(b"ab", 2)  # 00 00 01 02 61 62: a one-fragment message, by its form
        await node.hear(fragment_frame(whole, mode=DeliveryMode.BROADCAST))
        assert node.transport.sent == []
        assert len(node.reassembler) == 0
        assert await node.inbox.receive(timeout=1) is None
        await node.service.close()

    run(main())
