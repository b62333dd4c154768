"""SIPp's built-in scenarios (``--sn``) as XML files shipped with sipha."""

from __future__ import annotations

from importlib import resources

__all__ = ["BUILTINS", "builtin_text"]

BUILTINS = ("uac", "uas", "regexp", "branchc", "branchs")


def builtin_text(name: str) -> bytes:
    """The XML of built-in scenario ``name``.  Raises KeyError for an unknown name."""
    if name not in BUILTINS:
        raise KeyError(name)
    return resources.files(__name__).joinpath(f"{name}.xml").read_bytes()
