"""The MQTT bridge's sans-IO core (issue #17): settings, topics, payloads, commands.

Nothing here does I/O or knows asyncio: :mod:`zse.mqtt.bridge` feeds it the ESI's events, the
meter's values and the commands' bytes, with ``now`` (ZigBee UTCTime), and sends what it returns.

- :func:`parse_settings`: the ``[mqtt]`` table of the TOML config (:class:`MqttSettings`);
- :class:`Topics`: the topic layout under the base topic (zigbee2mqtt style, docs/mqtt.md);
- :func:`event_publication`, :func:`sent_publication`, :func:`reading_publication`,
  :func:`result_payload`: JSON payloads with units; :func:`discovery`: Home Assistant MQTT
  discovery;
- the HAN device's side: :func:`han_event_publication`, :func:`shown_publication`,
  :class:`DeviceView` (a device's state, retained), :func:`han_discovery` and the commands a
  device takes (:class:`ConfirmMessage`, :class:`OptOut`, :class:`OptIn`,
  :func:`parse_han_command`);
- :func:`parse_command`: a command's bytes as a typed command, or :class:`CommandError`
  naming the field;
- :class:`Executed` (at-most-once by correlation id) and :class:`Outbox` (the bounded queue
  of what is still to publish), both persisted by the shell in :mod:`zse.store`.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import itertools
import json
import re
import urllib.parse
from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final, TypeGuard

from zse import jsontext
from zse._words import QUOTED_MAX, quoted
from zse.drlc import LoadControlEvent, Status
from zse.errors import InvalidJson, ZseError
from zse.installcode import InstallCode, InvalidEui64, InvalidInstallCode, canonical_eui64
from zse.messaging import Message
from zse.metering.formatting import Formatting, unit_text
from zse.price import PriceEvent
from zse.price.core import (
    MAX_CREDIT_PAYMENT_REF,
    MAX_TARIFF_LABEL,
    PRICE_VALUE_KINDS,
    BillingPeriod,
    BlockPeriod,
    BlockThresholds,
    CalorificValue,
    Co2Value,
    ConsolidatedBill,
    ConversionFactor,
    CppEvent,
    CreditPayment,
    CurrencyConversion,
    PriceMatrix,
    TariffCancellation,
    TariffInformation,
    TariffValue,
    TierLabels,
)
from zse.provisioning.lifecycle import MAX_HAN_NAME, han_name_problem
from zse.schedule import CANCEL
from zse.se.ids import (
    DEVICE_MANAGEMENT,
    ESI_DEVICE_ID,
    IN_HOME_DISPLAY,
    LOAD_CONTROL_DEVICE,
    METERING_DEVICE,
    PREPAYMENT_TERMINAL,
    PROGRAMMABLE_THERMOSTAT,
    SMART_APPLIANCE,
)
from zse.se.prepay import CreditStatus
from zse.se.types import (
    SUPPLY_STATUS_NAMES,
    UNIT_OF_MEASURE_BCD,
    CppAuth,
    SupplyStatus,
    UnitOfMeasure,
)
from zse.time.core import from_zigbee

__all__ = [
    "BATCH",
    "CO2_UNITS",
    "COMMANDS",
    "CONFIRMED_TEMPLATE",
    "CPP_AUTH",
    "DEFAULT_BASE_TOPIC",
    "HAN_COMMANDS",
    "HAN_EVENT_KINDS",
    "HAN_UNPUBLISHED",
    "ISO_4217",
    "METER_EVENT_KINDS",
    "Batch",
    "BatchEntry",
    "CancelLoadControl",
    "CancelMessage",
    "CancelTariff",
    "ChangeSupply",
    "Command",
    "CommandError",
    "ConfirmMessage",
    "Deprovision",
    "DeviceView",
    "DisplayMessage",
    "Executed",
    "HanCommand",
    "LoadControl",
    "MqttConfigError",
    "MqttSettings",
    "OptIn",
    "OptOut",
    "Outbox",
    "Provision",
    "Publication",
    "PublishPrice",
    "PublishTariff",
    "RespondCppEvent",
    "TakeSnapshot",
    "Target",
    "Topics",
    "batched",
    "credit_amount",
    "credit_digits",
    "credit_status_names",
    "currency_text",
    "device_discovery",
    "device_event",
    "device_removal",
    "discovery",
    "error_payload",
    "event_publication",
    "han_device",
    "han_discovery",
    "han_event_publication",
    "meter_discovery",
    "meter_event_publication",
    "meter_sensors",
    "node_id",
    "parse_batch",
    "parse_command",
    "parse_han_command",
    "parse_settings",
    "price_unit",
    "reading_publication",
    "refuse_encrypted_key",
    "registry_publication",
    "removal",
    "response_topic_of",
    "result_payload",
    "sent_publication",
    "shown_publication",
    "supply_payload",
    "unit_of_text",
    "unpublishable",
]

DEFAULT_BASE_TOPIC: Final = "zse"
#: Home Assistant's default discovery prefix.
DISCOVERY_PREFIX: Final = "homeassistant"
#: Largest command payload read (bytes); a longer one is refused unread.
MAX_COMMAND_BYTES: Final = 16_384
#: Longest ``response_topic`` a command may name (bytes of UTF-8).
MAX_RESPONSE_TOPIC: Final = 256
#: The most characters of a command's name (its request topic's last level) that its answer's
#: topic takes (:meth:`Topics.response`): every command's name is shorter.
MAX_COMMAND_NAME: Final = 64
#: The request topic's last part of a batch of commands (:func:`parse_batch`).
BATCH: Final = "batch"
#: The most commands one batch carries, and its largest payload read (bytes).
MAX_BATCH: Final = 32
MAX_BATCH_BYTES: Final = 65_536
#: The bridge's topic's last part of a batch of events (:func:`batched`, ``event_batches``).
EVENT_BATCH: Final = "events"
#: The most events one batch of events carries (its payload at most :data:`MAX_BATCH_BYTES`).
MAX_EVENTS: Final = 64
#: The longest topic name (bytes of UTF-8) and the largest remaining length of a packet: a
#: PUBLISH's topic, packet identifier and payload (MQTT 3.1.1 sections 1.5.3, 2.2.3).
MAX_TOPIC_BYTES: Final = 65_535
MAX_REMAINING_LENGTH: Final = 268_435_455


class MqttConfigError(ZseError, ValueError):
    """The ``[mqtt]`` table is wrong: the message names the key (``mqtt.url``...)."""


def refuse_encrypted_key(key_file: str) -> Callable[[], str]:
    """The ``password`` of :meth:`ssl.SSLContext.load_cert_chain` for ``mqtt.key_file``: an
    encrypted key is :class:`MqttConfigError` naming it (without a callback OpenSSL asks for
    the pass phrase on the terminal, and waits there), as the headend refuses an encrypted
    server key (``zse.headend.pki``)."""

    def refuse() -> str:
        raise MqttConfigError(
            f"mqtt.key_file: {key_file}: it is encrypted; give an unencrypted key (mode 0600)"
        )

    return refuse


class CommandError(ZseError, ValueError):
    """A command that cannot be carried out; ``field`` names the offending field (a dotted
    path such as ``event.duration_in_minutes``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


# -- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class MqttSettings:
    """The ``[mqtt]`` table. ``password`` never appears in a repr."""

    host: str = "localhost"
    port: int = 1883
    tls: bool = False
    client_id: str = "zse"
    base_topic: str = DEFAULT_BASE_TOPIC
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    qos: int = 1
    retain: bool = True
    discovery_prefix: str = DISCOVERY_PREFIX
    #: How many events the outbox keeps while the broker is away (the oldest go first).
    outbox_limit: int = 10_000
    #: How many executed correlation ids are remembered (the oldest are forgotten).
    executed_limit: int = 1_000
    #: Seconds between meter readings published (ZigBee time; 0: none, and so no meter
    #: sensors in Home Assistant, which would never get a value).
    reading_interval: int = 30
    #: The longest wait between reconnection attempts (seconds; it doubles from 1).
    max_backoff: float = 60.0
    #: Whether the ESI's own sends (``PriceSent``, ``MessageSent``, ``LoadControlSent`` and
    #: the cancels, :data:`SENT_KINDS`) are published on the meter's topics. A gateway that
    #: serves only a headend turns them off: the headend has each command's answer, and the
    #: events would be read and acknowledged by its workers for nothing (ADR 0023).
    send_events: bool = True
    #: Whether the devices' events (not retained, on ``<base>/<device>/<kind>``) waiting
    #: together in the outbox go as one message, ``<base>/bridge/events`` (:func:`batched`),
    #: instead of one each: fewer messages for a headend to read and acknowledge (ADR
    #: 0027). Off by default: Home Assistant and other subscribers follow the device topics.
    event_batches: bool = False


_KEYS: Final = {
    "url": str,
    "client_id": str,
    "base_topic": str,
    "username": str,
    "password": str,
    "ca_file": str,
    "cert_file": str,
    "key_file": str,
    "qos": int,
    "retain": bool,
    "discovery_prefix": str,
    "outbox_limit": int,
    "executed_limit": int,
    "reading_interval": int,
    "max_backoff": int,
    "send_events": bool,
    "event_batches": bool,
}


def parse_url(
    url: str, *, field: str = "mqtt.url", user: str = "use mqtt.username"
) -> tuple[str, int, bool]:
    """``mqtt://HOST[:PORT]`` or ``mqtts://HOST[:PORT]`` as (host, port, tls); an error never
    repeats the URL (a user's password may be in it); ``user`` says where a user goes."""
    expected = f"{field}: expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:  # a bracketed host that is no IPv6 address, a port not 0-65535
        raise MqttConfigError(f"{expected} (a port of 1-65535, an IPv6 host in brackets)") from None
    if parts.scheme not in ("mqtt", "mqtts"):
        scheme = f"scheme {parts.scheme!r}" if parts.scheme.isalnum() else "no scheme"
        raise MqttConfigError(f"{expected}, got {scheme}")
    if port == 0:
        raise MqttConfigError(f"{field}: port 0 is not a port to connect to (1-65535)")
    if not parts.hostname or parts.path not in ("", "/") or parts.username is not None:
        raise MqttConfigError(f"{field}: expected mqtt://HOST[:PORT] (no path, no user: {user})")
    tls = parts.scheme == "mqtts"
    return parts.hostname, port or (8883 if tls else 1883), tls


#: The longest base topic or discovery prefix (bytes of UTF-8): zse's own bound, leaving
#: room under MQTT's 65,535 bytes a topic (section 1.5.3) for what the bridges add to it.
MAX_TOPIC_PREFIX: Final = 1024


def _topic_part(value: str, field: str) -> str:
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate (a bad byte in argv): no topic has it
        raise MqttConfigError(f"{field}: not UTF-8: {value[:40]!r}") from None
    if size > MAX_TOPIC_PREFIX:
        raise MqttConfigError(f"{field}: longer than {MAX_TOPIC_PREFIX} bytes of UTF-8 ({size})")
    if not value or any(c in value for c in "#+\0") or value.startswith("/") or value.endswith("/"):
        raise MqttConfigError(f"{field}: not a usable topic prefix: {value!r}")
    return value


#: The longest MQTT UTF-8 string, in octets (MQTT 3.1.1 section 1.5.3: a 16-bit length).
_MQTT_STRING: Final = 65_535


def _client_id(value: str) -> None:
    """A client id the bridge can connect with: not empty (MQTT 3.1.1 section 3.1.3.1: a
    zero-length one needs a clean session, and the bridge keeps a persistent one), valid
    UTF-8 without U+0000, at most 65535 octets (section 1.5.3)."""
    if not value:
        raise MqttConfigError("mqtt.client_id: empty (the bridge keeps a persistent session)")
    try:
        octets = len(value.encode("utf-8"))  # a lone surrogate (a bad byte in argv) is none
    except UnicodeEncodeError:
        octets = _MQTT_STRING + 1
    if "\0" in value or octets > _MQTT_STRING:
        raise MqttConfigError(f"mqtt.client_id: not a usable MQTT client id: {value[:40]!r}")


def parse_settings(table: Mapping[str, Any]) -> MqttSettings:  # noqa: PLR0912 - one check per key
    """The ``[mqtt]`` table as :class:`MqttSettings` (:class:`MqttConfigError` names the key)."""
    if not isinstance(table, Mapping):
        raise MqttConfigError("mqtt: expected a table")
    found: dict[str, Any] = {}
    for key, value in table.items():
        kind = _KEYS.get(key)
        if kind is None:
            # named as it is when it shows as it is, else quoted (empty, a line break, long)
            plain = key and key.strip() == key and len(key) <= QUOTED_MAX and key.isprintable()
            name = key if plain else quoted(key)
            raise MqttConfigError(f"mqtt.{name}: unknown key (known: {', '.join(sorted(_KEYS))})")
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise MqttConfigError(f"mqtt.{key}: expected {kind.__name__}")
        found[key] = value
    if "url" in found:
        found["host"], found["port"], found["tls"] = parse_url(found.pop("url"))
    for key in ("base_topic", "discovery_prefix"):
        if key in found:
            _topic_part(found[key], f"mqtt.{key}")
    if "client_id" in found:
        _client_id(found["client_id"])
    if found.get("qos", 1) not in (0, 1, 2):
        raise MqttConfigError("mqtt.qos: expected 0, 1 or 2")
    for key in ("outbox_limit", "executed_limit"):
        if key in found and not 1 <= found[key] <= 1_000_000:
            raise MqttConfigError(f"mqtt.{key}: expected 1 to 1000000")
    if found.get("reading_interval", 0) < 0:
        raise MqttConfigError("mqtt.reading_interval: expected 0 (no readings) or more seconds")
    if found.get("max_backoff", 1) < 1:
        raise MqttConfigError("mqtt.max_backoff: expected 1 second or more")
    if ("cert_file" in found) != ("key_file" in found):
        raise MqttConfigError("mqtt.cert_file: a client certificate needs mqtt.key_file too")
    if any(k in found for k in ("ca_file", "cert_file")):
        found["tls"] = True
    if "password" in found and "username" not in found:
        raise MqttConfigError("mqtt.password: given without mqtt.username")
    return MqttSettings(**found)


# -- topics -----------------------------------------------------------------------------------


def node_id(device: Any) -> str:
    """A device's topic and discovery name: its EUI-64 as 16 lower-case hex digits."""
    return canonical_eui64(str(device)).lower()


#: A device's level in a topic (:func:`node_id`), in any case.
_NODE: Final = re.compile(r"[0-9A-Fa-f]{16}")


@dataclass(frozen=True)
class Topics:
    """The topic layout under ``base`` (docs/mqtt.md)."""

    base: str = DEFAULT_BASE_TOPIC
    discovery_prefix: str = DISCOVERY_PREFIX

    @property
    def state(self) -> str:
        """``online`` / ``offline`` (retained; ``offline`` is the Last Will)."""
        return f"{self.base}/bridge/state"

    @property
    def requests(self) -> str:
        """The subscription for commands: ``<base>/bridge/request/<command>``."""
        return f"{self.base}/bridge/request/+"

    def request(self, command: str) -> str:
        return f"{self.base}/bridge/request/{command}"

    def response(self, command: str) -> str:
        """The answers to ``command``, its name cut to :data:`MAX_COMMAND_NAME` characters
        (an unknown command's request topic may be as long as MQTT allows: its answer's,
        a byte longer, would be one no client may publish)."""
        return f"{self.base}/bridge/response/{command[:MAX_COMMAND_NAME]}"

    @property
    def outbox(self) -> str:
        """What the outbox dropped while the broker was away (when it was full)."""
        return f"{self.base}/bridge/outbox"

    def device(self, device: Any, kind: str) -> str:
        """A device's topic for one kind of payload (``metering``, ``drlc``...)."""
        return f"{self.base}/{node_id(device)}/{kind}"

    @property
    def events(self) -> str:
        """Batches of the devices' events (``event_batches``, :func:`batched`)."""
        return f"{self.base}/bridge/{EVENT_BATCH}"

    def check_response_topic(self, topic: str | None) -> None:
        """Refuse (:class:`CommandError` on ``response_topic``) a command's response topic
        that is one of the bridge's own: ``<base>/bridge/...`` (its state, outbox, requests;
        ``<base>/bridge/response/...``, its answers, excepted), a device's
        ``<base>/<EUI-64>/...`` (readings, prices, events) or anything under the discovery
        prefix (Home Assistant's configs). The broker's ACL lets the bridge publish there, so
        an answer there would pass for the bridge's state, a reading or a config."""
        if topic is None:
            return
        if topic == self.discovery_prefix or topic.startswith(f"{self.discovery_prefix}/"):
            raise CommandError(
                "response_topic", f"not under the discovery prefix ({self.discovery_prefix}/)"
            )
        if not topic.startswith(f"{self.base}/"):
            return
        level = topic[len(self.base) + 1 :].split("/", 1)[0]
        answers = topic.startswith(f"{self.base}/bridge/response/")
        if (level == "bridge" and not answers) or _NODE.fullmatch(level):
            raise CommandError(
                "response_topic",
                f"not one of the bridge's own topics ({self.base}/bridge/..., "
                f"{self.base}/<device>/...; {self.base}/bridge/response/... is allowed)",
            )

    def command_of(self, topic: str) -> str | None:
        """The command name of a request topic, or None."""
        prefix = f"{self.base}/bridge/request/"
        return topic[len(prefix) :] if topic.startswith(prefix) else None


@dataclass(frozen=True)
class Publication:
    """One message to publish: topic, JSON (or text) payload, retained or not."""

    topic: str
    payload: Any
    retain: bool = False

    def encode(self) -> bytes:
        """The payload's bytes (a str as is, anything else as compact JSON)."""
        if isinstance(self.payload, str):
            return self.payload.encode()
        return json.dumps(self.payload, separators=(",", ":"), sort_keys=True).encode()

    def to_record(self) -> dict[str, Any]:
        """As stored in the outbox journal."""
        return {"topic": self.topic, "payload": self.payload, "retain": self.retain}

    @classmethod
    def from_record(cls, value: Any) -> Publication:
        """From :meth:`to_record` (:class:`ValueError` when it is not one)."""
        if not isinstance(value, dict) or set(value) != {"topic", "payload", "retain"}:
            raise ValueError("not an outbox record")
        if not isinstance(value["topic"], str) or not isinstance(value["retain"], bool):
            raise ValueError("not an outbox record")
        if unpublishable(value["topic"]) is not None:  # at the outbox's head forever, else
            raise ValueError("not a topic name to publish on")
        return cls(value["topic"], value["payload"], value["retain"])


def unpublishable(topic: str, payload_size: int = 0) -> str | None:
    """Why no client may publish ``payload_size`` bytes on ``topic``, or None if one may: a
    topic is 1 to 65,535 bytes of UTF-8, no wildcard, no NUL (MQTT 3.1.1 sections 1.5.3,
    4.7.1, 4.7.3), and a PUBLISH's topic, packet identifier and payload together are at most
    :data:`MAX_REMAINING_LENGTH` bytes (section 2.2.3; the identifier counted at any QoS)."""
    try:
        size = len(topic.encode("utf-8"))
    except UnicodeEncodeError:
        return "its topic is not UTF-8 (an unpaired surrogate)"
    if not 0 < size <= MAX_TOPIC_BYTES:
        return f"its topic is {size} bytes of UTF-8 (1 to {MAX_TOPIC_BYTES})"
    if "+" in topic or "#" in topic:
        return "its topic has a wildcard (+ or #)"
    if "\0" in topic:
        return "its topic has a NUL character"
    length = 2 + size + 2 + payload_size
    if length > MAX_REMAINING_LENGTH:
        return f"its packet would be {length} bytes (an MQTT packet holds {MAX_REMAINING_LENGTH})"
    return None


def batched(
    topics: Topics, entries: Sequence[tuple[int, Publication]], most: int | None = None
) -> list[tuple[list[int], Publication]]:
    """The outbox's ``entries`` (journal sequence number, publication), oldest first, as the
    publications that carry them, in the same order: each run of device events (not
    retained, a JSON object on ``<base>/<device>/<kind>``) in batches on
    :attr:`Topics.events`, ``{"events": [{"topic": "<device>/<kind>", "payload": {...}},
    ...]}`` (at most :data:`MAX_EVENTS` and :data:`MAX_BATCH_BYTES`), anything else alone
    (ADR 0027). A single event goes alone on its own topic too. At most ``most``
    publications, the entries past them not read (nor encoded)."""
    out: list[tuple[list[int], Publication]] = []
    run: list[tuple[int, Publication, bytes]] = []

    def close() -> None:
        if len(run) == 1:
            out.append(([run[0][0]], run[0][1]))
        elif run:
            text = b'{"events":[' + b",".join(part for _, _, part in run) + b"]}"
            out.append(([seq for seq, _, _ in run], Publication(topics.events, text.decode())))
        run.clear()

    for seq, publication in entries:
        if most is not None and len(out) >= most:
            break
        relative = device_event(topics, publication)
        if relative is None:
            close()
            out.append(([seq], publication))
            continue
        part = b'{"payload":%s,"topic":%s}' % (publication.encode(), json.dumps(relative).encode())
        size = sum(len(p) + 1 for _, _, p in run) + len(part) + 16  # the batch's own bytes
        if run and (len(run) == MAX_EVENTS or size > MAX_BATCH_BYTES):
            close()
        run.append((seq, publication, part))
    close()
    return out[:most]


def device_event(topics: Topics, publication: Publication) -> str | None:
    """``<device>/<kind>`` of a publication :func:`batched` carries in a batch (a device's
    event, not retained, a JSON object, on the topic of a kind of event: not a reading or a
    state, which ``retain = false`` leaves unretained too), else None."""
    if publication.retain or not isinstance(publication.payload, dict):
        return None
    if not publication.topic.startswith(f"{topics.base}/"):
        return None
    relative = publication.topic[len(topics.base) + 1 :]
    node, _, kind = relative.partition("/")
    if kind not in _event_kinds() or not _NODE.fullmatch(node):
        return None
    return relative


@functools.cache
def _event_kinds() -> frozenset[str]:
    """The device topics' kinds that carry events (:func:`device_event`): the ESI's events,
    its sends and a HAN device's events (``network``, ``drlc``...), not ``metering``,
    ``registry`` or ``state``."""
    return frozenset(
        {
            *EVENT_KINDS.values(),
            *SENT_KINDS.values(),
            *METER_EVENT_KINDS.values(),
            *HAN_EVENT_KINDS.values(),
        }
    )


# -- payloads ---------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:  # noqa: PLR0911 - one return per kind of value
    """Plain JSON from the ESI's event values (dataclasses, enums, EUI-64s, bytes)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):  # a flag of no bits (or of bits unnamed) by its value
        name = value.name
        return value.value if isinstance(value.value, str) or name is None else name.lower()
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float | Fraction):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)  # an EUI-64 prints as zigpy prints it


#: The device topic of each ESI event, by class name (zse.roles.esi.EsiEvent).
EVENT_KINDS: Final = {
    "DeviceJoined": "network",
    "DeviceLeft": "network",
    "KeyEstablished": "security",
    "KeyEstablishmentEnded": "security",
    "LifecycleChanged": "lifecycle",
    "LifecycleRefused": "lifecycle",
    "MessageConfirmed": "message",
    "ReportReceived": "drlc",
    "PriceAcknowledged": "price",
    "CppEventResponded": "price",
    "MirrorAdded": "mirror",
    "MirrorRemoved": "mirror",
    "MirrorUpdated": "mirror",
    "MirrorConfigured": "mirror",  # SE 1.2 mirror notifications
    "NotificationFlagsRaised": "mirror",
    "NotifiedMessageRequested": "mirror",
    # SE 1.2 Device Management and Events (D.10, D.11): a device's requests, never a password
    "PasswordRequested": "device_management",
    "EventConfigurationReported": "device_management",
    "EventLogClearRequested": "events",
}

#: The ESI's events that belong to no device (its prepay account, SE 1.2 D.7) and the meter's
#: topic each goes to, not retained (ADR 0030's rule for a later cluster: its events on
#: ``<base>/<meter>/<cluster>``). A top-up's code is masked in the event itself.
METER_EVENT_KINDS: Final = {
    "LowCredit": "prepayment",
    "EmergencyCreditAvailable": "prepayment",
    "EmergencyCreditSelected": "prepayment",
    "CreditExhausted": "prepayment",
    "SupplyInterrupted": "prepayment",
    "SupplyRestored": "prepayment",
    "FriendlyCreditStarted": "prepayment",
    "FriendlyCreditEnded": "prepayment",
    "TopUpAccepted": "prepayment",
    "TopUpRefused": "prepayment",
    "DebtCollected": "prepayment",
    # SE 1.2 supply control (zse.metering.supply); not ``metering``: the readings' topic
    "SupplyChanged": "supply",
    "SupplyStatesSet": "supply",
    "UncontrolledFlowThresholdSet": "supply",
    "LoadLimitCounterReset": "supply",
}


def meter_event_publication(topics: Topics, meter: Any, event: Any, now: int) -> Publication | None:
    """An ESI event of no device (:data:`METER_EVENT_KINDS`) on the meter's topic: its fields,
    ``event`` (the class) and ``time`` (``now`` unless the event has its own); None for
    another event."""
    name = type(event).__name__
    kind = METER_EVENT_KINDS.get(name)
    if kind is None or not dataclasses.is_dataclass(event) or isinstance(event, type):
        return None
    payload = {"event": name, "time": now, **_jsonable(event)}
    return Publication(topics.device(meter, kind), payload)


def event_publication(topics: Topics, event: Any, now: int) -> Publication | None:
    """An ESI event (:data:`zse.roles.esi.EsiEvent`) as a publication on its device's topic,
    or None for an event without a device. ``event`` names the class; ``time`` is ``now``."""
    name = type(event).__name__
    kind = EVENT_KINDS.get(name)
    device = getattr(event, "device", None) or getattr(event, "source_ieee", None)
    if kind is None or not dataclasses.is_dataclass(event) or device is None:
        return None
    payload = {**_fields(event, kind), "event": name, "time": now, "device": str(device)}
    if name == "ReportReceived":
        payload["status"] = _status(getattr(event, "report").event_status)  # noqa: B009
    elif name == "CppEventResponded":  # CPP Auth by name (SE D.4.2.3.14.1.2)
        auth = int(getattr(event, "cpp_auth"))  # noqa: B009
        payload["cpp_auth"] = CPP_AUTH.get(auth, str(auth))
    return Publication(topics.device(device, kind), payload)


#: The name in a payload of an event's own field ``event`` (``event`` names the class).
_EVENT_FIELDS: Final = {"lifecycle": "lifecycle_event", "drlc": "load_control_event"}


def _fields(event: Any, kind: str) -> dict[str, Any]:
    """An event's fields as JSON, its field ``event`` (a lifecycle event, a load control
    event) renamed (:data:`_EVENT_FIELDS`)."""
    fields = _jsonable(event)
    if "event" in fields:
        fields[_EVENT_FIELDS.get(kind, f"{kind}_event")] = fields.pop("event")
    return dict(fields)


def _status(value: int) -> str:
    """A Report Event Status's status (SE D.2.3.3.1.1.2) by name (a reserved one as the
    number)."""
    try:
        return Status(value).name.lower()
    except ValueError:
        return str(value)


#: The ESI's send events (zse.roles.esi.PriceSent...) and the meter topic each goes to.
SENT_KINDS: Final = {
    "PriceSent": "price",
    "TariffSent": "price",
    "TariffCancelSent": "price",
    "MessageSent": "message",
    "MessageCancelSent": "message",
    "LoadControlSent": "drlc",
    "LoadControlCancelSent": "drlc",
    "CalendarSent": "calendar",
    "CalendarCancelSent": "calendar",
    "DeviceManagementSent": "device_management",
}


def sent_publication(
    topics: Topics, meter: Any, event: Any, now: int, *, retain: bool = True
) -> Publication | None:
    """A send of the ESI (:class:`zse.roles.esi.PriceSent`, ``MessageSent``,
    ``MessageCancelSent``, ``LoadControlSent``, ``LoadControlCancelSent``), whoever asked for
    it, on the meter's ``price`` / ``message`` / ``drlc`` topic: what was sent (its fields at
    the top level), ``target`` and the per-device ``outcomes``. A price is retained when
    ``retain`` is (the last one is what a new subscriber wants); a block period, conversion
    factor or calorific value (SE D.4.2.4.2-4) goes to its own ``price/block_period``,
    ``price/conversion_factor`` or ``price/calorific_value``, retained as well, so that the
    retained ``price`` is always a price; None for another event."""
    name = type(event).__name__
    kind = SENT_KINDS.get(name)
    if kind is None or not dataclasses.is_dataclass(event) or isinstance(event, type):
        return None
    answer = result_payload(getattr(event, "result"))  # noqa: B009 - any send event
    if name == "PriceSent":
        payload = price_payload(getattr(event, "price"))  # noqa: B009
    elif name == "TariffSent":
        payload = tariff_payload(getattr(event, "tariff"), getattr(event, "values"))  # noqa: B009
    elif name == "TariffCancelSent":
        payload = {"event": "TariffCancellation", **_jsonable(getattr(event, "cancellation"))}  # noqa: B009
    else:
        values = {
            f.name: getattr(event, f.name) for f in dataclasses.fields(event) if f.name != "result"
        }
        sent = values.pop("message", None) or values.pop("event", None)
        payload = {**(_jsonable(sent) if sent is not None else {}), **_jsonable(values)}
        payload["event"] = name
    payload.update(time=now, target=answer["target"], outcomes=answer["outcomes"])
    topic = topics.device(meter, kind)
    if kind == "price" and payload["event"] != "PriceEvent":  # the last of each kind kept
        topic += "/" + PRICE_SUBTOPICS[payload["event"]]
    return Publication(topic, payload, retain and kind == "price")


#: The meter's topic under ``<base>/<meter>/price/`` of each kind of Price publication but a
#: price (which is ``price`` itself), by the ``event`` its payload names (ADR 0030): the last
#: of each kind retained there. A cluster added later follows the same rule: its values on
#: ``<base>/<meter>/<cluster>`` and its own kinds under it.
PRICE_SUBTOPICS: Final = {
    "BlockPeriod": "block_period",
    "ConversionFactor": "conversion_factor",
    "CalorificValue": "calorific_value",
    "Co2Value": "co2_value",
    "BillingPeriod": "billing_period",
    "ConsolidatedBill": "consolidated_bill",
    "CppEvent": "cpp_event",
    "CreditPayment": "credit_payment",
    "CurrencyConversion": "currency_conversion",
    "TariffInformation": "tariff",
    "TariffCancellation": "tariff_cancelled",
}


def reading_publication(
    topics: Topics,
    meter: Any,
    formatting: Formatting,
    *,
    summation: int | None,
    demand: int | None,
    received: int | None = None,
    now: int,
    retain: bool = True,
) -> Publication:
    """The meter's readings (CurrentSummationDelivered / Received, InstantaneousDemand, SE
    D.3.2.2.1) raw and formatted (D.3.2.2.4), with units, on ``<base>/<meter>/metering``;
    retained, so a new subscriber sees the last one."""
    payload: dict[str, Any] = {"time": now}
    for name, raw, is_demand in (
        ("summation_delivered", summation, False),
        ("summation_received", received, False),
        ("demand", demand, True),
    ):
        if raw is None:
            continue
        shown = formatting.demand(raw) if is_demand else formatting.summation(raw)
        payload[name] = float(shown.value)
        payload[f"{name}_raw"] = raw
        payload[f"{name}_text"] = shown.text
        payload[f"{name}_unit"] = shown.unit
    return Publication(topics.device(meter, "metering"), payload, retain)


def price_payload(price: Any) -> dict[str, Any]:
    """A published price (with its price per unit as a number), block period, conversion
    factor or calorific value; ``event`` names its type."""
    payload: dict[str, Any] = {"event": type(price).__name__, **_jsonable(price)}
    if isinstance(price, PriceEvent):
        payload["price_per_unit"] = price.price / 10**price.price_trailing_digit
    return payload


def _text_of(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")


def tariff_value_payload(value: Any, digits: int | None = None) -> dict[str, Any]:
    """A price matrix, block thresholds or tier labels (SE D.4.2.4.6-7, 9) as JSON keyed for
    reading: a matrix's ``prices`` a list of ``{"tier", "block", "price"}`` (and
    ``price_per_unit`` when the tariff's trailing ``digits`` are known), thresholds and
    labels objects keyed by the tier's number (``"0"``: every tier)."""
    common = {"issuer_event_id": value.issuer_event_id}
    if isinstance(value, PriceMatrix):
        prices: list[dict[str, Any]] = []
        for (tier, block), price in sorted(value.prices.items()):
            entry: dict[str, Any] = {"tier": tier, "block": block, "price": price}
            if digits is not None:
                entry["price_per_unit"] = price / 10**digits
            prices.append(entry)
        return {**common, "start_time": value.start_time, "tou": value.tou, "prices": prices}
    if isinstance(value, BlockThresholds):
        thresholds = {str(tier): list(v) for tier, v in sorted(value.thresholds.items())}
        return {
            **common,
            "start_time": value.start_time,
            "all_tiers": value.all_tiers,
            "thresholds": thresholds,
        }
    labels = {str(tier): _text_of(label) for tier, label in sorted(value.labels.items())}
    return {**common, "labels": labels}


