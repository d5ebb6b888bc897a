"""The Prepayment cores at the ZCL frame (SE 1.2 D.7), sans-IO: every frame, garbage included,
gets a Step (a status, frames, events), never an exception; logs and answers fit a frame; the
utility's commands need an authorized sender."""

from __future__ import annotations

import dataclasses
import json

from hypothesis import given
from hypothesis import strategies as st
from zigpy.zcl import foundation

from tests.price.test_price_protocol import frame
from zse.prepayment.core import MAX_PENDING, Debt, FriendlyCredit, PrepayAccount, PrepayConfig
from zse.prepayment.protocol import (
    PrepaymentClientProtocol,
    PrepaymentServerProtocol,
    TopUpAnswered,
)
from zse.prepayment.service import _step
from zse.prepayment.wire import Prepayment, SnapshotCause, TopUpResult
from zse.se.frames import max_zcl_payload
from zse.se.ids import (
    PREPAYMENT,
    PrepaymentAttribute,
    PrepaymentClientCommand,
    PrepaymentServerCommand,
    debt_attribute,
    top_up_attribute,
)
from zse.zcl.codec import decode_command, encode_command
from zse.zcl.frame import Step

NOW = 800_000_000
S, C = PrepaymentServerCommand, PrepaymentClientCommand
A = PrepaymentAttribute


def prepay(cluster_frame):
    return dataclasses.replace(cluster_frame, cluster_id=PREPAYMENT)


def server() -> PrepaymentServerProtocol:
    account = PrepayAccount(
        PrepayConfig(initial_credit=50, emergency_credit_limit=500, emergency_credit_threshold=100),
        validator=lambda code: (
            int(code[-3:]) if code[-3:].isdigit() else TopUpResult.Rejected_Invalid_Top_Up
        ),
    )
    return PrepaymentServerProtocol(account)


def command(name: str, **fields) -> bytes:
    definition = getattr(Prepayment.ServerCommandDefs, name)
    return encode_command(definition.schema(**fields))


@given(st.integers(0, 0x10), st.booleans(), st.binary(max_size=80))
def test_garbage_frames_give_the_server_and_client_a_step(
    command_id: int, from_server: bool, data: bytes
) -> None:
    for core in (server(), PrepaymentClientProtocol()):
        step = _step(core, prepay(frame(command_id, data, from_server=from_server)), NOW)
        assert isinstance(step, Step)


def test_a_long_top_up_log_goes_in_several_frames_each_fitting_one() -> None:
    core = server()
    for i in range(30):
        core.account.top_up(f"{i:017d}100".encode(), 2, NOW + i)
    msg = prepay(frame(S.GET_TOP_UP_LOG, command("get_top_up_log", latest_end_time=NOW + 99,
                                                 number_of_records=0)))  # fmt: skip
    step = _step(core, msg, NOW + 100)
    assert len(step.sends) > 1
    codes = []
    for index, send in enumerate(step.sends):
        assert len(send.payload) <= max_zcl_payload(group=False)
        assert send.payload[:2] == bytes((index, len(step.sends)))
        decoded, _ = decode_command(Prepayment, C.PUBLISH_TOP_UP_LOG, send.payload,
                                    from_server=True)  # fmt: skip
        codes += [code for code, _, _ in decoded.entries]
    assert codes == [f"{i:017d}100".encode() for i in reversed(range(30))]  # newest first


def test_the_utilitys_commands_need_an_authorized_sender() -> None:
    payload = command("credit_adjustment", issuer_event_id=1, start_time=NOW,
                      credit_adjustment_type=0, credit_adjustment_value=5000)  # fmt: skip
    core = server()
    step = _step(core, prepay(frame(S.CREDIT_ADJUSTMENT, payload)), NOW)
    assert step.status == foundation.Status.NOT_AUTHORIZED
    assert core.account.credit == 50
    assert not core.changed
    core.authorize = lambda msg: msg.src_nwk == 0x1234
    step = _step(core, prepay(frame(S.CREDIT_ADJUSTMENT, payload)), NOW)
    assert step.status == foundation.Status.SUCCESS
    assert core.account.credit == 5050
    assert core.changed
    catch_up = command("change_debt", issuer_event_id=1, debt_label=b"", debt_amount=10,
                       debt_recovery_method=2, debt_amount_type=0, debt_recovery_start_time=0,
                       debt_recovery_collection_time=0, debt_recovery_frequency=0,
                       debt_recovery_amount=1, debt_recovery_balance_percentage=0)  # fmt: skip
    step = _step(core, prepay(frame(S.CHANGE_DEBT, catch_up)), NOW)
    assert step.status == foundation.Status.INVALID_FIELD


