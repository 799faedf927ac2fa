"""The contract between protocol front-ends (Hot Rod, REST) and the cache shards.

Front-ends never touch entries directly: they build typed operations, hand a *batch* of
them to :class:`CacheService.execute`, and get one result (or one error) per operation, in
order. Batching is the point: one receive on a client connection may carry many requests,
and they travel to the shard processes as one IPC frame per shard (see
``performance-notes.md``: Trio pays per wake-up, not per byte).

Times are milliseconds. ``INFINITE`` (-1) means "never expires". In an operation, an
expiration field of ``None`` means "use the cache's configured default".

Besides plain entries, a shard keeps two more kinds of state, with their own op families:

* *Multimap buckets* (``Multimap*`` ops): per cache, a key maps to a list of values
  (Hot Rod's multimap operations address an ordinary cache, as Infinispan's do). They live
  in a table of their own beside the cache's entries: plain key ops do not see them,
  ``Clear`` and dropping the cache remove them, they never expire and are not evicted
  (Infinispan ignores the expiration a multimap put carries).
* *Counters* (``Counter*`` ops): container-wide, named, strong or weak (Infinispan's
  ``CounterManager``). A counter name hashes to a segment, and so to one shard, like a key
  does. Counters do not belong to a cache: the ``cache`` a counter op is submitted with
  is ignored by ``execute_many`` (``execute`` still resolves it, as for every batch).
  "Persistent" counters are kept for the server's lifetime, like volatile ones (there is
  no persistence layer).
"""

from __future__ import annotations

import enum
import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from gridactor.errors import GridError

_log = logging.getLogger("gridactor.cache")

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
#
# Operations (and results) are slotted dataclasses that are *not* frozen: a frozen
# dataclass's __init__ sets every field through object.__setattr__ and costs ~4x as much,
# once per request on the hot path. Nothing mutates them after construction.


@dataclass(slots=True)
class Get:
    key: bytes


@dataclass(slots=True)
class GetValue:
    """The value alone (``bytes | None``): what Hot Rod GET needs. Same effects as
    :class:`Get` (statistics, LRU, last use); cheaper because no metadata crosses the IPC."""

    key: bytes


@dataclass(slots=True)
class ContainsKey:
    key: bytes


@dataclass(slots=True)
class Put:
    key: bytes
    value: bytes
    lifespan_ms: int | None = None
    max_idle_ms: int | None = None
    media_type: str = DEFAULT_MEDIA_TYPE
    # Whether the caller needs the replaced entry (Hot Rod: only with FORCE_RETURN_VALUE).
    # When False, a shard does not build or ship it: ``WriteResult.previous`` may be None
    # although an entry was replaced.
    previous: bool = True


@dataclass(slots=True)
class PutIfAbsent:
    key: bytes
    value: bytes
    lifespan_ms: int | None = None
    max_idle_ms: int | None = None
    media_type: str = DEFAULT_MEDIA_TYPE


@dataclass(slots=True)
class Replace:
    key: bytes
    value: bytes
    lifespan_ms: int | None = None
    max_idle_ms: int | None = None
    media_type: str = DEFAULT_MEDIA_TYPE


@dataclass(slots=True)
class ReplaceIfUnmodified:
    key: bytes
    value: bytes
    version: int
    lifespan_ms: int | None = None
    max_idle_ms: int | None = None
    media_type: str = DEFAULT_MEDIA_TYPE


@dataclass(slots=True)
class Remove:
    key: bytes


@dataclass(slots=True)
class RemoveIfUnmodified:
    key: bytes
    version: int


# ---------------------------------------------------------------- operations on many keys / whole cache


@dataclass(slots=True)
class PutAll:
    entries: tuple[tuple[bytes, bytes], ...]
    lifespan_ms: int | None = None
    max_idle_ms: int | None = None
    media_type: str = DEFAULT_MEDIA_TYPE


@dataclass(slots=True)
class GetAll:
    keys: tuple[bytes, ...]


@dataclass(slots=True)
class Clear:
    pass


@dataclass(slots=True)
class Size:
    pass


@dataclass(slots=True)
class Stats:
    pass


