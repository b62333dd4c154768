"""Load-test statistics that merge exactly across agents and across time.

Theory of operation
-------------------
Each agent keeps one :class:`IntervalStats` per wall-clock second of the run: plain counters
plus two HDR histograms of call-setup latency.  At the end of the second it ships the interval
(``to_wire()`` -> :class:`IntervalSnapshot`, a msgspec Struct) to the controller, which folds it
into a :class:`RunStats` with ``add(agent_id, second, interval)``.

Everything here merges *by construction* (house style rule 9, the idea of locust's stats):

* counters add;
* HDR histograms add bucket by bucket (``HdrHistogram.add``), so the percentile of a merged
  histogram equals the percentile of one histogram fed every sample (within the histogram's
  3 significant digits) -- percentiles are never averaged;
* ``answered_slots``, a bitmap of the second's 10 ms slots in which some call was answered
  (2xx to its INVITE), ORs across agents: the union of what every agent saw, so the test bed
  can measure the longest stretch with no call answered (an outage) to 10 ms, exactly;
* the one gauge, ``concurrent_calls``, adds across agents for the same second
  (:meth:`IntervalStats.merge`) but is *replaced* when later seconds are folded onto earlier ones
  (:meth:`IntervalStats.extend`), because a gauge summed over time means nothing.

Failure reasons are string keys from a small closed vocabulary (:class:`FailureReason`) plus the
decimal SIP status code of a final error response ("486", "503"): see :func:`reason_key`.

Memory: a histogram spanning 1 us .. 60 s at 3 significant digits holds ~17k 64-bit buckets
(~140 KB).  A long run cannot keep two of those per second, so :class:`RunStats` keeps recent
seconds live and *seals* older ones into their compact encoded form (``seal_through``).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Final, Literal

import msgspec
from hdrh.histogram import HdrHistogram

from sipha.loadtest.hdrblob import check_blob
from sipha.loadtest.histmath import percentile_values

__all__ = [
    "HIST_HIGHEST_US",
    "HIST_LOWEST_US",
    "HIST_SIGNIFICANT_FIGURES",
    "PERCENTILES",
    "SLOTS_PER_SECOND",
    "FailureReason",
    "IntervalSnapshot",
    "IntervalStats",
    "LatencyKind",
    "RunStats",
    "StatsDecodeError",
    "decode_histogram",
    "decode_slots",
    "encode_histogram",
    "failures_by_reason",
    "is_reason_key",
    "merge_all",
    "new_histogram",
    "percentile_summary",
    "reason_for_status",
    "reason_key",
]

# Histogram range: microsecond resolution, 1 us .. 60 s, 3 significant digits.
HIST_LOWEST_US: Final = 1
HIST_HIGHEST_US: Final = 60_000_000
HIST_SIGNIFICANT_FIGURES: Final = 3

SLOTS_PER_SECOND: Final = 100
"""``answered_slots`` resolution: 10 ms."""

# The percentiles every report shows, as (label, percentile).  "max" is exact, not a percentile.
PERCENTILES: Final[tuple[tuple[str, float], ...]] = (
    ("p50", 50.0),
    ("p90", 90.0),
    ("p99", 99.0),
    ("p99.9", 99.9),
)

LatencyKind = Literal["setup_18x", "setup_200"]


class StatsDecodeError(ValueError):
    """A snapshot could not be turned back into an :class:`IntervalStats`."""


class FailureReason(enum.Enum):
    """Why a call or transaction failed, apart from an error status code.

    The value is the reason *key* used in ``failed_by_reason`` dicts, CSV column names and JSON:

    ========================  ==============  ===============================================
    member                    key             meaning
    ========================  ==============  ===============================================
    ``TIMEOUT_B``             ``timeout``     INVITE client transaction timed out
                                              (RFC 3261 §17.1.1.2, Timer B = 64*T1)
    ``TIMEOUT_F``             ``timeout-f``   non-INVITE client transaction timed out
                                              (RFC 3261 §17.1.2.2, Timer F = 64*T1)
    ``TRANSPORT_ERROR``       ``transport``   could not send: socket error, connect refused,
                                              connection closed (RFC 3261 §18.4)
    ``UNEXPECTED_MESSAGE``    ``unexpected``  a message the scenario did not expect
    ``BYE_FAILED``            ``bye-failed``  call set up but its BYE got no 2xx
    ``OTHER``                 ``other``       anything else (e.g. SIPp regexp/test failures
                                              read from a SIPp stat file)
    ``DRAIN_TIMEOUT``         ``drain-timeout``  still in progress when ``--drain-timeout``
                                              ended the run (so attempted = successful +
                                              failed always holds)
    ========================  ==============  ===============================================

    A final error response is keyed by its decimal status code, "300" .. "699": see
    :func:`reason_for_status`.
    """

    TIMEOUT_B = "timeout"
    TIMEOUT_F = "timeout-f"
    TRANSPORT_ERROR = "transport"
    UNEXPECTED_MESSAGE = "unexpected"
    BYE_FAILED = "bye-failed"
    OTHER = "other"
    DRAIN_TIMEOUT = "drain-timeout"


_ENUM_KEYS: Final = frozenset(r.value for r in FailureReason)


def reason_for_status(code: int) -> str:
    """Return the reason key for a call failed by a final error response: ``486 -> "486"``.

    Raises ``ValueError`` if ``code`` is not a failure status (300..699, RFC 3261 §21.3-21.6):
    1xx and 2xx responses do not fail a call.
    """
    if not 300 <= code <= 699:
        raise ValueError(f"status {code} is not a failure status (300..699)")
    return str(code)


def is_reason_key(key: str) -> bool:
    """True if ``key`` is in the closed vocabulary: an enum value or a status "300".."699"."""
    if key in _ENUM_KEYS:
        return True
    return len(key) == 3 and key.isascii() and key.isdigit() and 300 <= int(key) <= 699


def reason_key(reason: FailureReason | int | str) -> str:
    """Normalise a failure reason to its string key.

    Accepts a :class:`FailureReason`, a status code, or an existing key.  Raises ``ValueError``
    for anything outside the vocabulary, so a typo cannot invent a new column.
    """
    if isinstance(reason, FailureReason):
        return reason.value
    if isinstance(reason, int):
        return reason_for_status(reason)
    if is_reason_key(reason):
        return reason
    raise ValueError(f"unknown failure reason {reason!r}")


def new_histogram() -> HdrHistogram:
    """An empty setup-latency histogram (microseconds, 1 us .. 60 s, 3 significant digits)."""
    return HdrHistogram(HIST_LOWEST_US, HIST_HIGHEST_US, HIST_SIGNIFICANT_FIGURES)


def _seconds_to_us(seconds: float) -> int:
    # Clamp rather than drop: a 0 us loopback answer or a 90 s stall must still be counted,
    # otherwise the histogram's count would disagree with calls_successful.
    if math.isnan(seconds):
        raise ValueError("latency is NaN")
    us = round(seconds * 1_000_000)
    return min(max(us, HIST_LOWEST_US), HIST_HIGHEST_US)


_COUNTS_LEN: Final = new_histogram().counts_len


def percentile_summary(hist: HdrHistogram | None) -> dict[str, float]:
    """``{"p50": ms, "p90": ms, "p99": ms, "p99.9": ms, "max": ms}`` of a histogram.

    Values are in milliseconds; an empty (or absent) histogram gives all zeros.
    """
    if hist is None or hist.get_total_count() == 0:
        return {label: 0.0 for label, _ in PERCENTILES} | {"max": 0.0}
    values = percentile_values(hist, [p for _, p in PERCENTILES])
    out = {label: values[p] / 1000.0 for label, p in PERCENTILES}
    out["max"] = hist.get_max_value() / 1000.0
    return out


def _encode_hist(hist: HdrHistogram | None) -> str:
    # Empty histograms travel as "" -- most seconds of a REGISTER run have no call latencies.
    if hist is None or hist.get_total_count() == 0:
        return ""
    blob: bytes = hist.encode()
    return blob.decode("ascii")


def decode_slots(text: str) -> int:
    """An ``answered_slots`` hex string back to its bitmap; raises :class:`StatsDecodeError`
    for anything but hex of at most ``SLOTS_PER_SECOND`` bits."""
    if not text:
        return 0
    try:
        value = int(text, 16)
    except ValueError:
        raise StatsDecodeError(f"answered_slots: not hex: {text[:30]!r}") from None
    if value < 0 or value >> SLOTS_PER_SECOND:
        raise StatsDecodeError(f"answered_slots: more than {SLOTS_PER_SECOND} slots")
    return value


def _decode_hist(blob: str, name: str) -> HdrHistogram | None:
    if not blob:
        return None
    try:
        # The shape is checked before hdrh inflates or allocates anything (see hdrblob).
        check_blob(blob, lowest=HIST_LOWEST_US, highest=HIST_HIGHEST_US,
                   significant_figures=HIST_SIGNIFICANT_FIGURES, counts_len=_COUNTS_LEN)
    except ValueError as exc:
        raise StatsDecodeError(f"{name}: undecodable histogram blob: {exc}") from None
    try:
        hist = HdrHistogram.decode(blob.encode("ascii"))
    except Exception as exc:  # hdrh raises binascii/zlib/struct/ctypes errors alike
        raise StatsDecodeError(f"{name}: undecodable histogram blob: {exc}") from exc
    if (
        hist.lowest_trackable_value != HIST_LOWEST_US
        or hist.highest_trackable_value != HIST_HIGHEST_US
        or hist.significant_figures != HIST_SIGNIFICANT_FIGURES
    ):
        # Adding histograms of different shapes would silently lose precision.
        raise StatsDecodeError(
            f"{name}: histogram range {hist.lowest_trackable_value}..{hist.highest_trackable_value}"
            f"/{hist.significant_figures} is not {HIST_LOWEST_US}..{HIST_HIGHEST_US}"
            f"/{HIST_SIGNIFICANT_FIGURES}"
        )
    return hist


def encode_histogram(hist: HdrHistogram | None) -> str:
    """A histogram of :func:`new_histogram`'s shape as its wire blob ("" when empty)."""
    return _encode_hist(hist)


