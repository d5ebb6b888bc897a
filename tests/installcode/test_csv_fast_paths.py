"""The install-code CSV fast paths give what the plain paths give, for any input.

Each fast path against its reference: the comma split of a line without a quote against
:func:`csv.reader`, AES-MMO's padding table against a plain AES-MMO (ZigBee B.6) written here,
the bare-code reading of a cell against :func:`parse_label`, and the text a chunk's worker
sends back (one text, per-row offsets) against :func:`write_devices` of the rows, in one
process and in two.
"""

from __future__ import annotations

import csv
import io
import pickle
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zse import device_csv
from zse.cli.installcode import validate_csv
from zse.device_csv import DeviceCsvError, DeviceReader, DeviceRow, write_devices
from zse.errors import DecodeError
from zse.installcode import InstallCode, format_eui64, mmo_hash, parse_label

LINE_ENDS = st.sampled_from(["\n", "\r\n", "\r", ""])
#: Any character but a quote or a line end: NUL, BOM, tab, spaces, non-ASCII, commas.
UNQUOTED = st.characters(blacklist_characters='"\r\n', blacklist_categories=("Cs",))
_SMALL = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


def _cells_read(lines: list[str]) -> list[tuple[int, list[str]]]:
    """What ``_numbered_rows`` gives, each record as its cells."""
    return [
        (number, device_csv._cells_of(record))
        for number, record in device_csv._numbered_rows(iter(lines))
    ]


def _csv_reference(lines: list[str]) -> list[tuple[int, list[str]]]:
    """Each line through :func:`csv.reader` on its own; blank records dropped."""
    rows = []
    for number, line in enumerate(lines, 1):
        for row in csv.reader([line]):
            if any(cell.strip() for cell in row):
                rows.append((number, row))
    return rows


@_SMALL
@given(
    st.lists(
        st.tuples(
            st.lists(st.text(UNQUOTED, max_size=6), max_size=7).map(",".join)
            | st.sampled_from([",", ",,", " , ", "\t,\t", "\ufeff,", "\x00,\x00", "é,ü"]),
            LINE_ENDS,
        ),
        max_size=12,
    )
)
def test_split_of_unquoted_lines_is_the_csv_readers(body: list[tuple[str, str]]) -> None:
    lines = [text + end for text, end in body]
    assert _cells_read(lines) == _csv_reference(lines)


@pytest.mark.parametrize("length", [1, device_csv.MAX_LINE - 1, device_csv.MAX_LINE])
def test_split_of_a_long_unquoted_line_is_the_csv_readers(length: int) -> None:
    lines = ["a,b\n", "x" * (length - 2) + ",y\r\n", "é" * length]
    assert _cells_read(lines) == _csv_reference(lines)


@_SMALL
@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from(['"', '""', '"a,b"', "a", ",", " ", "x\ny"]), max_size=5).map(
                "".join
            ),
            LINE_ENDS,
        ),
        max_size=12,
    )
)
def test_lines_with_quotes_mixed_in_read_as_one_csv_reader_does(
    body: list[tuple[str, str]],
) -> None:
    """Quoted lines (closed or stray) among plain ones: every line is read once, in order,
    and a file whose quotes all close reads as :func:`csv.reader` reads it whole."""
    lines = [text + end for text, end in body if text + end]
    try:
        ours = _cells_read(lines)
    except DeviceCsvError:
        return  # a CSV syntax error (the reader's own, e.g. a quote inside a bare cell)
    try:
        reference = [row for row in csv.reader(lines, strict=True) if any(c.strip() for c in row)]
    except csv.Error:
        return
    if not any(isinstance(row, device_csv._Unclosed) for _, row in ours):
        assert [row for _, row in ours] == reference


def _plain_mmo(message: bytes) -> bytes:
    """AES-MMO as ZigBee B.6 states it, for messages under 2**13 bytes: pad with a one bit,
    zeros and the bit length on 16 bits to whole blocks, then H = E(H, M) xor M from zero."""
    bits = len(message) * 8
    padded = message + b"\x80"
    while len(padded) % 16 != 14:
        padded += b"\x00"
    padded += bits.to_bytes(2, "big")
    state = bytes(16)
    for offset in range(0, len(padded), 16):
        block = padded[offset : offset + 16]
        cipher = Cipher(algorithms.AES(state), modes.ECB()).encryptor().update(block)
        state = bytes(a ^ b for a, b in zip(cipher, block, strict=True))
    return state


