"""A send to one device being removed or removed is refused, nothing held (SE 5.4.8.1).

A message or load control event sent with ``device=`` to a device already PENDING
DE-PROVISIONING or DE-PROVISION COMPLETE was skipped on the air but stored for it: a plain
`zse esi` user (or an MQTT command) could make that send before someone registered the
device again, and Get Last Message (D.5.2.4.1) / Get Scheduled Events (D.2.2.4.1) then
answered it to the new owner. Such a send is refused by name (:class:`DeviceRemoved`, a
:class:`TargetError`) before anything is recorded.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.roles.han_builder import EUIS, START, build, close
from tests.roles.test_roles_deprovision_drop import _event
from tests.roles.test_roles_esi_removal import keyed
from zse.messaging import Message
from zse.provisioning import LifecycleState
from zse.roles.esi import DeviceRemoved, EnergyServiceInterface, TargetError

LCD = EUIS["lcd"]


async def _refused(esi: EnergyServiceInterface, state: str) -> None:
    """Both sends to the lcd are refused naming its state; neither is held."""
    with pytest.raises(DeviceRemoved, match=f"device {LCD} is {state}") as caught:
        await esi.send_load_control(_event(8), device=LCD)
    assert isinstance(caught.value, TargetError)
    assert caught.value.field == "device"
    with pytest.raises(DeviceRemoved, match=f"device {LCD} is {state}"):
        await esi.send_message(Message(message_id=10, text="for the lcd"), device=LCD)
    assert 8 not in esi.drlc.core
    assert esi.messaging.stored(10) is None


async def test_a_send_to_a_device_removed_is_refused_and_not_held_for_its_next_owner(tmp_path):
    han = await build(tmp_path)
    try:
        esi = han.esi
        await esi.provision(LCD)
        await esi.deprovision(LCD)  # never joined: removed at once
        assert esi.device(LCD).state is LifecycleState.DEPROVISION_COMPLETE
        await _refused(esi, "de-provision complete")

        # registered again (by another retailer): sent nothing, asked nothing is answered
        await esi.provision(LCD, str(han.codes["lcd"]))
        now = START + int(asyncio.get_running_loop().time())
        assert esi.drlc.core.scheduled(start_time=0, number_of_events=0, now=now, device=LCD) == []
        assert esi.messaging.messages.last_message(LCD, now) is None
        # and a send to it is taken again
        sent = await esi.send_load_control(_event(8), device=LCD)
        assert [o.device for o in sent.outcomes] == [LCD]
    finally:
        await close(han)


async def test_a_send_to_a_device_pending_de_provisioning_is_refused(tmp_path):
    """Away (it has not left yet), the lcd stays PENDING DE-PROVISIONING."""
    han = await build(tmp_path)
    try:
        esi = han.esi
        await keyed(han, "lcd")
        han.air.silence(han.devices["lcd"].device)
        await esi.deprovision(LCD)
        assert esi.device(LCD).state is LifecycleState.PENDING_DEPROVISIONING
        await _refused(esi, "pending de-provisioning")
    finally:
        await close(han)
