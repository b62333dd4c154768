"""The membership table: complete, and the pairs that matter do what the design says."""

from __future__ import annotations

import pytest

from sipha.ha.membership import (
    SAME,
    TABLE,
    TAKE_OVER,
    Acquire,
    Do,
    Failback,
    Fence,
    Input,
    Membership,
    MembershipSettings,
    Next,
    PeerStatus,
    Release,
    Role,
    SendHeartbeat,
)


def settings(**kw: object) -> MembershipSettings:
    base: dict[str, object] = {"node_id": "a", "priority": 200}
    base.update(kw)
    return MembershipSettings(**base)  # type: ignore[arg-type]


def peer(role: Role, *, priority: int = 100, term: int = 0, pid: int = 4242,
         held: bool = False, node_id: str = "b") -> PeerStatus:
    return PeerStatus(node_id, priority, role, term, pid, held)


# The documented answers, written apart from the module's table: every pair not listed is
# ignored (no action, same role), except ADDRESS_ACQUIRED, which is undone with a release
# (we no longer want the address).
_I, _R = Input, Role
ANSWERS: dict[Role, dict[Input, tuple[tuple[Do, ...], Next]]] = {
    _R.STARTING: {
        _I.STARTUP_WAIT_ENDED: ((), TAKE_OVER),
        _I.PEER_LOST: ((), TAKE_OVER),
        _I.PEER_CRASHED: ((), TAKE_OVER),
        _I.PEER_IDLE_WE_LEAD: ((), TAKE_OVER),
        _I.PROMOTE_REQUESTED: ((), TAKE_OVER),
        _I.PEER_IDLE_PEER_LEADS: ((), _R.STANDBY),
        _I.PEER_HOLDING: ((), _R.STANDBY),
        _I.PEER_HOLDING_PREEMPTIBLE: ((), _R.STANDBY),
        _I.PEER_HOLDING_LOSES: ((), _R.STANDBY),
        _I.PEER_CLAIMING: ((), _R.STANDBY),
        _I.DEMOTE_REQUESTED: ((), _R.STANDBY),
    },
    _R.STANDBY: {
        _I.PEER_LOST: ((), TAKE_OVER),
        _I.PEER_CRASHED: ((), TAKE_OVER),  # stream gone, heartbeat silent: fence at once
        _I.PEER_IDLE_WE_LEAD: ((), TAKE_OVER),
        _I.PEER_HOLDING_PREEMPTIBLE: ((), TAKE_OVER),
        _I.PROMOTE_REQUESTED: ((), TAKE_OVER),
    },
    _R.FENCING: {  # only the fence's outcome counts; peer words are not trusted
        _I.FENCE_SUCCEEDED: ((Do.ACQUIRE,), _R.ACQUIRING),
        _I.DEMOTE_REQUESTED: ((), _R.STANDBY),
    },
    _R.CLAIMING: {
        _I.PEER_LOST: ((), TAKE_OVER),
        _I.PEER_CRASHED: ((), TAKE_OVER),
        _I.PEER_IDLE_WE_LEAD: ((Do.ACQUIRE,), _R.ACQUIRING),
        _I.PEER_IDLE_PEER_LEADS: ((Do.ACQUIRE,), _R.ACQUIRING),
        _I.PEER_CLAIMING: ((), _R.STANDBY),
        _I.CLAIM_TIMED_OUT: ((), _R.STANDBY),
        _I.DEMOTE_REQUESTED: ((), _R.STANDBY),
    },
    _R.ACQUIRING: {
        _I.ADDRESS_ACQUIRED: ((), _R.ACTIVE),
        _I.PEER_HOLDING: ((Do.RELEASE,), _R.RELEASING),
        _I.PEER_HOLDING_PREEMPTIBLE: ((Do.RELEASE,), _R.RELEASING),
        _I.DEMOTE_REQUESTED: ((Do.RELEASE,), _R.RELEASING),
    },
    _R.ACTIVE: {
        _I.ADDRESS_ACQUIRED: ((), SAME),
        _I.PEER_HOLDING: ((Do.RELEASE,), _R.RELEASING),
        _I.PEER_CLAIMING: ((Do.RELEASE,), _R.RELEASING),
        _I.DEMOTE_REQUESTED: ((Do.RELEASE,), _R.RELEASING),
        _I.ADDRESS_RELEASED: ((Do.ACQUIRE,), _R.ACQUIRING),  # removed by hand: take it again
    },
    _R.RELEASING: {
        _I.ADDRESS_RELEASED: ((), _R.STANDBY),
        _I.ADDRESS_ACQUIRED: ((), SAME),  # the pending release covers it
    },
}


