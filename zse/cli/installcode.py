"""``zse installcode``: check install codes and derive their link keys, one by one or by file.

Exit status: 0 when every code (or row) is valid, 2 when any is not or when the file cannot be
used (not a devices CSV, not UTF-8, --output is the input); the reason is printed on one line per
bad code or row, without a traceback.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import TextIO, TypeVar

import click

from zse._words import counted
from zse.cli._errors import fail, say_error
from zse.cli._files import OutputError, atomic_output, refuse_input_as_output
from zse.cli._types import PlainIntRange
from zse.device_csv import DeviceCsvError, DeviceReader, decode_lines
from zse.errors import DecodeError
from zse.installcode import DeviceLabel, LabelForm, format_eui64, parse_label

__all__ = ["CsvReport", "installcode", "validate_csv"]

Chunk = TypeVar("Chunk")
Checked = TypeVar("Checked")
_READ_SIZE = 1 << 16


def _describe(label: DeviceLabel) -> dict[str, object]:
    code = label.install_code
    out: dict[str, object] = {
        "code": None if code is None else str(code),
        "bits": None if code is None else code.bits,
        "crc": None if code is None else f"{code.crc:04X}",
        "crc_printed": None if code is None else code.crc_bytes.hex().upper(),
        "link_key": label.link_key.hex().upper(),
    }
    if label.form is not LabelForm.CODE:  # a label or QR string: what it also says
        out["eui64"] = None if label.eui64 is None else format_eui64(label.eui64)
        out["form"] = label.form.value
    return out


@dataclass(frozen=True, kw_only=True, slots=True)
class CsvReport:
    """What :func:`validate_csv` found: row counts and one message per bad row."""

    good: int
    errors: list[str]


def _pool_context() -> multiprocessing.context.BaseContext:
    """How the worker processes start: never by ``fork``, which copies a program's threads'
    locks as they are at that moment (a deadlock when one was held; Python 3.12+ warns, and
    3.14 no longer forks by default): ``forkserver`` where there is one, else ``spawn``."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _leave_ctrl_c_to_the_parent() -> None:
    """A worker ignores SIGINT: a terminal's Ctrl-C reaches the whole process group, and the
    parent alone ends the run (click's "Aborted!"); each worker printed its own traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _pool_map(
    jobs: int,
) -> Callable[[Callable[[Chunk], Checked], Iterable[Chunk]], Iterator[Checked]]:
    """An ordered map over ``jobs`` processes with a bounded backlog."""

    def chunk_map(check: Callable[[Chunk], Checked], chunks: Iterable[Chunk]) -> Iterator[Checked]:
        with ProcessPoolExecutor(
            max_workers=jobs, mp_context=_pool_context(), initializer=_leave_ctrl_c_to_the_parent
        ) as pool:
            pending: deque[Future[Checked]] = deque()
            for chunk in chunks:
                pending.append(pool.submit(check, chunk))
                if len(pending) >= 4 * jobs:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    return chunk_map


def validate_csv(lines: Iterable[str], out: TextIO, jobs: int = 1) -> CsvReport:
    """Validate a devices CSV (:mod:`zse.device_csv`) and write the good rows with their link
    keys to ``out``.

    Each bad row gives one message with its line number: a wrong cell count, an invalid EUI-64
    or install code, a stated link key that is not the code's, or an EUI-64 already on an
    earlier line (one device, one code). Good rows are written in file order and canonical
    form, with the input's columns and ``link_key``. With ``jobs`` > 1 the rows are checked in
    that many processes. A file that is not a devices CSV at all (no header, no device row, a
    CSV syntax error) raises :class:`~zse.device_csv.DeviceCsvError`.
    """
    reader = DeviceReader(lines, chunk_map=_pool_map(jobs) if jobs > 1 else None)
    errors: list[str] = []
    good = 0
    for text, taken, refused in reader.written():
        out.write(text)
        good += taken
        errors.extend(map(str, refused))
    return CsvReport(good=good, errors=errors)


def _with_progress(chunks: Iterable[bytes], total: int) -> Iterator[bytes]:
    """Yield ``chunks``, showing a progress bar on a terminal for large files."""
    if total < 1 << 20 or not sys.stderr.isatty():
        yield from chunks
        return
    with click.progressbar(length=total, label="validating", file=sys.stderr) as bar:
        for chunk in chunks:
            bar.update(len(chunk))
            yield chunk


@click.command()
@click.argument("codes", nargs=-1, metavar="[CODE]...")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--csv",
    "csv_file",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Validate a devices CSV (header eui64,install_code[,label,groups]; '-' for stdin).",
)
@click.option(
    "-j",
    "--jobs",
    type=PlainIntRange(1, 64),
    help="Processes for --csv, 1-64 (default: one per CPU for files over 1 MiB).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    default="-",
    show_default=True,
    help="Where --csv writes good rows with their link keys (mode 0600, written atomically).",
)
def installcode(
    codes: tuple[str, ...],
    as_json: bool,
    csv_file: str | None,
    jobs: int | None,
    output: str,
) -> None:
    """Check install codes and print their bits, CRC and link key.

    CODE is a code as printed on a device label, with its CRC at the end (least significant
    octet first), in any case and with spaces, dashes or colons: 83FED3407A932B70 or
    "83FE D340 7A93 2B70". Quote a code that contains spaces. A label or QR string carrying
    the EUI-64 too is read as well (Z:<eui64>$I:<code>, <eui64>|<code>, Aqara, Hue, Bosch;
    docs/installcode.md), and its EUI-64 is shown. Quote it: it contains '$' or '|'.

    With --csv, every bad row of the file is reported with its line number on stderr, and the
    good rows are written with their link keys to --output. The file format (a header row
    naming the columns) is the one `zse esi` imports: see docs/installcode.md.
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
    for number, text in enumerate(codes, 1):
        try:
            results.append(_describe(parse_label(text)))
        except DecodeError as exc:  # the code itself is never echoed: it is a secret
            say_error(f"CODE #{number}: {exc}")
            failed = True
    if as_json:
        click.echo(json.dumps(results, indent=2))
    elif results:
        labelled = any("eui64" in r for r in results)
        header = f"{'install code':<36}  bits  crc   link key"
        click.echo(f"{header:<86}eui64" if labelled else header)
        for r in results:
            code, bits, crc = r["code"] or "-", r["bits"] or "-", r["crc_printed"] or "-"
            line = f"{code:<36}  {bits:>4}  {crc:<4}  {r['link_key']}"
            if labelled:
                line += f"  {r.get('eui64') or '-'}"
            click.echo(line)
    if failed:
        sys.exit(2)


