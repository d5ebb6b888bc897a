"""The devices CSV (zse.device_csv): one format for ``zse installcode --csv`` and ``zse esi``'s
``import`` (issue #12.5), its bad files as one-line errors (#12.6), garbage never a traceback."""

from __future__ import annotations

import codecs
import pickle
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zse.device_csv import (
    Columns,
    DeviceCsvError,
    DeviceRow,
    decode_lines,
    read_devices,
    write_devices,
)
from zse.installcode import InstallCode

EXAMPLES = Path(__file__).parents[2] / "examples"
CODE = "83FED3407A932B70"
KEY = "CD4FA064773F46941EC986C09963D1A8"


def rows(text: str) -> list[DeviceRow | DeviceCsvError]:
    return list(read_devices(decode_lines([text.encode()])))


def test_the_header_names_the_columns_in_any_order_and_spelling() -> None:
    (row,) = rows(
        f"Label,Install Code,EUI-64\nkitchen,{CODE},00:1b:c5:00:70:00:05:2b\n".replace(
            "EUI-64", "eui64"
        )
    )
    assert isinstance(row, DeviceRow)
    assert (row.line, row.eui64, row.install_code, row.label) == (
        2,
        "001BC5007000052B",
        CODE,
        "kitchen",
    )
    assert row.link_key.hex().upper() == KEY
    assert CODE not in repr(row)
    assert KEY not in repr(row).upper()


def test_the_shipped_example_is_a_devices_csv() -> None:
    (row,) = rows((EXAMPLES / "devices.csv").read_text())
    assert isinstance(row, DeviceRow)
    assert (row.eui64, row.label, row.groups) == (
        "000D6F000A000002",
        "hall thermostat",
        ("street-7",),
    )


def test_a_short_row_has_empty_optional_cells_and_groups_split_on_semicolons() -> None:
    got = rows(
        "eui64,install_code,label,groups\n"
        f"001BC5007000052B,{CODE}\n001BC5007000052C,83FED3407A939738C552,,a; b ;\n"
    )
    assert [(r.label, r.groups) for r in got if isinstance(r, DeviceRow)] == [
        ("", ()),
        ("", ("a", "b")),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty: no header row and no devices"),
        ("\n \n", "empty: no header row and no devices"),
        ("eui64,install_code\n\n", "line 1: a header row but no devices"),
        (
            f"001BC5007000052B,{CODE}\n",
            "line 1: no header row: the first row must name the columns",
        ),
        (
            "eui64,install_code,lable\n",
            "line 1: unknown column 'lable' in the header (known: eui64,",
        ),
        ("eui64,install_code,eui64\n", "line 1: column 'eui64' is named twice in the header"),
        ("eui64,label\n", "line 1: the header lacks the column install_code"),
        (
            f"eui64,install_code\n1,{'9' * 200_000}\n",
            "line 2: a line longer than 131072 characters",
        ),
    ],
)
def test_a_file_that_is_not_a_devices_csv_raises_one_message(text: str, message: str) -> None:
    with pytest.raises(DeviceCsvError) as caught:
        rows(text)
    assert str(caught.value).startswith(message)
    assert CODE not in str(caught.value)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (f"001BC5007000052B,{CODE},x,y,{KEY},z", "line 2: 6 cells but the header names 5 columns"),
        ("001BC5007000052B", "line 2: no install_code: 1 cell but the header names 5"),
        (f",{CODE}", "line 2: eui64 is empty"),
        (
            f"001BC5007000052B,{CODE},,,{KEY[:-1]}0",
            "line 2: EUI-64 001BC5007000052B: link_key is not the install code's link key",
        ),
        (
            f"001BC5007000052B,{CODE},,,XYZ",
            "line 2: EUI-64 001BC5007000052B: link_key is not 32 hex digits",
        ),
        (
            f"001BC5007000052B,{CODE},\x1b[2Jhi",
            "line 2: EUI-64 001BC5007000052B: label has a control character U+001B at position 1",
        ),
    ],
)
def test_a_bad_row_is_reported_with_its_line_and_no_secret(row: str, message: str) -> None:
    (got,) = rows(f"eui64,install_code,label,groups,link_key\n{row}\n")
    assert isinstance(got, DeviceCsvError)
    assert str(got).startswith(message)
    assert got.line == 2
    assert CODE not in str(got)
    assert KEY[:8] not in str(got)