def documented(role: Role, event: Input) -> tuple[tuple[Do, ...], Next]:
    default = ((Do.RELEASE,), SAME) if event is _I.ADDRESS_ACQUIRED else ((), SAME)
    return ANSWERS[role].get(event, default)


@pytest.mark.parametrize("role", list(Role))
def test_every_pair_of_the_table_is_the_documented_answer(role: Role) -> None:
    for event in Input:
        assert TABLE[(role, event)] == documented(role, event), (role, event)


# What a take-over resolves to, by what we last knew of the peer (module docstring).
TAKE_OVER_CASES = {
    "lost while holding": (Role.ACTIVE, True, Role.FENCING),
    "alive and holding": (Role.ACTIVE, False, Role.CLAIMING),
    "alive and idle": (Role.STANDBY, False, Role.ACQUIRING),
}


@pytest.mark.parametrize("case", list(TAKE_OVER_CASES))
@pytest.mark.parametrize("role", list(Role))
def test_every_pair_is_performed_as_documented(role: Role, case: str) -> None:
    # Walk every input from every role through the machine itself, and check the actions
    # it returns and the role it ends in against the documented answer.
    peer_role, lost, taken_over = TAKE_OVER_CASES[case]
    for event in Input:
        m = Membership(settings(), now=0.0)
        m.heartbeat_received(peer(peer_role, priority=100), 0.0)
        m.peer_lost = lost
        m.role = role
        dos, nxt = documented(role, event)
        actions = m._apply(event, 0.1)
        target = role if nxt is SAME else taken_over if nxt is TAKE_OVER else nxt
        assert m.role is target, (role, event)
        kinds = [type(a) for a in actions]
        expected = [{Do.ACQUIRE: Acquire, Do.RELEASE: Release, Do.FENCE: Fence}[d] for d in dos]
        if target is not role:
            if target is Role.FENCING:
                expected.append(Fence)
            if target is Role.ACQUIRING and Acquire not in expected:
                expected.append(Acquire)
            expected.append(SendHeartbeat)  # every role change is announced at once
        assert kinds == expected, (role, event)


def test_bad_intervals_are_refused() -> None:
    with pytest.raises(ValueError, match="heartbeat_interval"):
        settings(heartbeat_interval=0.3, token=0.3)


def test_alone_at_startup_takes_the_address_after_the_wait() -> None:
    m = Membership(settings(), now=0.0)
    assert not any(isinstance(a, Acquire) for a in m.handle_timer(0.1))
    actions = m.handle_timer(0.3)
    assert m.role is Role.ACQUIRING
    assert [a for a in actions if isinstance(a, Acquire)] == [Acquire(term=1)]
    m.address_acquired(0.31)
    assert m.role is Role.ACTIVE


def test_higher_priority_starts_active_lower_stays_standby() -> None:
    hi = Membership(settings(node_id="a", priority=200), now=0.0)
    lo = Membership(settings(node_id="b", priority=100), now=0.0)
    lo.heartbeat_received(peer(Role.STARTING, priority=200, node_id="a"), 0.01)
    assert lo.role is Role.STANDBY
    hi.heartbeat_received(peer(Role.STARTING, priority=100, node_id="b"), 0.01)
    assert hi.role is Role.ACQUIRING


def test_equal_priority_is_broken_by_node_id() -> None:
    m = Membership(settings(node_id="b", priority=100), now=0.0)
    m.heartbeat_received(peer(Role.STARTING, priority=100, node_id="a"), 0.01)
    assert m.role is Role.ACQUIRING


def _standby_with_active_peer(**kw: object) -> Membership:
    m = Membership(settings(**kw), now=0.0)
    m.heartbeat_received(peer(Role.ACTIVE, priority=300, term=3), 0.05)
    assert m.role is Role.STANDBY
    return m


