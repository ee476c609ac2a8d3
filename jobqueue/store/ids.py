"""Job ids, made in Python so that an enqueue can be sent again safely after a
lost answer: the id says whether the row is ours."""

from __future__ import annotations

import random
import time

_last_ms = 0
_sequence = 0
# Ids need to be unique, not secret (every read of a job is authenticated), and
# a system call per id is a fifth of a batch enqueue's Python time. The random
# module reseeds itself in a forked child, so processes never share a stream.
_random_bits = random.getrandbits


def uuid7() -> str:
    """A time-ordered UUID (RFC 9562 v7): new rows land at the right edge of the
    primary-key index, and ids sort by creation time for keyset pagination.

    Within one millisecond a 12-bit counter (RFC 9562's "method 1") keeps the
    ids of one process strictly increasing, so "newest first" is exact.
    """
    global _last_ms, _sequence
    ms = time.time_ns() // 1_000_000
    if ms > _last_ms:
        _last_ms, _sequence = ms, _random_bits(10)
    else:
        _sequence += 1
        if _sequence > 0xFFF:  # counter spent: borrow the next millisecond
            _last_ms, _sequence = _last_ms + 1, 0
    value = (_last_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= _sequence << 64
    value |= 0b10 << 62
    value |= _random_bits(62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
