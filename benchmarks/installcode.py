"""Install-code link-key derivation: zse against zigpy in the same run, and a 1M-row CSV.

Usage: .venv/bin/python benchmarks/installcode.py [--rows N] [--repeat R]

Prints microseconds per derivation (parse bytes + CRC check + AES-MMO) for
``zse.installcode.InstallCode.from_bytes(...).link_key`` and for
``zigpy.util.convert_install_code``, their ratio (goal: zse >= 2.5x faster), and the wall time
of ``zse installcode --csv`` on a generated manufacturer file of N rows (goal: 1,000,000 rows
in under 15 s).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
import timeit

import zigpy.util

from zse.installcode import InstallCode

CODES = [
    bytes(InstallCode.generate(bits, random.Random(bits)))
    for bits in (48, 64, 96, 128)
    for _ in range(25)
]


def per_call_us(function, repeat: int) -> float:
    """Best-of-``repeat`` microseconds per derivation over all 100 codes."""
    timer = timeit.Timer(lambda: [function(code) for code in CODES])
    loops = 200
    return min(timer.repeat(repeat=repeat, number=loops)) / (loops * len(CODES)) * 1e6


def csv_seconds(rows: int) -> float:
    rng = random.Random(2026)
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "codes.csv")
        with open(source, "w") as f:
            f.write("eui64,install_code\n")
            for i in range(rows):
                f.write(f"001BC5{i:010X},{InstallCode.generate(128, rng)}\n")
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "zse", "installcode", "--csv", source, "-o", os.devnull],
            check=True,
            stderr=subprocess.DEVNULL,
        )
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    for code in CODES:  # same answer before timing anything
        assert InstallCode.from_bytes(code).link_key == bytes(zigpy.util.convert_install_code(code))
    zse_us = per_call_us(lambda code: InstallCode.from_bytes(code).link_key, args.repeat)
    zigpy_us = per_call_us(zigpy.util.convert_install_code, args.repeat)
    print(f"link-key derivation, mean over 48/64/96/128-bit codes, best of {args.repeat}:")
    print(f"  zse    {zse_us:7.2f} us")
    print(f"  zigpy  {zigpy_us:7.2f} us")
    print(f"  ratio  {zigpy_us / zse_us:7.2f}x faster (goal >= 2.5x)")
    seconds = csv_seconds(args.rows)
    print(
        f"zse installcode --csv, {args.rows:,} rows, {os.cpu_count()} CPUs: {seconds:.1f} s "
        f"({seconds / args.rows * 1e6:.1f} us/row; goal 1,000,000 rows < 15 s)"
    )


if __name__ == "__main__":
    main()
