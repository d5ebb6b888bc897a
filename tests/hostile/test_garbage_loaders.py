"""Garbage to the loaders no other property test reached: each raises its own named error and
nothing else (zse.errors: ConfigError, HeadendConfigError, RecordError, HeadendError...).

The ESI configuration file as bytes (not UTF-8, not TOML), ``headend.toml`` of any shape
with garbage or real CA/CRL files, the simulator's saved network, the MQTT outbox journal and
executed-command records, a provisioning device record, and the headend API's path and body
parsers (send id, lifecycle state, group; registration, message and load control bodies near
valid ones)."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.store.test_loader_shapes import mutate
from zse.cli._sim import load_state
from zse.config import ConfigError, load_config
from zse.headend.core import (
    HeadendError,
    parse_group,
    parse_load_control,
    parse_message,
    parse_registration,
    parse_send_id,
    parse_state,
)
from zse.headend.pki import HeadendConfigError, new_ca
from zse.headend.pki import load_config as load_headend_config
from zse.mqtt.core import Executed, Publication
from zse.provisioning.lifecycle import DeviceRecord, LifecycleState
from zse.records import RecordError

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with a real CA certificate (``ca.pem``) beside the garbage files."""
    from cryptography.hazmat.primitives.serialization import Encoding  # noqa: PLC0415

    directory = tmp_path_factory.mktemp("hostile")
    cert, _ = new_ca("hostile retailer")
    (directory / "ca.pem").write_bytes(cert.public_bytes(Encoding.PEM))
    return directory


@settings(max_examples=150, deadline=None)
@given(
    data=st.binary(max_size=200)
    | st.text(max_size=120).map(lambda text: text.encode("utf-8", "surrogatepass"))
)
def test_config_files_of_garbage_raise_only_config_error(workdir, data):
    path = workdir / "esi.toml"
    path.write_bytes(data)
    message = ""
    try:
        load_config(path)  # the empty file is a configuration: every setting has a default
    except ConfigError as exc:
        message = str(exc)
    assert "\n" not in message


