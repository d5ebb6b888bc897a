"""No key in what the command line prints at its most verbose (#12.23), third-party logs
included.

The loggers that print keys at DEBUG are held at INFO (tests/services/test_secret_logs.py),
which lets their warnings through: bellows warns with the whole ``zigpy.state.Key`` when the
stick refuses a link key while zigpy restores a network backup onto it ("Couldn't add
Key(key=5e:c1:...) key: ..."), at any log level, in ``zse esi``, ``zse han`` and ``zse
mqtt`` / ``zse headend --esi`` on an EZSP stick. The command line's handlers now hide keys
(``zse.cli._logging.KeyRedactor``). Each case first shows the leak with
``ZSE_LOG_SECRETS=1``, so that it cannot pass by printing nothing.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import zigpy.state
import zigpy.types as t

from tests.security.test_security_secrets import assert_hidden, leaks
from zse.cli._logging import HIDDEN, REVEAL_VARIABLE, KeyRedactor, redact_handlers

#: Real seconds a subprocess may take (a bound, not a pause).
TIMEOUT = 120
KEY = bytes.fromhex("5EC12E7000112233445566778899AABB")
OTHER = bytes.fromhex("0123456789ABCDEF0F1E2D3C4B5A6978")
EUI = "00:0d:6f:00:0a:00:00:01"

#: bellows' real ``write_link_keys`` (EZSP v8, the version the sticks tests' NCP speaks) with
#: the NCP answering TABLE_FULL, after the command line's logging set-up.
BELLOWS = textwrap.dedent(
    f"""
    import asyncio, sys
    import bellows.ezsp.v8 as v8, bellows.types as bt, zigpy.state, zigpy.types as t
    from zse.cli import main
    from zse.cli._options import configure_logging

    class Ncp(v8.EZSPv8):
        def __init__(self):  # only the answer below is asked for
            pass

        async def addOrUpdateKeyTableEntry(self, **fields):
            return [bt.EmberStatus.TABLE_FULL]

    how = sys.argv[1]
    if how == "last resort":  # a command that configures no logging: Python's own handler
        main(["installcode", "83FED3407A932B70"], standalone_mode=False)
    else:
        configure_logging({{"default": 0, "-vv": 2}}[how], None)
    key = zigpy.state.Key(key=t.KeyData(bytes.fromhex("{KEY.hex()}")),
                          partner_ieee=t.EUI64.convert("{EUI}"))
    asyncio.run(Ncp().write_link_keys([key]))
    """
)


def run(args: list[str], *, reveal: bool = False, cwd: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != REVEAL_VARIABLE}
    if reveal:
        env[REVEAL_VARIABLE] = "1"
    done = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
        cwd=cwd,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout + done.stderr


@pytest.mark.parametrize("how", ["default", "-vv", "last resort"])
def test_bellows_warning_about_a_refused_link_key_shows_no_key(how: str) -> None:
    shown = run(["-c", BELLOWS, how], reveal=True)
    assert "Couldn't add Key(key=5e:c1:2e:70" in shown  # the leak, when asked for
    printed = run(["-c", BELLOWS, how])
    assert f"Couldn't add Key(key={HIDDEN}, " in printed
    assert f"partner_ieee={EUI}) key: EmberStatus.TABLE_FULL" in printed
    assert_hidden(KEY, printed)


def test_the_demo_at_debug_shows_no_key(tmp_path: Path) -> None:
    """The whole story at -vv: zigpy's, the simulator's and zse's DEBUG lines. With the
    secrets revealed, zigpy prints the network key ("Restoring backup ...")."""
    args = ["-m", "zse", "demo", "-vv", "--seed", "3", "--keys", "keys.txt"]
    shown = run(args, reveal=True, cwd=tmp_path)
    keys = [
        bytes.fromhex(line.split('"')[1])
        for line in (tmp_path / "keys.txt").read_text().splitlines()
    ]
    assert len(keys) >= 9  # the network key, install-code keys, CBKE's link keys
    assert leaks(keys[0], shown)  # the network key, when asked for
    (tmp_path / "keys.txt").unlink()
    printed = run(args, cwd=tmp_path)
    assert " DEBUG zigpy." in printed
    for key in keys:
        assert_hidden(key, printed)


def network() -> zigpy.state.NetworkInfo:
    return zigpy.state.NetworkInfo(
        network_key=zigpy.state.Key(key=t.KeyData(KEY)),
        key_table=[zigpy.state.Key(key=t.KeyData(OTHER))],
        stack_specific={"ezsp": {"hashed_tclk": OTHER[::-1].hex()}},
    )


def printed(record: logging.LogRecord) -> str:
    return KeyRedactor("%(message)s").format(record)


def record(message: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("zigpy.x", logging.WARNING, __file__, 1, message, args, info)


@pytest.mark.parametrize(
    "spell",
    [
        lambda k: str(t.KeyData(k)),  # zigpy's: 5e:c1:...
        lambda k: k.hex().upper(),
        lambda k: k[::-1].hex(),  # least significant octet first
        lambda k: k.hex(" ", 2),
        repr,
        lambda k: repr(bytes(k[::-1])),
        lambda k: "b'" + "".join(f"\\x{b:02X}" for b in k) + "'",
        lambda k: __import__("base64").b64encode(k).decode(),
    ],
)
def test_every_spelling_of_a_key_in_the_arguments_is_hidden(spell) -> None:
    info = network()
    text = printed(record("restoring %s, then %s and %s", info, spell(KEY), spell(OTHER)))
    assert_hidden(KEY, text)
    assert_hidden(OTHER, text)
    assert text.startswith("restoring NetworkInfo(")


def test_keys_in_an_exception_and_its_traceback_are_hidden() -> None:
    """An exception carrying network state (zigpy's NetworkSettingsInconsistent carries two
    backups, and says them in its message)."""
    try:
        raise RuntimeError(f"settings differ: {network()!r}, raw {KEY.hex()}", network())
    except RuntimeError as exc:
        caught = exc
    text = printed(record("the command failed", exc=caught))
    assert "Traceback" in text
    assert "settings differ: NetworkInfo(" in text
    assert_hidden(KEY, text)
    assert_hidden(OTHER, text)


def test_other_hex_is_left_alone() -> None:
    """EUI-64s, a certificate's bytes, a key's 4-digit fingerprint, a zero key among the
    arguments (zigpy's unset key, which hides nothing)."""
    cert = bytes(range(48))
    message = f"device %s cert {cert.hex()} fingerprint {KEY.hex()[:4]} key %r"
    text = printed(record(message, t.EUI64.convert(EUI), bytes(16)))
    assert text == message % (EUI, bytes(16))


def test_a_record_the_level_drops_never_reaches_the_redactor(capsys) -> None:
    """Redaction is on the handler: a DEBUG record is not even made when the level is above."""
    seen: list[logging.LogRecord] = []

    class Counting(KeyRedactor):
        def format(self, record: logging.LogRecord) -> str:
            seen.append(record)
            return super().format(record)

    logger = logging.getLogger("tests.secrets_verbose")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(Counting())
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    try:
        logger.debug("network %s", network())
        logger.warning("network %s", network())
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    assert [r.levelno for r in seen] == [logging.WARNING]
    assert_hidden(KEY, capsys.readouterr().err)


def test_another_handler_gets_the_record_as_it_was() -> None:
    """The redaction is the zse handler's text, not a change to the record: an embedding
    program's own handler on the same logger (a file it keeps, pytest's capture) gets the
    record unchanged, as without zse (the filter this replaced rewrote the record in place)."""
    logger = logging.getLogger("tests.secrets_verbose.two")
    ours, theirs = io.StringIO(), io.StringIO()
    redacted, plain = logging.StreamHandler(ours), logging.StreamHandler(theirs)
    assert redact_handlers([redacted], reveal=False)
    for handler in (redacted, plain):  # ours first: it would change the record before theirs
        logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("restoring %s", network())
    finally:
        for handler in (redacted, plain):
            logger.removeHandler(handler)
        logger.propagate = True
    assert_hidden(KEY, ours.getvalue())
    assert str(t.KeyData(KEY)) in theirs.getvalue()