#: The key of each tariff value in a tariff's payload (:func:`tariff_payload`).
TARIFF_VALUE_KEYS: Final = {
    PriceMatrix: "price_matrix",
    BlockThresholds: "block_thresholds",
    TierLabels: "tier_labels",
}


def tariff_information_payload(tariff: TariffInformation) -> dict[str, Any]:
    """Publish Tariff Information's fields (D.4.2.4.5), ``tariff_label`` as text, with
    ``tariff_type`` and ``charging_scheme``, the two halves of their octet."""
    payload: dict[str, Any] = _jsonable(tariff)
    payload["tariff_label"] = _text_of(tariff.tariff_label)
    payload["tariff_type"] = tariff.tariff_type
    payload["charging_scheme"] = tariff.charging_scheme
    return payload


def tariff_payload(tariff: TariffInformation, values: Iterable[Any] = ()) -> dict[str, Any]:
    """An SE 1.2 tariff (Publish Tariff Information, D.4.2.4.5) whole, with its price
    matrix, block thresholds and tier labels (:func:`tariff_value_payload`, None for one
    not sent): its fields at the top level (``tariff_label`` as text), ``tariff_type`` and
    ``charging_scheme`` (the two halves of their octet), ``event`` ``TariffInformation``.
    Its largest (a 16 x 16 block matrix, 16 tiers of 15 thresholds, 48 labels) is under
    32 KiB of JSON (ADR 0030)."""
    payload: dict[str, Any] = {"event": "TariffInformation", **tariff_information_payload(tariff)}
    payload.update(dict.fromkeys(TARIFF_VALUE_KEYS.values()))
    for value in values:
        payload[TARIFF_VALUE_KEYS[type(value)]] = tariff_value_payload(value, tariff.digits)
    return payload


