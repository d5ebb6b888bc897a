"""Metering at the ZCL frame (SE D.3): the sans-IO protocol cores.

:class:`MeterServerProtocol` is the ESI's meter around a :class:`~zse.metering.core.MeterCore`:
Configure Reporting (ZCL 2.5.7) answered with Configure Reporting Response (2.5.8), Read
Reporting Configuration (2.5.9) with its response (2.5.10), the Report Attributes due
(2.5.11) from ``handle_timeout``, Get Profile (D.3.3.3.1.1) answered with Get Profile
Response (D.3.2.3.1.1) and Request Fast Poll Mode (D.3.3.3.1.4) with its response
(D.3.2.3.1.4). It satisfies :class:`zse.zcl.frame.FrameCore`; :meth:`MeterServerProtocol.handle`
decodes a frame first (a payload that does not decode: MALFORMED_COMMAND).

:class:`MeteringClientProtocol` is a HAN device's side (an in-home display): it reads the
meter's Formatting set once (D.3.2.2.4), asks the meter to report CurrentSummationDelivered and
InstantaneousDemand (Configure Reporting, ZCL 2.5.7), takes Report Attributes (ZCL 2.5.11) and
Read Attributes Responses (ZCL 2.5.2), and turns each raw value into a
:class:`~zse.metering.formatting.Reading` exactly as the formatting says. A meter that refuses
reporting (a failure status in the Configure Reporting Response, a Default Response, or no
answer), or whose reports stop (no report of summation or demand for twice the maximum
interval: a report of another attribute, Supply Status say, is no sign that they still come),
is polled with Read Attributes instead, until its reports arrive. Each time the meter answers
summation or demand ``UNSUPPORTED_ATTRIBUTE`` (a meter without InstantaneousDemand, SE
D.3.2.2.1.1), the client says so (:class:`AttributeUnsupported`), so that what shows the
demand can stop offering it.

With ``MeteringClientConfig(supply_status=True)`` it follows the meter's Supply Status too (SE
1.2, attribute 0x0014, :mod:`zse.metering.supply`): read at start, its reports asked for in the
same Configure Reporting (an enum8: no reportable change is sent, ZCL 2.5.7.1.7), and each new
value said (:class:`SupplyStatusChanged`). zse's choice when the meter refuses its reports (a
failure status for 0x0014 alone: the summation's reports go on): Supply Status is read every
poll interval (with the poll, while the client polls); a meter that answers a read of it
UNSUPPORTED_ATTRIBUTE has no supply control: said once (:class:`AttributeUnsupported`), never
read again.

The core satisfies :class:`zse.zcl.frame.FrameCore`; ``now`` is ZigBee UTCTime. Nothing here
reads a clock or does I/O; :mod:`zse.metering.service` is the asyncio shell.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

import zigpy.types as t
from zigpy.zcl import foundation

from zse.errors import DecodeError, InvalidFrame
from zse.metering.core import MeterCore, ProfileAnswer
from zse.metering.formatting import Formatting, Reading
from zse.metering.snapshots import COMMANDS as SNAPSHOT_COMMANDS
from zse.metering.snapshots import SnapshotCore
from zse.metering.supply import SupplyServerProtocol, supply_status_read_request
from zse.metering.wire import GetProfileResponse, Metering
from zse.se.ids import (
    METERING,
    MeteringClientCommand,
    MeteringServerCommand,
    tier_summation_attribute,
)
from zse.se.ids import MeteringAttribute as A
from zse.se.types import SUMMATION_NON_VALUE
from zse.zcl.codec import decode_command, encode_command, refusal
from zse.zcl.delivery import Destination
from zse.zcl.frame import Send, Step, ZclMessage
from zse.zcl.reporting import ReportingConfig, report_payload

__all__ = [
    "DEFAULT_UPDATE_PERIOD",
    "FAST_POLL_MAX_MINUTES",
    "FAST_POLL_UPDATE_PERIOD",
    "FORMATTING_ATTRIBUTES",
    "TIERS_PER_READ",
    "AttributeUnsupported",
    "FastPollGranted",
    "MeterReading",
    "MeterServerProtocol",
    "MeteringClientConfig",
    "MeteringClientProtocol",
    "Polling",
    "ReportingConfigured",
    "SupplyStatusChanged",
    "TierSummation",
    "TodayConsumption",
    "attribute_type_id",
    "configure_reporting_payload",
    "decode_global",
    "profile_answer",
    "read_attributes_payload",
]

LOGGER = logging.getLogger(__name__)

_G = foundation.GeneralCommand
_SEND_REPORTS = foundation.ReportingDirection.SendReports
#: The longest fast poll a meter grants, minutes (D.3.3.3.1.4: Duration "not to exceed 15
#: minutes"; D.3.2.3.1.4: a repeat request does not extend it).
FAST_POLL_MAX_MINUTES: Final = 15
#: DefaultUpdatePeriod and FastPollUpdatePeriod when not configured, seconds (D.3.2.2.1).
DEFAULT_UPDATE_PERIOD: Final = 30
FAST_POLL_UPDATE_PERIOD: Final = 5


def attribute_type_id(attr_id: int) -> int:
    """The ZCL data type id of a Metering server attribute, from :mod:`zse.metering.wire`."""
    return int(Metering.attributes[attr_id].zcl_type)


@dataclass(frozen=True, kw_only=True)
class ReportingConfigured:
    """A device configured (or stopped, ``config.max_interval`` 0xFFFF) a report."""

    destination: Destination
    config: ReportingConfig


@dataclass(frozen=True, kw_only=True)
class FastPollGranted:
    """A Request Fast Poll Mode was answered: updates every ``period`` seconds until
    ``end_time`` (ZigBee UTCTime); ``new`` is False for a repeat during fast poll that left
    the period in force as it was."""

    source_nwk: int
    period: int
    end_time: int
    new: bool


def _global_schema(command_id: int) -> Any:
    return foundation.GENERAL_COMMANDS[foundation.GeneralCommand(command_id)].schema


#: What zigpy's foundation decoders raise on bytes that do not fit.
_DECODE_ERRORS = (ValueError, KeyError, IndexError, TypeError, OverflowError, AttributeError)


def _records(command_id: int, payload: bytes) -> list[Any]:
    """The records of a Configure Reporting or Read Reporting Configuration payload,
    decoded with zigpy's foundation types; :class:`InvalidFrame` when they do not fit."""
    name = _G(command_id).name
    try:
        command, rest = _global_schema(command_id).deserialize(payload)
        records = list(
            command.config_records
            if command_id == _G.Configure_Reporting
            else command.attribute_records
        )
    except _DECODE_ERRORS as exc:
        raise InvalidFrame(f"Metering {name}: {exc}") from None
    if rest or not records:
        raise InvalidFrame(
            f"Metering {name}: {len(rest)} bytes after the records, {len(records)} records"
        )
    return records


