"""The HAN provisioning registry: lifecycle, validation, groups, audit, persistence, CSV."""

from __future__ import annotations

import pytest
import zigpy.types as t

from zse.errors import InvalidEui64, InvalidInstallCode, StoreError
from zse.provisioning import TRANSITIONS, IllegalTransition, LifecycleEvent, LifecycleState
from zse.provisioning.registry import HanRegistry, InvalidGroups, RegistryError

CODE = "83FED3407A939723A5C639B26916D505C3B5"
KEY = bytes.fromhex("66B6900981E1EE3CA4206B6B861C02BB")
MAC = "00:1B:C5:00:70:00:05:2B"
E = LifecycleEvent
S = LifecycleState


async def test_register_validates_like_the_install_code_tool(registry):
    record = await registry.register(
        "001bc5007000052b", "83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5"
    )
    assert record.eui64 == "001BC5007000052B"
    assert record.install_code == CODE
    assert record.state is S.NEW
    assert registry.link_key(MAC) == KEY
    with pytest.raises(InvalidInstallCode, match="CRC mismatch"):
        await registry.register("001BC5007000052C", CODE[:-1] + "6")
    with pytest.raises(InvalidEui64, match="all zeros"):
        await registry.register("0000000000000000", CODE)
    with pytest.raises(RegistryError, match="already registered"):
        await registry.register(MAC, CODE)
    with pytest.raises(RegistryError, match="001BC5007000052D is not registered"):
        registry.get("001BC5007000052D")


async def test_the_whole_lifecycle_and_its_audit_trail(registry):
    await registry.register(MAC, CODE, label="kitchen IHD")
    for event, state in [
        (E.PROVISION, S.PENDING_PROVISIONING),
        (E.JOINED, S.PENDING_PROVISIONING),
        (E.KEY_ESTABLISHED, S.METER_READY),
        (E.DEPROVISION, S.PENDING_DEPROVISIONING),
        (E.LEFT, S.DEPROVISION_COMPLETE),
    ]:
        assert (await registry.apply(MAC, event)).state is state
    again = await registry.register(MAC, "83FED3407A932B70")  # a new code: moved house
    assert again.state is S.NEW
    assert again.label == "kitchen IHD"
    trail = await registry.audit(MAC)
    assert [(a.event, a.from_state, a.to_state) for a in trail] == [
        ("register", None, "new"),
        ("provision", "new", "pending provisioning"),
        ("joined", "pending provisioning", "pending provisioning"),
        ("key_established", "pending provisioning", "meter ready"),
        ("deprovision", "meter ready", "pending de-provisioning"),
        ("left", "pending de-provisioning", "de-provision complete"),
        ("reregister", "de-provision complete", "new"),
    ]
    assert [a.time for a in trail] == sorted(a.time for a in trail)


ILLEGAL = [(s, e) for s in S for e in E if (s, e) not in TRANSITIONS]


@pytest.mark.parametrize(("state", "event"), ILLEGAL, ids=lambda x: x.name)
async def test_every_illegal_transition_is_refused_and_writes_nothing(registry, state, event):
    await registry.register(MAC, CODE)
    path = {
        S.NEW: [],
        S.PENDING_PROVISIONING: [E.PROVISION],
        S.METER_READY: [E.PROVISION, E.KEY_ESTABLISHED],
        S.PENDING_DEPROVISIONING: [E.PROVISION, E.KEY_ESTABLISHED, E.DEPROVISION],
        S.DEPROVISION_COMPLETE: [E.PROVISION, E.DEPROVISION],
    }[state]
    for step in path:
        await registry.apply(MAC, step)
    assert registry.get(MAC).state is state
    before = await registry.audit()
    with pytest.raises(IllegalTransition) as info:
        await registry.apply(MAC, event)
    assert f"is {state.value!r}: {event.value!r} is allowed only from" in str(info.value)
    assert registry.get(MAC).state is state
    assert await registry.audit() == before


async def test_unexpected_leave_returns_a_ready_device_to_pending(registry):
    await registry.register(MAC, CODE)
    for event in (E.PROVISION, E.JOINED, E.KEY_ESTABLISHED, E.LEFT):
        record = await registry.apply(MAC, event)
    assert record.state is S.PENDING_PROVISIONING
    assert not record.joined