def _run_csv(csv_file: str, output: str, jobs: int | None) -> None:
    try:
        source = click.open_file(csv_file, "rb")
    except OSError as exc:
        fail(f"cannot read {csv_file}: {exc.strerror}", 2)
    with source:
        inputs: list[str | int] = [] if csv_file == "-" else [csv_file]
        total = 0
        try:
            inputs.append(source.fileno())
            total = os.fstat(source.fileno()).st_size
        except (OSError, ValueError):  # an in-memory stream under test has no descriptor
            pass
        if output != "-":
            try:  # before anything is opened for writing
                refuse_input_as_output(output, inputs, "--output")
            except OutputError as exc:
                fail(str(exc), 2)
        if jobs is None:
            jobs = (os.cpu_count() or 1) if total > 1 << 20 else 1
        chunks = _with_progress(iter(lambda: source.read(_READ_SIZE), b""), total)
        try:
            if output == "-":
                report = validate_csv(decode_lines(chunks), sys.stdout, jobs)
            else:
                with atomic_output(output, "--output") as out:
                    report = validate_csv(decode_lines(chunks), out, jobs)
        except DeviceCsvError as exc:
            fail(f"{'standard input' if csv_file == '-' else csv_file}: {exc}", 2)
        except OutputError as exc:
            fail(str(exc), 2)
    for message in report.errors:
        click.echo(message, err=True)
    click.echo(
        f"{counted(report.good + len(report.errors), 'row')}: {report.good} valid, "
        f"{len(report.errors)} invalid",
        err=True,
    )
    if report.errors:
        sys.exit(2)