def test_plain_mmo_is_the_spec_vectors() -> None:
    assert _plain_mmo(b"\xc0").hex().upper() == "AE3A102A28D43EE0D4A09E22788B206C"
    assert _plain_mmo(bytes(range(0xC0, 0xD0))).hex().upper() == (
        "A7977E88BC0B61E8210827109A228F2D"
    )


@pytest.mark.parametrize("length", range(66))
def test_mmo_padding_table_at_every_short_length(length: int) -> None:
    for message in (bytes(length), bytes(i & 0xFF for i in range(length)), b"\xff" * length):
        assert mmo_hash(message) == _plain_mmo(message)
        assert mmo_hash(bytearray(message)) == mmo_hash(memoryview(message)) == mmo_hash(message)


@_SMALL
@given(st.binary(max_size=200))
def test_mmo_hash_is_the_plain_one(message: bytes) -> None:
    assert mmo_hash(message) == _plain_mmo(message)


EUI64 = "001BC50000000001"


def _install_code_reference(text: str) -> InstallCode | str:
    """A row's install-code cell read through :func:`parse_label` alone; an error's text."""
    try:
        printed = parse_label(text)
    except DecodeError as exc:
        return f"line 3: EUI-64 {EUI64}: {exc}"
    if printed.install_code is None:
        return "a link key label"
    if printed.eui64 is not None and format_eui64(printed.eui64) != EUI64:
        return "another device"
    return printed.install_code


def _install_code_read(text: str) -> InstallCode | str:
    try:
        return device_csv._install_code(EUI64, text, 3)
    except DeviceCsvError as exc:
        return str(exc) if "label" not in exc.problem else _label_problem(exc)


def _label_problem(exc: DeviceCsvError) -> str:
    if "carrying a link key" in exc.problem:
        return "a link key label"
    if "label for another device" in exc.problem:
        return "another device"
    return str(exc)


HEXISH = st.text(st.sampled_from("0123456789abcdefABCDEF"), max_size=40)
CODES = st.sampled_from([6, 8, 12, 16]).flatmap(
    lambda n: st.binary(min_size=n, max_size=n).map(lambda b: str(InstallCode.from_data(b)))
)


@_SMALL
@given(
    HEXISH
    | CODES
    | CODES.map(lambda c: c[:-1] + ("0" if c[-1] != "0" else "1"))
    | CODES.map(lambda c: c.lower())
    | st.text(max_size=40)
    | st.text(st.sampled_from("0123456789abcdefABCDEF -:.$|Z:I\x00é"), max_size=40)
)
def test_bare_code_cell_is_read_as_parse_label_reads_it(text: str) -> None:
    text = text.strip()  # as the row's cells are
    ours, reference = _install_code_read(text), _install_code_reference(text)
    assert ours == reference
    if isinstance(ours, InstallCode):
        assert isinstance(reference, InstallCode)
        assert bytes(ours) == bytes(reference)


def _pickled_map(check: Callable[[Any], Any], chunks: Iterable[Any]) -> Iterator[Any]:
    """The chunks checked as a worker process would: arguments and results through pickle."""
    for chunk in chunks:
        yield pickle.loads(pickle.dumps(check(pickle.loads(pickle.dumps(chunk)))))


def _reference_output(lines: list[str]) -> tuple[str, list[str]]:
    """What ``validate_csv`` writes, made from the rows one at a time (:func:`write_devices`)."""
    reader = DeviceReader(iter(lines))
    rows: list[DeviceRow] = []
    errors: list[str] = []
    for item in reader:
        if isinstance(item, DeviceCsvError):
            errors.append(str(item))
        else:
            rows.append(item)
    return "".join(write_devices(rows, reader.columns.output())), errors


def _written_output(lines: list[str], **kwargs: Any) -> tuple[str, list[str]]:
    out: list[str] = []
    errors: list[str] = []
    for text, _, refused in DeviceReader(iter(lines), **kwargs).written():
        out.append(text)
        errors.extend(map(str, refused))
    return "".join(out), errors


_ROW_CODES = [str(InstallCode.from_data(bytes([i]) * (6, 8, 12, 16)[i % 4])) for i in range(6)]
ROW = st.tuples(
    st.sampled_from([f"001BC5{i:010X}" for i in range(6)] + ["nope", ""]),
    st.sampled_from([*_ROW_CODES, "83FED3407A932B71", "", "Z:001BC50000000001$I:x"]),
    st.sampled_from(["", "=sum", "lamp", '"a,b"', "'=x", "tab\there", "é"]),
    st.sampled_from(["", "g1;g2", " ; "]),
).map(",".join)