def decode_histogram(blob: str, name: str) -> HdrHistogram | None:
    """A wire blob back to a histogram (None for ""); raises :class:`StatsDecodeError` for a
    blob of another shape, checked before hdrh allocates (see :mod:`~sipha.loadtest.hdrblob`)."""
    return _decode_hist(blob, name)


class IntervalSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """Wire form of :class:`IntervalStats`; histograms are HdrHistogram's base64 blobs
    ("" when empty)."""

    calls_attempted: int = 0
    calls_successful: int = 0
    calls_failed: int = 0
    failed_by_reason: dict[str, int] = msgspec.field(default_factory=dict)
    retransmissions: int = 0
    concurrent_calls: int = 0
    transactions_ok: int = 0
    transactions_failed: int = 0
    setup_18x: str = ""
    setup_200: str = ""
    answered_slots: str = ""
    """Hex of the 10 ms slot bitmap ("" when no call was answered)."""


class IntervalStats:
    """Counters and setup-latency histograms for one interval (normally one second, one agent).

    Histograms are created on first use, so an idle interval costs a few dozen bytes.
    """

    __slots__ = (
        "_setup_18x",
        "_setup_200",
        "answered_slots",
        "calls_attempted",
        "calls_failed",
        "calls_successful",
        "concurrent_calls",
        "failed_by_reason",
        "retransmissions",
        "transactions_failed",
        "transactions_ok",
    )

    def __init__(self) -> None:
        self.calls_attempted = 0
        self.calls_successful = 0
        self.calls_failed = 0
        self.failed_by_reason: dict[str, int] = {}
        self.retransmissions = 0
        # Gauge: calls in progress at the end of the interval.
        self.concurrent_calls = 0
        # For REGISTER / OPTIONS scenarios, where the unit of work is a transaction, not a call.
        self.transactions_ok = 0
        self.transactions_failed = 0
        self._setup_18x: HdrHistogram | None = None
        self._setup_200: HdrHistogram | None = None
        # Bit n: a call was answered in [n*10 ms, (n+1)*10 ms) of the interval.
        self.answered_slots = 0

    # -- recording ------------------------------------------------------------------------------

    def record_answered(self, offset_s: float) -> None:
        """A call was answered ``offset_s`` seconds into this interval (clamped to it)."""
        slot = int(offset_s * SLOTS_PER_SECOND)
        slot = 0 if slot < 0 else SLOTS_PER_SECOND - 1 if slot >= SLOTS_PER_SECOND else slot
        self.answered_slots |= 1 << slot

    def record_attempt(self) -> None:
        """A call was started (its INVITE was sent)."""
        self.calls_attempted += 1

    def record_success(self, setup_200_s: float, first_18x_s: float | None = None) -> None:
        """A call was answered: INVITE -> 200 took ``setup_200_s`` seconds, INVITE -> first 18x
        ``first_18x_s`` (None if no provisional came).  Latencies are clamped to 1 us .. 60 s.

        Raises ``ValueError`` on a NaN latency.
        """
        us_200 = _seconds_to_us(setup_200_s)
        us_18x = None if first_18x_s is None else _seconds_to_us(first_18x_s)
        self.calls_successful += 1
        self._writable("setup_200").record_value(us_200)
        if us_18x is not None:
            self._writable("setup_18x").record_value(us_18x)

    def record_failure(self, reason: FailureReason | int | str) -> None:
        """A call failed; ``reason`` as for :func:`reason_key` (``ValueError`` if unknown)."""
        key = reason_key(reason)
        self.calls_failed += 1
        self.failed_by_reason[key] = self.failed_by_reason.get(key, 0) + 1

    def record_retransmission(self) -> None:
        """A request or response was retransmitted (RFC 3261 §17.1.1.2 Timer A / E / G)."""
        self.retransmissions += 1

    def record_transaction_ok(self) -> None:
        """A REGISTER / OPTIONS transaction got its expected final response."""
        self.transactions_ok += 1

    def record_transaction_failed(self) -> None:
        """A REGISTER / OPTIONS transaction failed (error response or timeout)."""
        self.transactions_failed += 1

    # -- reading --------------------------------------------------------------------------------

    def histogram(self, which: LatencyKind) -> HdrHistogram | None:
        """The ``setup_18x`` or ``setup_200`` histogram (microseconds), None while nothing was
        recorded in it.  Raises ``ValueError`` for another name."""
        if which == "setup_200":
            return self._setup_200
        if which == "setup_18x":
            return self._setup_18x
        raise ValueError(f"unknown latency histogram {which!r}")

    def add_latencies(self, which: LatencyKind, hist: HdrHistogram) -> None:
        """Add every sample of ``hist`` (the shape of :func:`new_histogram`) to ``which``;
        the counters are the caller's to keep in step."""
        if hist.get_total_count():
            self._writable(which).add(hist)

    def _writable(self, which: LatencyKind) -> HdrHistogram:
        if which == "setup_200":
            if self._setup_200 is None:
                self._setup_200 = new_histogram()
            return self._setup_200
        if self._setup_18x is None:
            self._setup_18x = new_histogram()
        return self._setup_18x

    def percentiles(self, which: LatencyKind) -> dict[str, float]:
        """p50/p90/p99/p99.9/max in milliseconds, as :func:`percentile_summary`."""
        return percentile_summary(self.histogram(which))

    def failed_with_status(self) -> int:
        """Failures caused by an error status code (keys "300".."699")."""
        return sum(n for k, n in self.failed_by_reason.items() if k not in _ENUM_KEYS)

    def is_empty(self) -> bool:
        """True if nothing at all was recorded (the gauge counts as something)."""
        return self == IntervalStats()

    # -- merging --------------------------------------------------------------------------------

    def _add_counts(self, other: IntervalStats) -> None:
        self.calls_attempted += other.calls_attempted
        self.calls_successful += other.calls_successful
        self.calls_failed += other.calls_failed
        for key, n in other.failed_by_reason.items():
            self.failed_by_reason[key] = self.failed_by_reason.get(key, 0) + n
        self.retransmissions += other.retransmissions
        self.transactions_ok += other.transactions_ok
        self.transactions_failed += other.transactions_failed
        which: LatencyKind
        for which in ("setup_18x", "setup_200"):
            theirs = other.histogram(which)
            if theirs is not None:
                self.add_latencies(which, theirs)

    def merge(self, other: IntervalStats) -> None:
        """Fold in another agent's stats for the *same* interval: counters and histograms add,
        and so does the ``concurrent_calls`` gauge (calls in progress on either agent); the
        answered slots are the union."""
        self._add_counts(other)
        self.concurrent_calls += other.concurrent_calls
        self.answered_slots |= other.answered_slots

    def extend(self, later: IntervalStats) -> None:
        """Fold in the stats of a *later* interval of the same population: counters and
        histograms add; the gauge and the answered slots (positions inside one interval) take
        the later value."""
        self._add_counts(later)
        self.concurrent_calls = later.concurrent_calls
        self.answered_slots = later.answered_slots

    def copy(self) -> IntervalStats:
        """An independent deep copy."""
        dup = IntervalStats()
        dup.merge(self)
        return dup

    # -- wire -----------------------------------------------------------------------------------

    def to_wire(self) -> IntervalSnapshot:
        """The msgspec form, histograms HdrHistogram-encoded (compressed, base64)."""
        return IntervalSnapshot(
            calls_attempted=self.calls_attempted,
            calls_successful=self.calls_successful,
            calls_failed=self.calls_failed,
            failed_by_reason=dict(self.failed_by_reason),
            retransmissions=self.retransmissions,
            concurrent_calls=self.concurrent_calls,
            transactions_ok=self.transactions_ok,
            transactions_failed=self.transactions_failed,
            setup_18x=_encode_hist(self._setup_18x),
            setup_200=_encode_hist(self._setup_200),
            answered_slots=format(self.answered_slots, "x") if self.answered_slots else "",
        )

    snapshot = to_wire

    @classmethod
    def from_wire(cls, snap: IntervalSnapshot) -> IntervalStats:
        """Rebuild from a snapshot.

        Raises :class:`StatsDecodeError` for negative counters, unknown reason keys, reason
        counts that do not add up to ``calls_failed``, or a bad / differently shaped histogram.
        """
        counters = {
            "calls_attempted": snap.calls_attempted,
            "calls_successful": snap.calls_successful,
            "calls_failed": snap.calls_failed,
            "retransmissions": snap.retransmissions,
            "concurrent_calls": snap.concurrent_calls,
            "transactions_ok": snap.transactions_ok,
            "transactions_failed": snap.transactions_failed,
        }
        for name, value in counters.items():
            if value < 0:
                raise StatsDecodeError(f"{name} is negative ({value})")
        for key, n in snap.failed_by_reason.items():
            if not is_reason_key(key):
                raise StatsDecodeError(f"unknown failure reason key {key!r}")
            if n < 0:
                raise StatsDecodeError(f"failed_by_reason[{key!r}] is negative ({n})")
        if sum(snap.failed_by_reason.values()) != snap.calls_failed:
            raise StatsDecodeError(
                f"failed_by_reason adds up to {sum(snap.failed_by_reason.values())}, "
                f"calls_failed is {snap.calls_failed}"
            )
        stats = cls()
        stats.calls_attempted = snap.calls_attempted
        stats.calls_successful = snap.calls_successful
        stats.calls_failed = snap.calls_failed
        stats.failed_by_reason = {k: n for k, n in snap.failed_by_reason.items() if n}
        stats.retransmissions = snap.retransmissions
        stats.concurrent_calls = snap.concurrent_calls
        stats.transactions_ok = snap.transactions_ok
        stats.transactions_failed = snap.transactions_failed
        stats._setup_18x = _decode_hist(snap.setup_18x, "setup_18x")
        stats._setup_200 = _decode_hist(snap.setup_200, "setup_200")
        for which, hist in (("setup_200", stats._setup_200), ("setup_18x", stats._setup_18x)):
            # Both are recorded only with a success (record_success).
            if hist is not None and hist.get_total_count() > snap.calls_successful:
                raise StatsDecodeError(f"{which} holds more samples than calls_successful")
        stats.answered_slots = decode_slots(snap.answered_slots)
        return stats

    # -- comparison (tests, dedup) ---------------------------------------------------------------

    def _key(self) -> tuple[object, ...]:
        def hist_key(h: HdrHistogram | None) -> bytes:
            # Every histogram here has the same shape, so equal bucket arrays = equal
            # histograms; an empty histogram equals an absent one.
            if h is None or h.get_total_count() == 0:
                return b""
            return bytes(h.counts)

        return (
            self.calls_attempted,
            self.calls_successful,
            self.calls_failed,
            tuple(sorted((k, n) for k, n in self.failed_by_reason.items() if n)),
            self.retransmissions,
            self.concurrent_calls,
            self.transactions_ok,
            self.transactions_failed,
            hist_key(self._setup_18x),
            hist_key(self._setup_200),
            self.answered_slots,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IntervalStats):
            return NotImplemented
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (
            f"IntervalStats(attempted={self.calls_attempted}, ok={self.calls_successful}, "
            f"failed={self.calls_failed} {self.failed_by_reason}, "
            f"retrans={self.retransmissions}, concurrent={self.concurrent_calls}, "
            f"tx_ok={self.transactions_ok}, tx_failed={self.transactions_failed})"
        )


