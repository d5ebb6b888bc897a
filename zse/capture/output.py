"""How a decoded frame is shown: a timeline line, or a JSON object (one per line).

A frame that came in a ZEP packet has its header in JSON (``"zep"``: version, device id,
mode, and for version 2 the sequence number and the sniffer's time of reception, ISO 8601
UTC to the nanosecond); the timeline shows ZEP only where a sequence number does not follow
the last one from the same sniffer (``ZEP #1010 after #1007``), so that a healthy feed's
lines stay as short as any other capture's.

Key material (the key a Transport Key carries; in a Green Power command, the GPD key and
whatever may hold one) and a Device Management password (SE 1.2 D.10.2.4.3.1.5) are replaced
by ``(hidden)``, and a Prepayment top-up code (D.7.2.3.4.1.2, money to whoever types it
first) shows only its last 4 characters, as zse's logs show it, unless the caller asks for
them (``show_keys``); keys are otherwise only ever named by their labels.
"""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Callable
from typing import Any

from zse.capture.decode import Decoded
from zse.capture.frames import Aps, GreenPower, Mac
from zse.capture.zep import Zep
from zse.se.ids import DEVICE_MANAGEMENT_CLUSTER, PREPAYMENT
from zse.se.prepay import mask_code

__all__ = ["HIDDEN", "as_json", "as_line", "frame_fields", "iso_time"]

HIDDEN = "(hidden)"
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


#: One encoder for every line (json.dumps with options builds a new one per call); the
#: fields are trees of dicts, lists and scalars, never circular.
_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False)
#: The C encoder behind it, built once (``JSONEncoder.encode`` builds one per call); the
#: same text, as a test checks. None where the json module has no C accelerator.
_MAKE_C_ENCODER: Any = getattr(json.encoder, "c_make_encoder", None)
_C_ENCODER: Any = (
    None
    if _MAKE_C_ENCODER is None
    else _MAKE_C_ENCODER(
        None, _ENCODER.default, json.encoder.encode_basestring_ascii, None, ":", ",",
        False, False, True,
    )
)  # fmt: skip


def _time(time_ns: int) -> str:
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    return f"{_second(seconds)}.{nanos // 1000:06d}"


@functools.lru_cache(maxsize=256)
def _second(seconds: int) -> str:
    """UTC date and time of a second (frames come many to a second); a second no date can
    show (a :class:`~zse.capture.Record` made by hand) as seconds since the epoch."""
    try:
        return f"{_EPOCH + datetime.timedelta(seconds=seconds):%Y-%m-%d %H:%M:%S}"
    except OverflowError:
        return f"{seconds} s since 1970"


