"""The ESI facade refuses what it cannot use, by name, before recording or sending anything:
an EUI-64 that is not text or a zigpy EUI64, groups given as one string, a registry group no
device is in, and any send or admission once the ESI is stopped."""

from __future__ import annotations

import pytest
import zigpy.types as t

from tests.roles.han_builder import EUIS, build, close
from zse.drlc import LoadControlEvent
from zse.errors import InvalidEui64, InvalidInstallCode
from zse.installcode import InstallCode
from zse.messaging import Message
from zse.provisioning import LifecycleState
from zse.provisioning.registry import InvalidGroups
from zse.roles.esi import EsiStopped, MessageSent, TargetError

NEW = "00:0d:6f:00:0a:00:00:09"
CODE = "83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5"


def lce(issuer_event_id: int) -> LoadControlEvent:
    return LoadControlEvent(
        issuer_event_id=issuer_event_id,
        device_class=0x0FFF,
        duration_in_minutes=5,
        criticality_level=2,
    )


async def test_an_eui64_given_as_an_int_is_refused_everywhere(tmp_path):
    han = await build(tmp_path)
    esi = han.esi
    number = 0x000D6F000A000009
    with pytest.raises(InvalidEui64, match="not int"):
        await esi.provision(number, CODE)  # type: ignore[arg-type]
    assert len(han.registry.devices()) == len(EUIS)  # nothing made up was registered
    with pytest.raises(InvalidEui64, match="not int"):
        await esi.deprovision(number)  # type: ignore[arg-type]
    with pytest.raises(InvalidEui64, match="not int"):
        esi.device(number)  # type: ignore[arg-type]
    with pytest.raises(InvalidEui64, match="not int"):
        esi.public_key(number)  # type: ignore[arg-type]
    with pytest.raises(InvalidEui64, match="not int"):
        await esi.send_message(Message(message_id=1, text="x"), device=number)  # type: ignore[arg-type]
    with pytest.raises(InvalidEui64, match="not int"):
        await esi.resend_load_control(1, number)  # type: ignore[arg-type]
    with pytest.raises(InvalidInstallCode, match="not bytes"):
        await esi.provision(NEW, bytes(InstallCode.parse(CODE)))  # type: ignore[arg-type]
    assert len(han.registry.devices()) == len(EUIS)
    # zigpy's EUI64 and every printed spelling name the same device
    record = await esi.provision(t.EUI64.convert(NEW), InstallCode.parse(CODE))
    assert record is not None
    assert record.eui64 == "000D6F000A000009"
    assert esi.device("000D6F000A000009") == esi.device(t.EUI64.convert(NEW))
    assert esi.public_key("000d6f000a000009") is None
    await close(han)


async def test_groups_given_as_one_string_are_refused(tmp_path):
    han = await build(tmp_path)
    with pytest.raises(InvalidGroups, match=r"groups=\['street-7'\]"):
        await han.esi.provision(NEW, CODE, groups="street-7")
    with pytest.raises(InvalidGroups, match="group name must be text"):
        await han.esi.provision(NEW, CODE, groups=[7])  # type: ignore[list-item]
    assert "000D6F000A000009" not in [r.eui64 for r in han.registry.devices()]
    record = await han.esi.provision(NEW, CODE, groups=["street-7"])
    assert record is not None
    assert record.groups == frozenset({"street-7"})
    assert han.esi.members("street-7") == [NEW]
    await close(han)


async def test_a_send_to_a_registry_group_no_device_is_in_is_refused(tmp_path):
    han = await build(tmp_path)
    esi = han.esi
    sent: list[MessageSent] = []
    esi.on_event(lambda e: sent.append(e) if isinstance(e, MessageSent) else None)
    before = esi.messaging.messages.to_records()
    with pytest.raises(TargetError, match="no registry group 'nope'"):
        await esi.send_message(Message(message_id=4, text="x"), group="nope")
    with pytest.raises(TargetError, match="no registry group 'nope'"):
        await esi.send_load_control(lce(40), group="nope")
    with pytest.raises(TargetError, match="no registry group 'nope'"):
        await esi.cancel_message(4, group="nope")
    assert esi.messaging.messages.to_records() == before  # nothing recorded
    assert esi.drlc.core.events() == []
    assert sent == []
    # a group with registered devices (not ready yet): sent per device, each skipped
    result = await esi.send_message(Message(message_id=5, text="y"), group="street")
    assert sorted(result.skipped) == sorted(EUIS.values())
    await close(han)


async def test_nothing_is_sent_or_admitted_once_the_esi_is_stopped(tmp_path):
    han = await build(tmp_path)
    esi = han.esi
    await esi.stop()
    before = esi.messaging.messages.to_records()
    message = Message(message_id=6, text="late")
    for attempt in (
        lambda: esi.send_message(message, device=EUIS["ihd"]),
        lambda: esi.send_message(message, broadcast=True),
        lambda: esi.cancel_message(6, device=EUIS["ihd"]),
        lambda: esi.send_load_control(lce(60), device=EUIS["ihd"]),
        lambda: esi.cancel_load_control(60, broadcast=True),
        lambda: esi.resend_message(message, EUIS["ihd"]),
        lambda: esi.provision(NEW, CODE),
        lambda: esi.deprovision(EUIS["ihd"]),
    ):
        with pytest.raises(EsiStopped, match="the ESI is stopped"):
            await attempt()
    assert esi.messaging.messages.to_records() == before
    assert esi.drlc.core.events() == []
    assert esi.device(EUIS["ihd"]).state is LifecycleState.NEW
    await esi.start()  # started again: it sends again
    result = await esi.send_message(message, device=EUIS["ihd"])
    assert result.skipped == [EUIS["ihd"]]
    await close(han)
