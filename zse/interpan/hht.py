"""The hand-held terminal (HHT) command carrier: zse's own protocol over inter-PAN (sans-IO).

An installer's terminal runs *service requests* on a meter: ordered lists of commands, each with
a 32-bit transaction id that is unique across terminals and channels. The meter executes each
transaction id at most once, whether it arrives over inter-PAN or over the network, logs what it
executed durably before answering, answers a repeated id with the stored outcome (status
``DUPLICATE``) instead of executing it again, and answers a *resume query* with the set of
commands of a request it has executed, so a terminal whose link broke continues exactly where it
stopped. The wire format is in ``docs/interpan.md``; in short, a manufacturer-specific cluster
(:data:`CARRIER_CLUSTER_ID`, ZCL frame control bit 2 and the deployment's manufacturer code):

client to server (terminal to meter)
    ``0x00 execute``: request id (u16), index (u8), count (u8), transaction id (u32), command
    code (u8), body length (u8), body;
    ``0x01 resume query``: request id (u16);
server to client
    ``0x00 result``: transaction id (u32), status (u8), result length (u8), result;
    ``0x01 resume response``: request id (u16), count (u8), executed bitmap (ceil(count / 8)).

At-most-once: the meter logs ``BEGIN`` (fsync) before it runs a command and ``DONE`` with the
outcome after; a ``BEGIN`` without ``DONE`` found after a restart is answered ``INTERRUPTED`` and
never re-run. :class:`FileLog` is a small append-only file of CRC-checked records.

The meter says which log writes it needs and when (:meth:`HhtMeter.steps` yields a
:class:`Begin` before it runs a command and a :class:`Done` before it answers), so an asyncio
shell performs them off the event loop (:func:`zse.interpan.service.answer_carrier`) while
:meth:`HhtMeter.receive` performs them in place.
"""

from __future__ import annotations

import contextlib
import enum
import io
import logging
import os
import stat
import struct
import threading
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from zse._files import sync_directory
from zse.errors import InvalidFrame, StoreError
from zse.interpan._zcl import Direction, FrameType, ZclHeader
from zse.interpan.window import AllowedCommand
from zse.se.ids import ZSE_MANUFACTURER_CODE

LOGGER = logging.getLogger(__name__)

__all__ = [
    "CARRIER_CLUSTER_ID",
    "DEFAULT_MANUFACTURER_CODE",
    "SET_TIME",
    "Begin",
    "Command",
    "CommandFailed",
    "Done",
    "Execute",
    "ExecutedLog",
    "FileLog",
    "HhtMeter",
    "HhtTerminal",
    "LogWrite",
    "MemoryLog",
    "Result",
    "ResumeQuery",
    "ResumeResponse",
    "Status",
    "Steps",
    "carrier_whitelist",
    "decode",
    "set_time_body",
    "set_time_from_body",
]

#: Manufacturer-specific cluster id of the carrier (ZCL 2.5.5: 0xFC00-0xFFFF).
CARRIER_CLUSTER_ID = 0xFC5E
#: Placeholder manufacturer code; a deployment uses its own assigned code.
DEFAULT_MANUFACTURER_CODE = ZSE_MANUFACTURER_CODE
#: Command code "set the meter's time": body is UTC seconds since 2000-01-01 (u32, ZCL UTCTime).
SET_TIME = 0x01

_EXECUTE, _RESUME_QUERY = 0x00, 0x01
_RESULT, _RESUME_RESPONSE = 0x00, 0x01
_EXEC_FIXED = struct.Struct("<HBBIBB")
_RESULT_FIXED = struct.Struct("<IBB")


class Status(enum.IntEnum):
    """Outcome of one transaction, as the meter reports it."""

    EXECUTED = 0x00
    DUPLICATE = 0x01  # executed before: the stored outcome is repeated, nothing runs again
    UNSUPPORTED = 0x02  # no handler for the command code: not executed
    FAILED = 0x03  # the handler raised CommandFailed: executed, failed
    INTERRUPTED = 0x04  # begun, never done (a restart, a frame cancelled mid-write): not re-run


class CommandFailed(Exception):
    """Raised by a meter's command handler to report a failure; ``result`` is sent back."""

    def __init__(self, result: bytes = b"") -> None:
        super().__init__(result.hex())
        self.result = bytes(result)


@dataclass(frozen=True, slots=True)
class Command:
    """One command of a service request."""

    transaction_id: int
    code: int
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Execute:
    """``0x00 execute`` (terminal to meter): command ``index`` of ``count`` of a request."""

    request_id: int
    index: int
    count: int
    command: Command


