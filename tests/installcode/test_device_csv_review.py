"""Devices CSV on hostile and odd input (review): CR line ends (Excel for Mac), line breaks in
cells whose parsers skip whitespace, one install code on two devices, cells a spreadsheet
would run as formulas (OWASP CSV injection) and a header separated by semicolons."""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterable
from pathlib import Path

import pytest
from click.testing import CliRunner

from zse.cli import main
from zse.device_csv import DeviceCsvError, DeviceRow, decode_lines, read_devices, write_devices
from zse.installcode import InstallCode

CODE = "83FED3407A932B70"
OTHER = "83FED3407A939738C552"
BAD = "83FED3407A932B71"


def read(data: bytes, size: int | None = None) -> list[tuple[int, str]]:
    """(line, "ok" or the error) per row, the bytes given in chunks of ``size``."""
    chunks: Iterable[bytes] = (
        [data] if size is None else [data[i : i + size] for i in range(0, len(data), size)]
    )
    return [
        (item.line, "ok" if isinstance(item, DeviceRow) else item.problem)
        for item in read_devices(decode_lines(chunks))
    ]


@pytest.mark.parametrize("size", [None, 1, 2, 3, 7])
@pytest.mark.parametrize("end", ["\r", "\r\n", "\n"])
def test_cr_crlf_and_lf_line_ends_give_the_same_rows_and_line_numbers(
    end: str, size: int | None
) -> None:
    text = end.join(
        ["eui64,install_code", f"001BC5007000052B,{CODE}", "", f"001BC5007000052C,{BAD}"]
    )
    got = read((text + end).encode(), size)
    assert got[0] == (2, "ok")
    assert got[1][0] == 4
    assert got[1][1].startswith("EUI-64 001BC5007000052C: install code CRC mismatch")


def test_mixed_line_ends_and_a_last_line_ending_in_cr() -> None:
    data = f"eui64,install_code\n001BC5007000052B,{CODE}\r001BC5007000052C,{OTHER}\r".encode()
    assert read(data) == [(2, "ok"), (3, "ok")]
    assert read(data, 1) == [(2, "ok"), (3, "ok")]


def test_the_cli_reads_a_csv_saved_with_cr_line_ends(tmp_path: Path) -> None:
    source = tmp_path / "mac.csv"
    source.write_bytes(f"eui64,install_code\r001BC5007000052B,{CODE}\r".encode())
    result = CliRunner().invoke(main, ["installcode", "--csv", str(source)])
    assert result.exit_code == 0, result.output
    assert "001BC5007000052B,83FED3407A932B70," in result.output


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ('001BC5007000052B,"83FE\nD3407A932B70"', "install_code"),
        (f'"001BC500\r\n7000052B",{CODE}', "eui64"),
        (f'001BC5007000052B,{CODE},"CD4FA064773F4694\n1EC986C09963D1A8"', "link_key"),
    ],
)
def test_a_line_break_in_a_hex_cell_refuses_its_row(row: str, column: str) -> None:
    data = f"eui64,install_code,link_key\n{row}\n001BC5007000052C,{OTHER}\n".encode()
    assert read(data) == [
        (2, f"the {column} cell holds a line break (a quoted cell over lines): one device a line"),
        (4, "ok"),
    ]


def test_one_install_code_on_two_devices_refuses_the_later_row() -> None:
    grouped = InstallCode.parse(CODE).grouped().lower()
    data = (
        f"eui64,install_code\n001BC5007000052B,{CODE}\n001BC5007000052C,{OTHER}\n"
        f"001BC5007000052D,{grouped}\n"
    ).encode()
    got = read(data)
    assert got[:2] == [(2, "ok"), (3, "ok")]
    assert got[2] == (
        4,
        "EUI-64 001BC5007000052D: the install code is already on line 2, for another device "
        "(each device has its own code)",
    )
    assert CODE not in got[2][1]


def test_a_repeated_row_is_reported_once_as_a_repeated_eui64() -> None:
    data = f"eui64,install_code\n001BC5007000052B,{CODE}\n00:1b:c5:00:70:00:05:2b,{CODE}\n"
    assert read(data.encode()) == [(2, "ok"), (3, "EUI-64 001BC5007000052B is already on line 2")]


FORMULAS = ["=1+1", "+1", "-1", "@SUM(A1)", "'=1+1", "''-x", "'plain", "plain", "a=b", "-"]


def device(number: int, label: str, groups: tuple[str, ...] = ()) -> DeviceRow:
    """Device ``number`` (its own EUI-64 and code) with ``label`` and ``groups``."""
    code = InstallCode.generate(128, random.Random(number))
    return DeviceRow(
        line=number + 2,
        eui64=f"{0x001BC50070000001 + number:016X}",
        install_code=str(code),
        link_key=code.link_key,
        label=label,
        groups=groups,
    )


def test_cells_a_spreadsheet_would_run_are_written_behind_a_single_quote() -> None:
    lines = list(write_devices([device(n, label, (label,)) for n, label in enumerate(FORMULAS)]))
    rows = list(csv.reader(io.StringIO("".join(lines))))[1:]
    for label, (_, _, written, groups, _) in zip(FORMULAS, rows, strict=True):
        unsafe = label.lstrip("'")[:1] in ("=", "+", "-", "@")
        assert written == groups == (f"'{label}" if unsafe else label)
        assert not written.startswith(("=", "+", "-", "@"))


def test_written_cells_read_back_as_they_were() -> None:
    rows = [device(n, label, (label, "g")) for n, label in enumerate(FORMULAS)]
    back = list(read_devices("".join(write_devices(rows)).splitlines(keepends=True)))
    assert [(r.label, r.groups) for r in back if isinstance(r, DeviceRow)] == [
        (label, (label, "g")) for label in FORMULAS
    ]


def test_the_cli_output_never_starts_a_cell_with_a_formula(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text(
        f'eui64,install_code,label,groups\n001BC5007000052B,{CODE},"=HYPERLINK(""http://x"")",@g\n'
    )
    output = tmp_path / "out.csv"
    result = CliRunner().invoke(main, ["installcode", "--csv", str(source), "-o", str(output)])
    assert result.exit_code == 0, result.output
    (_, row) = list(csv.reader(output.open()))
    assert row[2:4] == ['\'=HYPERLINK("http://x")', "'@g"]


@pytest.mark.parametrize(("separator", "what"), [(";", "semicolons"), ("\t", "tabs")])
def test_a_header_separated_by_semicolons_or_tabs_is_named(separator: str, what: str) -> None:
    data = f"EUI64{separator}Install Code\n001BC5007000052B{separator}{CODE}\n".encode()
    with pytest.raises(DeviceCsvError) as info:
        read(data)
    assert str(info.value) == (
        f"line 1: the header's columns are separated by {what}, not commas: save the file as "
        "comma-separated CSV (Excel: CSV UTF-8)"
    )