def _toml(value: Any) -> str:
    """``value`` as a TOML value (inline tables, JSON-escaped strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


FILE_NAMES = st.sampled_from(
    ["ca.pem", "junk.pem", "missing.pem", "nul\0.pem", "", "postgresql://[x"]
)
TOML_VALUE = st.recursive(
    st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8) | FILE_NAMES,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _table(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(
        st.sampled_from(keys) | st.text(max_size=5), TOML_VALUE, max_size=len(keys)
    )


RETAILER = _table(["id", "ca", "common_name", "signing_certificate", "crl"])
HEADEND_TOML = st.fixed_dictionaries(
    {},
    optional={
        "server": _table(["host", "port", "signed_port", "certificate", "key", "database"])
        | TOML_VALUE,
        "limits": _table(["requests_per_second", "burst"]) | TOML_VALUE,
        "sends": _table(["give_up_days"]) | TOML_VALUE,
        "retailers": st.lists(RETAILER | TOML_VALUE, max_size=3) | TOML_VALUE,
    },
)


@settings(max_examples=50, deadline=None)
@given(document=HEADEND_TOML, junk=st.binary(max_size=120))
def test_headend_configs_of_any_shape_raise_only_headend_config_error(workdir, document, junk):
    (workdir / "junk.pem").write_bytes(junk)
    path = workdir / "headend.toml"
    text = "\n".join(f"{key} = {_toml(value)}" for key, value in document.items())
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        config = load_headend_config(path)
    except HeadendConfigError as exc:
        message = str(exc)
    else:
        assert config.retailers
        return
    assert "\n" not in message


SAVED = st.fixed_dictionaries(
    {
        "version": st.integers(0, 3) | JSON,
        "backup": JSON,
        "devices": JSON | st.dictionaries(st.text(max_size=24), JSON, max_size=3),
    }
)


@settings(max_examples=40, deadline=None)
@given(document=SAVED | JSON, raw=st.binary(max_size=60))
def test_saved_simulator_networks_of_garbage_raise_only_config_error(workdir, document, raw):
    path = workdir / "esi-sim.json"
    for content in (json.dumps(document).encode(), raw):
        path.write_bytes(content)
        with pytest.raises(ConfigError, match="not the simulator's saved network"):
            load_state(path)  # no generated document is a complete network backup


OUTBOX = st.fixed_dictionaries(
    {"topic": st.text(max_size=10) | JSON, "payload": JSON, "retain": st.booleans() | JSON}
)


@settings(max_examples=80, deadline=None)
@given(value=OUTBOX | JSON, records=st.dictionaries(st.text(max_size=5), JSON, max_size=5))
def test_mqtt_journal_records_load_round_trip_or_raise_value_error(value, records):
    try:
        publication = Publication.from_record(value)
    except ValueError:
        pass
    else:
        assert publication.to_record() == value
    dropped = Executed(3).restore(records)
    assert set(dropped) <= set(records)
    assert len(records) - len(dropped) <= 3


DEVICE = st.fixed_dictionaries(
    {
        "eui64": st.sampled_from(["00:0d:6f:00:0a:00:00:02", "00:0D:6F:00:0A:00:00:02"]) | JSON,
        "install_code": st.sampled_from(["83FED3407A939723A5C639B26916D505C3B5"]) | JSON,
        "state": st.sampled_from([s.value for s in LifecycleState]) | JSON,
    },
    optional={"label": JSON, "groups": st.lists(st.text(max_size=4)) | JSON, "joined": JSON},
)


@settings(max_examples=60, deadline=None)
@given(value=DEVICE | JSON)
def test_device_records_round_trip_or_raise_record_error(value):
    try:
        record = DeviceRecord.from_json(value)
    except RecordError as exc:
        message = str(exc)
    else:
        assert DeviceRecord.from_json(record.to_json()) == record
        return
    assert "83FED3407A939723" not in message  # an install code is never shown


@settings(max_examples=120, deadline=None)
@given(
    text=st.text(max_size=24) | st.sampled_from([s.value for s in LifecycleState]),
    body=JSON
    | st.fixed_dictionaries({"name": JSON, "meters": JSON | st.lists(st.text(max_size=3))}),
)
def test_headend_path_and_body_parsers_raise_only_headend_errors(text, body):
    for parse, given_value in (
        (parse_send_id, text),
        (parse_state, text),
        (lambda b: parse_group(b, meters=["a", "b"]), body),
    ):
        status = 400
        try:
            parse(given_value)
        except HeadendError as exc:
            status = exc.status
        assert 400 <= status < 500


#: Valid bodies of the headend's POST requests (docs/headend.md's session), to be damaged.
BODIES = {
    "registration": {"mac": "00-0D-6F-00-0B-01-00-01", "meter": "meter-1",
                     "install_code": "83FED3407A939723A5C639B26916D505C3B5",
                     "device_type": "in-home display", "label": "kitchen"},
    "message": {"group": "street", "text": "Peak price from 16:00", "duration_minutes": 60,
                "importance": 2, "confirmation_required": True},
    "load control": {"group": "street", "duration_minutes": 30, "criticality_level": 3,
                     "duty_cycle": 50, "start_delay_minutes": 5},
}  # fmt: skip
#: What the web layer makes of a body it took (a send's event or message, now ZigBee time).
TAKE = {
    "registration": lambda body: parse_registration(body, meters=["meter-1"]),
    "message": lambda body: parse_message(body).message(7),
    "load control": lambda body: parse_load_control(body).event(7, 800_000_000),
}


@pytest.mark.parametrize("kind", BODIES)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_headend_request_bodies_near_valid_are_taken_or_a_4xx(kind, data):
    """Each body with one place damaged (a value replaced, a field dropped or added): taken,
    and what the send is made of built without an error, or refused with a 4xx naming the
    field (a 500 is a request the parser let through)."""
    body = mutate(data, copy.deepcopy(BODIES[kind]))
    refused: HeadendError | None = None
    try:
        TAKE[kind](body)
    except HeadendError as exc:
        refused = exc
    if refused is not None:
        assert 400 <= refused.status < 500
        assert refused.field
