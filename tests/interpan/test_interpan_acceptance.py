"""The hub's inter-PAN acceptance: 60 minutes after power-up, reopened by the installer's PIN
(locked out after wrong ones) or on loss of the wide-area link if configured; a flood of
spoofed key establishment requests does not starve the terminal the PIN named."""

from __future__ import annotations

from zigpy.types import EUI64

from zse.interpan._codec import DeliveryMode, InterPanFrame
from zse.interpan.acceptance import AcceptancePolicy, JoinAdmission, JoinVerdict
from zse.interpan.window import KE_INTERPAN_COMMANDS, CommandWhitelist, InterPanWindow, Verdict

HUB = EUI64.convert("00:0d:6f:00:00:00:00:01")
TERMINAL = EUI64.convert("00:0d:6f:00:0f:00:00:42")
#: Initiate Key Establishment Request, suite 1 (header only: the window reads the header).
INITIATE = bytes((0x11, 0x01, 0x00)) + bytes(52)


def window() -> InterPanWindow:
    return InterPanWindow(whitelist=CommandWhitelist(KE_INTERPAN_COMMANDS))


def initiate(source: EUI64) -> InterPanFrame:
    return InterPanFrame(
        src_pan_id=0xFFFF,
        src_ieee=source,
        dst_pan_id=0x1A62,
        dst_address=HUB,
        delivery_mode=DeliveryMode.UNICAST,
        cluster_id=0x0800,
        payload=INITIATE,
    )


def test_open_for_an_hour_after_power_up():
    policy = AcceptancePolicy(window())
    assert policy.power_up(100.0) == 3700.0
    assert policy.window.admit(initiate(TERMINAL), 3699.0) is Verdict.ACCEPTED
    assert policy.window.admit(initiate(TERMINAL), 3700.0) is Verdict.CLOSED


def test_pin_reopens_and_wrong_pins_lock_out():
    policy = AcceptancePolicy(window(), pin="482916", max_failures=3, lockout=300)
    policy.power_up(0.0)
    assert not policy.window.is_open(4000.0)
    assert not policy.enter_pin("000000", 4000.0)
    assert not policy.enter_pin("111111", 4001.0)
    assert not policy.enter_pin("222222", 4002.0)  # third wrong PIN: locked out
    assert not policy.enter_pin("482916", 4010.0)  # even the right one, for 300 s
    assert not policy.window.is_open(4010.0)
    assert policy.enter_pin("482916", 4302.0, terminal=TERMINAL)
    assert policy.window.is_open(4302.0)
    assert "482916" not in repr(policy)
    assert AcceptancePolicy(window()).enter_pin("482916", 0.0) is False  # no PIN configured


def test_wan_loss_reopens_only_if_configured():
    assert not AcceptancePolicy(window()).wan_lost(5000.0)
    policy = AcceptancePolicy(window(), reopen_on_wan_loss=True)
    assert policy.wan_lost(5000.0)
    assert policy.window.is_open(5000.0 + 3599)


def test_flood_does_not_starve_the_trusted_terminal():
    policy = AcceptancePolicy(window(), pin="1234")
    policy.power_up(0.0)
    assert policy.enter_pin("1234", 1.0, terminal=TERMINAL)
    admitted_flood = 0
    terminal_verdicts = []
    for i in range(10_000):
        now = 1.0 + i * 0.005  # 200 spoofed frames a second for 50 s
        spoofed = EUI64((0x10_0000 + i).to_bytes(8, "little"))
        admitted_flood += policy.window.admit(initiate(spoofed), now) is Verdict.ACCEPTED
        if i % 500 == 0:  # the terminal: one frame every 2.5 s
            terminal_verdicts.append(policy.window.admit(initiate(TERMINAL), now))
    assert terminal_verdicts == [Verdict.ACCEPTED] * 20
    assert admitted_flood <= 3 + 50  # the newcomers' shared bucket: burst 3, 1 a second


def test_flood_of_first_contacts_does_not_starve_a_terminal_that_tries_again():
    """No PIN: 10,000 spoofed sources, each used once at 200 a second, and a terminal whose
    key establishment times out and tries again every 16 s (its Initiate's response time and
    margin, then 1 s): its second try is admitted, as a returning source (issue #20.4)."""
    policy = AcceptancePolicy(window())
    policy.power_up(0.0)
    admitted_flood = 0
    terminal_verdicts = []
    for i in range(10_000):
        now = 1.0 + i * 0.005
        spoofed = EUI64((0x10_0000 + i).to_bytes(8, "little"))
        admitted_flood += policy.window.admit(initiate(spoofed), now) is Verdict.ACCEPTED
        if i % 3200 == 100:  # t = 1.5, 17.5, 33.5, 49.5
            terminal_verdicts.append(policy.window.admit(initiate(TERMINAL), now))
    assert terminal_verdicts[1:] == [Verdict.ACCEPTED] * 3
    assert admitted_flood <= 3 + 50  # still no more than the newcomers' bucket


