"""``zse installcode --csv`` writes what it wrote before its speed-up, byte for byte.

The expected files under ``data/`` were written by the code before the change (2026-12-06):
every kind of bad row the CSV path refuses, formula cells, labels, CR line ends, duplicates,
in one process and in two.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from click.testing import CliRunner

from zse.cli import main
from zse.cli.installcode import validate_csv
from zse.installcode import InstallCode

DATA = Path(__file__).parent / "data"
GOOD, ERRORS = 11_991, 19
OUTPUT_SHA256 = "19dde1b3e70e60349042929ee1e963bb96d51ca50f7554f993dc2cf78b2c6d20"
ERRORS_SHA256 = "b9aef418ada0f3ae1f324c536eb04eb7a9da20a8b6f7ec81dd17a92d32e5f9ed"


@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize("name", ["devices_varied", "devices_minimal_cr"])
def test_output_and_messages_as_before(tmp_path: Path, name: str, jobs: str) -> None:
    out = tmp_path / "keys.csv"
    source = DATA / f"{name}.csv"
    result = CliRunner().invoke(
        main, ["installcode", "--csv", str(source), "-o", str(out), "--jobs", jobs]
    )
    assert result.exit_code == 2
    assert result.stderr == (DATA / f"{name}.expected.err").read_text(encoding="utf-8")
    assert out.read_bytes() == (DATA / f"{name}.expected.csv").read_bytes()


def _bulk() -> list[str]:
    """12,000 rows (over three 4096-row chunks), every 1009th mistyped, then rows repeating an
    earlier row's EUI-64 or code."""
    lines = ["eui64,install_code,label\n"]
    for i in range(12_000):
        code = InstallCode.from_data(
            hashlib.sha256(i.to_bytes(4, "big")).digest()[: (6, 8, 12, 16)[i % 4]]
        )
        text = str(code)
        if i % 1009 == 0:
            text = text[:-1] + ("0" if text[-1] != "0" else "1")  # a CRC mismatch, mostly
        lines.append(f"001BC5{i:010X},{text},=row {i}\n")
    for i in (4094, 4095, 4096, 8191, 8192):  # 8191 and 8192 repeat the codes of 4095, 4096
        lines.append(f"001BC6{i:010X},{InstallCode.from_data(bytes([i % 256]) * 16)},again\n")
        lines.append(lines[i - 4000].replace(",=row", ",copy of row"))
    return lines


@pytest.mark.parametrize("jobs", [1, 2])
def test_bulk_output_as_before(jobs: int) -> None:
    out = io.StringIO()
    report = validate_csv(iter(_bulk()), out, jobs=jobs)
    digest = hashlib.sha256(out.getvalue().encode()).hexdigest()
    errors = hashlib.sha256("\n".join(report.errors).encode()).hexdigest()
    assert (report.good, len(report.errors)) == (GOOD, ERRORS)
    assert (digest, errors) == (OUTPUT_SHA256, ERRORS_SHA256)