def result_payload(result: Any) -> dict[str, Any]:
    """A :class:`zse.roles.esi.SendResult` as a response's ``result``: the target and one
    outcome per device (``delivered`` / ``offline`` / ``skipped``)."""
    return {
        "what": result.what,
        "target": result.target,
        "multicast": result.multicast,
        "outcomes": [
            {"device": o.device, "outcome": o.outcome.value, "detail": o.detail}
            for o in result.outcomes
        ],
    }


def error_payload(command: str, correlation_id: Any, error: CommandError) -> dict[str, Any]:
    """The response to a command refused or failed: the field and why."""
    return {
        "command": command,
        "correlation_id": correlation_id,
        "status": "error",
        "error": {"field": error.field, "message": error.reason},
    }


# -- Home Assistant discovery -------------------------------------------------------------------


#: The hex digits of an EUI-64 that end a Home Assistant device's name: its low 32 bits,
#: the end of the vendor's 40-bit serial (the top 24 bits are its OUI, alike for devices of
#: one vendor). Four (16 bits) named two devices ending alike the same; eight keep the name
#: short and the same from whichever bridge gives it, which a name depending on the other
#: devices known could not (each bridge knows only its own).
HA_NAME_DIGITS: Final = 8


def ha_name(title: str, device: Any) -> str:
    """A Home Assistant device name: ``title`` and the last :data:`HA_NAME_DIGITS` hex
    digits of the device's EUI-64 (``Thermostat 00000002``)."""
    return f"{title} {node_id(device)[-HA_NAME_DIGITS:]}"


def _ha_device(device: Any, name: str, model: str, via: Any = None) -> dict[str, Any]:
    node = node_id(device)
    found: dict[str, Any] = {
        "identifiers": [f"zse_{node}"],
        "connections": [["zigbee", str(device)]],
        "name": name,
        "manufacturer": "zse",
        "model": model,
    }
    if via is not None:
        found["via_device"] = f"zse_{node_id(via)}"
    return found


#: Home Assistant's name and model of each kind of HAN device (SE device id, SE 5.7 table
#: 5.13), and of one whose kind is not known.
_HA_MODELS: Final = {
    ESI_DEVICE_ID: ("Energy service interface", "ESI"),
    METERING_DEVICE: ("Metering device", "Metering device"),
    IN_HOME_DISPLAY: ("In-home display", "IHD"),
    PROGRAMMABLE_THERMOSTAT: ("Thermostat", "PCT"),
    LOAD_CONTROL_DEVICE: ("Load control device", "LCD"),
    SMART_APPLIANCE: ("Smart appliance", "Smart appliance"),
    PREPAYMENT_TERMINAL: ("Prepayment terminal", "Prepayment terminal"),
    DEVICE_MANAGEMENT: ("Device management", "Device management"),
}
_HA_UNKNOWN: Final = ("HAN device", "HAN device")


def han_device(
    device: Any, device_type: int | None = None, *, label: str = "", meter: Any = None
) -> dict[str, Any]:
    """The Home Assistant ``device`` of a HAN device: one description, whichever bridge
    gives it (Home Assistant merges the ``device`` of every config with the same
    ``identifiers`` into one device, each key taken from the config read last, a key a
    config leaves out kept as it was: two bridges describing one device differently made
    its model and parent go by arrival order). A device of a known kind (``device_type``, an
    SE device id) is named and modelled by it (``Thermostat 0a000002``, ``PCT``;
    :func:`ha_name`), another by its registry ``label`` (``HAN device`` without one), model
    ``HAN device``; ``via_device`` is
    the ``meter`` whose HAN it joined, when given, else left out.

    What each bridge owns, so that the merged device is the same in any arrival order:
    ``identifiers``, ``connections`` and ``manufacturer``, both, alike; ``name`` and
    ``model``, the kind's: the HAN devices' bridge knows its device's, the ESI's bridge the
    kind it was told or zigpy learned (the Simple Descriptor's device id), announcing the
    device again when the interview tells it later (until then, its label's); ``via_device``,
    the ESI's bridge, which announces the meter; the HAN devices' bridge gives it only when
    it is told that meter (``zse mqtt --sim --role both``; ``zse han watch`` is not)."""
    known = _HA_MODELS.get(device_type) if device_type is not None else None
    title, model = known or (label[:40] or _HA_UNKNOWN[0], _HA_UNKNOWN[1])
    return _ha_device(device, ha_name(title, device), model, meter)


_U = UnitOfMeasure
#: Home Assistant's ``(device_class, unit)`` of a summation in each UnitOfMeasure (SE
#: D.3.2.2.4.1, table D.21), as HA's sensor device classes take them
#: (https://www.home-assistant.io/integrations/sensor/#device-class, HA's
#: ``DEVICE_CLASS_UNITS``: energy J...MJ...kWh, gas m³/ft³/CCF, water m³/ft³/CCF/gal/L, volume
#: m³/ft³/CCF/gal/L): a gas meter is a ``gas`` sensor, a water meter (MeteringDeviceType 2,
#: D.3.2.2.3) a ``water`` one. A unit HA has no class for (imperial gallons, BTU, kPa, mcf,
#: unitless, kVArh) has none.
_HA_VOLUMES: Final = {_U.CUBIC_METER: "m³", _U.CUBIC_FEET: "ft³", _U.CCF: "CCF"}
_HA_LIQUIDS: Final = {_U.US_GALLONS: "gal", _U.LITERS: "L"}
#: Demand: power in kW (MJ/s is MW), a flow in m³/h (``volume_flow_rate``); none else.
_HA_RATES: Final = {
    _U.KWH: ("power", "kW"),
    _U.MEGA_JOULE: ("power", "MW"),
    _U.CUBIC_METER: ("volume_flow_rate", "m³/h"),
}
#: MeteringDeviceType (SE D.3.2.2.3): water, and its mirrored form (+127).
_WATER_METERS: Final = (2, 2 + 127)


def meter_sensors(
    unit_of_measure: int | None, device_type: int = 0
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Home Assistant fields (``device_class``, ``state_class``,
    ``unit_of_measurement``) of a meter's summation and demand sensors for its UnitOfMeasure
    (D.3.2.2.4.1, the BCD bit ignored) and MeteringDeviceType: a unit HA has no device class
    for gets none (and the summation no ``total_increasing``, which HA ties to the classes);
    a reserved unit, or None (no meter), gets no unit at all. Never raises."""
    try:
        unit = _U((unit_of_measure or 0) & ~UNIT_OF_MEASURE_BCD)
    except ValueError:
        unit = None
    if unit_of_measure is None or unit is None:
        return {}, {"state_class": "measurement"}
    total = {"state_class": "total_increasing"}
    if unit is _U.KWH:
        summation = {"device_class": "energy", **total, "unit_of_measurement": "kWh"}
    elif unit is _U.MEGA_JOULE:
        summation = {"device_class": "energy", **total, "unit_of_measurement": "MJ"}
    elif unit in _HA_VOLUMES or unit in _HA_LIQUIDS:
        water = device_type in _WATER_METERS
        kind = "water" if water else "gas" if unit in _HA_VOLUMES else "volume"
        ha_unit = _HA_VOLUMES.get(unit) or _HA_LIQUIDS[unit]
        summation = {"device_class": kind, **total, "unit_of_measurement": ha_unit}
    else:
        summation = {"unit_of_measurement": unit_text(unit)}
    rate = _HA_RATES.get(unit)
    demand: dict[str, Any] = {"state_class": "measurement"}
    if rate is not None:
        demand |= {"device_class": rate[0], "unit_of_measurement": rate[1]}
    else:
        demand["unit_of_measurement"] = unit_text(unit, demand=True)
    return summation, demand


def unit_of_text(text: str, *, demand: bool = False) -> int | None:
    """The UnitOfMeasure (D.3.2.2.4.1) whose summation unit (or with ``demand`` rate unit)
    is ``text`` as a reading shows it (:func:`zse.metering.formatting.unit_text`), or None."""
    for unit in UnitOfMeasure:
        if unit_text(unit, demand=demand) == text:
            return int(unit)
    return None


def _configs(
    topics: Topics, configs: Iterable[tuple[str, str, dict[str, Any]]]
) -> list[Publication]:
    """Discovery configs as retained publications, availability following the bridge."""
    availability = {"availability_topic": topics.state}
    return [
        Publication(
            f"{topics.discovery_prefix}/{component}/{object_id}/config",
            {**config, **availability},
            True,
        )
        for component, object_id, config in configs
    ]


def removal(publications: Iterable[Publication]) -> list[Publication]:
    """What removes discovered entities from Home Assistant: an empty retained payload on
    each config topic of ``publications`` (https://www.home-assistant.io/integrations/mqtt/,
    "Discovery": a config topic cleared removes the entity; it also clears the retained
    config at the broker, MQTT 3.1.1 section 3.3.1.3)."""
    return [Publication(p.topic, "", True) for p in publications]


def meter_discovery(
    topics: Topics,
    meter: Any,
    *,
    unit_of_measure: int | None = 0,
    device_type: int = 0,
    demand: bool = True,
) -> list[Publication]:
    """Home Assistant MQTT discovery (retained) of the meter's sensors: what it delivered
    (``summation_delivered``) and its demand, classed by :func:`meter_sensors` (for the
    energy dashboard: an electricity meter is ``energy``, ``total_increasing``, kWh; a gas
    meter ``gas`` in m³, ft³ or CCF). The meter is named by its EUI-64's last eight digits
    (``Smart Energy meter 000000e5``, :func:`ha_name`), so that the meters of several
    gateways on one broker are told apart (the ``unique_id`` s were apart already).
    ``demand`` False: the meter has no InstantaneousDemand (SE D.3.2.2.1.1; none held, a
    read of it is answered UNSUPPORTED_ATTRIBUTE), so its readings never carry one: the
    power sensor's config is removed (:func:`removal`) instead of announced, as it would
    stay ``unknown`` for ever."""
    node = node_id(meter)
    metering = topics.device(meter, "metering")
    meter_device = _ha_device(meter, ha_name("Smart Energy meter", meter), "ESI (zse)")
    summation, rate = meter_sensors(unit_of_measure, device_type)
    configs = (
        ("energy", "Energy delivered", "summation_delivered", summation),
        ("power", "Power", "demand", rate),
    )
    found = _configs(
        topics,
        (
            (
                "sensor",
                f"{node}/{object_id}",
                {
                    "name": name,
                    "unique_id": f"zse_{node}_{object_id}",
                    "state_topic": metering,
                    "value_template": f"{{{{ value_json.{key} }}}}",
                    **fields,
                    "device": meter_device,
                },
            )
            for object_id, name, key, fields in configs
        ),
    )
    return found if demand else [found[0], *removal(found[1:])]


#: The "Message confirmed" event's payload, from a ``MessageConfirmed`` on the device's
#: ``message`` topic: Home Assistant's MQTT event takes a JSON object naming its
#: ``event_type``, the other keys its attributes.
CONFIRMED_TEMPLATE: Final = (
    '{{ {"event_type": "confirmed", "message_id": value_json.message.message_id,'
    ' "answer": value_json.confirmation.answer,'
    ' "response": value_json.confirmation.response} | tojson }}'
)


def device_discovery(
    topics: Topics,
    meter: Any,
    device: Any,
    *,
    device_type: int | None = None,
    label: str = "",
    messages: bool | None = None,
) -> list[Publication]:
    """Home Assistant MQTT discovery (retained) of a HAN device the ESI serves: its
    lifecycle state (``<base>/<device>/registry``, retained, :func:`registry_publication`)
    and, for a device that displays messages and confirms them (``messages``; by default a
    display, ``device_type`` IN_HOME_DISPLAY, whose user confirms, SE D.5.2.4.2), the
    messages it confirms: an MQTT *event* entity, ``confirmed`` with the message id, answer
    and response as attributes, from the ``MessageConfirmed`` events of ``<base>/<device>/
    message`` (not retained: an event; Home Assistant keeps an event entity's last event
    across its restarts). A device known not to confirm messages (``device_type`` another
    kind, or ``messages`` False) has that event's config removed (an empty retained config:
    one retained from when it was a display, in this process or an earlier one, would stay a
    stale entity); a device whose kind is not known (``device_type`` None) keeps whatever
    is retained, as it may still be a display not interviewed again yet. The sensor of that
    name earlier versions announced for every device is removed first. The device is
    :func:`han_device` (its kind, else its registry ``label``), joined through the meter."""
    other = node_id(device)
    ha = han_device(device, device_type, label=label, meter=meter)
    confirms = device_type == IN_HOME_DISPLAY if messages is None else messages
    known = device_type is not None or messages is not None
    lifecycle = (
        "sensor",
        f"{other}/lifecycle",
        {
            "name": "Lifecycle state",
            "unique_id": f"zse_{other}_lifecycle",
            "state_topic": topics.device(device, "registry"),
            "value_template": "{{ value_json.state }}",
            "device": ha,
        },
    )
    confirmed = (
        "event",
        f"{other}/confirmed",
        {
            "name": "Message confirmed",
            "unique_id": f"zse_{other}_confirmed",
            "state_topic": topics.device(device, "message"),
            "event_types": ["confirmed"],
            "value_template": CONFIRMED_TEMPLATE,
            "device": ha,
        },
    )
    gone: list[tuple[str, str, dict[str, Any]]] = [("sensor", f"{other}/confirmed", {})]
    if known and not confirms:
        gone.append(confirmed)
    announced = [lifecycle, confirmed] if confirms else [lifecycle]
    return removal(_configs(topics, gone)) + _configs(topics, announced)


def device_removal(topics: Topics, device: Any) -> list[Publication]:
    """Every discovery config a HAN device may have had (:func:`device_discovery`: its
    lifecycle sensor, its "Message confirmed" event, an earlier version's sensor of that
    name), removed with an empty retained payload (:func:`removal`), whatever its kind:
    announced as a display, it is removed as one even once its kind is no longer known."""
    return removal(device_discovery(topics, None, device, messages=True))


def registry_publication(
    topics: Topics, device: Any, state: Any, now: int, *, retain: bool = True
) -> Publication:
    """A HAN device's lifecycle state (a :class:`zse.provisioning.LifecycleState`, SE 5.4.8
    provisioning) on ``<base>/<device>/registry``, retained: what the display's "Lifecycle
    state" sensor reads, a state always (a refused transition goes to ``lifecycle`` only)."""
    value = state.value if isinstance(state, enum.Enum) else str(state)
    payload = {"device": str(device), "state": value, "time": now}
    return Publication(topics.device(device, "registry"), payload, retain)