def _file(rows: list[str], ends: list[str]) -> list[str]:
    lines = ["eui64,install_code,label,groups\n"]
    lines += [
        row + (ends[i % len(ends)] if i + 1 < len(rows) else "") for i, row in enumerate(rows)
    ]
    return lines


@_SMALL
@given(
    st.lists(ROW, min_size=1, max_size=14),
    st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=1, max_size=3),
    st.integers(1, 5),
)
def test_chunk_texts_are_the_rows_written_one_by_one(
    rows: list[str], ends: list[str], chunk_rows: int
) -> None:
    lines = _file(rows, ends)
    original = device_csv._CHUNK_ROWS
    device_csv._CHUNK_ROWS = chunk_rows
    try:
        reference = _outcome(_reference_output, lines)
        assert _outcome(_written_output, lines) == reference
        assert _outcome(_written_output, lines, chunk_map=_pickled_map) == reference
    finally:
        device_csv._CHUNK_ROWS = original


def _outcome(write: Callable[..., Any], lines: list[str], **kwargs: Any) -> Any:
    """What ``write`` makes of ``lines``, or the file's own error (every row blank: "a
    header row but no devices"), which both paths must raise alike."""
    try:
        return write(lines, **kwargs)
    except DeviceCsvError as exc:
        return f"raised: {exc}"


def _validated(lines: list[str], jobs: int) -> tuple[str, int, list[str]]:
    out = io.StringIO()
    report = validate_csv(iter(lines), out, jobs=jobs)
    return out.getvalue(), report.good, report.errors


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(ROW, min_size=1, max_size=10), st.integers(1, 3))
def test_two_processes_write_what_one_writes(
    monkeypatch: pytest.MonkeyPatch, rows: list[str], chunk_rows: int
) -> None:
    monkeypatch.setattr(device_csv, "_CHUNK_ROWS", chunk_rows)  # chunks are cut here
    lines = _file(rows, ["\n"])
    assert _outcome(_validated, lines, jobs=2) == _outcome(_validated, lines, jobs=1)


def _row(i: int, code_of: int | None = None) -> str:
    code = InstallCode.from_data(bytes([code_of if code_of is not None else i]) * 16)
    return f"001BC5{i:010X},{code},row {i}"


@pytest.mark.parametrize("jobs", [1, 2])
def test_chunk_boundaries_duplicates_and_errors_at_both_ends(
    monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    """Chunks of 3 rows: an error row first and last, a duplicate EUI-64 and a duplicate code
    each in a later chunk than their first, and one as the first row of a chunk."""
    monkeypatch.setattr(device_csv, "_CHUNK_ROWS", 3)
    rows = [
        "001BC50000000099,83FED3407A932B71,bad crc",  # line 2, chunk 1: refused
        _row(1),
        _row(2),
        _row(3),  # line 5: first of chunk 2
        _row(1).replace("row 1", "again"),  # line 6: EUI-64 of line 3
        _row(6, code_of=2),  # line 7: code of line 4, first of chunk 3
        _row(7),
        "nope,x",  # line 9: refused, last
    ]
    text, good, errors = _validated(["eui64,install_code,label\n"] + [r + "\n" for r in rows], jobs)
    assert good == 4
    assert [e.split(":")[0] for e in errors] == ["line 2", "line 6", "line 7", "line 9"]
    assert "already on line 3" in errors[1]
    assert "install code is already on line 4" in errors[2]
    assert [line.split(",")[0] for line in text.splitlines()] == [
        "eui64",
        "001BC50000000001",
        "001BC50000000002",
        "001BC50000000003",
        "001BC50000000007",
    ]


@pytest.mark.parametrize("jobs", [1, 2])
def test_only_error_rows_write_nothing(monkeypatch: pytest.MonkeyPatch, jobs: int) -> None:
    monkeypatch.setattr(device_csv, "_CHUNK_ROWS", 2)
    bad_crc = "001BC50000000001,83FED3407A932B71\n"
    lines = ["eui64,install_code\n", "nope,x\n", bad_crc, "001BC50000000002,\n", "x,y"]
    text, good, errors = _validated(lines, jobs)
    assert (text, good) == ("", 0)
    assert [e.split(":")[0] for e in errors] == ["line 2", "line 3", "line 4", "line 5"]
