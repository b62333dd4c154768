"""The store's one error a caller can act on: the store cannot take the request *now*."""

from __future__ import annotations

__all__ = ["StoreUnavailable"]


class StoreUnavailable(Exception):
    """The store could not serve the request in time (no master, or no replica confirmed the
    write); nothing acknowledged was lost, and the same request may succeed later.

    `retry_after` (seconds) is what a SIP server tells its client (``503`` with
    ``Retry-After``, RFC 3261 §21.5.4). A write that raised this may or may not be stored:
    the caller must not report it as done.
    """

    def __init__(self, reason: str, *, retry_after: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