class MeterServerProtocol:
    """The meter's Metering server (SE D.3.2) at the ZCL frame, around ``core``.

    Reporting destinations are the configuring device's network address and endpoint
    (:meth:`Destination.device`). DefaultUpdatePeriod and FastPollUpdatePeriod (D.3.2.2.1)
    are the core's values when it holds them, else 30 s and 5 s.
    """

    def __init__(
        self, core: MeterCore[Destination], supply: SupplyServerProtocol | None = None
    ) -> None:
        self.core = core
        #: Supply control (SE 1.2), when the meter has it: its commands are answered too, and
        #: the core holds its Supply Status (0x0014), reported as any other attribute.
        self.supply = supply
        if supply is not None:
            supply.control.watch(core.set_supply_status)
        #: The fast poll in force: (applied update period, end time), or None.
        self.fast_poll: tuple[int, int] | None = None
        #: Snapshots and sampling (SE 1.2, :mod:`zse.metering.snapshots`); None: refused.
        self.snapshots: SnapshotCore | None = None
        #: (cluster command?, command id) -> what answers it.
        self._answers: dict[tuple[bool, int], Callable[[ZclMessage, Any, int], Step]] = {
            (True, MeteringServerCommand.GET_PROFILE): self._get_profile,
            (True, MeteringServerCommand.REQUEST_FAST_POLL_MODE): self._fast_poll,
            (False, _G.Configure_Reporting): self._configure,
            (False, _G.Read_Reporting_Configuration): self._read_configuration,
            **({} if supply is None else supply.answers()),
        }

    # -- update periods (D.3.2.2.1, D.3.3.3.1.4) ----------------------------------------------

    def _period(self, attribute: int, default: int) -> int:
        value = self.core.read(attribute)
        return default if value is None else value

    def update_period(self, now: int) -> int:
        """How often the meter's readings are refreshed at ``now``: the applied fast poll
        period until the fast poll's end time, DefaultUpdatePeriod otherwise (0 is read as 1)."""
        if self.fast_poll is not None and now < self.fast_poll[1]:
            return max(1, self.fast_poll[0])
        return max(1, self._period(A.DEFAULT_UPDATE_PERIOD, DEFAULT_UPDATE_PERIOD))

    def request_fast_poll(self, requested: int, minutes: int, now: int) -> tuple[int, int, bool]:
        """Grant Request Fast Poll Mode (D.3.3.3.1.4, D.3.2.3.1.4): (applied update period,
        end time, new). The period is never faster than FastPollUpdatePeriod (nor than 1 s);
        the duration is at most :data:`FAST_POLL_MAX_MINUTES`. A request while fast poll is in
        force keeps the end time in force, not extended (D.3.2.3.1.4, Fast Poll Mode Endtime),
        and the period becomes the shorter of the one in force and the one asked (at least
        FastPollUpdatePeriod), so the Applied Update Period is no longer than the requested
        rate (D.3.2.3.1.4); ``new`` is then True only when the period got shorter.

        A Duration of 0 minutes asks for no fast poll: nothing changes, ``new`` is False and
        the answer is the fast poll in force, or an end time of ``now`` (fast poll ends at
        once) when there is none, as Silicon Labs' simple-metering-server answers it (end time
        = now + 0 minutes, the attribute's period)."""
        floor = max(1, self._period(A.FAST_POLL_UPDATE_PERIOD, FAST_POLL_UPDATE_PERIOD))
        applied = max(requested, floor)
        if self.fast_poll is not None and now < self.fast_poll[1]:
            current, end = self.fast_poll
            if applied >= current or minutes == 0:
                return current, end, False
            self.fast_poll = (applied, end)
            return applied, end, True
        if minutes == 0:
            return applied, now, False
        end = now + min(minutes, FAST_POLL_MAX_MINUTES) * 60
        self.fast_poll = (applied, end)
        return applied, end, True

    # -- frames ---------------------------------------------------------------------------------

    def decode(self, msg: ZclMessage) -> Any:
        """The command a frame carries: a Metering cluster command (the wire's), or the
        records of Configure Reporting / Read Reporting Configuration; :class:`InvalidFrame`
        when it does not decode, None for a frame :meth:`receive` answers without one."""
        if msg.is_cluster_command:
            if msg.from_server:
                return None
            command, _ = decode_command(Metering, msg.command_id, msg.payload, from_server=False)
            return command
        if msg.command_id in (_G.Configure_Reporting, _G.Read_Reporting_Configuration):
            return _records(msg.command_id, msg.payload)
        return None

    def handle(self, msg: ZclMessage, now: int) -> Step:
        """:meth:`decode` then :meth:`receive`; a payload that does not decode is refused
        with MALFORMED_COMMAND, a command Metering does not define with UNSUP_CLUSTER_COMMAND
        (ZCL 2.5.12)."""
        try:
            command = self.decode(msg)
        except InvalidFrame as exc:
            LOGGER.warning("bad Metering command from 0x%04X: %s", msg.src_nwk, exc)
            return Step(status=refusal(exc))
        return self.receive(msg, command, now)

    def receive(self, msg: ZclMessage, command: Any, now: int) -> Step:
        """Answer Get Profile, Request Fast Poll Mode, Configure Reporting and Read Reporting
        Configuration; another client command is UNSUP_CLUSTER_COMMAND, another global one
        UNSUP_GENERAL_COMMAND; a server's frame is left alone. A command sent to a group or
        a broadcast is acted on without a response (as the endpoint's Read Attributes)."""
        if msg.from_server:
            return Step()
        answer = self._answers.get((msg.is_cluster_command, msg.command_id))
        snapshots = self.snapshots
        if snapshots is not None and msg.is_cluster_command and msg.command_id in SNAPSHOT_COMMANDS:
            answer = snapshots.receive
        if answer is not None:
            step = answer(msg, command, now)
            if msg.group is not None or msg.broadcast:  # acted on; answered to a unicast only
                return dataclasses.replace(step, sends=())
            return step
        if msg.is_cluster_command:
            return Step(status=foundation.Status.UNSUP_CLUSTER_COMMAND)
        return Step(status=foundation.Status.UNSUP_GENERAL_COMMAND)

    def _get_profile(self, msg: ZclMessage, command: Any, now: int) -> Step:
        """Get Profile (D.3.3.3.1.1) -> Get Profile Response (D.3.2.3.1.1)."""
        answer = self.core.get_profile(
            int(command.interval_channel),
            int(command.end_time),
            int(command.number_of_periods),
            now,
        )
        payload = encode_command(
            GetProfileResponse(
                end_time=answer.end_time,
                status=answer.status,
                profile_interval_period=answer.profile_interval_period,
                number_of_periods_delivered=answer.number_of_periods_delivered,
                intervals=list(answer.intervals),
            )
        )
        send = Send(
            cluster_id=METERING,
            command_id=MeteringClientCommand.GET_PROFILE_RESPONSE,
            payload=payload,
            reply_to=msg,
        )
        return Step(sends=(send,))

    def _fast_poll(self, msg: ZclMessage, command: Any, now: int) -> Step:
        """Request Fast Poll Mode (D.3.3.3.1.4) -> its response (D.3.2.3.1.4); a request of 0
        minutes grants nothing: answered (:meth:`request_fast_poll`), no
        :class:`FastPollGranted`."""
        period, end, new = self.request_fast_poll(
            int(command.fast_poll_update_period), int(command.duration), now
        )
        schema = Metering.ClientCommandDefs.request_fast_poll_mode_response.schema
        send = Send(
            cluster_id=METERING,
            command_id=MeteringClientCommand.REQUEST_FAST_POLL_MODE_RESPONSE,
            payload=encode_command(
                schema(applied_update_period=period, fast_poll_mode_end_time=end)
            ),
            reply_to=msg,
        )
        if not int(command.duration):
            return Step(sends=(send,))
        granted = FastPollGranted(source_nwk=msg.src_nwk, period=period, end_time=end, new=new)
        return Step(sends=(send,), events=(granted,))

    def configure(self, destination: Destination, record: Any, now: int) -> foundation.Status:
        """One Configure Reporting record (ZCL 2.5.7.1) for ``destination``: its status
        (2.5.8.1): UNSUPPORTED_ATTRIBUTE for an attribute the meter does not have (or a
        "receive reports" record: the meter keeps no timeouts), INVALID_DATA_TYPE when the
        record's type is not the attribute's (2.5.7.3), else the reporting engine's. One it
        has without a value yet (the demand before its first reading) is configured: a device
        that asks once when it joins gets its reports from the first value."""
        attribute = int(record.attrid)
        if record.direction != _SEND_REPORTS or not self.core.supports(attribute):
            return foundation.Status.UNSUPPORTED_ATTRIBUTE
        if int(record.datatype) != attribute_type_id(attribute):
            return foundation.Status.INVALID_DATA_TYPE
        change = getattr(record, "reportable_change", None)
        config = ReportingConfig(
            attribute=attribute,
            min_interval=int(record.min_interval),
            max_interval=int(record.max_interval),
            reportable_change=None if change is None else int(change),
        )
        return foundation.Status(self.core.configure_reporting(destination, config, now))

    def _configure(self, msg: ZclMessage, records: list[Any], now: int) -> Step:
        """Configure Reporting (ZCL 2.5.7) -> Configure Reporting Response (2.5.8): one status
        record per record not configured, or a single SUCCESS."""
        destination = Destination.device(msg.src_nwk, msg.src_ep)
        refused = b""
        events = []
        for record in records:
            status = self.configure(destination, record, now)
            if status == foundation.Status.SUCCESS:
                config = self.core.reporting.read_configuration(destination, int(record.attrid))[1]
                stopped = ReportingConfig(
                    attribute=int(record.attrid), min_interval=0, max_interval=0xFFFF
                )
                events.append(
                    ReportingConfigured(destination=destination, config=config or stopped)
                )
                continue
            refused += foundation.ConfigureReportingResponseRecord(
                status=status, direction=record.direction, attrid=record.attrid
            ).serialize()
        payload = refused or foundation.Status.SUCCESS.serialize()
        send = Send(
            cluster_id=METERING,
            command_id=_G.Configure_Reporting_rsp,
            payload=payload,
            reply_to=msg,
            cluster_specific=False,
        )
        return Step(sends=(send,), events=tuple(events))

    def _read_configuration(self, msg: ZclMessage, records: list[Any], now: int) -> Step:
        """Read Reporting Configuration (ZCL 2.5.9) -> its response (2.5.10): per record the
        status and, when SUCCESS, the configuration held for the asking device."""
        destination = Destination.device(msg.src_nwk, msg.src_ep)
        out = b""
        for record in records:
            attribute = int(record.attrid)
            config = foundation.AttributeReportingConfig()
            config.direction = foundation.ReportingDirection(record.direction)
            config.attrid = t.uint16_t(attribute)
            if record.direction != _SEND_REPORTS or not self.core.supports(attribute):
                status, held = foundation.Status.UNSUPPORTED_ATTRIBUTE, None
            else:
                status, held = self.core.reporting.read_configuration(destination, attribute)
            if held is not None:
                config.datatype = foundation.DataTypeId(attribute_type_id(attribute))
                config.min_interval = held.min_interval
                config.max_interval = held.max_interval
                config.reportable_change = held.reportable_change or 0
            out += foundation.AttributeReportingConfigWithStatus(
                status=status, config=config
            ).serialize()
        send = Send(
            cluster_id=METERING,
            command_id=_G.Read_Reporting_Configuration_rsp,
            payload=out,
            reply_to=msg,
            cluster_specific=False,
        )
        return Step(sends=(send,))

    # -- reports (ZCL 2.5.11) --------------------------------------------------------------------

    def next_deadline(self) -> int | None:
        """When :meth:`handle_timeout` next has a report to send."""
        return self.core.next_deadline()

    def handle_timeout(self, now: int) -> Step:
        """The Report Attributes due at ``now``, one per destination, each attribute in its
        wire type (ZCL 2.5.11.1)."""
        sends = []
        for report in self.core.handle_timeout(now):
            types = {attr: attribute_type_id(attr) for attr, _ in report.attributes}
            sends.append(
                Send(
                    cluster_id=METERING,
                    command_id=_G.Report_Attributes,
                    payload=report_payload(report.attributes, types),
                    to=report.destination,
                    cluster_specific=False,
                    from_server=True,
                )
            )
        return Step(sends=tuple(sends))