def discovery(
    topics: Topics,
    meter: Any,
    displays: Iterable[Any] = (),
    *,
    unit_of_measure: int | None = 0,
    device_type: int = 0,
    demand: bool = True,
) -> list[Publication]:
    """Home Assistant MQTT discovery (retained, under the discovery prefix) for the meter
    (:func:`meter_discovery`, its power sensor removed without ``demand``; none when
    ``unit_of_measure`` is None: an ESI without a Metering server) and each display
    (:func:`device_discovery`). Availability follows the bridge."""
    found = (
        []
        if unit_of_measure is None
        else meter_discovery(
            topics,
            meter,
            unit_of_measure=unit_of_measure,
            device_type=device_type,
            demand=demand,
        )
    )
    for display in displays:
        found += device_discovery(topics, meter, display, device_type=IN_HOME_DISPLAY)
    return found


# -- commands ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where a send goes: ``kind`` is device, group (registry), zigbee_group,
    enrollment_group or broadcast."""

    kind: str
    value: Any = None

    def keywords(self) -> dict[str, Any]:
        """The keyword argument of the ESI's send methods."""
        return {self.kind: True if self.kind == "broadcast" else self.value}


@dataclass(frozen=True, kw_only=True)
class _Command:
    #: The caller's id for the command: its response carries it, and a command whose id was
    #: carried out before is answered again, not carried out again (at most once).
    correlation_id: str
    #: Where the response goes (the command's ``response_topic``, named after MQTT 5's
    #: Response Topic, section 3.3.2.3.5); None: ``<base>/bridge/response/<command>``.
    response_topic: str | None = None


@dataclass(frozen=True, kw_only=True)
class _Send(_Command):
    target: Target


@dataclass(frozen=True, kw_only=True)
class DisplayMessage(_Send):
    """Send a display message (SE D.5.2.3.1): ``display_message``."""

    message: Message


@dataclass(frozen=True, kw_only=True)
class CancelMessage(_Send):
    """Cancel a message (SE D.5.2.3.2): ``cancel_message``."""

    message_id: int


#: A value ``publish_price`` sends besides a price (as :data:`zse.price.protocol.PriceValue`,
#: named here from :mod:`zse.price.core`: a recipe imports no protocol core).
PriceValue = (
    BlockPeriod
    | ConversionFactor
    | CalorificValue
    | Co2Value
    | BillingPeriod
    | ConsolidatedBill
    | CppEvent
    | CreditPayment
    | CurrencyConversion
)
#: What ``publish_price`` takes besides a price, by its key (SE D.4.2.4.2-4, 8, 10-14).
PRICE_VALUES: Final[Mapping[str, type[Any]]] = PRICE_VALUE_KINDS


@dataclass(frozen=True, kw_only=True)
class PublishPrice(_Send):
    """Publish a price, a block period, conversion factor or calorific value, or an SE 1.2
    CO2 value, billing period, consolidated bill, CPP event, credit payment or currency
    conversion (SE D.4.2.4.1-4, 8, 10-14): ``publish_price``."""

    price: PriceEvent | PriceValue


@dataclass(frozen=True, kw_only=True)
class PublishTariff(_Send):
    """Publish an SE 1.2 tariff with its price matrix, block thresholds and tier labels
    (SE D.4.2.4.5-7, 9): ``publish_tariff``."""

    tariff: TariffInformation
    values: tuple[TariffValue, ...] = ()


@dataclass(frozen=True, kw_only=True)
class CancelTariff(_Send):
    """Cancel an SE 1.2 tariff (Cancel Tariff, SE D.4.2.4.15): ``cancel_tariff``."""

    cancellation: TariffCancellation


@dataclass(frozen=True, kw_only=True)
class LoadControl(_Send):
    """Send a Load Control Event (SE D.2.2.3.1): ``load_control``."""

    event: LoadControlEvent


@dataclass(frozen=True, kw_only=True)
class CancelLoadControl(_Send):
    """Cancel a Load Control Event (SE D.2.2.3.2): ``cancel_load_control``."""

    issuer_event_id: int
    cancel_control: int = 0


@dataclass(frozen=True, kw_only=True)
class Provision(_Command):
    """Admit a device by MAC address and install code (SE 5.4.8.1): ``provision``."""

    mac: str
    install_code: InstallCode = dataclasses.field(repr=False)
    label: str = ""
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Deprovision(_Command):
    """Remove a device (registry DEPROVISION, ZDO Mgmt_Leave_req): ``deprovision``."""

    mac: str


@dataclass(frozen=True, kw_only=True)
class ChangeSupply(_Command):
    """Change the ESI meter's own supply (SE 1.2 Metering Change Supply, made by the ESI:
    :meth:`zse.metering.service.MeteringServer.change_supply`): ``change_supply``.
    ``status`` a :class:`~zse.se.types.SupplyStatus`; ``at`` ZigBee UTCTime, 0 now,
    :data:`CANCEL` cancels the change waiting of that provider and issuer event id."""

    status: int
    at: int = 0
    provider_id: int
    issuer_event_id: int


@dataclass(frozen=True, kw_only=True)
class TakeSnapshot(_Command):
    """Take a snapshot of the ESI meter's registers now (SE 1.2 Metering snapshots):
    ``take_snapshot``. ``cause``: a Metering Snapshot Cause name as tshark gives its bits
    (``General``...; the bridge checks it, :class:`zse.metering.snapshot_types.
    MeterSnapshotCause` being above this module's layer)."""

    cause: str = "General"


Command = (
    DisplayMessage
    | CancelMessage
    | PublishPrice
    | PublishTariff
    | CancelTariff
    | LoadControl
    | CancelLoadControl
    | Provision
    | Deprovision
    | ChangeSupply
    | TakeSnapshot
)

_MAX_ID_LENGTH = 128
_INT_RANGE = (-(1 << 31), (1 << 32) - 1)


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CommandError(path, "expected a JSON object")
    return value


_SHOWN = 40  #: the most characters of a command's own text an error message quotes


def _shown_int(value: int) -> str:
    """An integer as an error quotes it: itself when short, else how long it is (a command
    may carry thousands of digits, hostile-input audit D13)."""
    if abs(value) < 10**_SHOWN:
        return str(value)
    digits = int(value.bit_length() * 0.30103) + 1  # log10(2): no str() of a huge integer
    if 10 ** (digits - 1) > abs(value):
        digits -= 1
    return f"an integer of {digits} digits"


def _shown_key(key: str) -> str:
    """A field name as an error path shows it: cut short past :data:`_SHOWN` characters."""
    return key if len(key) <= _SHOWN else f"{key[:_SHOWN]}... ({len(key)} characters)"


def _int(value: Any, path: str, low: int = _INT_RANGE[0], high: int = _INT_RANGE[1]) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise CommandError(path, "expected an integer")
    if not low <= value <= high:
        raise CommandError(path, f"{_shown_int(value)} is outside {low}..{high}")
    return value


def _text(value: Any, path: str, limit: int = 255) -> str:
    """A string of at most ``limit`` octets in UTF-8 (as the wire's octet strings count)."""
    if not isinstance(value, str):
        raise CommandError(path, "expected a string")
    if len(value) > limit or _utf8_size(value, path) > limit:
        raise CommandError(path, f"longer than {limit} octets (UTF-8)")
    return value


