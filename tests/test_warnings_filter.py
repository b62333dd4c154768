"""The suite's warning filters (pyproject.toml): under ``python -bb`` a bytes/str comparison is an
error in sipha's code and in the tests, and only a reported warning inside a third-party package
(redis 8.2.0 compared bytes with str at import time, which once failed a fresh clone's run)."""

from __future__ import annotations

import sys
import warnings

import pytest

_COMPARE = compile("b'sip' == 'sip'", "<probe>", "eval")


def _compare_as(module: str) -> object:
    # The warnings machinery attributes the warning to the module whose frame runs the
    # comparison, read from its globals' __name__: exactly what a real module would have.
    return eval(_COMPARE, {"__name__": module})


def test_suite_runs_with_bytes_warnings_enabled() -> None:
    assert sys.flags.bytes_warning >= 1, "run the tests as the Makefile does: python -bb -m pytest"


@pytest.mark.parametrize("module", ["sipha", "sipha.sip.parser", "sipha.dispatcher.router"])
def test_bytes_str_comparison_in_sipha_fails(module: str) -> None:
    with pytest.raises(BytesWarning):
        _compare_as(module)


def test_bytes_str_comparison_in_a_test_fails() -> None:
    with pytest.raises(BytesWarning):
        _compare_as(__name__)


def test_bytes_str_comparison_in_a_third_party_package_is_only_reported() -> None:
    with warnings.catch_warnings(record=True) as seen:
        # catch_warnings keeps the active filters; record=True only swaps the printer.
        assert _compare_as("redis.connection") is False
    assert [w.category for w in seen] == [BytesWarning]


def test_deprecation_warning_from_sipha_fails() -> None:
    with pytest.raises(DeprecationWarning):
        eval(compile("__import__('warnings').warn('old', DeprecationWarning)", "<p>", "eval"),
             {"__name__": "sipha.probe"})
