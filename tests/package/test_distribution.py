"""The release as a user meets it: the distribution's name and version, every install line, a
test extra that runs the suite, the README as the package index shows it, the sdist's contents,
the example configuration, the API reference (issue #12, items 4, 8 and 14)."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import zse
from zse.cli.esi import load_credentials
from zse.config import load_config

#: Its outcome cannot depend on the Python version: the main interpreter only (ADR 0025).
pytestmark = pytest.mark.main_interpreter

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
REPOSITORY = "https://github.com/zse-project/zse/blob/main/"
# Files that are not source: what MANIFEST.in's global-exclude leaves out.
NOT_SOURCE = re.compile(r"(^|/)(__pycache__|\.hypothesis)(/|$)|\.(py[cod]|pcap|db|db-\w+)$")
#: captures other projects publish, kept as test data (tests/capture/published/README.md):
#: source, although other .pcap files (a demo's, a test's) are not
PUBLISHED = "tests/capture/published/"


def not_source(name: str) -> bool:
    return bool(NOT_SOURCE.search(name)) and not name.startswith(PUBLISHED)


def canonical(name: str) -> str:
    """A distribution name as the package index compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return canonical(match.group())


def test_the_distribution_is_zigpy_se_and_installs_package_and_command_zse():
    distribution = importlib.metadata.distribution("zigpy-se")
    assert distribution.metadata["Name"] == PROJECT["name"] == "zigpy-se"
    assert distribution.version == zse.__version__, "stale install: make .venv/.installed"
    scripts = {e.name: e.value for e in distribution.entry_points if e.group == "console_scripts"}
    assert scripts == {"zse": "zse.__main__:main"}


def user_facing_files() -> list[Path]:
    """What a user reads: README, changelog, the guide, docstrings and messages, examples.
    Left out: docs/adr/ (ADR 0001 quotes the old install line as its context) and the Makefile
    (it looks for an old install under that name, to remove it)."""
    files = [ROOT / "README.md", ROOT / "CHANGELOG.md"]
    files += [p for p in (ROOT / "docs").rglob("*.md") if "adr" not in p.parts]
    files += sorted((ROOT / "zse").rglob("*.py")) + sorted((ROOT / "examples").iterdir())
    return files


def test_no_page_or_message_installs_the_other_projects_zse():
    wrong = re.compile(r"pip3?\s+(?:install|show)\s+(?:-\S+\s+)*[\"']?zse(?![\w-])")
    found = [
        f"{path.relative_to(ROOT)}: {match.group()}"
        for path in user_facing_files()
        for match in wrong.finditer(path.read_text())
    ]
    assert found == []
    for path in ("README.md", "docs/sticks.md", "docs/quickstart.md"):
        assert 'pip install "zigpy-se[znp]"' in (ROOT / path).read_text(), path


def third_party_imports(folder: Path) -> set[str]:
    """Top-level modules imported anywhere under ``folder`` that are neither the standard
    library nor zse nor the test tree's own."""
    found: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"zse", "tests", "__future__"}


def test_the_test_extra_installs_everything_the_suite_imports():
    """`pip install -e '.[test]'` then `pytest` collects: each module the tests import comes
    from a distribution named in the dependencies or the test extra (bellows, zigpy-znp...)."""
    declared = {
        requirement_name(r)
        for r in PROJECT["dependencies"] + PROJECT["optional-dependencies"]["test"]
    }
    providers = importlib.metadata.packages_distributions()
    imported = third_party_imports(ROOT / "tests")
    assert {"bellows", "zigpy_znp", "pytest", "hypothesis", "scapy"} <= imported
    undeclared = {
        module: providers.get(module)
        for module in sorted(imported)
        if not {canonical(d) for d in providers.get(module, ())} & declared
    }
    assert undeclared == {}
    # the radio extras' requirements, the same in the test extra
    test_extra = set(PROJECT["optional-dependencies"]["test"])
    for extra in ("ezsp", "znp", "mqtt"):
        assert set(PROJECT["optional-dependencies"][extra]) <= test_extra, extra


def pinned_tools() -> dict[str, str]:
    """.ci/constraints.txt as {distribution: version}; every line a comment or name==version."""
    pins: dict[str, str] = {}
    for line in (ROOT / ".ci" / "constraints.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([0-9][0-9A-Za-z.]*)", line)
        assert match, f"not name==version: {line!r}"
        pins[canonical(match.group(1))] = match.group(2)
    return pins


def test_make_test_pins_the_tools_that_judge_and_none_of_the_libraries_zse_runs_on():
    """ADR 0028: ruff, mypy, pytest, hypothesis and the docs builder at the versions
    .ci/constraints.txt names, within pyproject's ranges and installed so in this venv (the one
    `make test` built); zse's own dependencies and radio libraries are never pinned there."""
    pins = pinned_tools()
    assert {"ruff", "mypy", "pytest", "hypothesis", "mkdocs"} <= set(pins)
    extras = PROJECT["optional-dependencies"]
    runtime = PROJECT["dependencies"] + extras["ezsp"] + extras["znp"] + extras["mqtt"]
    runtime += extras["headend"] + extras["postgres"]
    assert not {requirement_name(r) for r in runtime} & set(pins)
    for requirement in map(Requirement, extras["test"] + extras["docs"]):
        version = pins.get(canonical(requirement.name))
        if version is not None:
            assert requirement.specifier.contains(version), (requirement, version)
    installed = {name: importlib.metadata.version(name) for name in pins}
    assert installed == pins


