"""Helpers for the tests that run real shard processes."""

from __future__ import annotations

import os

from gridactor.cache.api import segment_of
from gridactor.runtime.framing import FrameDecoder, encode


def key_on(shard: int, n: int = 2, prefix: str = "k") -> bytes:
    """The first key ``<prefix><i>`` that shard ``shard`` of ``n`` owns."""
    i = 0
    while True:
        k = f"{prefix}{i}".encode()
        if segment_of(k) % n == shard:
            return k
        i += 1


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wire(obj: object) -> object:
    """``obj`` after a trip through the IPC framing (msgpack: tuples for arrays)."""
    d = FrameDecoder()
    d.receive_data(encode(obj))
    [out] = d.next_frames()
    return out
