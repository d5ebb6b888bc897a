"""The package's shape: public names, layer boundaries, typing marker, zigpy left untouched."""

from __future__ import annotations

import importlib
import itertools
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

import zse
import zse.installcode
from tests.source_facts import facts
from zse import errors

#: Its outcome cannot depend on the Python version: the main interpreter only (ADR 0025).
pytestmark = pytest.mark.main_interpreter

ROOT = Path(zse.__file__).parent
ARCHITECTURE = ROOT.parent / "docs" / "architecture.md"
RADIOS = ("bellows", "zigpy_znp")
FEATURES = ("price", "drlc", "messaging", "calendar")
#: zse.cbke's sans-IO modules (zse.cbke.service is its asyncio shell)
CBKE_CORE = ("ca", "certificate", "credentials", "ecdsa", "hazmat", "keys", "machine", "messages")


# -- the layers (docs/architecture.md "Layers" is rendered from this table) ----------------------


@dataclass(frozen=True)
class Layer:
    """One layer: its modules and what it may import besides zse's lower layers.

    ``modules``: ``zse.x`` is that module only; ``zse.x.*`` is ``zse.x`` and every module under
    it (the most specific pattern wins). ``may_import``: what outside zse the layer may import
    (a name covers its submodules); the standard library is always allowed except ``asyncio``,
    which a sans-IO layer does not import.
    """

    name: str
    modules: tuple[str, ...]
    may_import: tuple[str, ...] = ()