def test_the_readme_links_work_on_the_package_index_page():
    """The index renders README.md away from the repository: every link is absolute, and
    those into this repository name a file that exists."""
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)\s]+)\)", readme) + re.findall(r"\bsrc=\"([^\"]+)\"", readme)
    assert len(links) > 10
    relative = [link for link in links if not link.startswith(("https://", "http://", "#"))]
    assert relative == []
    missing = [
        link
        for link in links
        if link.startswith(REPOSITORY)
        and not (ROOT / link.removeprefix(REPOSITORY).partition("#")[0]).exists()
    ]
    assert missing == []
    assert PROJECT["urls"]["Documentation"].startswith("https://github.com/zse-project/zse/")


def test_the_changelog_has_an_unreleased_section_and_one_for_this_version():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## \[([^]]+)\]", changelog, re.MULTILINE)
    assert headings[:2] == ["Unreleased", zse.__version__]
    assert re.search(rf"^## \[{re.escape(zse.__version__)}\] - \d{{4}}-\d\d-\d\d$", changelog, re.M)
    for name in headings:
        assert re.search(rf"^\[{re.escape(name)}\]: https://", changelog, re.MULTILINE), name


def source_files(root: Path, folders: tuple[str, ...]) -> set[str]:
    return {
        path.relative_to(root).as_posix()
        for folder in folders
        for path in (root / folder).rglob("*")
        if path.is_file() and not not_source(path.relative_to(root).as_posix())
    }


def test_the_sdist_carries_tests_docs_examples_and_benchmarks(tmp_path):
    """A source release that can be tested and read: build the sdist from a copy of the tree
    (so the checkout is not written to) and compare its files with the tree's."""
    source = tmp_path / "src"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv*", "build", "dist", "site", "*.egg-info", "*_cache", ".hypothesis"
        ),
    )
    out = tmp_path / "dist"
    build = [sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(out)]
    result = subprocess.run(
        [*build, str(source)], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (sdist,) = out.glob("*.tar.gz")
    top = f"zigpy_se-{zse.__version__}"
    assert sdist.name == f"{top}.tar.gz"
    with tarfile.open(sdist) as archive:
        members = {m.name.removeprefix(f"{top}/") for m in archive.getmembers() if m.isfile()}
        pkg_info = archive.extractfile(f"{top}/PKG-INFO")
        assert pkg_info is not None
        metadata = pkg_info.read().decode()
    assert f"\nName: zigpy-se\nVersion: {zse.__version__}\n" in metadata
    folders = ("zse", "tests", "docs", "examples", "benchmarks", ".ci")
    assert source_files(source, folders) <= members
    assert {"README.md", "CHANGELOG.md", "LICENSE", "Makefile", "mkdocs.yml"} <= members
    assert {"tests/conftest.py", "docs/api/index.md", "examples/esi.toml"} <= members
    assert [m for m in members if not_source(m)] == []
    assert f"{PUBLISHED}zbtk-trace.pcap" in members


def test_the_example_configuration_names_only_files_it_ships_or_explains(tmp_path):
    """examples/esi.toml: the device CSV is shipped; the credentials file is not (it is for the
    user's stick) and the commands in its comments create it, after which it loads."""
    examples = tmp_path / "examples"
    shutil.copytree(ROOT / "examples", examples)
    toml = examples / "esi.toml"
    config = load_config(toml)
    assert all(path.is_file() for path in config.devices_csv)
    (credentials,) = config.credentials
    assert not credentials.exists()
    commands = re.findall(r"^#\s+(python -m zse cert .*)$", toml.read_text(), re.MULTILINE)
    assert len(commands) == 2
    for command in commands:
        argv = shlex.split(command.replace("STICK_EUI64", "00:0d:6f:00:0a:00:00:99"))
        subprocess.run(
            [sys.executable, *argv[1:]], cwd=tmp_path, check=True, timeout=120, capture_output=True
        )
    (esi,) = load_credentials(config.credentials)
    assert esi.eui64 == bytes.fromhex("000d6f000a000099")


def test_every_public_module_is_on_an_api_reference_page():
    """docs/api/: one `::: module` line per public module, each of which exists; every
    top-level module of zse but the command line is there."""
    documented = set()
    for page in (ROOT / "docs" / "api").glob("*.md"):
        documented |= set(re.findall(r"^::: ([\w.]+)$", page.read_text(), re.MULTILINE))
    assert [m for m in sorted(documented) if importlib.util.find_spec(m) is None] == []
    top_level = {
        f"zse.{path.stem if path.suffix else path.name}"
        for path in (ROOT / "zse").iterdir()
        if not path.name.startswith("_")
        and (path.suffix == ".py" or (path / "__init__.py").exists())
    }
    deprecated = {"zse.services", "zse.clusters"}  # shims of the old paths (#13), not documented
    assert top_level - {"zse.cli"} - deprecated <= documented
    assert not deprecated & {".".join(m.split(".")[:2]) for m in documented}
