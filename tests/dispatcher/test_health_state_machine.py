"""The health state machine: every (state, input) pair has an answer; thresholds count."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipha.dispatcher.health import (
    TABLE,
    HealthChange,
    HealthInput,
    HealthSettings,
    HealthState,
    ServerHealth,
)


def test_table_covers_every_pair() -> None:
    assert set(TABLE) == {(s, i) for s in HealthState for i in HealthInput}


def observe(
    h: ServerHealth, event: HealthInput, now: float = 0.0, probing: bool = True
) -> HealthChange | None:
    return h.observe(event, server_id="s", now=now, probing=probing)


def test_inactive_after_probing_threshold_and_active_after_inactive_threshold() -> None:
    h = ServerHealth(HealthSettings(probing_threshold=3, inactive_threshold=2))
    assert observe(h, HealthInput.PROBE_FAILED) is None
    assert observe(h, HealthInput.PROBE_FAILED) is None
    change = observe(h, HealthInput.PROBE_FAILED)
    assert change is not None
    assert change.new is HealthState.INACTIVE
    assert "3 in a row" in change.cause
    assert observe(h, HealthInput.PROBE_OK) is None
    change = observe(h, HealthInput.PROBE_OK)
    assert change is not None
    assert change.new is HealthState.ACTIVE


def test_passive_failure_is_immediate_and_held_when_not_probed() -> None:
    h = ServerHealth(HealthSettings(suspect_hold=5.0))
    change = observe(h, HealthInput.PASSIVE_FAILURE, now=1.0, probing=False)
    assert change is not None
    assert change.new is HealthState.SUSPECT
    assert h.hold_until == 6.0
    change = observe(h, HealthInput.HOLD_EXPIRED, now=6.0, probing=False)
    assert change is not None
    assert change.new is HealthState.ACTIVE
    assert h.hold_until is None


def test_one_failed_probe_confirms_a_suspect() -> None:
    h = ServerHealth(HealthSettings(probing_threshold=3))
    observe(h, HealthInput.PASSIVE_FAILURE)
    assert h.state is HealthState.SUSPECT
    assert h.hold_until is None  # probed: the probes decide, not a hold
    change = observe(h, HealthInput.PROBE_FAILED)
    assert change is not None
    assert (change.old, change.new) == (HealthState.SUSPECT, HealthState.INACTIVE)


def test_good_probes_clear_a_suspect_after_inactive_threshold() -> None:
    h = ServerHealth(HealthSettings(inactive_threshold=2))
    observe(h, HealthInput.PASSIVE_FAILURE)
    assert observe(h, HealthInput.PASSIVE_FAILURE) is None  # still suspect, nothing new
    assert observe(h, HealthInput.PROBE_OK) is None
    change = observe(h, HealthInput.PROBE_OK)
    assert change is not None
    assert change.new is HealthState.ACTIVE


def test_an_inactive_server_is_not_returned_by_a_hold() -> None:
    h = ServerHealth(HealthSettings(), HealthState.INACTIVE)
    assert observe(h, HealthInput.HOLD_EXPIRED, probing=False) is None
    assert h.state is HealthState.INACTIVE


@pytest.mark.parametrize("state", [HealthState.DISABLED, HealthState.DRAINING])
def test_operator_states_ignore_probes_and_passive_failures(state: HealthState) -> None:
    h = ServerHealth(HealthSettings(probing_threshold=1), state)
    for event in (HealthInput.PROBE_FAILED, HealthInput.PASSIVE_FAILURE, HealthInput.PROBE_OK):
        assert observe(h, event) is None
    assert h.state is state


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(list(HealthInput)), max_size=40))
def test_any_input_sequence_stays_consistent(events: list[HealthInput]) -> None:
    h = ServerHealth(HealthSettings())
    for e in events:
        old = h.state
        change = observe(h, e)
        if change is None:
            assert h.state is old
        else:
            assert (change.old, change.new) == (old, h.state)
            assert change.old is not change.new
        assert h.successes >= 0
        assert h.failures >= 0
