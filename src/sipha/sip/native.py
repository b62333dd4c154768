"""Which build of the SIP core is running: compiled by mypyc, or pure Python.

The same sources are both builds (``pyproject.toml``/``setup.py`` compile them with mypyc;
``SIPHA_PURE=1`` imports the ``.py`` files instead, see ``sipha/__init__.py``). A few pure-Python
shortcuts do not apply to a compiled module: a frozen dataclass compiled by mypyc is a native
class whose constructor is already C, and ``object.__new__`` cannot build one. Those spots ask
:func:`is_compiled` once at import and take the plain constructor when compiled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["is_compiled", "slot_setter"]


def is_compiled(module_file: str) -> bool:
    """True when the module whose ``__file__`` this is was loaded from a compiled extension."""
    return not module_file.endswith((".py", ".pyc"))


def _no_setter(obj: Any, value: Any) -> None:
    raise AssertionError("slot setters are used by the pure-Python build only")


def slot_setter(cls: type, name: str, *, compiled: bool) -> Callable[[Any, Any], None]:
    """The slot descriptor's ``__set__`` of a frozen slotted dataclass field.

    A frozen dataclass's ``__init__`` sets each field with ``object.__setattr__``; storing
    through the slot descriptors does the same at about half the cost in pure Python. A compiled
    module builds the object with its (C) constructor instead and gets a setter that is never
    called.
    """
    if compiled:
        return _no_setter
    setter: Callable[[Any, Any], None] = cls.__dict__[name].__set__
    return setter
