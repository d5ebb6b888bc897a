"""Demand Response and Load Control over ZCL (SE D.2): the ESI's server, a HAN device's client.

The decisions are :mod:`zse.drlc`'s (:class:`~zse.drlc.DrlcClientCore`,
:class:`~zse.drlc.DrlcServerCore`); this module moves Load Control Event, Cancel, Cancel All,
Report Event Status and Get Scheduled Events over an endpoint, arms the client's one timer
(:class:`~zse.zcl.timer.Timer`: the core's deadlines and held-back reports) and,
given a :class:`~zse.store.Store`, persists both sides: every change is committed (the core's
snapshot plus the reports it produced, journalled before they are sent) before anything
leaves the device, and unsent reports are sent after a restart. ``clock()`` is ZigBee time.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import functools
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import zigpy.types as t
from zigpy.zcl import foundation

from zse.cbke import Credentials, sign, verify
from zse.cbke.ecdsa import VerifyingKey
from zse.cbke.suites import SUITE1
from zse.drlc.core import (
    REPORT_FIELDS_SHAPE,
    Abilities,
    ApplyLoadControl,
    DeviceView,
    DrlcClientCore,
    LoadControlEvent,
    Outgoing,
    StatusReport,
    StopLoadControl,
)
from zse.drlc.protocol import (
    ClientStep,
    DrlcClientProtocol,
    DrlcServerProtocol,
    ReportReceived,
    cancel_payload,
    esi_address,
    event_payload,
    report_payload,
    unsigned,
)
from zse.errors import InvalidFrame, InvalidPoint
from zse.records import BOOL, STR, U16, Fields, Int, ListOf, RecordError, check, load_each
from zse.se.ids import DRLC, DrlcAttribute, DrlcServerCommand
from zse.se.types import SignatureType
from zse.store import Batch, Store, write_at_stop
from zse.time.service import system_clock
from zse.zcl.codec import refusal
from zse.zcl.delivery import Destination, device_name, device_names
from zse.zcl.endpoint import ZclPort, carry_out
from zse.zcl.events import STOP_WAIT, EventStream, Untold
from zse.zcl.frame import Step as ProtocolStep
from zse.zcl.frame import ZclMessage
from zse.zcl.timer import Timer

__all__ = [
    "DRLC",
    "REPORT_DELAY_MAX",
    "STEP_RETRY",
    "DrlcClient",
    "DrlcServer",
    "ReportReceived",
    "ReportSent",
    "cancel_payload",
    "event_payload",
    "signature_for",
]

LOGGER = logging.getLogger(__name__)

#: Seconds after which a device's step due (an event starting, ending, ...) whose store write
#: failed is taken again (zse's choice, as the meter's supply changes: a start or an end is
#: late by at most this while the store recovers; undone, it waited for the next input).
STEP_RETRY: Final = 30


@dataclass(frozen=True, kw_only=True)
class ReportSent:
    """A client's Report Event Status (SE D.2.3.3.1) left for its ESIs (``"<nwk>:<endpoint>"``
    each): what the device told the utility, received, started, opted out... (``on_report``)."""

    report: StatusReport
    esis: tuple[str, ...]


_REPORT_EVENT_STATUS = DrlcServerCommand.REPORT_EVENT_STATUS
# Client attribute ids and ZCL types (D.2.3.2).
_UINT8 = 0x20
_BITMAP16 = 0x19
_RANDOMIZATION_MAX = 60  # minutes, StartRandomizationMinutes / DurationRandomizationMinutes
#: attribute id -> (core attribute, ZCL type, largest value accepted) (D.2.3.2.1-4).
_CLIENT_ATTRIBUTES = {
    DrlcAttribute.UTILITY_ENROLLMENT_GROUP: ("utility_enrollment_group", _UINT8, 0xFF),
    DrlcAttribute.START_RANDOMIZATION_MINUTES: (
        "start_randomization_minutes",
        _UINT8,
        _RANDOMIZATION_MAX,
    ),
    DrlcAttribute.DURATION_RANDOMIZATION_MINUTES: (
        "duration_randomization_minutes",
        _UINT8,
        _RANDOMIZATION_MAX,
    ),
    DrlcAttribute.DEVICE_CLASS_VALUE: ("device_class", _BITMAP16, 0xFFFF),
}
#: Devices' verifying keys a DRLC server keeps prepared (a few kilobytes each), the least
#: recently used dropped first: more than a HAN's devices.
VERIFYING_KEYS = 1024
#: The largest random delay before a Report Event Status, seconds (``report_delay=``).
REPORT_DELAY_MAX = 5.0


def signature_for(report: StatusReport, credentials: Credentials | None) -> tuple[int, bytes]:
    """Signature type and signature of a report (D.2.3.3.1.1.10-11): ECDSA with AES-MMO by the
    device's CBKE key when it has suite 1 credentials, else type 0x00 and 42 bytes of 0xFF
    (a suite 2 signature is 72 bytes and does not fit the field)."""
    if credentials is None or credentials.suite is not SUITE1:
        return unsigned(report)
    ecdsa = SignatureType.ECDSA
    return ecdsa, sign(SUITE1, credentials.private_key, report.signed_bytes(ecdsa))


def _report_payload(report: StatusReport, credentials: Credentials | None) -> bytes:
    return report_payload(report, *signature_for(report, credentials))


class DrlcClient:
    """A HAN device's DRLC client (SE D.2.3) on an endpoint.

    The application gets :class:`~zse.drlc.ApplyLoadControl` / :class:`~zse.drlc.StopLoadControl`
    through :meth:`on_event` and :meth:`events`, and may :meth:`opt_out` / :meth:`opt_in`.
    ``abilities`` (or ``applies``) say what the device does with an event
    (:class:`~zse.drlc.Abilities`); each action's ``applied`` is what its reports carry.
    Reports are signed with ``credentials`` (suite 1) when given, or by ``signer`` (async:
    the signed bytes -> the 42-byte signature) when a radio holds the suite-1 private key
    (an EmberZNet NCP's ``dsaSign``). With a ``store`` the table
    and the client attributes the ESI wrote survive restarts; ``namespace`` defaults to
    ``drlc.client/<endpoint id>``. The ESI may write the four client attributes (D.2.3.2);
    a write changes the targeting and randomization of the events received afterwards, once
    it is committed to the store (a commit that fails is FAILURE, nothing changed); a Write
    Attributes Undivided frame is committed as one record, all of it or none (ZCL 2.5.4.3).
    ``report_delay`` (seconds, at most :data:`REPORT_DELAY_MAX`; 0 = off) holds each Report
    Event Status back by a delay drawn from ``rng`` in ``[0, report_delay]``, order kept.
    """

    def __init__(
        self,
        endpoint: ZclPort,
        *,
        server_nwk: int = 0x0000,
        server_ep: int,
        device_class: int,
        utility_enrollment_group: int = 0,
        start_randomization_minutes: int = 30,
        duration_randomization_minutes: int = 0,
        table_size: int = 3,
        applies: Iterable[str] | None = None,
        abilities: Abilities | None = None,
        clock: Callable[[], int] = system_clock,
        rng: random.Random | None = None,
        credentials: Credentials | None = None,
        signer: Callable[[bytes], Awaitable[bytes]] | None = None,
        store: Store | None = None,
        namespace: str | None = None,
        report_delay: float = 0.0,
    ) -> None:
        if not 0 <= report_delay <= REPORT_DELAY_MAX:
            raise ValueError(f"report_delay must be 0..{REPORT_DELAY_MAX} s, got {report_delay}")
        self.endpoint = endpoint
        self.report_delay = report_delay
        self.server_nwk = server_nwk
        self.server_ep = server_ep
        self.clock = clock
        self.credentials = credentials
        self.signer = signer
        #: signatures the ``signer`` made, by report, until the report leaves
        self._signed: dict[StatusReport, bytes] = {}
        self.store = store
        self.namespace = namespace or f"drlc.client/{endpoint.endpoint_id}"
        self.core = DrlcClientCore(
            device_class=device_class,
            utility_enrollment_group=utility_enrollment_group,
            start_randomization_minutes=start_randomization_minutes,
            duration_randomization_minutes=duration_randomization_minutes,
            table_size=table_size,
            applies=applies,
            abilities=abilities,
            rng=rng,
        )
        self.protocol = DrlcClientProtocol(
            self.core,
            sign=self._signature,
            report_delay=report_delay,
        )
        self._stream: EventStream[ApplyLoadControl | StopLoadControl] = EventStream()
        self.on_event = self._stream.on_event
        self.events = self._stream.events
        self._reports: EventStream[ReportSent] = EventStream()
        #: ``on_report(callback)``: each :class:`ReportSent`, once it has left.
        self.on_report = self._reports.on_event
        self._outbox = self.protocol.outbox
        self._lock = asyncio.Lock()
        self._timer = Timer("DRLC client timer", logger=LOGGER)
        self._timer.add(
            self.protocol, self._settle, clock=self.clock, lock=self._lock, retry=STEP_RETRY
        )
        self._timer.add(self._outbox, self._flush, lock=self._lock)
        self._remove: Callable[[], None] | None = None
        #: The table as the store holds it (loaded, then each commit's): a step whose write
        #: is not carried out is undone to it.
        self._stored: dict[str, Any] = self.core.snapshot()

    async def start(self, *, get_scheduled_events: bool = True) -> None:
        """Serve the cluster, restore the table, send what was left unsent, resume running
        events, start the timer and ask the ESI for its scheduled events (D.2.3.4.4)."""
        if self.store is not None:
            written = await self.store.load_with(self.namespace, self._load_attributes)
            for name, value in written.items():
                setattr(self.core, name, value)
        self._publish_attributes()
        if self.store is not None:
            # The table and the reports owed first: a frame taken before they are loaded
            # would meet an empty table (a finished event run again, its reports repeated).
            await self.store.load_with(self.namespace, self._load_table)
            self._stored = copy.deepcopy(self.core.snapshot())
            for seq, outgoing in await self.store.unreported_with(self.namespace, _outgoing):
                self._outbox.add(outgoing, seq=seq, now=asyncio.get_running_loop().time())
        self._remove = self.endpoint.add_handler(DRLC, self._on_message)
        for action in self.core.resume():
            self._stream.emit(action)
        async with self._lock:
            await self._flush()
        await self._run(self.protocol.handle_timeout)
        self._timer.start()
        if get_scheduled_events:
            await self.get_scheduled_events()

    def _load_attributes(
        self, records: dict[str, Any], on_bad: Callable[[RecordError], None]
    ) -> dict[str, int]:
        """The client attributes the ESI wrote (record ``attributes``), checked (D.2.3.2)."""
        written: dict[str, int] = {}

        def load(_: str, value: Any) -> None:
            check(value, _ATTRIBUTES_SHAPE)
            written.update(value)

        load_each(
            [(k, v) for k, v in records.items() if k == "attributes"],
            load,
            namespace=self.namespace,
            on_bad=on_bad,
        )
        return written

    def _load_table(self, records: dict[str, Any], on_bad: Callable[[RecordError], None]) -> None:
        """The event table (record ``table``); a bad one is handed over and the table starts
        empty (Get Scheduled Events at start asks the ESI for its events again)."""
        if "table" in records:
            try:
                self.core.restore(records["table"], namespace=self.namespace, key="table")
            except RecordError as exc:
                on_bad(exc)

    async def stop(self) -> None:
        """Stop the timer and stop serving (the table stays in the store)."""
        if self._remove is not None:
            self._remove()
            self._remove = None
        await self._timer.stop()

    def _publish_attributes(self) -> None:
        """Publish the client attributes, writable by the ESI (D.2.3.2)."""
        for attr, (name, type_id, _) in _CLIENT_ATTRIBUTES.items():
            self.endpoint.set_attribute(DRLC, attr, getattr(self.core, name), type_id)
            self.endpoint.set_writable(
                DRLC,
                attr,
                check=_RANGE_CHECKS[attr],
                on_write=functools.partial(self._written, name),
            )
        self.endpoint.set_undivided_commit(DRLC, self._written_undivided)

    async def _written(self, name: str, value: int) -> None:
        """Write Attributes' ``on_write``: the ESI wrote a client attribute; it is committed
        with the table's namespace, then events received from now on use it (a commit that
        fails raises: FAILURE, the core, the endpoint and the store keep the value before)."""
        async with self._lock:
            await self._commit_attributes({name: int(value)})
        LOGGER.info("DRLC client attribute %s written: %d", name, value)

    async def _written_undivided(self, records: Sequence[tuple[int, Any]]) -> list[None]:
        """Write Attributes Undivided's commit (ZCL 2.5.4.3): the frame's records, in its
        order, committed as one record, then applied and served, all of them; a commit that
        fails raises (FAILURE for each record), nothing applied or served."""
        changes = {
            _CLIENT_ATTRIBUTES[DrlcAttribute(attr)][0]: int(value) for attr, value in records
        }
        async with self._lock:
            await self._commit_attributes(changes)
            self._serve_attributes(changes)
        LOGGER.info("DRLC client attributes written (undivided): %s", changes)
        return [None] * len(records)

    async def _commit_attributes(self, changes: dict[str, int]) -> None:
        """Commit the client attributes with ``changes`` (one record holds the four), then
        apply them to the core; held under the lock. Nothing is applied when it raises, but
        for a commit cancelled during its transaction, which the store carries out
        (:attr:`Batch.landed <zse.store.Batch.landed>`): applied and served, as stored (the
        next write, made from the old values, took the stored one back)."""
        if self.store is not None:
            written = {n: getattr(self.core, n) for n, _, _ in _CLIENT_ATTRIBUTES.values()}
            written.update(changes)
            batch = Batch().put(self.namespace, "attributes", written)
            try:
                await self.store.commit(batch)
            except BaseException:
                if batch.landed is not None:
                    self._apply_attributes(changes)
                    self._serve_attributes(changes)
                raise
        self._apply_attributes(changes)

    def _apply_attributes(self, changes: dict[str, int]) -> None:
        for name, value in changes.items():
            setattr(self.core, name, value)

    def _serve_attributes(self, changes: dict[str, int]) -> None:
        for attr, (name, type_id, _) in _CLIENT_ATTRIBUTES.items():
            if name in changes:
                self.endpoint.set_attribute(DRLC, attr, changes[name], type_id)

    async def get_scheduled_events(self, *, start_time: int = 0, number_of_events: int = 0) -> None:
        """Ask the ESI for its events (D.2.3.3.2); call it after a rejoin too. The events
        arrive as Load Control Events and go through the table like any other."""
        step = self.protocol.get_scheduled_events(
            Destination.device(self.server_nwk, self.server_ep),
            start_time=start_time,
            number_of_events=number_of_events,
        )
        await carry_out(self.endpoint, step, self._stream.emit)

    async def opt_out(self, issuer_event_id: int) -> None:
        """The user opts out (status 0x04 now while the event runs, at its start before it);
        raises OptOutRefused or UnknownEvent."""
        await self._run(lambda now: self.protocol.opt_out(issuer_event_id, now=now))

    async def opt_in(self, issuer_event_id: int) -> None:
        """The user opts back in (status 0x05); raises UnknownEvent."""
        await self._run(lambda now: self.protocol.opt_in(issuer_event_id, now=now))

    async def _on_message(self, msg: ZclMessage) -> foundation.Status | None:
        try:
            command = self.protocol.decode(msg)
        except InvalidFrame as exc:
            LOGGER.warning("bad DRLC command from 0x%04X: %s", msg.src_nwk, exc)
            return refusal(exc)
        if command is None:  # a client's frame: the protocol answers it
            return self.protocol.receive(msg, command, self.clock()).status
        step = await self._run(lambda now: self.protocol.receive(msg, command, now))
        return step.status

    async def _run(self, decide: Callable[[int], ClientStep]) -> ClientStep:
        """Let the protocol core decide, then :meth:`_settle` its step and re-arm the timer."""
        try:
            async with self._lock:
                step = decide(self.clock())
                await self._settle(step)
        finally:  # a change kept as stored (cancelled during its transaction) is timed too
            self._timer.update()
        return step

    async def _settle(self, step: ClientStep) -> None:
        """With the lock held (an input's or the timer's): commit the step, send its reports,
        tell the application, then retry reports an earlier send left queued."""
        if step.reports or self.store is not None:
            await self._commit(step)
        for action in step.events:
            self._stream.emit(action)
        if self._outbox.queue:
            await self._flush()

    async def _commit(self, step: ClientStep) -> None:
        """Journal the table and the step's reports (one transaction), queue the reports in
        the outbox, and send what is due. A write not carried out (failed, or cancelled
        before its transaction began) undoes the step: the table is the stored one again,
        so the step is taken again (the timer's at once; an input's when it comes again),
        its reports made then (they were neither sent nor kept, the next commit writing the
        table without them)."""
        seqs: list[int | None] = [None] * len(step.reports)
        if self.store is not None:
            table = self.core.snapshot()
            batch = Batch().put(self.namespace, "table", table)
            for outgoing in step.reports:
                batch.append(
                    self.namespace,
                    "report",
                    {"report": outgoing.report.to_fields(), "esis": list(outgoing.esis)},
                )
            try:
                seqs = list(await self.store.commit(batch))
            except BaseException:
                if batch.landed is not None:  # cancelled during its transaction: stored
                    self._stored = copy.deepcopy(table)
                    self._queue(step, list(batch.landed))
                    for action in step.events:
                        self._stream.emit(action)
                else:
                    table = copy.deepcopy(self._stored)
                    self.core.restore(table, namespace=self.namespace, key="table")
                raise
            self._stored = copy.deepcopy(table)
        self._queue(step, seqs)
        await self._flush()

    def _queue(self, step: ClientStep, seqs: Sequence[int | None]) -> None:
        """Queue the step's reports, journaled as ``seqs``, in the outbox. A commit cancelled
        during its transaction, which the store carries out (:attr:`Batch.landed
        <zse.store.Batch.landed>`), has them queued and its actions told before it raises
        (they waited for a restart, the actions never told)."""
        for seq, outgoing in zip(seqs, step.reports, strict=True):
            self._outbox.add(outgoing, seq=seq, now=asyncio.get_running_loop().time())

    def _signature(self, report: StatusReport) -> tuple[int, bytes]:
        """The report's signature pair: the ``signer``'s, made before the report left
        (:meth:`_sign_first`), else by the host's suite-1 credentials, else none."""
        signature = self._signed.get(report)
        if signature is not None:
            return SignatureType.ECDSA, signature
        return signature_for(report, self.credentials)

    async def _sign_first(self) -> None:
        """With a ``signer`` (a radio holding the suite-1 key): sign the first queued report
        before it leaves (ECDSA over its first ten fields, SE D.2.3.3.1.1.11)."""
        if self.signer is None or not self._outbox.queue:
            return
        report = self._outbox.queue[0][1].report
        if report not in self._signed:
            data = report.signed_bytes(SignatureType.ECDSA)
            self._signed[report] = await self.signer(data)

    async def _flush(self, now: float = 0.0) -> None:
        """Send queued reports in order; one that cannot be sent (or signed) waits for the
        next flush (the next input or core deadline), one whose random delay is not over (by
        the loop's clock, or ``now`` from the timer) for the timer."""
        outbox = self._outbox
        outbox.retry()
        while True:
            try:
                await self._sign_first()
                step = outbox.due(max(now, asyncio.get_running_loop().time()))
                if step is None:
                    break
                await carry_out(self.endpoint, step, self._stream.emit)
            except Exception as exc:  # the radio's errors vary; retry at the next flush
                LOGGER.warning("Report Event Status not sent (%s); will retry", exc)
                outbox.failed()
                return
            outgoing = outbox.queue[0][1]
            self._signed.pop(outgoing.report, None)
            seq = outbox.sent()
            if seq is not None and self.store is not None:
                await self.store.mark_reported(seq)
            self._reports.emit(ReportSent(report=outgoing.report, esis=outgoing.esis))


