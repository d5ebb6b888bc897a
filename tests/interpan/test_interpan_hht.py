"""The HHT command carrier: wire format, at-most-once execution, duplicates, drops and resume,
on a virtual clock, with the durable log on a real file."""

from __future__ import annotations

import os
import resource
import signal
import struct
import tempfile
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zse.errors import InvalidFrame, StoreError
from zse.interpan.hht import (
    CARRIER_CLUSTER_ID,
    DEFAULT_MANUFACTURER_CODE,
    SET_TIME,
    Command,
    CommandFailed,
    Execute,
    FileLog,
    HhtMeter,
    HhtTerminal,
    LogEntry,
    MemoryLog,
    Result,
    ResumeQuery,
    ResumeResponse,
    Status,
    carrier_whitelist,
    decode,
    encode,
    set_time_body,
    set_time_from_body,
)

MFR = DEFAULT_MANUFACTURER_CODE
READ_REGISTER, FAIL = 0x02, 0x03


class Meter:
    """A meter's application: a clock the terminal sets and a register it reads."""

    def __init__(self, log: MemoryLog | FileLog) -> None:
        self.utc = 0
        self.reads = 0
        self.carrier = HhtMeter(
            log, {SET_TIME: self.set_time, READ_REGISTER: self.read, FAIL: self.fail}
        )

    def set_time(self, body: bytes) -> bytes:
        self.utc = set_time_from_body(body)
        return b""

    def read(self, body: bytes) -> bytes:
        self.reads += 1
        return struct.pack("<I", 12345 + self.reads)

    def fail(self, body: bytes) -> bytes:
        raise CommandFailed(b"\x7f")


def service_request() -> list[Command]:
    return [
        Command(0x1000_0001, SET_TIME, set_time_body(0x2B00_0000)),
        Command(0x1000_0002, READ_REGISTER),
        Command(0x1000_0003, READ_REGISTER),
        Command(0x1000_0004, FAIL),
        Command(0x1000_0005, READ_REGISTER),
    ]


def test_wire_format_bytes() -> None:
    execute = Execute(0x0102, 0, 5, Command(0x0A0B0C0D, SET_TIME, b"\x00\x00\x00\x2b"))
    wire = encode(execute, tsn=7, manufacturer_code=0x1234)
    assert wire == bytes.fromhex("1534120700020100050d0c0b0a01040000002b")
    header, decoded = decode(wire, manufacturer_code=0x1234)
    assert decoded == execute
    assert (header.manufacturer_code, header.tsn, header.disable_default_response) == (
        0x1234,
        7,
        True,
    )
    resume = ResumeResponse(0x0102, 10, frozenset({0, 1, 2, 9}))
    wire = encode(resume, tsn=8, manufacturer_code=0x1234)
    assert wire == bytes.fromhex("1d3412080102010a0702")
    assert decode(wire, manufacturer_code=0x1234)[1] == resume
    for message in (ResumeQuery(0xFFFF), Result(1, Status.DUPLICATE, b"ab")):
        assert (
            decode(encode(message, tsn=0, manufacturer_code=MFR), manufacturer_code=MFR)[1]
            == message
        )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (bytes.fromhex("1534120700"), "manufacturer code 0x1234 at ZCL byte offset 1"),
        (bytes.fromhex("110700"), "manufacturer code none"),
        (bytes.fromhex("15f1ff0700020100"), "truncated execute command at ZCL byte offset 5"),
        (bytes.fromhex("15f1ff07000201000501000000010401"), "body length 4 at ZCL byte offset 14"),
        (bytes.fromhex("15f1ff070002010505010000000100"), "index 5 at ZCL byte offset 7"),
        (bytes.fromhex("15f1ff070102"), "resume query at ZCL byte offset 5 must be 2 bytes"),
        (bytes.fromhex("1df1ff070001000000"), "truncated result at ZCL byte offset 5"),
        (bytes.fromhex("1df1ff0700010000000900"), "unknown result status 0x09"),
        (bytes.fromhex("1df1ff0701020103"), "resume bitmap at ZCL byte offset 8 is not 1 bytes"),
        (bytes.fromhex("1df1ff070102010204"), "marks index >= count"),
        (bytes.fromhex("15f1ff0709"), "unknown carrier command 0x09 \\(client_to_server\\)"),
        (bytes.fromhex("04f1ff0700"), "carrier frames are cluster-specific"),
    ],
)
def test_decode_errors(data: bytes, message: str) -> None:
    with pytest.raises(InvalidFrame, match=message):
        decode(data, manufacturer_code=MFR)