# Lowest first: a module may import zse modules of its own layer or a lower one, never a higher
# one, and no import cycle at all (module-level, lazy, TYPE_CHECKING and importlib imports alike).
LAYERS: tuple[Layer, ...] = (
    Layer("errors", ("zse", "zse.errors", "zse.jsontext", "zse._files", "zse._words")),
    # the SE vocabulary floor (issue #13.1): ids, enums and sentinels, declared once
    Layer("SE vocabulary", ("zse.se.*",), ("zigpy.types",)),
    Layer(
        "hazmat crypto",
        ("zse.cbke.hazmat.*", "zse.installcode._mmo", "zse.security.ccm"),
        ("cryptography",),
    ),
    Layer(
        "recipes and sans-IO cores",
        (
            "zse.installcode.*",
            "zse.cbke.*",
            "zse.records",
            "zse.schedule",  # the utility's commands with a time (SE 1.2)
            "zse.device_csv",
            "zse.config",
            "zse.price",
            "zse.price.core",
            "zse.price.records",  # the Price server's store records
            "zse.messaging",
            "zse.messaging.core",
            "zse.drlc",
            "zse.drlc.core",
            "zse.time.core",
            "zse.metering",
            "zse.metering.formatting",
            "zse.metering.core",
            "zse.metering.history",  # SE 1.2 Historical Consumption set
            # the simulated household load (issue #14.2, m-load)
            "zse.metering.load",
            "zse.metering.display",  # #14.5 display cost
            "zse.metering.notification",  # SE 1.2 mirror notifications: settings, flags
            "zse.zcl.reporting",
            "zse.provisioning",
            "zse.provisioning.lifecycle",
            "zse.interpan",
            "zse.interpan._codec",
            "zse.interpan._zcl",
            "zse.interpan.window",
            "zse.interpan.hht",
            "zse.interpan.se_core",
            "zse.interpan.link",
            # secured and fragmented inter-PAN (#20.2)
            "zse.interpan.secure",
            "zse.interpan.fragment",
            "zse.interpan.acceptance",  # the hub's acceptance window (#20.4)
            # the installer terminal's signed commands and the hub's ledger (#20.3)
            "zse.installer",
            "zse.installer.core",
            # ZigBee NWK/APS frame security (#15.1); its AES-CCM* is zse.security.ccm
            "zse.security.*",
            # the MQTT bridge's topics, payloads and command schema (#17)
            "zse.mqtt",
            "zse.mqtt.core",
            # the retailer headend's validation, outcomes, retries and rate limits (#18)
            "zse.headend",
            "zse.headend.core",
            # Tunneling (#20.1): the package
            "zse.tunneling",
            # SE 1.2 Device Management and Events: state, rules, their value types
            "zse.devmgmt",
            "zse.devmgmt.core",
            "zse.events",
            "zse.events.core",
            # Calendar (SE 1.2 D.9): the package and its core
            "zse.calendar",
            "zse.calendar.core",
            # Prepayment (SE 1.2 D.7): the package and the prepay account
            "zse.prepayment",
            "zse.prepayment.core",
        ),
        ("zigpy.types", "zigpy.zcl.foundation", "ecdsa"),
    ),
    # the store and its two engines (#19): SQLite (aiosqlite), PostgreSQL (asyncpg)
    Layer(
        "persistence",
        ("zse.store", "zse.store_engine", "zse.store_sqlite", "zse.store_postgres"),
        ("asyncio", "aiosqlite", "asyncpg"),
    ),
    Layer(
        "ZCL binding (wire definitions, endpoint runtime)",
        (
            "zse.zcl.*",
            "zse.drlc.wire",
            "zse.messaging.wire",
            "zse.metering.wire",
            "zse.metering.snapshot_types",  # SE 1.2 snapshots, sampling
            "zse.price.wire",
            "zse.tunneling.wire",  # #20.1
            "zse.devmgmt.wire",
            "zse.events.wire",
            "zse.calendar.wire",
            "zse.prepayment.wire",
        ),
        ("asyncio", "zigpy"),
    ),
    # cores at the ZCL frame (issue #13.2): decoded frame + now in, frames to send out; no asyncio
    Layer(
        "ZCL protocol cores",
        (
            "zse.drlc.protocol",
            "zse.messaging.protocol",
            "zse.price.protocol",
            "zse.metering.protocol",  # #14.4 client
            "zse.metering.supply",  # SE 1.2 supply control: its core and frames
            # meter mirroring (#14.3)
            "zse.metering.mirror",
            "zse.metering.snapshots",  # SE 1.2 snapshots, sampling
            "zse.tunneling.protocol",  # #20.1
            "zse.devmgmt.protocol",
            "zse.events.protocol",
            "zse.calendar.protocol",
            "zse.prepayment.protocol",
        ),
        ("zigpy",),
    ),
    Layer(
        "feature services (asyncio shells)",
        (
            "zse.drlc.service",
            "zse.messaging.service",
            "zse.price.service",
            "zse.metering.service",  # #14.4 client
            # meter mirroring (#14.3)
            "zse.metering.mirroring",
            "zse.metering.snapshot_client",  # SE 1.2 snapshots, sampling
            "zse.time.*",
            "zse.cbke.service",
            "zse.tunneling.service",  # #20.1
            "zse.devmgmt.service",
            "zse.events.service",
            "zse.calendar.service",
            "zse.prepayment.service",
        ),
        ("asyncio", "zigpy"),
    ),
    Layer("provisioning", ("zse.provisioning.registry",), ("asyncio", "zigpy")),
    Layer(
        "inter-PAN shells and transports",
        (
            "zse.interpan.service",
            "zse.interpan.se",
            "zse.interpan.ke",  # key establishment over inter-PAN (#20.2)
            "zse.installer.service",  # the installer's bootstrap and service requests (#20.3)
            "zse.interpan.transports.*",
        ),
        ("asyncio", "zigpy.types", "zigpy.zcl"),
    ),
    Layer("radios (one module per radio)", ("zse.radios.*",), ("asyncio", "zigpy", *RADIOS)),
    Layer("roles", ("zse.roles.*",), ("asyncio", "zigpy")),
    Layer("simulator", ("zse.sim.*", "zse.pcap"), ("asyncio", "zigpy")),
    # sniffer captures read, decrypted and decoded (#15.3); writes pcaps with zse.pcap
    Layer("capture", ("zse.capture.*",), ("zigpy",)),
    # the MQTT bridge's asyncio shell on the optional aiomqtt (#17, docs/adr/0010)
    Layer(
        "MQTT bridge (asyncio shell)", ("zse.mqtt.bridge", "zse.mqtt.han"), ("asyncio", "aiomqtt")
    ),
    # the simulated utility (#19.3): meters on the simulator, each bridged to the broker
    Layer("simulated utility", ("zse.sim.utility",), ("asyncio", "aiomqtt")),
    # the retailer HAN service over the ESIs, its aiohttp shell with mutual TLS (#18, ADR 0013);
    # at utility scale (#19): meters as MQTT gateways (aiomqtt, ADR 0018) and the work queue in
    # the database (asyncpg / aiosqlite, ADR 0019)
    Layer(
        "retailer headend (aiohttp shell over the ESIs)",
        ("zse.headend.*",),
        (
            "asyncio",
            "zigpy",
            "aiohttp",
            "cryptography",
            "http_message_signatures",
            "aiomqtt",
            "asyncpg",
            "aiosqlite",
        ),
    ),
    Layer(
        "command line", ("zse.cli.*", "zse.__main__"), ("asyncio", "zigpy", "click", "voluptuous")
    ),
    # old paths kept for one release (#13): nothing in zse imports them
    Layer("deprecated shims", ("zse.services.*", "zse.clusters.*", "zse._moved"), ("zigpy",)),
)