@dataclass(slots=True)
class ScanSegments:
    """Every live entry of the given segments (all segments when empty)."""

    segments: tuple[int, ...] = ()


# ---------------------------------------------------------------- multimap operations (one cache)
# ``duplicates`` is Hot Rod's supportsDuplicates: with it a bucket is a list (put appends,
# remove-entry drops every equal value); without it a set (put of a present value does
# nothing, remove-entry drops the first equal value), as Infinispan's Bucket does.


@dataclass(slots=True)
class MultimapGet:
    """The bucket of ``key``: a :class:`MultimapEntry`, or None when it has no value."""

    key: bytes


@dataclass(slots=True)
class MultimapPut:
    """Add ``value`` to the bucket of ``key``. Result: True when the bucket changed."""

    key: bytes
    value: bytes
    duplicates: bool = False


@dataclass(slots=True)
class MultimapRemoveKey:
    """Drop the whole bucket. Result: True when there was one."""

    key: bytes


@dataclass(slots=True)
class MultimapRemoveEntry:
    """Remove ``value`` from the bucket of ``key`` (an emptied bucket goes). Result: True when removed."""

    key: bytes
    value: bytes
    duplicates: bool = False


@dataclass(slots=True)
class MultimapContainsKey:
    key: bytes


@dataclass(slots=True)
class MultimapContainsEntry:
    key: bytes
    value: bytes


@dataclass(slots=True)
class MultimapContainsValue:
    """Whether any bucket holds ``value`` (every shard is asked)."""

    value: bytes


@dataclass(slots=True)
class MultimapSize:
    """The number of values in all buckets of the cache (every shard is asked)."""


# ---------------------------------------------------------------- counter operations (container-wide)

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


@dataclass(frozen=True, slots=True)
class CounterConfig:
    """A counter's definition, as Hot Rod encodes it (flags: 1 weak, 2 bounded, 4 persistent).

    Bounds apply to bounded strong counters only; the concurrency level to weak ones only
    (it is kept and reported, a weak counter here is one exact value).
    """

    weak: bool = False
    bounded: bool = False
    persistent: bool = False
    concurrency_level: int = 16
    lower_bound: int = INT64_MIN
    upper_bound: int = INT64_MAX
    initial_value: int = 0

    def problem(self) -> str | None:
        """Why Infinispan would refuse this definition (its message), or None when it is valid."""
        if self.weak and self.bounded:
            return "WEAK and BOUNDED encoded flag isn't supported!"
        if self.weak and self.concurrency_level < 1:
            return (
                "ISPN029509: Invalid concurrency-level. It must be higher than zero but it was "
                f"{self.concurrency_level}"
            )
        if self.bounded:
            low, high, initial = self.lower_bound, self.upper_bound, self.initial_value
            if low > initial or initial > high:
                return (
                    "ISPN029508: Invalid initial value for counter. It must be between "
                    f"{low} and {high} (inclusive) but was {initial}"
                )
            if low == high:
                return f"ISPN029524: Lower bound ({low}) and upper bound ({high}) can't be the same."
        return None


@dataclass(slots=True)
class CounterCreate:
    """Define a counter. Result: True when defined now, False when the name was taken."""

    name: str
    config: CounterConfig


@dataclass(slots=True)
class CounterGetConfig:
    """Result: the :class:`CounterConfig`, or None when the counter is not defined."""

    name: str


@dataclass(slots=True)
class CounterIsDefined:
    name: str


@dataclass(slots=True)
class CounterGet:
    name: str


@dataclass(slots=True)
class CounterAddAndGet:
    """Add ``delta``: the new value (0 for a weak counter, whose add reports nothing, as in Infinispan)."""

    name: str
    delta: int


@dataclass(slots=True)
class CounterReset:
    """Back to the initial value."""

    name: str


@dataclass(slots=True)
class CounterCompareAndSwap:
    """Strong counters: set ``update`` if the value is ``expect``.

    Value: the one before (equal to ``expect`` iff the swap happened).
    """

    name: str
    expect: int
    update: int


@dataclass(slots=True)
class CounterGetAndSet:
    """Strong counters: set ``value``. Value: the one before."""

    name: str
    value: int


