"""The devices CSV: one file format for ``zse installcode --csv`` and ``zse esi``'s ``import``.

A sans-IO reader and writer (no files, no processes: the caller feeds bytes or text lines). The
format, documented in ``docs/installcode.md``:

- UTF-8 text, an optional byte-order mark (Excel writes one), comma-separated, lines ending
  with LF, CRLF or CR, RFC 4180 quoting (a quoted cell may run over lines, up to 8, but no cell
  may hold a line break: such a row is refused; a quote never closed, a stray one, refuses its
  own row only, the lines after it being read as rows of their own);
- the first non-blank row is a **header naming the columns**, in any order, case-insensitive
  (``Install Code`` and ``install-code`` name ``install_code``);
- required columns ``eui64`` and ``install_code`` (a printed code, or a label or QR string
  with the same EUI-64 and an install code, :func:`zse.installcode.parse_label`); optional
  ``label``, ``groups`` (registry groups separated by ``;``) and ``link_key`` (32 hex digits,
  written by ``zse installcode``; when present and not empty it must be the install code's
  link key); any other column name is an error, so a misspelt column is never dropped in
  silence;
- one device a row; blank rows are skipped; a row may stop before its trailing optional cells
  (they are empty) but may not have more cells than the header names; an EUI-64 may appear
  only once, and so may an install code; a file without a device row is an error;
- a ``label`` or ``groups`` cell a spreadsheet would run as a formula is written behind a
  single quote, which the reader takes off (OWASP's rule against CSV injection).

File-level problems (not UTF-8, no header, no devices, a CSV syntax error) raise
:class:`DeviceCsvError`; row-level problems are yielded as :class:`DeviceCsvError` values so that
every bad row is reported, each with its line number. Messages never carry an install code or a
link key from the file.
"""

from __future__ import annotations

import codecs
import csv
import io
import operator
import re
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from zse._words import counted
from zse.errors import DecodeError, ZseError
from zse.installcode import InstallCode, canonical_eui64, format_eui64, mmo_hash, parse_label
from zse.provisioning.lifecycle import unprintable_character

__all__ = [
    "COLUMNS",
    "REQUIRED",
    "Columns",
    "DeviceCsvError",
    "DeviceRow",
    "decode_lines",
    "is_short_chunk",
    "read_devices",
    "write_devices",
]

#: Every column the format knows, in the order the writer puts them.
COLUMNS = ("eui64", "install_code", "label", "groups", "link_key")
#: The columns every file must name.
REQUIRED = ("eui64", "install_code")
_CHUNK_ROWS = 4096
#: the longest line read (CSV's own field limit): a longer one is refused as soon as it is seen
MAX_LINE = 131_072
_TOO_LONG = f"a line longer than {MAX_LINE} characters: not a devices CSV"
#: the most lines a quoted cell may run over before it is taken for a stray quote's
_MAX_SPAN = 8
_UNCLOSED_HEADER = 'the header has a quote (") that opens a cell it does not close: a stray quote?'
_LINE_END = re.compile(r"(\r\n?|\n)")
#: A cell a spreadsheet would run as a formula (OWASP "CSV injection"), behind any quotes:
#: the writer puts a single quote before it, the reader takes one off.
_FORMULA = re.compile(r"'*[=+\-@\t\r]")
#: The cells that must not hold a line break (whitespace their parsers would skip).
_ONE_LINE = ("eui64", "install_code", "link_key")
_BOMS = {
    codecs.BOM_UTF16_LE: "UTF-16",
    codecs.BOM_UTF16_BE: "UTF-16",
    codecs.BOM_UTF32_LE: "UTF-32",
}


class DeviceCsvError(ZseError, ValueError):
    """A devices CSV (or one of its rows) that cannot be used; ``line`` is 1-based or None."""

    def __init__(self, problem: str, line: int | None = None) -> None:
        super().__init__(problem if line is None else f"line {line}: {problem}")
        self.problem = problem
        self.line = line

    def __reduce__(self) -> tuple[type[DeviceCsvError], tuple[str, int | None]]:
        return type(self), (self.problem, self.line)


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceRow:
    """One valid device row, in canonical form (the secrets are kept out of the repr)."""

    line: int
    eui64: str  # 16 upper-case hex digits
    install_code: str = field(repr=False)  # canonical printed form
    link_key: bytes = field(repr=False)
    label: str = ""
    groups: tuple[str, ...] = ()