async def test_groups(registry):
    await registry.register(MAC, CODE, groups=["north"])
    await registry.register("001BC5007000052C", "83FED3407A932B70", groups=["north", "ev"])
    assert [d.eui64 for d in registry.devices(group="north")] == [
        "001BC5007000052B",
        "001BC5007000052C",
    ]
    await registry.set_groups("001BC5007000052C", ["ev"])
    assert [d.eui64 for d in registry.devices(group="north")] == ["001BC5007000052B"]
    assert [d.eui64 for d in registry.devices(state=S.NEW, group="ev")] == ["001BC5007000052C"]


async def test_state_and_audit_survive_a_restart(tmp_path):
    path = tmp_path / "han.db"
    registry = await HanRegistry.open(path)
    await registry.register(MAC, CODE, groups=["north"])
    await registry.apply(MAC, E.PROVISION)
    await registry.close()
    reopened = await HanRegistry.open(path)
    try:
        record = reopened.get(MAC)
        assert record.state is S.PENDING_PROVISIONING
        assert record.groups == frozenset({"north"})
        assert [a.event for a in await reopened.audit()] == ["register", "provision"]
    finally:
        await reopened.close()


async def test_a_file_that_is_not_a_registry_is_refused(tmp_path):
    path = tmp_path / "notes.db"
    path.write_bytes(b"this is not an SQLite database, it is a shopping list\n" * 100)
    with pytest.raises(StoreError):
        await HanRegistry.open(path)
    assert path.read_bytes().startswith(b"this is not")  # untouched


async def test_csv_import_reports_bad_rows_and_registers_the_good_ones(registry):
    rows = [
        "eui64,install_code,label,groups",
        f"{MAC},{CODE},IHD,north;pilot",
        "001BC5007000052C,83FED3407A932B71,thermostat,north",
        "0000000000000000,83FED3407A932B70",
        "001BC5007000052D",
        f"001bc5007000052b,{CODE}",
        "",
        "001BC5007000052E,83FED3407A939738C552,LCD",
    ]
    report = await registry.import_csv(rows)
    assert report.registered == ["001BC5007000052B", "001BC5007000052E"]
    assert report.errors[0].startswith("line 3: EUI-64 001BC5007000052C: install code CRC mis")
    assert report.errors[1] == (
        "line 4: EUI-64 00:00:00:00:00:00:00:00 is all zeros: not a device address"
    )
    assert report.errors[2] == (
        "line 5: no install_code: 1 cell but the header names 4 (eui64,install_code,label,groups)"
    )
    assert report.errors[3] == "line 6: EUI-64 001BC5007000052B is already on line 2"
    assert len(report.errors) == 4
    assert registry.get(MAC).groups == frozenset({"north", "pilot"})


async def test_groups_given_as_one_string_are_refused_not_split_into_letters(registry):
    with pytest.raises(InvalidGroups, match=r"groups=\['street-7'\]"):
        await registry.register(MAC, CODE, groups="street-7")
    assert registry.devices() == []
    record = await registry.register(MAC, CODE, groups=["street-7"])
    for wrong in ("ev", b"ev", ["ev", 7], 7):
        with pytest.raises(InvalidGroups):
            await registry.set_groups(MAC, wrong)  # type: ignore[arg-type]
    assert registry.get(MAC) == record
    assert [a.event for a in await registry.audit(MAC)] == ["register"]  # nothing written


async def test_an_eui64_is_text_or_a_zigpy_eui64_never_an_int(registry):
    with pytest.raises(InvalidEui64, match="not int"):
        await registry.register(0x001BC5007000052B, CODE)  # type: ignore[arg-type]
    with pytest.raises(InvalidEui64, match="not int"):
        registry.get(0x001BC5007000052B)  # type: ignore[arg-type]
    assert registry.devices() == []
    record = await registry.register(t.EUI64.convert(MAC), CODE)
    assert record.eui64 == "001BC5007000052B"
    assert registry.get(t.EUI64.convert(MAC)) == record
    assert [a.eui64 for a in await registry.audit(t.EUI64.convert(MAC))] == [record.eui64]
