"""Checking an HdrHistogram wire blob before hdrh is allowed to build anything from it.

Why: ``HdrHistogram.decode`` trusts the blob.  It inflates the zlib payload without a bound (a
few KB can inflate to gigabytes), then allocates a counts array sized by the range the blob's
own header declares (any ``lowest .. highest / significant figures``), and only then can the
caller compare that range with the one it expects.  A report from a peer must cost at most
what a real one does, so the outer header, the inflated size and the declared range are
checked here first, with the standard library only, and hdrh sees only blobs of our shape.

Layout (HdrHistogram V2, as hdrh writes it): base64 of an 8-byte big-endian header
``(cookie, length)`` followed by ``length`` bytes of zlib; the inflated payload starts with a
40-byte header ``(cookie, payload_len, normalizing_index_offset, significant_figures,
lowest_trackable_value, highest_trackable_value, conversion_ratio_bits)`` and then the
counts, varint-encoded (at most 9 bytes each).
"""

from __future__ import annotations

import base64
import binascii
import struct
import zlib
from typing import Final

__all__ = ["MAX_BLOB_CHARS", "check_blob"]

MAX_BLOB_CHARS: Final = 256 * 1024
"""Longest base64 histogram accepted (a full-range histogram of real samples is a few KB)."""

_OUTER: Final = struct.Struct(">II")
_PAYLOAD: Final = struct.Struct(">IIIIQQd")
_COMPRESSION_COOKIE_BASE: Final = 0x1C849304
_ENCODING_COOKIE_BASE: Final = 0x1C849303
_MAX_VARINT: Final = 9


def _cookie_base(cookie: int) -> int:
    return cookie & ~0xF0


def check_blob(blob: str, *, lowest: int, highest: int, significant_figures: int,
               counts_len: int) -> None:
    """Raise ``ValueError`` unless ``blob`` is a base64 HdrHistogram V2 blob of exactly the
    shape ``lowest .. highest / significant_figures`` whose inflated payload fits
    ``counts_len`` counters; returns None when hdrh may decode it."""
    if len(blob) > MAX_BLOB_CHARS:
        raise ValueError(f"histogram blob of {len(blob)} characters (limit {MAX_BLOB_CHARS})")
    try:
        raw = base64.b64decode(blob.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError(f"histogram blob is not base64: {exc}") from None
    if len(raw) < _OUTER.size:
        raise ValueError("histogram blob shorter than its header")
    cookie, length = _OUTER.unpack_from(raw)
    if _cookie_base(cookie) != _COMPRESSION_COOKIE_BASE or length != len(raw) - _OUTER.size:
        raise ValueError("histogram blob: bad outer header")
    limit = _PAYLOAD.size + _MAX_VARINT * counts_len
    inflater = zlib.decompressobj()
    try:
        payload = inflater.decompress(raw[_OUTER.size:], limit + 1)
    except zlib.error as exc:
        raise ValueError(f"histogram blob: {exc}") from None
    if len(payload) > limit or inflater.unconsumed_tail:
        raise ValueError(f"histogram blob inflates beyond {limit} bytes")
    if len(payload) < _PAYLOAD.size:
        raise ValueError("histogram blob: payload shorter than its header")
    (p_cookie, _len, _offset, figures, low, high, _ratio) = _PAYLOAD.unpack_from(payload)
    if _cookie_base(p_cookie) != _ENCODING_COOKIE_BASE:
        raise ValueError("histogram blob: bad payload header")
    if (low, high, figures) != (lowest, highest, significant_figures):
        raise ValueError(
            f"histogram range {low}..{high}/{figures} is not "
            f"{lowest}..{highest}/{significant_figures}"
        )
