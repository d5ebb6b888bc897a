"""A hostile review of the frame security core: the security level a frame claims is
ignored (the receiver's own, 5 = ENC-MIC-32, is patched in, ZB 4.3.1.2 step 1), a MIC of
another length never verifies, a frame counter of 0xFFFFFFFF neither wraps nor secures a
frame, an APS frame may not claim the network key, and every decoder meets frames that parse
deep (a secured NWK version-2 header, a secured APS header, a secured inter-PAN stub) then go
wrong, with the DecodeError family only."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zse.errors import BadMic, DecodeError, InvalidFrame, StaleFrameCounter, UnknownKey
from zse.security import COUNTER_EXHAUSTED, AuxHeader, IncomingCounters, KeyId
from zse.security import frames as sec
from zse.security.frames import secure_aps, secure_nwk, unsecure_aps, unsecure_nwk

KEY = bytes(range(16))
SOURCE = 0x000D6F000C000001
NWK_HEADER = bytes.fromhex("0800341200001e01")
APS_HEADER = bytes.fromhex("0001000709010105")
PAYLOAD = bytes.fromhex("190700")


def _nwk(counter: int = 7) -> bytes:
    return secure_nwk(NWK_HEADER, PAYLOAD, key=KEY, key_seq=0, counter=counter, source=SOURCE)


def _with_level(frame: bytes, at: int, level: int) -> bytes:
    return frame[:at] + bytes(((frame[at] & ~0b111) | level,)) + frame[at + 1 :]


@pytest.mark.parametrize("level", range(8))
def test_the_level_a_frame_claims_is_ignored_and_its_mic_always_checked(level):
    """Whatever level the security control claims (0: none, 4: ENC without a MIC, ...), the
    receiver checks a 4-byte MIC with level 5 patched in; a frame claiming level 4 with
    its MIC stripped is refused, never taken as an unauthenticated ENC frame."""
    nwk = _with_level(_nwk(), len(NWK_HEADER), level)
    assert unsecure_nwk(nwk, {0: KEY}).payload == PAYLOAD
    aps = secure_aps(APS_HEADER, PAYLOAD, link_key=KEY, counter=7, source=SOURCE)
    aps = _with_level(aps, len(APS_HEADER), level)
    assert unsecure_aps(aps, KEY).payload == PAYLOAD
    long = secure_nwk(NWK_HEADER, bytes(12), key=KEY, key_seq=0, counter=8, source=SOURCE)
    stripped = _with_level(long, len(NWK_HEADER), 4)[:-4]  # level 4, its MIC cut off
    with pytest.raises(BadMic):
        unsecure_nwk(stripped, {0: KEY})


def test_a_mic_of_another_length_never_verifies():
    """Level 5 is MIC-32: a frame with 8 MIC bytes (MIC-64) or 3 is refused."""
    frame = _nwk()
    with pytest.raises(BadMic):
        unsecure_nwk(frame + bytes(4), {0: KEY})
    header_end = sec.nwk_header_length(frame) + AuxHeader.decode(frame[len(NWK_HEADER) :])[0].length
    with pytest.raises(InvalidFrame, match="MIC"):
        unsecure_nwk(frame[: header_end + 3], {0: KEY})


def test_a_frame_counter_of_0xffffffff_never_wraps():
    """ZB 4.3.1.1: 0xFFFFFFFF secures no frame. A receiver accepts it once (a sender's
    counter may jump), and then every frame from that sender is stale: counter 0 does not
    come round again (ZB 4.3.1.2 steps 5, 8)."""
    for secure in (
        lambda c: secure_nwk(NWK_HEADER, b"", key=KEY, key_seq=0, counter=c, source=SOURCE),
        lambda c: secure_aps(APS_HEADER, b"", link_key=KEY, counter=c, source=SOURCE),
    ):
        secure(COUNTER_EXHAUSTED - 1)
        with pytest.raises(ValueError, match="exhausted"):
            secure(COUNTER_EXHAUSTED)
    counters = IncomingCounters()
    counters.accept(SOURCE, 5)
    counters.accept(SOURCE, COUNTER_EXHAUSTED)  # a jump
    for counter in (0, 6, COUNTER_EXHAUSTED):
        with pytest.raises(StaleFrameCounter):
            counters.check(SOURCE, counter)
    assert counters.expected(SOURCE) == 1 << 32


def test_a_nwk_frame_under_another_key_sequence_number_is_unknown():
    """After a Switch Key the receiver holds the new key only: a frame under the old key
    sequence number is refused before any decryption (ZB 4.3.1.2 step 3)."""
    with pytest.raises(UnknownKey, match="sequence number 0"):
        unsecure_nwk(_nwk(), {1: KEY})


def test_an_aps_frame_may_not_claim_the_network_key():
    """APS security uses a link key or a key derived from it (ZB 4.4.1.2): an APS frame
    whose key identifier names the network key is refused."""
    aps = bytes((APS_HEADER[0] | 0x20,)) + APS_HEADER[1:]
    aux = AuxHeader(KeyId.NETWORK, 1, SOURCE, 0).encode(0)
    with pytest.raises(UnknownKey, match="network key"):
        unsecure_aps(aps + aux + bytes(8), KEY)


#: Starts that parse deep: a secured NWK version-2 header (with IEEE addresses, a source
#: route), a secured APS data / command / acknowledgement header, a secured inter-PAN stub.
DEEP_STARTS = [
    bytes.fromhex("0802341200001e01"),
    bytes.fromhex("081a341200001e01") + bytes(8),
    bytes.fromhex("0806341200001e01"),
    bytes.fromhex("4806341200001e01"),
    bytes.fromhex("21"),
    bytes.fromhex("2100070901010501"),
    bytes.fromhex("a1"),
    bytes.fromhex("2205"),
    bytes.fromhex("23"),
    bytes.fromhex("23070901"),
]
SECURITY_DECODERS = [
    AuxHeader.decode,
    sec.split_nwk,
    sec.split_aps,
    sec.split_interpan_aps,
    sec.nwk_header_length,
    sec.aps_header_length,
    lambda d: unsecure_nwk(d, {0: KEY, 1: KEY}, counters=IncomingCounters()),
    lambda d: unsecure_aps(d, KEY, counters=IncomingCounters()),
    lambda d: unsecure_aps(d, KEY, source=SOURCE),
    lambda d: unsecure_aps(d, None, source=SOURCE),
]


@settings(max_examples=1000, deadline=None)
@given(start=st.sampled_from(DEEP_STARTS), rest=st.binary(max_size=64))
def test_frames_that_parse_deep_then_go_wrong_raise_decode_errors_only(start, rest):
    frame = start + rest
    for decode in SECURITY_DECODERS:
        with contextlib.suppress(DecodeError):  # anything else fails the test
            sealed = decode(frame)
            if hasattr(sealed, "open"):
                sealed.open(KEY, SOURCE)