_ATTRIBUTES_SHAPE = Fields(
    {}, {name: Int(0, largest) for name, _, largest in _CLIENT_ATTRIBUTES.values()}
)
_OUTGOING_SHAPE = Fields({"report": REPORT_FIELDS_SHAPE, "esis": ListOf(STR)})


def _outgoing(value: Any) -> Outgoing:
    """A journalled report (what :meth:`DrlcClient._commit` appends), checked."""
    check(value, _OUTGOING_SHAPE)
    for esi in value["esis"]:
        nwk, ep = esi_address(esi)  # ValueError if it is not "<nwk>:<endpoint>"
        if not (0 <= nwk <= 0xFFFF and 0 <= ep <= 0xFF):
            raise ValueError("not an ESI address")
    return Outgoing(report=StatusReport.from_dict(value["report"]), esis=tuple(value["esis"]))


#: The journal kind of a report the ESI recorded and has still to tell the application.
_TOLD = "told"
_TOLD_SHAPE = Fields({"device": STR, "nwk": U16, "report": REPORT_FIELDS_SHAPE, "signed": BOOL})


def _told_record(received: ReportReceived) -> dict[str, Any]:
    """The ``"told"`` journal entry of a new report: committed with the report's record,
    marked once the application was told (:meth:`DrlcServer.tell_untold`)."""
    return {
        "device": received.device,
        "nwk": received.source_nwk,
        "report": received.report.to_fields(),
        "signed": received.signed,
    }