def test_a_quoted_cell_over_lines_keeps_the_line_numbers() -> None:
    got = rows(
        f'eui64,install_code,label\n001BC5007000052B,{CODE},"two\nlines"\n001BC5007000052B,{CODE}\n'
    )
    assert isinstance(got[0], DeviceCsvError)  # a line break is a control character in a label
    assert str(got[0]).startswith("line 2: EUI-64 001BC5007000052B: label has a control character")
    assert isinstance(got[1], DeviceRow)
    assert got[1].line == 4


def test_the_writer_output_reads_back_the_same() -> None:
    source = f'eui64,install_code,label,groups\n001bc5007000052b,{CODE.lower()},"hall, north",a;b\n'
    first = [r for r in rows(source) if isinstance(r, DeviceRow)]
    written = "".join(write_devices(first))
    assert written.splitlines()[0] == "eui64,install_code,label,groups,link_key"
    again = [r for r in rows(written) if isinstance(r, DeviceRow)]
    assert again == first
    assert list(write_devices([])) == []


def test_columns_and_errors_cross_process_boundaries() -> None:
    columns = Columns.parse(["eui64", "install_code"])
    assert pickle.loads(pickle.dumps(columns)) == columns
    error = pickle.loads(pickle.dumps(DeviceCsvError("bad", 3)))
    assert (str(error), error.line) == ("line 3: bad", 3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("eui64,install_code\n".encode("utf-16"), "not UTF-8 text but UTF-16: save it as UTF-8"),
        (codecs.BOM_UTF16_BE + "e".encode("utf-16-be"), "not UTF-8 text but UTF-16"),
        (b"eui64,install_code\n\xff\xfe\x00junk", "not UTF-8 text (byte 19 cannot be decoded)"),
        (b"eui64,install_code\n\xc3", "not UTF-8 text (it ends inside a character at byte 20)"),
        ("eui64,install_code\n".encode("utf-16-le"), "not a text file (a NUL byte at byte 1;"),
        (b"eui64,install_code\n001B\x00", "not a text file (a NUL byte at byte 23;"),
    ],
)
def test_bytes_that_are_not_utf8_are_one_message(data: bytes, message: str) -> None:
    with pytest.raises(DeviceCsvError, match=message.replace("(", r"\(").replace(")", r"\)")):
        list(read_devices(decode_lines([data[:7], data[7:]])))


def test_a_utf8_byte_order_mark_is_accepted() -> None:
    (row,) = read_devices(
        decode_lines(
            [codecs.BOM_UTF8 + f"eui64,install_code\r\n001BC5007000052B,{CODE}\r\n".encode()]
        )
    )
    assert isinstance(row, DeviceRow)


@settings(max_examples=300)
@given(st.binary(max_size=400), st.integers(1, 50))
def test_garbage_bytes_give_rows_or_one_named_error(data: bytes, cut: int) -> None:
    try:
        items = list(read_devices(decode_lines([data[:cut], data[cut:]])))
    except DeviceCsvError as exc:
        message = str(exc)
        items = []
    else:
        message = ""
    assert all(isinstance(item, DeviceRow | DeviceCsvError) for item in items)
    assert "\n" not in message


@settings(max_examples=300)
@given(
    st.lists(
        st.lists(
            st.sampled_from(
                [
                    "eui64",
                    "install_code",
                    "label",
                    CODE,
                    "001BC5007000052B",
                    '"',
                    ",",
                    ";",
                    "\r",
                    "\x00",
                    "é",
                ]
            ),
            max_size=6,
        ),
        max_size=6,
    )
)
def test_garbage_text_gives_rows_or_one_named_error(cells: list[list[str]]) -> None:
    text = "\n".join(",".join(row) for row in cells)
    try:
        got = rows(text)
    except DeviceCsvError as exc:
        got = [exc]
    assert all(isinstance(item, DeviceRow | DeviceCsvError) for item in got)
    assert not any(CODE in str(item) for item in got if isinstance(item, DeviceCsvError))


def test_install_code_is_parsed_as_zse_installcode_does() -> None:
    (row,) = rows(f"eui64,install_code\n001BC5007000052B,{InstallCode.parse(CODE).grouped()}\n")
    assert isinstance(row, DeviceRow)
    assert row.install_code == CODE