def decode_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Text lines (ends kept) from a UTF-8 byte stream given in chunks; a leading byte-order
    mark is dropped. Bytes that are not UTF-8, and a NUL byte (UTF-16 without a byte-order
    mark), raise :class:`DeviceCsvError` with their offset (and "UTF-16" when the file starts
    with a UTF-16/32 byte-order mark); a line longer than :data:`MAX_LINE` characters raises
    as soon as it is that long (no device row is: the file is not a devices CSV)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    offset = 0
    lines = _Lines()
    first = True
    for chunk in chunks:
        if first and chunk:
            first = False
            for bom, name in _BOMS.items():
                if chunk.startswith(bom):
                    raise DeviceCsvError(f"not UTF-8 text but {name}: save it as UTF-8")
        try:
            text = decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            where = offset + max(exc.start, 0)
            raise DeviceCsvError(f"not UTF-8 text (byte {where} cannot be decoded)") from None
        if b"\x00" in chunk:  # valid UTF-8, but no text file has it: UTF-16 without a BOM
            where = offset + chunk.index(b"\x00")
            raise DeviceCsvError(
                f"not a text file (a NUL byte at byte {where}; UTF-16 without a byte-order "
                "mark?): save it as UTF-8"
            )
        offset += len(chunk)
        yield from lines.feed(text)
    try:
        yield from lines.feed(decoder.decode(b"", final=True))
    except UnicodeDecodeError:
        raise DeviceCsvError(
            f"not UTF-8 text (it ends inside a character at byte {offset})"
        ) from None
    if rest := lines.rest():
        yield rest


class _Lines:
    """Text in pieces to whole lines, in linear time: the unfinished line is kept as a list
    of pieces, joined once its end arrives, and refused once longer than :data:`MAX_LINE`.

    A line ends with ``\\n``, ``\\r\\n`` or a lone ``\\r`` (Excel for Mac's "CSV (Macintosh)"),
    even when a chunk ends between the ``\\r`` and the ``\\n``."""

    __slots__ = ("cr", "length", "number", "pending")

    def __init__(self) -> None:
        self.pending: list[str] = []  #: the unfinished line, in pieces
        self.length = 0  #: its length
        self.number = 1  #: its line number
        self.cr = False  #: whether the text so far ends with a ``\\r`` (held back)

    def feed(self, text: str) -> Iterator[str]:
        """The lines ``text`` completes (ends kept)."""
        if self.cr:
            text, self.cr = "\r" + text, False
        if text.endswith("\r"):  # a line end, or the first half of one: the next text tells
            text, self.cr = text[:-1], True
        if "\r" in text:
            split = _LINE_END.split(text)
            pieces, ends = split[0::2], split[1::2]
        elif "\n" in text:
            pieces = text.split("\n")
            ends = ["\n"] * (len(pieces) - 1)
        else:
            self._hold(text)
            return
        self._hold(pieces[0])
        pieces[0] = "".join(self.pending)
        for line, end in zip(pieces, ends, strict=False):  # all but the last piece
            self._check(len(line))
            self.number += 1
            yield line + end
        self.pending, self.length = [], 0
        self._hold(pieces[-1])

    def rest(self) -> str:
        """The last line, without an end (or with the ``\\r`` that ended the text)."""
        return "".join(self.pending) + ("\r" if self.cr else "")

    def _hold(self, text: str) -> None:
        if text:
            self.pending.append(text)
            self.length += len(text)
            self._check(self.length)

    def _check(self, length: int) -> None:
        if length > MAX_LINE:
            raise DeviceCsvError(_TOO_LONG, self.number)


class _Unclosed(list[str]):
    """The row of a line whose quoted cell is not closed (it holds no cell: the lines after
    it, which the cell would have taken, are read again as rows of their own)."""

    __slots__ = ("problem",)

    def __init__(self, problem: str) -> None:
        super().__init__()
        self.problem = problem

    def __reduce__(self) -> tuple[type[_Unclosed], tuple[str]]:
        return type(self), (self.problem,)


class _TooManyLines(Exception):
    """A record would run over more than :data:`_MAX_SPAN` lines."""


