"""``zse capture``: read, decrypt and decode an IEEE 802.15.4 / ZigBee sniffer capture.

``zse capture FILE [--keys KEYFILE]... [--network-key HEX]... [--link-key HEX]...
[--install-code [EUI64=]CODE]... [--json] [--write OUT.pcap] [--zep-port PORT]
[--show-keys]``: one line per
frame (time, source -> destination, the layers, the command with its fields), or one JSON
object per line (with a ZEP packet's device id, sequence number and time);
``--write`` also writes the frames with NWK/APS security removed. A summary
goes to standard error, with the records skipped as holding no 802.15.4 frame (ARP, other
UDP ports... in a ZEP capture). Key material, whole top-up codes and passwords are printed only with
``--show-keys``.

Exit status: 0 done, 1 a capture that cannot be read (not pcap/pcapng, a truncated or
malformed record, a link type that is not 802.15.4; one ``error:`` line naming the
record, after the frames before it), 2 bad options or a bad key file line (one line), 130
interrupted.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

import click

from zse._files import read_text_bounded
from zse.cli._errors import INTERRUPTED, fail
from zse.cli._files import OutputError, atomic_binary_output, refuse_input_as_output
from zse.cli._types import PlainIntRange
from zse.errors import InvalidEui64

if TYPE_CHECKING:
    from zse.capture import CaptureDecoder, KeyRing, UnsecuredWriter

# zse.capture and zse.installcode (most of the start-up time) are imported when the command
# runs, so that a Ctrl-C while they load is the command's "interrupted" (130), not click's
# "Aborted!" (1).

__all__ = ["capture", "load_keys"]


class _Discard(Exception):
    """Leave a --write target as it was."""


def load_keys(
    key_files: tuple[str, ...],
    network_keys: tuple[str, ...],
    link_keys: tuple[str, ...],
    install_codes: tuple[str, ...],
) -> KeyRing:
    """The key ring the options give; :class:`~zse.capture.KeyFileError` for a bad one."""
    from zse.capture import Key, KeyFileError, KeyRing, parse_key, read_key_file  # noqa: PLC0415
    from zse.installcode import canonical_eui64  # noqa: PLC0415

    ring = KeyRing()
    for path in key_files:
        try:
            text = read_text_bounded(path, error=KeyFileError)
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise KeyFileError(f"cannot read key file {path}: {reason}") from None
        # lines end at \n, \r\n or \r only, as Wireshark reads them (not str.splitlines'
        # U+2028 or form feed, which a label may hold: the error would name a wrong line)
        lines = (line.rstrip("\n") for line in io.StringIO(text, newline=None))
        for key in read_key_file(lines, name=path):
            ring.add(key)
    for number, text in enumerate(network_keys, 1):
        ring.add(Key(parse_key(text, f"--network-key #{number}"), f"network key #{number}"))
    for number, text in enumerate(link_keys, 1):
        ring.add(Key(parse_key(text, f"--link-key #{number}"), f"link key #{number}"))
    for number, text in enumerate(install_codes, 1):
        eui, _, code = text.rpartition("=")
        label = f"install code #{number}"
        if eui:
            try:
                label = f"install code of {canonical_eui64(eui)}"
            except InvalidEui64 as exc:
                raise KeyFileError(f"--install-code #{number}: {exc}") from None
        ring.add_install_code(code, label)
    return ring


@click.command()
@click.argument("capture_file", metavar="FILE", type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "--keys",
    "key_files",
    multiple=True,
    metavar="KEYFILE",
    help='Wireshark ZigBee key table: lines "KEY","Normal","label" (repeatable).',
)
@click.option("--network-key", multiple=True, metavar="HEX", help="A network key (repeatable).")
@click.option("--link-key", multiple=True, metavar="HEX", help="A link key (repeatable).")
@click.option(
    "--install-code",
    multiple=True,
    metavar="[EUI64=]CODE",
    help="An install code; its link key is tried (repeatable).",
)
@click.option("--json", "as_json_lines", is_flag=True, help="One JSON object per frame.")
@click.option(
    "--write",
    "write_path",
    metavar="OUT.pcap",
    help="Also write the frames with NWK/APS security removed (pcap, link type 195).",
)
@click.option(
    "--zep-port",
    type=PlainIntRange(1, 65535),
    default=17754,
    show_default=True,
    metavar="PORT",
    help="The UDP port ZEP frames are read from or to, in ZEP captures.",
)
@click.option(
    "--show-keys",
    is_flag=True,
    help=(
        "Print key material (Transport Key contents and the keys learned), top-up codes"
        " whole and passwords."
    ),
)
def capture(**options: Any) -> None:
    """Decode (and decrypt, given keys) an 802.15.4 capture: pcap or pcapng, link types
    195 (with FCS), 230 (without), 283 (TAP) or 215 (non-ASK PHY), ZEP over UDP (port
    17754) in Ethernet, Linux cooked, raw IP or loopback captures, or raw 802.15.4 frames in
    Linux cooked captures (tcpdump -i any). FILE may be - for standard input."""
    try:
        _capture(**options)  # click passes the options by name
    except KeyboardInterrupt:  # while starting or finishing; while reading, _decode says so
        fail("interrupted", INTERRUPTED)


def _capture(  # noqa: PLR0917 - the command's options
    capture_file: str,
    key_files: tuple[str, ...],
    network_key: tuple[str, ...],
    link_key: tuple[str, ...],
    install_code: tuple[str, ...],
    as_json_lines: bool,
    write_path: str | None,
    zep_port: int,
    show_keys: bool,
) -> None:
    from zse.capture import CaptureDecoder, KeyFileError, UnsecuredWriter, as_json, as_line  # noqa: PLC0415

    try:
        keys = load_keys(key_files, network_key, link_key, install_code)
    except KeyFileError as exc:
        fail(str(exc), 2)
    given = len(keys)
    if write_path is not None:
        try:
            inputs = [0] if capture_file == "-" else [capture_file]
            refuse_input_as_output(write_path, [*inputs, *key_files], "--write")
        except OutputError as exc:
            fail(str(exc), 2)
    try:
        source = sys.stdin.buffer if capture_file == "-" else open(capture_file, "rb")  # noqa: SIM115
    except OSError as exc:
        fail(f"cannot read {capture_file}: {exc.strerror}", 2)
    decoder = CaptureDecoder(keys, zep_port=zep_port)
    show = as_json if as_json_lines else as_line
    # --write: a temporary file (0600: decrypted frames carry keys) that replaces the target
    # only once frames were decoded (the previous file is kept when the input is no capture)
    # and not when interrupted; a device or FIFO is written in place
    output = (
        contextlib.nullcontext(None)
        if write_path is None
        else atomic_binary_output(write_path, "--write")
    )
    status, message, skipped = 0, "", 0
    try:
        with output as handle:
            writer = None if handle is None else UnsecuredWriter(handle)
            try:
                status, message, written, skipped = _decode(
                    source, decoder, show, show_keys, writer
                )
            finally:
                if source is not sys.stdin.buffer:
                    source.close()
            if writer is not None:
                writer.close()  # flushes into the handle, which the output commits
                if status == INTERRUPTED or (status and not written):
                    raise _Discard
    except _Discard:
        pass
    except OutputError as exc:
        fail(str(exc), 2)
    out = sys.stdout
    out.flush()
    if status:
        fail(message, status)
    _summary(decoder, given, skipped, write_path, show_keys, sys.stderr)


def _decode(
    source: BinaryIO,
    decoder: CaptureDecoder,
    show: Callable[..., str],
    show_keys: bool,
    writer: UnsecuredWriter | None,
) -> tuple[int, str, int, int]:
    """Print (and write) every frame of ``source``: the exit status (0, 1 for a capture
    that ends in error, 130 for Ctrl-C), what to say, how many frames were written and how
    many records were skipped as holding no 802.15.4 frame."""
    from zse.capture import CaptureError, SkippedRecord, read_records  # noqa: PLC0415

    written = skipped = 0
    try:
        for record in read_records(source):
            try:
                frame = decoder.decode(record)
            except SkippedRecord:
                skipped += 1
                continue
            sys.stdout.write(show(frame, show_keys=show_keys) + "\n")
            if writer is not None:
                writer.write(frame)
                written += 1
    except CaptureError as exc:
        return 1, str(exc), written, skipped
    except KeyboardInterrupt:
        return INTERRUPTED, "interrupted", written, skipped
    except BrokenPipeError:
        # the reader went away (| head): nothing more to say; status 1, as every command
        # ends on a closed pipe (0 would say the capture was read to its end), and --write
        # keeps the previous file
        sys.stderr.close()
        sys.exit(1)
    return 0, "", written, skipped


def _summary(  # noqa: PLR0917 - what the summary tells
    decoder: CaptureDecoder,
    given: int,
    skipped: int,
    write_path: str | None,
    show_keys: bool,
    err: TextIO,
) -> None:
    from zse.capture.keys import LEARNED_LIMIT  # noqa: PLC0415

    learned = decoder.keys.learned
    text = (
        f"{decoder.frames} frames, {decoder.decrypted} decrypted, "
        f"{decoder.failed} not decrypted; {len(learned)} keys learned"
    )
    if skipped:
        text += f"; {skipped} records without an 802.15.4 frame skipped"
    if decoder.keys.dropped:
        text += f" ({decoder.keys.dropped} older learned keys dropped past {LEARNED_LIMIT})"
    if write_path is not None:
        text += f"; written to {write_path} without NWK/APS security"
    click.echo(text, file=err)
    if show_keys:
        for key in learned:
            click.echo(f'"{key.key.hex().upper()}","Normal","{key.label}"', file=err)
