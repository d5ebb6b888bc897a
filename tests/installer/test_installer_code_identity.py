"""The hub tells install codes apart by the whole code, never by the 16-bit fingerprint that
reprs and logs show: another code with the same fingerprint takes ~2^16 tries to find, and a
terminal that hands one over is refused, not answered "accepted" for a code never acted on."""

from __future__ import annotations

import random

import pytest
import zigpy.types as t

from tests.installer.site import build, terminal_bootstrap
from zse.installcode import InstallCode
from zse.installer.service import hand_over
from zse.interpan.acceptance import JoinAdmission, JoinVerdict
from zse.sim import JoinRefused

TERMINAL = t.EUI64.convert("00:0d:6f:00:0f:00:00:01")


def _same_fingerprint(code: InstallCode, seed: int = 1) -> InstallCode:
    """Another code of ``code``'s size with the same fingerprint (~2^16 tries)."""
    rng = random.Random(seed)
    while True:
        other = InstallCode.from_data(rng.randbytes(len(code.data)))
        if other.fingerprint == code.fingerprint and other != code:
            return other


def test_codes_with_one_fingerprint_are_different_codes() -> None:
    a = InstallCode.from_data(bytes.fromhex("83FED3407A939723A5C639B26916D505"))
    b = _same_fingerprint(a)
    assert a.fingerprint == b.fingerprint
    assert a.link_key != b.link_key
    joins = JoinAdmission(code_change_interval=600)
    assert joins.decide(TERMINAL, bytes(a), 0.0) == (JoinVerdict.ADMIT, 0.0)
    assert joins.decide(TERMINAL, bytes(b), 10.0) == (JoinVerdict.REFUSED, 0.0)
    assert joins.decide(TERMINAL, bytearray(bytes(a)), 20.0) == (JoinVerdict.RESEND, 0.0)


def test_admission_keeps_no_install_code() -> None:
    """A permit keeps a digest under a key of the instance's own, not the code."""
    code = InstallCode.from_data(bytes(range(16)))
    one, two = JoinAdmission(), JoinAdmission()
    one.decide(TERMINAL, bytes(code), 0.0)
    two.decide(TERMINAL, bytes(code), 0.0)
    kept = [p.digest for j in (one, two) for p in j._permits.values()]
    assert len(kept[0]) == 32
    assert bytes(code) not in kept[0]
    assert kept[0] != kept[1]  # keyed: nothing to compare across hubs or runs
    assert bytes(code).hex() not in repr(one)


async def test_a_code_with_the_same_fingerprint_is_refused() -> None:
    """The terminal's code was accepted; another code with the same fingerprint from the same
    terminal is refused and never reaches ``on_handover`` (it used to be answered accepted as
    "a resend", with no permit for its key)."""
    site = await build(128)
    boot = terminal_bootstrap(site)
    join = boot.join

    async def refuse() -> None:
        raise JoinRefused("not yet")

    boot.join = refuse  # key establishment and the handover only
    with pytest.raises(JoinRefused):
        await boot.run()
    boot.join = join
    assert site.device_log == [site.terminal.ieee]
    twin = _same_fingerprint(site.code)
    assert twin.fingerprint == site.code.fingerprint
    with pytest.raises(PermissionError):
        await hand_over(
            site.terminal_ip, hub=site.hub_ieee, hub_pan_id=site.pan_id, install_code=twin
        )
    assert site.device_log == [site.terminal.ieee]  # the second code was not acted on
    assert site.joins.counts[JoinVerdict.REFUSED] == 1
    # the very same code again is a resend: answered accepted, not told again
    await hand_over(
        site.terminal_ip, hub=site.hub_ieee, hub_pan_id=site.pan_id, install_code=site.code
    )
    assert site.device_log == [site.terminal.ieee]
    await boot.run()
    assert site.terminal.joined
    await site.stop()
