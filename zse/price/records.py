"""What the ESI's Price server keeps in a store (SE D.4.2), as records, and back.

One record per thing published and still held: each price (with when it was published and
where a newer price cut it short), each value of a :class:`~zse.price.Published` timeline
(with the absolute start it was kept with), each credit payment, each tariff's information
and its whole price matrix, block thresholds and tier labels, and the last Cancel Tariff.
:func:`records` makes them from what the stores hold at ``now`` (what is over forgotten
first, so the stored set is as bounded as the stores are); :func:`restore` puts them back,
each checked by shape (:mod:`zse.records`) before anything is built from it, a record of
another shape or out of range handed to ``on_bad`` and skipped. Which records there are and
how they are keyed is zse's own choice (docs/persistence.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Final

from zse.price.core import (
    PRICE_VALUE_KINDS,
    BlockThresholds,
    ByTariffType,
    CreditPayment,
    CreditPayments,
    PriceEvent,
    PriceMatrix,
    PriceSchedule,
    Published,
    TariffCancellation,
    TariffInformation,
    Tariffs,
    TariffValue,
    TierLabels,
)
from zse.records import (
    BOOL,
    BYTES,
    INT,
    Fields,
    ListOf,
    Mismatch,
    Opt,
    RecordError,
    Shape,
    TupleOf,
    check,
    load_each,
)

__all__ = ["CANCELLATION_KEY", "PriceStores", "records", "restore"]

#: The key of the last Cancel Tariff (what Get Tariff Cancellation answers, D.4.2.3.16).
CANCELLATION_KEY: Final = "cancellation"

#: The timelines by start time, by the name their records are kept under.
_TIMELINES: Final = {n: k for n, k in PRICE_VALUE_KINDS.items() if k is not CreditPayment}
_TARIFF_VALUES: Final[dict[str, type[Any]]] = {
    "matrix": PriceMatrix,
    "thresholds": BlockThresholds,
    "labels": TierLabels,
}
_SHAPES: Final = {"int": INT, "bytes": BYTES, "bool": BOOL, "int | None": Opt(INT)}


def _fields_shape(kind: type[Any], **special: Shape) -> Fields:
    """Every field of the dataclass ``kind``, each of its annotated type."""
    return Fields(
        {
            f.name: special[f.name] if f.name in special else _SHAPES[str(f.type)]
            for f in dataclasses.fields(kind)
        }
    )


#: The shape of each kind of value, as :func:`_plain` writes it.
_VALUE_SHAPES: Final[dict[type[Any], Shape]] = {
    **{
        kind: _fields_shape(kind)
        for kind in (
            *_TIMELINES.values(),
            *(PriceEvent, CreditPayment, TariffInformation, TariffCancellation),
        )
    },
    PriceMatrix: _fields_shape(PriceMatrix, prices=ListOf(TupleOf(INT, INT, INT))),
    BlockThresholds: _fields_shape(BlockThresholds, thresholds=ListOf(TupleOf(INT, ListOf(INT)))),
    TierLabels: _fields_shape(TierLabels, labels=ListOf(TupleOf(INT, BYTES))),
}
_PRICE: Final = Fields({"price": _VALUE_SHAPES[PriceEvent], "received_at": INT, "cut": Opt(INT)})


def _plain(value: Any) -> dict[str, Any]:
    """A value's fields as JSON the store keeps (a matrix, thresholds or labels as lists)."""
    plain = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, PriceMatrix):
        plain["prices"] = [[t, b, p] for (t, b), p in sorted(value.prices.items())]
    elif isinstance(value, BlockThresholds):
        plain["thresholds"] = [[t, list(v)] for t, v in sorted(value.thresholds.items())]
    elif isinstance(value, TierLabels):
        plain["labels"] = [[t, label] for t, label in sorted(value.labels.items())]
    return plain


def _built(kind: type[Any], plain: Any) -> Any:
    """The value of ``kind`` :func:`_plain` wrote (:class:`Mismatch` for another shape, a
    constructor's ``ValueError`` for a value out of range)."""
    check(plain, _VALUE_SHAPES[kind])
    fields = dict(plain)
    if kind is PriceMatrix:
        fields["prices"] = {(t, b): p for t, b, p in plain["prices"]}
    elif kind is BlockThresholds:
        fields["thresholds"] = {t: tuple(v) for t, v in plain["thresholds"]}
    elif kind is TierLabels:
        fields["labels"] = dict(plain["labels"])
    return kind(**fields)


