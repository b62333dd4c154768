"""Giving memory back to the system after a burst (glibc malloc tuning).

Why
---
A node's Python objects are freed when their transactions end, but glibc's malloc keeps the
pages: a buffer of more than 512 bytes (every received datagram, every serialised message)
comes from the C heap, and after a burst of large datagrams the heap is a patchwork of free
chunks pinned by a few live ones, which ``free`` never returns. Measured on a dispatcher,
3,000 INVITEs of 60 KB left about 57 MB resident for good. Two settings fix it:

* ``M_MMAP_THRESHOLD`` fixed at 32 KiB: larger blocks get their own mapping, returned on free
  (glibc otherwise raises the threshold after the first such free, up to 32 MB, and serves
  the next big blocks from the heap). Ordinary SIP messages are a few KiB, so the common path
  is unchanged;
* ``malloc_trim(0)`` every ``TRIM_PERIOD`` seconds: it hands back every whole free page of the
  heap, not only its top (glibc >= 2.8).

Both are no-ops where glibc is not the C library.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import sys

__all__ = ["TRIM_PERIOD", "release_freed_memory", "trim_periodically", "tune_allocator"]

M_MMAP_THRESHOLD = -3  # <malloc.h>
MMAP_THRESHOLD = 32 * 1024
TRIM_PERIOD = 10.0


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    if not hasattr(libc, "malloc_trim") or not hasattr(libc, "mallopt"):
        return None  # musl and others
    return libc


_LIBC = _libc()


def tune_allocator() -> bool:
    """Set the fixed mmap threshold; True when glibc took it."""
    if _LIBC is None:
        return False
    return bool(_LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def release_freed_memory() -> None:
    """Return the heap's free pages to the system now (``malloc_trim(0)``)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


async def trim_periodically(period: float = TRIM_PERIOD) -> None:
    """Run :func:`release_freed_memory` every ``period`` seconds until cancelled."""
    if _LIBC is None:
        return
    while True:
        await asyncio.sleep(period)
        release_freed_memory()

