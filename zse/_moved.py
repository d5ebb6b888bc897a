"""Old module paths kept for one release (#13).

A package whose modules moved (``zse.services``, ``zse.clusters``) calls :func:`install` from
its ``__init__``: each old module name becomes a small module object, registered in
``sys.modules`` under that package only, that resolves every name of the module's new home
with a :class:`DeprecationWarning`. There is no file at the old path, so git follows each
moved file to its new home.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import warnings
from types import ModuleType
from typing import Any

__all__ = ["install"]


def install(package: str, homes: dict[str, str]) -> None:
    """Register ``package.<old>`` for each ``old: new`` of ``homes`` (the new module is
    imported only when a name is first looked up through the old path)."""
    parent = sys.modules[package]
    for old, new in homes.items():
        name = f"{package}.{old}"
        module = sys.modules.get(name) or _shim(name, new)
        sys.modules[name] = module
        setattr(parent, old, module)


def _shim(name: str, new: str) -> ModuleType:
    module = ModuleType(name, f"Deprecated: moved to {new} (#13); warns for one release.")
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)

    def __getattr__(attribute: str) -> Any:  # noqa: N807 (a module's __getattr__, PEP 562)
        target = importlib.import_module(new)
        if attribute == "__all__":
            return list(getattr(target, "__all__", ()))
        if attribute.startswith("__") or not hasattr(target, attribute):
            raise AttributeError(f"module {name!r} has no attribute {attribute!r}")
        warnings.warn(
            f"{name} is deprecated: import {attribute} from {new}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(target, attribute)

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    return module
