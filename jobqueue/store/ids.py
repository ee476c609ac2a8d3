"""Job ids, made in Python so that an enqueue can be sent again safely after a
lost answer: the id says whether the row is ours."""

from __future__ import annotations

import os
import secrets
import struct
import time

_last_ms = 0
_sequence = 0

# An id's random bits come from the operating system's CSPRNG: an id is not a
# credential (every read of a job is authenticated), but one that can be
# predicted from the ids a caller has seen invites probing. A system call per
# id would cost a fifth of a batch enqueue's Python time, so they are read
# POOL_BYTES at a time (512 ids per call) and dealt out; a forked child
# starts with an empty pool, so no two processes deal the same bits.
POOL_BYTES = 4096
_WORDS = struct.Struct(f">{POOL_BYTES // 8}Q")
_pool: tuple[int, ...] = ()
_at = 0
_TEXT = "%08x-%04x-%04x-%04x-%012x"


def _forget_pool() -> None:
    global _pool, _at
    _pool, _at = (), 0


os.register_at_fork(after_in_child=_forget_pool)


def _random64() -> int:
    """64 random bits from the pool, refilled from the CSPRNG when spent."""
    global _pool, _at
    if _at >= len(_pool):
        _pool, _at = _WORDS.unpack(secrets.token_bytes(POOL_BYTES)), 0
    _at += 1
    return _pool[_at - 1]


def uuid7() -> str:
    """A time-ordered UUID (RFC 9562 v7): new rows land at the right edge of the
    primary-key index, and ids sort by creation time for keyset pagination.

    Within one millisecond a 12-bit counter (RFC 9562's "method 1") keeps the
    ids of one process strictly increasing, so "newest first" is exact.
    """
    global _last_ms, _sequence, _pool, _at
    ms = time.time_ns() // 1_000_000
    if ms > _last_ms:
        _last_ms, _sequence = ms, _random64() >> 54  # a random start, 10 bits, leaves room to count
    else:
        _sequence += 1
        if _sequence > 0xFFF:  # counter spent: borrow the next millisecond
            _last_ms, _sequence = _last_ms + 1, 0
    # _random64, inlined: a batch makes an id per job.
    if _at >= len(_pool):
        _pool, _at = _WORDS.unpack(secrets.token_bytes(POOL_BYTES)), 0
    tail = _pool[_at] >> 2  # 62 random bits
    _at += 1
    ms = _last_ms & 0xFFFF_FFFF_FFFF
    # 48 bits of milliseconds, version 7 and the counter, variant 0b10 and the random tail.
    return _TEXT % (ms >> 16, ms & 0xFFFF, 0x7000 | _sequence, 0x8000 | tail >> 48, tail & 0xFFFF_FFFF_FFFF)
