"""HAN labels, group names and numbers as a hostile review sent them (defects 1, 2, 4, 5).

- Control characters in a device label or a group name reached the registry (and the operator's
  terminal) from MQTT ``provision``, the ESI's ``[[devices]]`` / ``[groups]`` and ``zse esi``'s
  shell, though the devices CSV and the headend refused them. One rule now
  (:func:`zse.provisioning.lifecycle.han_name_problem`: printable, at most 64 characters; a
  group name also not empty, without ``;`` or a space at either end), kept by the registry itself.
- The headend's retailer group name took a final newline (``$`` matches before it).
- An unknown field's name was echoed back whole (100 KB in, 100 KB out).
- Prices took other scripts' digits and ``_`` (Arabic-Indic, full-width; ``Decimal("1_000")``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from zse.config import ConfigError, parse_config, parse_price
from zse.headend.core import HeadendError, parse_group, parse_message, parse_registration
from zse.mqtt.core import CommandError, parse_command
from zse.provisioning.registry import InvalidDeviceLabel, InvalidGroups

CODE = "83FED3407A939723A5C639B26916D505C3B5"
MAC = "001BC5007000052B"
HOSTILE_LABELS = ["\x1b]0;pwned\x07\x1b[2J", "nul\x00", "line\n", "csi\x9b", "x" * 65]
HOSTILE_GROUPS = ["g\x00", "\n", "", " padded", "a;b", "g" * 65]


@pytest.mark.parametrize("label", HOSTILE_LABELS)
async def test_the_registry_refuses_a_hostile_label(registry, label: str) -> None:
    with pytest.raises(InvalidDeviceLabel) as caught:
        await registry.register(MAC, CODE, label=label)
    assert str(caught.value).isprintable()  # quoted escaped, never raw
    assert registry.devices() == []
    assert await registry.audit() == []


@pytest.mark.parametrize("name", HOSTILE_GROUPS)
async def test_the_registry_refuses_a_hostile_group_name(registry, name: str) -> None:
    with pytest.raises(InvalidGroups) as caught:
        await registry.register(MAC, CODE, groups=[name])
    assert str(caught.value).isprintable()
    await registry.register(MAC, CODE, label="kitchen IHD", groups=["street-7"])
    with pytest.raises(InvalidGroups):
        await registry.set_groups(MAC, ["street-7", name])
    assert registry.get(MAC).groups == frozenset({"street-7"})


GROUP_RULE = "must be 1 or more characters, without ';' or a space at either end"


@pytest.mark.parametrize(
    ("extra", "field", "reason"),
    [
        ({"label": "\x1b[2J"}, "label", "has a control character U+001B at position 1"),
        ({"label": "x" * 64 + "y"}, "label", "longer than 64 octets (UTF-8)"),
        ({"groups": ["ok", "g\x00"]}, "groups[1]", "has a control character U+0000 at position 2"),
        ({"groups": ["a;b"]}, "groups[0]", GROUP_RULE),
        ({"groups": [" a"]}, "groups[0]", GROUP_RULE),
    ],
)  # fmt: skip
def test_an_mqtt_provision_with_a_hostile_label_is_refused_before_the_esi_acts(
    extra: dict[str, object], field: str, reason: str
) -> None:
    """The review's path: parse_command let the label through (the ESI's registry refused it
    only after the bridge had called it, answered on ``mac``): now the command is refused,
    naming the field, by the registry's own rule."""
    body = {"correlation_id": "c", "mac": MAC, "install_code": CODE}
    with pytest.raises(CommandError) as caught:
        parse_command("provision", json.dumps(body | extra).encode())
    assert (caught.value.field, caught.value.reason) == (field, reason)
    fine = body | {"label": "hall", "groups": ["g"]}
    good = parse_command("provision", json.dumps(fine).encode())
    assert (good.label, good.groups) == ("hall", ("g",))  # type: ignore[attr-defined]


async def test_the_registry_itself_refuses_them(registry: Any) -> None:
    """Whatever way in skips the check (an application calling the registry), the registry
    keeps the rule."""
    with pytest.raises(InvalidDeviceLabel):
        await registry.register(MAC, CODE, label="\x1b[2J")
    with pytest.raises(InvalidGroups):
        await registry.register(MAC, CODE, groups=("g\x00",))


