"""Arguments of the CBKE recipes: any bytes-like object where bytes go, the documented error
for anything else, never a foreign library's exception; and an ECMQV result at infinity is the
partner's BAD_MESSAGE, not an exception out of the machine's computation."""

from __future__ import annotations

import pytest

from zse.cbke import SUITE1, SUITE2
from zse.cbke.ecdsa import VerifyingKey, sign, sign_digest, verify, verify_digest
from zse.cbke.keys import confirmation_macs, generate_key_pair
from zse.cbke.machine import ComputeFailed, _compute_keys
from zse.cbke.messages import TerminateStatus
from zse.errors import InvalidPoint

PRIVATE = (12345).to_bytes(SUITE1.private_key_size)


@pytest.mark.parametrize("form", [bytes, bytearray, memoryview])
def test_a_signature_verifies_in_any_bytes_like_form(form):
    public = generate_key_pair(SUITE1, PRIVATE)[1]
    signature = sign(SUITE1, PRIVATE, b"msg")
    assert verify(SUITE1, public, b"msg", form(signature))
    assert verify(SUITE1, VerifyingKey(SUITE1, form(public)), b"msg", form(signature))
    assert not verify(SUITE1, public, b"other", form(signature))
    assert not verify(SUITE1, public, b"msg", signature.hex())  # not bytes: invalid


@pytest.mark.parametrize("key", [None, "hex", 7])
def test_a_verifying_key_that_is_not_bytes_is_an_invalid_point(key):
    public = generate_key_pair(SUITE1, PRIVATE)[1]
    value = public.hex() if key == "hex" else key
    with pytest.raises(InvalidPoint, match="point must be bytes"):
        VerifyingKey(SUITE1, value)
    with pytest.raises(InvalidPoint, match="point must be bytes"):
        verify(SUITE1, value, b"msg", sign(SUITE1, PRIVATE, b"msg"))


def test_a_digest_is_bytes_and_not_empty():
    public = generate_key_pair(SUITE1, PRIVATE)[1]
    with pytest.raises(ValueError, match="a digest is at least one byte"):
        sign_digest(SUITE1, PRIVATE, b"")
    with pytest.raises(ValueError, match="a digest is at least one byte"):
        verify_digest(SUITE1, public, b"", bytes(SUITE1.signature_size))
    for digest in ("abc", None):
        with pytest.raises(TypeError, match="a digest is bytes"):
            sign_digest(SUITE1, PRIVATE, digest)
    digest = bytes(range(16))
    signature = sign_digest(SUITE1, PRIVATE, memoryview(digest))
    assert signature == sign_digest(SUITE1, PRIVATE, digest)
    assert verify_digest(SUITE1, public, memoryview(digest), signature)


def test_confirmation_macs_take_memoryview_eui64s_like_their_neighbours():
    public = generate_key_pair(SUITE1, PRIVATE)[1]
    u, v = bytes(range(8)), bytes(range(8, 16))
    expected = confirmation_macs(bytes(16), u, v, public, public)
    assert confirmation_macs(bytes(16), memoryview(u), memoryview(v), public, public) == expected


@pytest.mark.parametrize("suite", [SUITE1, SUITE2])
def test_ecmqv_at_infinity_is_the_partners_bad_message(suite):
    """No partner reaches this by chance (~2^-80 a try): the partner's static point is made
    here from its ephemeral point E as ``-avf(E)^-1 * E``, so that ``E + avf(E) * Qs'`` (SEC 1
    3.4) is the point at infinity, and the computation is called directly with it."""
    curve = suite.curve
    n = curve.n
    half = (n.bit_length() + 1) // 2
    own_static = generate_key_pair(suite)[0]
    own_ephemeral, own_ephemeral_public = generate_key_pair(suite)
    peer_ephemeral_public = generate_key_pair(suite)[1]
    e = curve.decode_point(peer_ephemeral_public)
    avf = (e.x & ((1 << half) - 1)) | (1 << half)
    peer_static = curve.mul(-pow(avf, -1, n) % n, e)
    assert curve.add(e, curve.mul(avf, peer_static)).infinity
    result = _compute_keys(
        suite,
        static_private=own_static,
        ephemeral_private=own_ephemeral,
        peer_static_point=peer_static,
        peer_ephemeral_public=peer_ephemeral_public,
        initiator_eui64=bytes(8),
        responder_eui64=bytes(range(8)),
        initiator_ephemeral=own_ephemeral_public,
        responder_ephemeral=peer_ephemeral_public,
        own_ephemeral_public=own_ephemeral_public,
    )
    assert isinstance(result, ComputeFailed)
    assert result.status is TerminateStatus.BAD_MESSAGE
    assert "point at infinity" in result.reason