class RunStats:
    """A whole run as the controller sees it: per-second series merged across agents, plus
    cumulative totals.

    ``add`` is idempotent per ``(agent_id, second)``: a report delivered twice (a resend after a
    reconnect) is counted once.  Seconds at or before ``seal_through(s)`` are kept only in their
    compact encoded form and decoded on demand; a late report for a sealed second still merges
    exactly (decode, merge, re-encode).
    """

    __slots__ = ("_gauges", "_last_gauge", "_live", "_sealed", "_seen", "_totals")

    def __init__(self) -> None:
        self._live: dict[int, IntervalStats] = {}
        self._sealed: dict[int, IntervalSnapshot] = {}
        self._seen: set[tuple[str, int]] = set()
        self._totals = IntervalStats()
        # Gauge bookkeeping: the sum over agents per second, and each agent's latest value.
        self._gauges: dict[int, int] = {}
        self._last_gauge: dict[str, tuple[int, int]] = {}

    def add(self, agent_id: str, second: int, interval: IntervalStats | IntervalSnapshot) -> bool:
        """Merge one agent's report for ``second`` (0 = first second of the run).

        Returns False (and changes nothing) for a duplicate ``(agent_id, second)``.  Raises
        ``ValueError`` for a negative second and :class:`StatsDecodeError` for a bad snapshot.
        """
        if second < 0:
            raise ValueError(f"second must be >= 0, got {second}")
        if (agent_id, second) in self._seen:
            return False
        if isinstance(interval, IntervalSnapshot):
            interval = IntervalStats.from_wire(interval)
        self._seen.add((agent_id, second))
        if second in self._sealed:
            bucket = IntervalStats.from_wire(self._sealed[second])
            bucket.merge(interval)
            self._sealed[second] = bucket.to_wire()
        else:
            self._live.setdefault(second, IntervalStats()).merge(interval)
        self._totals._add_counts(interval)
        self._gauges[second] = self._gauges.get(second, 0) + interval.concurrent_calls
        last = self._last_gauge.get(agent_id)
        if last is None or second >= last[0]:
            self._last_gauge[agent_id] = (second, interval.concurrent_calls)
        return True

    def seal_through(self, second: int) -> None:
        """Compact every live second ``<= second`` into its encoded form to bound memory."""
        for s in [s for s in self._live if s <= second]:
            self._sealed[s] = self._live.pop(s).to_wire()

    @property
    def agents(self) -> frozenset[str]:
        """Agents that have reported at least once."""
        return frozenset(self._last_gauge)

    def seconds(self) -> list[int]:
        """Seconds with at least one report, ascending."""
        return sorted(self._live.keys() | self._sealed.keys())

    def interval(self, second: int) -> IntervalStats:
        """The merged stats of ``second`` (a fresh empty one if nobody reported it)."""
        if second in self._live:
            return self._live[second]
        if second in self._sealed:
            return IntervalStats.from_wire(self._sealed[second])
        return IntervalStats()

    def series(self) -> Iterator[tuple[int, IntervalStats]]:
        """``(second, merged stats)`` in ascending order, sealed ones decoded one at a time."""
        for s in self.seconds():
            yield s, self.interval(s)

    def totals(self) -> IntervalStats:
        """Cumulative stats over the run (a copy).  ``concurrent_calls`` is the sum of each
        agent's latest reported gauge: the calls in progress now."""
        out = self._totals.copy()
        out.concurrent_calls = sum(v for _, v in self._last_gauge.values())
        return out

    def peak_concurrent(self) -> int:
        """The highest per-second sum of the agents' concurrent-call gauges."""
        return max(self._gauges.values(), default=0)

    def percentiles(self, which: LatencyKind = "setup_200") -> dict[str, float]:
        """Whole-run p50/p90/p99/p99.9/max of ``setup_18x`` or ``setup_200`` in milliseconds,
        from the exactly merged histogram."""
        return self._totals.percentiles(which)


def merge_all(intervals: Iterable[IntervalStats]) -> IntervalStats:
    """Merge intervals of the same time span (e.g. every agent's second 7) into a new one."""
    out = IntervalStats()
    for iv in intervals:
        out.merge(iv)
    return out


def failures_by_reason(stats: Mapping[str, int]) -> dict[str, int]:
    """Reason counts with the enum keys first (vocabulary order), then status codes ascending."""
    order = {r.value: i for i, r in enumerate(FailureReason)}
    return dict(sorted(stats.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))
