"""The Makefile's venvs, run for real in a copy of the project: a venv made by another
interpreter is rebuilt, an interpreter older than requires-python is refused in one line
(issue #12, item 10); the extra interpreters of `make test` are found or named (item 7)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import interpreter_share

#: Its outcome cannot depend on the Python version: the main interpreter only (ADR 0025).
pytestmark = pytest.mark.main_interpreter

ROOT = Path(__file__).resolve().parents[2]
MAKE = shutil.which("make")
# The interpreter behind this test's venv: what a user would give as PYTHON.
BASE_PYTHON = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
VERSION = "{}.{}".format(*sys.version_info[:2])
STALE = "3.10.13 /opt/python3.10/bin/python3.10"


def project_copy(tmp_path: Path, requires_python: str | None = None) -> Path:
    """What the venv targets read: the Makefile, .ci/, pyproject.toml, zse/__init__.py."""
    copy = tmp_path / "project"
    (copy / "zse").mkdir(parents=True)
    shutil.copytree(ROOT / ".ci", copy / ".ci")
    for name in ("Makefile", "pyproject.toml", "zse/__init__.py"):
        shutil.copy(ROOT / name, copy / name)
    if requires_python is not None:
        pyproject = copy / "pyproject.toml"
        text = pyproject.read_text().replace('requires-python = ">=3.11"', requires_python)
        assert requires_python in text
        pyproject.write_text(text)
    return copy


# A make run of its own, not a sub-make of `make test` (whose flags and variables, e.g. VENV,
# would otherwise reach it through the environment).
MAKE_ENV = {
    k: v
    for k, v in os.environ.items()
    if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "PYTHON", "VENV", "EXTRAS"}
}


def make(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert MAKE is not None, "GNU make is not installed (the README's make demo / make test)"
    return subprocess.run(
        [MAKE, "--no-print-directory", *args],
        cwd=project,
        env=MAKE_ENV,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def stale_venv(project: Path) -> Path:
    """A .venv as a `make demo` with Python 3.10 left it, installed stamp and all."""
    venv = project / ".venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(f"#!/bin/sh\necho '{STALE}'\n")
    python.chmod(0o755)
    (venv / ".python").write_text(STALE + "\n")
    (venv / ".installed").touch()
    return venv


def test_a_venv_made_by_another_python_is_rebuilt(tmp_path):
    project = project_copy(tmp_path)
    venv = stale_venv(project)
    result = make(project, ".venv/.python", f"PYTHON={BASE_PYTHON}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[0] == (
        f"rebuilding .venv: it was made by Python 3.10.13 at /opt/python3.10/bin/python3.10, "
        f"PYTHON={BASE_PYTHON} is Python {sys.version.split()[0]} at {BASE_PYTHON}"
    )
    identity = subprocess.run(
        [venv / "bin" / "python", "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert identity.strip() == str(sys.version_info[:2])
    assert (venv / ".python").read_text() == f"{sys.version.split()[0]} {BASE_PYTHON}\n"
    assert not (venv / ".installed").exists()  # so `make demo` installs again
    assert "-m pip install --quiet -e ." in make(project, "-n", "demo").stdout

    # the same interpreter again: nothing rebuilt, the stamp untouched, nothing reinstalled
    (venv / ".installed").touch()
    before = (venv / ".python").stat().st_mtime_ns
    again = make(project, ".venv/.installed", f"PYTHON={BASE_PYTHON}")
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout == ""  # no "rebuilding", no pip install echoed
    assert (venv / ".python").stat().st_mtime_ns == before


def test_a_python_older_than_requires_python_is_refused_in_one_line(tmp_path):
    project = project_copy(tmp_path, requires_python='requires-python = ">=3.99"')
    result = make(project, "demo", f"PYTHON={BASE_PYTHON}")
    assert result.returncode == 2
    ours = [line for line in result.stderr.splitlines() if not line.startswith("make")]
    assert ours == [
        f"error: zse needs Python 3.99 or newer, and PYTHON={BASE_PYTHON} is Python "
        f"{sys.version.split()[0]}: choose another, e.g. make demo PYTHON=python3.99"
    ]
    assert not (project / ".venv").exists()


def test_a_python_that_does_not_run_is_named(tmp_path):
    project = project_copy(tmp_path)
    result = make(project, "demo", "PYTHON=/nonexistent/python3.11")
    assert result.returncode == 2
    ours = [line for line in result.stderr.splitlines() if not line.startswith("make")]
    assert ours == [
        "error: PYTHON=/nonexistent/python3.11 does not run (not installed?): choose another"
    ]


# Debian's and Ubuntu's Python without python3-venv: `-m venv` fails for want of ensurepip
# unless asked for a venv without pip. A `venv` package first on PYTHONPATH plays that part and
# hands `--without-pip` to the real one.
NO_ENSUREPIP = """\
import os, runpy, sys
if "--without-pip" not in sys.argv:
    print("The virtual environment was not successfully created because ensurepip is not")
    print("available.  On Debian/Ubuntu systems, you need to install the python3-venv")
    print("package using the following command.")
    print("")
    print("    apt install python3.11-venv")
    print("")
    print("Failing command: " + os.path.abspath(sys.argv[-1]) + "/bin/python3")
    sys.exit(1)