# -- the client (SE D.3.3) --------------------------------------------------------------------
#: The Formatting set a display reads once (D.3.2.2.4), 0x0300-0x0306.
FORMATTING_ATTRIBUTES: Final = (
    A.UNIT_OF_MEASURE,
    A.MULTIPLIER,
    A.DIVISOR,
    A.SUMMATION_FORMATTING,
    A.DEMAND_FORMATTING,
    A.HISTORICAL_CONSUMPTION_FORMATTING,
    A.METERING_DEVICE_TYPE,
)
#: The values a display follows: summation (D.3.2.2.1.1) and demand (D.3.2.2.5.1).
SUMMATION: Final = A.CURRENT_SUMM_DELIVERED
DEMAND: Final = A.INSTANTANEOUS_DEMAND
_VALUES: Final = (SUMMATION, DEMAND)
#: Supply Status (SE 1.2), followed when :attr:`MeteringClientConfig.supply_status`.
SUPPLY_STATUS: Final = A.SUPPLY_STATUS
#: What was used today (SE 1.2 D.3.2.2.5), followed when :attr:`MeteringClientConfig.today`.
TODAY: Final = A.CURRENTDAY_CONSUMPTION_DELIVERED
#: CurrentDayConsumptionDelivered's non-value (uint24 all ones, ZCL 2.6.2): not known.
_TODAY_NON_VALUE: Final = 0xFFFFFF
#: The global commands the client takes from the meter.
_TAKEN: Final = frozenset(
    (_G.Report_Attributes, _G.Read_Attributes_rsp, _G.Configure_Reporting_rsp, _G.Default_Response)
)


