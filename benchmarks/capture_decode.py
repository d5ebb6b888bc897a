"""``zse capture`` against tshark on the same secured capture, in the same run (#15.3).

Usage: .venv/bin/python benchmarks/capture_decode.py [--frames N] [--no-goal]

The capture: the frames of ``zse demo --seed 1`` (ZDO, Key Establishment, Price, Messaging,
DRLC, inter-PAN, MAC commands and beacons), every NWK data frame in the clear secured with a
network key and every SE-profile APS data frame also APS-secured with a link key
(zse.security); frames the demo secured itself are kept, with the keys it writes
(``--keys``). Repeated to N frames (default 20,000) and to 4N, written as pcap with FCS.

Measured, each tool given both keys:

- zse capture, library: frames decrypted, decoded and rendered as JSON per second
  (``CaptureDecoder.decode`` + ``as_json``), best of three;
- zse capture, command line: ``zse capture FILE --keys K --json > /dev/null``, wall time
  including start-up (best of three), frames per second; run from compiled bytecode, as
  an installed zse is (a first, unmeasured run fills a bytecode cache);
- tshark, same file: ``tshark -r FILE -o uat:zigbee_pc_keys:... -T json > /dev/null`` (every
  field of every frame, as zse's JSON), and ``-T fields`` with three fields (tshark's
  cheapest full dissection), wall time (best of three), frames per second;
- peak memory (max RSS of the process) of both command lines on the N and the 4N file: flat
  in file size means the 4N figure is no larger than the N one plus a few MB.

Goal: the zse command line decodes more frames per CPU second than ``tshark -T json`` (CPU
time, not wall time, as the machines these run on are shared), and its peak memory does not
grow with the file. Exit status 1 if the goal is missed (unless
``--no-goal``) or if zse and tshark disagree on how many frames they decrypted. "Best of
three": of ``--repeat`` runs (default 3; the test's smoke run takes 1).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _tools import need, stop

from zse.capture import CaptureDecoder, KeyRing, as_json, read_key_file, read_records
from zse.capture.frames import decode_aps, decode_mac, decode_nwk
from zse.capture.link import mac_frame
from zse.pcap import PcapWriter
from zse.security import secure_aps, secure_nwk

NETWORK_KEY = bytes.fromhex("31701F5B6BDA2D8E4F5D6B2A0C1E3F47")
LINK_KEY = bytes.fromhex("66B6900981E1EE3CA4206B6B861C02BB")
SE_PROFILE = 0x0109
SOURCE = 0x000D6F0000000001
MEMORY_SLACK_KB = 8 * 1024  # "flat": at most 8 MB more for a 4x larger file


def demo_frames(workdir: Path) -> tuple[list[bytes], list[str]]:
    """The MAC frames (no FCS) of ``zse demo --seed 1``, and the key-table lines of the keys
    it used (``--keys``: the demo secures its own frames since #15.1)."""
    capture, keys = workdir / "demo.pcap", workdir / "demo.keys"
    demo = [sys.executable, "-m", "zse", "demo", "--seed", "1", "--pcap", str(capture)]
    helptext = subprocess.run([*demo[:4], "--help"], capture_output=True, text=True, check=True)
    if "--keys" in helptext.stdout:
        demo += ["--keys", str(keys)]
    subprocess.run(demo, check=True, capture_output=True, timeout=300)
    lines = keys.read_text().splitlines() if keys.exists() else []
    with capture.open("rb") as file:
        return [mac_frame(record).frame for record in read_records(file)], lines


def secured(frame: bytes, counter: int) -> bytes:
    """``frame`` with NWK security (and APS security on the SE profile) applied."""
    try:
        mac, payload = decode_mac(frame)
        nwk, rest = decode_nwk(payload)
    except ValueError:
        return frame
    if mac.frame_type != 1 or nwk.frame_type == 3 or nwk.security:
        return frame
    inner = rest
    if nwk.frame_type == 0:
        aps, app = decode_aps(rest)
        if aps.frame_type == 0 and aps.profile == SE_PROFILE and not aps.security:
            inner = secure_aps(
                rest[: aps.length], app, link_key=LINK_KEY, counter=counter, source=SOURCE
            )
    header = payload[: nwk.length]
    sealed = secure_nwk(header, inner, key=NETWORK_KEY, key_seq=0, counter=counter, source=SOURCE)
    return frame[: mac.length] + sealed


def write_capture(path: Path, frames: list[bytes], count: int) -> None:
    with PcapWriter(path) as pcap:
        for index in range(count):
            frame = frames[index % len(frames)]
            pcap.write(secured(frame, index + 1), 1_764_000_000 + index * 0.01)


def library_rate(path: Path, keys: KeyRing, repeat: int = 3) -> tuple[float, int]:
    """Best frames/s of ``repeat`` passes of decode + JSON, and frames decrypted."""
    best = 0.0
    decrypted = 0
    for _ in range(repeat):
        decoder = CaptureDecoder(KeyRing(keys.keys))
        start = time.perf_counter()
        with path.open("rb") as file:
            for record in read_records(file):
                as_json(decoder.decode(record))
        best = max(best, decoder.frames / (time.perf_counter() - start))
        decrypted = decoder.decrypted
    return best, decrypted


_MEASURE = (
    "import resource, subprocess, sys, time\n"
    "start = time.perf_counter()\n"
    "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,"
    " check=True)\n"
    "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(time.perf_counter() - start, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)"
)


def run_measured(
    command: list[str], repeat: int = 1, env: dict[str, str] | None = None
) -> tuple[float, float, int]:
    """Best wall seconds and best CPU seconds of ``repeat`` runs of ``command`` (output
    discarded), and its peak RSS (kB), the largest seen."""
    wall, cpu, peak = float("inf"), float("inf"), 0
    for _ in range(repeat):
        done = subprocess.run(
            [sys.executable, "-c", _MEASURE, *command],
            capture_output=True,
            text=True,
            timeout=3600,
            env=env,
            check=False,
        )
        if done.returncode != 0:  # nothing quoted: the command's options carry the keys
            said = f"{' '.join(command[:3])} ... exited with status {done.returncode}"
            raise stop(said, "its options, which carry the keys, not shown")
        out = done.stdout.split()
        wall, cpu = min(wall, float(out[0])), min(cpu, float(out[1]))
        peak = max(peak, int(out[2]))
    return wall, cpu, peak


def tshark_decrypted(path: Path, options: list[str]) -> int:
    """The frames tshark decrypted: those where it shows the key it used."""
    done = subprocess.run(
        ["tshark", "-r", str(path), *options, "-T", "fields", "-e", "zbee.sec.key"],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if done.returncode != 0:  # nothing quoted: its options and errors may carry the keys
        raise stop("tshark -T fields failed", f"exit status {done.returncode}")
    fields = done.stdout
    return sum(1 for line in fields.splitlines() if line.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--no-goal", action="store_true", help="report only (smoke test)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs each rate is the best of (1: a smoke test)"
    )
    args = parser.parse_args()
    need("tshark")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        frames, demo_keys = demo_frames(workdir)
        keyfile = workdir / "han.keys"
        keyfile.write_text(
            f'"{NETWORK_KEY.hex().upper()}","Normal","network key"\n'
            f'"{LINK_KEY.hex().upper()}","Normal","link key"\n'
            + "".join(f"{line}\n" for line in demo_keys)
        )
        options: list[str] = []
        for line in keyfile.read_text().splitlines():
            options += ["-o", f"uat:zigbee_pc_keys:{line}"]
        keys = KeyRing(read_key_file(keyfile.read_text().splitlines()))
        sizes = {"N": args.frames, "4N": 4 * args.frames}
        paths = {}
        for name, count in sizes.items():
            paths[name] = workdir / f"capture-{name}.pcap"
            write_capture(paths[name], frames, count)
        small = paths["N"]
        count = sizes["N"]
        print(f"capture: {count} frames ({len(frames)} demo frames, secured, repeated)")

        rate, decrypted = library_rate(small, keys, args.repeat)
        print(f"zse capture library (decode + JSON): {rate:,.0f} frames/s")

        zse = [sys.executable, "-m", "zse", "capture", "--keys", str(keyfile), "--json"]
        # zse runs from its compiled bytecode, as an installed package does: a first run
        # (not measured) fills a bytecode cache in the work directory, even where the
        # environment says not to write bytecode (PYTHONDONTWRITEBYTECODE)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
        run_measured([*zse, str(paths["N"])], env=env)
        tshark_json = ["tshark", "-r", "FILE", *options, "-T", "json"]
        tshark_fields = ["tshark", "-r", "FILE", *options, "-T", "fields"]
        tshark_fields += ["-e", "frame.number", "-e", "zbee.sec.counter", "-e", "zbee_zcl.cmd.tsn"]
        results: dict[str, dict[str, tuple[float, float, int]]] = {}
        for name, path in paths.items():
            repeat = args.repeat if name == "N" else 1  # the rates: best of; memory: both sizes
            results[name] = {
                "zse capture --json": run_measured([*zse, str(path)], repeat, env),
                "tshark -T json": run_measured(
                    [str(path) if part == "FILE" else part for part in tshark_json], repeat
                ),
                "tshark -T fields (3 fields)": run_measured(
                    [str(path) if part == "FILE" else part for part in tshark_fields], repeat
                ),
            }
        for tool in results["N"]:
            wall, cpu, _ = results["N"][tool]
            print(
                f"{tool}: {count / wall:,.0f} frames/s ({wall:.2f} s wall, start-up "
                f"included); {count / cpu:,.0f} frames per CPU second ({cpu:.2f} s)"
            )
        for tool in results["N"]:
            print(
                f"peak memory {tool}: N {results['N'][tool][2] / 1024:.1f} MB, "
                f"4N {results['4N'][tool][2] / 1024:.1f} MB"
            )
        theirs = tshark_decrypted(small, options)
        print(f"frames decrypted: zse {decrypted}, tshark {theirs}")
        zse_wall, zse_seconds, _ = results["N"]["zse capture --json"]
        tshark_wall, tshark_seconds, _ = results["N"]["tshark -T json"]
        print(
            f"speed zse capture --json / tshark -T json: {tshark_seconds / zse_seconds:.2f}x "
            f"by CPU time (the goal), {tshark_wall / zse_wall:.2f}x by wall time"
        )
        growth = results["4N"]["zse capture --json"][2] - results["N"]["zse capture --json"][2]
        print(f"zse peak memory growth from N to 4N: {growth / 1024:.1f} MB")
        if decrypted == 0 or theirs != decrypted:
            print("zse and tshark disagree on what they decrypted")
            return 1
        if not args.no_goal and (zse_seconds > tshark_seconds or growth > MEMORY_SLACK_KB):
            print("goal missed: faster than tshark -T json, memory flat in file size")
            return 1
    _ = resource  # the measuring child imports it; kept for the reader of this script
    return 0


if __name__ == "__main__":
    sys.exit(main())
