"""Review of the radio modules: every exception they define is zse's own (zse/errors.py:
":class:`ZseError`: base class of every exception zse defines"), so an application can tell
a radio's refusal told by zse from a radio library's own exception."""

from __future__ import annotations

import importlib
import inspect

import pytest

from zse.errors import ZseError

RADIO_MODULES = [
    "zse.radios",
    "zse.radios.ezsp",
    "zse.radios.znp",
    "zse.radios.han",
    "zse.interpan.transports",
    "zse.interpan.transports._base",
    "zse.interpan.transports.sim",
]


@pytest.mark.parametrize("name", RADIO_MODULES)
def test_every_exception_a_radio_module_defines_is_a_zse_error(name: str) -> None:
    module = importlib.import_module(name)
    defined = [
        cls
        for cls in vars(module).values()
        if inspect.isclass(cls)
        and issubclass(cls, BaseException)
        and cls.__module__ == module.__name__
    ]
    assert [cls.__qualname__ for cls in defined if not issubclass(cls, ZseError)] == []
