"""Price over ZCL (SE D.4): the ESI publishes and answers, a client keeps and acknowledges.

The asyncio shells of :mod:`zse.price.protocol`: they decode a Price frame with
:mod:`zse.price.wire`, hand it to the protocol core with the time and carry out the
:class:`~zse.zcl.frame.Step` it returns (:func:`zse.zcl.endpoint.carry_out`). The decisions
(what to answer, the Default Response status, whom to send to) are the core's; what applies
now and what is scheduled are :class:`zse.price.PriceSchedule`'s. ``clock()`` gives ZigBee
time (seconds since 2000-01-01 UTC); see :mod:`zse.time.service`. With a store, the server's
:class:`~zse.zcl.timer.Timer` deletes the records of what ended at its end (the core's
``next_deadline()``); the client arms no timer.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import functools
import logging
from collections.abc import Callable
from typing import Any, Final

import zigpy.types as t
from zigpy.zcl import foundation

from zse.errors import InvalidFrame
from zse.price.core import (
    BillingPeriod,
    Co2Value,
    ConsolidatedBill,
    PriceEvent,
    PriceSchedule,
    TariffCancellation,
    TariffInformation,
    Tariffs,
    TariffValue,
)
from zse.price.protocol import (
    CppEventResponded,
    CurrentPriceRequested,
    PriceAcknowledged,
    PriceClientProtocol,
    PriceReceived,
    PriceServerProtocol,
    PriceValue,
    PriceValueReceived,
    TariffCancelled,
    TariffReceived,
)
from zse.price.wire import Price
from zse.records import RecordError
from zse.se.ids import PRICE
from zse.se.types import CppAuth
from zse.store import Batch, Store
from zse.time.service import system_clock
from zse.zcl.codec import decode_command, refusal
from zse.zcl.delivery import Destination
from zse.zcl.endpoint import ZclPort, carry_out, request
from zse.zcl.events import EventStream
from zse.zcl.frame import Send, Step, ZclMessage
from zse.zcl.timer import Timer

__all__ = [
    "EXPIRY_RETRY",
    "PRICE",
    "CppEventResponded",
    "CurrentPriceRequested",
    "PriceAcknowledged",
    "PriceClient",
    "PriceReceived",
    "PriceServer",
    "PriceValue",
    "PriceValueReceived",
    "TariffCancelled",
    "TariffReceived",
]

LOGGER = logging.getLogger(__name__)

#: Seconds after a failed commit of what ended before it is tried again (zse's own choice).
EXPIRY_RETRY: Final = 60


def _step(
    protocol: PriceServerProtocol | PriceClientProtocol, msg: ZclMessage, now: Callable[[], int]
) -> Step:
    """What ``protocol`` decides for ``msg``: screened, else decoded with the wire and
    received (a payload that does not decode: MALFORMED_COMMAND; a command Price does not
    define: UNSUP_CLUSTER_COMMAND, ZCL 2.5.12)."""
    screened = protocol.screen(msg)
    if screened is not None:
        return screened
    try:
        command, _ = decode_command(Price, msg.command_id, msg.payload, from_server=msg.from_server)
    except InvalidFrame as exc:
        LOGGER.warning("bad Price command from 0x%04X: %s", msg.src_nwk, exc)
        return Step(status=refusal(exc))
    return protocol.receive(msg, command, now())


@dataclasses.dataclass(eq=False)
class _StoredEnds:
    """What the store holds, as a timed core: due when the first of it ends, the core's
    ``next_deadline()`` as it was at the last commit (a Get or a read that forgets what is
    over in memory does not move it)."""

    protocol: PriceServerProtocol
    due: int | None = None

    def next_deadline(self) -> int | None:
        return self.due

    def handle_timeout(self, now: int) -> int:
        self.protocol.handle_timeout(now)
        return now


class PriceServer:
    """The ESI's Price server (SE D.4.2): publishes prices and answers requests for them.

    ``on_event`` / ``events`` hear Price Acknowledgements and CPP Event Responses;
    ``on_request`` hears each Get
    Current Price (:class:`CurrentPriceRequested`: who asked and whether its receiver is on
    when idle, D.4.2.3.1.1), for a publishing policy of the application's.

    With a ``store`` (namespace ``"price.server/<endpoint id>"``) what is published and
    held (prices, block pricing and SE 1.2 values, tariffs with their matrix, thresholds and
    labels, the last Cancel Tariff) is committed before it is sent or answered, and
    :meth:`load` takes it back after a restart: one record each (:mod:`zse.price.records`),
    what is over or cancelled deleted in the same commit, a damaged record quarantined (a
    warning) and skipped. A commit that fails raises and changes nothing held. Between
    publications, what ends (a price at its start plus duration, a value or tariff when the
    next of its kind starts) is deleted at its end, in one commit, by the server's timer; a
    commit there that fails is logged (a warning) and tried again :data:`EXPIRY_RETRY`
    seconds later. The application's :attr:`PriceServerProtocol.attributes` are not stored
    (set them at start). :meth:`stop` ends the timer.
    """

    def __init__(
        self,
        endpoint: ZclPort,
        *,
        clock: Callable[[], int] = system_clock,
        store: Store | None = None,
        namespace: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.clock = clock
        self.store = store
        self.namespace = namespace or f"price.server/{endpoint.endpoint_id}"
        #: What the store holds (the records last committed or loaded).
        self._stored: dict[str, Any] = {}
        #: Held by a change while it is committed, and by a request while it is answered.
        self._lock = asyncio.Lock()
        self.protocol = PriceServerProtocol()
        self.schedule: PriceSchedule = self.protocol.schedule
        self._served: dict[int, object] = {}
        self._stream: EventStream[PriceAcknowledged | CppEventResponded] = EventStream()
        self.on_event = self._stream.on_event
        self.events = self._stream.events
        self._requests: EventStream[CurrentPriceRequested] = EventStream()
        self.on_request = self._requests.on_event
        self._ends = _StoredEnds(self.protocol)
        self._timer = Timer(
            "Price server: what ended not deleted", logger=LOGGER, level=logging.WARNING
        )
        self._timer.add(self._ends, self._expired, clock=clock, lock=self._lock, retry=EXPIRY_RETRY)

    async def load(self) -> None:
        """Take back what was published before a restart from the store (nothing without
        one); await it before :meth:`start`. A record that does not load is quarantined by
        the store (a warning naming it, never its content) and skipped; what ended while the
        process was down is deleted from the store."""
        if self.store is None:
            return
        async with self._lock:
            now = self.clock()
            loaded = await self.store.load_with(self.namespace, functools.partial(self._load, now))
            self._stored = loaded
            await self._write(self.protocol.records(now))
            self._committed()

    def _load(
        self, now: int, stored: dict[str, Any], on_bad: Callable[[RecordError], None]
    ) -> dict[str, Any]:
        """Restore the records; those that loaded (what the store still holds after the
        bad ones are set aside)."""
        bad: list[RecordError] = []

        def set_aside(error: RecordError) -> None:
            bad.append(error)
            on_bad(error)

        self.protocol.restore(stored, now, namespace=self.namespace, on_bad=set_aside)
        return {key: value for key, value in stored.items() if key not in {e.key for e in bad}}

    async def _write(self, records: dict[str, Any], batch: Batch | None = None) -> None:
        """Commit what changed from the records stored to ``records``, in one transaction
        (``batch``)."""
        assert self.store is not None
        batch = Batch() if batch is None else batch
        changed = False
        for key in self._stored.keys() - records.keys():
            batch.delete(self.namespace, key)
            changed = True
        for key, value in records.items():
            if self._stored.get(key) != value:
                batch.put(self.namespace, key, value)
                changed = True
        if changed:
            try:
                await self.store.commit(batch)
            except BaseException:
                if batch.landed is not None:  # cancelled during its transaction: stored
                    self._stored = records
                raise
        self._stored = records

    async def _change(self, change: Callable[[PriceServerProtocol, int], Step]) -> Step:
        """``change`` made to the protocol at now, committed first with a store: tried on a
        copy, whose records are committed, then made (a commit that fails changes nothing;
        a request waits until it is made). A commit cancelled during its transaction, which
        the store carries out (:attr:`Batch.landed <zse.store.Batch.landed>`), is made too,
        as stored (nothing sent: the caller is cancelled; a device asks, or the restart
        serves it)."""
        async with self._lock:
            now = self.clock()
            if self.store is None:
                return change(self.protocol, now)
            trial = copy.deepcopy(self.protocol)
            change(trial, now)
            batch = Batch()
            try:
                await self._write(trial.records(now), batch)
            except BaseException:
                if batch.landed is not None:
                    change(self.protocol, now)
                    self._committed()
                raise
            step = change(self.protocol, now)
            self._committed()
            return step

    def _committed(self) -> None:
        """The store holds the records of now: the timer is due when the first ends."""
        self._ends.due = self.protocol.next_deadline()
        self._timer.update()

    async def _expired(self, now: int) -> None:
        """Delete the records of what ended by ``now`` in one commit. One that fails raises,
        the deadline unchanged: the timer logs it and tries again :data:`EXPIRY_RETRY`
        seconds later (``Timer.add(retry=)``), or at the next commit's update."""
        await self._write(self.protocol.records(now))
        self._ends.due = self.protocol.next_deadline()

    def start(self) -> None:
        """Serve the Price cluster on the endpoint, and its attributes (D.4.2.2); with a
        store, delete what ends at its end."""
        self.endpoint.add_handler(PRICE, self._on_message)
        self.serve_attributes()
        if self.store is not None:
            self._timer.start()

    async def stop(self) -> None:
        """Stop deleting what ends (a deletion under way ends first); what ended meanwhile
        is deleted by the next commit or :meth:`load`."""
        await self._timer.stop()

    def serve_attributes(self) -> None:
        """Answer Read Attributes for every Price attribute with a value now: the
        application's ``protocol.attributes`` (call again after changing them) and the block
        period, conversion factor and calorific value in force and SE 1.2's tariff (its tier
        labels, TierNPriceLabel), CO2 value, billing period and consolidated bill in force,
        the received tariff's (0x8xxx) and the credit payments', read when asked (one that
        starts later is served once this is called after it started)."""
        for attr, (type_id, value) in self.protocol.attribute_values(self.clock()).items():
            if attr not in self._served:
                self._served[attr] = value
                self.endpoint.set_attribute_source(
                    PRICE, attr, type_id, functools.partial(self._attribute, attr)
                )

    def _attribute(self, attr: int) -> object:
        """An attribute's value now; one no longer in force keeps its last value."""
        current = self.protocol.attribute_values(self.clock()).get(attr)
        if current is not None:
            self._served[attr] = current[1]
        return self._served[attr]

    async def publish(
        self,
        event: PriceEvent | PriceValue,
        *,
        dst: int | None = None,
        dst_ep: int = 0xFF,
        dst_mode: t.AddrMode = t.AddrMode.NWK,
    ) -> None:
        """Record a price, block period, conversion factor or calorific value and, if ``dst``
        is given, send it to a device, group or broadcast (Publish Price, Block Period,
        Conversion Factor, Calorific Value). The attributes it sets are served."""
        to = None if dst is None else Destination.of(dst, dst_ep, dst_mode)
        if isinstance(event, PriceEvent):
            step = await self._change(lambda core, now: core.publish(event, now, to))
        else:
            step = await self._change(lambda core, now: core.publish_value(event, now, to))
            self.serve_attributes()
        await carry_out(self.endpoint, step, self._stream.emit)

    async def publish_tariff(
        self,
        information: TariffInformation,
        *values: TariffValue,
        dst: int | None = None,
        dst_ep: int = 0xFF,
        dst_mode: t.AddrMode = t.AddrMode.NWK,
    ) -> None:
        """Record an SE 1.2 tariff with its price matrix, block thresholds and tier labels
        and, if ``dst`` is given, send them to a device, group or broadcast (Publish Tariff
        Information, then Publish Price Matrix / Block Thresholds / Tier Labels, each in as
        many commands as one frame takes)."""
        to = None if dst is None else Destination.of(dst, dst_ep, dst_mode)
        step = await self._change(
            lambda core, now: core.publish_tariff(information, now, to, values)
        )
        self.serve_attributes()
        await carry_out(self.endpoint, step, self._stream.emit)

    async def cancel_tariff(
        self,
        cancellation: TariffCancellation,
        *,
        dst: int | None = None,
        dst_ep: int = 0xFF,
        dst_mode: t.AddrMode = t.AddrMode.NWK,
    ) -> None:
        """Forget a tariff and, if ``dst`` is given, send Cancel Tariff there."""
        to = None if dst is None else Destination.of(dst, dst_ep, dst_mode)
        step = await self._change(lambda core, now: core.cancel_tariff(cancellation, now, to))
        self.serve_attributes()
        await carry_out(self.endpoint, step, self._stream.emit)

    async def _on_message(self, msg: ZclMessage) -> foundation.Status | None:
        async with self._lock:  # what is answered is what is stored
            step = _step(self.protocol, msg, self.clock)
        return await carry_out(self.endpoint, step, self._emit)

    def _emit(self, event: PriceAcknowledged | CppEventResponded | CurrentPriceRequested) -> None:
        """A Get Current Price to ``on_request``, the rest to ``on_event``."""
        if isinstance(event, CurrentPriceRequested):
            self._requests.emit(event)
        else:
            self._stream.emit(event)