def test_debts_added_past_what_accumulated_debt_holds_are_refused() -> None:
    """Change Debt (D.7.2.3.2) adding to a debt, repeated: a total past Accumulated Debt's
    int32 (D.7.2.2.1.6) is INVALID_FIELD, nothing changed; it was taken, and the debt owed
    and Accumulated Debt read back as less than it was (clamped: money lost)."""
    core = server()
    core.authorize = lambda msg: True
    add = command("change_debt", issuer_event_id=1, debt_label=b"", debt_amount=0x7FFFFFFF,
                  debt_recovery_method=0, debt_amount_type=1, debt_recovery_start_time=0,
                  debt_recovery_collection_time=0, debt_recovery_frequency=1,
                  debt_recovery_amount=0, debt_recovery_balance_percentage=0)  # fmt: skip
    assert _step(core, prepay(frame(S.CHANGE_DEBT, add)), NOW).status == foundation.Status.SUCCESS
    again = _step(core, prepay(frame(S.CHANGE_DEBT, add)), NOW)
    assert again.status == foundation.Status.INVALID_FIELD
    assert core.account.accumulated_debt == 0x7FFFFFFF
    values = core.attribute_values(NOW)
    assert values[A.ACCUMULATED_DEBT][1] == values[debt_attribute(A.DEBT_AMOUNT_1, 1)][1]


def test_the_utilitys_settings_outlive_a_restart() -> None:
    """Emergency Credit Setup, Set Maximum Credit Limit, Set Overall Debt Cap and Change
    Payment Mode change the account's settings: the stored account carries them, so a
    restart (or a store failure's undo) does not bring the configuration's values back."""
    core = server()
    core.authorize = lambda msg: True
    frames = [
        (S.EMERGENCY_CREDIT_SETUP, command("emergency_credit_setup", issuer_event_id=1,
         start_time=NOW, emergency_credit_limit=0, emergency_credit_threshold=0)),
        (S.SET_MAXIMUM_CREDIT_LIMIT, command("set_maximum_credit_limit", provider_id=1,
         issuer_event_id=2, implementation_date_time=NOW, maximum_credit_level=2000,
         maximum_credit_per_top_up=500)),
        (S.SET_OVERALL_DEBT_CAP, command("set_overall_debt_cap", provider_id=1,
         issuer_event_id=3, implementation_date_time=NOW, overall_debt_cap=300)),
        (S.CHANGE_PAYMENT_MODE, command("change_payment_mode", provider_id=1,
         issuer_event_id=4, implementation_date_time=NOW,
         proposed_payment_control_configuration=0x0003, cut_off_value=-100)),
    ]  # fmt: skip
    before = server().account.snapshot()
    for command_id, payload in frames:
        step = _step(core, prepay(frame(command_id, payload)), NOW)
        assert step.status in (None, foundation.Status.SUCCESS), command_id
    stored = json.loads(json.dumps(core.account.snapshot()))
    for restarted in (server().account, core.account):
        if restarted is core.account:  # a store failure's undo puts the old settings back
            restarted.restore(before)
            restarted.restore(stored)
        else:
            restarted.restore(stored)
        assert (restarted.emergency_credit_limit, restarted.emergency_credit_threshold) == (0, 0)
        assert not restarted.emergency_available
        config = restarted.config
        assert (config.max_credit_limit, config.max_credit_per_top_up) == (2000, 500)
        assert (config.overall_debt_cap, config.payment_control, config.cut_off_value) == (
            300, 0x0003, -100)  # fmt: skip
    undone = server().account
    undone.restore(stored)
    undone.restore(before)
    assert undone.emergency_credit_limit == 500
    assert undone.config == server().account.config