@dataclass(frozen=True, slots=True)
class ResumeQuery:
    """``0x01 resume query`` (terminal to meter): which commands of the request ran?"""

    request_id: int


@dataclass(frozen=True, slots=True)
class Result:
    """``0x00 result`` (meter to terminal): a transaction's outcome, new or from the log."""

    transaction_id: int
    status: Status
    result: bytes = b""


@dataclass(frozen=True, slots=True)
class ResumeResponse:
    """``0x01 resume response`` (meter to terminal): the indexes of the request's commands
    that the meter executed."""

    request_id: int
    count: int
    executed: frozenset[int]


Message = Execute | ResumeQuery | Result | ResumeResponse


def encode(
    message: Message, *, tsn: int, manufacturer_code: int, disable_default_response: bool = True
) -> bytes:
    """The ZCL frame (header and payload) of a carrier message.

    ``disable_default_response`` is the ZCL frame control bit 4: set by zse's terminal and
    meter, clear in a request a ZCL stack sends over the network with its defaults; decoding
    keeps it in the header, so a decoded frame re-encodes to the same bytes."""

    def _header(direction: Direction, command_id: int) -> bytes:
        return ZclHeader.cluster(
            direction,
            command_id,
            tsn,
            manufacturer_code=manufacturer_code,
            disable_default_response=disable_default_response,
        ).to_bytes()

    if isinstance(message, Execute):
        cmd = message.command
        if len(cmd.body) > 0xFF:
            raise ValueError("command body longer than 255 bytes")
        head = _header(Direction.Client_to_Server, _EXECUTE)
        return (
            head
            + _EXEC_FIXED.pack(
                message.request_id,
                message.index,
                message.count,
                cmd.transaction_id,
                cmd.code,
                len(cmd.body),
            )
            + cmd.body
        )
    if isinstance(message, ResumeQuery):
        head = _header(Direction.Client_to_Server, _RESUME_QUERY)
        return head + struct.pack("<H", message.request_id)
    if isinstance(message, Result):
        head = _header(Direction.Server_to_Client, _RESULT)
        fixed = _RESULT_FIXED.pack(message.transaction_id, message.status, len(message.result))
        return head + fixed + message.result
    bitmap = bytearray((message.count + 7) // 8)
    for index in message.executed:
        bitmap[index // 8] |= 1 << (index % 8)
    head = _header(Direction.Server_to_Client, _RESUME_RESPONSE)
    return head + struct.pack("<HB", message.request_id, message.count) + bytes(bitmap)


def decode(data: bytes, *, manufacturer_code: int) -> tuple[ZclHeader, Message]:
    """Parse a carrier ZCL frame; :class:`InvalidFrame` names the field and ZCL byte offset.

    What decodes is canonical: ``encode(message, tsn=header.tsn, manufacturer_code=...,
    disable_default_response=header.disable_default_response)`` gives ``data`` back."""
    header = ZclHeader.from_bytes(data)
    if header.frame_type is not FrameType.CLUSTER_COMMAND:
        raise InvalidFrame("carrier frames are cluster-specific (ZCL byte offset 0)")
    if header.manufacturer_code != manufacturer_code:
        got = "none" if header.manufacturer_code is None else f"0x{header.manufacturer_code:04X}"
        raise InvalidFrame(
            f"carrier manufacturer code {got} at ZCL byte offset 1 is not 0x{manufacturer_code:04X}"
        )
    at = header.length
    decoder = _DECODERS.get((header.direction, header.command_id))
    if decoder is None:
        raise InvalidFrame(
            f"unknown carrier command 0x{header.command_id:02X} "
            f"({header.direction.name.lower()}) at ZCL byte offset {at - 1}"
        )
    return header, decoder(data[at:], at)


def _decode_execute(body: bytes, at: int) -> Execute:
    if len(body) < _EXEC_FIXED.size:
        raise InvalidFrame(f"truncated execute command at ZCL byte offset {at}")
    request, index, count, txid, code, length = _EXEC_FIXED.unpack_from(body)
    if len(body) != _EXEC_FIXED.size + length:
        raise InvalidFrame(
            f"execute body length {length} at ZCL byte offset {at + 9} does not match "
            f"the {len(body) - _EXEC_FIXED.size} bytes present"
        )
    if count == 0 or index >= count:
        raise InvalidFrame(
            f"execute index {index} at ZCL byte offset {at + 2} outside count {count}"
        )
    return Execute(request, index, count, Command(txid, code, bytes(body[_EXEC_FIXED.size :])))


def _decode_resume_query(body: bytes, at: int) -> ResumeQuery:
    if len(body) != 2:
        raise InvalidFrame(f"resume query at ZCL byte offset {at} must be 2 bytes")
    return ResumeQuery(int.from_bytes(body, "little"))


def _decode_result(body: bytes, at: int) -> Result:
    if len(body) < _RESULT_FIXED.size:
        raise InvalidFrame(f"truncated result at ZCL byte offset {at}")
    txid, status, length = _RESULT_FIXED.unpack_from(body)
    if status not in Status._value2member_map_:
        raise InvalidFrame(f"unknown result status 0x{status:02X} at ZCL byte offset {at + 4}")
    if len(body) != _RESULT_FIXED.size + length:
        raise InvalidFrame(
            f"result length {length} at ZCL byte offset {at + 5} does not match the bytes"
        )
    return Result(txid, Status(status), bytes(body[_RESULT_FIXED.size :]))


def _decode_resume_response(body: bytes, at: int) -> ResumeResponse:
    if len(body) < 3:
        raise InvalidFrame(f"truncated resume response at ZCL byte offset {at}")
    request, count = struct.unpack_from("<HB", body)
    if len(body) != 3 + (count + 7) // 8:
        raise InvalidFrame(
            f"resume bitmap at ZCL byte offset {at + 3} is not {(count + 7) // 8} bytes"
        )
    bits = int.from_bytes(body[3:], "little")
    if bits >> count:
        raise InvalidFrame(f"resume bitmap at ZCL byte offset {at + 3} marks index >= count")
    return ResumeResponse(request, count, frozenset(i for i in range(count) if bits >> i & 1))


_DECODERS: dict[tuple[Direction, int], Callable[[bytes, int], Message]] = {
    (Direction.Client_to_Server, _EXECUTE): _decode_execute,
    (Direction.Client_to_Server, _RESUME_QUERY): _decode_resume_query,
    (Direction.Server_to_Client, _RESULT): _decode_result,
    (Direction.Server_to_Client, _RESUME_RESPONSE): _decode_resume_response,
}


def carrier_whitelist(manufacturer_code: int = DEFAULT_MANUFACTURER_CODE) -> list[AllowedCommand]:
    """Whitelist entries that let the carrier's four commands cross inter-PAN."""
    c2s, s2c = Direction.Client_to_Server, Direction.Server_to_Client
    return [
        AllowedCommand(CARRIER_CLUSTER_ID, c2s, _EXECUTE, "hht.execute", manufacturer_code),
        AllowedCommand(
            CARRIER_CLUSTER_ID, c2s, _RESUME_QUERY, "hht.resume_query", manufacturer_code
        ),
        AllowedCommand(CARRIER_CLUSTER_ID, s2c, _RESULT, "hht.result", manufacturer_code),
        AllowedCommand(CARRIER_CLUSTER_ID, s2c, _RESUME_RESPONSE, "hht.resume", manufacturer_code),
    ]


def set_time_body(utc_seconds: int) -> bytes:
    """Body of :data:`SET_TIME`: ZCL UTCTime, seconds since 2000-01-01 00:00 UTC."""
    return struct.pack("<I", utc_seconds)


def set_time_from_body(body: bytes) -> int:
    """The time a :data:`SET_TIME` body carries (zse's HHT carrier command 0x01, docs/interpan.md):
    ZCL UTCTime as in the Time cluster (ZCL 3.12.2.2.1), seconds since 2000-01-01 00:00 UTC, a
    little-endian uint32. :class:`~zse.errors.InvalidFrame` unless the body is 4 bytes."""
    if len(body) != 4:
        raise InvalidFrame(f"set-time body must be 4 bytes (UTCTime), got {len(body)}")
    return int.from_bytes(body, "little")


# -- the durable log ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogEntry:
    """What the log knows about one transaction: ``status`` is ``None`` between BEGIN and DONE."""

    transaction_id: int
    request_id: int
    index: int
    count: int
    status: Status | None = None
    result: bytes = b""


class ExecutedLog(Protocol):
    """Where a meter records executed transactions; ``begin``/``done`` must be durable.

    A log may say it does no blocking I/O with a class attribute ``blocking = False``
    (:class:`MemoryLog`): an asyncio shell then writes it on the event loop; any other log
    is written off the loop (:func:`zse.interpan.service.answer_carrier`)."""

    def get(self, transaction_id: int) -> LogEntry | None: ...

    def begin(self, entry: LogEntry) -> None: ...

    def done(self, transaction_id: int, status: Status, result: bytes) -> None: ...

    def for_request(self, request_id: int) -> Iterable[LogEntry]: ...


class MemoryLog:
    """An :class:`ExecutedLog` in memory (tests, or a meter that has no storage)."""

    #: No I/O: a shell writes it on the event loop (a :class:`FileLog` sets it True).
    blocking: ClassVar[bool] = False

    def __init__(self) -> None:
        self._entries: dict[int, LogEntry] = {}

    def get(self, transaction_id: int) -> LogEntry | None:
        return self._entries.get(transaction_id)

    def begin(self, entry: LogEntry) -> None:
        self._entries[entry.transaction_id] = entry

    def done(self, transaction_id: int, status: Status, result: bytes) -> None:
        entry = self._entries[transaction_id]
        self._entries[transaction_id] = LogEntry(
            entry.transaction_id, entry.request_id, entry.index, entry.count, status, result
        )

    def for_request(self, request_id: int) -> Iterator[LogEntry]:
        return (e for e in self._entries.values() if e.request_id == request_id)


_BEGIN, _DONE, _FORMAT = 0x42, 0x44, 0x56
_BEGIN_REC = struct.Struct("<BIHBB")
_DONE_REC = struct.Struct("<BIBB")
#: The longest record: a DONE with the longest result the wire carries (u8 length).
_MAX_RECORD = _DONE_REC.size + 0xFF
#: The format record that allows wide frames after it (format 2, see :class:`FileLog`).
_FORMAT_2 = bytes((_FORMAT, 2))
#: How a log begins: the length and kind of its first record (a BEGIN, or the format record).
_HEADS = (bytes((_BEGIN_REC.size, _BEGIN)), bytes((len(_FORMAT_2), _FORMAT)))
#: The most one append writes: the format record, then a wide record.
_MAX_APPEND = 1 + len(_FORMAT_2) + 4 + 3 + _MAX_RECORD + 4


def _frame(record: bytes) -> bytes:
    """A record framed for the log: short (u8 length) when it fits, else wide."""
    short = len(record) <= 0xFF
    head = bytes((len(record),)) if short else b"\x00" + struct.pack("<H", len(record))
    return head + record + struct.pack("<I", zlib.crc32(record))


def _checked(data: bytes, start: int, length: int) -> tuple[bytes, int] | None:
    """The record of ``length`` bytes at ``start`` and the offset after its CRC, if it is
    complete and its CRC matches; else ``None``."""
    end = start + length + 4
    if end > len(data):
        return None
    record = data[start : start + length]
    (crc,) = struct.unpack_from("<I", data, end - 4)
    return (record, end) if zlib.crc32(record) == crc else None


def _length_at(data: bytes, offset: int, wide: bool) -> tuple[int, int] | None:
    """What the length field at ``offset`` says: (its size, the record's length), or ``None``
    where it holds no length the log writes (zero bytes, a cut-off wide field)."""
    if data[offset]:
        return 1, data[offset]
    if not wide or offset + 3 > len(data):
        return None
    (length,) = struct.unpack_from("<H", data, offset + 1)
    return (3, length) if 0xFF < length <= _MAX_RECORD else None


def _record_at(data: bytes, offset: int, wide: bool) -> tuple[bytes, int] | None:
    """The complete, non-empty, CRC-valid record at ``offset`` and the offset after it."""
    field = _length_at(data, offset, wide)
    return None if field is None else _checked(data, offset + field[0], field[1])


def _valid_with_another_length(data: bytes, offset: int) -> bool:
    """Whether a CRC-valid record starts at ``offset`` with a length other than its length
    field says: then that field is what is damaged, and the records after it are real."""
    short = (_checked(data, offset + 1, n) for n in range(1, 0x100))
    wide = (_checked(data, offset + 3, n) for n in range(0x100, _MAX_RECORD + 1))
    return any(found is not None for found in (*short, *wide))


class FileLog(MemoryLog):
    """An append-only file of records ``length (u8) | record | CRC-32 (u32)``, fsync'd each
    (and a new log's directory, once, so that its name survives a power cut too).

    A record longer than 255 bytes (a DONE with a result of 249-255 bytes) is framed *wide*:
    ``0x00 | length (u16) | record | CRC-32``. The first wide record is preceded by a format
    record (``0x56 0x02``): the log is then *format 2*, which a zse before it refuses (unknown
    record) rather than misreading; a log without wide records stays format 1, as before.

    One :class:`FileLog` holds the file at a time: it takes an exclusive ``flock`` on it (as
    :mod:`zse.store` does with a store file), and a second one, in this process or another,
    gets :class:`~zse.errors.StoreError` instead of executing the same transactions again. A
    path that cannot be opened, read or written (a directory, no permission, an I/O error)
    raises :class:`~zse.errors.StoreError` too; after a failed write the log refuses further
    writes (reopen it: the replay decides what reached the disk).

    Opening replays the file. A *torn tail* is cut off with a warning naming its file offset:
    what a power cut during the last append leaves (each append is fsync'd before the next is
    written, so only the last can be torn): a record cut short, or the zero bytes a file system
    leaves where the data never reached the disk, with nothing but zero bytes after the span
    its length field claims. Damage followed by more than that (bytes after that span, a
    record that is valid with another length, or, after zero bytes, a complete record) is
    corruption in the middle of the log and raises :class:`InvalidFrame` with the file offset.
    A complete record inside the torn record's own span (the result bytes of a torn DONE) is
    part of it, not a record. A file that does not begin as a log does (a BEGIN or the format
    record; zero bytes only are a torn tail) is a foreign file: :class:`StoreError` naming
    it, and the file is left as it is.

    Each append (its ``write`` and ``fsync``) blocks until it is on disk: an asyncio shell
    makes it off the event loop (:attr:`blocking`), one at a time. Appends and :meth:`close`
    hold one lock, so a log closed while an append is in flight in another thread (a frame
    cancelled mid-write) is closed once that append has ended, and an append after the close
    is refused: no write ever lands in a file that took the log's closed descriptor number.
    """

    blocking: ClassVar[bool] = True

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        super().__init__()
        self.path = os.fspath(path)
        self._fsync = fsync
        self._wide = False
        self._failed = False
        fd = self._claim()
        try:
            self._size = self._replay(fd)
        except BaseException:
            os.close(fd)
            raise
        # a file object owns the descriptor (and so the lock): a FileLog dropped unclosed
        # releases it when collected, as the file object it held before did
        self._file: io.FileIO | None = io.FileIO(fd, "r+")
        #: Held by each append, whole, and by close: the file stays open while it is written.
        self._lock = threading.Lock()

    def _claim(self) -> int:
        """Open the file (created if missing) and take its exclusive lock."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot open the HHT log: {_reason(exc)}") from exc
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise StoreError(f"{self.path}: the HHT log is not a regular file")
            try:
                import fcntl  # noqa: PLC0415 - POSIX only
            except ImportError:  # pragma: no cover - Windows: nothing is enforced
                return fd
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise StoreError(
                    f"{self.path}: the HHT log is in use by another FileLog (another meter "
                    "process, or already open in this one); one at a time"
                ) from None
            if self._fsync and os.fstat(fd).st_size == 0:
                # new: its name on disk before its first record
                sync_directory(os.path.dirname(os.path.abspath(self.path)))
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _replay(self, fd: int) -> int:
        """Apply the file's records; the size of what is kept."""
        chunks = []
        try:
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot read the HHT log: {_reason(exc)}") from exc
        data = b"".join(chunks)
        if data.strip(b"\x00") and not any(head.startswith(data[:2]) for head in _HEADS):
            # not how a log begins (nor the zero bytes a file system leaves): a foreign file,
            # which must not be cut as a torn tail (hostile-input audit D10)
            raise StoreError(
                f"{self.path}: not an HHT log (its first bytes are not a log record's); "
                "left as it is"
            )
        offset = 0
        while offset < len(data):
            found = _record_at(data, offset, self._wide)
            if found is None:
                if not self._torn(data, offset):
                    raise InvalidFrame(f"corrupt HHT log record at file offset {offset}")
                self._cut(fd, offset, len(data))
                return offset
            record, end = found
            self._apply(record, offset)
            offset = end
        return offset

    def _torn(self, data: bytes, offset: int) -> bool:
        """Whether the damage at ``offset`` is a torn tail (see the class docstring)."""
        field = _length_at(data, offset, self._wide)
        if field is None:  # zero bytes where a length belongs: no complete record may follow,
            # and only zero bytes beyond what one append writes
            if data[offset + _MAX_APPEND :].strip(b"\x00"):
                return False
            return not any(_record_at(data, at, True) for at in range(offset + 1, len(data)))
        end = offset + field[0] + field[1] + 4
        if data[end:].strip(b"\x00"):  # bytes after its span: it was not the last append
            return False
        return not _valid_with_another_length(data, offset)

    def _cut(self, fd: int, offset: int, size: int) -> None:
        """Drop the torn tail ``offset..size`` (power cut mid-append), durably."""
        LOGGER.warning(
            "HHT log %s: torn tail of %d bytes at file offset %d dropped "
            "(an append cut short by a power loss); %d bytes of complete records kept",
            self.path,
            size - offset,
            offset,
            offset,
        )
        try:
            os.ftruncate(fd, offset)
            if self._fsync:
                os.fsync(fd)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot cut the HHT log: {_reason(exc)}") from exc

    def _apply(self, record: bytes, offset: int) -> None:
        kind = record[0]
        if kind == _BEGIN and len(record) == _BEGIN_REC.size:
            _, txid, request, index, count = _BEGIN_REC.unpack(record)
            super().begin(LogEntry(txid, request, index, count))
        elif kind == _DONE and len(record) >= _DONE_REC.size:
            _, txid, status, length = _DONE_REC.unpack_from(record)
            if (
                len(record) != _DONE_REC.size + length
                or txid not in self._entries
                or status not in Status._value2member_map_
            ):
                raise InvalidFrame(f"inconsistent HHT log record at file offset {offset}")
            super().done(txid, Status(status), record[_DONE_REC.size :])
        elif kind == _FORMAT and len(record) == len(_FORMAT_2):
            if record != _FORMAT_2:
                raise InvalidFrame(
                    f"HHT log format {record[1]} at file offset {offset}: this zse reads 1 and 2"
                )
            self._wide = True
        else:
            raise InvalidFrame(f"unknown HHT log record at file offset {offset}")

    def _append(self, record: bytes) -> None:
        with self._lock:  # close waits: the descriptor is this file's until the append ends
            file = self._file
            if file is None:
                raise StoreError(f"{self.path}: the HHT log is closed")
            self._write(file.fileno(), record)

    def _write(self, fd: int, record: bytes) -> None:
        """Append ``record`` to the open file ``fd``, durably (the caller holds the lock)."""
        if self._failed:
            raise StoreError(f"{self.path}: a write to the HHT log failed; reopen it")
        data = _frame(record)
        wide = len(record) > 0xFF
        if wide and not self._wide:
            data = _frame(_FORMAT_2) + data  # format 2 from here on, in the same append
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if self._fsync:
                os.fsync(fd)
        except OSError as exc:
            self._failed = True  # what reached the disk is the replay's to decide
            with contextlib.suppress(OSError):
                os.ftruncate(fd, self._size)
            raise StoreError(f"{self.path}: cannot write the HHT log: {_reason(exc)}") from exc
        self._size += len(data)
        self._wide = self._wide or wide

    def begin(self, entry: LogEntry) -> None:
        self._append(
            _BEGIN_REC.pack(
                _BEGIN, entry.transaction_id, entry.request_id, entry.index, entry.count
            )
        )
        super().begin(entry)

    def done(self, transaction_id: int, status: Status, result: bytes) -> None:
        if len(result) > 0xFF:
            raise InvalidFrame(f"HHT result of {len(result)} bytes: the wire carries at most 255")
        self._append(_DONE_REC.pack(_DONE, transaction_id, status, len(result)) + result)
        super().done(transaction_id, status, result)

    def close(self) -> None:
        """Close the file and release its ``flock`` (again: nothing). An append in flight in
        another thread ends first (this blocks until it has: an asyncio shell awaits
        :func:`zse.interpan.service.drain` before, so the loop does not wait); an append after
        it raises :class:`~zse.errors.StoreError` and writes nothing."""
        with self._lock:
            file, self._file = self._file, None
            if file is not None:
                file.close()


def _reason(exc: OSError) -> str:
    """An OSError in a few words, on one line."""
    return exc.strerror or str(exc).replace("\n", " ")


# -- the meter (server) ---------------------------------------------------------------------

Handler = Callable[[bytes], bytes]


@dataclass(frozen=True, slots=True)
class Begin:
    """A log write the meter needs durable before it runs the command: ``BEGIN`` of
    ``entry`` (:meth:`ExecutedLog.begin`)."""

    entry: LogEntry


@dataclass(frozen=True, slots=True)
class Done:
    """A log write the meter needs durable before it answers: ``DONE`` of the transaction,
    with its outcome (:meth:`ExecutedLog.done`)."""

    transaction_id: int
    status: Status
    result: bytes


LogWrite = Begin | Done


class Steps:
    """One frame's handling by an :class:`HhtMeter` (:meth:`HhtMeter.steps`): call
    :meth:`next_write`, make the write it returns (:meth:`HhtMeter.write`: durable, in order,
    one at a time), and call it again, until it returns ``None``: then :attr:`answer` is the
    frame to answer with. If a write fails, :meth:`close` instead: nothing more runs (a
    command whose ``BEGIN`` did not reach the log has not run)."""

    def __init__(self, steps: Generator[LogWrite, None, bytes]) -> None:
        self._steps = steps
        #: The answer frame, once :meth:`next_write` returned ``None``.
        self.answer: bytes | None = None

    def next_write(self) -> LogWrite | None:
        """The next log write to make, or ``None`` once answered (it runs the handler, on
        the caller's thread, once the ``BEGIN`` before it was made); :class:`InvalidFrame`
        at the first call if the frame is not a carrier request."""
        try:
            return self._steps.send(None)
        except StopIteration as stop:
            self.answer = stop.value
            return None

    def close(self) -> None:
        """Stop here: nothing more runs (again: nothing)."""
        self._steps.close()


class HhtMeter:
    """The meter's side: executes each transaction id at most once and answers resumes.

    ``handlers`` maps command codes to functions of the body returning the result bytes (or
    raising :class:`CommandFailed`). :meth:`receive` takes a carrier ZCL frame from any channel
    (inter-PAN or the network) and returns the ZCL frame to answer with, writing the log in
    place; :meth:`steps` does the same but hands each log write to its caller (an asyncio
    shell writes off the event loop). Frames are handled one at a time: a caller finishes
    (or closes) one frame's steps before it starts the next.
    """

    def __init__(
        self,
        log: ExecutedLog,
        handlers: dict[int, Handler],
        *,
        manufacturer_code: int = DEFAULT_MANUFACTURER_CODE,
    ) -> None:
        self.log = log
        self.handlers = dict(handlers)
        self.manufacturer_code = manufacturer_code
        self.executions = 0

    def receive(self, zcl_frame: bytes) -> bytes:
        """Handle one frame, writing the log in place (a :class:`FileLog` blocks on each
        fsync); :class:`InvalidFrame` if it is not a carrier request."""
        with contextlib.closing(self.steps(zcl_frame)) as steps:
            while (write := steps.next_write()) is not None:
                self.write(write)
        assert steps.answer is not None
        return steps.answer

    def write(self, write: LogWrite) -> None:
        """Make one log write of :meth:`steps` (blocking: a :class:`FileLog` appends and
        fsyncs); it raises what the log raises (:class:`~zse.errors.StoreError`)."""
        if isinstance(write, Begin):
            self.log.begin(write.entry)
        else:
            self.log.done(write.transaction_id, write.status, write.result)

    def steps(self, zcl_frame: bytes) -> Steps:
        """Handle one frame step by step (:class:`Steps`): each log write that must be durable
        before the meter goes on (a :class:`Begin` before the handler runs, a :class:`Done`
        before the answer) is handed to the caller, which makes it where it likes (an asyncio
        shell: off the event loop)."""
        return Steps(self._handle(zcl_frame))

    def _handle(self, zcl_frame: bytes) -> Generator[LogWrite, None, bytes]:
        header, message = decode(zcl_frame, manufacturer_code=self.manufacturer_code)
        if isinstance(message, Execute):
            reply: Message = yield from self._execute(message)
        elif isinstance(message, ResumeQuery):
            reply = self._resume(message.request_id)
        else:
            raise InvalidFrame("a meter receives execute and resume query, not responses")
        return encode(reply, tsn=header.tsn, manufacturer_code=self.manufacturer_code)

    def _execute(self, message: Execute) -> Generator[LogWrite, None, Result]:
        cmd = message.command
        known = self.log.get(cmd.transaction_id)
        if known is not None:
            status = known.status
            if status is None:  # BEGIN without DONE: begun before a restart, or by a frame
                # cancelled while its BEGIN was written, or by a handler that raised: the
                # outcome is unknown, so it is never run again
                return Result(cmd.transaction_id, Status.INTERRUPTED)
            return Result(cmd.transaction_id, Status.DUPLICATE, known.result)
        handler = self.handlers.get(cmd.code)
        if handler is None:
            return Result(cmd.transaction_id, Status.UNSUPPORTED)
        yield Begin(LogEntry(cmd.transaction_id, message.request_id, message.index, message.count))
        self.executions += 1
        try:
            result, status = handler(cmd.body), Status.EXECUTED
        except CommandFailed as exc:
            result, status = exc.result, Status.FAILED
        except InvalidFrame:
            result, status = b"", Status.FAILED
        result = bytes(result)
        if len(result) > 0xFF:  # ran, but its result does not fit the answer's u8 length
            LOGGER.error(
                "HHT transaction 0x%08X: a result of %d bytes cannot be answered (at most 255)",
                cmd.transaction_id,
                len(result),
            )
            result, status = b"", Status.FAILED
        yield Done(cmd.transaction_id, status, result)
        return Result(cmd.transaction_id, status, result)

    def _resume(self, request_id: int) -> ResumeResponse:
        entries = list(self.log.for_request(request_id))
        count = max((e.count for e in entries), default=0)
        return ResumeResponse(request_id, count, frozenset(e.index for e in entries))


# -- the terminal (client) ------------------------------------------------------------------


@dataclass
class HhtTerminal:
    """The terminal's side of one service request: what to send next, and when to give up.

    Send :meth:`next_frame`; feed answers to :meth:`receive`; at :attr:`deadline` call
    :meth:`handle_timeout` (which resends the same transaction: the meter answers a repeat with
    ``DUPLICATE`` and the stored outcome). After a broken link call :meth:`resume`, send its
    frame, and feed the answer: the request continues at the first command not executed.
    """

    request_id: int
    commands: list[Command]
    manufacturer_code: int = DEFAULT_MANUFACTURER_CODE
    timeout: float = 2.0
    results: dict[int, Result] = field(default_factory=dict)
    _index: int = 0
    _tsn: int = 0
    _awaiting: Execute | ResumeQuery | None = None
    deadline: float | None = None
    resumed_at: int | None = None  # where a resume response put the request

    def __post_init__(self) -> None:
        if not 1 <= len(self.commands) <= 255:
            raise ValueError("a service request holds 1..255 commands")
        if len({c.transaction_id for c in self.commands}) != len(self.commands):
            raise ValueError("transaction ids within a request must be unique")

    @property
    def done(self) -> bool:
        return self._index >= len(self.commands)

    @property
    def position(self) -> int:
        """Index of the next command to run."""
        return self._index

    def _send(self, message: Execute | ResumeQuery, now: float) -> bytes:
        self._awaiting = message
        self.deadline = now + self.timeout
        self._tsn = (self._tsn + 1) & 0xFF
        return encode(message, tsn=self._tsn, manufacturer_code=self.manufacturer_code)

    def next_frame(self, now: float) -> bytes | None:
        """The execute frame for the current command (``None`` once the request is done)."""
        if self.done:
            self._awaiting, self.deadline = None, None
            return None
        message = Execute(
            self.request_id, self._index, len(self.commands), self.commands[self._index]
        )
        return self._send(message, now)

    def resume(self, now: float) -> bytes:
        """A resume query, to learn where the meter stands after a broken link."""
        return self._send(ResumeQuery(self.request_id), now)

    def handle_timeout(self, now: float) -> bytes | None:
        """At the deadline: the frame to resend (the same transaction id), else ``None``."""
        if self.deadline is None or now < self.deadline or self._awaiting is None:
            return None
        return self._send(self._awaiting, now)

    def receive(self, zcl_frame: bytes, now: float) -> Result | ResumeResponse | None:
        """Feed an answer; returns it if it answered what is awaited, else ``None``."""
        _, message = decode(zcl_frame, manufacturer_code=self.manufacturer_code)
        awaiting = self._awaiting
        if isinstance(message, Result) and isinstance(awaiting, Execute):
            if message.transaction_id != awaiting.command.transaction_id:
                return None  # a late answer to an earlier transmission
            self.results[message.transaction_id] = message
            self._index += 1
            self._awaiting, self.deadline = None, None
            return message
        if isinstance(message, ResumeResponse) and isinstance(awaiting, ResumeQuery):
            if message.request_id != self.request_id:
                return None
            index = 0
            while index < len(self.commands) and index in message.executed:
                index += 1
            self._index = self.resumed_at = index
            self._awaiting, self.deadline = None, None
            return message
        return None