# Tighter than their layer: zse or outside names these modules may not import although their
# layer may (keys are patterns as in Layer.modules: ``zse.x`` that module, ``zse.x.*`` and under).
STRICTER: dict[str, tuple[str, ...]] = {
    "zse.installcode.*": ("zse.cbke",),
    "zse.security.*": ("zigpy",),  # frame security (#15.1) stays free of zigpy
    # zse capture (#15.3) never uses the simulator; its reader and header decoders are sans-IO
    "zse.capture.*": ("zse.sim",),
    **dict.fromkeys(
        (
            "zse.capture.reader",
            "zse.capture.link",
            "zse.capture.zep",
            "zse.capture.frames",
            "zse.capture.keys",
        ),
        ("zigpy", "zse.sim"),
    ),
    **dict.fromkeys(
        ("zse.cbke", "zse.cbke.suites", *(f"zse.cbke.{name}.*" for name in CBKE_CORE)),
        ("zigpy.zcl",),
    ),
    "zse.records": ("zigpy", "zse.installcode", "zse.cbke"),
    **dict.fromkeys(
        (
            *(f"zse.{feature}{part}" for feature in FEATURES for part in ("", ".core")),
            "zse.provisioning",
            "zse.provisioning.lifecycle",
            "zse.device_csv",
        ),
        ("zigpy",),
    ),
    "zse.price.records": ("zigpy",),
    "zse.time.core": ("zigpy",),
    "zse.metering.core": ("zigpy",),
    "zse.metering.history": ("zigpy",),
    "zse.metering.load": ("zigpy",),
    "zse.metering.display": ("zigpy",),
    "zse.mqtt.core": ("zigpy", "aiomqtt"),
    "zse.headend.core": ("zigpy", "aiohttp"),
    # only the simulated meters use the simulator
    **dict.fromkeys(
        (
            "zse.headend.service",
            "zse.headend.store",
            "zse.headend.web",
            "zse.headend.portal",
            "zse.headend.pki",
            "zse.headend.signatures",
            "zse.headend.routing",
            "zse.headend.run",
            "zse.headend.link",
            "zse.headend.queue",
            "zse.headend.gateway",
            "zse.headend.worker",
            "zse.headend.control",
            "zse.headend.roster",
            "zse.headend.directory",
        ),
        ("zse.sim",),
    ),
    **dict.fromkeys(
        ("zse.store", "zse.store_engine", "zse.store_sqlite", "zse.store_postgres"),
        ("zigpy", "zse.cbke", "zse.messaging", "zse.drlc"),
    ),
    **dict.fromkeys(
        (
            "zse.zcl.codec",
            "zse.zcl._defs",
            "zse.tunneling.wire",
            *(f"zse.{feature}.wire" for feature in FEATURES),
        ),
        ("asyncio", "zse.cbke", "zse.zcl.endpoint", "zse.zcl.se_endpoint"),
    ),
}