def test_lost_active_peer_is_fenced_before_the_address_is_taken() -> None:
    m = _standby_with_active_peer()
    assert m.handle_timer(0.30) == [SendHeartbeat()] or m.role is Role.STANDBY
    actions = m.handle_timer(0.36)
    assert m.role is Role.FENCING
    assert Fence("b", 4242) in actions
    assert not any(isinstance(a, Acquire) for a in actions)
    actions = m.fence_done(True, 0.37)
    assert m.role is Role.ACQUIRING
    assert Acquire(term=4) in actions


def test_a_failed_fence_never_takes_the_address_and_is_retried() -> None:
    m = _standby_with_active_peer()
    m.handle_timer(0.36)
    actions = m.fence_done(False, 0.37, "no such host")
    assert m.role is Role.FENCING
    assert not any(isinstance(a, Acquire) for a in actions)
    assert m.next_deadline() <= 0.37 + 0.5
    assert Fence("b", 4242) in m.handle_timer(0.87)


def test_peer_process_exit_starts_the_takeover_at_once() -> None:
    m = _standby_with_active_peer()
    actions = m.peer_exited(0.06)
    assert m.role is Role.FENCING
    assert Fence("b", 4242) in actions


def test_a_lost_idle_peer_needs_no_fence() -> None:
    m = Membership(settings(priority=50), now=0.0)
    m.heartbeat_received(peer(Role.STANDBY, priority=100), 0.01)
    assert m.role is Role.STANDBY
    actions = m.handle_timer(0.4)
    assert m.role is Role.ACQUIRING
    assert not any(isinstance(a, Fence) for a in actions)


def test_sticky_returning_node_stays_standby() -> None:
    m = Membership(settings(priority=200), now=0.0)
    m.caught_up = True
    m.heartbeat_received(peer(Role.ACTIVE, priority=100, term=2), 0.01)
    m.heartbeat_received(peer(Role.ACTIVE, priority=100, term=2), 0.11)
    assert m.role is Role.STANDBY


def test_preempt_waits_for_sync_then_claims_and_acquires_after_release() -> None:
    m = Membership(settings(priority=200, failback=Failback.PREEMPT), now=0.0)
    m.heartbeat_received(peer(Role.ACTIVE, priority=100, term=2), 0.01)
    assert m.role is Role.STANDBY  # not caught up yet
    m.caught_up = True
    m.heartbeat_received(peer(Role.ACTIVE, priority=100, term=2), 0.11)
    assert m.role is Role.CLAIMING
    m.heartbeat_received(peer(Role.RELEASING, priority=100, term=2), 0.12)
    assert m.role is Role.CLAIMING
    actions = m.heartbeat_received(peer(Role.STANDBY, priority=100, term=2, held=True), 0.13)
    assert m.role is Role.ACQUIRING
    assert Acquire(term=3) in actions


def test_preempt_without_replication_claims_at_once() -> None:
    # The paper's pair shares no state: there is nothing to catch up with before preempting.
    m = Membership(settings(priority=200, failback=Failback.PREEMPT, replicated=False), now=0.0)
    m.heartbeat_received(peer(Role.ACTIVE, priority=100, term=2), 0.01)
    m.heartbeat_received(peer(Role.ACTIVE, priority=100, term=2), 0.11)
    assert m.role is Role.CLAIMING


def test_active_releases_to_a_claim_and_then_stays_held() -> None:
    m = Membership(settings(priority=100), now=0.0)
    m.handle_timer(0.3)
    m.address_acquired(0.31)
    actions = m.heartbeat_received(peer(Role.CLAIMING, priority=200, term=1), 0.4)
    assert m.role is Role.RELEASING
    assert Release() in actions
    m.address_released(0.41)
    assert m.role is Role.STANDBY
    assert m.held
    m.heartbeat_received(peer(Role.ACTIVE, priority=200, term=2), 0.42)
    assert m.role is Role.STANDBY