@dataclasses.dataclass
class PriceStores:
    """The stores of a Price server that a store keeps (:class:`PriceServerProtocol
    <zse.price.protocol.PriceServerProtocol>`'s)."""

    schedule: PriceSchedule
    timelines: Mapping[str, Published[Any] | ByTariffType[Any]]
    credit_payments: CreditPayments
    tariffs: Tariffs
    last_cancellation: TariffCancellation | None


def _timed(name: str, start: int, value: Any) -> tuple[str, dict[str, Any]]:
    kind = getattr(value, "tariff_type", 0) & 0x0F
    key = f"{name}/{kind}/{value.issuer_event_id}"
    return key, {"value": _plain(value), "start": start}


def _tariff_value_key(value: TariffValue) -> str:
    name = next(n for n, k in _TARIFF_VALUES.items() if isinstance(value, k))
    return f"{name}/{value.provider_id}/{value.issuer_tariff_id}"


def records(stores: PriceStores, now: int) -> dict[str, Any]:
    """Every record of what ``stores`` hold at ``now``, by key (what is over forgotten)."""
    out: dict[str, Any] = {}
    for event, received_at, cut in stores.schedule.entries(now):
        key = f"price/{event.provider_id}/{event.issuer_event_id}"
        out[key] = {"price": _plain(event), "received_at": received_at, "cut": cut}
    for name, timeline in stores.timelines.items():
        for start, value in timeline.entries(now):
            key, record = _timed(name, start, value)
            out[key] = record
    for payment in stores.credit_payments.held():
        out[f"credit_payment/{payment.issuer_event_id}"] = {"value": _plain(payment)}
    information, values = stores.tariffs.entries(now)
    for start, tariff in information:
        key, record = _timed("tariff", start, tariff)
        out[key] = record
    for value in values:
        out[_tariff_value_key(value)] = {"value": _plain(value)}
    if stores.last_cancellation is not None:
        out[CANCELLATION_KEY] = _plain(stores.last_cancellation)
    return out


def _timed_value(kind: type[Any], record: Any) -> tuple[int, Any]:
    check(record, Fields({"value": _VALUE_SHAPES[kind], "start": INT}))
    return record["start"], _built(kind, record["value"])


def _whole(kind: type[Any], record: Any) -> Any:
    check(record, Fields({"value": _VALUE_SHAPES[kind]}))
    return _built(kind, record["value"])


def restore(
    stores: PriceStores,
    stored: Mapping[str, Any],
    now: int,
    *,
    namespace: str,
    on_bad: Callable[[RecordError], None],
) -> TariffCancellation | None:
    """Put the ``stored`` records back into ``stores`` (tariffs before their matrices,
    thresholds and labels); a record that is not the shape its key says, or is stored under
    another key than its value's, goes to ``on_bad`` and is skipped. Returns the last Cancel
    Tariff stored (or ``stores.last_cancellation``)."""
    cancellation = [stores.last_cancellation]

    def load(key: str, record: Any) -> None:
        name = key.partition("/")[0]
        if key == CANCELLATION_KEY:
            cancellation[0] = _built(TariffCancellation, record)
            return
        if name == "price":
            check(record, _PRICE)
            event = _built(PriceEvent, record["price"])
            made = f"price/{event.provider_id}/{event.issuer_event_id}"
            _same(key, made)
            stores.schedule.restore(event, record["received_at"], record["cut"])
        elif name in _TIMELINES or name == "tariff":
            kind = TariffInformation if name == "tariff" else _TIMELINES[name]
            start, value = _timed_value(kind, record)
            _same(key, _timed(name, start, value)[0])
            if name == "tariff":
                stores.tariffs.restore(start, value)
            else:
                stores.timelines[name].restore(start, value)
        elif name == "credit_payment":
            payment = _whole(CreditPayment, record)
            _same(key, f"credit_payment/{payment.issuer_event_id}")
            stores.credit_payments.add(payment, now)
        elif name in _TARIFF_VALUES:
            value = _whole(_TARIFF_VALUES[name], record)
            _same(key, _tariff_value_key(value))
            stores.tariffs.put(value, now)  # ValueError: its tariff is not held
        else:
            raise Mismatch("not a record of the Price server")

    # a tariff's information before its matrix, thresholds and labels
    ordered = sorted(
        stored.items(), key=lambda item: (item[0].partition("/")[0] in _TARIFF_VALUES, item[0])
    )
    load_each(ordered, load, namespace=namespace, on_bad=on_bad)
    return cancellation[0]


def _same(key: str, made: str) -> None:
    if key != made:
        raise Mismatch("stored under another value's key")