def test_select_and_top_up_answers() -> None:
    core = server()
    select = command("select_available_emergency_credit", command_issue_date_time=NOW,
                     originating_device=2)  # fmt: skip
    step = _step(core, prepay(frame(S.SELECT_AVAILABLE_EMERGENCY_CREDIT, select)), NOW)
    assert step.status == foundation.Status.SUCCESS
    again = _step(core, prepay(frame(S.SELECT_AVAILABLE_EMERGENCY_CREDIT, select)), NOW)
    assert again.status == foundation.Status.ACTION_DENIED
    top_up = command("consumer_top_up", originating_device=2, top_up_code=b"0000000000000000120")
    (send,) = _step(core, prepay(frame(S.CONSUMER_TOP_UP, top_up)), NOW).sends
    assert send.command_id == C.CONSUMER_TOP_UP_RESPONSE
    answer = _step(PrepaymentClientProtocol(), prepay(dataclasses.replace(
        frame(send.command_id, send.payload, from_server=True))), NOW).events  # fmt: skip
    assert answer == (TopUpAnswered(TopUpResult.Accepted, 120, 2, 170),)


def test_the_top_up_set_holds_the_five_newest_top_ups_record_1_the_newest() -> None:
    """D.7.2.2.2: Top-up records 1-5 are the five newest top-ups, #1 the newest; a sixth
    older one is not served."""
    core = server()
    for i in range(6):
        assert core.account.top_up(f"{i:017d}{101 + i}".encode(), 2, NOW + i).accepted
    values = core.attribute_values(NOW + 10)
    served = [
        (values[top_up_attribute(A.TOP_UP_DATE_TIME_1, n)][1],
         values[top_up_attribute(A.TOP_UP_AMOUNT_1, n)][1],
         values[top_up_attribute(A.TOP_UP_CODE_1, n)][1])
        for n in range(1, 6)
    ]  # fmt: skip
    assert served == [(NOW + i, 101 + i, f"{i:017d}{101 + i}".encode()) for i in (5, 4, 3, 2, 1)]
    held = {attr for attr in values if A.TOP_UP_DATE_TIME_1 <= attr < A.TOP_UP_DATE_TIME_1 + 0x50}
    assert len(held) == 5 * 4  # date/time, amount, originating device, code of each record


def test_the_debt_set_serves_each_debt_held_under_its_own_number() -> None:
    """D.7.2.2.3: debt 3's label, amount and recovery under the debt-3 ids; debts 1 and 2,
    never set, not served."""
    core = server()
    debt = Debt(label=b"gas arrears", amount=300, method=1, start_time=NOW + 5,
                collection_time=120, frequency=2, recovery_amount=40, percentage=0)  # fmt: skip
    core.account.change_debt(2, debt, incremental=False, now=NOW)
    values = core.attribute_values(NOW)
    firsts = (A.DEBT_LABEL_1, A.DEBT_AMOUNT_1, A.DEBT_RECOVERY_METHOD_1,
              A.DEBT_RECOVERY_START_TIME_1, A.DEBT_RECOVERY_COLLECTION_TIME_1,
              A.DEBT_RECOVERY_FREQUENCY_1, A.DEBT_RECOVERY_AMOUNT_1,
              A.DEBT_RECOVERY_TOP_UP_PERCENTAGE_1)  # fmt: skip
    assert [values[debt_attribute(first, 3)][1] for first in firsts] == [
        b"gas arrears",
        300,
        1,
        NOW + 5,
        120,
        2,
        40,
        0,
    ]
    assert not {debt_attribute(first, n) for first in firsts for n in (1, 2)} & values.keys()