def _utf8_size(value: str, path: str) -> int:
    try:
        return len(value.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate: no UTF-8 for it (RFC 8259 section 8.2)
        raise CommandError(path, "not text: an unpaired surrogate") from None


def _field_value(kind: Any, value: Any, path: str) -> Any:
    kind = str(kind)
    if value is None and "None" in kind:
        return None
    if kind.startswith("int"):
        return _int(value, path)
    if kind == "bool":
        if not isinstance(value, bool):
            raise CommandError(path, "expected true or false")
        return value
    if kind == "bytes":
        try:
            return _text(value, path).encode("ascii")
        except UnicodeEncodeError:
            raise CommandError(path, "expected ASCII text") from None
    return _text(value, path)  # str: every field is one of these types


def _build(cls: Any, data: Any, path: str) -> Any:
    """``cls`` (a dataclass of wire fields) from a JSON object, each field checked; a value
    ``cls`` refuses is reported on the field its error names."""
    data = _object(data, path)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in known:
            raise CommandError(f"{path}.{_shown_key(key)}", "unknown field")
    values = {}
    for name, f in known.items():
        if name in data:
            values[name] = _field_value(f.type, data[name], f"{path}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise CommandError(f"{path}.{name}", "missing")
    try:
        return cls(**values)
    except (ValueError, TypeError) as exc:
        text = str(exc)
        named = [name for name in known if name in text] or [""]
        raise CommandError(f"{path}.{max(named, key=len)}".rstrip("."), text) from None


def _target(data: dict[str, Any]) -> Target:
    given: list[str] = [
        k for k in ("device", "group", "zigbee_group", "enrollment_group") if k in data
    ]
    if data.get("broadcast") is True:
        given.append("broadcast")
    elif "broadcast" in data and data["broadcast"] is not False:
        raise CommandError("broadcast", "expected true or false")
    if len(given) != 1:
        raise CommandError(
            "target",
            "give exactly one of device, group, zigbee_group, enrollment_group, broadcast",
        )
    kind = given[0]
    if kind == "device":
        return Target(kind, _mac(data[kind], "device"))
    if kind == "group":
        return Target(kind, _text(data[kind], "group", 64))
    if kind == "zigbee_group":
        return Target(kind, _int(data[kind], kind, 0x0001, 0xFFF7))
    if kind == "enrollment_group":
        return Target(kind, _int(data[kind], kind, 0x01, 0xFF))
    return Target(kind, True)


def _mac(value: Any, path: str) -> str:
    """An EUI-64 as zigpy prints it (``00:0d:6f:00:0a:00:00:01``), whatever the spelling."""
    try:
        digits = canonical_eui64(_text(value, path, 32)).lower()
    except InvalidEui64 as exc:
        raise CommandError(path, str(exc)) from None
    return ":".join(digits[i : i + 2] for i in range(0, 16, 2))


def _allow(data: dict[str, Any], *names: str) -> None:
    common = ("correlation_id", "device", "group", "zigbee_group", "enrollment_group", "broadcast")
    for key in data:
        if key not in names and key not in common:
            raise CommandError(_shown_key(key), "unknown field")


def _display(cid: str, data: dict[str, Any]) -> Command:
    _allow(data, "message")
    return DisplayMessage(
        correlation_id=cid,
        target=_target(data),
        message=_build(Message, data.get("message"), "message"),
    )


def _cancel_message(cid: str, data: dict[str, Any]) -> Command:
    _allow(data, "message_id")
    return CancelMessage(
        correlation_id=cid,
        target=_target(data),
        message_id=_int(data.get("message_id"), "message_id", 0, (1 << 32) - 1),
    )


def _price(cid: str, data: dict[str, Any]) -> Command:
    _allow(data, "price", *PRICE_VALUES)
    given = [key for key in ("price", *PRICE_VALUES) if key in data]
    if len(given) != 1:
        raise CommandError("price", f"give exactly one of price, {', '.join(PRICE_VALUES)}")
    key = given[0]
    if key == "credit_payment" and isinstance(data[key], dict):  # named, not the class's words
        ref = data[key].get("credit_payment_ref", "")
        _text(ref, f"{key}.credit_payment_ref", MAX_CREDIT_PAYMENT_REF)
    price = _build(PRICE_VALUES.get(key, PriceEvent), data[key], key)
    return PublishPrice(correlation_id=cid, target=_target(data), price=price)


#: The most entries of a ``publish_tariff`` command's price matrix: 16 tiers (0-15) of 16
#: blocks, or 48 TOU tiers (SE D.4.2.4.6).
_MAX_MATRIX = 256


def _tiers(value: Any, path: str, high: int) -> dict[int, Any]:
    """An object keyed by tier numbers (``"0"``...``str(high)``) as a dict by int."""
    found: dict[int, Any] = {}
    for key, item in _object(value, path).items():
        if not (key.isascii() and key.isdigit() and len(key) <= 3 and int(key) <= high):
            raise CommandError(f"{path}.{_shown_key(key)}", f"expected a tier number 0-{high}")
        found[int(key)] = item
    return found


def _value_header(data: dict[str, Any], path: str, tariff: TariffInformation) -> dict[str, int]:
    """A tariff value's header: the tariff's provider and tariff id, its own issuer event
    id and start time (the tariff's unless given)."""
    return {
        "provider_id": tariff.provider_id,
        "issuer_tariff_id": tariff.issuer_tariff_id,
        "issuer_event_id": _int(
            data.get("issuer_event_id", tariff.issuer_event_id),
            f"{path}.issuer_event_id",
            0,
            (1 << 32) - 1,
        ),
    }


def _checked(build: Any, path: str) -> Any:
    try:
        return build()
    except ValueError as exc:
        raise CommandError(path, str(exc)) from None


def _matrix(value: Any, tariff: TariffInformation) -> PriceMatrix:
    path = "price_matrix"
    data = _object(value, path)
    for key in data:
        if key not in ("issuer_event_id", "start_time", "tou", "prices"):
            raise CommandError(f"{path}.{_shown_key(key)}", "unknown field")
    tou = data.get("tou", False)
    if not isinstance(tou, bool):
        raise CommandError(f"{path}.tou", "expected true or false")
    entries = data.get("prices")
    if not isinstance(entries, list) or not 0 < len(entries) <= _MAX_MATRIX:
        raise CommandError(f"{path}.prices", f"expected a list of 1-{_MAX_MATRIX} prices")
    prices: dict[tuple[int, int], int] = {}
    for index, item in enumerate(entries):
        where = f"{path}.prices[{index}]"
        entry = _object(item, where)
        for key in entry:
            if key not in ("tier", "block", "price"):
                raise CommandError(f"{where}.{_shown_key(key)}", "unknown field")
        tier = _int(entry.get("tier"), f"{where}.tier", 0, 48)
        block = _int(entry.get("block", 1), f"{where}.block", 1, 16)
        if (tier, block) in prices:
            raise CommandError(where, f"tier {tier} block {block} is priced twice")
        prices[tier, block] = _int(entry.get("price"), f"{where}.price", 0, 0xFFFFFFFF)
    start = _int(data.get("start_time", tariff.start_time), f"{path}.start_time", 0, (1 << 32) - 1)
    header = _value_header(data, path, tariff)
    return _checked(  # type: ignore[no-any-return]
        lambda: PriceMatrix(**header, start_time=start, prices=prices, tou=tou), f"{path}.prices"
    )


def _thresholds(value: Any, tariff: TariffInformation) -> BlockThresholds:
    path = "block_thresholds"
    data = _object(value, path)
    for key in data:
        if key not in ("issuer_event_id", "start_time", "all_tiers", "thresholds"):
            raise CommandError(f"{path}.{_shown_key(key)}", "unknown field")
    all_tiers = data.get("all_tiers", True)
    if not isinstance(all_tiers, bool):
        raise CommandError(f"{path}.all_tiers", "expected true or false")
    thresholds: dict[int, tuple[int, ...]] = {}
    for tier, values in _tiers(data.get("thresholds"), f"{path}.thresholds", 15).items():
        where = f"{path}.thresholds.{tier}"
        if not isinstance(values, list) or len(values) > 15:
            raise CommandError(where, "expected a list of up to 15 thresholds")
        thresholds[tier] = tuple(
            _int(v, f"{where}[{i}]", 0, (1 << 48) - 1) for i, v in enumerate(values)
        )
    start = _int(data.get("start_time", tariff.start_time), f"{path}.start_time", 0, (1 << 32) - 1)
    header = _value_header(data, path, tariff)
    return _checked(  # type: ignore[no-any-return]
        lambda: BlockThresholds(
            **header, start_time=start, thresholds=thresholds, all_tiers=all_tiers
        ),
        f"{path}.thresholds",
    )


def _labels(value: Any, tariff: TariffInformation) -> TierLabels:
    path = "tier_labels"
    data = _object(value, path)
    for key in data:
        if key not in ("issuer_event_id", "labels"):
            raise CommandError(f"{path}.{_shown_key(key)}", "unknown field")
    labels = {
        tier: _field_value(
            "bytes", _text(label, f"{path}.labels.{tier}", 12), f"{path}.labels.{tier}"
        )
        for tier, label in _tiers(data.get("labels"), f"{path}.labels", 48).items()
    }  # ASCII, as a rate label and a tariff label
    if 0 in labels:
        raise CommandError(f"{path}.labels.0", "tiers are labelled from 1")
    header = _value_header(data, path, tariff)
    return _checked(  # type: ignore[no-any-return]
        lambda: TierLabels(**header, labels=labels), f"{path}.labels"
    )


def _tariff(cid: str, data: dict[str, Any]) -> Command:
    _allow(data, "tariff", *TARIFF_VALUE_KEYS.values())
    label = _object(data.get("tariff"), "tariff").get("tariff_label", "")
    _text(label, "tariff.tariff_label", MAX_TARIFF_LABEL)  # named, not the class's words
    tariff: TariffInformation = _build(TariffInformation, data.get("tariff"), "tariff")
    values: list[TariffValue] = []
    for key, build in (
        ("price_matrix", _matrix),
        ("block_thresholds", _thresholds),
        ("tier_labels", _labels),
    ):
        if data.get(key) is not None:
            values.append(build(data[key], tariff))
    return PublishTariff(
        correlation_id=cid, target=_target(data), tariff=tariff, values=tuple(values)
    )


def _cancel_tariff(cid: str, data: dict[str, Any]) -> Command:
    _allow(data, "provider_id", "issuer_tariff_id", "tariff_type")
    cancellation = TariffCancellation(
        provider_id=_int(data.get("provider_id"), "provider_id", 0, (1 << 32) - 1),
        issuer_tariff_id=_int(data.get("issuer_tariff_id"), "issuer_tariff_id", 0, (1 << 32) - 1),
        tariff_type=_int(data.get("tariff_type", 0), "tariff_type", 0, 0xFF),
    )
    return CancelTariff(correlation_id=cid, target=_target(data), cancellation=cancellation)


#: The field of a LoadControlEvent each of its problems() names.
_PROBLEM_FIELDS: Final = (
    ("start time", "start_time"),
    ("duration", "duration_in_minutes"),
    ("criticality", "criticality_level"),
    ("duty cycle", "duty_cycle"),
    ("average load", "average_load_adjustment_percentage"),
    ("cooling_temperature_set_point", "cooling_temperature_set_point"),
    ("heating_temperature_set_point", "heating_temperature_set_point"),
)


def _load_control(cid: str, data: dict[str, Any]) -> Command:
    _allow(data, "event")
    event: LoadControlEvent = _build(LoadControlEvent, data.get("event"), "event")
    for problem in event.problems():
        field = next((f for words, f in _PROBLEM_FIELDS if problem.startswith(words)), "")
        raise CommandError(f"event.{field}".rstrip("."), problem)
    return LoadControl(correlation_id=cid, target=_target(data), event=event)


def _cancel_load_control(cid: str, data: dict[str, Any]) -> Command:
    _allow(data, "issuer_event_id", "cancel_control")
    return CancelLoadControl(
        correlation_id=cid,
        target=_target(data),
        issuer_event_id=_int(data.get("issuer_event_id"), "issuer_event_id", 0, (1 << 32) - 1),
        cancel_control=_int(data.get("cancel_control", 0), "cancel_control", 0, 0xFF),
    )


def install_code_problem(exc: InvalidInstallCode) -> str:
    """What is wrong with an install code, as the library says it (its length, a character
    that is not hex, a CRC mismatch and its likely cause): its messages never quote a digit
    of the code, which matters here as answers travel through the broker."""
    return str(exc)


def _provision(cid: str, data: dict[str, Any]) -> Command:
    for key in data:
        if key not in ("correlation_id", "mac", "install_code", "label", "groups"):
            raise CommandError(_shown_key(key), "unknown field")
    try:
        code = InstallCode.parse(_text(data.get("install_code"), "install_code", 64))
    except InvalidInstallCode as exc:
        raise CommandError("install_code", install_code_problem(exc)) from None
    groups = data.get("groups", [])
    if not isinstance(groups, list) or len(groups) > 16:
        raise CommandError("groups", "expected a list of up to 16 group names")
    names = {"label": _text(data.get("label", ""), "label", MAX_HAN_NAME)}
    names |= {f"groups[{i}]": _text(g, f"groups[{i}]", MAX_HAN_NAME) for i, g in enumerate(groups)}
    for field, name in names.items():  # the registry's rule, refused here before the ESI acts
        problem = han_name_problem(name, group=field != "label")
        if problem is not None:
            raise CommandError(field, problem)
    label = names.pop("label")
    return Provision(
        correlation_id=cid,
        mac=_mac(data.get("mac"), "mac"),
        install_code=code,
        label=label,
        groups=tuple(names.values()),
    )


def _deprovision(cid: str, data: dict[str, Any]) -> Command:
    for key in data:
        if key not in ("correlation_id", "mac"):
            raise CommandError(_shown_key(key), "unknown field")
    return Deprovision(correlation_id=cid, mac=_mac(data.get("mac"), "mac"))


_UINT32 = (0, 0xFFFFFFFF)
#: ``change_supply``'s ``status`` words (:class:`~zse.se.types.SupplyStatus`, lowercased).
_SUPPLY_WORDS: Final = {status.name.lower(): int(status) for status in SupplyStatus}


def _no_target(data: dict[str, Any], *names: str) -> None:
    """Refuse a field of a command without a target other than ``names``."""
    for key in data:
        if key not in ("correlation_id", *names):
            raise CommandError(_shown_key(key), "unknown field")


def _required_int(data: dict[str, Any], name: str, low: int, high: int) -> int:
    if name not in data:
        raise CommandError(name, "missing")
    return _int(data[name], name, low, high)


def _change_supply(cid: str, data: dict[str, Any]) -> Command:
    _no_target(data, "status", "at", "provider_id", "issuer_event_id")
    at = _int(data.get("at", 0), "at", *_UINT32)
    words = ", ".join(f'"{word}"' for word in _SUPPLY_WORDS)
    status = data.get("status")
    if at == CANCEL and status is None:
        status = "on"  # a cancel's status is not read (as on the wire)
    if not isinstance(status, str) or status not in _SUPPLY_WORDS:
        why = "missing" if "status" not in data else f"expected one of {words}"
        raise CommandError("status", why)
    return ChangeSupply(
        correlation_id=cid,
        status=_SUPPLY_WORDS[status],
        at=at,
        provider_id=_required_int(data, "provider_id", *_UINT32),
        issuer_event_id=_required_int(data, "issuer_event_id", *_UINT32),
    )


def _take_snapshot(cid: str, data: dict[str, Any]) -> Command:
    _no_target(data, "cause")
    return TakeSnapshot(correlation_id=cid, cause=_text(data.get("cause", "General"), "cause", 40))


def supply_payload(control: Any, outcome: str) -> dict[str, Any]:
    """``change_supply``'s result: what became of the change (``applied``, ``waiting``,
    ``not kept``, ``cancelled``, ``nothing to cancel``), then the meter's supply as it now
    is (``control``, a :class:`zse.metering.supply.SupplyControl`): Supply Status, the
    utility's state, the prepay credit's interruption and the changes waiting."""
    word = {int(status): status.name.lower() for status in SupplyStatus}
    return {
        "outcome": outcome,
        "supply_status": word[control.status],
        "utility": word[control.utility],
        "credit_interrupted": control.credit_interrupted,
        "waiting": [
            {
                "status": word[change.status],
                "at": change.when,
                "provider_id": change.provider_id,
                "issuer_event_id": change.issuer_event_id,
            }
            for change in control.pending
        ],
    }


#: The commands, by the last part of their request topic.
COMMANDS: Final = {
    "display_message": _display,
    "cancel_message": _cancel_message,
    "publish_price": _price,
    "publish_tariff": _tariff,
    "cancel_tariff": _cancel_tariff,
    "load_control": _load_control,
    "cancel_load_control": _cancel_load_control,
    "provision": _provision,
    "deprovision": _deprovision,
    "change_supply": _change_supply,
    "take_snapshot": _take_snapshot,
}


def _usable_id(value: Any) -> TypeGuard[str]:
    """A correlation id: a string of 1-:data:`_MAX_ID_LENGTH` characters, none of them a
    control character (as a ``response_topic``: an id is logged and quoted)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= _MAX_ID_LENGTH
        and not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value)
    )


def correlation_id_of(payload: bytes) -> str | None:
    """The command's correlation id if it has a usable one (for an error response)."""
    value = _loose(payload).get("correlation_id")
    return value if _usable_id(value) else None


def response_topic_of(payload: bytes) -> str | None:
    """The command's ``response_topic`` if it has a usable one (for an error response)."""
    try:
        return _response_topic(_loose(payload).get("response_topic"))
    except CommandError:
        return None


def _loose(payload: bytes) -> dict[str, Any]:
    """A refused command's payload as an object, or empty (nothing usable in it)."""
    if len(payload) > MAX_BATCH_BYTES:  # the longest command read (publish_tariff's)
        return {}
    try:
        data = jsontext.loads(payload)
    except InvalidJson:
        return {}
    return data if isinstance(data, dict) else {}


def _response_topic(value: Any) -> str | None:
    """A command's ``response_topic``: a topic name to publish on (MQTT 3.1.1 section 4.7: no
    wildcard, no NUL), at most :data:`MAX_RESPONSE_TOPIC` bytes, not a ``$`` topic (the
    broker's own, section 4.7.2) and not any bridge's request topic (a response is not a
    command); None when not given."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise CommandError("response_topic", "expected a topic name")
    if _utf8_size(value, "response_topic") > MAX_RESPONSE_TOPIC:
        raise CommandError("response_topic", f"longer than {MAX_RESPONSE_TOPIC} bytes")
    if any(c in "+#" or ord(c) < 0x20 for c in value):
        raise CommandError("response_topic", "wildcards and control characters are not allowed")
    if value.startswith("$") or "/bridge/request/" in f"/{value}/":
        raise CommandError("response_topic", "not a $ topic nor a bridge's request topic")
    return value


def parse_command(name: str, payload: bytes) -> Command:
    """The command ``name`` (the request topic's last part) from its JSON payload; anything
    wrong raises :class:`CommandError` naming the field."""
    return _parse(COMMANDS, name, payload)  # type: ignore[no-any-return]


def _identified(payload: bytes, limit: int) -> tuple[dict[str, Any], str]:
    """A command's (or a batch's) JSON object, at most ``limit`` bytes, and its
    ``correlation_id``."""
    if len(payload) > limit:
        raise CommandError("payload", f"longer than {limit} bytes")
    try:
        data = jsontext.loads(payload)
    except InvalidJson as exc:
        raise CommandError("payload", f"not JSON: {exc}") from None
    data = _object(data, "payload")
    cid = data.get("correlation_id")
    if not _usable_id(cid):
        raise CommandError(
            "correlation_id",
            f"expected a string of 1-{_MAX_ID_LENGTH} characters, no control character",
        )
    return data, cid


#: The commands whose payload may be longer than :data:`MAX_COMMAND_BYTES`: a tariff with
#: a full matrix, 16 tiers of thresholds and 48 labels is about 21 KB of JSON (ADR 0030).
_LONG_COMMANDS: Final = {"publish_tariff": MAX_BATCH_BYTES}


def _parse(commands: Mapping[str, Any], name: str, payload: bytes) -> Any:
    build = commands.get(name)
    if build is None:
        raise CommandError("command", f"unknown command {name[:40]!r}")
    data, cid = _identified(payload, _LONG_COMMANDS.get(name, MAX_COMMAND_BYTES))
    if "response_topic" not in data:
        return build(cid, data)
    topic = _response_topic(data.pop("response_topic"))
    return dataclasses.replace(build(cid, data), response_topic=topic)


@dataclass(frozen=True)
class BatchEntry:
    """One command of a batch: its name and its payload as if it had come alone on its
    request topic, or why it cannot be (``refused``: the batch's response says so in its
    place)."""

    name: str
    payload: bytes = b""
    refused: CommandError | None = None
    correlation_id: str | None = None

    def __repr__(self) -> str:
        # the payload by its size only: a provision's holds the install code
        return (
            f"BatchEntry(name={self.name!r}, payload=<{len(self.payload)} octets>, "
            f"refused={self.refused!r}, correlation_id={self.correlation_id!r})"
        )


@dataclass(frozen=True, kw_only=True)
class Batch:
    """Several commands in one publication (``<base>/bridge/request/batch``), carried out in
    order, each exactly as if it had come alone (at most once by its own correlation id),
    answered together: one response, ``responses`` in the same order. The batch's own
    ``correlation_id`` names that response only (a batch is not recorded: its commands
    are)."""

    correlation_id: str
    response_topic: str | None
    entries: tuple[BatchEntry, ...]


def parse_batch(payload: bytes) -> Batch:
    """A batch from its JSON payload: ``{"correlation_id", "response_topic"?, "commands":
    [{"command": <name>, <that command's fields>...}, ...]}`` (1 to :data:`MAX_BATCH`
    commands, none of them a batch nor naming its own ``response_topic``). A wrong batch
    raises :class:`CommandError`; a wrong command in it is refused in its entry."""
    data, cid = _identified(payload, MAX_BATCH_BYTES)
    for key in data:
        if key not in ("correlation_id", "response_topic", "commands"):
            raise CommandError(_shown_key(key), "unknown field")
    commands = data.get("commands")
    if not isinstance(commands, list) or not 0 < len(commands) <= MAX_BATCH:
        raise CommandError("commands", f"expected a list of 1-{MAX_BATCH} commands")
    topic = _response_topic(data.get("response_topic"))
    return Batch(
        correlation_id=cid,
        response_topic=topic,
        entries=tuple(_entry(index, command) for index, command in enumerate(commands)),
    )


def _entry(index: int, command: Any) -> BatchEntry:
    """Command ``index`` of a batch (see :func:`parse_batch`)."""
    where = f"commands[{index}]"
    if not isinstance(command, dict):
        return BatchEntry("", refused=CommandError(where, "expected an object"))
    fields = dict(command)
    name = fields.pop("command", None)
    cid = fields.get("correlation_id")
    usable = cid if _usable_id(cid) else None
    if not isinstance(name, str) or not name or name == BATCH:
        why = f"{where}.command", "expected the name of a command other than batch"
        return BatchEntry("", refused=CommandError(*why), correlation_id=usable)
    if "response_topic" in fields:
        why = f"{where}.response_topic", "a batch's commands are answered in its response"
        return BatchEntry(name, refused=CommandError(*why), correlation_id=usable)
    return BatchEntry(name, json.dumps(fields).encode(), correlation_id=usable)


# -- at most once, and the outbox ----------------------------------------------------------------


class Executed:
    """The correlation ids of the commands carried out, with each one's response: a command
    whose id is here is answered again, not carried out again. Keeps the newest ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._ids: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._counter = 0

    def restore(self, records: Mapping[str, Any]) -> list[str]:
        """Load stored records (id -> {"n", "response"}); returns the ids beyond the limit
        (to delete) and the ids of malformed records (also to delete)."""
        good = []
        bad = []
        for key, value in records.items():
            if isinstance(value, dict) and isinstance(value.get("n"), int):
                good.append((value["n"], key, value.get("response")))
            else:
                bad.append(key)
        for n, key, response in sorted(good):
            self._ids[key] = response if isinstance(response, dict) else {}
            self._counter = max(self._counter, n)
        return bad + self._trim()

    def _trim(self) -> list[str]:
        evicted = []
        while len(self._ids) > self.limit:
            evicted.append(self._ids.popitem(last=False)[0])
        return evicted

    def get(self, correlation_id: str) -> dict[str, Any] | None:
        """The response given to ``correlation_id``, or None if it was never carried out."""
        return self._ids.get(correlation_id)

    def record(self, correlation_id: str, response: dict[str, Any]) -> tuple[Any, list[str]]:
        """What noting ``correlation_id`` (before it is carried out, with a provisional
        response; again after, with the real one) stores: the record and the ids it evicts.
        Nothing changes here until :meth:`note` says the record was stored: a write that
        fails leaves the ids as the store has them."""
        new = correlation_id not in self._ids
        excess = len(self._ids) + new - self.limit
        evicted = list(itertools.islice(self._ids, max(excess, 0)))  # limit >= 1
        return {"n": self._counter + new, "response": response}, evicted

    def note(self, correlation_id: str, record: Any) -> None:
        """``record`` (of :meth:`record`) of ``correlation_id`` is stored: note it, the ids it
        evicted gone."""
        self._ids[correlation_id] = record["response"]
        self._counter = max(self._counter, record["n"])
        self._trim()


class Outbox:
    """What is still to publish, oldest first, each with its journal sequence number. At most
    ``limit`` are kept: when a new one would exceed it, the oldest is dropped (and counted)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._queue: deque[tuple[int, Publication]] = deque()
        self.dropped = 0
        #: Entries taken out unpublished: no client may publish them (:func:`unpublishable`).
        self.refused = 0
        self._refusing: set[int] = set()

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, seq: int, publication: Publication) -> list[int]:
        """Queue ``publication``; returns the sequence numbers dropped to make room."""
        self._queue.append((seq, publication))
        dropped = []
        while len(self._queue) > self.limit:
            dropped.append(self._queue.popleft()[0])
        self.dropped += len(dropped)
        return dropped

    def head(self) -> tuple[int, Publication] | None:
        """The oldest entry still to publish."""
        return self._queue[0] if self._queue else None

    def first(self, count: int) -> list[tuple[int, Publication]]:
        """The ``count`` oldest entries still to publish, oldest first."""
        return [self._queue[i] for i in range(min(count, len(self._queue)))]

    def done(self, seq: int) -> None:
        """``seq`` was published (acknowledged by the broker at QoS 1 and 2), or taken out
        (:meth:`refuse`); an entry the bound dropped meanwhile is already gone."""
        self._refusing.discard(seq)
        if self._queue and self._queue[0][0] == seq:
            self._queue.popleft()

    def refuse(self, seqs: list[int]) -> bool:
        """The entry of journal sequence numbers ``seqs`` (one publication) is taken out
        unpublished: counted in :attr:`refused` once, though a connection lost before it is
        :meth:`done` has it refused again at the next; False when it was counted already."""
        if self._refusing.issuperset(seqs):
            return False
        self._refusing.update(seqs)
        self.refused += 1
        return True

    def report(self) -> dict[str, int]:
        """What ``<base>/bridge/outbox`` says: ``{"dropped": N, "limit": L}``, and
        ``"refused": R`` once entries no client may publish were taken out."""
        said = {"dropped": self.dropped, "limit": self.limit}
        if self.refused:
            said["refused"] = self.refused
        return said


# -- the HAN device's side ------------------------------------------------------------------------

#: The device topic of each HAN device event, by class name (zse.roles.han.HanEvent).
HAN_EVENT_KINDS: Final = {
    "Joined": "network",
    "Left": "network",
    "Resynced": "network",
    "KeyEstablished": "security",
    "Note": "note",
    "PriceReceived": "price",
    "PriceValueReceived": "price",
    "TariffReceived": "price",
    "TariffCancelled": "price",
    "MessageScheduled": "message",
    "MessageDisplayed": "message",
    "MessageReplaced": "message",
    "MessageExpired": "message",
    "MessageCancelled": "message",
    "ConfirmationSent": "message",
    "ApplyLoadControl": "drlc",
    "StopLoadControl": "drlc",
    "ReportSent": "drlc",
    "ThermostatChanged": "load",
    "LoadChanged": "load",
    # SE 1.2 (ADR 0034): what a display learns of the Calendar, Prepayment and Device
    # Management clusters, read only
    "CalendarReceived": "calendar",
    "CalendarCancelled": "calendar",
    "CalendarChanged": "calendar",
    "PrepayStatus": "prepayment",
    "TopUpAnswered": "prepayment",
    "TopUpAccepted": "prepayment",
    "TopUpRefused": "prepayment",
    "LowCredit": "prepayment",
    "CreditExhausted": "prepayment",
    "EmergencyCreditSelected": "prepayment",
    "PaymentModeAnswered": "prepayment",
    "DebtLogReceived": "prepayment",
    "TenancyChanged": "device_management",
    "TenancyTakesEffect": "device_management",
    "TenancyChangeApplied": "device_management",
    "SupplierChanged": "device_management",
    "SupplierTakesEffect": "device_management",
    "SiteIdUpdated": "device_management",
    "CinUpdated": "device_management",
    "EventConfigurationChanged": "device_management",
    # SE 1.2 supply control: the meter's Supply Status as a display heard it (reported or read)
    "SupplyStatusChanged": "supply",
}

#: The HAN device events the bridge does not publish as events, and why: the readings
#: (``MeterReading`` on ``metering``; ``Polling``, ``AttributeUnsupported`` change what is
#: announced), a Device Management password (a secret, SE 1.2 D.10.2.4.3), the top-up log
#: (the codes) and the prepay snapshots (octets of payload types zse does not decode), the
#: Events cluster's reads (SE 1.2 D.11: not on MQTT yet, ADR 0034), and the display's "today"
#: (``TodayConsumption``, SE 1.2 D.3.2.2.5: shown by ``zse han watch``, not on MQTT yet).
HAN_UNPUBLISHED: Final = frozenset(
    {
        "MeterReading",
        "Polling",
        "AttributeUnsupported",
        "PasswordReceived",
        "TopUpLogReceived",
        "SnapshotReceived",
        "EventPublished",
        "EventLogRead",
        "EventLogCleared",
        "TodayConsumption",
    }
)


def _per_unit(price: Any) -> float:
    return float(price.price / 10**price.price_trailing_digit)


def han_event_publication(topics: Topics, device: str, event: Any, now: int) -> Publication | None:
    """What a HAN device sees or does (:data:`zse.roles.han.HanEvent`) on its own topic
    ``<base>/<device>/<kind>`` (:data:`HAN_EVENT_KINDS`): ``event`` names the class, ``time``
    is ``now``, ``device`` the device; a Report Event Status sent has its ``status`` by name,
    a price its ``price_per_unit``; an Update CIN has no CIN (personal data), a calendar
    received its header only, a prepay status its ``credit_status`` by bit names. None for
    an event the bridge does not publish (:data:`HAN_UNPUBLISHED`: the readings go out as
    :func:`shown_publication`)."""
    name = type(event).__name__
    kind = HAN_EVENT_KINDS.get(name)
    if kind is None or not dataclasses.is_dataclass(event):
        return None
    payload = {**_fields(event, kind), "event": name, "time": now, "device": str(device)}
    if name == "ReportSent":
        payload["status"] = _status(getattr(event, "report").event_status)  # noqa: B009
    elif name == "PriceReceived":
        payload["price_per_unit"] = _per_unit(getattr(event, "price"))  # noqa: B009
    elif name == "CinUpdated":  # personal data: that it changed, never the number (ADR 0034)
        payload["customer"].pop("cin", None)
    elif name == "CalendarReceived":  # the calendar's header, not its profiles
        calendar = getattr(event, "calendar")  # noqa: B009
        payload["calendar"] = _jsonable(calendar.header())
    elif name == "PrepayStatus":
        payload["credit_status"] = credit_status_names(payload["credit_status"])
    elif name == "TariffReceived":
        value = getattr(event, "value")  # noqa: B009
        if isinstance(value, TariffInformation):
            payload["value"] = tariff_information_payload(value)
            payload["value_kind"] = "tariff"
        else:
            payload["value"] = tariff_value_payload(value)
            payload["value_kind"] = TARIFF_VALUE_KEYS[type(value)]
    return Publication(topics.device(device, kind), payload)


def shown_publication(
    topics: Topics,
    device: str,
    *,
    summation: Any = None,
    demand: Any = None,
    now: int,
    retain: bool = True,
) -> Publication:
    """The meter's readings as the device shows them (the last
    :class:`zse.metering.protocol.MeterReading` of summation and of demand, SE D.3.2.2.1,
    formatted by the meter's Formatting set, D.3.2.2.4) on ``<base>/<device>/metering``,
    with the keys of :func:`reading_publication`."""
    payload: dict[str, Any] = {"time": now}
    for name, reading in (("summation_delivered", summation), ("demand", demand)):
        if reading is None:
            continue
        shown = reading.reading
        payload[name] = float(shown.value)
        payload[f"{name}_raw"] = reading.raw
        payload[f"{name}_text"] = shown.text
        payload[f"{name}_unit"] = shown.unit
    return Publication(topics.device(device, "metering"), payload, retain)


#: What each kind of device shows in its state (``<base>/<device>/state``), all keys always
#: present (None until known), so that a Home Assistant template never misses one.
_VIEW_KEYS: Final = {
    IN_HOME_DISPLAY: (
        "price_per_unit",
        "price_tier",
        "rate_label",
        "currency",
        "message_id",
        "message",
        "load_control_event",
        # SE 1.2 (ADR 0030)
        "tariff_label",
        "tier_label",
        "tier_labels",
        "block_thresholds",
        "carbon_intensity",
        "carbon_intensity_unit",
        "billing_period_start",
        "billing_period_duration",
        "billing_period_duration_unit",
        "consolidated_bill",
        "bill_currency",
        "cpp_event",
        "cpp_auth",
        "cpp_price_tier",
        "cpp_start",
        "cpp_duration_in_minutes",
        # SE 1.2 Prepayment, Calendar, Device Management (ADR 0034)
        "credit_remaining",
        "emergency_credit_remaining",
        "credit_status",
        "low_credit_warning_level",
        "calendar_tier",
        "calendar_tier_label",
        "calendar_next_tier",
        "calendar_tier_changes_at",
        "supplier",
        "supplier_id",
        "site_id",
        # SE 1.2 supply control: the meter's Supply Status as the display heard it
        "supply_status",
    ),
    PROGRAMMABLE_THERMOSTAT: (
        "cooling_set_point",
        "heating_set_point",
        "load_control_event",
    ),
    LOAD_CONTROL_DEVICE: ("on", "duty_cycle", "load_control_event"),
}


#: A billing period's duration type, bits 0-3 (SE D.4.2.4.10, as the block period's).
_DURATION_UNITS: Final = {0: "minutes", 1: "days", 2: "weeks", 3: "months"}
#: Home Assistant's unit of each CO2 Value Unit (SE D.4.2.4.8): 1, kg per kWh, as zse's
#: Price cluster reads it (the spec text was out of reach); HA has no class for it.
CO2_UNITS: Final = {1: "kg/kWh"}
#: CPP Auth by name (SE D.4.2.4.12.1.7): pending, accepted, rejected, forced.
CPP_AUTH: Final = {int(auth): str(auth.name).lower() for auth in CppAuth}


def credit_status_names(value: int | None) -> list[str] | None:
    """Credit Status (SE 1.2 D.7.2.2.1.4, table D-131) as the names of its bits set, lower
    case (``credit_ok``, ``low_credit``...); None when not read."""
    if value is None:
        return None
    return [str(bit.name).lower() for bit in CreditStatus if value & bit]


def credit_digits(currency: int | None) -> int:
    """The digits after the point of a prepay amount: the ISO 4217 minor unit of the price's
    currency (:data:`ISO_4217`), else 2 (pence or cents: zse's account default, as a display
    does not read the meter's own, which SE 1.2 D.7 gives no attribute for)."""
    known = None if currency is None else ISO_4217.get(currency)
    return 2 if known is None or known[1] is None else known[1]


def credit_amount(raw: int | None, currency: int | None) -> float | None:
    """A prepay amount (Credit Remaining, Emergency Credit Remaining..., SE 1.2 D.7.2.2.1)
    in the price's ``currency``: ``raw`` over 10 to the :func:`credit_digits`; None for
    None."""
    return None if raw is None else raw / 10 ** credit_digits(currency)


def _iso(time: int) -> str:
    """ZigBee UTCTime as ISO 8601 with its offset, as Home Assistant's ``timestamp``
    sensors take it."""
    return from_zigbee(time).isoformat()


class DeviceView:
    """A HAN device's state as its events leave it: the price and message on a display's
    screen (``price_tier`` the tier in force, 16-48 joined from Price Tier 0xF and the
    Extended Price Tier, SE D.4.2.4.1.1.23), a thermostat's set points (°C), a load control
    device's output, the load control event in force; on a display also SE 1.2's tariff
    (its label, the price tier's label from the tier labels or ``Tier N``, the labels and
    block thresholds, D.4.2.4.5, 7, 9), CO2 value, billing period, last consolidated bill
    and CPP event with its answer (D.4.2.4.8, 10-12; ADR 0030), and what it reads of SE 1.2
    Prepayment (credit, D.7.2.2.1), Calendar (the delivered calendar's tier in force and
    next change, D.9; :meth:`calendar`) and Device Management (supplier, site id; never the
    CIN, D.10) (ADR 0034), and its meter's Supply Status by name (SE 1.2, as the display's
    Metering client heard it). :meth:`update` folds one event in; :attr:`payload` is what goes
    out (retained) on ``<base>/<device>/state``; :attr:`tariff` the tariff last received,
    whole (:func:`tariff_payload`), ``{}`` for none or once cancelled
    (``<base>/<device>/price/tariff``)."""

    def __init__(self, device_type: int) -> None:
        keys = _VIEW_KEYS.get(device_type, ("load_control_event",))
        self.state: dict[str, Any] = dict.fromkeys(keys)
        self._tariff: TariffInformation | None = None
        self._values: dict[type[Any], Any] = {}
        #: The prepay status last read (raw account units) and the calendar's reading.
        self._prepay: Any = None
        self._reading: Any = None

    @property
    def payload(self) -> dict[str, Any]:
        return dict(self.state)

    @property
    def tariff(self) -> dict[str, Any]:
        if self._tariff is None:
            return {}
        return tariff_payload(self._tariff, self._values.values())

    def _tariff_event(self, event: Any) -> None:
        """A tariff's information (a new tariff: its values forgotten unless it is the same
        tariff), one of its values (kept if it is the tariff's), or its cancellation."""
        if type(event).__name__ == "TariffCancelled":
            gone = event.cancellation
            held = self._tariff
            if held is not None and (held.provider_id, held.issuer_tariff_id) == (
                gone.provider_id,
                gone.issuer_tariff_id,
            ):
                self._tariff, self._values = None, {}
            return
        value = event.value
        if isinstance(value, TariffInformation):
            held = self._tariff
            same = held is not None and (held.provider_id, held.issuer_tariff_id) == (
                value.provider_id,
                value.issuer_tariff_id,
            )
            self._tariff, self._values = value, self._values if same else {}
        elif self._tariff is not None and (value.provider_id, value.issuer_tariff_id) == (
            self._tariff.provider_id,
            self._tariff.issuer_tariff_id,
        ):
            self._values[type(value)] = value

    def hold_tariff(self, information: TariffInformation, values: Iterable[Any] = ()) -> bool:
        """The tariff the device holds (its information and whole values), as if it had
        just been received: a bridge that starts shows what the device already holds
        (:meth:`zse.roles.han.HanDevice.tariff_held`). True when the state changed."""
        before = dict(self.state)
        self._tariff = information
        self._values = {
            type(value): value
            for value in values
            if (value.provider_id, value.issuer_tariff_id)
            == (information.provider_id, information.issuer_tariff_id)
        }
        found = {**self._tariff_state(), **self._derived("PriceReceived")}
        self.state.update({k: v for k, v in found.items() if k in self.state})
        return self.state != before

    def _tariff_state(self) -> dict[str, Any]:
        """The tariff's keys of a display's state: label, labels, thresholds, tier label."""
        tariff = self.tariff
        labels = (tariff.get("tier_labels") or {}).get("labels")
        thresholds = (tariff.get("block_thresholds") or {}).get("thresholds")
        tier = self.state.get("price_tier")
        tier_label = None
        if tier:  # tier 0: no tier (D.4.2.4.1.1.8)
            tier_label = (labels or {}).get(str(tier)) or f"Tier {tier}"
        return {
            "tariff_label": tariff.get("tariff_label"),
            "tier_labels": labels,
            "block_thresholds": thresholds,
            "tier_label": tier_label,
        }

    def _prepay_state(self) -> dict[str, Any]:
        """A prepay display's keys (SE 1.2 D.7.2.2.1): the credit and emergency credit in
        the price's currency (:func:`credit_digits`), Credit Status by bit names."""
        status = self._prepay
        if status is None:
            return {}
        currency = self.state.get("currency")
        return {
            "credit_remaining": credit_amount(status.credit_remaining, currency),
            "emergency_credit_remaining": credit_amount(
                status.emergency_credit_remaining, currency
            ),
            "credit_status": credit_status_names(status.credit_status),
            "low_credit_warning_level": credit_amount(status.low_credit_warning_level, currency),
        }

    def calendar(self, reading: Any) -> bool:
        """What the delivered TOU calendar says now (a :class:`zse.calendar.core.
        CalendarReading` of calendar type 0, SE 1.2 D.9; None: no calendar); True when the
        state changed."""
        before = dict(self.state)
        self._reading = reading
        self.state.update({k: v for k, v in self._calendar_state().items() if k in self.state})
        return self.state != before

    def _calendar_state(self) -> dict[str, Any]:
        """The calendar's keys: the tier in force, its label (the tariff's tier labels, else
        ``Tier N``; null for no tier), the next tier and when it comes (ISO 8601)."""
        reading = self._reading
        tier = None if reading is None else reading.value
        changes_at = None if reading is None else reading.changes_at
        label = None
        if tier:  # tier 0: no tier (SE D.4.2.4.1.1.8)
            labels = (self.tariff.get("tier_labels") or {}).get("labels") or {}
            label = labels.get(str(tier)) or f"Tier {tier}"
        return {
            "calendar_tier": tier,
            "calendar_tier_label": label,
            "calendar_next_tier": None if reading is None else reading.next_value,
            "calendar_tier_changes_at": None if changes_at is None else _iso(changes_at),
        }

    def _cluster_event(self, name: str, event: Any, now: int | None) -> dict[str, Any]:
        """An SE 1.2 Prepayment, Calendar or Device Management event (ADR 0034): the prepay
        status and the calendar's reading kept (their keys follow), Device Management's
        keys."""
        if name == "PrepayStatus":
            self._prepay = event
        elif name == "CalendarChanged" and event.reading.calendar_type == 0:
            self._reading = event.reading
        elif name in ("SupplierChanged", "SupplierTakesEffect", "SiteIdUpdated"):
            return self._device_management(name, event, now)
        elif name == "SupplyStatusChanged":  # by name; a reserved value (0x03-0xFF): null
            return {"supply_status": SUPPLY_STATUS_NAMES.get(event.status)}
        return {}

    def _device_management(self, name: str, event: Any, now: int | None) -> dict[str, Any]:
        """A display's keys of Device Management (SE 1.2 D.10): the supplier once a change
        of supplier took effect, the site id; never the CIN (personal data, ADR 0034)."""
        if name == "SiteIdUpdated":
            return {"site_id": event.site.site_id}
        change = event.change
        if name == "SupplierChanged" and change.implementation_time > (now or 0):
            return {}  # told ahead: shown once it takes effect (SupplierTakesEffect)
        return {
            "supplier": change.provider_name or None,
            "supplier_id": change.proposed_provider_id,
        }

    def responded(self, issuer_event_id: int, accepted: bool) -> bool:
        """The user answered the CPP event ``issuer_event_id`` (CPP Event Response, SE
        D.4.2.3.14); True when the state changed."""
        before = dict(self.state)
        if "cpp_event" in self.state and self.state["cpp_event"] == issuer_event_id:
            self.state["cpp_auth"] = "accepted" if accepted else "rejected"
        return self.state != before

    def _value(self, value: Any, now: int | None) -> dict[str, Any]:
        """A display's keys of an SE 1.2 value received (PriceValueReceived)."""
        if isinstance(value, Co2Value):
            return {
                "carbon_intensity": float(value.value),
                "carbon_intensity_unit": CO2_UNITS.get(value.co2_value_unit),
            }
        if isinstance(value, ConsolidatedBill):  # the bill of a period over: its own keys
            return {
                "consolidated_bill": float(value.amount),
                "bill_currency": currency_text(value.currency),
            }
        if isinstance(value, BillingPeriod):
            start = value.billing_period_start_time or now
            return {
                "billing_period_start": None if start is None else _iso(start),
                "billing_period_duration": value.billing_period_duration,
                "billing_period_duration_unit": _DURATION_UNITS.get(
                    value.billing_period_duration_type & 0x0F
                ),
            }
        if isinstance(value, CppEvent):
            start = value.start_time or now
            return {
                "cpp_event": value.issuer_event_id,
                "cpp_auth": CPP_AUTH.get(value.cpp_auth, str(value.cpp_auth)),
                "cpp_price_tier": value.cpp_price_tier,
                "cpp_start": None if start is None else _iso(start),
                "cpp_duration_in_minutes": value.duration_in_minutes,
            }
        return {}

    def update(self, event: Any, now: int | None = None) -> bool:
        """Fold ``event`` in (``now``: when it came, ZigBee UTCTime, for a value that
        starts "now"); True when the state changed."""
        before = dict(self.state)
        name = type(event).__name__
        found: dict[str, Any] = {}
        if name in ("TariffReceived", "TariffCancelled"):
            self._tariff_event(event)
            found = self._tariff_state()
        elif name == "PriceValueReceived":
            found = self._value(event.value, now)
        elif name == "PriceReceived":
            price = event.price
            found = {
                "price_per_unit": _per_unit(price),
                "price_tier": price.effective_price_tier,  # 0-48 (SE 1.2 extended tiers)
                "rate_label": _jsonable(price.rate_label),
                "currency": price.currency,
            }
        elif name == "MessageDisplayed":
            found = {"message_id": event.message.message_id, "message": event.text or ""}
        elif name in ("MessageCancelled", "MessageExpired", "MessageReplaced"):
            if self.state.get("message_id") == event.message.message_id or getattr(
                event, "all", False
            ):
                found = {"message_id": None, "message": None}
        elif name == "ThermostatChanged":
            found = {
                "cooling_set_point": event.cooling_set_point / 100,
                "heating_set_point": event.heating_set_point / 100,
            }
        elif name == "LoadChanged":
            found = {"on": event.on, "duty_cycle": event.duty_cycle}
        elif name == "ApplyLoadControl":
            found = {"load_control_event": event.issuer_event_id}
        elif (
            name == "StopLoadControl"
            and self.state.get("load_control_event") == event.issuer_event_id
        ):
            found = {"load_control_event": None}
        else:
            found = self._cluster_event(name, event, now)
        self.state.update({k: v for k, v in found.items() if k in self.state})
        self.state.update({k: v for k, v in self._derived(name).items() if k in self.state})
        return self.state != before

    def _derived(self, name: str) -> dict[str, Any]:
        """The keys that follow others: the price tier's label, a display's credit (in the
        price's currency) and calendar tier label (from the tariff's tier labels)."""
        derived: dict[str, Any] = {}
        if name == "PriceReceived":
            derived["tier_label"] = self._tariff_state()["tier_label"]
        if "calendar_tier" in self.state:
            derived |= {**self._prepay_state(), **self._calendar_state()}
        return derived


def _sensor(
    topics: Topics, device: str, ha_device: dict[str, Any], what: str, **more: Any
) -> tuple[str, str, dict[str, Any]]:
    """One sensor's discovery: ``what`` is ``"object_id name: topic.key"``."""
    object_id, rest = what.split(" ", 1)
    name, place = rest.rsplit(": ", 1)
    topic, key = place.split(".")
    node = node_id(device)
    return (
        "sensor",
        f"{node}/{object_id}",
        {
            "name": name,
            "unique_id": f"zse_{node}_{object_id}",
            "state_topic": topics.device(device, topic),
            "value_template": f"{{{{ value_json.{key} }}}}",
            "device": ha_device,
            **more,
        },
    )


#: ISO 4217 (list one, current currency and funds codes), by numeric code: the alphabetic code
#: and the minor unit (None: not applicable, a precious metal or a special code). A price's
#: Currency (the Publish Price field, SE D.4.2.4.1.1.6, and the Price server's Currency
#: attribute, D.4.2.2.2 and D.4.2.2.3.3) is such a numeric code. Source: the ISO 4217
#: Maintenance Agency's (SIX Group) list one, published 2024-06-25 (179 codes, ZWG included),
#: with amendment 176 in force since 2025-03-31 (532 is XCG, the Caribbean guilder, in place
#: of ANG); it is not downloaded at run time.
ISO_4217: Final[Mapping[int, tuple[str, int | None]]] = {
    8: ("ALL", 2), 12: ("DZD", 2), 32: ("ARS", 2), 36: ("AUD", 2), 44: ("BSD", 2), 48: ("BHD", 3),
    50: ("BDT", 2), 51: ("AMD", 2), 52: ("BBD", 2), 60: ("BMD", 2), 64: ("BTN", 2), 68: ("BOB", 2),
    72: ("BWP", 2), 84: ("BZD", 2), 90: ("SBD", 2), 96: ("BND", 2), 104: ("MMK", 2),
    108: ("BIF", 0), 116: ("KHR", 2), 124: ("CAD", 2), 132: ("CVE", 2), 136: ("KYD", 2),
    144: ("LKR", 2), 152: ("CLP", 0), 156: ("CNY", 2), 170: ("COP", 2), 174: ("KMF", 0),
    188: ("CRC", 2), 192: ("CUP", 2), 203: ("CZK", 2), 208: ("DKK", 2), 214: ("DOP", 2),
    222: ("SVC", 2), 230: ("ETB", 2), 232: ("ERN", 2), 238: ("FKP", 2), 242: ("FJD", 2),
    262: ("DJF", 0), 270: ("GMD", 2), 292: ("GIP", 2), 320: ("GTQ", 2), 324: ("GNF", 0),
    328: ("GYD", 2), 332: ("HTG", 2), 340: ("HNL", 2), 344: ("HKD", 2), 348: ("HUF", 2),
    352: ("ISK", 0), 356: ("INR", 2), 360: ("IDR", 2), 364: ("IRR", 2), 368: ("IQD", 3),
    376: ("ILS", 2), 388: ("JMD", 2), 392: ("JPY", 0), 398: ("KZT", 2), 400: ("JOD", 3),
    404: ("KES", 2), 408: ("KPW", 2), 410: ("KRW", 0), 414: ("KWD", 3), 417: ("KGS", 2),
    418: ("LAK", 2), 422: ("LBP", 2), 426: ("LSL", 2), 430: ("LRD", 2), 434: ("LYD", 3),
    446: ("MOP", 2), 454: ("MWK", 2), 458: ("MYR", 2), 462: ("MVR", 2), 480: ("MUR", 2),
    484: ("MXN", 2), 496: ("MNT", 2), 498: ("MDL", 2), 504: ("MAD", 2), 512: ("OMR", 3),
    516: ("NAD", 2), 524: ("NPR", 2), 532: ("XCG", 2), 533: ("AWG", 2), 548: ("VUV", 0),
    554: ("NZD", 2), 558: ("NIO", 2), 566: ("NGN", 2), 578: ("NOK", 2), 586: ("PKR", 2),
    590: ("PAB", 2), 598: ("PGK", 2), 600: ("PYG", 0), 604: ("PEN", 2), 608: ("PHP", 2),
    634: ("QAR", 2), 643: ("RUB", 2), 646: ("RWF", 0), 654: ("SHP", 2), 682: ("SAR", 2),
    690: ("SCR", 2), 702: ("SGD", 2), 704: ("VND", 0), 706: ("SOS", 2), 710: ("ZAR", 2),
    728: ("SSP", 2), 748: ("SZL", 2), 752: ("SEK", 2), 756: ("CHF", 2), 760: ("SYP", 2),
    764: ("THB", 2), 776: ("TOP", 2), 780: ("TTD", 2), 784: ("AED", 2), 788: ("TND", 3),
    800: ("UGX", 0), 807: ("MKD", 2), 818: ("EGP", 2), 826: ("GBP", 2), 834: ("TZS", 2),
    840: ("USD", 2), 858: ("UYU", 2), 860: ("UZS", 2), 882: ("WST", 2), 886: ("YER", 2),
    901: ("TWD", 2), 924: ("ZWG", 2), 925: ("SLE", 2), 926: ("VED", 2), 927: ("UYW", 4),
    928: ("VES", 2), 929: ("MRU", 2), 930: ("STN", 2), 931: ("CUC", 2), 933: ("BYN", 2),
    934: ("TMT", 2), 936: ("GHS", 2), 938: ("SDG", 2), 940: ("UYI", 0), 941: ("RSD", 2),
    943: ("MZN", 2), 944: ("AZN", 2), 946: ("RON", 2), 947: ("CHE", 2), 948: ("CHW", 2),
    949: ("TRY", 2), 950: ("XAF", 0), 951: ("XCD", 2), 952: ("XOF", 0), 953: ("XPF", 0),
    955: ("XBA", None), 956: ("XBB", None), 957: ("XBC", None), 958: ("XBD", None),
    959: ("XAU", None), 960: ("XDR", None), 961: ("XAG", None), 962: ("XPT", None),
    963: ("XTS", None), 964: ("XPD", None), 965: ("XUA", None), 967: ("ZMW", 2), 968: ("SRD", 2),
    969: ("MGA", 2), 970: ("COU", 2), 971: ("AFN", 2), 972: ("TJS", 2), 973: ("AOA", 2),
    975: ("BGN", 2), 976: ("CDF", 2), 977: ("BAM", 2), 978: ("EUR", 2), 979: ("MXV", 2),
    980: ("UAH", 2), 981: ("GEL", 2), 984: ("BOV", 2), 985: ("PLN", 2), 986: ("BRL", 2),
    990: ("CLF", 4), 994: ("XSU", None), 997: ("USN", 2), 999: ("XXX", None),
}  # fmt: skip


def currency_text(currency: int) -> str:
    """A price's Currency (ISO 4217 numeric) as its alphabetic code (``GBP``), or as its
    number (``999``) when it is not one of :data:`ISO_4217`."""
    known = ISO_4217.get(currency)
    return known[0] if known is not None else f"{currency:03d}"


def price_unit(currency: int, unit_of_measure: int) -> str | None:
    """A price's unit as Home Assistant's energy dashboard takes a price entity's
    (``GBP/kWh``, ``EUR/m³``: a currency per the unit of the meter's sensor,
    https://www.home-assistant.io/docs/energy/electricity-grid/), from the price's Currency
    (ISO 4217 numeric, :func:`currency_text`: an unknown code as its number) and
    UnitOfMeasure; None when the unit has none there."""
    unit = meter_sensors(unit_of_measure)[0].get("unit_of_measurement")
    return f"{currency_text(currency)}/{unit}" if unit else None


#: The attributes of a display's tariff sensor: its tier labels and block thresholds (the
#: price matrix left out: Home Assistant does not record attributes over 16 KiB).
TARIFF_ATTRIBUTES: Final = (
    '{{ {"tier_labels": value_json.tier_labels,'
    ' "block_thresholds": value_json.block_thresholds} | tojson }}'
)


def han_discovery(
    topics: Topics,
    devices: Iterable[tuple[str, int]],
    *,
    unit_of_measure: int | None = 0,
    price_units: Mapping[str, str] | None = None,
    withheld: Collection[str] = (),
    removed: Collection[str] = (),
    meter: Any = None,
    value_units: Mapping[str, Mapping[str, str]] | None = None,
) -> list[Publication]:
    """Home Assistant MQTT discovery (retained) for HAN devices, ``(EUI-64, SE device id)``
    each: a display's view of the meter (summation and demand classed by
    :func:`meter_sensors` for the meter's ``unit_of_measure``, unclassed for None), its
    price (in ``price_units[device]`` when it has one, :func:`price_unit`) and its message;
    a thermostat's set points (°C); a load control device's duty cycle (%). Each sensor's
    device is the HAN device, :func:`han_device` (the description the ESI's bridge gives it
    when it knows its kind, so Home Assistant keeps one device, described once), through
    ``meter`` when given. The sensors named in ``withheld`` (``energy``, ``power``,
    ``price``...) are left out: not known yet, announced once they are; those named in
    ``removed`` are removed (:func:`removal`: known not to come, the ``power`` of a meter
    that refuses InstantaneousDemand; a config retained from an earlier run goes too).

    A display's SE 1.2 sensors (ADR 0030): its tariff (the label, the tier labels and block
    thresholds as attributes), the price tier's label, CO2 per unit (``carbon_intensity``
    in
    ``value_units[device]["co2"]``), the billing period's start (a timestamp), the last
    bill (monetary, in ``value_units[device]["bill"]``, its currency) and the CPP event's
    state (pending, forced, accepted, rejected). Its SE 1.2 Prepayment and Calendar sensors
    (ADR 0034): credit and emergency credit (monetary, in ``value_units[device]["credit"]``,
    the price's currency), the calendar's tier in force (its label) and when the tier next
    changes (a timestamp). Its meter's supply (SE 1.2 Supply Status): an enum sensor of
    :data:`~zse.se.types.SUPPLY_STATUS_NAMES` (On, Off, Off/Armed)."""
    configs: list[tuple[str, str, dict[str, Any]]] = []
    gone: list[tuple[str, str, dict[str, Any]]] = []
    summation, demand = meter_sensors(unit_of_measure)
    for device, device_type in devices:
        ha = han_device(device, device_type, meter=meter)
        temperature = {
            "unit_of_measurement": "°C",
            "device_class": "temperature",
            "state_class": "measurement",
        }
        sensors: list[tuple[str, dict[str, Any]]] = []
        if device_type == IN_HOME_DISPLAY:
            unit = (price_units or {}).get(device)
            units = (value_units or {}).get(device, {})
            co2 = {"unit_of_measurement": units["co2"]} if "co2" in units else {}
            bill = {"unit_of_measurement": units["bill"]} if "bill" in units else {}
            credit = (
                {"device_class": "monetary", "unit_of_measurement": units["credit"]}
                if "credit" in units
                else {}
            )
            tariff = {
                "json_attributes_topic": topics.device(device, "state"),
                "json_attributes_template": TARIFF_ATTRIBUTES,
            }
            sensors += [
                ("energy Energy delivered: metering.summation_delivered", summation),
                ("power Power: metering.demand", demand),
                ("price Price per unit: state.price_per_unit",
                 {"unit_of_measurement": unit} if unit else {}),
                ("message Message: state.message", {}),
                ("tariff Tariff: state.tariff_label", tariff),
                ("tier Price tier: state.tier_label", {}),
                ("co2 CO2: state.carbon_intensity", {**co2, "state_class": "measurement"}),
                ("billing Billing period start: state.billing_period_start",
                 {"device_class": "timestamp"}),
                ("bill Last bill: state.consolidated_bill",
                 {"device_class": "monetary", **bill} if bill else {}),
                ("cpp CPP event: state.cpp_auth", {}),
                # SE 1.2 Prepayment and Calendar (ADR 0034)
                ("credit Credit: state.credit_remaining", credit),
                ("emergency_credit Emergency credit: state.emergency_credit_remaining", credit),
                ("calendar_tier Calendar tier: state.calendar_tier_label", {}),
                ("tier_change Next tier change: state.calendar_tier_changes_at",
                 {"device_class": "timestamp"}),
                # SE 1.2 supply control: Supply Status, one of its names
                ("supply Supply: state.supply_status",
                 {"device_class": "enum", "options": list(SUPPLY_STATUS_NAMES.values())}),
            ]  # fmt: skip
        elif device_type == PROGRAMMABLE_THERMOSTAT:
            sensors += [
                ("cooling Cooling set point: state.cooling_set_point", temperature),
                ("heating Heating set point: state.heating_set_point", temperature),
            ]
        elif device_type == LOAD_CONTROL_DEVICE:
            sensors.append(
                (
                    "duty_cycle Duty cycle: state.duty_cycle",
                    {"unit_of_measurement": "%", "state_class": "measurement"},
                )
            )
        sensors.append(("load_control Load control event: state.load_control_event", {}))
        for what, more in sensors:
            object_id = what.split(" ", 1)[0]
            if object_id in removed:
                gone.append(_sensor(topics, device, ha, what, **more))
            elif object_id not in withheld:
                configs.append(_sensor(topics, device, ha, what, **more))
    return _configs(topics, configs) + removal(_configs(topics, gone))


@dataclass(frozen=True, kw_only=True)
class _DeviceCommand(_Command):
    #: The HAN device (an EUI-64 as zigpy prints it).
    device: str


@dataclass(frozen=True, kw_only=True)
class ConfirmMessage(_DeviceCommand):
    """The display's user confirms a message (Message Confirmation, SE D.5.2.4.2), with an
    optional yes/no ``answer`` and ``response`` text (enhanced confirmation):
    ``confirm_message``."""

    message_id: int
    answer: bool | None = None
    response: str | None = None


@dataclass(frozen=True, kw_only=True)
class OptOut(_DeviceCommand):
    """The user opts the device out of a load control event (Report Event Status 0x04 /
    0x07, SE D.2.3.3.1.1.2): ``opt_out``."""

    issuer_event_id: int


@dataclass(frozen=True, kw_only=True)
class OptIn(_DeviceCommand):
    """The user opts back in (0x05): ``opt_in``."""

    issuer_event_id: int


@dataclass(frozen=True, kw_only=True)
class RespondCppEvent(_DeviceCommand):
    """The user accepts (``accept`` true) or rejects a CPP event that asks for it (CPP
    Event Response, SE D.4.2.3.14): ``respond_cpp_event``."""

    issuer_event_id: int
    accept: bool


HanCommand = ConfirmMessage | OptOut | OptIn | RespondCppEvent


def _only(data: dict[str, Any], *names: str) -> None:
    for key in data:
        if key not in ("correlation_id", "device", *names):
            raise CommandError(_shown_key(key), "unknown field")


def _confirm(cid: str, data: dict[str, Any]) -> HanCommand:
    _only(data, "message_id", "answer", "response")
    answer = data.get("answer")
    if answer is not None and not isinstance(answer, bool):
        raise CommandError("answer", "expected true, false or null")
    response = data.get("response")
    return ConfirmMessage(
        correlation_id=cid,
        device=_mac(data.get("device"), "device"),
        message_id=_int(data.get("message_id"), "message_id", 0, (1 << 32) - 1),
        answer=answer,
        response=None if response is None else _text(response, "response", 20),
    )


def _opt(cls: Any) -> Any:
    def build(cid: str, data: dict[str, Any]) -> HanCommand:
        _only(data, "issuer_event_id")
        return cls(  # type: ignore[no-any-return]
            correlation_id=cid,
            device=_mac(data.get("device"), "device"),
            issuer_event_id=_int(data.get("issuer_event_id"), "issuer_event_id", 0, (1 << 32) - 1),
        )

    return build


def _respond_cpp(cid: str, data: dict[str, Any]) -> HanCommand:
    _only(data, "issuer_event_id", "accept")
    accept = data.get("accept")
    if not isinstance(accept, bool):
        raise CommandError("accept", "expected true (accepted) or false (rejected)")
    return RespondCppEvent(
        correlation_id=cid,
        device=_mac(data.get("device"), "device"),
        issuer_event_id=_int(data.get("issuer_event_id"), "issuer_event_id", 0, (1 << 32) - 1),
        accept=accept,
    )


#: The commands a HAN device takes, by the last part of their request topic.
HAN_COMMANDS: Final = {
    "confirm_message": _confirm,
    "opt_out": _opt(OptOut),
    "opt_in": _opt(OptIn),
    "respond_cpp_event": _respond_cpp,
}


def parse_han_command(name: str, payload: bytes) -> HanCommand:
    """A HAN device's command (:data:`HAN_COMMANDS`) from its JSON payload; anything wrong
    raises :class:`CommandError` naming the field."""
    return _parse(HAN_COMMANDS, name, payload)  # type: ignore[no-any-return]