def _received(value: Any) -> ReportReceived:
    """A journalled ``"told"`` entry (:func:`_told_record`), checked: the event to tell."""
    check(value, _TOLD_SHAPE)
    return ReportReceived(
        device=value["device"],
        source_nwk=value["nwk"],
        report=StatusReport.from_dict(value["report"]),
        signed=value["signed"],
        new=True,
    )


def _fresh(event: Any) -> bool:
    """A new report: one the application is told once (journalled until then)."""
    return isinstance(event, ReportReceived) and event.new


def _in_range(largest: int, value: int) -> foundation.Status | None:
    """A written client attribute's range check (D.2.3.2): INVALID_VALUE above it."""
    return foundation.Status.INVALID_VALUE if value > largest else None


#: Each client attribute's range check, shared by every client (one set, not one per device).
_RANGE_CHECKS = {
    attr: functools.partial(_in_range, largest)
    for attr, (_, _, largest) in _CLIENT_ATTRIBUTES.items()
}


class DrlcServer:
    """The ESI's DRLC server (SE D.2.2) on an endpoint: the shell of
    :class:`~zse.drlc.protocol.DrlcServerProtocol`.

    ``public_key(ieee)`` returns a device's static public key (from its certificate, see
    :meth:`zse.cbke.ImplicitCertificate.reconstruct_public_key`) to verify signed reports;
    a signed report that fails verification is not recorded. With a ``store`` the events and
    reports survive restarts (namespace ``drlc.server/<endpoint id>`` by default), and each new
    report is told to the application once: a ``"told"`` journal entry is committed with the
    report's record and marked once the listeners have it in hand (what a listener returns
    finished: :mod:`zse.zcl.events`); one not marked (a listener failed, the process killed
    in between) is told after the next start. Each
    device's key is decoded, validated and prepared once (:class:`~zse.cbke.ecdsa.VerifyingKey`)
    for all its reports.
    """

    def __init__(
        self,
        endpoint: ZclPort,
        *,
        clock: Callable[[], int] = system_clock,
        public_key: Callable[[t.EUI64], bytes | None] | None = None,
        store: Store | None = None,
        namespace: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.clock = clock
        self.public_key = public_key
        self.store = store
        self.namespace = namespace or f"drlc.server/{endpoint.endpoint_id}"
        #: ZigBee group -> its members, as the application said (:meth:`set_group_members`)
        self._group_members: dict[int, list[str]] = {}
        self.protocol = DrlcServerProtocol(verify=self._verified)
        self.core = self.protocol.core
        self._stream: EventStream[ReportReceived] = EventStream()
        self.on_event = self._stream.on_event
        self.events = self._stream.events
        self._lock = asyncio.Lock()
        self._remove: Callable[[], None] | None = None
        self._verifying: dict[bytes, VerifyingKey] = {}
        #: New reports not yet told (journal seq, None without a store), oldest first; held
        #: until :meth:`tell_untold` when :meth:`start` was asked not to tell.
        self._untold: Untold[ReportReceived] = Untold(self._stream, self._mark_told)
        #: New reports whose write failed or was cancelled before its transaction (their
        #: records: :meth:`DrlcServerCore.unsaved <zse.drlc.core.DrlcServerCore.unsaved>`),
        #: journalled with the next commit.
        self._unsaved: list[ReportReceived] = []

    @property
    def unknown_reports(self) -> int:
        """Report Event Status refused: event never issued here."""
        return self.protocol.unknown_reports

    async def start(self, *, tell: bool = True) -> None:
        """Restore the store's state, serve the cluster, and tell the application the new
        reports recorded before a restart but never told (in the order they came).

        ``tell=False`` holds them, and the new reports received from now on, until
        :meth:`tell_untold`: for an application whose listeners are attached after the start
        (the ESI tells once its first listener is attached)."""
        untold: list[tuple[int | None, ReportReceived]] = []
        if self.store is not None:
            legacy = await self.store.load_with(self.namespace, self._load)
            if legacy:
                # Earlier zse kept one "state" record, rewritten whole on every change: move it
                # to one record per event and per report, in one transaction.
                batch = Batch().delete(self.namespace, "state")
                for key, value in self.core.records().items():
                    batch.put(self.namespace, key, value)
                await self.store.commit(batch)
            self.core.changes()  # what was just loaded is stored already
            await self.store.prune(self.namespace)  # the reports told before
            # Read before the cluster is served: a report taken from now on is journalled
            # after this read, and told once, by the live path or in order after these.
            untold = [*await self.store.unreported_with(self.namespace, _received)]
        self._untold.hold(untold)
        self._remove = self.endpoint.add_handler(DRLC, self._on_message)
        if tell:
            await self.tell_untold()

    def hold_untold(self) -> None:
        """Hold the events from now on until :meth:`tell_untold` (:meth:`Untold.pause
        <zse.zcl.events.Untold.pause>`: the ESI has no listener, or stops)."""
        self._untold.pause()

    async def tell_untold(self) -> None:
        """Tell the application (:meth:`on_event`, :meth:`events`) the new reports not yet
        told, oldest first, each marked told in the store once its listeners have it in hand;
        from then on each new report is told as it comes. A report told and then not marked
        (the process killed in between) is told again after the next start."""
        await self._untold.tell_untold()

    async def _mark_told(self, *seqs: int) -> None:
        if self.store is not None:
            await self.store.mark_reported(*seqs)

    async def stop(self, *, bound: float = STOP_WAIT) -> None:
        """Stop serving the cluster; commit the changes a write that failed or was cancelled
        before its transaction left, the journal entries of their reports with them
        (:func:`~zse.store.write_at_stop`: one commit, a failure logged; the reports are told
        after the next start, once), and wait for the reports a write stored after its
        handler was cancelled and that are being told (:meth:`Untold.stop
        <zse.zcl.events.Untold.stop>`: each marked, not told again after the restart).
        Again: nothing more.
        ``bound``: the longest wait for them (the ESI's stop shares one STOP_WAIT)."""
        if self._remove is not None:
            self._remove()
            self._remove = None
        self._untold.close()
        async with self._lock:
            await write_at_stop(self._save, "the DRLC server")
        await self._untold.stop(bound)

    def _load(self, records: dict[str, Any], on_bad: Callable[[RecordError], None]) -> bool:
        """Load the core, bad records handed to ``on_bad``; True if it came from the
        single ``state`` record of earlier zse (to be moved to one record per item)."""
        legacy = records.get("state")
        if legacy is not None:
            try:
                self.core.restore(legacy, namespace=self.namespace, key="state")
            except RecordError as exc:
                on_bad(exc)
            else:
                return True
        self.core.load_records(records, namespace=self.namespace, on_bad=on_bad)
        return False

    async def _save(
        self, told: Sequence[ReportReceived] = ()
    ) -> list[tuple[int | None, ReportReceived]]:
        """Commit the records the core changed (one per event or report touched) and a
        ``"told"`` journal entry per report in ``told``, in one transaction; the reports so
        journalled with their sequence numbers (None without a store), for the caller to
        tell. A commit cancelled during its transaction, which the store carries out
        (:attr:`Batch.landed <zse.store.Batch.landed>`), has the reports told in a task
        (:meth:`Untold.tell_soon <zse.zcl.events.Untold.tell_soon>`) before it raises: they
        were told only after the next restart. One that fails or is cancelled before its
        transaction is written with the next commit, its reports journalled then, first
        among those returned (zse's choice, as the Messaging and Device Management servers'
        changes: held and served, they were left out of every later commit, and a report
        taken, its device's repeat a duplicate, was never told and lost at the restart)."""
        if self.store is None:
            self.core.discard_changes()  # nowhere to store them: not built for nothing
            return [(None, received) for received in told]
        changes = self.core.changes()
        journalled, self._unsaved = [*self._unsaved, *told], []
        batch = Batch()
        for key, value in changes.items():
            if value is None:  # a report status past the per-device bound
                batch.delete(self.namespace, key)
            else:
                batch.put(self.namespace, key, value)
        for received in journalled:
            batch.append(self.namespace, _TOLD, _told_record(received))
        if not len(batch):
            return []
        try:
            seqs = await self.store.commit(batch)
        except BaseException as exc:
            if batch.landed is None:  # failed or cancelled before: with the next commit
                self.core.unsaved(changes)
                self._unsaved = journalled
            elif isinstance(exc, asyncio.CancelledError):  # stored all the same
                self._untold.tell_soon(zip(batch.landed, journalled, strict=True))
            raise
        return [*zip(seqs, journalled, strict=True)]

    async def _decided(self, decide: Callable[[int], ProtocolStep]) -> ProtocolStep:
        """Let the protocol core decide at the clock's time and commit what it changed; the
        caller carries the step out once the lock is released."""
        async with self._lock:
            step = decide(self.clock())
            self._untold.tell_soon(await self._save())  # reports an earlier write left
        return step

    async def _carry_out(self, step: ProtocolStep) -> foundation.Status | None:
        return await carry_out(self.endpoint, step, self._stream.emit)

    def set_group_members(self, group: int, members: Iterable[t.EUI64 | str]) -> None:
        """Which devices are in ZigBee group ``group`` (EUI-64s as zigpy EUI64s or in any
        printed spelling), for the events sent to it from now on; an empty ``members`` says
        the group has none: an event sent to it is answered to no one (but its expected
        devices). Without it the members are taken from the zigpy application's group
        table when zigpy has the group with members, which holds only the memberships
        zigpy made or scanned (docs/drlc.md); otherwise they are not known and an event
        sent to the group is answered to every device that asks Get Scheduled Events."""
        self._group_members[group] = device_names(members)

    def _recipients(self, to: Destination | None) -> list[str] | None:
        """The devices a send to ``to`` reaches, when ``to`` is a ZigBee group of known
        members (:meth:`set_group_members`, perhaps none; else zigpy's group table when it
        has the group with members); None otherwise: everyone."""
        if to is None or to.mode != t.AddrMode.Group:
            return None
        members = self._group_members.get(to.address)
        if members is not None:
            return members
        groups = getattr(getattr(self.endpoint, "app", None), "groups", None)
        group = groups.get(to.address) if isinstance(groups, dict) else None
        if not group:  # zigpy has no such group, or knows none of its members
            return None
        return sorted({device_name(ieee) for ieee, _ in group})  # (EUI-64, endpoint) -> ep

    async def send_event(self, issuer_event_id: int, to: Destination) -> None:
        """Send a stored event (Load Control Event, D.2.2.3.1) as it was published, e.g. once
        per device of a group the ESI addresses one by one; an event for "now" whose start
        has passed goes with the absolute start it was given. A send to a ZigBee group
        records its members: Get Scheduled Events answers the event to them, not to every
        device that asks."""
        recipients = self._recipients(to)
        step = await self._decided(
            lambda now: self.protocol.send_event(
                issuer_event_id, to, now=now, recipients=recipients
            )
        )
        await self._carry_out(step)

    def resent(
        self, issuer_event_id: int, *, device: t.EUI64 | str | None = None
    ) -> LoadControlEvent | None:
        """The stored event as it is sent once more now (:meth:`resend_event`): what Get
        Scheduled Events answers for it, a start "now" as the absolute start it was given;
        None once it is over at the ESI (its duration ran out, or it was cancelled, for
        ``device`` alone too). :class:`~zse.drlc.UnknownEvent` if this ESI never issued it."""
        name = None if device is None else device_names([device])[0]
        return self.core.resent(issuer_event_id, now=self.clock(), device=name)

    async def resend_event(
        self, issuer_event_id: int, to: Destination, *, device: t.EUI64 | str | None = None
    ) -> bool:
        """Send a stored event once more to a device that missed it: its absolute start
        (and its later cancellation, if one is recorded, for ``device`` its own too); False,
        sending nothing, once it is over at the ESI (:meth:`DrlcServerProtocol.resend_event`)."""
        recipients = self._recipients(to)
        name = None if device is None else device_names([device])[0]
        step = await self._decided(
            lambda now: self.protocol.resend_event(
                issuer_event_id, now=now, to=to, recipients=recipients, device=name
            )
        )
        if not step.sends:
            return False
        await self._carry_out(step)
        return True

    async def send_cancel(
        self,
        issuer_event_id: int,
        to: Destination,
        *,
        cancel_control: int = 0,
        effective_time: int = 0,
    ) -> None:
        """Send Cancel Load Control Event (D.2.2.3.2) for a stored event, without recording
        it again (:meth:`cancel` records it)."""
        step = self.protocol.send_cancel(
            issuer_event_id, to, cancel_control=cancel_control, effective_time=effective_time
        )
        await self._carry_out(step)

    async def publish(
        self,
        event: LoadControlEvent,
        *,
        dst: int | None = None,
        dst_ep: int = 0xFF,
        dst_mode: t.AddrMode = t.AddrMode.NWK,
        expected: Iterable[t.EUI64 | str] = (),
        recipients: Iterable[t.EUI64 | str] | None = None,
    ) -> None:
        """Store ``event`` and send it to a device, a ZigBee group (``dst_mode=Group``) or,
        with its utility enrollment group set, as a broadcast (``dst=0xFFFD``,
        ``dst_mode=Broadcast``). ``expected``: the devices that should answer (zigpy EUI64s
        or EUI-64s in any printed spelling; :meth:`never_answered` names them as reports do,
        ``00:0d:6f:00:0a:00:00:01``). A ZigBee group's members are recorded as the event's
        recipients (:meth:`send_event`). Stored only (no ``dst``), ``recipients`` names the
        devices it is for besides ``expected`` (a registry group's members, perhaps none):
        Get Scheduled Events (D.2.2.4.1) answers it to them and no one else."""
        expected = device_names(expected)
        to = _destination(dst, dst_ep, dst_mode)
        if to is None:
            recipients = None if recipients is None else device_names(recipients)
        else:
            recipients = self._recipients(to)
        step = await self._decided(
            lambda now: self.protocol.publish(
                event, now=now, expected=expected, to=to, recipients=recipients
            )
        )
        await self._carry_out(step)

    async def republish(
        self,
        issuer_event_id: int,
        *,
        dst: int,
        dst_ep: int = 0xFF,
        dst_mode: t.AddrMode = t.AddrMode.NWK,
    ) -> LoadControlEvent:
        """Send an event again: start "now" and the remaining duration once it has begun."""
        to = Destination.of(dst, dst_ep, dst_mode)
        recipients = self._recipients(to)
        async with self._lock:
            event, step = self.protocol.republish(
                issuer_event_id, now=self.clock(), to=to, recipients=recipients
            )
            self._untold.tell_soon(await self._save())  # reports an earlier write left
        await self._carry_out(step)
        return event

    async def cancel(
        self,
        issuer_event_id: int,
        *,
        cancel_control: int = 0,
        effective_time: int = 0,
        dst: int | None = None,
        dst_ep: int = 0xFF,
        dst_mode: t.AddrMode = t.AddrMode.NWK,
        devices: Iterable[t.EUI64 | str] | None = None,
    ) -> None:
        """Record and send Cancel Load Control Event (D.2.2.3.2); ``devices``: those it is
        sent to, when not everyone the event is for (:meth:`DrlcServerCore.cancel`)."""
        to = _destination(dst, dst_ep, dst_mode)
        names = None if devices is None else device_names(devices)

        def decide(now: int) -> ProtocolStep:
            self.core.cancel(issuer_event_id, effective_time=effective_time, now=now, devices=names)
            if to is None:
                return ProtocolStep()
            return self.protocol.send_cancel(
                issuer_event_id, to, cancel_control=cancel_control, effective_time=effective_time
            )

        step = await self._decided(decide)
        await self._carry_out(step)

    async def cancel_all(
        self,
        *,
        cancel_control: int = 0,
        dst: int | None = None,
        dst_ep: int = 0xFF,
        dst_mode: t.AddrMode = t.AddrMode.NWK,
    ) -> None:
        """Record and send Cancel All Load Control Events (D.2.2.3.3)."""
        to = _destination(dst, dst_ep, dst_mode)
        step = await self._decided(
            lambda now: self.protocol.cancel_all(cancel_control=cancel_control, now=now, to=to)
        )
        await self._carry_out(step)

    async def forget(self, device: t.EUI64 | str) -> list[int]:
        """Drop a de-provisioned ``device`` (a zigpy EUI64 or any printed spelling) from the
        recipients of every event held, committed before it returns: Get Scheduled Events
        (D.2.2.4.1) no longer answers it those events (:meth:`DrlcServerCore.forget`), and
        from the ZigBee groups' members the application gave (:meth:`set_group_members`).
        Returns the ids of the events changed."""
        name = device_names([device])[0]
        for group, members in self._group_members.items():
            self._group_members[group] = [m for m in members if m != name]
        async with self._lock:
            changed = self.core.forget(name)
            self._untold.tell_soon(await self._save())  # reports an earlier write left
        return changed

    # -- queries (the ESI's view) ------------------------------------------------------------

    def started(self, issuer_event_id: int) -> list[str]:
        """Devices that reported the event started."""
        return self.core.started(issuer_event_id)

    def opted_out(self, issuer_event_id: int) -> list[str]:
        """Devices whose user opted out."""
        return self.core.opted_out(issuer_event_id)

    def view(self, issuer_event_id: int) -> dict[str, DeviceView]:
        """Every device that reported on the event, with its statuses in order of time."""
        return self.core.view(issuer_event_id)

    def recipients(self, issuer_event_id: int) -> list[str] | None:
        """The devices the event is held for, named; None once sent to everyone
        (:meth:`DrlcServerCore.recipients`)."""
        return self.core.recipients(issuer_event_id)

    def never_answered(self, issuer_event_id: int) -> list[str]:
        """Expected devices that sent nothing about the event."""
        return self.core.never_answered(issuer_event_id)

    # -- requests from devices -----------------------------------------------------------------

    async def _on_message(self, msg: ZclMessage) -> foundation.Status | None:
        try:
            command = self.protocol.decode(msg)
        except InvalidFrame as exc:
            LOGGER.warning("bad DRLC command from 0x%04X: %s", msg.src_nwk, exc)
            return refusal(exc)
        async with self._lock:
            step = self.protocol.receive(msg, command, self.clock())
            fresh = [event for event in step.events if _fresh(event)]
            told = await self._save(fresh)
        # told once the step is carried out, in order (the new reports an earlier write left
        # first), each new one marked once in hand (Untold.tell: held instead before
        # tell_untold(), or from a pause that came meanwhile, a device's repeat with them)
        earlier = [received for _, received in told[: len(told) - len(fresh)]]
        journalled = iter(told)
        ordered = [next(journalled) if _fresh(e) else (None, e) for e in (*earlier, *step.events)]
        try:
            return await self._carry_out(dataclasses.replace(step, events=()))
        finally:  # stored: told even when the answer could not be sent
            await self._untold.tell(ordered)

    def _verified(self, msg: ZclMessage, report: StatusReport, signature: bytes) -> bool:
        """Whether a signed report verifies by the sender's public key (suite 1)."""
        if self.public_key is None or msg.src_ieee is None:
            return False
        key = self.public_key(msg.src_ieee)
        if key is None:
            return False
        prepared = self._verifying.pop(key, None)  # re-inserted last: most recently used
        if prepared is None:
            try:
                prepared = VerifyingKey(SUITE1, key)
            except InvalidPoint:
                return False
        self._verifying[key] = prepared
        while len(self._verifying) > VERIFYING_KEYS:
            del self._verifying[next(iter(self._verifying))]
        return verify(SUITE1, prepared, report.signed_bytes(SignatureType.ECDSA), signature)


def _destination(dst: int | None, dst_ep: int, dst_mode: t.AddrMode) -> Destination | None:
    """The services' ``dst`` / ``dst_ep`` / ``dst_mode`` arguments; None: send nothing."""
    return None if dst is None else Destination.of(dst, dst_ep, dst_mode)
