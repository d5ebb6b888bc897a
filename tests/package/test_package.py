"""The package's shape: public names, layer boundaries, typing marker, zigpy left untouched."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import zse
import zse.installcode
from zse import errors

ROOT = Path(zse.__file__).parent

# Which imports each layer may not make (ARCHITECTURE.md "Layers": a lower layer never imports a
# higher one; cores are sans-IO; radio libraries only behind their transports).
HIGHER_LAYERS = ("zse.clusters", "zse.interpan", "zse.sim", "zse.cli", "zse.services", "zse.roles")
RADIOS = ("bellows", "zigpy_znp")
INTERPAN_SHELLS = (
    "zse.clusters",
    "zse.interpan.service",
    "zse.interpan.se",
    "zse.interpan.transports",
)
RULES: dict[str, tuple[str, ...]] = {
    "zse.errors": ("zse.installcode", "zse.cbke", "zigpy", "asyncio", *HIGHER_LAYERS, *RADIOS),
    "zse.installcode": ("zse.cbke", "asyncio", "zigpy.application", *HIGHER_LAYERS, *RADIOS),
    "zse.cbke": ("asyncio", "zigpy.application", "zigpy.zcl", *HIGHER_LAYERS, *RADIOS),
    "zse.clusters": ("asyncio", "zse.cbke", *HIGHER_LAYERS[1:], *RADIOS),
    "zse.services": ("zse.sim", "zse.cli", "zse.roles", *RADIOS),
    "zse.price": ("asyncio", "zigpy", *HIGHER_LAYERS, *RADIOS),
    # inter-PAN's sans-IO cores: zigpy's wire types only (ARCHITECTURE.md, recipes and cores)
    **dict.fromkeys(
        ("zse.interpan._codec", "zse.interpan._zcl", "zse.interpan.window", "zse.interpan.hht"),
        (*INTERPAN_SHELLS, "asyncio", "zigpy.application", *HIGHER_LAYERS[2:], *RADIOS),
    ),
    "zse.drlc": ("asyncio", "zigpy", "aiosqlite", "zse.store", *HIGHER_LAYERS, *RADIOS),
    "zse.provisioning": ("asyncio", "zigpy", "zse.store", *HIGHER_LAYERS, *RADIOS),
    "zse.device_csv": ("asyncio", "zigpy", "zse.store", *HIGHER_LAYERS, *RADIOS),
    # the shapes every loader checks: a sans-IO helper of the cores (zse.errors only)
    "zse.records": (
        "asyncio",
        "zigpy",
        "aiosqlite",
        "zse.store",
        "zse.installcode",
        "zse.cbke",
        *HIGHER_LAYERS,
        *RADIOS,
    ),
    "zse.roles": ("zse.cli", *RADIOS),
    "zse.store": ("zigpy", "zse.cbke", "zse.messaging", "zse.drlc", *HIGHER_LAYERS, *RADIOS),
    "zse.messaging": ("asyncio", "aiosqlite", "zse.store", "zigpy", *HIGHER_LAYERS, *RADIOS),
    "zse.config": ("asyncio", "zigpy.application", "zse.store", *HIGHER_LAYERS, *RADIOS),
}


def modules() -> list[str]:
    names = ["zse"]
    for info in pkgutil.walk_packages([str(ROOT)], prefix="zse."):
        names.append(info.name)
    return names


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_public_names_are_pinned():
    assert zse.__all__ == ["__version__"]
    assert sorted(zse.installcode.__all__) == [
        "DATA_LENGTHS",
        "InstallCode",
        "InvalidEui64",
        "InvalidInstallCode",
        "MmoHash",
        "RandomBytes",
        "canonical_eui64",
        "crc16",
        "format_eui64",
        "hmac_mmo",
        "mmo_hash",
        "oui",
        "parse_eui64",
    ]
    for name in zse.installcode.__all__:
        assert getattr(zse.installcode, name) is not None


def test_error_family():
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.ZseError)
        if name not in ("ZseError", "StoreError"):  # StoreError: the state file, not input
            assert issubclass(cls, ValueError), name


def test_layer_boundaries():
    violations = []
    for path in ROOT.rglob("*.py"):
        module = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        for layer, forbidden in RULES.items():
            if module != layer and not module.startswith(layer + "."):
                continue
            for imported in imports_of(path):
                if any(imported == f or imported.startswith(f + ".") for f in forbidden):
                    violations.append(f"{module} imports {imported}")
    assert violations == []


def test_radio_libraries_only_behind_transports():
    for path in ROOT.rglob("*.py"):
        if "transports" in path.parts or path.parent == ROOT / "radios":
            continue  # the inter-PAN transports and zse/radios/ (link keys) are radio-specific
        for imported in imports_of(path):
            assert imported.split(".")[0] not in RADIOS, f"{path} imports {imported}"


def test_py_typed_marker_is_shipped():
    assert (ROOT / "py.typed").exists()


def test_importing_zse_leaves_zigpy_registry_alone():
    """Attach, don't register: importing every zse module changes no zigpy cluster class."""
    script = f"""
import importlib, sys
import zigpy.zcl, zigpy.zcl.clusters
before = dict(zigpy.zcl.Cluster._registry), dict(zigpy.zcl.Cluster._registry_range)
for name in {modules()!r}:
    if ".transports." in name:
        continue  # radio extras may be absent
    importlib.import_module(name)
after = dict(zigpy.zcl.Cluster._registry), dict(zigpy.zcl.Cluster._registry_range)
sys.exit(0 if before == after else 1)
"""
    assert subprocess.run([sys.executable, "-c", script], check=False).returncode == 0


@pytest.mark.parametrize("name", [m for m in modules() if ".transports." not in m])
def test_every_module_imports(name):
    importlib.import_module(name)