def iso_time(time_ns: int) -> str:
    """``time_ns`` (since the Unix epoch) as ISO 8601 UTC to the nanosecond:
    ``2023-11-14T22:13:20.123456789Z``."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    return f"{_EPOCH + datetime.timedelta(seconds=seconds):%Y-%m-%dT%H:%M:%S}.{nanos:09d}Z"


def _zep(zep: Zep, previous: int | None) -> dict[str, Any]:
    """The ZEP header's own fields (channel and LQI are the frame's ``channel``, ``lqi``)."""
    out: dict[str, Any] = {
        "version": zep.version,
        "device_id": zep.device,
        "mode": "crc" if zep.crc else "lqi",
    }
    if zep.sequence is not None:
        out["sequence"] = zep.sequence
        if previous is not None:
            out["previous_sequence"] = previous
    if zep.time_ns is not None:
        out["time"] = iso_time(zep.time_ns)
        out["time_ns"] = zep.time_ns
    return out


#: The Green Power cluster (ZGP 1.1 A.3.3): its commands and attributes carry GPD keys.
GREEN_POWER = "0x0021"
#: Green Power commands that carry no key, whose payload is shown even undecoded.
_KEYLESS_GREEN_POWER = frozenset(
    {"proxy_commissioning_mode", "notification_response", "pairing_search"}
)
#: Green Power commands whose GPD command payload may be a GPD Commissioning command or a
#: Commissioning Reply (ZGP A.4.2.1.1, A.4.2.1.2), which carry the GPD's key.
_COMMISSIONING_GREEN_POWER = frozenset({"commissioning_notification", "response"})


def _green_power(command: dict[str, Any]) -> dict[str, Any]:
    """A Green Power command with its key material hidden: the fields named ``key`` or
    ``..._key`` (GP Pairing's GPD key), the value of an attribute so named (the shared
    security key, the link key), the GPD command payload of a Commissioning Notification or
    a GP Response, and a payload left undecoded, which may hold any of them."""
    name = command.get("command")
    payloads = name in _COMMISSIONING_GREEN_POWER
    raw = () if name in _KEYLESS_GREEN_POWER else ("payload", "trailing")
    out = {k: HIDDEN if k in raw else v for k, v in command.items()}
    if "fields" in out:
        out["fields"] = _hide_fields(out["fields"], _gp_key(payloads), _hidden)
    return out


def _gp_key(payloads: bool) -> Callable[[str, str], bool]:
    """Green Power's key material: a field named ``key`` or ``..._key``, the value of an
    attribute so named, and (``payloads``) a GPD command payload."""

    def secret(name: str, attribute: str) -> bool:
        return (
            name == "key"
            or name.endswith("_key")
            or (payloads and name.endswith("payload"))
            or (attribute.endswith("key") and name == "value")
        )

    return secret


_PREPAYMENT = f"0x{PREPAYMENT:04x}"
_DEVICE_MANAGEMENT = f"0x{DEVICE_MANAGEMENT_CLUSTER:04x}"


def _hide_fields(
    value: Any, secret: Callable[[str, str], bool], shown: Callable[[Any], Any]
) -> Any:
    """``value`` (a command's fields: dicts, lists, scalars) with each field that
    ``secret(name, attribute)`` names (``attribute``: the attribute of the record the field
    is in, if any) replaced by ``shown(field)``."""
    if isinstance(value, list):
        return [_hide_fields(item, secret, shown) for item in value]
    if not isinstance(value, dict):
        return value
    attribute = str(value.get("attribute", ""))
    return {
        name: shown(item)
        if item is not None and secret(name, attribute)
        else _hide_fields(item, secret, shown)
        for name, item in value.items()
    }


def _named(field: str) -> Callable[[str, str], bool]:
    """A field named ``field``, or the value of an attribute so named (``top_up_code_1``)."""
    return lambda name, attribute: (
        name == field or (name == "value" and attribute.startswith(field))
    )


def _masked(code: Any) -> Any:
    return mask_code(code) if isinstance(code, str) else HIDDEN


def _hidden(_value: Any) -> str:
    return HIDDEN


def _command(command: dict[str, Any] | None, show_keys: bool) -> dict[str, Any] | None:
    if command is None:
        return None
    if not show_keys:
        cluster = command.get("cluster_id")
        if cluster == GREEN_POWER:
            command = _green_power(command)
        elif cluster == _PREPAYMENT and "fields" in command:
            command = {
                **command,
                "fields": _hide_fields(command["fields"], _named("top_up_code"), _masked),
            }
        elif cluster == _DEVICE_MANAGEMENT and "fields" in command:
            command = {
                **command,
                "fields": _hide_fields(command["fields"], _named("password"), _hidden),
            }
    if "key" not in command:
        return command
    key = command["key"]
    return {**command, "key": key.hex() if show_keys and isinstance(key, bytes) else HIDDEN}


def frame_fields(frame: Decoded, *, show_keys: bool = False) -> dict[str, Any]:  # noqa: PLR0912
    """The frame as JSON-ready fields."""
    record = frame.record
    out: dict[str, Any] = {
        "frame": record.number,
        "time": _time(record.time_ns),
        "time_ns": record.time_ns,
        "length": len(frame.link.frame),
        "src": frame.source(),
        "dst": frame.destination(),
    }
    link = frame.link
    for name, value in (
        ("fcs_ok", link.fcs_ok), ("channel", link.channel), ("rssi", link.rssi), ("lqi", link.lqi)
    ):  # fmt: skip
        if value is not None:
            out[name] = value
    if link.zep is not None:
        out["zep"] = _zep(link.zep, frame.zep_previous)
    if frame.mac is not None:
        out["mac"] = frame.mac.fields()
        if frame.mac_fields:
            out["mac"].update(frame.mac_fields)
    if frame.nwk is not None:
        out["nwk"] = frame.nwk.fields()
    if frame.gp is not None:
        out["gp"] = frame.gp.fields()
    if frame.aps is not None:
        out["aps"] = frame.aps.fields()
    if frame.tunnel is not None:
        out["tunnel"] = {"dst": frame.tunnel.get("dst")}
        if frame.tunnelled is not None:
            out["tunnel"]["aps"] = frame.tunnelled.fields()
    if frame.not_zigbee is not None:
        out["not_zigbee"] = frame.not_zigbee
    if frame.reassembled is not None:
        out["reassembled"] = frame.reassembled.fields()
    if frame.security:
        out["security"] = [s.fields() for s in frame.security]
    command = _command(frame.command or frame.nwk_command, show_keys)
    if command is not None:
        out["command"] = command
    if frame.learned:
        out["learned_keys"] = frame.learned
    if frame.error is not None:
        out["error"] = frame.error
    return out


def as_json(frame: Decoded, *, show_keys: bool = False) -> str:
    """One JSON object on one line."""
    fields = frame_fields(frame, show_keys=show_keys)
    if _C_ENCODER is None:
        return _ENCODER.encode(fields)
    return "".join(_C_ENCODER(fields, 0))


def _value(value: Any) -> str:
    """A field's value on the timeline: a plain string as it is; one holding anything but
    printable characters or spaces (a Display Message's text from the air may hold terminal
    escapes or a newline, which would break the one line per frame) quoted and escaped, as
    JSON has it; other values as JSON."""
    if isinstance(value, str) and (value.isprintable() or not value):
        return value
    return json.dumps(value, separators=(",", ":"))


def _security(frame: Decoded, layer: str, *, last: bool = False) -> str:
    """The security of ``layer`` (of the tunnelled APS frame if ``last``) as the line shows
    it."""
    for security in reversed(frame.security) if last else frame.security:
        if security.layer == layer:
            text = f" secured #{security.aux.counter}"
            if security.key is not None:
                return f"{text} [{security.key}]"
            return f"{text} NOT DECRYPTED ({security.failure})"
    return ""


def _aps_text(aps: Aps, security: str) -> str:
    text = f"APS {aps.fields()['type']}"
    if aps.cluster is not None:
        text += f" cluster 0x{aps.cluster:04x} profile 0x{aps.profile or 0:04x}"
    if aps.counter is not None:
        text += f" #{aps.counter}"
    if aps.fragmentation:
        text += _block_text(aps)
    return text + security


def _block_text(aps: Aps) -> str:
    """A block's number (the first's with the count) or a block ack's window and bitfield."""
    fields = aps.fragment_fields()
    if "blocks" in fields:
        return f" block 0 of {fields['blocks']}"
    if "block_acks" in fields:
        return f" block {fields['block']} acks {fields['block_acks']}"
    return f" block {fields['block']}"


