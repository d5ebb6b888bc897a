"""A stray quote in the devices CSV refuses its own row only (found by a review): a quote
that opens a cell and is never closed took every later line into that cell, so a file of six
devices was reported as "1 rows: 0 valid, 1 invalid", its one row refused for "a control
character" in its label. Now the row with the quote is refused for what it is, and the lines
after it are read as rows of their own."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from click.testing import CliRunner

from zse.cli import main
from zse.device_csv import DeviceCsvError, DeviceRow, decode_lines, read_devices
from zse.installcode import InstallCode

CODE = "83FED3407A939723A5C639B26916D505C3B5"
EUIS = [f"001BC500700005{n:02X}" for n in range(0x2B, 0x2B + 30)]
NEVER_CLOSED = 'a quote (") opens a cell never closed: a stray quote?'
TAKEN = "read as rows of their own, not as part of that cell"


def code(eui: str) -> str:
    """The device's own install code (a file may not give two devices one code)."""
    return str(InstallCode.from_data(bytes.fromhex(eui)[2:]))


def rows(text: str) -> list[DeviceRow | DeviceCsvError]:
    return list(read_devices(decode_lines([text.encode()])))


def stray_quote_file(count: int) -> str:
    """A header, a row whose label opens a quote, then ``count`` good rows."""
    lines = [f'{EUIS[0]},{code(EUIS[0])},"kitchen'] + [
        f"{eui},{code(eui)},x" for eui in EUIS[1 : count + 1]
    ]
    return "eui64,install_code,label\n" + "\n".join(lines) + "\n"


def test_a_quote_never_closed_refuses_its_row_only() -> None:
    """The review's file (/tmp/review3/strayquote.csv): six devices, a quote on line 2."""
    got = rows(stray_quote_file(5))
    assert [str(item) for item in got if isinstance(item, DeviceCsvError)] == [
        f"line 2: {NEVER_CLOSED} (lines 3-7 are {TAKEN})"
    ]
    good = [item for item in got if isinstance(item, DeviceRow)]
    assert [(row.line, row.eui64, row.label) for row in good] == [
        (line, eui, "x") for line, eui in zip(range(3, 8), EUIS[1:6], strict=True)
    ]


def test_the_cli_report_counts_every_row(tmp_path: Path) -> None:
    source, out = tmp_path / "devices.csv", tmp_path / "keys.csv"
    source.write_text(stray_quote_file(5))
    result = CliRunner().invoke(main, ["installcode", "--csv", str(source), "-o", str(out)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"line 2: {NEVER_CLOSED} (lines 3-7 are {TAKEN})\n6 rows: 5 valid, 1 invalid\n"
    )
    assert [line.split(",")[0] for line in out.read_text().splitlines()[1:]] == EUIS[1:6]


def test_the_refusal_crosses_worker_processes(tmp_path: Path) -> None:
    """``--jobs`` checks rows in other processes: the refused row travels there and back."""
    source, out = tmp_path / "devices.csv", tmp_path / "keys.csv"
    source.write_text(stray_quote_file(2))
    result = CliRunner().invoke(
        main, ["installcode", "--csv", str(source), "-o", str(out), "--jobs", "2"]
    )
    assert result.stderr == (
        f"line 2: {NEVER_CLOSED} (lines 3-4 are {TAKEN})\n3 rows: 2 valid, 1 invalid\n"
    )
    assert len(out.read_text().splitlines()) == 3


def test_a_quote_open_on_the_last_line() -> None:
    text = (
        f'eui64,install_code,label\n{EUIS[1]},{code(EUIS[1])},x\n{EUIS[0]},{code(EUIS[0])},"kitchen'
    )
    first, last = rows(text)
    assert isinstance(first, DeviceRow)
    assert str(last) == f"line 3: {NEVER_CLOSED}"
    assert pickle.loads(pickle.dumps(last)).line == 3


def test_a_quote_in_a_long_file_takes_at_most_eight_lines() -> None:
    """A quoted cell may run over lines (RFC 4180; the row is refused for its line break),
    but not over more than 8: a longer one is a stray quote's, and its lines are read again."""
    got = rows(stray_quote_file(25))
    assert [str(item) for item in got if isinstance(item, DeviceCsvError)] == [
        'line 2: a quote (") opens a cell not closed within 8 lines or 131072 characters: a '
        f"stray quote? (the lines after it are {TAKEN})"
    ]
    assert [row.line for row in got if isinstance(row, DeviceRow)] == list(range(3, 28))


def test_a_quoted_cell_closed_on_a_later_line_is_still_one_row() -> None:
    text = (
        f'eui64,install_code,label\n{EUIS[0]},{code(EUIS[0])},"two\nlines"\n{EUIS[1]},{code(EUIS[1])},x\n'
        f'{EUIS[2]},{code(EUIS[2])},"a\nb\nc\nd\ne\nf\ng\nh"\n{EUIS[3]},{code(EUIS[3])},x\n'
    )
    got = rows(text)
    assert [str(item) for item in got if isinstance(item, DeviceCsvError)] == [
        f"line 2: EUI-64 {EUIS[0]}: label has a control character U+000A at position 4",
        f"line 5: EUI-64 {EUIS[2]}: label has a control character U+000A at position 2",  # 8 lines
    ]
    assert [row.line for row in got if isinstance(row, DeviceRow)] == [4, 13]


def test_a_header_with_a_stray_quote_is_a_file_error() -> None:
    with pytest.raises(DeviceCsvError) as info:
        rows(f'eui64,install_code,"label\n{EUIS[0]},{code(EUIS[0])},x\n')
    assert str(info.value) == (
        'line 1: the header has a quote (") that opens a cell it does not close: a stray quote?'
    )


def test_lines_that_each_leave_a_quote_open_are_each_one_bad_row() -> None:
    """Each of these lines ends inside a quoted cell whether read on its own or inside the
    cell of the line before (``x",",``), so every record would run to the end of the file:
    each line is refused on its own, and read at most 8 times (20,000 lines read again to
    the end for each would take minutes)."""
    got = rows("eui64,install_code\n" + 'x",",\n' * 20_000)
    assert len(got) == 20_000
    assert all(isinstance(item, DeviceCsvError) for item in got)
    assert str(got[-1]) == f"line 20001: {NEVER_CLOSED}"
    assert str(got[0]) == (
        'line 2: a quote (") opens a cell not closed within 8 lines or 131072 characters: a '
        f"stray quote? (the lines after it are {TAKEN})"
    )
