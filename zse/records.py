"""Strict shapes for persisted state: every loader of a stored record checks it through here.

A record read back from a :class:`zse.store.Store` is whatever the file holds: damaged, edited
by hand or written by another version. Each loader (:mod:`zse.drlc`, :mod:`zse.messaging`,
:mod:`zse.provisioning` and the services' journal readers) declares the shape it expects with
the small vocabulary below and checks a value *before* building anything from it, so a
wrong-shaped record is a :class:`RecordError` (a :class:`~zse.errors.StoreError`) naming the
namespace, the key and the path inside the value that is wrong, never a raw ``TypeError`` /
``KeyError`` and never the record's content (a record may hold an install code).

:func:`load_each` runs a loader over many records: with ``on_bad`` a bad record is handed to it
and skipped (the service quarantines it, see :meth:`zse.store.Store.quarantine`) and the rest
load; without, the first bad record raises. The checks walk the *shape* (a fixed, shallow
tree), never the value's own nesting, so a deeply nested value cannot exhaust the stack.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from zse.errors import StoreError, ZseError

__all__ = [
    "BOOL",
    "BYTES",
    "INT",
    "S8",
    "S16",
    "STR",
    "U8",
    "U16",
    "U32",
    "Fields",
    "Int",
    "ListOf",
    "MapOf",
    "Mismatch",
    "Number",
    "Opt",
    "RecordError",
    "Shape",
    "TupleOf",
    "Type",
    "check",
    "load_each",
    "load_one",
]


class RecordError(StoreError):
    """A stored record (or journal entry) that is not the shape its loader expects.

    ``namespace`` and ``key`` (or ``seq`` for a journal entry) say which; ``reason`` says what
    is wrong (a path and a type or range, never the stored content).
    """

    def __init__(self, namespace: str, key: str, reason: str, *, seq: int | None = None) -> None:
        where = (
            f"journal entry {seq} of {namespace}"
            if seq is not None
            else f"record {namespace}/{key}"
        )
        super().__init__(f"{where}: {reason}")
        self.namespace, self.key, self.reason, self.seq = namespace, key, reason, seq


class Mismatch(Exception):
    """A value that does not fit a :class:`Shape` (turned into :class:`RecordError`)."""


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


class Shape:
    """What a stored value must look like; :meth:`check` raises :class:`Mismatch`."""

    def check(self, value: object, path: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class Type(Shape):
    """Exactly this type (``bool`` is not an ``int`` and ``int`` is not a ``bool``)."""

    def __init__(self, kind: type) -> None:
        self.kind = kind

    def check(self, value: object, path: str) -> None:
        if type(value) is not self.kind:
            raise Mismatch(f"{path or 'value'}: expected {self.kind.__name__}, got {_kind(value)}")


class Int(Shape):
    """An ``int`` (not a ``bool``) in ``lo..hi`` (inclusive; None is unbounded)."""

    def __init__(self, lo: int | None = None, hi: int | None = None) -> None:
        self.lo, self.hi = lo, hi

    def check(self, value: object, path: str) -> None:
        if not isinstance(value, int) or isinstance(value, bool):  # an IntEnum is an int
            raise Mismatch(f"{path or 'value'}: expected int, got {_kind(value)}")
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            raise Mismatch(f"{path or 'value'}: integer outside {self.lo}..{self.hi}")


class Number(Shape):
    """An ``int`` (not a ``bool``) or a ``float`` (JSON holds only finite ones)."""

    def check(self, value: object, path: str) -> None:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise Mismatch(f"{path or 'value'}: expected a number, got {_kind(value)}")


class Opt(Shape):
    """``None`` or ``shape``."""

    def __init__(self, shape: Shape) -> None:
        self.shape = shape

    def check(self, value: object, path: str) -> None:
        if value is not None:
            self.shape.check(value, path)


class ListOf(Shape):
    """A list whose every item is ``shape``."""

    def __init__(self, shape: Shape) -> None:
        self.shape = shape

    def check(self, value: object, path: str) -> None:
        if not isinstance(value, list):
            raise Mismatch(f"{path or 'value'}: expected a list, got {_kind(value)}")
        for i, item in enumerate(value):
            self.shape.check(item, f"{path}[{i}]")


class TupleOf(Shape):
    """A list of exactly these shapes, in order (how JSON stores a tuple)."""

    def __init__(self, *shapes: Shape) -> None:
        self.shapes = shapes

    def check(self, value: object, path: str) -> None:
        if not isinstance(value, list) or len(value) != len(self.shapes):
            raise Mismatch(f"{path or 'value'}: expected a list of {len(self.shapes)} items")
        for i, (shape, item) in enumerate(zip(self.shapes, value, strict=True)):
            shape.check(item, f"{path}[{i}]")


class MapOf(Shape):
    """A dict of ``key(k)``-valid string keys (``key`` raises ``ValueError``) to ``shape``."""

    def __init__(self, shape: Shape, key: Callable[[str], object] = str) -> None:
        self.shape, self.key = shape, key

    def check(self, value: object, path: str) -> None:
        if not isinstance(value, dict):
            raise Mismatch(f"{path or 'value'}: expected an object, got {_kind(value)}")
        for key, item in value.items():
            try:
                if not isinstance(key, str):
                    raise ValueError
                self.key(key)
            except ValueError:
                raise Mismatch(f"{path or 'value'}: a key is not valid") from None
            self.shape.check(item, f"{path}[*]")


class Fields(Shape):
    """A dict with exactly the ``required`` keys, any of the ``optional`` ones, and no other."""

    def __init__(
        self, required: Mapping[str, Shape], optional: Mapping[str, Shape] | None = None
    ) -> None:
        self.required, self.optional = dict(required), dict(optional or {})

    def check(self, value: object, path: str) -> None:
        if not isinstance(value, dict):
            raise Mismatch(f"{path or 'value'}: expected an object, got {_kind(value)}")
        missing = sorted(set(self.required) - set(value))
        if missing:
            raise Mismatch(f"{path or 'value'}: missing {', '.join(missing)}")
        extra = [k for k in value if k not in self.required and k not in self.optional]
        if extra:
            raise Mismatch(f"{path or 'value'}: {len(extra)} unexpected field(s)")
        for name, item in value.items():
            shape = self.required.get(name) or self.optional[name]
            shape.check(item, f"{path}.{name}")


INT = Int()
U8, U16, U32 = Int(0, 0xFF), Int(0, 0xFFFF), Int(0, 0xFFFFFFFF)
S8, S16 = Int(-0x80, 0x7F), Int(-0x8000, 0x7FFF)
STR, BOOL, BYTES = Type(str), Type(bool), Type(bytes)


_T = TypeVar("_T")


def check(value: object, shape: Shape) -> None:
    """Raise :class:`Mismatch` unless ``value`` fits ``shape``."""
    shape.check(value, "")


def load_each(
    items: Iterable[tuple[str, Any]],
    load: Callable[[str, Any], None],
    *,
    namespace: str,
    on_bad: Callable[[RecordError], None] | None = None,
    journal: bool = False,
) -> None:
    """Call ``load(key, value)`` for each item; a :class:`Mismatch` or ``ValueError`` it
    raises (a shape check, or a constructor's own range check) becomes a :class:`RecordError`
    for that record, raised, or given to ``on_bad`` and skipped. ``load`` checks before it
    changes anything, so a bad record leaves no trace. With ``journal`` the keys are journal
    sequence numbers."""
    for key, value in items:
        try:
            load(key, value)
        except (Mismatch, ValueError, ZseError) as exc:
            if isinstance(exc, RecordError):
                error = exc
            else:
                reason = (
                    str(exc)
                    if isinstance(exc, Mismatch)
                    else f"invalid value ({type(exc).__name__})"
                )
                error = RecordError(namespace, key, reason, seq=int(key) if journal else None)
            if on_bad is None:
                raise error from None
            on_bad(error)


def load_one(key: str, value: Any, build: Callable[[Any], _T], *, namespace: str) -> _T:
    """``build(value)`` for one stored record, its failures turned into :class:`RecordError`
    as :func:`load_each` does."""
    built: list[_T] = []
    load_each([(key, value)], lambda _, v: built.append(build(v)), namespace=namespace)
    return built[0]