def _matches(pattern: str, module: str) -> bool:
    """``module`` is ``pattern`` (``zse.x``) or is under it (``zse.x.*``)."""
    base = pattern.removesuffix(".*")
    return module == base or (pattern.endswith(".*") and module.startswith(base + "."))


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the package at ``root``, by dotted name, from the files (nothing is
    imported)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        name = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


MODULES = module_files()


def modules() -> list[str]:
    return sorted(MODULES)


def layer_of(module: str) -> int | None:
    """The index in LAYERS of the most specific pattern matching ``module``, or None."""
    best: tuple[int, int] | None = None  # (specificity, layer)
    for index, layer in enumerate(LAYERS):
        for pattern in layer.modules:
            base = pattern.removesuffix(".*")
            if module == base or (pattern.endswith(".*") and module.startswith(base + ".")):
                rank = len(base) * 2 + (0 if pattern.endswith(".*") else 1)
                if best is None or rank > best[0]:
                    best = (rank, index)
    return None if best is None else best[1]


def imports_of(path: Path, module: str | None = None) -> set[str]:
    """Every name ``path`` imports: ``import`` and ``from`` statements anywhere (module level,
    inside functions, under ``if TYPE_CHECKING:``), relative ones resolved, the names a ``from``
    imports (they may be modules), and strings passed to ``importlib.import_module`` or written
    as a whole zse module name (``"zse.x"`` or ``"zse.x:attr"``: a lazy import by name)."""
    read = facts(path)
    package = (module or "").split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set(read.imported)
    for statement in read.froms:
        base = statement.base
        if statement.level:
            parent = package[: len(package) - (statement.level - 1)]
            base = ".".join([*parent, base] if base else parent)
        found.add(base)
        found.update(f"{base}.{name}" for name in statement.names)
    for text in read.strings:
        name = text.partition(":")[0]
        if name.startswith("zse.") and name.replace(".", "").replace("_", "").isalnum():
            found.add(name)
    return found


def zse_edges(found: dict[str, Path] = MODULES) -> dict[str, set[str]]:
    """module -> the zse modules it imports; a name resolves to its longest existing module,
    and a module's own packages (always imported before it) are not counted."""
    edges: dict[str, set[str]] = {}
    for module, path in found.items():
        targets = set()
        for imported in imports_of(path, module):
            name = imported
            while name and name not in found:
                name = name.rpartition(".")[0]
            if name and name != module and not module.startswith(name + "."):
                targets.add(name)
        edges[module] = targets
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _covers(prefix: str, name: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def render_layer_table() -> list[str]:
    """The table docs/architecture.md shows, lowest layer first."""
    rows = [
        "| layer | modules | may import besides lower layers and the standard library |",
        "|---|---|---|",
    ]
    for layer in LAYERS:
        modules = ", ".join(f"`{pattern}`" for pattern in layer.modules)
        allowed = ", ".join(f"`{name}`" for name in layer.may_import) or "nothing"
        rows.append(f"| {layer.name} | {modules} | {allowed} |")
    return rows


def test_public_names_are_pinned():
    assert zse.__all__ == ["__version__"]
    assert sorted(zse.installcode.__all__) == [
        "DATA_LENGTHS",
        "DeviceLabel",
        "InstallCode",
        "InvalidEui64",
        "InvalidInstallCode",
        "InvalidLabel",
        "LabelForm",
        "MmoHash",
        "RandomBytes",
        "canonical_eui64",
        "crc16",
        "format_eui64",
        "hmac_mmo",
        "mmo_hash",
        "oui",
        "parse_eui64",
        "parse_label",
    ]
    for name in zse.installcode.__all__:
        assert getattr(zse.installcode, name) is not None


def test_error_family():
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.ZseError)
        if name not in ("ZseError", "StoreError"):  # StoreError: the state file, not input
            assert issubclass(cls, ValueError), name


