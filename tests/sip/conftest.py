"""The core's tests run on both builds (see test_core_builds.py): a run started with
``SIPHA_BUILD_REPORT=path`` writes which sipha.sip modules it loaded, and from where, to that file
when it ends, so the run that started it can check which build really ran."""

from __future__ import annotations

import json
import os
import sys

import pytest


def loaded_core_modules() -> dict[str, str]:
    """Every loaded ``sipha.sip`` module and the file it came from."""
    return {
        name: str(getattr(module, "__file__", ""))
        for name, module in list(sys.modules.items())
        if name == "sipha.sip" or name.startswith("sipha.sip.")
    }


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = os.environ.get("SIPHA_BUILD_REPORT")
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"modules": loaded_core_modules(), "exitstatus": int(exitstatus)}, f)