def test_a_flood_repeating_its_addresses_shares_the_returning_priority():
    """The limit of fairness without authentication: an attacker that sends each spoofed
    address twice is as 'returning' as the terminal; the first contacts get nothing while
    returning sources want the budget, and the total stays the newcomers' budget."""
    policy = AcceptancePolicy(window())
    policy.power_up(0.0)
    limiter = policy.window.limiter
    first = second = 0
    for i in range(2_000):  # 200 a second for 10 s: address i, then address i - 100 again
        now = 1.0 + i * 0.005
        first += limiter.allow(EUI64((0x20_0000 + i).to_bytes(8, "little")), now)
        if i >= 100:
            second += limiter.allow(EUI64((0x20_0000 + i - 100).to_bytes(8, "little")), now)
    assert first <= 2  # the initial burst above the reserve, then nothing
    assert 9 <= second <= 3 + 10


def _eui(i: int) -> EUI64:
    return EUI64((0x7700_0000_0000_0000 + i).to_bytes(8, "little"))


def test_join_admission_one_permit_per_terminal():
    joins = JoinAdmission(code_change_interval=600)
    assert joins.decide(TERMINAL, "code-a", 0.0) == (JoinVerdict.ADMIT, 0.0)
    assert joins.decide(TERMINAL, "code-a", 5.0) == (JoinVerdict.RESEND, 0.0)
    assert joins.decide(TERMINAL, "code-b", 10.0) == (JoinVerdict.REFUSED, 0.0)
    assert len(joins) == 1
    joins = JoinAdmission(code_change_interval=60, permit_duration=120)
    joins.decide(TERMINAL, "code-a", 0.0)
    assert joins.decide(TERMINAL, "code-b", 61.0) == (JoinVerdict.ADMIT, 0.0)  # replaces it
    assert len(joins) == 1


def test_join_admission_bounds_pending_permits_and_their_rate():
    joins = JoinAdmission(max_pending=2, permit_duration=120, rate=1 / 15, burst=4)
    assert joins.decide(_eui(1), "a", 0.0)[0] is JoinVerdict.ADMIT
    assert joins.decide(_eui(2), "b", 1.0)[0] is JoinVerdict.ADMIT
    assert joins.decide(_eui(3), "c", 2.0) == (JoinVerdict.BUSY, 118.0)  # the first permit's end
    joins.joined(_eui(1))  # the first terminal joined: its permit ends
    assert joins.decide(_eui(3), "c", 3.0)[0] is JoinVerdict.ADMIT
    joins.joined(_eui(2))
    joins.joined(_eui(3))
    assert joins.decide(_eui(4), "d", 4.0)[0] is JoinVerdict.ADMIT  # the burst's fourth
    joins.joined(_eui(4))
    verdict, wait = joins.decide(_eui(5), "e", 5.0)  # no token left: 1 every 15 s
    assert verdict is JoinVerdict.BUSY
    assert 9.9 < wait <= 10.0  # 5 s of refill at 1/15 a second left
    assert joins.decide(_eui(5), "e", 5.0 + wait)[0] is JoinVerdict.ADMIT


def test_join_admission_serves_terminals_in_the_order_they_were_told_to_wait():
    joins = JoinAdmission(max_pending=1, permit_duration=100, rate=10, burst=10, grace=30)
    assert joins.decide(_eui(1), "a", 0.0)[0] is JoinVerdict.ADMIT
    assert joins.decide(_eui(2), "b", 10.0) == (JoinVerdict.BUSY, 90.0)
    # the permit ends; a terminal that never waited asks first, and is told to wait its turn
    assert joins.decide(_eui(3), "c", 100.0)[0] is JoinVerdict.BUSY
    assert joins.decide(_eui(2), "b", 101.0)[0] is JoinVerdict.ADMIT
    joins.joined(_eui(2))
    assert joins.decide(_eui(3), "c", 102.0)[0] is JoinVerdict.ADMIT
    # a terminal told to wait that does not come back within its wait and the grace loses its turn
    joins.joined(_eui(3))
    assert joins.decide(_eui(1), "a2", 103.0)[0] is JoinVerdict.ADMIT
    assert joins.decide(_eui(4), "d", 104.0)[0] is JoinVerdict.BUSY  # wait 99 s
    joins.joined(_eui(1))
    assert joins.decide(_eui(5), "e", 105.0)[0] is JoinVerdict.BUSY  # _eui(4)'s turn first
    assert joins.decide(_eui(5), "e", 104.0 + 99 + 31)[0] is JoinVerdict.ADMIT


def test_join_admission_under_a_flood_of_terminals_stays_bounded():
    """1,000 authenticated terminals (each got a key: each cost the flood a certificate) hand
    over within 100 s: at most the burst and the rate are admitted, the hub remembers at most
    max_pending permits and max_waiting turns, and a terminal that keeps its turn gets in."""
    joins = JoinAdmission()
    admitted = 0
    for i in range(1000):
        admitted += joins.decide(_eui(i), f"code-{i}", i * 0.1)[0] is JoinVerdict.ADMIT
    assert admitted <= 4
    assert len(joins) <= joins.max_pending
    assert len(joins._waiting) <= joins.max_waiting
    assert joins.counts[JoinVerdict.BUSY] == 1000 - admitted