class _Records:
    """The lines :func:`csv.reader` reads, numbered, with those of the record being read
    kept (at most :data:`_MAX_SPAN`): when its quoted cell turns out not to be closed, the
    lines after its first are given again (:meth:`again`)."""

    __slots__ = ("_again", "_lines", "_taken", "at_end", "number")

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = enumerate(lines, 1)
        self._again: deque[tuple[int, str]] = deque()  #: lines to give again, first first
        self._taken: list[tuple[int, str]] = []  #: the lines of the record being read
        self.number = 0  #: the number of the last line given
        self.at_end = False  #: whether the input ended inside a record

    def __iter__(self) -> _Records:
        return self

    def __next__(self) -> str:
        if len(self._taken) == _MAX_SPAN:
            raise _TooManyLines
        if self._again:
            self.number, line = self._again.popleft()
        else:
            try:
                self.number, line = next(self._lines)
            except StopIteration:
                self.at_end = bool(self._taken)
                raise
        self._taken.append((self.number, line))
        return line

    def plain(self) -> tuple[int, str] | None:
        """The next line without its end when it is a record of its own that the CSV reader
        would split at its commas (no quote, no line break before its end), taken; else None,
        the line (if any) left for the reader."""
        item: tuple[int, str] | None = self._again.popleft() if self._again else None
        if item is None:
            item = next(self._lines, None)
            if item is None:
                return None
        text = item[1].rstrip("\r\n")
        if '"' in text or "\n" in text or "\r" in text:
            self._again.appendleft(item)
            return None
        self.number = item[0]
        return item[0], text

    def next_record(self) -> None:
        """A record starts."""
        self._taken.clear()
        self.at_end = False

    def lines(self) -> tuple[int, int]:
        """The first and the last line of the record read."""
        return self._taken[0][0], self._taken[-1][0]

    def again(self) -> _Unclosed:
        """Give the record's lines after its first again: its quoted cell is not closed
        (before the end of the input if :attr:`at_end`, else within the limits); its row."""
        first, last = self.lines()
        self._again.extendleft(reversed(self._taken[1:]))
        if self.at_end:
            where = "never closed"
            after = f"line {last} is" if last == first + 1 else f"lines {first + 1}-{last} are"
        else:
            where = f"not closed within {_MAX_SPAN} lines or {MAX_LINE} characters"
            after = "the lines after it are"
        if last == first:
            return _Unclosed(f'a quote (") opens a cell {where}: a stray quote?')
        return _Unclosed(
            f'a quote (") opens a cell {where}: a stray quote? ({after} read as rows of their '
            "own, not as part of that cell)"
        )


#: A record and the line it starts on: its cells, or a line with no quote (without its end:
#: its cells joined by commas, split where they are checked).
_Record = tuple[int, str | list[str]]


def _cells_of(record: str | list[str]) -> list[str]:
    """The cells of a record as :func:`_numbered_rows` gives it."""
    return record if isinstance(record, list) else record.split(",")


def _numbered_rows(lines: Iterable[str]) -> Iterator[_Record]:
    """Non-blank CSV records with the line each starts on; CSV syntax errors raise.

    A quoted cell may hold a line break (RFC 4180; such a row is refused later), but a quote
    never closed (a stray one) would swallow every line after it into one bad row: that row
    is an :class:`_Unclosed` and the lines after it are read again, as is done when a quoted
    cell runs over more than :data:`_MAX_SPAN` lines or :data:`MAX_LINE` characters (so that
    each line is read at most :data:`_MAX_SPAN` times)."""
    source = _Records(lines)
    reader = csv.reader(source)
    while True:
        plain = source.plain()
        if plain is not None:  # most lines: what the reader gives, at less cost
            if plain[1].replace(",", "").strip():
                yield plain
            continue
        source.next_record()
        try:
            row = next(reader)
        except StopIteration:
            return
        except _TooManyLines:
            yield source.lines()[0], source.again()
            continue
        except csv.Error as exc:
            first, last = source.lines()
            if last == first or "field limit" not in str(exc):
                raise DeviceCsvError(f"not CSV: {exc}", source.number) from None
            yield first, source.again()  # a cell longer than any line may be
            continue
        if source.at_end:  # the input ended inside a quoted cell
            yield source.lines()[0], source.again()
        elif any(cell.strip() for cell in row):
            yield source.lines()[0], row