def assert_canonical(data: bytes) -> None:
    """Either ``InvalidFrame``, or the decoded header and message encode to ``data``."""
    try:
        header, message = decode(data, manufacturer_code=MFR)
    except InvalidFrame:
        return
    again = encode(
        message,
        tsn=header.tsn,
        manufacturer_code=MFR,
        disable_default_response=header.disable_default_response,
    )
    assert again == data


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=40))
def test_decode_garbage_raises_only_invalid_frame(data: bytes) -> None:
    assert_canonical(data)


SEEDS = [
    encode(
        Execute(0x0102, 0, 3, Command(0xDEADBEEF, SET_TIME, b"\x01\x02\x03\x04")),
        tsn=7,
        manufacturer_code=MFR,
    ),
    encode(ResumeQuery(0x0F3F), tsn=0x63, manufacturer_code=MFR),
    encode(Result(9, Status.FAILED, b"\x7f"), tsn=1, manufacturer_code=MFR),
    encode(ResumeResponse(3, 10, frozenset({0, 2, 9})), tsn=2, manufacturer_code=MFR),
]


@st.composite
def near_valid(draw: st.DrawFn) -> bytes:
    """A valid carrier frame with a few bytes replaced, bits flipped, cut or extended: random
    bytes almost never carry the manufacturer code, so this reaches the payload decoders."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["byte", "bit", "cut", "grow"]))
        if op == "grow":
            data += draw(st.binary(min_size=1, max_size=3))
        elif data:
            at = draw(st.integers(0, len(data) - 1))
            if op == "byte":
                data[at] = draw(st.integers(0, 255))
            elif op == "bit":
                data[at] ^= 1 << draw(st.integers(0, 7))
            else:
                del data[at:]
    return bytes(data)


@settings(max_examples=3000, deadline=None)
@given(near_valid())
def test_whatever_decodes_reencodes_to_the_same_bytes(data: bytes) -> None:
    """#12.22: decode either raises InvalidFrame or encode(decode(b)) == b."""
    assert_canonical(data)


@pytest.mark.parametrize(
    "wire",
    [
        "05f1ff63013f0f",  # the example: default response enabled (ZCL bit 4 clear)
        "05f1ff20010701",
        "15f1ff63013f0f",
    ],
)
def test_default_response_bit_is_kept(wire: str) -> None:
    data = bytes.fromhex(wire)
    header, message = decode(data, manufacturer_code=MFR)
    assert isinstance(message, ResumeQuery)
    assert header.disable_default_response == bool(data[0] & 0x10)
    again = encode(
        message,
        tsn=header.tsn,
        manufacturer_code=MFR,
        disable_default_response=header.disable_default_response,
    )
    assert again.hex() == wire


@pytest.mark.parametrize("control", [0x25, 0x45, 0x85, 0x35])
def test_reserved_frame_control_bits_are_refused(control: int) -> None:
    with pytest.raises(InvalidFrame, match="reserved bits 5-7 set"):
        decode(bytes([control]) + bytes.fromhex("f1ff63013f0f"), manufacturer_code=MFR)


def test_whitelist_entries_for_the_carrier() -> None:
    entries = carrier_whitelist()
    assert {e.cluster_id for e in entries} == {CARRIER_CLUSTER_ID}
    assert {e.manufacturer_code for e in entries} == {MFR}
    assert len(entries) == 4


