"""#13.1: the SE vocabulary is declared once, in zse.se, and every other module names it there."""

from __future__ import annotations

from pathlib import Path

import pytest

import zse
import zse.cbke
import zse.cbke.messages
import zse.drlc
import zse.se
from tests.source_facts import facts
from zse.drlc.wire import Drlc
from zse.messaging.wire import Messaging
from zse.price.wire import Price
from zse.se import ids, types
from zse.se.types import event_status_text

ROOT = Path(zse.__file__).parent


def test_no_vocabulary_name_is_declared_outside_zse_se():
    """TerminateStatus, the DRLC event status, the sentinels and ids were declared twice."""
    vocabulary = set(zse.se.__all__)
    elsewhere = {
        f"{path.relative_to(ROOT.parent).as_posix()}: {name}"
        for path in ROOT.rglob("*.py")
        if path.parent != ROOT / "se"
        for name in facts(path).declared & vocabulary
    }
    assert elsewhere == set()


def test_the_old_names_are_the_vocabulary_itself():
    assert zse.cbke.TerminateStatus is zse.cbke.messages.TerminateStatus is types.TerminateStatus
    assert zse.drlc.Status is types.EventStatus
    assert zse.drlc.SET_POINT_NOT_USED == types.SET_POINT_NOT_USED == -0x8000
    assert zse.cbke.messages.CLUSTER_ID == ids.KEY_ESTABLISHMENT == 0x0800


@pytest.mark.parametrize("enum", [types.EventStatus, types.TerminateStatus])
def test_core_status_enums_stay_strict(enum):
    """The cores' status enums refuse an unknown value (zigpy's enums would invent a member)."""
    with pytest.raises(ValueError, match="is not a valid"):
        enum(0x42)
    assert str(enum(0x03)) == "3"  # printed as the number, as the cores always did


@pytest.mark.parametrize(
    ("cluster", "cluster_id", "server", "client"),
    [
        (Price, ids.PRICE, ids.PriceServerCommand, ids.PriceClientCommand),
        (Drlc, ids.DRLC, ids.DrlcServerCommand, ids.DrlcClientCommand),
        (Messaging, ids.MESSAGING, ids.MessagingServerCommand, ids.MessagingClientCommand),
    ],
)
def test_cluster_definitions_use_the_ids(cluster, cluster_id, server, client):
    """Every zigpy command definition has the id and the name its zse.se command enum gives."""
    assert cluster.cluster_id == cluster_id
    for defs, commands in (
        (cluster.ServerCommandDefs, server),
        (cluster.ClientCommandDefs, client),
    ):
        assert {d.name: d.id for d in defs} == {c.name.lower(): c.value for c in commands}


def test_key_establishment_wire_uses_the_ids():
    m = zse.cbke.messages
    received = {cls.__name__: cid for cid, cls in m.CLIENT_COMMANDS.items()}
    sent = {cls.__name__: cid for cid, cls in m.SERVER_COMMANDS.items()}
    assert received == {
        "InitiateKeyEstablishmentRequest": 0x00,
        "EphemeralDataRequest": 0x01,
        "ConfirmKeyDataRequest": 0x02,
        "TerminateKeyEstablishment": 0x03,
    }
    assert sent == {
        "InitiateKeyEstablishmentResponse": 0x00,
        "EphemeralDataResponse": 0x01,
        "ConfirmKeyDataResponse": 0x02,
        "TerminateKeyEstablishment": 0x03,
    }
    assert set(received.values()) == {c.value for c in ids.KeyEstablishmentServerCommand}
    assert set(sent.values()) == {c.value for c in ids.KeyEstablishmentClientCommand}


@pytest.mark.parametrize(
    ("name", "device_id"),
    [
        ("ESI_DEVICE_ID", 0x0500),
        ("METERING_DEVICE", 0x0501),
        ("IN_HOME_DISPLAY", 0x0502),
        ("PROGRAMMABLE_THERMOSTAT", 0x0503),
        ("LOAD_CONTROL_DEVICE", 0x0504),
    ],
)
def test_device_ids_are_the_specs(name: str, device_id: int) -> None:
    """SE table 5.13's device ids. The spec text was out of reach; three independent sources
    agree on these values: DSR ZBOSS's SE device list, Freescale BeeStack's SE profile header
    (``gInPremiseDisplay_c``, ``gPCT_c``: the same ids byte-swapped) and hemtjan.st/zcl's ZDO
    device type names. zse 0.1.0 had the thermostat at 0x0501 (the Metering Device) and the
    display at 0x0507."""
    assert getattr(ids, name) == device_id


def test_an_event_status_reads_in_words_and_an_undefined_one_by_its_value():
    """Report Event Status (D.2.3.3.1.1.2) as the ESI shell and the demo print it: a value
    the table leaves undefined, which a device may send, is shown, not a failure."""
    assert event_status_text(0x04) == "opted out"
    assert event_status_text(0x0A) == "completed no participation"
    assert event_status_text(0x0B) == "status 0x0B"
    assert event_status_text(0xFF) == "status 0xFF"
