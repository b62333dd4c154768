"""Compiles sipha's hot path with mypyc; everything else is in pyproject.toml.

The SIP core (``src/sipha/sip``, mypy strict) is compiled into C extensions that sit next to
their ``.py`` sources. ``SIPHA_PURE=1`` at build time builds without them (a pure wheel, for a
machine without a C compiler); at run time it imports the sources instead (``sipha/_pure.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

from setuptools import setup


def _compiled_modules() -> list[str]:
    # Every module of the core but the package __init__ files: they stay Python so that
    # ``sipha.sip`` imports the same way in both builds.
    root = Path("src/sipha/sip")
    paths = sorted(str(p) for p in root.rglob("*.py") if p.name != "__init__.py")
    only = os.environ.get("SIPHA_MYPYC_ONLY", "")  # comma-separated file stems, for bisecting
    if only:
        stems = set(only.split(","))
        paths = [p for p in paths if Path(p).stem in stems]
    return paths


def _ext_modules() -> list[object]:
    if os.environ.get("SIPHA_PURE", "") not in ("", "0"):
        return []
    from mypyc.build import mypycify

    return list(mypycify(_compiled_modules(), opt_level="3", target_dir="build/mypyc"))


setup(ext_modules=_ext_modules())