def test_get_prepay_snapshot_takes_the_offset_window_and_causes_asked() -> None:
    """D.7.2.3.7 / D.7.2.4.1: the snapshot at the offset asked among those of the window and
    causes asked, newest first, with how many were found; NOT_FOUND past them."""
    core = server()  # a top-up snapshot at NOW + 1, a credit adjustment's at NOW + 2
    core.account.top_up(b"00000000000000000100", 2, NOW + 1)
    core.account.adjust_credit(-30, absolute=False, now=NOW + 2)
    top_up, adjusted = SnapshotCause.Top_Up_Addition, SnapshotCause.Debt_Credit_Addition

    def ask(earliest: int, offset: int, cause: int) -> tuple[int, int, int, int] | None:
        fields = {"earliest_start_time": earliest, "latest_end_time": NOW + 9}
        get = command("get_prepay_snapshot", **fields, snapshot_offset=offset, snapshot_cause=cause)
        step = _step(core, prepay(frame(S.GET_PREPAY_SNAPSHOT, get)), NOW + 10)
        if step.status == foundation.Status.NOT_FOUND:
            return None
        (send,) = step.sends
        got, _ = decode_command(Prepayment, C.PUBLISH_PREPAY_SNAPSHOT, send.payload,
                                from_server=True)  # fmt: skip
        return got.snapshot_time, got.total_snapshots_found, got.snapshot_cause, got.snapshot_id

    assert ask(0, 0, 0xFFFFFFFF) == (NOW + 2, 2, adjusted, 2)
    assert ask(0, 1, 0xFFFFFFFF) == (NOW + 1, 2, top_up, 1)
    assert ask(0, 0, top_up) == (NOW + 1, 1, top_up, 1)
    assert ask(0, 0, adjusted) == (NOW + 2, 1, adjusted, 2)
    assert ask(NOW + 2, 0, 0xFFFFFFFF) == (NOW + 2, 1, adjusted, 2)  # the window
    assert ask(0, 2, 0xFFFFFFFF) is None
    assert ask(0, 1, top_up) is None


def test_the_debt_repayment_log_is_published_newest_first_by_debt_type() -> None:
    core = server()
    core.account.change_debt(0, Debt(amount=300, frequency=0, recovery_amount=100),
                             incremental=False, now=NOW)  # fmt: skip
    core.account.change_debt(1, Debt(amount=50, frequency=1, recovery_amount=50),
                             incremental=False, now=NOW)  # fmt: skip
    core.account.tick(NOW + 7200)
    ask = command("get_debt_repayment_log", latest_end_time=NOW + 7200, number_of_records=0,
                  debt_type=0xFF)  # fmt: skip
    (send,) = _step(core, prepay(frame(S.GET_DEBT_REPAYMENT_LOG, ask)), NOW + 7200).sends
    decoded, _ = decode_command(Prepayment, C.PUBLISH_DEBT_LOG, send.payload, from_server=True)
    assert list(decoded.entries) == [
        (NOW + 7200, 100, 0, 0),
        (NOW + 3600, 100, 0, 100),
        (NOW, 50, 1, 0),
        (NOW, 100, 0, 200),
    ]
    only_2 = command("get_debt_repayment_log", latest_end_time=NOW + 7200, number_of_records=1,
                     debt_type=1)  # fmt: skip
    (send,) = _step(core, prepay(frame(S.GET_DEBT_REPAYMENT_LOG, only_2)), NOW + 7200).sends
    decoded, _ = decode_command(Prepayment, C.PUBLISH_DEBT_LOG, send.payload, from_server=True)
    assert list(decoded.entries) == [(NOW, 50, 1, 0)]