class Link:
    """Terminal <-> meter on a virtual clock; ``drop`` names replies lost on the way back."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self.now = 0.0
        self.drop_replies: set[int] = set()  # indices of execute frames whose answer is lost
        self.delivered = 0

    def run(self, terminal: HhtTerminal, *, break_after: int | None = None) -> None:
        frame = terminal.next_frame(self.now)
        while frame is not None:
            self.now += 0.05
            _, message = decode(frame, manufacturer_code=MFR)
            reply = self.meter.carrier.receive(frame)
            self.delivered += 1
            lost = isinstance(message, Execute) and message.index in self.drop_replies
            if lost:
                self.drop_replies.discard(message.index)
                self.now = terminal.deadline or self.now
                frame = terminal.handle_timeout(self.now)
                continue
            terminal.receive(reply, self.now)
            if break_after is not None and terminal.position >= break_after:
                return  # the link breaks: the terminal (or its state) is gone
            frame = terminal.next_frame(self.now)


def test_runs_a_service_request_and_sets_the_meters_time() -> None:
    meter = Meter(MemoryLog())
    terminal = HhtTerminal(0x0042, service_request())
    Link(meter).run(terminal)
    assert terminal.done
    assert meter.utc == 0x2B00_0000
    statuses = [terminal.results[c.transaction_id].status for c in service_request()]
    assert statuses == [Status.EXECUTED] * 3 + [Status.FAILED, Status.EXECUTED]
    assert terminal.results[0x1000_0004].result == b"\x7f"
    assert meter.carrier.executions == 5


def test_lost_reply_is_retried_and_answered_as_duplicate_without_running_again() -> None:
    meter = Meter(MemoryLog())
    link = Link(meter)
    link.drop_replies = {1, 2}
    terminal = HhtTerminal(0x0042, service_request(), timeout=3.0)
    link.run(terminal)
    assert terminal.done
    assert meter.carrier.executions == 5  # seven deliveries, five executions
    assert link.delivered == 7
    assert meter.reads == 3
    second = terminal.results[0x1000_0002]
    assert second.status is Status.DUPLICATE
    assert second.result == struct.pack("<I", 12346)  # the stored outcome, not a new read
    assert link.now >= 6.0  # two timeouts of 3 s elapsed on the virtual clock


def test_link_drop_mid_sequence_then_resume_from_a_fresh_terminal() -> None:
    meter = Meter(MemoryLog())
    link = Link(meter)
    first = HhtTerminal(0x0042, service_request())
    link.run(first, break_after=3)
    assert first.position == 3
    # a new terminal session (e.g. after a reboot) knows only the service request
    fresh = HhtTerminal(0x0042, service_request())
    answer = fresh.receive(meter.carrier.receive(fresh.resume(link.now)), link.now)
    assert isinstance(answer, ResumeResponse)
    assert answer.executed == {0, 1, 2}
    assert fresh.position == 3
    link.run(fresh)
    assert fresh.done
    assert meter.carrier.executions == 5
    assert sorted(fresh.results) == [0x1000_0004, 0x1000_0005]


def test_duplicate_over_the_network_is_rejected() -> None:
    meter = Meter(MemoryLog())
    Link(meter).run(HhtTerminal(0x0042, service_request()))
    # the head-end replays transaction 0x10000003 over the HAN (same carrier frame, other path)
    replay = encode(Execute(0x0042, 2, 5, service_request()[2]), tsn=99, manufacturer_code=MFR)
    header, result = decode(meter.carrier.receive(replay), manufacturer_code=MFR)
    assert header.tsn == 99
    assert isinstance(result, Result)
    assert result.status is Status.DUPLICATE
    assert meter.reads == 3
    unknown = encode(Execute(7, 0, 1, Command(0x9999, 0x55)), tsn=1, manufacturer_code=MFR)
    _, result = decode(meter.carrier.receive(unknown), manufacturer_code=MFR)
    assert isinstance(result, Result)
    assert result.status is Status.UNSUPPORTED
    with pytest.raises(InvalidFrame, match="not responses"):
        meter.carrier.receive(encode(result, tsn=1, manufacturer_code=MFR))


def test_terminal_ignores_stale_and_unrelated_answers() -> None:
    terminal = HhtTerminal(0x0042, service_request())
    terminal.next_frame(0.0)
    stale = encode(Result(0x0BAD, Status.EXECUTED), tsn=1, manufacturer_code=MFR)
    assert terminal.receive(stale, 0.1) is None
    assert terminal.handle_timeout(1.0) is None  # not yet
    again = terminal.handle_timeout(2.0)
    assert again is not None
    assert decode(again, manufacturer_code=MFR)[1] == Execute(0x42, 0, 5, service_request()[0])
    with pytest.raises(ValueError, match="unique"):
        HhtTerminal(1, [Command(1, 1), Command(1, 2)])


def test_file_log_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "hht.log"
    log = FileLog(path)
    meter = Meter(log)
    Link(meter).run(HhtTerminal(0x0042, service_request()), break_after=2)
    log.close()
    # power cycle: a new meter process on the same file
    log = FileLog(path)
    meter = Meter(log)
    fresh = HhtTerminal(0x0042, service_request())
    fresh.receive(meter.carrier.receive(fresh.resume(0.0)), 0.0)
    assert fresh.position == 2
    Link(meter).run(fresh)
    assert meter.carrier.executions == 3
    log.close()
    assert FileLog(path).get(0x1000_0001) is not None


def test_begun_but_unfinished_is_never_rerun(tmp_path: Path) -> None:
    path = tmp_path / "hht.log"
    log = FileLog(path)

    class PowerCut(BaseException):
        pass

    def crash(body: bytes) -> bytes:
        raise PowerCut

    meter = HhtMeter(log, {READ_REGISTER: crash})
    frame = encode(Execute(1, 0, 1, Command(77, READ_REGISTER)), tsn=1, manufacturer_code=MFR)
    with pytest.raises(PowerCut):
        meter.receive(frame)
    log.close()
    meter = HhtMeter(FileLog(path), {READ_REGISTER: lambda body: b"ran"})
    _, result = decode(meter.receive(frame), manufacturer_code=MFR)
    assert isinstance(result, Result)
    assert result.status is Status.INTERRUPTED
    assert meter.executions == 0


def test_torn_tail_is_dropped_and_corruption_reported(tmp_path: Path) -> None:
    path = tmp_path / "hht.log"
    log = FileLog(path, fsync=False)
    Link(Meter(log)).run(HhtTerminal(0x0042, service_request()[:2]))
    log.close()
    whole = path.read_bytes()
    path.write_bytes(whole[:-3])  # power cut in the middle of the last record
    log = FileLog(path)
    assert log.get(0x1000_0002) is not None
    assert log.get(0x1000_0002).status is None  # its DONE record was the torn one
    log.close()
    damaged = bytearray(whole)
    damaged[3] ^= 0xFF
    path.write_bytes(bytes(damaged))
    with pytest.raises(InvalidFrame, match="corrupt HHT log record at file offset 0"):
        FileLog(path)


def written_log(path: Path) -> tuple[bytes, dict[int, Status | None]]:
    """A log of a two-command request (four records), and what it says per transaction."""
    log = FileLog(path, fsync=False)
    Link(Meter(log)).run(HhtTerminal(0x0042, service_request()[:2]))
    log.close()
    known = {txid: log.get(txid).status for txid in (0x1000_0001, 0x1000_0002)}  # type: ignore[union-attr]
    return path.read_bytes(), known


@pytest.mark.parametrize("zeros", [1, 4, 5, 6, 13, 512, 4095, 4096])
def test_zero_filled_tail_is_a_torn_tail(
    tmp_path: Path, zeros: int, caplog: pytest.LogCaptureFixture
) -> None:
    """#12.26: the zero bytes a file system leaves after a power cut do not stop the meter."""
    path = tmp_path / "hht.log"
    whole, known = written_log(path)
    path.write_bytes(whole + bytes(zeros))
    with caplog.at_level("WARNING", logger="zse.interpan.hht"):
        log = FileLog(path)
    assert {txid: log.get(txid).status for txid in known} == known  # type: ignore[union-attr]
    assert path.read_bytes() == whole  # cut off, durably
    assert f"torn tail of {zeros} bytes at file offset {len(whole)}" in caplog.text
    # the meter carries on: new records follow the complete ones
    log.begin(LogEntry(0x2000_0001, 7, 0, 1))
    log.close()
    assert FileLog(path).get(0x2000_0001) is not None


