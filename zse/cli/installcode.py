"""``zse installcode``: check install codes and derive their link keys, one by one or by file.

Exit status: 0 when every code (or row) is valid, 2 when any is not; the reason is printed on
one line per bad code or row, without a traceback.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import IO, TextIO

import click

from zse.errors import DecodeError
from zse.installcode import InstallCode, canonical_eui64

__all__ = ["CsvReport", "installcode", "validate_csv"]

_HEADER_WORDS = ("eui", "mac", "ieee", "install", "code")


def _describe(code: InstallCode) -> dict[str, object]:
    return {
        "code": str(code),
        "bits": code.bits,
        "crc": f"{code.crc:04X}",
        "crc_printed": code.crc_bytes.hex().upper(),
        "link_key": code.link_key.hex().upper(),
    }


@dataclass(frozen=True, kw_only=True, slots=True)
class CsvReport:
    """What :func:`validate_csv` found: row counts and one message per bad row."""

    good: int
    errors: list[str]


def _is_header(row: list[str]) -> bool:
    text = " ".join(row).lower()
    return any(word in text for word in _HEADER_WORDS)


# A checked row: (line, eui64, code, link key) when valid, (line, eui64 or "", "", message) not.
_Checked = tuple[int, str, str, str]
_CHUNK_ROWS = 4096


def _check_rows(rows: list[tuple[int, list[str]]]) -> list[_Checked]:
    """Validate a chunk of numbered rows (runs in worker processes for large files)."""
    checked: list[_Checked] = []
    parse_code = InstallCode.parse
    for line_no, row in rows:
        if len(row) != 2:
            message = f"expected 2 columns (eui64,install_code), got {len(row)}"
            checked.append((line_no, "", "", message))
            continue
        try:
            eui64 = canonical_eui64(row[0])
        except DecodeError as exc:
            checked.append((line_no, "", "", str(exc)))
            continue
        try:
            code = parse_code(row[1])
        except DecodeError as exc:
            checked.append((line_no, eui64, "", str(exc)))
            continue
        checked.append((line_no, eui64, str(code), code.link_key.hex().upper()))
    return checked


def _chunks(lines: Iterable[str]) -> Iterator[list[tuple[int, list[str]]]]:
    chunk: list[tuple[int, list[str]]] = []
    for line_no, row in enumerate(csv.reader(lines), start=1):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if line_no == 1 and _is_header(row):
            continue
        chunk.append((line_no, row))
        if len(chunk) == _CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _checked_chunks(lines: Iterable[str], jobs: int) -> Iterator[list[_Checked]]:
    """Checked chunks in file order, from ``jobs`` processes with a bounded backlog."""
    if jobs <= 1:
        yield from map(_check_rows, _chunks(lines))
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        pending: deque[Future[list[_Checked]]] = deque()
        for chunk in _chunks(lines):
            pending.append(pool.submit(_check_rows, chunk))
            if len(pending) >= 4 * jobs:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def validate_csv(lines: Iterable[str], out: TextIO, jobs: int = 1) -> CsvReport:
    """Validate ``eui64,install_code`` rows and write good ones with their link keys to ``out``.

    A first row naming its columns is taken as a header. Each bad row gives one message with
    its line number: a wrong column count, an invalid EUI-64 or install code, or an EUI-64
    already seen on an earlier line (one device, one code). Good rows are written in file order
    and canonical form as ``eui64,install_code,link_key``. With ``jobs`` > 1 the rows are
    checked in that many processes.
    """
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("eui64", "install_code", "link_key"))
    errors: list[str] = []
    seen: dict[str, int] = {}
    good = 0
    for checked in _checked_chunks(lines, jobs):
        for line_no, eui64, code, result in checked:
            if not code:
                prefix = f"line {line_no}: EUI-64 {eui64}: " if eui64 else f"line {line_no}: "
                errors.append(prefix + result)
                continue
            first = seen.setdefault(eui64, line_no)
            if first != line_no:
                errors.append(f"line {line_no}: EUI-64 {eui64} is already on line {first}")
                continue
            writer.writerow((eui64, code, result))
            good += 1
    return CsvReport(good=good, errors=errors)


def _with_progress(stream: IO[str], total: int) -> Iterator[str]:
    """Yield lines of ``stream``, showing a progress bar on a terminal for large files."""
    if total < 1 << 20 or not sys.stderr.isatty():
        yield from stream
        return
    with click.progressbar(length=total, label="validating", file=sys.stderr) as bar:
        done = 0
        for count, line in enumerate(stream, start=1):
            done += len(line)
            if count % 8192 == 0:
                bar.update(done - bar.pos)
            yield line
        bar.update(total - bar.pos)


@click.command()
@click.argument("codes", nargs=-1, metavar="[CODE]...")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--csv",
    "csv_file",
    type=click.File("r", encoding="utf-8-sig"),
    help="Validate a file of eui64,install_code rows ('-' for stdin).",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    help="Processes for --csv (default: one per CPU for files over 1 MiB).",
)
@click.option(
    "-o",
    "--output",
    type=click.File("w", encoding="utf-8", lazy=True),
    default="-",
    show_default=True,
    help="Where --csv writes good rows with their link keys.",
)
def installcode(
    codes: tuple[str, ...],
    as_json: bool,
    csv_file: TextIO | None,
    jobs: int | None,
    output: TextIO,
) -> None:
    """Check install codes and print their bits, CRC and link key.

    CODE is a code as printed on a device label, with its CRC at the end (least significant
    octet first), in any case and with spaces, dashes or colons: 83FED3407A932B70 or
    "83FE D340 7A93 2B70". Quote a code that contains spaces.

    With --csv, every bad row of the file is reported with its line number on stderr, and the
    good rows are written with their link keys to --output.
    """
    if csv_file is not None:
        if codes:
            raise click.UsageError("give either CODE arguments or --csv, not both")
        _run_csv(csv_file, output, jobs)
        return
    if not codes:
        raise click.UsageError("give at least one CODE, or --csv FILE")
    results: list[dict[str, object]] = []
    failed = False
    for text in codes:
        try:
            results.append(_describe(InstallCode.parse(text)))
        except DecodeError as exc:
            click.echo(f"zse installcode: {text!r}: {exc}", err=True)
            failed = True
    if as_json:
        click.echo(json.dumps(results, indent=2))
    elif results:
        click.echo(f"{'install code':<36}  bits  crc   link key")
        for r in results:
            click.echo(f"{r['code']!s:<36}  {r['bits']:>4}  {r['crc_printed']}  {r['link_key']}")
    if failed:
        sys.exit(2)


def _run_csv(csv_file: TextIO, output: TextIO, jobs: int | None) -> None:
    try:
        total = os.fstat(csv_file.fileno()).st_size
    except (OSError, ValueError):  # an in-memory stream under test
        total = 0
    if jobs is None:
        jobs = (os.cpu_count() or 1) if total > 1 << 20 else 1
    report = validate_csv(_with_progress(csv_file, total), output, jobs)
    for message in report.errors:
        click.echo(message, err=True)
    click.echo(
        f"{report.good + len(report.errors)} rows: {report.good} valid, "
        f"{len(report.errors)} invalid",
        err=True,
    )
    if report.errors:
        sys.exit(2)