def test_a_change_of_payment_mode_is_answered_at_once_and_taken_at_its_time() -> None:
    """Change Payment Mode for midnight: Change Payment Mode Response now (friendly credit
    enabled, the Friendly Credit calendar's id), the Payment Control Configuration served
    unchanged until the core's deadline."""
    core = server()
    core.authorize = lambda msg: True
    core.account.config = dataclasses.replace(core.account.config, friendly_credit=True)
    core.account.friendly_calendar = lambda now: FriendlyCredit(77, False, now + 60)
    midnight = NOW + 4 * 3600
    payload = command("change_payment_mode", provider_id=1, issuer_event_id=4,
                      implementation_date_time=midnight, cut_off_value=-100,
                      proposed_payment_control_configuration=0x0003)  # fmt: skip
    step = _step(core, prepay(frame(S.CHANGE_PAYMENT_MODE, payload)), NOW)
    (send,) = step.sends
    answer, _ = decode_command(Prepayment, C.CHANGE_PAYMENT_MODE_RESPONSE, send.payload,
                               from_server=True)  # fmt: skip
    assert (answer.friendly_credit, answer.friendly_credit_calendar_id) == (1, 77)
    assert core.changed  # the pending change is stored with the account
    pcc = PrepaymentAttribute.PAYMENT_CONTROL_CONFIGURATION
    assert core.attribute_values(NOW)[pcc][1] == 0x0012
    assert core.next_deadline() == midnight
    core.changed = False
    core.handle_timeout(midnight - 1)
    assert not core.changed
    twin = server()  # the same, told by a frame before its timer
    twin.authorize = core.authorize
    _step(twin, prepay(frame(S.CHANGE_PAYMENT_MODE, payload)), NOW)
    core.handle_timeout(midnight)
    assert core.changed
    assert core.attribute_values(midnight)[pcc][1] == 0x0003
    assert core.next_deadline() is None
    # a frame received at the time, before the timer, has the change applied first
    twin.changed = False
    log = command("get_top_up_log", latest_end_time=midnight, number_of_records=0)
    assert _step(twin, prepay(frame(S.GET_TOP_UP_LOG, log)), midnight).status == (
        foundation.Status.NOT_FOUND
    )
    assert twin.changed
    assert twin.attribute_values(midnight)[pcc][1] == 0x0003


def test_a_credit_adjustment_past_the_bound_is_refused_not_an_older_one_dropped() -> None:
    """Credit adjustments add up: a ninth one waiting is answered INSUFFICIENT_SPACE (ZCL
    2.5.3) and none of the eight accepted is dropped (each was answered SUCCESS: money)."""
    core = server()
    core.authorize = lambda msg: True
    start = core.account.credit
    later = NOW + 3600
    for issuer in range(1, MAX_PENDING + 2):
        payload = command("credit_adjustment", issuer_event_id=issuer, start_time=later,
                          credit_adjustment_type=0, credit_adjustment_value=100)  # fmt: skip
        step = _step(core, prepay(frame(S.CREDIT_ADJUSTMENT, payload)), NOW)
        expected = (
            foundation.Status.SUCCESS
            if issuer <= MAX_PENDING
            else foundation.Status.INSUFFICIENT_SPACE
        )
        assert step.status == expected, issuer
    assert [p.issuer_event_id for p in core.account.pending] == list(range(1, MAX_PENDING + 1))
    core.handle_timeout(later)
    assert core.account.credit == start + 100 * MAX_PENDING


def test_a_setting_past_the_bound_is_refused_not_the_next_one_dropped() -> None:
    """Nine Set Maximum Credit Limit for the next nine days (a schedule: each newer issue
    due later): the ninth is answered INSUFFICIENT_SPACE and the first, accepted, still
    applies on its day."""
    core = server()
    core.authorize = lambda msg: True
    day = 86400
    for issuer in range(1, MAX_PENDING + 2):
        payload = command("set_maximum_credit_limit", provider_id=1, issuer_event_id=issuer,
                          implementation_date_time=NOW + issuer * day,
                          maximum_credit_level=1000 * issuer,
                          maximum_credit_per_top_up=0)  # fmt: skip
        step = _step(core, prepay(frame(S.SET_MAXIMUM_CREDIT_LIMIT, payload)), NOW)
        expected = (
            foundation.Status.SUCCESS
            if issuer <= MAX_PENDING
            else foundation.Status.INSUFFICIENT_SPACE
        )
        assert step.status == expected, issuer
    core.handle_timeout(NOW + day)
    assert core.account.config.max_credit_limit == 1000