def test_two_actives_settle_by_term() -> None:
    m = Membership(settings(priority=200), now=0.0)
    m.handle_timer(0.3)
    m.address_acquired(0.31)
    assert m.term == 1
    m.heartbeat_received(peer(Role.ACTIVE, priority=100, term=1), 0.4)
    assert m.role is Role.ACTIVE  # same term, we outrank
    actions = m.heartbeat_received(peer(Role.ACTIVE, priority=100, term=5), 0.5)
    assert m.role is Role.RELEASING
    assert Release() in actions


def test_operator_demote_hands_over_and_promote_takes_back() -> None:
    a = Membership(settings(node_id="a", priority=200), now=0.0)
    a.handle_timer(0.3)
    a.address_acquired(0.31)
    a.demote_requested(1.0)
    assert a.role is Role.RELEASING
    a.address_released(1.01)
    assert a.role is Role.STANDBY
    assert a.held
    b = Membership(settings(node_id="b", priority=100), now=0.0)
    b.heartbeat_received(peer(Role.ACTIVE, priority=200, node_id="a", term=1), 0.5)
    b.heartbeat_received(peer(Role.STANDBY, priority=200, node_id="a", term=1, held=True), 1.02)
    assert b.role is Role.ACQUIRING
    a.promote_requested(2.0)
    assert a.role is Role.ACQUIRING  # the peer was idle when we last heard it


def test_external_mode_moves_only_on_commands() -> None:
    m = Membership(settings(automatic=False), now=0.0)
    assert m.role is Role.STANDBY
    m.handle_timer(5.0)
    m.heartbeat_received(peer(Role.STANDBY), 5.0)
    assert m.role is Role.STANDBY
    m.heartbeat_received(peer(Role.ACTIVE, priority=100), 5.1)
    actions = m.promote_requested(5.2)
    assert m.role is Role.ACQUIRING
    assert any(isinstance(a, Acquire) for a in actions)


def test_a_late_acquisition_is_undone() -> None:
    m = _standby_with_active_peer()
    assert m.address_acquired(0.1) == [Release()]


def test_heartbeat_from_our_own_id_is_refused() -> None:
    m = Membership(settings(), now=0.0)
    with pytest.raises(ValueError, match="own node id"):
        m.heartbeat_received(peer(Role.STANDBY, node_id="a"), 0.0)


# -- fast detection: the replication stream's loss plus heartbeat silence ---------------------


def test_lost_stream_and_silence_fence_the_active_well_before_the_token() -> None:
    m = _standby_with_active_peer()
    assert m.replication_lost(0.06) == []
    assert m.next_deadline() <= 0.06 + 0.02
    assert not any(isinstance(a, Fence) for a in m.handle_timer(0.079))
    assert m.role is Role.STANDBY
    actions = m.handle_timer(0.08)
    assert m.role is Role.FENCING  # 0.03 s after the last heartbeat; the token is 0.3 s
    assert Fence("b", 4242) in actions
    assert m.changes[-1].cause.startswith(Input.PEER_CRASHED.value)
    assert Acquire(term=4) in m.fence_done(True, 0.09)


def test_a_heartbeat_after_the_loss_means_the_peer_lives() -> None:
    m = _standby_with_active_peer()
    m.replication_lost(0.06)
    m.heartbeat_received(peer(Role.ACTIVE, priority=300, term=3), 0.07)
    m.handle_timer(0.2)
    assert m.role is Role.STANDBY
    assert m.next_deadline() <= 0.07 + 0.3  # the token still runs


def test_a_releasing_peer_closing_its_stream_is_no_crash() -> None:
    m = _standby_with_active_peer()
    m.heartbeat_received(peer(Role.RELEASING, priority=300, term=3), 0.06)
    m.replication_lost(0.061)
    m.handle_timer(0.2)
    assert m.role is Role.STANDBY


def test_without_fast_detection_only_the_token_judges() -> None:
    m = _standby_with_active_peer(crash_confirm=0.0)
    m.replication_lost(0.06)
    m.handle_timer(0.2)
    assert m.role is Role.STANDBY
    m.handle_timer(0.36)
    assert m.role is Role.FENCING


def test_crash_confirm_must_stay_below_the_token() -> None:
    with pytest.raises(ValueError, match="crash_confirm"):
        settings(crash_confirm=0.3)
