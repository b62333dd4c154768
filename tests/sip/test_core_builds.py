"""The SIP core's two builds: compiled by mypyc, and pure Python (``SIPHA_PURE=1``).

This run uses one of them (the compiled one after ``make setup``); the second test runs the
whole of ``tests/sip`` again in a child process on the other build and checks, from the modules
the child loaded, that the other build is what really ran (aiohttp tests its C and Python HTTP
parsers the same way, both on every run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

import sipha.sip
import sipha.sip.message
import sipha.sip.parser
import sipha.sip.transaction.table
from sipha._pure import pure_requested
from tests.sip.conftest import loaded_core_modules

CORE = Path(sipha.sip.__file__).parent
THIS_TEST = "tests/sip/test_core_builds.py::test_core_suite_passes_on_the_other_build"


def _compiled_sibling(py_file: str) -> bool:
    stem = Path(py_file).with_suffix("")
    return any(Path(f"{stem}{suffix}").exists() for suffix in EXTENSION_SUFFIXES)


def _is_compiled(file: str) -> bool:
    return not file.endswith((".py", ".pyc"))


def test_each_module_comes_from_the_build_the_environment_asks_for() -> None:
    modules = loaded_core_modules()
    assert "sipha.sip.parser" in modules
    for name, file in modules.items():
        if name.endswith("__init__") or file.endswith("__init__.py"):
            assert not _is_compiled(file)  # package __init__ files stay Python in both builds
            continue
        source = str(CORE / Path(*name.split(".")[2:])) + ".py"
        expected = not pure_requested() and _compiled_sibling(source)
        assert _is_compiled(file) == expected, (name, file)
        if expected:  # a compiled module older than its source would test yesterday's code
            assert Path(file).stat().st_mtime >= Path(source).stat().st_mtime, (
                f"{file} is older than {source}: `make setup` recompiles it"
            )


@pytest.mark.timeout(300)
def test_core_suite_passes_on_the_other_build(tmp_path: Path) -> None:
    compiled_here = _is_compiled(str(sipha.sip.parser.__file__))
    if not compiled_here:
        # The other build is the compiled one: it must exist (make setup builds it).
        assert _compiled_sibling(str(CORE / "parser.py")), (
            "no compiled SIP core in this tree: `make setup` (or `pip install -e .` with a C "
            "compiler) builds it; SIPHA_PURE=1 at build time leaves it out"
        )
    report = tmp_path / "build.json"
    env = {
        **os.environ,
        "SIPHA_PURE": "1" if compiled_here else "0",
        "SIPHA_BUILD_REPORT": str(report),
    }
    root = Path(__file__).resolve().parents[2]
    child = subprocess.run(
        [sys.executable, "-bb", "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/sip", "--deselect", THIS_TEST],
        cwd=root, env=env, capture_output=True, text=True, timeout=280, check=False,
    )
    assert child.returncode == 0, child.stdout[-4000:] + child.stderr[-2000:]
    got = json.loads(report.read_text(encoding="utf-8"))
    assert got["exitstatus"] == 0
    leaves = {n: f for n, f in got["modules"].items() if not f.endswith("__init__.py")}
    assert {"sipha.sip.parser", "sipha.sip.message", "sipha.sip.transaction.table"} <= set(leaves)
    # The child ran the other build, every module of it.
    assert all(_is_compiled(f) != compiled_here for f in leaves.values()), leaves