def _is_data(cell: str) -> bool:
    """Whether a cell is an EUI-64 or an install code rather than a column name."""
    for parse in (canonical_eui64, parse_label):
        try:
            parse(cell)
        except DecodeError:
            continue
        return True
    return False


_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_CODE_DIGITS = 36  # the longest install code: 128 bits and the CRC


def _install_code(eui64: str, text: str, line: int) -> InstallCode:
    """The install code of a row's cell: a printed code or a label of the same device."""
    try:
        if len(text) <= _CODE_DIGITS and _HEX_DIGITS.issuperset(text):
            # hex digits alone: what parse_label reads as a bare code (every label form has
            # other characters), with the same errors, without building a DeviceLabel
            return InstallCode.parse(text)
        printed = parse_label(text)
    except DecodeError as exc:
        raise DeviceCsvError(f"EUI-64 {eui64}: {exc}", line) from None
    code = printed.install_code
    if code is None:
        raise DeviceCsvError(
            f"EUI-64 {eui64}: install_code is a {printed.form.value} label carrying a link "
            "key, not an install code",
            line,
        )
    if printed.eui64 is not None and format_eui64(printed.eui64) != eui64:
        raise DeviceCsvError(
            f"EUI-64 {eui64}: install_code is a label for another device "
            f"({format_eui64(printed.eui64)})",
            line,
        )
    return code


def _to_spreadsheet(cell: str) -> str:
    """``cell`` as written: a single quote before a cell a spreadsheet would run as a formula
    (one starting with ``=``, ``+``, ``-``, ``@``, tab or CR, behind any quotes: OWASP's rule
    against CSV injection), so that it shows as text."""
    return "'" + cell if _FORMULA.match(cell) else cell


def _from_spreadsheet(cell: str) -> str:
    """The cell :func:`_to_spreadsheet` wrote: its single quote taken off (a spreadsheet's own
    mark for "text", so a file saved by one reads the same)."""
    return cell[1:] if cell.startswith("'") and _FORMULA.match(cell) else cell


def _check_one_line(names: Sequence[str], cells: Sequence[str], line: int) -> None:
    """Refuse a line break in a hex cell, whose parser would skip it as whitespace (a line
    break in ``label`` or ``groups`` is refused as a control character)."""
    for name, cell in zip(names, cells, strict=False):
        if name in _ONE_LINE and ("\n" in cell or "\r" in cell):
            raise DeviceCsvError(
                f"the {name} cell holds a line break (a quoted cell over lines): one device a line",
                line,
            )


def _label_and_groups(
    eui64: str, label: str, groups: str, line: int
) -> tuple[str, tuple[str, ...]]:
    """A row's label and group names, spreadsheet quotes taken off; :class:`DeviceCsvError`
    for a character that does not print."""
    for name, cell in (("label", label), ("groups", groups)):
        problem = unprintable_character(cell)
        if problem is not None:
            raise DeviceCsvError(f"EUI-64 {eui64}: {name} has {problem}", line)
    names = tuple(g.strip() for g in _from_spreadsheet(groups).split(";") if g.strip())
    return _from_spreadsheet(label), names


def _cells(count: int) -> str:
    return counted(count, "cell")


def _column_name(cell: str) -> str:
    return "_".join(cell.strip().lower().replace("-", " ").split())


_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,31}")
_HEX_RUN = re.compile(r"[0-9a-f]{8}")


def _shown_name(name: str) -> bool:
    """Whether an unknown column's name may be shown: a short identifier (``lable``, ``mac``)
    without 8 hex digits in a row, its underscores aside (a grouped code reads
    ``83fe_d340_...``). Anything else may be a row of data with a typo (an install code whose
    CRC or an EUI-64 that does not parse, so not recognised as data) and is not shown."""
    return bool(_IDENTIFIER.fullmatch(name)) and not _HEX_RUN.search(name.replace("_", ""))


