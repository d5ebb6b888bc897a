"""Metering at the ZCL frame (SE D.3): the sans-IO protocol cores.

Nothing here reads a clock or does I/O; ``now`` is ZigBee UTCTime (seconds since 2000-01-01
UTC). The asyncio shells are in :mod:`zse.metering.service`.
"""

from __future__ import annotations

# -- the meter (Metering server, SE D.3.2) ------------------------------------------------------
#
# :class:`MeterServerProtocol` is the ESI's meter around a :class:`~zse.metering.core.MeterCore`:
# Configure Reporting (ZCL 2.5.7) answered with Configure Reporting Response (2.5.8), Read
# Reporting Configuration (2.5.9) with its response (2.5.10), the Report Attributes due
# (2.5.11) from ``handle_timeout``, Get Profile (D.3.3.3.1.1) answered with Get Profile
# Response (D.3.2.3.1.1) and Request Fast Poll Mode (D.3.3.3.1.4) with its response
# (D.3.2.3.1.4). It satisfies :class:`zse.zcl.frame.FrameCore`; :meth:`MeterServerProtocol.handle`
# decodes a frame first (a payload that does not decode: MALFORMED_COMMAND).
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import zigpy.types as t
from zigpy.zcl import foundation

from zse.errors import InvalidFrame
from zse.metering.core import MeterCore
from zse.metering.wire import GetProfileResponse, Metering
from zse.se.ids import METERING, MeteringClientCommand, MeteringServerCommand
from zse.se.ids import MeteringAttribute as A
from zse.zcl.codec import decode_command, encode_command
from zse.zcl.delivery import Destination
from zse.zcl.frame import Send, Step, ZclMessage
from zse.zcl.reporting import ReportingConfig, report_payload

__all__ = [
    "DEFAULT_UPDATE_PERIOD",
    "FAST_POLL_MAX_MINUTES",
    "FAST_POLL_UPDATE_PERIOD",
    "FastPollGranted",
    "MeterServerProtocol",
    "ReportingConfigured",
    "attribute_type_id",
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
    ``end_time`` (ZigBee UTCTime); ``new`` is False for a repeat during fast poll."""

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

    def __init__(self, core: MeterCore[Destination]) -> None:
        self.core = core
        #: The fast poll in force: (applied update period, end time), or None.
        self.fast_poll: tuple[int, int] | None = None
        #: (cluster command?, command id) -> what answers it.
        self._answers: dict[tuple[bool, int], Callable[[ZclMessage, Any, int], Step]] = {
            (True, MeteringServerCommand.GET_PROFILE): self._get_profile,
            (True, MeteringServerCommand.REQUEST_FAST_POLL_MODE): self._fast_poll,
            (False, _G.Configure_Reporting): self._configure,
            (False, _G.Read_Reporting_Configuration): self._read_configuration,
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
        end time, new). The period is never faster than FastPollUpdatePeriod; the duration is
        at most :data:`FAST_POLL_MAX_MINUTES`; a request while fast poll is in force gets the
        period and end time in force, not extended (D.3.2.3.1.4, Fast Poll Mode Endtime)."""
        if self.fast_poll is not None and now < self.fast_poll[1]:
            return (*self.fast_poll, False)
        floor = self._period(A.FAST_POLL_UPDATE_PERIOD, FAST_POLL_UPDATE_PERIOD)
        applied = max(requested, floor)
        end = now + min(minutes, FAST_POLL_MAX_MINUTES) * 60
        self.fast_poll = (applied, end) if end > now else None
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
        with MALFORMED_COMMAND."""
        try:
            command = self.decode(msg)
        except InvalidFrame as exc:
            LOGGER.warning("bad Metering command from 0x%04X: %s", msg.src_nwk, exc)
            return Step(status=foundation.Status.MALFORMED_COMMAND)
        return self.receive(msg, command, now)

    def receive(self, msg: ZclMessage, command: Any, now: int) -> Step:
        """Answer Get Profile, Request Fast Poll Mode, Configure Reporting and Read Reporting
        Configuration; another client command is UNSUP_CLUSTER_COMMAND, another global one
        UNSUP_GENERAL_COMMAND; a server's frame is left alone. A command sent to a group or
        a broadcast is acted on without a response (as the endpoint's Read Attributes)."""
        if msg.from_server:
            return Step()
        answer = self._answers.get((msg.is_cluster_command, msg.command_id))
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
        """Request Fast Poll Mode (D.3.3.3.1.4) -> its response (D.3.2.3.1.4)."""
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
        granted = FastPollGranted(source_nwk=msg.src_nwk, period=period, end_time=end, new=new)
        return Step(sends=(send,), events=(granted,))

    def configure(self, destination: Destination, record: Any, now: int) -> foundation.Status:
        """One Configure Reporting record (ZCL 2.5.7.1) for ``destination``: its status
        (2.5.8.1): UNSUPPORTED_ATTRIBUTE for an attribute the meter does not hold (or a
        "receive reports" record: the meter keeps no timeouts), INVALID_DATA_TYPE when the
        record's type is not the attribute's (2.5.7.3), else the reporting engine's."""
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
                )
            )
        return Step(sends=tuple(sends))
