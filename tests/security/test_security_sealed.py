"""A secured frame split once and tried with several keys (#15 benchmark: zse capture faster
than tshark): :class:`Sealed` gives what :func:`unsecure_nwk` / :func:`unsecure_aps` give, the
MIC is checked on every try (a wrong key, a flipped bit: None), and the cached cipher and
derived keys give the same bytes as fresh ones."""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.security.test_security_core import (
    APS_HEADER,
    DEVICE,
    LINK_KEY,
    NWK_HEADER,
    NWK_KEY,
    OTHER_KEY,
    PAYLOAD,
)
from zse.installcode import hmac_mmo
from zse.security.ccm import key_load_key, key_transport_key
from zse.security.frames import (
    aps_key,
    secure_aps,
    secure_nwk,
    split_aps,
    split_nwk,
    unsecure_aps,
    unsecure_nwk,
)
from zse.security.header import KeyId, nonce


@settings(max_examples=100, deadline=None)
@given(counter=st.integers(0, 0xFFFF_FFFE), payload=st.binary(max_size=60))
def test_split_nwk_opens_as_unsecure_nwk(counter, payload):
    frame = secure_nwk(NWK_HEADER, payload, key=NWK_KEY, key_seq=3, counter=counter, source=DEVICE)
    sealed = split_nwk(frame)
    assert sealed.open(NWK_KEY, DEVICE) == payload
    assert sealed.open(OTHER_KEY, DEVICE) is None  # a wrong key: the MIC fails
    assert sealed.open(NWK_KEY, DEVICE ^ 1) is None  # a wrong sender in the nonce
    opened = unsecure_nwk(frame, {3: NWK_KEY})
    assert (opened.header, opened.aux, opened.payload) == (sealed.header, sealed.aux, payload)
    # the nonce and a are CCM*'s (ZB 4.5.2.2, 4.3.1.2): a fresh AESCCM opens the frame with them
    patched = sealed.aux.with_level(5)
    assert sealed.nonce(DEVICE) == nonce(patched, DEVICE)
    assert sealed.authenticated == sealed.header + patched.encode()
    fresh = AESCCM(NWK_KEY, tag_length=4)
    assert fresh.decrypt(nonce(patched, DEVICE), sealed.rest, sealed.authenticated) == payload


@settings(max_examples=100, deadline=None)
@given(bit=st.integers(0, 8 * 40 - 1))
def test_every_flipped_bit_fails_the_mic_of_a_split_frame(bit):
    frame = bytearray(
        secure_nwk(NWK_HEADER, PAYLOAD, key=NWK_KEY, key_seq=0, counter=7, source=DEVICE)
    )
    if bit // 8 == len(NWK_HEADER) and bit % 8 < 3:
        return  # the security level as sent: the receiver puts its own in (ZB 4.3.1.2)
    frame[bit // 8] ^= 1 << (bit % 8)
    try:
        sealed = split_nwk(bytes(frame))
    except ValueError:  # InvalidFrame: the header no longer parses
        return
    source = sealed.aux.source
    assert source is not None
    assert sealed.open(NWK_KEY, source) is None


@settings(max_examples=50, deadline=None)
@given(key_id=st.sampled_from([KeyId.DATA, KeyId.KEY_TRANSPORT, KeyId.KEY_LOAD]))
def test_split_aps_opens_as_unsecure_aps(key_id):
    frame = secure_aps(APS_HEADER, PAYLOAD, link_key=LINK_KEY, counter=5, source=DEVICE,
                       key_id=key_id)  # fmt: skip
    sealed = split_aps(frame)
    assert sealed.open(aps_key(key_id, LINK_KEY), DEVICE) == PAYLOAD
    assert sealed.open(LINK_KEY if key_id != KeyId.DATA else OTHER_KEY, DEVICE) is None
    assert unsecure_aps(frame, LINK_KEY).payload == PAYLOAD


def test_cached_derived_keys_equal_fresh_ones():
    for _ in range(2):  # the second time from the cache
        assert key_transport_key(LINK_KEY) == hmac_mmo(LINK_KEY, b"\x00")
        assert key_load_key(bytearray(LINK_KEY)) == hmac_mmo(LINK_KEY, b"\x02")