def test_the_headend_and_installer_errors_are_in_the_family():
    """Caught as ZseError like the project's others (#19 leftovers)."""
    from zse.headend.link import MeterUnreachable  # noqa: PLC0415
    from zse.installer.service import HandoverBusy  # noqa: PLC0415

    assert issubclass(MeterUnreachable, errors.ZseError)
    assert issubclass(HandoverBusy, errors.ZseError)


def test_every_module_has_a_layer():
    """#13.4: the layer rules cover 100% of zse's modules; a new module without a rule fails."""
    unassigned = [module for module in MODULES if layer_of(module) is None]
    assert unassigned == []
    covered = sum(layer_of(module) is not None for module in MODULES)
    assert covered == len(MODULES) > 70  # the walk found the package
    patterns = {pattern for layer in LAYERS for pattern in layer.modules}
    stale = {
        pattern
        for pattern in patterns
        if not any(
            _covers(pattern.removesuffix(".*"), module)
            if pattern.endswith(".*")
            else module == pattern
            for module in MODULES
        )
    }
    assert stale == set(), f"layer patterns that match no module: {sorted(stale)}"


def layer_violations(found: dict[str, Path] = MODULES) -> list[str]:
    """Every import of a zse module of a higher layer, and every outside import the module's
    layer (or STRICTER) does not allow."""
    violations = []
    edges = zse_edges(found)
    for module, path in found.items():
        layer = layer_of(module)
        assert layer is not None, module
        for target in sorted(edges[module]):
            target_layer = layer_of(target)
            assert target_layer is not None, target
            if target_layer > layer:
                higher = LAYERS[target_layer].name
                violations.append(f"{module} ({LAYERS[layer].name}) imports {target} ({higher})")
        bans = [b for key, banned in STRICTER.items() if _matches(key, module) for b in banned]
        for name in sorted(imports_of(path, module)):
            top = name.partition(".")[0]
            if any(_covers(ban, name) for ban in bans):
                violations.append(f"{module} imports {name} (STRICTER)")
            elif top == "zse" or (top in sys.stdlib_module_names and top != "asyncio"):
                continue
            elif not any(_covers(allowed, name) for allowed in LAYERS[layer].may_import):
                violations.append(f"{module} ({LAYERS[layer].name}) imports {name}")
    return violations


def test_no_upward_import():
    """#13.4: no module imports a zse module of a higher layer, counting lazy, TYPE_CHECKING
    and importlib imports; outside zse only what its layer (and STRICTER) allows."""
    assert layer_violations() == []


def test_no_import_cycle():
    """#13.4: no two zse modules import each other, directly or around a circle."""
    assert cycles(zse_edges()) == []


