"""``zse esi``'s shell with hostile labels, group names and numbers (a hostile review, 1 and 5).

- ``provision --label`` and ``groups`` took control characters into the registry, and the
  console printed labels raw (an escape sequence reached the operator's terminal). The registry
  refuses them now; a label an older registry holds is printed escaped.
- The shell's integers, PAN ids and offsets took other scripts' digits and ``_``.
"""

from __future__ import annotations

from dataclasses import replace

import click
import pytest

from tests.roles.han_builder import build, close
from zse.cli._types import FiniteFloat, PanIdType
from zse.cli.esi import INT, Session
from zse.config import EsiConfig

#: A device the simulated HAN has not registered (its devices are registered already, and a
#: label given to provision one of those is not taken).
EUI = "00:1b:c5:00:70:00:05:2b"
CODE = "83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5"


async def test_the_shell_refuses_a_hostile_label_and_prints_an_old_one_escaped(tmp_path) -> None:
    han = await build(tmp_path)
    out: list[str] = []
    session = Session(han.esi, EsiConfig(), out.append, han.clock)
    try:
        assert not await session.execute(f"provision {EUI} '{CODE}' --label '\x1b]0;x\x07'")
        assert out[-1] == (
            "error: label '\\x1b]0;x\\x07' has a control character U+001B at position 1"
        )
        assert "001BC5007000052B" not in {r.eui64 for r in han.registry.devices()}
        assert await session.execute(f"provision {EUI} '{CODE}' --label hall")
        assert not await session.execute(f"groups {EUI} 'street\x1b[31m'")
        assert "\x1b" not in out[-1]
        assert out[-1].startswith("error: InvalidGroups: group name 'street\\x1b[31m'")
        # a registry written before the rule: its label is printed escaped, never raw
        record = han.registry.get(EUI)
        old = replace(record, label="\x1b[2J", groups=frozenset({"g\x07"}))
        await han.registry._commit(old, "register", None, "")
        out.clear()
        assert await session.execute("devices")
        assert session.name(EUI).endswith("('\\x1b[2J')")
        assert out
        assert all(line.isprintable() for line in out)
        (line,) = [line for line in out if line.startswith(EUI)]
        assert line.split()[-3:] == ["groups", "'g\\x07'", "'\\x1b[2J'"]
    finally:
        await close(han)


@pytest.mark.parametrize("text", ["\uff11\uff12", "\u0663\u0664", "1_000", "0x_1A", "\u00b2"])
def test_shell_numbers_are_ascii_digits_without_underscores(text: str) -> None:
    for kind in (INT, PanIdType()):
        with pytest.raises(click.BadParameter):
            kind.convert(text, None, None)
    with pytest.raises(click.BadParameter, match="ASCII digits"):
        FiniteFloat().convert(text + ".5", None, None)


def test_shell_numbers_still_read_decimal_and_hex() -> None:
    assert INT.convert("0x0E01", None, None) == 0x0E01
    assert INT.convert("-7", None, None) == -7
    assert PanIdType().convert(" 0x1A2B ", None, None) == 0x1A2B
    assert FiniteFloat().convert("-1.5", None, None) == -1.5
