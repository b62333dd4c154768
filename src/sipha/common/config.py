"""Loading TOML configuration into typed structs, with errors that name the field and the fix.

Every node describes its configuration as ``msgspec.Struct`` classes (``forbid_unknown_fields``
so a typo is caught, not ignored). :func:`load_toml` decodes and validates in one step and turns
msgspec's message (``Expected `int`, got `str` - at `$.servers[0].weight```) into a
:class:`ConfigError` that says which file, which field, what was wrong and what to write.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")

_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")


class ConfigError(ValueError):
    """An unusable configuration; ``field`` is a dotted path like ``servers[0].weight``."""

    def __init__(self, source: str, field: str, problem: str, fix: str = "") -> None:
        self.source = source
        self.field = field
        self.problem = problem
        self.fix = fix
        where = f"{source}: {field}" if field else source
        text = f"{where}: {problem}"
        if fix:
            text += f" (fix: {fix})"
        super().__init__(text)


def _fix_for(problem: str) -> str:
    if problem.startswith("Object contains unknown field"):
        return "remove it or check its spelling against the documented fields"
    if problem.startswith("Object missing required field"):
        return "add the field"
    m = re.match(r"Expected `([^`]+)`, got `([^`]+)`", problem)
    if m:
        return f"write a value of type {m.group(1)}"
    return ""


def convert(data: Any, type_: type[T], *, source: str = "config") -> T:
    """Validate already-parsed data (a dict from TOML or flags) into ``type_``."""
    try:
        return msgspec.convert(data, type_, strict=False)
    except msgspec.ValidationError as exc:
        raise _to_config_error(str(exc), source) from None


def _to_config_error(message: str, source: str) -> ConfigError:
    m = _AT.search(message)
    path = m.group("path").lstrip(".") if m else ""
    problem = _AT.sub("", message)
    field_match = re.match(r"Object (?:contains unknown|missing required) field `([^`]+)`", problem)
    if field_match:
        path = f"{path}.{field_match.group(1)}".lstrip(".")
    return ConfigError(source, path, problem, _fix_for(problem))


def load_toml(path: str | Path, type_: type[T]) -> T:
    """Read and validate a TOML file; raise ConfigError naming the field and the fix."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(p), "", f"cannot read the file: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(p), "", f"not valid TOML: {exc}", "fix the TOML syntax") from None
    return convert(data, type_, source=str(p))