@dataclass(slots=True)
class CounterRemove:
    """Infinispan's ``CounterManager.remove``: the value goes, the definition stays, so the
    counter comes back at its initial value when used again."""

    name: str


@dataclass(slots=True)
class CounterNames:
    """Every defined counter's name, sorted (every shard is asked)."""


CounterOp = (
    CounterCreate | CounterGetConfig | CounterIsDefined | CounterGet | CounterAddAndGet | CounterReset
    | CounterCompareAndSwap | CounterGetAndSet | CounterRemove | CounterNames
)
COUNTER_OPS: frozenset[type] = frozenset({
    CounterCreate, CounterGetConfig, CounterIsDefined, CounterGet, CounterAddAndGet, CounterReset,
    CounterCompareAndSwap, CounterGetAndSet, CounterRemove, CounterNames,
})

CacheOp = (
    Get | GetValue | ContainsKey | Put | PutIfAbsent | Replace | ReplaceIfUnmodified | Remove
    | RemoveIfUnmodified | PutAll | GetAll | Clear | Size | Stats | ScanSegments
    | MultimapGet | MultimapPut | MultimapRemoveKey | MultimapRemoveEntry | MultimapContainsKey
    | MultimapContainsEntry | MultimapContainsValue | MultimapSize
    | CounterOp
)


# ---------------------------------------------------------------- results


@dataclass(slots=True)
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


@dataclass(slots=True)
class MultimapEntry:
    """One multimap bucket: its values in insertion order, and the metadata of its last write."""

    key: bytes
    values: tuple[bytes, ...]
    version: int  # fresh on every change of the bucket
    created_ms: int  # epoch ms of the bucket's last change


class CounterStatus(enum.IntEnum):
    """How a counter op went. The bound statuses are Infinispan's CounterOutOfBoundsException."""

    OK = 0
    UNDEFINED = 1
    LOWER_BOUND_REACHED = 2
    UPPER_BOUND_REACHED = 3
    NOT_STRONG = 4  # compare-and-swap / get-and-set on a weak counter


@dataclass(frozen=True, slots=True)
class CounterResult:
    """Outcome of a counter op on a value; ``value`` means what the op's docstring says."""

    status: CounterStatus
    value: int = 0


# Result of each op kind:
#   Get -> Entry | None            ContainsKey -> bool
#   Put/PutIfAbsent/Replace/ReplaceIfUnmodified/Remove/RemoveIfUnmodified -> WriteResult
#   PutAll -> None                 GetAll -> dict[bytes, Entry]
#   Clear -> None                  Size -> int          Stats -> CacheStatistics
#   ScanSegments -> list[SegmentEntries] (ordered by segment)
#   MultimapGet -> MultimapEntry | None                 MultimapSize -> int
#   MultimapPut/RemoveKey/RemoveEntry/ContainsKey/ContainsEntry/ContainsValue -> bool
#   CounterCreate/CounterIsDefined -> bool              CounterGetConfig -> CounterConfig | None
#   CounterGet/AddAndGet/Reset/CompareAndSwap/GetAndSet/Remove -> CounterResult
#   CounterNames -> list[str] (sorted)
CacheResult = (
    Entry | None | bytes | bool | WriteResult | dict[bytes, Entry] | int | CacheStatistics
    | list[SegmentEntries] | MultimapEntry | CounterConfig | CounterResult | list[str]
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


async def execute_guarded(
    caches: CacheService, batch: Sequence[tuple[str, CacheOp]]
) -> list[CacheResult | GridError]:
    """``caches.execute_many`` for a front-end: never raises for the batch as a whole.

    A GridError of the whole call becomes every op's result; anything else (a bug) is
    logged once and answered as an internal error, so one bad batch never ends a
    connection's other requests.
    """
    try:
        results = await caches.execute_many(batch)
    except GridError as err:
        return [err] * len(batch)
    except Exception:
        _log.exception("CacheService.execute_many failed")
        return [GridError("internal error")] * len(batch)
    if len(results) != len(batch):
        _log.error("CacheService returned %d results for %d ops", len(results), len(batch))
        return [GridError("internal error")] * len(batch)
    return results