@dataclass(frozen=True, slots=True)
class Columns:
    """A file's header: the column names in file order (each one of :data:`COLUMNS`)."""

    names: tuple[str, ...]

    @classmethod
    def parse(cls, cells: Sequence[str], line: int = 1) -> Columns:
        """The header row; :class:`DeviceCsvError` if it is not one."""
        if isinstance(cells, _Unclosed):
            raise DeviceCsvError(_UNCLOSED_HEADER, line)
        if len(cells) == 1:
            for separator, what in ((";", "semicolons"), ("\t", "tabs")):
                parts = [_column_name(part) for part in cells[0].split(separator)]
                if len(parts) > 1 and all(part in COLUMNS for part in parts):
                    raise DeviceCsvError(
                        f"the header's columns are separated by {what}, not commas: save the "
                        "file as comma-separated CSV (Excel: CSV UTF-8)",
                        line,
                    )
        names = tuple(_column_name(cell) for cell in cells)
        if any(_is_data(cell) for cell in cells):  # never echo a code from a headerless file
            raise DeviceCsvError(
                "no header row: the first row must name the columns, e.g. eui64,install_code,label",
                line,
            )
        for name in names:
            if name not in COLUMNS:
                if _shown_name(name):
                    what = f"unknown column {name!r} in the header"
                else:  # never echo what may be an install code or a key
                    number = names.index(name) + 1
                    what = (
                        f"the first row is not a header: its cell {number} is not a column "
                        "name (the first row must name the columns, e.g. eui64,install_code,label)"
                    )
                raise DeviceCsvError(f"{what} (known: {', '.join(COLUMNS)})", line)
            if names.count(name) > 1:
                raise DeviceCsvError(f"column {name!r} is named twice in the header", line)
        missing = [name for name in REQUIRED if name not in names]
        if missing:
            raise DeviceCsvError(f"the header lacks the column {' and '.join(missing)}", line)
        return cls(names)

    def output(self) -> tuple[str, ...]:
        """The columns ``zse installcode`` writes for this input: the known ones it has, and
        ``link_key``."""
        return tuple(name for name in COLUMNS if name in self.names or name == "link_key")

    def device(self, line: int, cells: Sequence[str]) -> DeviceRow:
        """One row as a device; :class:`DeviceCsvError` if it is not a valid one."""
        return _device_row(line, self._fields(line, cells))

    def _fields(self, line: int, cells: Sequence[str], *, one_line: bool = False) -> _Fields:
        """:meth:`device`'s checks: the row's EUI-64, install code, link key, label, groups
        (``one_line``: the cells are known to hold no line break)."""
        if isinstance(cells, _Unclosed):
            raise DeviceCsvError(cells.problem, line)
        if len(cells) > len(self.names):
            raise DeviceCsvError(
                f"{_cells(len(cells))} but the header names {len(self.names)} columns "
                f"({','.join(self.names)})",
                line,
            )
        if not one_line:
            _check_one_line(self.names, cells, line)
        values = dict(zip(self.names, map(str.strip, cells), strict=False))
        for name in REQUIRED:
            if name not in values:
                raise DeviceCsvError(
                    f"no {name}: {_cells(len(cells))} but the header names {len(self.names)} "
                    f"({','.join(self.names)})",
                    line,
                )
            if not values[name]:
                raise DeviceCsvError(f"{name} is empty", line)
        try:
            eui64 = canonical_eui64(values["eui64"])
        except DecodeError as exc:
            raise DeviceCsvError(str(exc), line) from None
        code = _install_code(eui64, values["install_code"], line)
        raw = bytes(code)
        link_key = mmo_hash(raw)
        stated = values.get("link_key", "")
        if stated:
            try:
                matches = bytes.fromhex(stated) == link_key
            except ValueError:
                raise DeviceCsvError(
                    f"EUI-64 {eui64}: link_key is not 32 hex digits", line
                ) from None
            if not matches:
                raise DeviceCsvError(
                    f"EUI-64 {eui64}: link_key is not the install code's link key", line
                )
        label, groups = values.get("label", ""), values.get("groups", "")
        if not (label or groups):
            return eui64, raw.hex().upper(), link_key, label, ()
        return eui64, raw.hex().upper(), link_key, *_label_and_groups(eui64, label, groups, line)

    def check(self, rows: list[_Record]) -> list[DeviceRow | DeviceCsvError]:
        """:meth:`device` for a chunk of numbered rows (picklable: runs in worker processes)."""
        checked: list[DeviceRow | DeviceCsvError] = []
        for line, record in rows:
            try:
                checked.append(_device_row(line, self._record_fields(line, record)))
            except DeviceCsvError as exc:
                checked.append(exc)
        return checked

    def _record_fields(self, line: int, record: str | list[str]) -> _Fields:
        """:meth:`_fields` of a record as :func:`_numbered_rows` gives it."""
        if isinstance(record, str):  # a line with no quote: no line break in its cells
            return self._fields(line, record.split(","), one_line=True)
        return self._fields(line, record)

    def written(self, rows: list[_Record]) -> tuple[str, list[_Written | DeviceCsvError]]:
        """:meth:`check` giving the valid rows as ``zse installcode`` writes them (the columns
        of :meth:`output`): their text, and for each row its error or its line, EUI-64, link
        key and where its text ends (less to send back from a worker than a :class:`DeviceRow`)."""
        pick = _picker(self.output())
        buffer = io.StringIO()
        write = csv.writer(buffer, lineterminator="\n").writerow
        checked: list[_Written | DeviceCsvError] = []
        for line, record in rows:
            try:
                eui64, code, link_key, label, groups = self._record_fields(line, record)
            except DeviceCsvError as exc:
                checked.append(exc)
                continue
            write(pick(_written_cells(eui64, code, link_key, label, groups)))
            checked.append((line, eui64, link_key, buffer.tell()))
        return buffer.getvalue(), checked


