"""The contract between protocol front-ends (Hot Rod, REST) and the cache shards.

Front-ends never touch entries directly: they build typed operations, hand a *batch* of
them to :class:`CacheService.execute`, and get one result (or one error) per operation, in
order. Batching is the point: one receive on a client connection may carry many requests,
and they travel to the shard processes as one IPC frame per shard (see
``performance-notes.md``: Trio pays per wake-up, not per byte).

Times are milliseconds. ``INFINITE`` (-1) means "never expires". In an operation, an
expiration field of ``None`` means "use the cache's configured default".
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from gridactor.errors import GridError

INFINITE = -1
SEGMENTS = 256
DEFAULT_MEDIA_TYPE = ""  # unknown / not given: stored bytes are opaque


def segment_of(key: bytes) -> int:
    """The segment (0..255) a key belongs to. Stable across processes and restarts."""
    return zlib.crc32(key) & (SEGMENTS - 1)


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """What a shard needs to know about a cache. Derived from the XML configuration."""

    name: str
    mode: str = "local"  # "local" | "distributed" | "replicated" | "invalidation"
    lifespan_ms: int = INFINITE
    max_idle_ms: int = INFINITE
    max_count: int = -1  # -1: unbounded
    statistics: bool = True
    key_media_type: str = "application/unknown"
    value_media_type: str = "application/unknown"


class Entry(NamedTuple):
    """One stored entry as operations return it (immutable).

    A NamedTuple rather than a frozen dataclass: entries are built for every read that
    hits, on the listener's hot path, and a frozen dataclass's ``__init__`` (one
    ``object.__setattr__`` per field) costs four times a tuple's construction.
    """

    key: bytes
    value: bytes
    media_type: str  # value content type as written ("" = unknown)
    version: int  # unique per write of this cache (8 opaque bytes on the Hot Rod wire)
    created_ms: int  # epoch milliseconds
    last_used_ms: int  # epoch milliseconds
    lifespan_ms: int  # INFINITE or a duration
    max_idle_ms: int  # INFINITE or a duration

    def expires_at_ms(self) -> int:
        """Epoch ms when this entry expires, or INFINITE."""
        times = []
        if self.lifespan_ms >= 0:
            times.append(self.created_ms + self.lifespan_ms)
        if self.max_idle_ms >= 0:
            times.append(self.last_used_ms + self.max_idle_ms)
        return min(times) if times else INFINITE


# ---------------------------------------------------------------- operations on one key


@dataclass(frozen=True, slots=True)
class Get:
    key: bytes


@dataclass(frozen=True, slots=True)
class ContainsKey:
    key: bytes


@dataclass(frozen=True, slots=True)
class Put:
    key: bytes
    value: bytes
    lifespan_ms: int | None = None
    max_idle_ms: int | None = None
    media_type: str = DEFAULT_MEDIA_TYPE


@dataclass(frozen=True, slots=True)
class PutIfAbsent:
    key: bytes
    value: bytes
    lifespan_ms: int | None = None
    max_idle_ms: int | None = None
    media_type: str = DEFAULT_MEDIA_TYPE


@dataclass(frozen=True, slots=True)
class Replace:
    key: bytes
    value: bytes
    lifespan_ms: int | None = None
    max_idle_ms: int | None = None
    media_type: str = DEFAULT_MEDIA_TYPE


@dataclass(frozen=True, slots=True)
class ReplaceIfUnmodified:
    key: bytes
    value: bytes
    version: int
    lifespan_ms: int | None = None
    max_idle_ms: int | None = None
    media_type: str = DEFAULT_MEDIA_TYPE


@dataclass(frozen=True, slots=True)
class Remove:
    key: bytes


@dataclass(frozen=True, slots=True)
class RemoveIfUnmodified:
    key: bytes
    version: int


# ---------------------------------------------------------------- operations on many keys / whole cache


@dataclass(frozen=True, slots=True)
class PutAll:
    entries: tuple[tuple[bytes, bytes], ...]
    lifespan_ms: int | None = None
    max_idle_ms: int | None = None
    media_type: str = DEFAULT_MEDIA_TYPE


@dataclass(frozen=True, slots=True)
class GetAll:
    keys: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Clear:
    pass


@dataclass(frozen=True, slots=True)
class Size:
    pass


@dataclass(frozen=True, slots=True)
class Stats:
    pass


@dataclass(frozen=True, slots=True)
class ScanSegments:
    """Every live entry of the given segments (all segments when empty)."""

    segments: tuple[int, ...] = ()


CacheOp = (
    Get | ContainsKey | Put | PutIfAbsent | Replace | ReplaceIfUnmodified | Remove | RemoveIfUnmodified
    | PutAll | GetAll | Clear | Size | Stats | ScanSegments
)


# ---------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Outcome of a conditional or unconditional write/remove.

    ``done``: the write (or removal) happened. ``previous``: the entry that was there
    before (None when absent). For the *_IF_UNMODIFIED operations, ``done=False`` with a
    ``previous`` means "version mismatch" and ``done=False`` without one means "absent".
    ``version``: the version of the entry just written (0 when nothing was written, and
    for removals); listeners' created/modified events carry it.
    """

    done: bool
    previous: Entry | None
    version: int = field(default=0, compare=False)  # auxiliary: results compare by outcome


@dataclass(frozen=True, slots=True)
class CacheStatistics:
    """Counters since the cache (or the server) started, summed over shards."""

    time_since_start_s: int = 0
    current_entries: int = 0
    stores: int = 0
    retrievals: int = 0
    hits: int = 0
    misses: int = 0
    remove_hits: int = 0
    remove_misses: int = 0
    evictions: int = 0
    extra: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SegmentEntries:
    segment: int
    entries: tuple[Entry, ...]


# Result of each op kind:
#   Get -> Entry | None            ContainsKey -> bool
#   Put/PutIfAbsent/Replace/ReplaceIfUnmodified/Remove/RemoveIfUnmodified -> WriteResult
#   PutAll -> None                 GetAll -> dict[bytes, Entry]
#   Clear -> None                  Size -> int          Stats -> CacheStatistics
#   ScanSegments -> list[SegmentEntries] (ordered by segment)
CacheResult = (
    Entry | None | bool | WriteResult | dict[bytes, Entry] | int | CacheStatistics | list[SegmentEntries]
)


class CacheService(Protocol):
    """What the protocol front-ends see of the caches. Implemented by the shard router."""

    def cache_names(self) -> list[str]:
        """Names of the defined caches, sorted."""
        ...

    def default_cache(self) -> str | None:
        ...

    def settings(self, cache: str) -> CacheSettings:
        """Settings of ``cache`` ("" = the default cache). Raises CacheNotFoundError."""
        ...

    async def execute(self, cache: str, ops: Sequence[CacheOp]) -> list[CacheResult | GridError]:
        """Run a batch of operations on one cache ("" = default).

        Returns one item per op, in order: its result, or the GridError it failed with
        (one failing op does not fail the others). Raises CacheNotFoundError when the
        cache does not exist (then no op ran).
        """
        ...

    async def execute_many(
        self, batch: Sequence[tuple[str, CacheOp]]
    ) -> list[CacheResult | GridError]:
        """Like execute, over several caches at once; an unknown cache is that item's error."""
        ...

    async def create_cache(self, settings: CacheSettings) -> None:
        """Define a new cache on every shard. Raises CacheExistsError."""
        ...

    async def remove_cache(self, name: str) -> None:
        """Drop a cache and its entries. Raises CacheNotFoundError."""
        ...