@dataclass(frozen=True, kw_only=True)
class MeteringClientConfig:
    """What the client asks of the meter: reporting intervals (seconds) and reportable
    changes (raw units) for summation and demand (ZCL 2.5.7.1), how long it waits for the
    Configure Reporting Response, and the polling period when the meter does not report.

    ``supply_status``: follow Supply Status too (SE 1.2, 0x0014), reported at most every
    ``supply_min_interval`` and at least every ``supply_max_interval`` seconds (zse's
    defaults: 1 s, so that a change shows at once; an hour, so that a lost report is put
    right within one; 0: on a change only).

    ``today``: follow CurrentDayConsumptionDelivered too (SE 1.2 D.3.2.2.5, "today's use" on
    a display), read after each new summation heard (one read at a time, asked again once
    ``answer_timeout`` passed without an answer) and shown with HistoricalConsumptionFormatting
    (D.3.2.2.4.6); a meter that answers it UNSUPPORTED_ATTRIBUTE (many real meters) is not
    asked again, and nothing is shown (zse's choice: read rather than reported, as a display
    wants it with the summation it shows)."""

    min_interval: int = 10
    max_interval: int = 300
    summation_change: int = 1
    demand_change: int = 1
    answer_timeout: int = 30
    poll_interval: int = 60
    supply_status: bool = False
    supply_min_interval: int = 1
    supply_max_interval: int = 3600
    today: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.min_interval <= self.max_interval <= 0xFFFE:
            raise ValueError(
                f"reporting intervals {self.min_interval}-{self.max_interval} s are not"
                " 0 <= min <= max < 0xFFFF"
            )
        low, high = self.supply_min_interval, self.supply_max_interval
        if not (0 <= low <= 0xFFFE and 0 <= high <= 0xFFFE and (high == 0 or low <= high)):
            raise ValueError(
                f"Supply Status reporting intervals {low}-{high} s are not 0 <= min <= max"
                " < 0xFFFF (max 0: on a change only)"
            )
        if self.poll_interval < 1 or self.answer_timeout < 1:
            raise ValueError("the poll interval and answer timeout are at least 1 s")
        if self.summation_change < 0 or self.demand_change < 0:
            raise ValueError("a reportable change cannot be negative")


@dataclass(frozen=True, kw_only=True)
class MeterReading:
    """A summation or demand as the display shows it; ``reported`` is False for a value
    read (at start or by polling)."""

    attribute: int
    raw: int
    reading: Reading
    reported: bool
    at: int


@dataclass(frozen=True, kw_only=True)
class TodayConsumption:
    """What the meter says was used today (CurrentDayConsumptionDelivered, SE 1.2
    D.3.2.2.5) as the display shows it (HistoricalConsumptionFormatting), read at ``at``;
    ``reading`` None: not known (the meter's non-value)."""

    raw: int | None
    reading: Reading | None
    at: int


@dataclass(frozen=True, kw_only=True)
class TierSummation:
    """A tier's CurrentTierNSummationDelivered / Received (D.3.2.2.2) as the display shows
    them (the meter's formatting, as the summation's); None: the meter does not hold it."""

    tier: int
    delivered: Reading | None
    received: Reading | None


#: Tiers whose two summations one Read Attributes asks for: each answer record of a uint48
#: takes 10 octets (id 2, status 1, type 1, value 6, ZCL 2.5.2.1), and 6 fit the 70 octets of
#: one APS-encrypted unicast frame (:func:`zse.se.frames.max_zcl_payload`; zse's choice).
TIERS_PER_READ: Final = 3


@dataclass(frozen=True, kw_only=True)
class AttributeUnsupported:
    """The meter answered a Read Attributes or Configure Reporting of ``attribute``
    (summation or demand) ``UNSUPPORTED_ATTRIBUTE`` (ZCL 2.5.2.1, 2.5.8.1) at ``at``: it does
    not hold it now (InstantaneousDemand is optional, SE D.3.2.2.1.1). For Supply Status
    (followed, ``MeteringClientConfig.supply_status``), a read answered so: the meter has no
    supply control, said once (it is not read again). Said at each such
    answer (the read at start, each poll, each ask for the demand's reports again, every
    maximum interval), so a listener that came later hears it too; a
    :class:`MeterReading` of it says it is held after all (a gateway told its demand)."""

    attribute: int
    at: int


@dataclass(frozen=True, kw_only=True)
class SupplyStatusChanged:
    """The meter's Supply Status (SE 1.2, 0x0014: Off 0, Off/Armed 1, On 2) as the display
    last heard it is ``status`` (``before``: None for the first value heard), from a report
    (``reported``) or a read, at ``at``. The display's view, not the meter's
    :class:`~zse.metering.supply.SupplyChanged`: no cause (the attribute carries none), a
    first value that is no change, and a type of its own so that an application hosting both
    the meter and a display never takes one for the other."""

    status: int
    before: int | None
    reported: bool
    at: int