def as_line(frame: Decoded, *, show_keys: bool = False) -> str:
    """One line of the timeline: number, time, source -> destination, layers, command."""
    record = frame.record
    parts: list[str] = []
    if frame.zep_previous is not None and frame.link.zep is not None:
        parts.append(f"ZEP #{frame.link.zep.sequence} after #{frame.zep_previous}")
    if frame.mac is not None:
        parts += _mac_text(frame, frame.mac)
    elif frame.not_zigbee is not None:  # a frame whose MAC header is not decoded (2015)
        parts.append(f"not ZigBee: {frame.not_zigbee}")
    nwk = frame.nwk
    if nwk is not None:
        kind = nwk.fields()["type"]
        parts.append(
            f"NWK {kind}"
            + (f" seq {nwk.seq}" if nwk.seq is not None else "")
            + _security(frame, "nwk")
        )
    gp = frame.gp
    if gp is not None:
        parts.append(_gp_text(gp))
    aps = frame.aps
    if aps is not None:
        parts.append(_aps_text(aps, _security(frame, "aps") if aps.security else ""))
    if frame.tunnel is not None:
        parts.append(_command_text(frame.tunnel))
    if frame.tunnelled is not None:
        secured = frame.tunnelled.security
        parts.append(
            _aps_text(frame.tunnelled, _security(frame, "aps", last=True) if secured else "")
        )
    parts += _payload_parts(frame, show_keys)
    if frame.learned:
        parts.append("learned " + ", ".join(frame.learned))
    if frame.error is not None:
        parts.append(f"MALFORMED: {frame.error}")
    if frame.link.fcs_ok is False:
        parts.append("BAD FCS")
    route = f"{frame.source() or '-'} -> {frame.destination() or '-'}"
    return f"{record.number:>6}  {_time(record.time_ns)}  {route:<24}  {' | '.join(parts)}"