#: What :meth:`Columns._fields` finds in a valid row: EUI-64, install code (both canonical),
#: link key, label, groups.
_Fields = tuple[str, str, bytes, str, tuple[str, ...]]
#: A valid row written (:meth:`Columns.written`): its line, EUI-64, link key and where its
#: text ends.
_Written = tuple[int, str, bytes, int]


def _device_row(line: int, fields: _Fields) -> DeviceRow:
    eui64, code, link_key, label, groups = fields
    return DeviceRow(
        line=line, eui64=eui64, install_code=code, link_key=link_key, label=label, groups=groups
    )


def _written_cells(
    eui64: str, install_code: str, link_key: bytes, label: str, groups: tuple[str, ...]
) -> tuple[str, ...]:
    """The cells written for a device, one per name of :data:`COLUMNS` (formula cells quoted)."""
    return (
        eui64,
        install_code,
        _to_spreadsheet(label) if label else label,
        _to_spreadsheet(";".join(groups)) if groups else "",
        link_key.hex().upper(),
    )


def _picker(columns: Sequence[str]) -> Callable[[tuple[str, ...]], Sequence[str]]:
    """What takes the cells of ``columns`` (names of :data:`COLUMNS`), in their order, from
    :func:`_written_cells`."""
    return operator.itemgetter(*(COLUMNS.index(name) for name in columns))


class _LineWriter:
    """Rows to CSV text lines (RFC 4180 quoting where needed, LF line ends), one at a time."""

    __slots__ = ("_buffer", "_writer")

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\n")

    def line(self, cells: Sequence[str]) -> str:
        """The line of one row."""
        self._writer.writerow(cells)
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text


class _Seen:
    """The EUI-64s and link keys of the rows taken so far, each with its line: one device,
    one row; one code, one device."""

    __slots__ = ("_euis", "_keys")

    def __init__(self) -> None:
        self._euis: dict[str, int] = {}
        self._keys: dict[bytes, int] = {}  # the link key of each code

    def refusal(self, line: int, eui64: str, link_key: bytes) -> DeviceCsvError | None:
        """Why a valid row is refused all the same (its EUI-64 or its code on an earlier row),
        or None (it is taken)."""
        first = self._euis.setdefault(eui64, line)
        if first != line:
            return DeviceCsvError(f"EUI-64 {eui64} is already on line {first}", line)
        first = self._keys.setdefault(link_key, line)
        if first != line:  # one code, one key: a row copied, or a code misread
            return DeviceCsvError(
                f"EUI-64 {eui64}: the install code is already on line {first}, for another "
                "device (each device has its own code)",
                line,
            )
        return None


#: How chunks of rows are checked: ``map`` by default, a process pool's ordered map for speed.
ChunkMap = Callable[[Callable[[list[_Record]], Any], Iterable[list[_Record]]], Iterable[Any]]