def test_the_checker_counts_every_kind_of_import(tmp_path: Path):
    """The rules see lazy, TYPE_CHECKING, relative and by-name imports, and find a cycle."""
    source = tmp_path / "__init__.py"
    source.write_text(
        "from __future__ import annotations\n"
        "import importlib\n"
        "from typing import TYPE_CHECKING\n"
        "from . import sibling\n"
        "if TYPE_CHECKING:\n"
        "    from zse.roles.esi import Esi\n"
        "def later():\n"
        "    import zse.sim\n"
        "    return importlib.import_module('zse.cli.demo')\n"
        "RADIOS = {'ezsp': 'zse.radios.ezsp:EzspTransport'}\n"
        "DOC = 'see zse.radios for more'\n"
    )
    found = imports_of(source, "zse.interpan")
    assert {
        "zse.interpan.sibling",
        "zse.roles.esi",
        "zse.sim",
        "zse.cli.demo",
        "zse.radios.ezsp",
    } <= found
    assert "see zse.radios for more" not in found
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_checker_finds_the_shapes_issue_13_removed(tmp_path: Path):
    """#13.4 regression: the tree before the fix, in miniature, fails both rules: inter-PAN's
    transports re-exporting a radio transport (a TYPE_CHECKING import and a lazy by-name one),
    and the simulator's air, coordinator and node importing each other (lazily)."""
    files = {
        "zse/__init__.py": "",
        "zse/interpan/__init__.py": "",
        "zse/interpan/transports/__init__.py": (
            "from typing import TYPE_CHECKING\n"
            "import importlib\n"
            "if TYPE_CHECKING:\n"
            "    from zse.radios.ezsp import EzspTransport\n"
            "def __getattr__(name):\n"
            "    return importlib.import_module('zse.radios.znp')\n"
        ),
        "zse/interpan/transports/_base.py": "class ReceiveQueue: ...\n",
        "zse/radios/__init__.py": "",
        "zse/radios/ezsp.py": "from zse.interpan.transports._base import ReceiveQueue\n",
        "zse/radios/znp.py": "from zse.interpan.transports._base import ReceiveQueue\n",
        "zse/sim/__init__.py": "",
        "zse/sim/_air.py": "def coordinator():\n    from zse.sim._app import App\n",
        "zse/sim/_app.py": "from zse.sim._air import Air\nfrom zse.sim._node import Node\n",
        "zse/sim/_node.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from zse.sim._air import Air\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    found = module_files(tmp_path / "zse")
    assert [v.partition(" (")[0] for v in layer_violations(found)] == [
        "zse.interpan.transports",
        "zse.interpan.transports",
    ]
    assert {v.split(" imports ")[1].partition(" ")[0] for v in layer_violations(found)} == {
        "zse.radios.ezsp",
        "zse.radios.znp",
    }
    assert cycles(zse_edges(found)) == [["zse.sim._air", "zse.sim._app", "zse.sim._node"]]


def test_layer_table_in_architecture_page_is_the_rules():
    """#13.6: docs/architecture.md shows exactly LAYERS (the one layer table)."""
    text = ARCHITECTURE.read_text()
    lines = text.splitlines()
    header = render_layer_table()[0]
    assert lines.count(header) == 1, "one layer table in docs/architecture.md"
    start = lines.index(header)
    shown = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        shown.append(line)
    expected = "\n".join(render_layer_table())
    assert "\n".join(shown) == expected, f"paste this table into docs/architecture.md:\n{expected}"


def test_no_other_page_has_a_layer_table():
    """#13.6: the other pages link to the architecture page instead of a table of zse's layers
    of their own (a table headed "layer" whose rows name zse modules)."""
    pages = [*(ROOT.parent / "docs").rglob("*.md"), ROOT.parent / "README.md"]
    tables = []
    for page in pages:
        if page == ARCHITECTURE:
            continue
        lines = page.read_text().splitlines()
        for number, line in enumerate(lines):
            if line.replace(" ", "").lower().startswith("|layer|"):
                rows = itertools.takewhile(lambda row: row.startswith("|"), lines[number + 1 :])
                if any("`zse" in row for row in rows):
                    tables.append(f"{page.name}:{number + 1}")
    assert tables == []


def test_radio_libraries_only_in_the_radio_modules():
    for module, path in MODULES.items():
        if _covers("zse.radios", module):
            continue  # zse/radios/: one module per radio
        for imported in imports_of(path, module):
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
    importlib.import_module(name)
after = dict(zigpy.zcl.Cluster._registry), dict(zigpy.zcl.Cluster._registry_range)
sys.exit(0 if before == after else 1)
"""
    assert subprocess.run([sys.executable, "-c", script], check=False).returncode == 0


@pytest.mark.parametrize("name", modules())
def test_every_module_imports(name):
    importlib.import_module(name)


@pytest.mark.parametrize("name", [m for m in modules() if not m.startswith("zse.cli")])
def test_every_public_class_and_function_has_a_docstring(name):
    """The API reference is the docstrings (ADR 0002): a public name without one is a blank
    entry in it."""
    import inspect  # noqa: PLC0415

    def blank(obj: object) -> bool:
        doc = (obj.__doc__ or "").strip()  # its own: a class's is not inherited
        # a dataclass without one gets "Name(field: type, ...)" written for it
        return not doc or doc.startswith(f"{getattr(obj, '__name__', '')}(")

    module = importlib.import_module(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # names kept where they moved from
        found = [(public, getattr(module, public)) for public in getattr(module, "__all__", ())]
    assert [
        public
        for public, obj in found
        if (inspect.isclass(obj) or inspect.isfunction(obj))
        and getattr(obj, "__module__", "").startswith("zse")
        and blank(obj)
    ] == []


# --- #13.1: the SE vocabulary floor ------------------------------------------------------------

#: What zse.se may import: zigpy's wire types, zse.errors, itself and plain stdlib helpers.
SE_FLOOR_ALLOWED = ("zigpy.types", "zse.errors", "zse.se", "__future__", "enum", "typing")
#: The SE ids each written as a literal in exactly one module of zse (issue 13, "Proof").
SE_IDS = {
    "SE profile": 0x0109,
    "Price": 0x0700,
    "DRLC": 0x0701,
    "Messaging": 0x0703,
    "Key Establishment": 0x0800,
}


def test_se_vocabulary_imports_only_zigpy_types_and_errors():
    imported_by = {}
    for path in (ROOT / "se").rglob("*.py"):
        assert not any(statement.level for statement in facts(path).froms), path
        imported_by[path.name] = imports_of(path)
    assert {"ids.py", "types.py", "__init__.py"} <= set(imported_by)
    for name, imported in imported_by.items():
        for module in imported:
            assert any(module == a or module.startswith(a + ".") for a in SE_FLOOR_ALLOWED), (
                f"zse/se/{name} imports {module}"
            )


def modules_writing(value: int, root: Path = ROOT) -> set[str]:
    """The modules under ``root`` with ``value`` written as a hexadecimal integer literal."""
    return {
        path.relative_to(root.parent).as_posix()
        for path in root.rglob("*.py")
        if value in facts(path).hex_ints
    }


def test_modules_writing_finds_hex_literals_only(tmp_path):
    """The detector itself: a hex literal counts; decimal, strings and comments do not."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text("X = 0x0701\n")
    (package / "sub" / "b.py").write_text("Y = {0X701: 'DRLC'}\n")
    (package / "c.py").write_text('"""Cluster 0x0701."""\nZ = 1793  # 0x0701\nW = "0x0701"\n')
    assert modules_writing(0x0701, package) == {"pkg/a.py", "pkg/sub/b.py"}


def test_the_checkers_read_a_file_written_again(tmp_path):
    """Each file is parsed once per process (tests/source_facts.py), but read again once it
    changed: a checker never judges a file as it was."""
    package = tmp_path / "pkg"
    package.mkdir()
    module = package / "a.py"
    module.write_text("X = 0x0701\nimport json\n")
    assert modules_writing(0x0701, package) == {"pkg/a.py"}
    assert imports_of(module, "pkg.a") == {"json"}
    module.write_text("X = 0x0702\nimport csv\n")  # the same size
    assert modules_writing(0x0701, package) == set()
    assert imports_of(module, "pkg.a") == {"csv"}


@pytest.mark.parametrize("value", [pytest.param(v, id=k) for k, v in SE_IDS.items()])
def test_each_se_id_is_written_in_exactly_one_module(value):
    assert modules_writing(value) == {"zse/se/ids.py"}