class PriceClient:
    """A HAN device's Price client (SE D.4.3): keeps current and scheduled prices.

    Publish Price from the server is recorded (the newer issuer event id wins overlaps) and
    acknowledged when its Price Control asks for it. ``rx_on_when_idle`` is what Get Current
    Price tells the server about this device's receiver (D.4.2.3.1.1): keep True for a
    mains-powered device, give False for a sleepy end device.
    """

    def __init__(
        self,
        endpoint: ZclPort,
        *,
        server_nwk: int = 0x0000,
        server_ep: int,
        clock: Callable[[], int] = system_clock,
        rx_on_when_idle: bool = True,
    ) -> None:
        self.endpoint = endpoint
        self.server_nwk = server_nwk
        self.server_ep = server_ep
        self.clock = clock
        self.protocol = PriceClientProtocol(rx_on_when_idle=rx_on_when_idle)
        self.schedule: PriceSchedule = self.protocol.schedule
        self._stream: EventStream[PriceReceived] = EventStream()
        self.on_event = self._stream.on_event
        self.events = self._stream.events
        #: Block periods, conversion factors, calorific values (SE 1.1/1.2) and SE 1.2's CO2
        #: values, billing periods, consolidated bills, CPP events, credit payments and
        #: currency conversions received.
        self._values: EventStream[PriceValueReceived] = EventStream()
        self.on_value = self._values.on_event
        self.block_periods = self.protocol.block_periods
        self.conversion_factors = self.protocol.conversion_factors
        self.calorific_values = self.protocol.calorific_values
        #: SE 1.2's other values (``on_value`` hears each).
        self.co2_values = self.protocol.co2_values
        self.billing_periods = self.protocol.billing_periods
        self.consolidated_bills = self.protocol.consolidated_bills
        self.cpp_events = self.protocol.cpp_events
        self.credit_payments = self.protocol.credit_payments
        self.currency_conversions = self.protocol.currency_conversions
        #: SE 1.2 tariffs received: ``on_tariff`` hears each tariff's information, each
        #: matrix, thresholds or labels once whole, and each Cancel Tariff.
        self.tariffs: Tariffs = self.protocol.tariffs
        self._tariffs: EventStream[TariffReceived | TariffCancelled] = EventStream()
        self.on_tariff = self._tariffs.on_event

    def start(self) -> None:
        """Take Publish Price commands arriving on the endpoint."""
        self.endpoint.add_handler(PRICE, self._on_message)

    def clear(self) -> None:
        """Forget every price, block pricing value and tariff held (a change of tenancy, SE 1.2
        D.10.2.4.1: the previous tenant's tariff plan is not the new one's)."""
        self.protocol = PriceClientProtocol(rx_on_when_idle=self.protocol.rx_on_when_idle)
        self.schedule = self.protocol.schedule
        self.block_periods = self.protocol.block_periods
        self.conversion_factors = self.protocol.conversion_factors
        self.calorific_values = self.protocol.calorific_values
        self.co2_values = self.protocol.co2_values
        self.billing_periods = self.protocol.billing_periods
        self.consolidated_bills = self.protocol.consolidated_bills
        self.cpp_events = self.protocol.cpp_events
        self.credit_payments = self.protocol.credit_payments
        self.currency_conversions = self.protocol.currency_conversions
        self.tariffs = self.protocol.tariffs

    def current(self) -> PriceEvent | None:
        """The price in force now."""
        return self.schedule.current(self.clock())

    async def ask_block_periods(self, start_time: int = 0, number_of_events: int = 0) -> None:
        """Send Get Block Periods (D.4.2.3.4); the Publish Block Period answers are kept as
        they arrive (``on_value`` hears each; ``block_periods`` holds them)."""
        server = Destination.device(self.server_nwk, self.server_ep)
        await self._ask(self.protocol.get_block_periods(server, start_time, number_of_events))

    async def ask_conversion_factor(self, earliest_start_time: int = 0, count: int = 0) -> None:
        """Send Get Conversion Factor (D.4.2.3.5); the answers are kept as they arrive."""
        server = Destination.device(self.server_nwk, self.server_ep)
        await self._ask(self.protocol.get_conversion_factor(server, earliest_start_time, count))

    async def ask_calorific_value(self, earliest_start_time: int = 0, count: int = 0) -> None:
        """Send Get Calorific Value (D.4.2.3.6); the answers are kept as they arrive."""
        server = Destination.device(self.server_nwk, self.server_ep)
        await self._ask(self.protocol.get_calorific_value(server, earliest_start_time, count))

    async def ask_tariff_information(
        self, earliest_start_time: int = 0, count: int = 0, tariff_type: int = 0
    ) -> None:
        """Send Get Tariff Information (D.4.2.3.7); the answers are kept as they arrive
        (``on_tariff`` hears each; ``tariffs`` holds them)."""
        server = Destination.device(self.server_nwk, self.server_ep)
        await self._ask(
            self.protocol.get_tariff_information(server, earliest_start_time, count, tariff_type)
        )

    async def ask_tariff_value(self, kind: type[TariffValue], issuer_tariff_id: int) -> None:
        """Send Get Price Matrix, Get Block Thresholds or Get Tier Labels (``kind``:
        :class:`~zse.price.PriceMatrix`... D.4.2.3.8, 10) for a tariff held; the parts are
        put together as they arrive."""
        server = Destination.device(self.server_nwk, self.server_ep)
        await self._ask(self.protocol.get_tariff_value(server, kind, issuer_tariff_id))

    async def ask_values(
        self,
        kind: type[Co2Value | BillingPeriod | ConsolidatedBill],
        earliest_start_time: int = 0,
        count: int = 0,
        tariff_type: int = 0,
    ) -> None:
        """Send Get CO2 Value, Get Billing Period or Get Consolidated Bill (``kind``,
        D.4.2.3.9, 11-12); the answers are kept as they arrive (``on_value`` hears each)."""
        server = Destination.device(self.server_nwk, self.server_ep)
        await self._ask(
            self.protocol.get_typed_values(server, kind, earliest_start_time, count, tariff_type)
        )

    async def ask_credit_payment(
        self, latest_end_time: int = 0xFFFFFFFF, number_of_records: int = 0
    ) -> None:
        """Send Get Credit Payment (D.4.2.3.15); the answers are kept as they arrive."""
        server = Destination.device(self.server_nwk, self.server_ep)
        await self._ask(
            self.protocol.get_credit_payment(server, latest_end_time, number_of_records)
        )

    async def ask_currency_conversion(self) -> None:
        """Send Get Currency Conversion; the answer is kept as it arrives."""
        server = Destination.device(self.server_nwk, self.server_ep)
        await self._ask(self.protocol.get_currency_conversion(server))

    async def respond_cpp_event(self, issuer_event_id: int, accepted: bool) -> None:
        """Answer a CPP event asking for authorization (CPP Auth Pending): CPP Event Response
        Accepted or Rejected (D.4.2.3.14)."""
        server = Destination.device(self.server_nwk, self.server_ep)
        auth = CppAuth.Accepted if accepted else CppAuth.Rejected
        await self._ask(self.protocol.cpp_event_response(server, issuer_event_id, auth))

    async def ask_tariff_cancellation(self) -> None:
        """Send Get Tariff Cancellation (D.4.2.3.16); a Cancel Tariff answer is acted on."""
        server = Destination.device(self.server_nwk, self.server_ep)
        await self._ask(self.protocol.get_tariff_cancellation(server))

    async def _ask(self, request: Send) -> None:
        await carry_out(self.endpoint, Step(sends=(request,)), self._stream.emit)

    async def get_current_price(self) -> PriceEvent | None:
        """Ask the server (Get Current Price, D.4.2.3.1); None if it has no price.

        The endpoint's ``request`` matches the answer to the request (same TSN, from the
        server); a Publish Price answer goes through the core as an unsolicited one does."""
        server = Destination.device(self.server_nwk, self.server_ep)
        reply = await request(self.endpoint, self.protocol.get_current_price(server))
        if not reply.is_cluster_command:
            return None  # Default Response NOT_FOUND
        await self._on_message(reply)
        return self.current()

    async def _on_message(self, msg: ZclMessage) -> foundation.Status | None:
        step = _step(self.protocol, msg, self.clock)
        # the application hears of a price even if its acknowledgement cannot be sent
        for event in step.events:
            if isinstance(event, PriceValueReceived):
                self._values.emit(event)
            elif isinstance(event, TariffReceived | TariffCancelled):
                self._tariffs.emit(event)
            else:
                self._stream.emit(event)
        sends = dataclasses.replace(step, events=())
        return await carry_out(self.endpoint, sends, self._stream.emit)