shadow = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != shadow]
for module in [m for m in sys.modules if m == "venv" or m.startswith("venv.")]:
    del sys.modules[module]
runpy.run_module("venv", run_name="__main__", alter_sys=True)
"""


def without_ensurepip(tmp_path: Path, wheels: Path) -> dict[str, str]:
    """make's environment for a PYTHON without ensurepip, pip's index replaced by ``wheels``."""
    shadow = tmp_path / "shadow" / "venv"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("")
    (shadow / "__main__.py").write_text(NO_ENSUREPIP)
    return {
        **MAKE_ENV,
        "PYTHONPATH": str(shadow.parent),
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheels),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }


def test_a_python_without_ensurepip_gets_a_venv_with_pip(tmp_path):
    """A fresh Debian or Ubuntu with python3 and python3-pip but not python3-venv: the venv is
    made without pip and the interpreter's own pip puts pip in (offline here: the wheel that
    the test's interpreter bundles for ensurepip)."""
    project = project_copy(tmp_path)
    wheels = Path(importlib.util.find_spec("ensurepip").origin).parent / "_bundled"
    result = subprocess.run(
        [MAKE, "--no-print-directory", ".venv/.python", f"PYTHON={BASE_PYTHON}"],
        cwd=project, env=without_ensurepip(tmp_path, wheels), capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        f"made .venv without ensurepip, which PYTHON={BASE_PYTHON} lacks (Debian and Ubuntu: "
        "python3-venv); pip installed into it by PYTHON's own pip"
    ]
    pip = subprocess.run(
        [project / ".venv" / "bin" / "python", "-m", "pip", "--version"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stderr
    assert f"{project / '.venv'}" in pip.stdout  # the venv's own pip, not the interpreter's
    venv_python = (project / ".venv" / ".python").read_text()
    assert venv_python == f"{sys.version.split()[0]} {BASE_PYTHON}\n"


def test_a_python_without_ensurepip_or_a_pip_to_lend_is_one_line_and_leaves_no_venv(tmp_path):
    project = project_copy(tmp_path)
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    result = subprocess.run(
        [MAKE, "--no-print-directory", "demo", f"PYTHON={BASE_PYTHON}"],
        cwd=project, env=without_ensurepip(tmp_path, empty), capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    ours = [line for line in result.stderr.splitlines() if not line.startswith("make")]
    assert ours == [
        f"error: PYTHON={BASE_PYTHON} has no ensurepip and its own pip could not put pip into "
        ".venv: install python3-venv (Debian, Ubuntu) or choose another PYTHON"
    ]
    assert not (project / ".venv").exists()


def fake_python(path: Path, version: str) -> Path:
    """An interpreter that answers .ci/extra-pythons' two questions as Python ``version``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "#!/bin/sh\n"
        'case "$2" in\n'
        f"  *version_info*) echo {version} ;;\n"
        '  *executable*) echo "$0" ;;\n'
        "esac\n"
    )
    path.chmod(0o755)
    return path


def test_extra_pythons_are_found_on_path_or_in_pyenv_and_the_others_named(tmp_path):
    bin_dir = tmp_path / "bin"
    on_path = fake_python(bin_dir / "python3.97", "3.97")
    in_pyenv = fake_python(tmp_path / "pyenv/versions/3.96.1/bin/python3.96", "3.96")
    (bin_dir / f"python{VERSION}").symlink_to(sys.executable)
    pyenv = bin_dir / "pyenv"
    pyenv.write_text(f"#!/bin/sh\necho {tmp_path / 'pyenv'}\n")
    pyenv.chmod(0o755)
    names = ["python3.97", "python3.96", "python3.98", f"python{VERSION}"]
    result = subprocess.run(
        ["/bin/sh", ROOT / ".ci" / "extra-pythons", sys.executable, *names],
        env={**MAKE_ENV, "PATH": f"{bin_dir}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.splitlines() == [f"3.97 {on_path}", f"3.96 {in_pyenv}"]
    assert result.stderr.splitlines() == [
        "skipped: python3.98 is not installed, the suite did not run on it",
        f"skipped: python{VERSION} is the main venv's Python {VERSION}",
    ]


def test_the_other_interpreters_leave_out_only_what_cannot_depend_on_them():
    """`.ci/pytest-extra` hands the other interpreters' runs a marker expression (ADR 0025):
    it must name registered markers, and leave out of tests/docs exactly the files marked
    main_interpreter (the snippets, which run code, stay)."""
    script = (ROOT / ".ci" / "pytest-extra").read_text()
    (expression,) = re.findall(r"PYTEST_ARGS=\"-m '([^']+)'", script)
    assert expression == "not oracle and not main_interpreter"
    collect = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    result = subprocess.run(
        [*collect, "--strict-markers", "-m", expression, "tests/docs"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    files = {line.split("::")[0] for line in result.stdout.splitlines() if "::" in line}
    assert files == {"tests/docs/test_docs_snippets.py"}


#: The selection the share tests collect: any will do, and this one's collection takes 1 s of
#: CPU (tests/time's took 4, imports and strategies, in each of the four collections).
SELECTION = "tests/se"


def _collected(*args: str) -> list[str]:
    collect = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    result = subprocess.run(
        [*collect, *args, SELECTION], cwd=ROOT, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return [line for line in result.stdout.splitlines() if "::" in line]


def test_the_other_interpreters_shares_split_the_suite_between_them():
    """`--interpreter-share K/N` (ADR 0026): the N shares are disjoint, together the whole
    selection, and each takes every N-th test (so a file's tests are dealt alternately)."""
    everything = _collected()
    first = _collected("--interpreter-share", "1/2")
    second = _collected("--interpreter-share", "2/2")
    assert first == everything[0::2]
    assert second == everything[1::2]
    assert first
    assert second


@pytest.mark.parametrize("share", ["0/2", "3/2", "1", "a/b", "1/0", "-1/2", "\u00b2/2", "1/2 "])
def test_a_wrong_share_is_refused_naming_it(share):
    with pytest.raises(pytest.UsageError) as caught:
        interpreter_share(share)
    assert str(caught.value) == f"--interpreter-share {share!r}: expected K/N with 1 <= K <= N"


def test_shares_are_read_as_numbers():
    assert interpreter_share("1/1") == (1, 1)
    assert interpreter_share("2/12") == (2, 12)


def test_a_wrong_share_ends_the_run_in_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "--interpreter-share=3/2", SELECTION],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 4, result.stdout + result.stderr
    assert "--interpreter-share '3/2': expected K/N with 1 <= K <= N" in result.stderr


def _shares(
    *args: str, round_: str | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "ZSE_EXTRA_ROUND"}
    if round_ is not None:
        env["ZSE_EXTRA_ROUND"] = round_
    return subprocess.run(
        ["/bin/sh", ROOT / ".ci" / "extra-shares", *args], cwd=cwd, env=env,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_the_other_interpreters_take_one_round_of_shares_a_run(tmp_path):
    """`.ci/extra-shares` (ADR 0036): with 2 interpreters and 3 rounds the suite is cut in 6
    shares, a run takes the two of its round; the commit picks the round (the same for the
    same commit), ZSE_EXTRA_ROUND overrides it; 1 round is ADR 0026's split."""
    rounds = [_shares("2", "3", round_=str(r)) for r in range(3)]
    assert [r.stdout.split() for r in rounds] == [["1/6", "2/6"], ["3/6", "4/6"], ["5/6", "6/6"]]
    assert rounds[2].stderr == "round 3 of 3 (ZSE_EXTRA_ROUND)\n"
    assert _shares("2", "1").stdout.split() == ["1/2", "2/2"]
    commit = subprocess.run(
        ["git", "rev-parse", "--short=7", "HEAD"], cwd=ROOT, capture_output=True, text=True,
        timeout=60, check=True,
    ).stdout.strip()  # fmt: skip
    by_commit = _shares("2", "3")
    r = int(commit, 16) % 3
    assert by_commit.stdout.split() == [f"{2 * r + 1}/6", f"{2 * r + 2}/6"]
    assert by_commit.stderr == f"round {r + 1} of 3 (commit {commit})\n"
    elsewhere = _shares("2", "3", cwd=tmp_path)  # not a checkout: round 1
    assert (elsewhere.stdout.split(), elsewhere.stderr) == (
        ["1/6", "2/6"],
        "round 1 of 3 (no commit)\n",
    )


@pytest.mark.parametrize(
    ("args", "round_", "said"),
    [
        (("2", "3"), "3", "error: ZSE_EXTRA_ROUND=3: expected 0 to 2\n"),
        (("2", "3"), "-1", "error: ZSE_EXTRA_ROUND=-1: expected 0 to 2\n"),
        (("2", "0"), None, "error: COUNT and ROUNDS are at least 1\n"),
        (("2", "x"), None, "error: COUNT and ROUNDS are whole numbers\n"),
    ],
)
def test_a_wrong_round_is_one_line_and_status_2(args, round_, said):
    done = _shares(*args, round_=round_)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", said)
