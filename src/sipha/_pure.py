"""``SIPHA_PURE=1``: import sipha from its ``.py`` sources even where compiled modules exist.

The SIP core is compiled by mypyc (see ``setup.py``); the compiled extension sits next to each
``.py`` file under the same module name, and Python's import system prefers an extension over a
source. With ``SIPHA_PURE`` set to anything but ``""`` or ``"0"``, a finder placed first on
``sys.meta_path`` answers for every ``sipha.*`` module with the source (or bytecode) loader only,
so the pure-Python build runs from the same tree, as aiohttp's ``AIOHTTP_NO_EXTENSIONS`` does
for its parsers. The core's tests run on both builds (``tests/sip/test_core_builds.py``).
"""

from __future__ import annotations

import importlib.abc
import os
import sys
from collections.abc import Sequence
from importlib.machinery import (
    BYTECODE_SUFFIXES,
    SOURCE_SUFFIXES,
    FileFinder,
    ModuleSpec,
    SourceFileLoader,
    SourcelessFileLoader,
)
from types import ModuleType

__all__ = ["compiled_modules", "install_if_requested", "pure_requested"]


def pure_requested(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """True when ``SIPHA_PURE`` asks for the pure-Python build."""
    return environ.get("SIPHA_PURE", "") not in ("", "0")


class _SourceOnlyFinder(importlib.abc.MetaPathFinder):
    """Finds ``sipha.*`` modules among ``.py`` and ``.pyc`` files only (never an extension)."""

    def __init__(self) -> None:
        self._finders: dict[str, FileFinder] = {}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if path is None or not fullname.startswith("sipha."):
            return None
        for entry in path:
            finder = self._finders.get(entry)
            if finder is None:
                finder = FileFinder(
                    entry,
                    (SourceFileLoader, SOURCE_SUFFIXES),
                    (SourcelessFileLoader, BYTECODE_SUFFIXES),
                )
                self._finders[entry] = finder
            spec = finder.find_spec(fullname, target)
            if spec is not None:
                return spec
        return None


def install_if_requested() -> bool:
    """Put the source-only finder first on ``sys.meta_path`` if ``SIPHA_PURE`` asks for it.

    Returns whether the pure build is in use. Idempotent.
    """
    if not pure_requested():
        return False
    if not any(isinstance(f, _SourceOnlyFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _SourceOnlyFinder())
    return True


def compiled_modules() -> list[str]:
    """The names of the loaded ``sipha.*`` modules that come from a compiled extension."""
    out = []
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if name.startswith("sipha.") and file and not file.endswith((".py", ".pyc")):
            out.append(name)
    return sorted(out)