@dataclass(frozen=True, kw_only=True)
class Polling:
    """The client polls the meter (``active``) or stopped polling; ``reason`` says why."""

    active: bool
    reason: str


def read_attributes_payload(attributes: Iterable[int]) -> bytes:
    """Read Attributes (ZCL 2.5.1.1): the attribute ids, uint16 each."""
    return b"".join(int(attr).to_bytes(2, "little") for attr in attributes)


def configure_reporting_payload(
    config: MeteringClientConfig, attributes: Iterable[int] = (SUMMATION, DEMAND)
) -> bytes:
    """Configure Reporting (ZCL 2.5.7.1) for summation and demand (or those of
    ``attributes``: Supply Status too), reported by the meter. Supply Status, an enum8, has
    no Reportable Change field (ZCL 2.5.7.1.7: discrete types omit it; zigpy leaves it out)."""
    changes: dict[int, int] = {SUMMATION: config.summation_change, DEMAND: config.demand_change}
    out = b""
    for attr in attributes:
        record = foundation.AttributeReportingConfig()
        record.direction = foundation.ReportingDirection.SendReports
        record.attrid = t.uint16_t(attr)
        record.datatype = foundation.DataTypeId(attribute_type_id(attr))
        if attr == SUPPLY_STATUS:
            record.min_interval = config.supply_min_interval
            record.max_interval = config.supply_max_interval
        else:
            record.min_interval = config.min_interval
            record.max_interval = config.max_interval
            record.reportable_change = changes[attr]
        out += record.serialize()
    return out


def profile_answer(msg: ZclMessage) -> ProfileAnswer:
    """The fields of a Get Profile Response (D.3.2.3.1.1) the meter sent; ``InvalidFrame`` for
    another command or a payload that does not decode."""
    if not (msg.is_cluster_command and msg.from_server):
        raise InvalidFrame(f"not a Get Profile Response: command 0x{msg.command_id:02X}")
    command, _ = decode_command(Metering, msg.command_id, msg.payload, from_server=True)
    if not isinstance(command, GetProfileResponse):
        raise InvalidFrame(f"not a Get Profile Response: command 0x{msg.command_id:02X}")
    return ProfileAnswer(
        end_time=int(command.end_time),
        status=command.status,
        profile_interval_period=int(command.profile_interval_period),
        intervals=tuple(int(value) for value in command.intervals),
    )


def decode_global(msg: ZclMessage) -> Any:
    """The global command ``msg`` carries, decoded by zigpy's foundation schema; ``DecodeError``
    for a payload that does not decode (or leaves bytes over a record)."""
    try:
        schema = foundation.GENERAL_COMMANDS[foundation.GeneralCommand(msg.command_id)].schema
        command, rest = schema.deserialize(msg.payload)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise DecodeError(f"Metering global command 0x{msg.command_id:02X}: {exc}") from None
    if rest:
        raise DecodeError(f"Metering global command 0x{msg.command_id:02X}: {len(rest)} bytes over")
    return command