def _payload_parts(frame: Decoded, show_keys: bool) -> list[str]:
    """The transfer a block completed, then the command."""
    parts = []
    whole = frame.reassembled
    if whole is not None:
        frames = ",".join(map(str, whole.frames))
        size = len(whole.payload)
        parts.append(f"reassembled {size} octets of {whole.blocks} blocks from frames {frames}")
    command = _command(frame.command or frame.nwk_command, show_keys)
    if command is not None:
        parts.append(_command_text(command))
    return parts


def _mac_text(frame: Decoded, mac: Mac) -> list[str]:
    """The MAC layer's parts of the line: a frame other than data with its command or
    beacon fields, and why the payload is not ZigBee."""
    parts = []
    kind = mac.fields()["type"]
    if mac.frame_type != 1:
        detail = frame.mac_fields.get("command", "")
        extra = " ".join(f"{k}={_value(v)}" for k, v in frame.mac_fields.items() if k != "command")
        parts.append(" ".join(p for p in (f"MAC {kind}", detail, extra) if p))
    if frame.not_zigbee is not None:
        if mac.frame_type == 1:
            parts.append(f"MAC {kind}")
        parts.append(f"not ZigBee: {frame.not_zigbee}")
    return parts


def _gp_text(gp: GreenPower) -> str:
    fields = gp.fields()
    text = f"Green Power {fields['type']}"
    if "src_id" in fields:
        text += f" src_id {fields['src_id']}"
    if gp.security_level:
        text += f" security level {gp.security_level}"
    if gp.counter is not None:
        text += f" #{gp.counter}"
    if "command" in fields:
        text += f" | GP {fields['command']}"
    return text


def _command_text(command: dict[str, Any]) -> str:
    layer = command["layer"].upper()
    head = [layer]
    if layer == "ZCL":
        head.append(command["cluster"])
    head.append(str(command["command"]))
    if "tsn" in command:
        head.append(f"tsn {command['tsn']}")
    skip = {"layer", "cluster", "cluster_id", "command", "command_id", "tsn", "fields", "direction"}
    skip.add("global")
    fields = {k: v for k, v in command.items() if k not in skip}
    fields.update(command.get("fields") or {})
    shown = "".join(f" {k}={_value(v)}" for k, v in fields.items() if v is not None)
    return " ".join(head) + shown
