"""Devices CSV on hostile input (hostile-input audit D7): a line without end is refused as soon
as it is longer than any devices CSV line, and a long line in many chunks is read in linear
work (the unfinished line kept in pieces, not rebuilt for every chunk)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from zse.device_csv import MAX_LINE, DeviceCsvError, decode_lines


class Chunks:
    """Chunks of ``size`` bytes of ``a`` (no newline), counting how many were taken."""

    def __init__(self, count: int, size: int = 65_536, head: bytes = b"eui64,install_code\n"):
        self.count, self.size, self.head, self.taken = count, size, head, 0

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        for _ in range(self.count):
            self.taken += 1
            yield b"a" * self.size


def test_a_line_without_end_is_refused_once_it_is_too_long_not_read_to_the_end() -> None:
    chunks = Chunks(200)  # 13 MB if read to the end
    lines = decode_lines(chunks)
    assert next(lines) == "eui64,install_code\n"
    with pytest.raises(DeviceCsvError, match=rf"^line 2: a line longer than {MAX_LINE} characters"):
        next(lines)
    assert chunks.taken == MAX_LINE // chunks.size + 1


def test_a_too_long_line_in_one_chunk_is_refused_with_its_number() -> None:
    data = b"eui64,install_code\n\n" + b"9" * (MAX_LINE + 1) + b"\nmore\n"
    with pytest.raises(DeviceCsvError, match=r"^line 3: a line longer than"):
        list(decode_lines([data]))
    with pytest.raises(DeviceCsvError, match=r"^line 2: a line longer than"):
        list(decode_lines([b"x\n" + b"9" * (MAX_LINE + 1)]))  # the last line, no newline


def test_a_line_in_many_small_chunks_is_one_line() -> None:
    def pieces() -> Iterator[bytes]:
        yield b"h\n"
        yield from [b"b"] * 5000
        yield "\u00e9\nend\nlast".encode()

    assert list(decode_lines(pieces())) == ["h\n", "b" * 5000 + "\u00e9\n", "end\n", "last"]