def _chunks(rows: Iterator[_Record]) -> Iterator[list[_Record]]:
    """``rows`` in chunks of ``_CHUNK_ROWS``, the last one shorter if need be (only the last:
    :func:`is_short_chunk`)."""
    chunk: list[_Record] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == _CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def is_short_chunk(chunk: Sequence[object]) -> bool:
    """Whether a chunk a :class:`DeviceReader` hands its chunk map is short: then it is the
    last one (a full one may be the last too; that is known once the next is asked for)."""
    return len(chunk) < _CHUNK_ROWS


class DeviceReader:
    """Reads a devices CSV: :attr:`columns` once the header is read, then the rows."""

    def __init__(self, lines: Iterable[str], *, chunk_map: ChunkMap | None = None) -> None:
        self._rows = _numbered_rows(lines)
        self._map: ChunkMap = chunk_map or map
        first = next(self._rows, None)
        if first is None:
            raise DeviceCsvError("empty: no header row and no devices")
        self.header_line = first[0]
        self.columns = Columns.parse(_cells_of(first[1]), first[0])

    def __iter__(self) -> Iterator[DeviceRow | DeviceCsvError]:
        """Each row in file order: a :class:`DeviceRow`, or the :class:`DeviceCsvError` that
        says why the row is refused (an EUI-64 already on an earlier row is refused)."""
        seen = _Seen()
        count = 0
        checked: Iterable[list[DeviceRow | DeviceCsvError]] = self._map(
            self.columns.check, _chunks(self._rows)
        )
        for chunk in checked:
            for item in chunk:
                count += 1
                if isinstance(item, DeviceRow):
                    yield seen.refusal(item.line, item.eui64, item.link_key) or item
                else:
                    yield item
        if count == 0:
            raise DeviceCsvError("a header row but no devices", self.header_line)

    def written(self) -> Generator[tuple[str, int, list[DeviceCsvError]], None, None]:
        """The valid rows as ``zse installcode`` writes them (:func:`write_devices` with the
        columns of :meth:`Columns.output`), a chunk at a time: their text (the header before
        the first), how many they are, and the errors of the other rows (as :meth:`__iter__`
        gives them), in file order."""
        seen = _Seen()
        count = 0
        header = _LineWriter().line(self.columns.output())
        checked: Iterable[tuple[str, list[_Written | DeviceCsvError]]] = self._map(
            self.columns.written, _chunks(self._rows)
        )
        for text, items in checked:
            count += len(items)
            pieces: list[str] = []  # the text of the rows taken
            refused: list[DeviceCsvError] = []
            start = end = 0  # the text of the rows taken in a row since the last refused
            for item in items:
                if isinstance(item, DeviceCsvError):
                    refused.append(item)
                    continue
                line, eui64, link_key, row_end = item
                error = seen.refusal(line, eui64, link_key)
                if error is not None:
                    refused.append(error)
                    pieces.append(text[start:end])
                    start = row_end
                end = row_end
            pieces.append(text[start:end])
            taken = len(items) - len(refused)
            if taken and header:
                pieces.insert(0, header)
                header = ""
            yield "".join(pieces), taken, refused
        if count == 0:
            raise DeviceCsvError("a header row but no devices", self.header_line)


def read_devices(
    lines: Iterable[str], *, chunk_map: ChunkMap | None = None
) -> Iterator[DeviceRow | DeviceCsvError]:
    """The rows of a devices CSV given as text lines (see the module docstring)."""
    return iter(DeviceReader(lines, chunk_map=chunk_map))


def write_devices(rows: Iterable[DeviceRow], columns: Sequence[str] = COLUMNS) -> Iterator[str]:
    """Text lines of a devices CSV: the header (``columns``, known names only), then one line
    per row; nothing at all when there is no row."""
    unknown = [name for name in columns if name not in COLUMNS]
    if unknown or not set(REQUIRED) <= set(columns):
        raise ValueError(f"columns must include {REQUIRED} and be among {COLUMNS}")
    lines = _LineWriter()
    pick = _picker(columns)
    header = True
    for row in rows:
        if header:
            yield lines.line(columns)
            header = False
        cells = _written_cells(row.eui64, row.install_code, row.link_key, row.label, row.groups)
        yield lines.line(pick(cells))
