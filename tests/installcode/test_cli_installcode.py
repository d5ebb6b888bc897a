"""``zse installcode`` and ``zse demo`` as a person and a script use them."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import warnings
from pathlib import Path

from click.testing import CliRunner

from zse.cli import main
from zse.cli.installcode import CsvReport, validate_csv
from zse.installcode import InstallCode

CODE_48 = "83FED3407A932B70"
KEY_48 = "CD4FA064773F46941EC986C09963D1A8"
CODE_128 = "83FED3407A939723A5C639B26916D505C3B5"
KEY_128 = "66B6900981E1EE3CA4206B6B861C02BB"


def run(*args: str, stdin: str | None = None):
    return CliRunner().invoke(main, list(args), input=stdin)


def test_codes_table():
    result = run("installcode", CODE_48, "83fe d340 7a93 9723 a5c6 39b2 6916 d505 c3b5")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["install", "code", "bits", "crc", "link", "key"]
    assert lines[1].split() == [CODE_48, "48", "2B70", KEY_48]
    assert lines[2].split() == [CODE_128, "128", "C3B5", KEY_128]


def test_codes_json(installcode_vectors):
    printed = [e["printed"] for e in installcode_vectors["printed_examples"]]
    result = run("installcode", "--json", *printed)
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert [d["code"] for d in data] == printed
    assert [d["crc"] for d in data] == [e["crc"] for e in installcode_vectors["printed_examples"]]
    assert [d["bits"] for d in data] == [48, 64, 96, 128]
    assert data[3]["link_key"] == KEY_128
    assert data[0]["crc_printed"] == "2B70"


def test_bad_code_exits_2_with_one_line_and_no_traceback():
    result = run("installcode", CODE_48, "83FED3407A932B71")
    assert result.exit_code == 2
    assert CODE_48 in result.stdout
    assert result.stderr.count("\n") == 1
    assert "CRC mismatch" in result.stderr
    assert result.stderr.startswith("error: CODE #2: ")
    assert "83FED3407A932B7" not in result.stderr  # the mistyped code is a secret too
    assert "Traceback" not in result.output


def test_bad_code_in_a_real_process_has_no_traceback():
    process = subprocess.run(
        [sys.executable, "-m", "zse", "installcode", "83FED3407A9X2B70"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert process.returncode == 2
    assert process.stderr.strip().endswith("non-hex character 'X' at position 12")
    assert len(process.stderr.splitlines()) == 1


def test_a_code_in_a_real_process_does_not_load_zigpys_clusters() -> None:
    """``zse installcode`` (what a person types at a portal's side, and scripts call per code)
    imports neither zse.config nor zigpy.zcl: they were half a second of CPU a call."""
    watch = (
        "import atexit, sys; atexit.register(lambda: print(sorted(m for m in sys.modules"
        " if m in ('zse.config', 'zigpy.zcl')), file=sys.stderr));"
        " from zse.cli import main; main()"
    )
    process = subprocess.run(
        [sys.executable, "-c", watch, "installcode", CODE_128],
        capture_output=True,
        text=True,
        check=False,
    )
    assert process.returncode == 0, process.stderr
    assert process.stdout.splitlines()[1].split() == [CODE_128, "128", "C3B5", KEY_128]
    assert process.stderr == "[]\n"


def test_usage_errors():
    assert run("installcode").exit_code == 2
    assert run("installcode", "--csv", "-", CODE_48).exit_code == 2


def test_csv_options_with_codes_are_refused_not_ignored(tmp_path):
    """``-o FILE`` (or ``--jobs``) with CODE arguments: the keys would not be in FILE, yet the
    run said nothing and exited 0; a usage error in one line instead, nothing written."""
    keys = tmp_path / "keys.csv"
    for options in (["-o", str(keys)], ["--jobs", "2"], ["--output", str(keys)], ["-j", "2"]):
        result = run("installcode", *options, CODE_48)
        assert result.exit_code == 2, result.output
        assert result.stdout == ""
        assert result.stderr.count("\n") == 1
        assert "goes with --csv; CODE arguments are printed" in result.stderr
        assert options[0] in result.stderr
    assert not keys.exists()
    assert run("installcode", "-o", "-", CODE_48).exit_code == 0  # the default, said or not


def test_a_byte_that_is_not_utf8_is_named_as_such():
    """A code typed in a non-UTF-8 terminal reaches Python as an escaped byte (a lone
    surrogate); the message names the byte, not an invisible U+DCxx character."""
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "zse",
            "installcode",
            b"83FE\xa0D340".decode("utf-8", "surrogateescape"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert process.returncode == 2
    assert process.stderr.splitlines() == [
        "error: CODE #1: install code has a byte that is not UTF-8 text (0xA0) at position 5"
    ]


CSV = f"""eui64,install_code
001BC5007000052B,{CODE_48}
00:1b:c5:00:70:00:05:2c,83FE D340 7A93 9738 C552
001BC5007000052D,83FED3407A932B71
0000000000000000,{CODE_48}
001BC5007000052E
001BC5007000052B,{CODE_128}

001BC5007000052F,{CODE_128}
"""


def test_csv_reports_every_bad_row_and_writes_the_good_ones(tmp_path):
    source = tmp_path / "codes.csv"
    source.write_text(CSV)
    out = tmp_path / "keys.csv"
    result = run("installcode", "--csv", str(source), "-o", str(out))
    assert result.exit_code == 2
    errors = result.stderr.splitlines()
    assert errors[0].startswith("line 4: EUI-64 001BC5007000052D: install code CRC mismatch")
    assert errors[1] == "line 5: EUI-64 00:00:00:00:00:00:00:00 is all zeros: not a device address"
    assert (
        errors[2] == "line 6: no install_code: 1 cell but the header names 2 (eui64,install_code)"
    )
    assert errors[3] == "line 7: EUI-64 001BC5007000052B is already on line 2"
    assert errors[4] == "7 rows: 3 valid, 4 invalid"
    assert out.read_text().splitlines() == [
        "eui64,install_code,link_key",
        f"001BC5007000052B,{CODE_48},{KEY_48}",
        "001BC5007000052C,83FED3407A939738C552,A833A77434F3BFBD7A7AB97942149287",
        f"001BC5007000052F,{CODE_128},{KEY_128}",
    ]


def test_csv_from_stdin():
    result = run(
        "installcode", "--csv", "-", stdin=f"EUI64,Install Code\n001BC5007000052B,{CODE_128}\n"
    )
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "eui64,install_code,link_key",
        f"001BC5007000052B,{CODE_128},{KEY_128}",
    ]
    assert result.stderr == "1 row: 1 valid, 0 invalid\n"


def test_csv_without_header_is_refused_in_one_line():
    result = run("installcode", "--csv", "-", stdin=f"001BC5007000052B,{CODE_128}\n")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        "error: standard input: line 1: no header row: the first row must name the "
        "columns, e.g. eui64,install_code,label\n"
    )
    assert CODE_128 not in result.output


def test_csv_in_parallel_gives_the_same_result():
    codes = [str(InstallCode.from_data(i.to_bytes(6, "big"))) for i in range(9000)]
    rows = ["eui64,install_code"]  # each device its own code, every 97th mistyped
    rows += [f"001BC5{i:010X},{c if i % 97 else c[:-1] + 'X'}" for i, c in enumerate(codes)]
    rows.append(f"001BC5FFFFFFFFFF,{codes[8]}")  # the code of line 10 again
    rows.append(rows[6].replace(codes[6], CODE_128))  # a duplicate EUI-64, at the very end
    one, two = io.StringIO(), io.StringIO()
    serial = validate_csv(iter([r + "\n" for r in rows]), one, jobs=1)
    parallel = validate_csv(iter([r + "\n" for r in rows]), two, jobs=2)
    assert one.getvalue() == two.getvalue()
    assert serial == parallel
    assert serial.good == 9000 - 93
    assert len(serial.errors) == 93 + 2
    assert serial.errors[-2].startswith(
        "line 9002: EUI-64 001BC5FFFFFFFFFF: the install code is already on line 10"
    )
    assert serial.errors[-1] == "line 9003: EUI-64 001BC50000000005 is already on line 7"


def test_provisioning_example_runs():
    example = Path(__file__).parents[2] / "examples" / "provision_by_install_code.py"
    process = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, check=True
    )
    lines = process.stdout.splitlines()
    assert lines[0] == f"00:1B:C5:00:70:00:05:2B: 128-bit code, link key {KEY_128.lower()}"
    assert lines[2].startswith("001BC5007000052D: refused: install code CRC mismatch")


def test_csv_in_parallel_from_a_program_with_threads_does_not_fork() -> None:
    """A program calling ``validate_csv(jobs=2)`` while it runs other threads (a server's):
    its workers are not forked from it, which copies those threads' held locks into them
    (Python 3.12+ warns of the deadlock; the start method is checked on every version)."""
    from zse.cli.installcode import _pool_context  # noqa: PLC0415

    assert _pool_context().get_start_method() in ("forkserver", "spawn")
    stop = threading.Event()
    busy = threading.Thread(target=stop.wait)
    busy.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)
            rows = ["eui64,install_code", f"001BC50000000001,{CODE_128}"]
            report = validate_csv(iter([r + "\n" for r in rows]), io.StringIO(), jobs=2)
    finally:
        stop.set()
        busy.join()
    assert report == CsvReport(good=1, errors=[])