@settings(max_examples=200, deadline=None)
@given(zeros=st.integers(0, 4096), cut=st.integers(0, 12))
def test_any_zero_or_partial_tail_keeps_every_complete_record(zeros: int, cut: int) -> None:
    """The last record cut short by ``cut`` bytes (0: complete), then ``zeros`` zero bytes
    (the file's size reached the disk, its data did not): every complete record is kept."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hht.log"
        whole, known = written_log(path)
        last = record_offsets(whole)[-1]  # the DONE record of 0x10000002 (12 bytes)
        path.write_bytes(whole[: len(whole) - cut] + bytes(zeros))
        log = FileLog(path)
        log.close()
        assert log.get(0x1000_0001).status is known[0x1000_0001]  # type: ignore[union-attr]
        second = log.get(0x1000_0002)
        assert second is not None
        assert second.status is (None if cut else known[0x1000_0002])
        assert path.read_bytes() == (whole[:last] if cut else whole)


def test_partial_record_tail_is_dropped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "hht.log"
    whole, known = written_log(path)
    last = record_offsets(whole)[-1]
    for keep in range(last + 1, len(whole)):  # every cut inside the last record
        path.write_bytes(whole[:keep])
        with caplog.at_level("WARNING", logger="zse.interpan.hht"):
            log = FileLog(path)
        assert log.get(0x1000_0001).status is known[0x1000_0001]  # type: ignore[union-attr]
        assert log.get(0x1000_0002).status is None  # type: ignore[union-attr]  # its DONE was torn
        log.close()
        assert path.read_bytes() == whole[:last]
        assert f"at file offset {last} dropped" in caplog.text
        # the same partial record with the zeros a file system leaves after it
        path.write_bytes(whole[:keep] + bytes(4096 - keep))
        FileLog(path).close()
        assert path.read_bytes() == whole[:last]


@pytest.mark.parametrize("where", ["length", "length_past_the_end", "kind", "crc", "zeroed"])
def test_corruption_in_the_middle_is_still_reported(tmp_path: Path, where: str) -> None:
    path = tmp_path / "hht.log"
    whole, _ = written_log(path)
    offsets = record_offsets(whole)
    second = offsets[1]
    damaged = bytearray(whole + bytes(64))  # even with a zero tail after it
    if where == "length":
        damaged[second] ^= 0x01
    elif where == "length_past_the_end":  # it claims the records after it and the file's end
        damaged[second] = 0xFF
    elif where == "kind":
        damaged[second + 1] ^= 0x10
    elif where == "crc":
        damaged[offsets[2] - 1] ^= 0x80
    else:  # a whole record zeroed, complete records after it
        damaged[second : offsets[2]] = bytes(offsets[2] - second)
    path.write_bytes(bytes(damaged))
    with pytest.raises(InvalidFrame, match=f"corrupt HHT log record at file offset {second}$"):
        FileLog(path)
    assert path.read_bytes() == bytes(damaged)  # nothing cut


def record_offsets(data: bytes) -> list[int]:
    offsets, at = [], 0
    while at < len(data):
        offsets.append(at)
        at += 1 + data[at] + 4
    return offsets


def execute(txid: int, code: int = READ_REGISTER, body: bytes = b"") -> bytes:
    return encode(Execute(1, 0, 1, Command(txid, code, body)), tsn=1, manufacturer_code=MFR)


def answer(meter: HhtMeter, frame: bytes) -> Result:
    _, result = decode(meter.receive(frame), manufacturer_code=MFR)
    assert isinstance(result, Result)
    return result


@pytest.mark.parametrize("size", [249, 255])
def test_every_result_the_wire_carries_is_logged_and_survives_a_restart(
    tmp_path: Path, size: int
) -> None:
    """A result of 249-255 bytes (a DONE record over 255 bytes) is logged (a wide record, after
    the format record), answered, and repeated from the log after a restart, never re-run."""
    path = tmp_path / "hht.log"
    log = FileLog(path)
    runs: list[bytes] = []
    meter = HhtMeter(log, {READ_REGISTER: lambda body: runs.append(body) or bytes(range(size))})
    assert answer(meter, execute(0x11)) == Result(0x11, Status.EXECUTED, bytes(range(size)))
    assert answer(meter, execute(0x12)).status is Status.EXECUTED  # and records after it
    log.close()
    data = path.read_bytes()
    assert data.count(_FORMAT_RECORD) == 1  # format 2 from the first wide record on
    log = FileLog(path)
    meter = HhtMeter(log, {READ_REGISTER: lambda body: runs.append(body) or b""})
    assert answer(meter, execute(0x11)) == Result(0x11, Status.DUPLICATE, bytes(range(size)))
    assert answer(meter, execute(0x12)).status is Status.DUPLICATE
    assert len(runs) == 2
    log.close()


#: The format record a log gets before its first wide record (format 2).
_FORMAT_RECORD = bytes((2, 0x56, 2)) + struct.pack("<I", zlib.crc32(bytes((0x56, 2))))


def test_a_torn_wide_record_is_a_torn_tail(tmp_path: Path) -> None:
    """Every cut inside a wide DONE record (a power cut) drops it: the transaction is
    INTERRUPTED, never re-run; a format this zse does not know is refused."""
    path = tmp_path / "hht.log"
    log = FileLog(path)
    HhtMeter(log, {READ_REGISTER: lambda body: bytes(255)}).receive(execute(0x21))
    log.close()
    whole = path.read_bytes()
    begin_end = 1 + 9 + 4
    done = whole.index(b"\x00\x06\x01", begin_end)  # the wide DONE: 0x00, length 262 (u16)
    for keep in range(done + 1, len(whole)):
        path.write_bytes(whole[:keep] + bytes(keep % 7))
        meter = HhtMeter(FileLog(path), {READ_REGISTER: lambda body: b"again"})
        assert answer(meter, execute(0x21)).status is Status.INTERRUPTED
        assert meter.executions == 0
        meter.log.close()  # type: ignore[attr-defined]
        assert path.read_bytes() == whole[:done]
    future = bytes((0x56, 3))
    path.write_bytes(
        whole[:begin_end] + bytes((2,)) + future + struct.pack("<I", zlib.crc32(future))
    )
    with pytest.raises(InvalidFrame, match="HHT log format 3 at file offset 14"):
        FileLog(path)


def test_a_result_longer_than_the_wire_carries_is_failed_and_logged(tmp_path: Path) -> None:
    path = tmp_path / "hht.log"
    log = FileLog(path)
    meter = HhtMeter(log, {READ_REGISTER: lambda body: bytes(256)})
    assert answer(meter, execute(0x31)) == Result(0x31, Status.FAILED)
    log.close()
    log = FileLog(path)
    meter = HhtMeter(log, {READ_REGISTER: lambda body: b""})
    assert answer(meter, execute(0x31)) == Result(0x31, Status.DUPLICATE)
    assert meter.executions == 0
    log.close()


def _record(record: bytes) -> bytes:
    return bytes((len(record),)) + record + struct.pack("<I", zlib.crc32(record))


@pytest.mark.parametrize("zeros", [0, 4096])
def test_a_torn_done_whose_result_holds_a_record_is_a_torn_tail(tmp_path: Path, zeros: int) -> None:
    """The result bytes of the torn last DONE hold a complete, CRC-valid record: that is part
    of the torn record, not a record after damage, so the meter starts (the transaction
    INTERRUPTED), at every cut inside the DONE, with or without a zero-filled tail."""
    path = tmp_path / "hht.log"
    inner = _record(struct.pack("<BIHBB", 0x42, 0x99, 1, 0, 1))  # a BEGIN record's frame
    log = FileLog(path)
    HhtMeter(log, {READ_REGISTER: lambda body: bytes(3) + inner + bytes(5)}).receive(execute(0x22))
    log.close()
    whole = path.read_bytes()
    done = 1 + 9 + 4
    for keep in range(done + 1, len(whole)):
        path.write_bytes(whole[:keep] + bytes(zeros))
        log = FileLog(path)
        log.close()
        assert log.get(0x99) is None
        assert log.get(0x22) == LogEntry(0x22, 1, 0, 1)  # begun, its DONE torn: INTERRUPTED
        assert path.read_bytes() == whole[:done]


def test_two_file_logs_on_one_file_are_refused(tmp_path: Path) -> None:
    """A second FileLog on the same file (another meter process, or this one again, by any
    path to it) gets StoreError, so a transaction is never executed by both."""
    path = tmp_path / "hht.log"
    first = FileLog(path)
    link = tmp_path / "link.log"
    os.link(path, link)
    for other in (path, link):
        with pytest.raises(StoreError, match="in use by another FileLog"):
            FileLog(other)
    meter = HhtMeter(first, {READ_REGISTER: lambda body: b"once"})
    assert answer(meter, execute(0x33)).status is Status.EXECUTED
    first.close()
    first.close()  # again: nothing
    second = FileLog(path)  # the lock went with the first
    meter = HhtMeter(second, {READ_REGISTER: lambda body: b"twice"})
    assert answer(meter, execute(0x33)) == Result(0x33, Status.DUPLICATE, b"once")
    second.close()


def test_a_path_that_is_not_a_log_file_raises_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"cannot open the HHT log: Is a directory$"):
        FileLog(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(StoreError, match=r"fifo: the HHT log is not a regular file$"):
        FileLog(fifo)
    with pytest.raises(StoreError, match=r"cannot open the HHT log: No such file or directory$"):
        FileLog(tmp_path / "missing" / "hht.log")


def test_a_failed_write_raises_store_error_and_loses_nothing(tmp_path: Path) -> None:
    """A write that fails for real (the file size limit, EFBIG) before the handler runs: it
    does not run, the log refuses further writes, and after a reopen it runs once."""
    path = tmp_path / "hht.log"
    log = FileLog(path)
    runs: list[bytes] = []
    meter = HhtMeter(log, {READ_REGISTER: lambda body: runs.append(body) or b"ok"})
    assert answer(meter, execute(0x41)).status is Status.EXECUTED
    size = path.stat().st_size
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 5, limit[1]))
        with pytest.raises(StoreError, match=r"cannot write the HHT log: File too large$"):
            meter.receive(execute(0x42))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
        signal.signal(signal.SIGXFSZ, handler)
    assert runs == [b""]
    assert path.stat().st_size == size  # the partial record taken back
    with pytest.raises(StoreError, match=r"a write to the HHT log failed; reopen it$"):
        meter.receive(execute(0x42))
    log.close()
    log = FileLog(path)
    meter = HhtMeter(log, {READ_REGISTER: lambda body: runs.append(body) or b"ok"})
    assert answer(meter, execute(0x42)).status is Status.EXECUTED
    assert answer(meter, execute(0x41)).status is Status.DUPLICATE
    assert runs == [b"", b""]
    log.close()