async def test_a_devices_csv_label_over_the_cap_is_a_bad_row(registry) -> None:
    report = await registry.import_csv(["eui64,install_code,label\n", f"{MAC},{CODE},{'x' * 65}\n"])
    assert report.registered == []
    assert report.errors == [f"line 2: label {'x' * 39!r}"[:-1] + "… is 65 characters; at most 64"]


BASE = """[radio]
type = "ezsp"
device = "/dev/null"
[network]
pan_id = 0x1A2B
extended_pan_id = "00:0d:6f:ff:fe:00:12:34"
[esi]
credentials = []
database = "han.db"
"""
DEVICE = f'[[devices]]\neui64 = "{MAC}"\ninstall_code = "{CODE}"\n'


@pytest.mark.parametrize(
    ("extra", "where"),
    [
        (DEVICE + 'label = "\\u001b[2J\\u0007"\n', "[[devices]] #1 label: "),
        (DEVICE + f'label = "{"x" * 65}"\n', "[[devices]] #1 label: "),
        (DEVICE + 'groups = ["a\\u0000"]\n', "[[devices]] #1 groups: "),
        (DEVICE + 'groups = ["a;b"]\n', "[[devices]] #1 groups: "),
        (f'[groups]\n"a\\n" = ["{MAC}"]\n', "[groups]: group name 'a\\n' "),
        (f'[groups]\n"\\u001b[31m" = ["{MAC}"]\n', "[groups]: group name '\\x1b[31m' "),
    ],
)
def test_the_esi_configuration_refuses_them_naming_the_key(extra: str, where: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + extra, source="esi.toml", base=Path("."))
    assert str(caught.value).startswith(f"esi.toml: {where}")
    assert str(caught.value).isprintable()


def test_the_esi_configuration_keeps_good_labels_and_groups() -> None:
    text = BASE + DEVICE + 'label = "Küche IHD"\ngroups = ["street-7"]\n'
    config = parse_config(text + f'[groups]\n"street 8" = ["{MAC}"]\n', source="esi.toml")
    assert [(d.label, d.groups) for d in config.devices] == [("Küche IHD", ("street-7",))]


@pytest.mark.parametrize("label", ["\x1b[2J", "x" * 65])
def test_the_headend_registration_keeps_the_same_rule(label: str) -> None:
    body = {"mac": MAC, "install_code": CODE, "meter": "m1", "device_type": "in-home display"}
    with pytest.raises(HeadendError) as caught:
        parse_registration(body | {"label": label}, meters=["m1"])
    assert (caught.value.status, caught.value.field) == (422, "label")


@pytest.mark.parametrize("name", ["grp\n", "grp\r\n", "\ngrp"])
def test_a_headend_group_name_takes_no_line_break(name: str) -> None:
    with pytest.raises(HeadendError) as caught:
        parse_group({"name": name, "meters": []}, meters=[])
    assert (caught.value.status, caught.value.field) == (422, "name")
    with pytest.raises(HeadendError):
        parse_message({"group": name, "text": "hi"})
    assert parse_group({"name": "grp", "meters": []}, meters=[]).name == "grp"


def test_an_unknown_field_is_named_cut_short() -> None:
    with pytest.raises(HeadendError) as caught:
        parse_message({"group": "g", "text": "hi", "x" * 100_000: 1})
    assert caught.value.status == 422
    assert len(caught.value.field or "") <= 41
    assert len(caught.value.message) < 80
    with pytest.raises(HeadendError) as caught:
        parse_message({"group": "g", "text": "hi", "\x1b[2J": 1})
    assert caught.value.message.isprintable()
    with pytest.raises(HeadendError) as caught:
        parse_message({"group": "g", "text": "hi", "colour": 1})
    assert (caught.value.field, caught.value.message) == ("colour", "colour: unknown field")


@pytest.mark.parametrize(
    "price", ["\uff11.\uff15", "\u0660.\u0662\u0664\u0665\u0661", "1_000", "0.2_451", "\u00b2"]
)
def test_a_price_is_ascii_digits_without_underscores(price: str) -> None:
    with pytest.raises(ConfigError, match="is not a decimal number"):
        parse_price(price, issuer_event_id=1)
    assert parse_price(" 0.2451 ", issuer_event_id=1).price == 2451


def test_an_unknown_configuration_key_is_quoted_cut_short() -> None:
    """A hostile key of any length was quoted whole in the one-line error (the review)."""
    key = "k" * 10_000
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + f"{key} = 1\n", base=Path("/tmp"))
    message = str(caught.value)
    assert "unknown key 'kkkk" in message
    assert len(message) < 400