class MeteringClientProtocol:
    """A display's Metering client (SE D.3.3) at the ZCL frame, for the meter at ``meter``.

    :meth:`start` gives the first requests; :meth:`receive` takes the meter's global
    commands; :meth:`next_deadline` / :meth:`handle_timeout` run the wait for the Configure
    Reporting Response and the polling. Values arriving before the formatting is known are
    kept and emitted once it is.
    """

    def __init__(self, meter: Destination, config: MeteringClientConfig | None = None) -> None:
        self.meter = meter
        self.config = MeteringClientConfig() if config is None else config
        self.formatting: Formatting | None = None
        #: The last raw value of each attribute followed, and when it came.
        self.raw: dict[int, tuple[int, int, bool]] = {}
        self.readings: dict[int, MeterReading] = {}
        #: The summation is the non-value now (said once until a value comes: a meter may
        #: report it for hours)
        self._summation_unknown = False
        #: None: Configure Reporting not answered yet; True: the meter reports; False: refused.
        self.reporting: bool | None = None
        self.polling = False
        self._answer_by: int | None = None
        self._read_at: int | None = None
        #: While the meter reports: when its next report is overdue.
        self._expect_by: int | None = None
        #: When to ask again for the demand's reports, which the meter refused as an
        #: attribute it does not hold (it may come: a gateway told its meter's demand later).
        self._demand_at: int | None = None
        #: The meter took the summation's reports but refused the demand's: asked for again
        #: (:attr:`_demand_at`) while it reports, read by each poll while it does not.
        self._without_demand = False
        #: The meter's Supply Status (SE 1.2) as last heard, None until then.
        self.supply_status: int | None = None
        #: Its reports (``config.supply_status``): None not answered yet, True taken, False
        #: refused (read every poll interval instead).
        self.supply_reporting: bool | None = None
        #: The meter answered a read of it UNSUPPORTED_ATTRIBUTE: no supply control, not read.
        self.supply_unsupported = False
        #: While its reports are refused and the client does not poll: its next read.
        self._supply_read_at: int | None = None
        #: A Configure Reporting that asked for its reports waits for its response.
        self._supply_asked = False
        #: CurrentDayConsumptionDelivered as last read (raw; None: not known), when followed.
        self.today_raw: int | None = None
        #: The meter answered it UNSUPPORTED_ATTRIBUTE: not asked again, nothing shown.
        self.today_unsupported = False
        #: When the read of it waiting for an answer was sent (None: none waits).
        self._today_asked: int | None = None

    # -- requests ------------------------------------------------------------------------------

    def _send(self, command: int, payload: bytes) -> Send:
        return Send(
            cluster_id=METERING,
            command_id=command,
            payload=payload,
            to=self.meter,
            cluster_specific=False,
            from_server=False,
        )

    def _supply_read(self) -> bool:
        """Whether a read asks for Supply Status: followed, held, and not reported (or the
        client polls: the reports it asked for stopped)."""
        return (
            self.config.supply_status
            and not self.supply_unsupported
            and (self.polling or self.supply_reporting is not True)
        )

    def read_request(self) -> Send:
        """Read Attributes of what is wanted now: the Formatting set until it is known, and
        summation and demand (and Supply Status, :meth:`_supply_read`)."""
        wanted = (*FORMATTING_ATTRIBUTES, *_VALUES) if self.formatting is None else _VALUES
        if self._supply_read():
            wanted = (*wanted, SUPPLY_STATUS)
        return self._send(_G.Read_Attributes, read_attributes_payload(wanted))

    def tier_requests(self, tiers: Iterable[int]) -> tuple[Send, ...]:
        """Read Attributes of ``tiers``' CurrentTierNSummationDelivered and Received
        (D.3.2.2.2; tiers 1-48, ``ValueError`` otherwise), :data:`TIERS_PER_READ` tiers a
        request so that each answer fits one frame."""
        wanted = [
            tier_summation_attribute(tier, received=received)
            for tier in dict.fromkeys(tiers)
            for received in (False, True)
        ]
        step = 2 * TIERS_PER_READ
        return tuple(
            self._send(_G.Read_Attributes, read_attributes_payload(wanted[at : at + step]))
            for at in range(0, len(wanted), step)
        )

    def tier_summations(
        self, tiers: Iterable[int], replies: Iterable[ZclMessage]
    ) -> dict[int, TierSummation]:
        """Each of ``tiers`` as the Read Attributes Responses to :meth:`tier_requests` carry
        it, shown as the meter's formatting says (D.3.2.2.4.4, as CurrentSummationDelivered);
        ``None`` for a summation the meter does not hold or gives as the uint48 non-value
        (:data:`~zse.se.types.SUMMATION_NON_VALUE`). :class:`DecodeError` for an answer
        that is not a Read Attributes Response or does not decode, one with a value that is
        not a number (a string, a float, an array...), or when the formatting is not known
        yet."""
        tiers = tuple(tiers)
        formatting = self.formatting
        if formatting is None:
            raise DecodeError("the meter's formatting is not known: tier summations not shown")
        values: dict[int, Reading] = {}
        for reply in replies:
            if reply.is_cluster_command or reply.command_id != _G.Read_Attributes_rsp:
                raise DecodeError(f"the meter answered 0x{reply.command_id:02X}, not a read")
            for record in decode_global(reply).status_records:
                if record.status != foundation.Status.SUCCESS or record.value is None:
                    continue
                value = record.value.value
                if not isinstance(value, int) or isinstance(value, bool):  # a string, a float...
                    raise DecodeError(f"the meter's 0x{record.attrid:04X} is not a number")
                if value == SUMMATION_NON_VALUE:  # a tier the meter does not count (Frient)
                    continue
                values[int(record.attrid)] = formatting.summation(value)
        return {
            tier: TierSummation(
                tier=tier,
                delivered=values.get(tier_summation_attribute(tier)),
                received=values.get(tier_summation_attribute(tier, received=True)),
            )
            for tier in tiers
        }

    def configure_request(self, attributes: Iterable[int] | None = None) -> Send:
        """Configure Reporting (ZCL 2.5.7) for ``attributes``, by default summation and demand
        (and Supply Status when followed and held)."""
        if attributes is None:
            supply = self.config.supply_status and not self.supply_unsupported
            attributes = (*_VALUES, SUPPLY_STATUS) if supply else _VALUES
        attributes = tuple(attributes)
        if SUPPLY_STATUS in attributes:
            self._supply_asked = True
        return self._send(
            _G.Configure_Reporting, configure_reporting_payload(self.config, attributes)
        )

    def get_profile_request(self, channel: int, end_time: int, number_of_periods: int) -> Send:
        """Get Profile (D.3.3.3.1.1): ``number_of_periods`` intervals of ``channel`` ending at
        or before ``end_time`` (0: the most recent)."""
        schema = Metering.ServerCommandDefs.get_profile.schema
        payload = encode_command(
            schema(
                interval_channel=channel,
                end_time=end_time,
                number_of_periods=number_of_periods,
            )
        )
        return Send(
            cluster_id=METERING,
            command_id=MeteringServerCommand.GET_PROFILE,
            payload=payload,
            to=self.meter,
            from_server=False,
        )

    def start(self, now: int) -> Step:
        """Read the formatting (and the values), then ask for reports."""
        self._answer_by = now + self.config.answer_timeout
        self._read_at = None if self.formatting is not None else now + self.config.poll_interval
        return Step(sends=(self.read_request(), self.configure_request()))

    # -- the meter's frames --------------------------------------------------------------------

    def screen(self, msg: ZclMessage) -> bool:
        """True for a frame this core takes: a global command its meter sent to the client
        (a display following two meters on one endpoint, e.g. electricity and a gas mirror,
        has a client per meter, each taking its own meter's frames only)."""
        return (
            msg.from_server
            and not msg.is_cluster_command
            and msg.cluster_id == METERING
            and msg.command_id in _TAKEN
            and msg.src_nwk == self.meter.address
            and msg.src_ep == self.meter.endpoint
        )

    def receive(self, msg: ZclMessage, command: Any, now: int) -> Step:
        """Take a Report Attributes, Read Attributes Response, Configure Reporting Response or
        Default Response (``command``, decoded by :func:`decode_global`); a summation or
        demand a response answers UNSUPPORTED_ATTRIBUTE is said first
        (:class:`AttributeUnsupported`)."""
        if not self.screen(msg):
            return Step()
        if msg.command_id == _G.Report_Attributes:
            values = [(int(r.attrid), r.value.value) for r in command.attribute_reports]
            return self._values(values, now, reported=True)
        if msg.command_id == _G.Read_Attributes_rsp:
            values = [
                (int(r.attrid), r.value.value)
                for r in command.status_records
                if r.status == foundation.Status.SUCCESS and r.value is not None
            ]
            unsupported = {
                int(r.attrid)
                for r in command.status_records
                if r.status != foundation.Status.SUCCESS
            }
            step = self._values(values, now, reported=False, unsupported=unsupported)
        else:
            step = self._answered(msg.command_id, command, now)
        if msg.command_id not in (_G.Read_Attributes_rsp, _G.Configure_Reporting_rsp):
            return step
        refused = _unsupported(command.status_records, now)  # said first
        return dataclasses.replace(step, events=(*refused, *step.events))

    def _answered(self, command_id: int, command: Any, now: int) -> Step:
        """A Configure Reporting Response, or a Default Response refusing Configure Reporting:
        reports, or polling. The demand refused UNSUPPORTED_ATTRIBUTE alone is no refusal: a
        meter without InstantaneousDemand (optional, SE D.3.2.2.1.1) reports the summation;
        its reports are asked for again every maximum interval, until taken or one comes.
        Supply Status refused alone is no refusal either (:meth:`_supply_answered`)."""
        without_demand = False
        if command_id == _G.Configure_Reporting_rsp:
            records = list(command.status_records)
            if self._supply_asked:
                self._supply_asked = False
                supply = next((r for r in records if r.attrid == SUPPLY_STATUS), None)
                self._supply_answered(None if supply is None else supply.status, now)
            values = [r for r in records if r.attrid != SUPPLY_STATUS]
            no_demand = (foundation.Status.UNSUPPORTED_ATTRIBUTE, DEMAND)
            statuses = [r.status for r in values if (r.status, r.attrid) != no_demand]
            without_demand = len(statuses) < len(values)
            if records and not statuses:  # the summation's SUCCESS is not listed
                statuses = [foundation.Status.SUCCESS]
        elif command.command_id == _G.Configure_Reporting:
            statuses = [command.status]
            if self._supply_asked:  # the whole command refused: Supply Status with it
                self._supply_asked = False
                self._supply_answered(command.status, now)
        else:
            return Step()  # a Default Response to another command
        refused = next((s for s in statuses if s != foundation.Status.SUCCESS), None)
        if statuses and refused is None:
            self._heard(now)
            taken = self._demand_at is not None and not without_demand
            self._demand_at = now + self._again() if without_demand else None
            self._without_demand = without_demand
            # the demand taken at last: read it (reported only once it changes, or at the
            # maximum interval: configuring makes the value then the last one reported)
            return Step(sends=(self.read_request(),) if taken else ())
        return self._refused(f"Configure Reporting refused: {_status(refused)}", now)

    def _supply_answered(self, status: Any, now: int) -> None:
        """The meter's answer to the reports of Supply Status (None or SUCCESS: taken): when
        refused, it is read every poll interval (each poll reads it while the client
        polls), zse's choice: a display shows the supply late rather than never."""
        if status is None or status == foundation.Status.SUCCESS:
            self.supply_reporting, self._supply_read_at = True, None
            return
        self.supply_reporting = False
        LOGGER.info(
            "the meter refused Supply Status reports (%s): read every %d s",
            _status(status),
            self.config.poll_interval,
        )
        if self._supply_read() and not self.polling:
            self._supply_read_at = now + self.config.poll_interval

    def _refused(self, reason: str, now: int) -> Step:
        """The meter will not report: poll it."""
        self.reporting, self._answer_by, self._expect_by = False, None, None
        self._demand_at = None  # each poll reads the demand
        self._supply_read_at = None  # and Supply Status, when followed
        if self.polling:
            return Step()
        self.polling = True
        self._read_at = now + self.config.poll_interval
        return Step(sends=(self.read_request(),), events=(Polling(active=True, reason=reason),))

    def _values(
        self,
        values: list[tuple[int, Any]],
        now: int,
        *,
        reported: bool,
        unsupported: set[int] | frozenset[int] = frozenset(),
    ) -> Step:
        events: list[Any] = []
        carried = {attr for attr, _ in values if attr in _VALUES}
        # only a report of what the client asked the meter to report says that it still
        # does: one of Supply Status alone (or of a formatting attribute) says nothing of it
        if reported and carried:
            self._heard(now)
            if DEMAND in carried:
                self._demand_at, self._without_demand = None, False
            if self.polling:
                self.polling = False
                self._read_at = None if self.formatting is not None else self._read_at
                if self._without_demand:  # no poll reads it now: ask for its reports again
                    self._demand_at = now + self._again()
                if self._supply_read():  # nor Supply Status: read on its own again
                    self._supply_read_at = now + self.config.poll_interval
                events.append(Polling(active=False, reason="the meter reports"))
        events.extend(self._new_formatting(values, unsupported, carried))
        events.extend(self._supply(values, now, reported, unsupported))
        events.extend(self._today(values, now, unsupported))
        sends = self._ask_today(values, now)
        for attr, value in values:
            if attr not in _VALUES:
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                LOGGER.warning("Metering 0x%04X from the meter is not a number: %r", attr, value)
                continue
            if attr == SUMMATION and value == SUMMATION_NON_VALUE:
                self._unknown(value)
                continue
            if attr == SUMMATION:
                self._summation_unknown = False
            self.raw[attr] = (int(value), now, reported)
            reading = self._format(attr)
            if reading is not None:
                events.append(reading)
        return Step(sends=sends, events=tuple(events))

    @property
    def today(self) -> Reading | None:
        """What was used today as shown (HistoricalConsumptionFormatting), None when not
        known (not followed, not read yet, not served, or no formatting yet)."""
        if self.today_raw is None or self.formatting is None:
            return None
        try:
            return self.formatting.historical(self.today_raw)
        except DecodeError:
            return None

    def _ask_today(self, values: list[tuple[int, Any]], now: int) -> tuple[Send, ...]:
        """A read of CurrentDayConsumptionDelivered after a summation heard, when followed,
        served, and no read of it waits (or the one that did is past ``answer_timeout``)."""
        if not self.config.today or self.today_unsupported:
            return ()
        if SUMMATION not in dict(values):
            return ()
        waiting = self._today_asked
        if waiting is not None and now < waiting + self.config.answer_timeout:
            return ()
        self._today_asked = now
        return (self._send(_G.Read_Attributes, read_attributes_payload((TODAY,))),)

    def _today(
        self, values: list[tuple[int, Any]], now: int, unsupported: set[int] | frozenset[int]
    ) -> list[Any]:
        """CurrentDayConsumptionDelivered read (or reported): a new value said; answered
        UNSUPPORTED_ATTRIBUTE: said once, never asked again."""
        if TODAY in unsupported and self.config.today:
            self._today_asked, self.today_raw = None, None
            said, self.today_unsupported = self.today_unsupported, True
            return [] if said else [AttributeUnsupported(attribute=TODAY, at=now)]
        if TODAY in dict(values):
            self._today_asked = None  # answered
        value = _number(values, TODAY, "CurrentDayConsumptionDelivered")
        if value is None:
            return []
        raw = None if value == _TODAY_NON_VALUE else value
        if raw == self.today_raw:
            return []
        self.today_raw = raw
        return [TodayConsumption(raw=raw, reading=self.today, at=now)]

    def _unknown(self, value: int) -> None:
        """The meter's summation is its non-value (a real meter's glitch, seen through a Glow
        IHD: tests/vectors/real-meters.json): no longer known, not shown, no consumption.
        Logged once until the meter gives a value again (not at every report)."""
        if not self._summation_unknown:
            LOGGER.warning(
                "the meter's CurrentSummationDelivered is 0x%X (no value): shown as unknown", value
            )
        self._summation_unknown = True
        self.raw.pop(SUMMATION, None)
        self.readings.pop(SUMMATION, None)

    def _supply(
        self,
        values: list[tuple[int, Any]],
        now: int,
        reported: bool,
        unsupported: set[int] | frozenset[int],
    ) -> list[Any]:
        """Supply Status in a report or a read: a new value said; a report says its reports
        come. Answered UNSUPPORTED_ATTRIBUTE while followed: no supply control, said once,
        never read again."""
        if SUPPLY_STATUS in unsupported and self.config.supply_status:
            if self.supply_unsupported:
                return []
            self.supply_unsupported, self._supply_read_at = True, None
            return [AttributeUnsupported(attribute=SUPPLY_STATUS, at=now)]
        value = _number(values, SUPPLY_STATUS, "Supply Status")
        if value is None:
            return []
        self.supply_unsupported = False
        if reported:
            self.supply_reporting, self._supply_read_at = True, None
        before, self.supply_status = self.supply_status, value
        if before == self.supply_status:
            return []
        return [SupplyStatusChanged(status=value, before=before, reported=reported, at=now)]

    def _heard(self, now: int) -> None:
        """A report arrived: the meter reports; expect the next within twice the maximum
        interval (a maximum of 0: change-based reports only, no expectation)."""
        self.reporting, self._answer_by = True, None
        interval = self.config.max_interval
        self._expect_by = now + 2 * interval if interval else None

    def _new_formatting(
        self,
        values: list[tuple[int, Any]],
        unsupported: set[int] | frozenset[int],
        carried: set[int],
    ) -> list[MeterReading]:
        """Take Formatting attributes (a read, or a report of a changed one): the kept values
        not ``carried`` by this frame are shown again under the new formatting."""
        given = {
            Metering.attributes[attr].name: value
            for attr, value in values
            if attr in FORMATTING_ATTRIBUTES and isinstance(value, int)
        }
        if not given and not (self.formatting is None and A.UNIT_OF_MEASURE in unsupported):
            return []
        # the set arrives in one Read Attributes Response; absent attributes take defaults
        known = {} if self.formatting is None else dataclasses.asdict(self.formatting)
        formatting = Formatting.from_attributes({**known, **given})
        if formatting == self.formatting:
            return []
        if self.formatting is None and not self.polling:
            self._read_at = None
        self.formatting = formatting
        return [
            reading
            for attr in _VALUES
            if attr in self.raw and attr not in carried and (reading := self._format(attr))
        ]

    def _format(self, attr: int) -> MeterReading | None:
        """The kept raw value of ``attr`` formatted, or None (no formatting yet, or a value the
        formatting cannot show: a BCD value with a nibble above 9, a reserved unit)."""
        if self.formatting is None:
            return None
        raw, at, reported = self.raw[attr]
        try:
            shown = (
                self.formatting.summation(raw) if attr == SUMMATION else self.formatting.demand(raw)
            )
        except DecodeError as exc:
            LOGGER.warning("Metering 0x%04X = %d cannot be shown: %s", attr, raw, exc)
            return None
        reading = MeterReading(attribute=attr, raw=raw, reading=shown, reported=reported, at=at)
        self.readings[attr] = reading
        return reading

    # -- time ----------------------------------------------------------------------------------

    def next_deadline(self) -> int | None:
        """The end of the wait for the Configure Reporting Response, the time the meter's next
        report is overdue, the next read, the next ask for the demand's reports, or the next
        read of Supply Status on its own."""
        times = (
            self._answer_by,
            self._read_at,
            self._expect_by,
            self._demand_at,
            self._supply_read_at,
        )
        return min((d for d in times if d is not None), default=None)

    def _again(self) -> int:
        """How long until the demand's reports are asked for again: the maximum interval."""
        return self.config.max_interval or self.config.poll_interval

    def handle_timeout(self, now: int) -> Step:
        """No answer to Configure Reporting, or a report overdue: poll. A read due: send it."""
        if self._answer_by is not None and now >= self._answer_by:
            return self._refused("no answer to Configure Reporting", now)
        if self._expect_by is not None and now >= self._expect_by:
            return self._refused("no report within twice the maximum interval", now)
        if self._demand_at is not None and now >= self._demand_at:
            self._demand_at = now + self._again()  # until a response takes it
            return Step(sends=(self.configure_request((DEMAND,)),))
        if self._read_at is not None and now >= self._read_at:
            wanted = self.polling or self.formatting is None
            self._read_at = now + self.config.poll_interval if wanted else None
            return Step(sends=(self.read_request(),))
        if self._supply_read_at is not None and now >= self._supply_read_at:
            return self._read_supply(now)
        return Step()

    def _read_supply(self, now: int) -> Step:
        """Supply Status read on its own, its reports refused; none while the client polls
        (each poll reads it)."""
        if self.polling or not self._supply_read():
            self._supply_read_at = None
            return Step()
        self._supply_read_at = now + self.config.poll_interval
        return Step(sends=(supply_status_read_request(self.meter),))


def _number(values: list[tuple[int, Any]], attribute: int, name: str) -> int | None:
    """``attribute``'s value among ``values`` when it is a number (None: absent, or not a
    number: a string, a float..., logged)."""
    value = dict(values).get(attribute)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        LOGGER.warning("%s from the meter is not a number: %r", name, value)
        return None
    return int(value)


def _unsupported(records: Iterable[Any], now: int) -> tuple[AttributeUnsupported, ...]:
    """The summation or demand that status ``records`` (of a Read Attributes or Configure
    Reporting Response) answer ``UNSUPPORTED_ATTRIBUTE``."""
    return tuple(
        AttributeUnsupported(attribute=int(r.attrid), at=now)
        for r in records
        if r.status == foundation.Status.UNSUPPORTED_ATTRIBUTE and r.attrid in _VALUES
    )


def _status(status: Any) -> str:
    if status is None:
        return "no status record"
    try:
        return foundation.Status(status).name
    except ValueError:
        return f"0x{int(status):02X}"
