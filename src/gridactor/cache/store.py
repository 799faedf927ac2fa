"""The entries of one shard: a pure, synchronous store (no I/O, no trio).

Theory of operation
-------------------
A shard owns the segments ``s`` with ``s % shard_count == shard_index``. For every cache
it keeps one :class:`~gridactor.cache.segment_table.SegmentTable` per segment (key ->
record, see *Storage format*), so a segment can be scanned or dropped without touching
the others.

*Expiration.* An entry expires ``lifespan_ms`` after its last write or ``max_idle_ms``
after its last use, whichever comes first (``INFINITE`` = never). Expired entries are
invisible at once, removed lazily when a lookup meets them, and swept in bulk by
:meth:`ShardStore.purge_expired` (the shard process calls it periodically). Only caches
that hold mortal entries are swept, which is why each cache counts them.

*Storage format.* Memory per entry is the point (issue 7: 1M entries of 100 bytes must
not grow the server by more than twice their payload). An entry is stored as one
*record*: the value followed by a small trailer -- no per-entry Python object for the
metadata, no int objects for versions and times. :class:`Entry` objects are built only
when an operation returns one. The trailer, read from the end::

    value | [media type utf-8 | length u16]? | [lifespan i64]? | [max-idle i64]?
          | version counter u40 | created i40 (ms relative to the store's base) | flags u8

Flags say which optional parts are present. A version is the store's epoch (constant)
over the 40-bit counter, so only the counter is stored; an immortal entry's trailer is
11 bytes. The last-use time of max-idle entries lives in a side dict per cache (a read
would otherwise rewrite the record).

Records are not kept as Python objects either. A segment's table
(:mod:`gridactor.cache.segment_table`) appends ``header (8 bytes) | key | record`` to one
``bytearray`` slab and finds keys through an open-addressing index of slab offsets (an
``array('q')``, 8 bytes a slot at a load of 1/3 to 2/3). A dict of ``bytes`` costs a key
object, a record object and a slot: the 1M x (10-byte key, 100-byte value) benchmark grew
the server by 2.22x its payload; with the tables (and the shard's slabs kept out of the
malloc heap, see :func:`~gridactor.cache.segment_table.pin_mmap_threshold`) by 1.44x.
Reads get a fresh ``bytes`` copy of the record, so nothing here holds on to a record
across a write; a rewrite of the same length is done in place, others append and leave
the old record dead until the slab is compacted. The price is CPU: a table lookup costs
~0.5 us more than a dict's, a write ~0.6-0.7 us more.

*Eviction.* A cache with ``max_count >= 0`` gets this shard's share of it and an LRU
order (an ``OrderedDict`` key -> segment: O(1) touch and O(1) pop of the oldest).
Unbounded caches skip the LRU bookkeeping entirely, which is the common, fast case.

*Multimap buckets and counters* (see :mod:`gridactor.cache.api`) are small Python objects
in tables of their own: a per-cache dict key -> :class:`_Bucket` created on first use (so
caches never used as multimaps pay nothing), and one store-wide dict name ->
:class:`_Counter`. The router sends a bucket to the shard of its key and a counter to the
shard of its name's UTF-8 bytes, so each lives on exactly one shard.

*Versions.* Every write gets a fresh 63-bit version: a random per-process epoch in the
high bits and a counter in the low bits, so a restarted shard (new epoch) never hands
out a version an old client may still hold. The counter steps by ``shard_count`` from
``shard_index`` so shards of one pool never collide even if their epochs did.

The primitive methods (:meth:`ShardStore.get`, :meth:`ShardStore.put`, ...) take plain
arguments so that the shard process can call them straight from decoded IPC tuples;
:meth:`ShardStore.apply` is the typed entry point over :mod:`gridactor.cache.api` ops.
"""

from __future__ import annotations

import os
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from gridactor.cache.api import (
    INFINITE,
    INT64_MAX,
    INT64_MIN,
    SEGMENTS,
    CacheOp,
    CacheResult,
    CacheSettings,
    CacheStatistics,
    Clear,
    ContainsKey,
    CounterAddAndGet,
    CounterCompareAndSwap,
    CounterConfig,
    CounterCreate,
    CounterGet,
    CounterGetAndSet,
    CounterGetConfig,
    CounterIsDefined,
    CounterNames,
    CounterRemove,
    CounterReset,
    CounterResult,
    CounterStatus,
    Entry,
    Get,
    GetAll,
    GetValue,
    MultimapContainsEntry,
    MultimapContainsKey,
    MultimapContainsValue,
    MultimapEntry,
    MultimapGet,
    MultimapPut,
    MultimapRemoveEntry,
    MultimapRemoveKey,
    MultimapSize,
    Put,
    PutAll,
    PutIfAbsent,
    Remove,
    RemoveIfUnmodified,
    Replace,
    ReplaceIfUnmodified,
    ScanSegments,
    SegmentEntries,
    Size,
    Stats,
    WriteResult,
    segment_of,
)
from gridactor.cache.segment_table import SegmentTable
from gridactor.errors import CacheExistsError, CacheNotFoundError, InvalidRequestError

Clock = Callable[[], int]

_EPOCH_SHIFT = 40
_COUNTER_MASK = (1 << _EPOCH_SHIFT) - 1

# Record trailer (module docstring).
_F_MEDIA = 1
_F_LIFESPAN = 2
_F_MAX_IDLE = 4
_F_MORTAL = _F_LIFESPAN | _F_MAX_IDLE
_FIXED = 11  # counter (5) + created (5) + flags (1)
_I64 = struct.Struct(">q")
_CREATED_RANGE = 1 << 39  # created is stored signed relative to the base: +-17 years

Record = bytes
# (done, previous entry, version of the entry written: 0 when nothing was written)
WriteOutcome = tuple[bool, Entry | None] | tuple[bool, Entry | None, int]


def wall_clock_ms() -> int:
    """Epoch milliseconds (the default clock)."""
    return time.time_ns() // 1_000_000


def shard_share(max_count: int, shard_index: int, shard_count: int) -> int:
    """This shard's part of a cache-wide ``max_count`` (-1 stays unbounded)."""
    if max_count < 0:
        return -1
    return max_count // shard_count + (1 if shard_index < max_count % shard_count else 0)


def new_epoch() -> int:
    """A random, non-zero 23-bit epoch: versions stay positive signed 64-bit values."""
    return (int.from_bytes(os.urandom(3), "big") & 0x7FFFFF) or 1


@dataclass(slots=True)
class _Counters:
    stores: int = 0
    retrievals: int = 0
    hits: int = 0
    misses: int = 0
    remove_hits: int = 0
    remove_misses: int = 0
    evictions: int = 0


class _Bucket:
    """The values of one multimap key (insertion order) and its last change's metadata."""

    __slots__ = ("created", "values", "version")

    def __init__(self, values: list[bytes], version: int, created: int) -> None:
        self.values = values
        self.version = version
        self.created = created


class _Counter:
    """One counter: its definition, value and Infinispan's bound state (0 valid, 1 lower, 2 upper)."""

    __slots__ = ("config", "state", "value")

    def __init__(self, config: CounterConfig) -> None:
        self.config = config
        self.value = config.initial_value
        self.state = _VALID


_VALID, _LOWER_REACHED, _UPPER_REACHED = 0, 1, 2
_STATE_STATUS = (CounterStatus.OK, CounterStatus.LOWER_BOUND_REACHED, CounterStatus.UPPER_BOUND_REACHED)


class _CacheState:
    __slots__ = (
        "counters", "last_used", "lifespan", "limit", "lru", "max_idle", "mortal", "multimap", "segments",
        "settings", "started_ms",
    )

    def __init__(self, settings: CacheSettings, limit: int, now: int) -> None:
        self.settings = settings
        self.lifespan = settings.lifespan_ms if settings.lifespan_ms >= 0 else INFINITE
        self.max_idle = settings.max_idle_ms if settings.max_idle_ms >= 0 else INFINITE
        self.segments = [SegmentTable() for _ in range(SEGMENTS)]
        self.last_used: dict[bytes, int] = {}  # max-idle entries only: key -> last read or write
        self.limit = limit
        self.lru: OrderedDict[bytes, int] | None = OrderedDict() if limit >= 0 else None
        self.mortal = 0  # entries with a lifespan or max-idle; 0 means nothing to sweep
        self.counters = _Counters()
        self.started_ms = now
        self.multimap: dict[bytes, _Bucket] | None = None  # created by the first multimap put


def _value_end(rec: Record) -> int:
    """Where the value of a record ends (module docstring: the trailer is read from the end)."""
    flags = rec[-1]
    end = len(rec) - _FIXED
    if flags == 0:
        return end
    if flags & _F_MAX_IDLE:
        end -= 8
    if flags & _F_LIFESPAN:
        end -= 8
    if flags & _F_MEDIA:
        end -= 2 + ((rec[end - 2] << 8) | rec[end - 1])
    return end


def _record_expired(cs: _CacheState, key: bytes, rec: Record, base: int, now: int) -> bool:
    """Whether a mortal record has expired (same rule as Infinispan's ExpiryHelper:
    expired strictly after the deadline)."""
    flags = rec[-1]
    end = len(rec) - _FIXED
    created = int.from_bytes(rec[-6:-1], "big", signed=True) + base
    if flags & _F_MAX_IDLE:
        max_idle: int = _I64.unpack_from(rec, end - 8)[0]
        end -= 8
        if now > cs.last_used.get(key, created) + max_idle:
            return True
    if flags & _F_LIFESPAN:
        lifespan: int = _I64.unpack_from(rec, end - 8)[0]
        return now > created + lifespan
    return False


class ShardStore:
    """All caches' entries for the segments of one shard."""

    def __init__(
        self,
        caches: Iterable[CacheSettings] = (),
        *,
        shard_index: int = 0,
        shard_count: int = 1,
        clock: Clock = wall_clock_ms,
        epoch: int | None = None,
    ) -> None:
        if not 0 <= shard_index < shard_count:
            raise ValueError(f"shard index {shard_index} out of range for {shard_count} shards")
        self.shard_index = shard_index
        self.shard_count = shard_count
        self.clock = clock
        self.epoch = new_epoch() if epoch is None else epoch
        self._next_version = (self.epoch << _EPOCH_SHIFT) | shard_index
        self._epoch_bits = self.epoch << _EPOCH_SHIFT
        # Creation times are stored relative to this instant (module docstring).
        self._base = clock()
        self._caches: dict[str, _CacheState] = {}
        # Told (cache, key) of every entry dropped because it expired, when a lookup meets
        # it or a sweep finds it (the shard process turns them into client-listener events).
        self.on_expired: Callable[[str, bytes], None] | None = None
        self._counters: dict[str, _Counter] = {}
        self._owned = tuple(s for s in range(SEGMENTS) if s % shard_count == shard_index)
        for settings in caches:
            self.define_cache(settings)

    # ------------------------------------------------------------ cache lifecycle

    def define_cache(self, settings: CacheSettings) -> None:
        if settings.name in self._caches:
            raise CacheExistsError(settings.name)
        limit = shard_share(settings.max_count, self.shard_index, self.shard_count)
        self._caches[settings.name] = _CacheState(settings, limit, self.clock())

    def drop_cache(self, name: str) -> None:
        if self._caches.pop(name, None) is None:
            raise CacheNotFoundError(name)

    def cache_names(self) -> list[str]:
        return sorted(self._caches)

    def has_cache(self, name: str) -> bool:
        return name in self._caches

    def settings(self, name: str) -> CacheSettings:
        return self._state(name).settings

    def _state(self, name: str) -> _CacheState:
        try:
            return self._caches[name]
        except KeyError:
            raise CacheNotFoundError(name) from None

    # ------------------------------------------------------------ internals

    def _version(self) -> int:
        v = self._next_version
        # The counter wraps inside its 40 bits rather than spilling into the epoch.
        low = ((v & _COUNTER_MASK) + self.shard_count) & _COUNTER_MASK
        self._next_version = (v & ~_COUNTER_MASK) | low
        return v

    def _pack(self, value: bytes, media_type: str, lifespan: int, max_idle: int, now: int) -> Record:
        flags = 0
        parts = [value]
        if media_type:
            media = media_type.encode()
            parts += (media, len(media).to_bytes(2, "big"))
            flags = _F_MEDIA
        if lifespan >= 0:
            parts.append(_I64.pack(lifespan))
            flags |= _F_LIFESPAN
        if max_idle >= 0:
            parts.append(_I64.pack(max_idle))
            flags |= _F_MAX_IDLE
        created = now - self._base
        if not -_CREATED_RANGE <= created < _CREATED_RANGE:
            # The wall clock moved by more than 17 years since the shard started: refuse
            # the write rather than store a wrong time.
            raise InvalidRequestError("the clock moved too far from the shard's start time")
        counter = self._version() & _COUNTER_MASK
        parts.append(counter.to_bytes(5, "big") + created.to_bytes(5, "big", signed=True) + bytes((flags,)))
        return b"".join(parts)

    def _entry(self, cs: _CacheState, key: bytes, rec: Record) -> Entry:
        """The :class:`Entry` a record stands for."""
        flags = rec[-1]
        n = len(rec)
        created = int.from_bytes(rec[n - 6 : n - 1], "big", signed=True) + self._base
        version = self._epoch_bits | int.from_bytes(rec[n - 11 : n - 6], "big")
        end = n - _FIXED
        if flags == 0:
            return Entry(key, rec[:end], "", version, created, created, INFINITE, INFINITE)
        lifespan = max_idle = INFINITE
        last_used = created
        if flags & _F_MAX_IDLE:
            max_idle = _I64.unpack_from(rec, end - 8)[0]
            end -= 8
            last_used = cs.last_used.get(key, created)
        if flags & _F_LIFESPAN:
            lifespan = _I64.unpack_from(rec, end - 8)[0]
            end -= 8
        media = ""
        if flags & _F_MEDIA:
            size = (rec[end - 2] << 8) | rec[end - 1]
            end -= 2 + size
            media = rec[end : end + size].decode()
        return Entry(key, rec[:end], media, version, created, last_used, lifespan, max_idle)

    def _version_of(self, rec: Record) -> int:
        n = len(rec)
        return self._epoch_bits | int.from_bytes(rec[n - 11 : n - 6], "big")

    def _lookup(self, cs: _CacheState, seg: SegmentTable, key: bytes, now: int) -> Record | None:
        """The live record for ``key`` or None; drops it if expired."""
        rec = seg.get(key)
        if rec is None:
            return None
        if rec[-1] & _F_MORTAL and _record_expired(cs, key, rec, self._base, now):
            self._unlink(cs, seg, key, rec)
            if self.on_expired is not None:
                self.on_expired(cs.settings.name, key)
            return None
        return rec

    def _touch(self, cs: _CacheState, key: bytes, rec: Record, now: int) -> None:
        """Record a read: LRU order, and last-used time when max-idle applies."""
        if cs.lru is not None:
            cs.lru.move_to_end(key)
        if rec[-1] & _F_MAX_IDLE:
            cs.last_used[key] = now

    def _unlink(self, cs: _CacheState, seg: SegmentTable, key: bytes, rec: Record) -> None:
        del seg[key]
        flags = rec[-1]
        if flags & _F_MORTAL:
            cs.mortal -= 1
            if flags & _F_MAX_IDLE:
                cs.last_used.pop(key, None)
        if cs.lru is not None:
            cs.lru.pop(key, None)

    def _write(
        self,
        cs: _CacheState,
        seg: SegmentTable,
        segment: int,
        key: bytes,
        value: bytes,
        lifespan: int | None,
        max_idle: int | None,
        media_type: str,
        old: Record | None,
        now: int,
    ) -> Record:
        if lifespan is None:
            lifespan = cs.lifespan
        elif lifespan < 0:
            lifespan = INFINITE
        if max_idle is None:
            max_idle = cs.max_idle
        elif max_idle < 0:
            max_idle = INFINITE
        record = seg[key] = self._pack(value, media_type, lifespan, max_idle, now)
        cs.counters.stores += 1
        if lifespan >= 0 or max_idle >= 0:
            cs.mortal += 1
        if max_idle >= 0:
            cs.last_used[key] = now
        if old is not None:
            if old[-1] & _F_MORTAL:
                cs.mortal -= 1
                if old[-1] & _F_MAX_IDLE and max_idle < 0:
                    cs.last_used.pop(key, None)
            if cs.lru is not None:
                cs.lru.move_to_end(key)
            return record
        lru = cs.lru
        if lru is not None:
            lru[key] = segment
            while len(lru) > cs.limit:
                victim, vseg = lru.popitem(last=False)
                gone = cs.segments[vseg].pop(victim)
                if gone[-1] & _F_MORTAL:
                    cs.mortal -= 1
                    if gone[-1] & _F_MAX_IDLE:
                        cs.last_used.pop(victim, None)
                cs.counters.evictions += 1
        return record

    # ------------------------------------------------------------ primitive operations

    def _read(self, cs: _CacheState, key: bytes, now: int) -> Record | None:
        """A read of ``key``: the live record or None, counted as a hit or miss, LRU touched."""
        rec = self._lookup(cs, cs.segments[segment_of(key)], key, now)
        c = cs.counters
        c.retrievals += 1
        if rec is None:
            c.misses += 1
            return None
        c.hits += 1
        self._touch(cs, key, rec, now)
        return rec

    def get(self, cache: str, key: bytes, now: int) -> Entry | None:
        cs = self._state(cache)
        rec = self._read(cs, key, now)
        return None if rec is None else self._entry(cs, key, rec)

    def get_value(self, cache: str, key: bytes, now: int) -> bytes | None:
        """What :meth:`get` finds, value only: no :class:`Entry` is built (Hot Rod GET)."""
        rec = self._read(self._state(cache), key, now)
        return None if rec is None else rec[: _value_end(rec)]

    def contains_key(self, cache: str, key: bytes, now: int) -> bool:
        cs = self._state(cache)
        seg = cs.segments[segment_of(key)]
        rec = self._lookup(cs, seg, key, now)
        if rec is None:
            return False
        self._touch(cs, key, rec, now)
        return True

    def put(
        self, cache: str, key: bytes, value: bytes, lifespan: int | None, max_idle: int | None,
        media_type: str, now: int,
    ) -> WriteOutcome:
        cs = self._state(cache)
        s = segment_of(key)
        seg = cs.segments[s]
        old = self._lookup(cs, seg, key, now)
        previous = None if old is None else self._entry(cs, key, old)
        record = self._write(cs, seg, s, key, value, lifespan, max_idle, media_type, old, now)
        return True, previous, self._version_of(record)

    def put_replacing(
        self, cache: str, key: bytes, value: bytes, lifespan: int | None, max_idle: int | None,
        media_type: str, now: int,
    ) -> tuple[bool, bool, int]:
        """:meth:`put` for a caller that does not want the previous entry: (done, replaced, version)."""
        cs = self._state(cache)
        s = segment_of(key)
        seg = cs.segments[s]
        old = self._lookup(cs, seg, key, now)
        record = self._write(cs, seg, s, key, value, lifespan, max_idle, media_type, old, now)
        return True, old is not None, self._version_of(record)

    def put_if_absent(
        self, cache: str, key: bytes, value: bytes, lifespan: int | None, max_idle: int | None,
        media_type: str, now: int,
    ) -> WriteOutcome:
        cs = self._state(cache)
        s = segment_of(key)
        seg = cs.segments[s]
        old = self._lookup(cs, seg, key, now)
        if old is not None:
            self._touch(cs, key, old, now)
            return False, self._entry(cs, key, old)
        record = self._write(cs, seg, s, key, value, lifespan, max_idle, media_type, None, now)
        return True, None, self._version_of(record)

    def replace(
        self, cache: str, key: bytes, value: bytes, lifespan: int | None, max_idle: int | None,
        media_type: str, now: int,
    ) -> WriteOutcome:
        cs = self._state(cache)
        s = segment_of(key)
        seg = cs.segments[s]
        old = self._lookup(cs, seg, key, now)
        if old is None:
            return False, None
        previous = self._entry(cs, key, old)
        record = self._write(cs, seg, s, key, value, lifespan, max_idle, media_type, old, now)
        return True, previous, self._version_of(record)

    def replace_if_unmodified(
        self, cache: str, key: bytes, value: bytes, version: int, lifespan: int | None,
        max_idle: int | None, media_type: str, now: int,
    ) -> WriteOutcome:
        cs = self._state(cache)
        s = segment_of(key)
        seg = cs.segments[s]
        old = self._lookup(cs, seg, key, now)
        if old is None:
            return False, None
        if self._version_of(old) != version:
            self._touch(cs, key, old, now)
            return False, self._entry(cs, key, old)
        previous = self._entry(cs, key, old)
        record = self._write(cs, seg, s, key, value, lifespan, max_idle, media_type, old, now)
        return True, previous, self._version_of(record)

    def remove(self, cache: str, key: bytes, now: int) -> WriteOutcome:
        cs = self._state(cache)
        seg = cs.segments[segment_of(key)]
        old = self._lookup(cs, seg, key, now)
        if old is None:
            cs.counters.remove_misses += 1
            return False, None
        previous = self._entry(cs, key, old)
        self._unlink(cs, seg, key, old)
        cs.counters.remove_hits += 1
        return True, previous

    def remove_if_unmodified(
        self, cache: str, key: bytes, version: int, now: int
    ) -> WriteOutcome:
        cs = self._state(cache)
        seg = cs.segments[segment_of(key)]
        old = self._lookup(cs, seg, key, now)
        if old is None:
            cs.counters.remove_misses += 1
            return False, None
        if self._version_of(old) != version:
            self._touch(cs, key, old, now)
            return False, self._entry(cs, key, old)
        previous = self._entry(cs, key, old)
        self._unlink(cs, seg, key, old)
        cs.counters.remove_hits += 1
        return True, previous

    def put_all(
        self, cache: str, entries: Iterable[Sequence[bytes]], lifespan: int | None, max_idle: int | None,
        media_type: str, now: int,
    ) -> None:
        cs = self._state(cache)
        for key, value in entries:
            s = segment_of(key)
            seg = cs.segments[s]
            old = self._lookup(cs, seg, key, now)
            self._write(cs, seg, s, key, value, lifespan, max_idle, media_type, old, now)

    def get_all(self, cache: str, keys: Iterable[bytes], now: int) -> dict[bytes, Entry]:
        cs = self._state(cache)
        c = cs.counters
        out: dict[bytes, Entry] = {}
        for key in keys:
            seg = cs.segments[segment_of(key)]
            rec = self._lookup(cs, seg, key, now)
            c.retrievals += 1
            if rec is None:
                c.misses += 1
            else:
                c.hits += 1
                self._touch(cs, key, rec, now)
                out[key] = self._entry(cs, key, rec)
        return out

    def clear(self, cache: str) -> None:
        cs = self._state(cache)
        for seg in cs.segments:
            seg.clear()
        if cs.lru is not None:
            cs.lru.clear()
        cs.last_used.clear()
        cs.mortal = 0
        cs.multimap = None

    def size(self, cache: str, now: int) -> int:
        cs = self._state(cache)
        if cs.mortal:
            self._purge_cache(cs, now)
        return sum(map(len, cs.segments))

    def stats(self, cache: str, now: int) -> CacheStatistics:
        cs = self._state(cache)
        entries = self.size(cache, now)
        since = max(0, (now - cs.started_ms) // 1000)
        if not cs.settings.statistics:
            return CacheStatistics(time_since_start_s=since, current_entries=entries)
        c = cs.counters
        return CacheStatistics(
            time_since_start_s=since,
            current_entries=entries,
            stores=c.stores,
            retrievals=c.retrievals,
            hits=c.hits,
            misses=c.misses,
            remove_hits=c.remove_hits,
            remove_misses=c.remove_misses,
            evictions=c.evictions,
        )

    def scan_segments(self, cache: str, segments: Sequence[int], now: int) -> list[SegmentEntries]:
        """Live entries of the requested segments this shard owns (all owned when empty)."""
        cs = self._state(cache)
        if segments:
            for s in segments:
                if not 0 <= s < SEGMENTS:
                    raise InvalidRequestError(f"segment {s} out of range 0..{SEGMENTS - 1}")
            n, i = self.shard_count, self.shard_index
            wanted: Iterable[int] = sorted({s for s in segments if s % n == i})
        else:
            wanted = self._owned
        out: list[SegmentEntries] = []
        for s in wanted:
            seg = cs.segments[s]
            if cs.mortal:
                self._purge_segment(cs, seg, now)
            out.append(SegmentEntries(s, tuple(self._entry(cs, k, rec) for k, rec in seg.items())))
        return out

    # ------------------------------------------------------------ multimap buckets

    def multimap_get(self, cache: str, key: bytes) -> MultimapEntry | None:
        buckets = self._state(cache).multimap
        bucket = None if buckets is None else buckets.get(key)
        if bucket is None:
            return None
        return MultimapEntry(key, tuple(bucket.values), bucket.version, bucket.created + self._base)

    def multimap_put(self, cache: str, key: bytes, value: bytes, duplicates: bool, now: int) -> bool:
        cs = self._state(cache)
        buckets = cs.multimap
        if buckets is None:
            buckets = cs.multimap = {}
        bucket = buckets.get(key)
        if bucket is None:
            buckets[key] = _Bucket([value], self._version(), now - self._base)
            return True
        if not duplicates and value in bucket.values:
            return False
        bucket.values.append(value)
        bucket.version = self._version()
        bucket.created = now - self._base
        return True

    def multimap_remove_key(self, cache: str, key: bytes) -> bool:
        buckets = self._state(cache).multimap
        return buckets is not None and buckets.pop(key, None) is not None

    def multimap_remove_entry(self, cache: str, key: bytes, value: bytes, duplicates: bool, now: int) -> bool:
        buckets = self._state(cache).multimap
        bucket = None if buckets is None else buckets.get(key)
        if bucket is None or value not in bucket.values:
            return False
        assert buckets is not None
        if duplicates:
            bucket.values = [v for v in bucket.values if v != value]
        else:
            bucket.values.remove(value)
        if not bucket.values:
            del buckets[key]
        else:
            bucket.version = self._version()
            bucket.created = now - self._base
        return True

    def multimap_contains_key(self, cache: str, key: bytes) -> bool:
        buckets = self._state(cache).multimap
        return buckets is not None and key in buckets

    def multimap_contains_entry(self, cache: str, key: bytes, value: bytes) -> bool:
        buckets = self._state(cache).multimap
        bucket = None if buckets is None else buckets.get(key)
        return bucket is not None and value in bucket.values

    def multimap_contains_value(self, cache: str, value: bytes) -> bool:
        buckets = self._state(cache).multimap
        return buckets is not None and any(value in b.values for b in buckets.values())

    def multimap_size(self, cache: str) -> int:
        buckets = self._state(cache).multimap
        return 0 if buckets is None else sum(len(b.values) for b in buckets.values())

    # ------------------------------------------------------------ counters (semantics: Infinispan's)

    def counter_create(self, name: str, config: CounterConfig) -> bool:
        problem = config.problem()
        if problem is not None:
            raise InvalidRequestError(problem)
        if name in self._counters:
            return False
        if not config.bounded:  # the bounds of an unbounded counter are the long range, whatever was sent
            config = CounterConfig(
                config.weak, False, config.persistent, config.concurrency_level, INT64_MIN, INT64_MAX,
                config.initial_value,
            )
        self._counters[name] = _Counter(config)
        return True

    def counter_config(self, name: str) -> CounterConfig | None:
        counter = self._counters.get(name)
        return None if counter is None else counter.config

    def counter_defined(self, name: str) -> bool:
        return name in self._counters

    def counter_names(self) -> list[str]:
        return sorted(self._counters)

    def counter_get(self, name: str) -> CounterResult:
        counter = self._counters.get(name)
        if counter is None:
            return _UNDEFINED
        return CounterResult(CounterStatus.OK, counter.value)

    def counter_add(self, name: str, delta: int) -> CounterResult:
        """Infinispan's add: a bounded counter stops at the bound it crosses and reports it
        (again on every further add in that direction, and on add 0 while it sits there);
        an unbounded one saturates at the long range."""
        counter = self._counters.get(name)
        if counter is None:
            return _UNDEFINED
        config = counter.config
        if config.bounded:
            if delta > 0 and counter.state != _UPPER_REACHED:
                total = counter.value + delta
                if total > config.upper_bound:
                    counter.value, counter.state = config.upper_bound, _UPPER_REACHED
                else:
                    counter.value, counter.state = total, _VALID
            elif delta < 0 and counter.state != _LOWER_REACHED:
                total = counter.value + delta
                if total < config.lower_bound:
                    counter.value, counter.state = config.lower_bound, _LOWER_REACHED
                else:
                    counter.value, counter.state = total, _VALID
            return CounterResult(_STATE_STATUS[counter.state], counter.value)
        counter.value = min(INT64_MAX, max(INT64_MIN, counter.value + delta))
        return CounterResult(CounterStatus.OK, 0 if config.weak else counter.value)

    def counter_reset(self, name: str) -> CounterResult:
        counter = self._counters.get(name)
        if counter is None:
            return _UNDEFINED
        counter.value, counter.state = counter.config.initial_value, _VALID
        return CounterResult(CounterStatus.OK, counter.value)

    def _out_of_bounds(self, config: CounterConfig, update: int) -> CounterResult | None:
        if config.bounded:
            if update < config.lower_bound:
                return CounterResult(CounterStatus.LOWER_BOUND_REACHED, config.lower_bound)
            if update > config.upper_bound:
                return CounterResult(CounterStatus.UPPER_BOUND_REACHED, config.upper_bound)
        return None

    def counter_compare_and_swap(self, name: str, expect: int, update: int) -> CounterResult:
        counter = self._counters.get(name)
        if counter is None:
            return _UNDEFINED
        if counter.config.weak:
            return _NOT_STRONG
        previous = counter.value
        if previous == expect:
            refused = self._out_of_bounds(counter.config, update)
            if refused is not None:
                return refused
            counter.value, counter.state = update, _VALID
        return CounterResult(CounterStatus.OK, previous)

    def counter_get_and_set(self, name: str, value: int) -> CounterResult:
        counter = self._counters.get(name)
        if counter is None:
            return _UNDEFINED
        if counter.config.weak:
            return _NOT_STRONG
        refused = self._out_of_bounds(counter.config, value)
        if refused is not None:
            return refused
        previous = counter.value
        counter.value, counter.state = value, _VALID
        return CounterResult(CounterStatus.OK, previous)

    def counter_remove(self, name: str) -> CounterResult:
        """The value goes, the definition stays (Infinispan's ``remove(name)``, keepConfig)."""
        return self.counter_reset(name)

    # ------------------------------------------------------------ expiration sweep

    def _purge_segment(self, cs: _CacheState, seg: SegmentTable, now: int) -> int:
        base = self._base
        dead = [
            (k, rec)
            for k, rec in seg.items()
            if rec[-1] & _F_MORTAL and _record_expired(cs, k, rec, base, now)
        ]
        for k, rec in dead:
            self._unlink(cs, seg, k, rec)
        if dead and self.on_expired is not None:
            for k, _ in dead:
                self.on_expired(cs.settings.name, k)
        return len(dead)

    def _purge_cache(self, cs: _CacheState, now: int) -> int:
        removed = 0
        for seg in cs.segments:
            if seg:
                removed += self._purge_segment(cs, seg, now)
        return removed

    def purge_expired(self, now: int | None = None) -> int:
        """Drop every expired entry; returns how many. Caches without mortal entries cost nothing."""
        if now is None:
            now = self.clock()
        removed = 0
        for cs in self._caches.values():
            if cs.mortal:
                removed += self._purge_cache(cs, now)
        return removed

    # ------------------------------------------------------------ typed entry point

    def apply(self, cache: str, op: CacheOp, now: int | None = None) -> CacheResult:
        """Run one :mod:`gridactor.cache.api` operation; raises GridError on failure."""
        if now is None:
            now = self.clock()
        return _APPLY[type(op)](self, cache, op, now)


def _build_apply() -> dict[type, Callable[[ShardStore, str, CacheOp, int], CacheResult]]:
    def get(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        assert isinstance(op, Get)
        return s.get(c, op.key, now)

    def get_value(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        assert isinstance(op, GetValue)
        return s.get_value(c, op.key, now)

    def contains(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        assert isinstance(op, ContainsKey)
        return s.contains_key(c, op.key, now)

    def put(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        assert isinstance(op, Put)
        return WriteResult(*s.put(c, op.key, op.value, op.lifespan_ms, op.max_idle_ms, op.media_type, now))

    def put_if_absent(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        assert isinstance(op, PutIfAbsent)
        return WriteResult(
            *s.put_if_absent(c, op.key, op.value, op.lifespan_ms, op.max_idle_ms, op.media_type, now)
        )

    def replace(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        assert isinstance(op, Replace)
        return WriteResult(
            *s.replace(c, op.key, op.value, op.lifespan_ms, op.max_idle_ms, op.media_type, now)
        )

    def replace_if(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        assert isinstance(op, ReplaceIfUnmodified)
        return WriteResult(
            *s.replace_if_unmodified(
                c, op.key, op.value, op.version, op.lifespan_ms, op.max_idle_ms, op.media_type, now
            )
        )

    def remove(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        assert isinstance(op, Remove)
        return WriteResult(*s.remove(c, op.key, now))

    def remove_if(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        assert isinstance(op, RemoveIfUnmodified)
        return WriteResult(*s.remove_if_unmodified(c, op.key, op.version, now))

    def put_all(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        assert isinstance(op, PutAll)
        s.put_all(c, op.entries, op.lifespan_ms, op.max_idle_ms, op.media_type, now)
        return None

    def get_all(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        assert isinstance(op, GetAll)
        return s.get_all(c, op.keys, now)

    def clear(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        s.clear(c)
        return None

    def size(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        return s.size(c, now)

    def stats(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        return s.stats(c, now)

    def scan(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        assert isinstance(op, ScanSegments)
        return s.scan_segments(c, op.segments, now)

    def mm_get(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        assert isinstance(op, MultimapGet)
        return s.multimap_get(c, op.key)

    def mm_put(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        assert isinstance(op, MultimapPut)
        return s.multimap_put(c, op.key, op.value, op.duplicates, now)

    def mm_remove_key(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        assert isinstance(op, MultimapRemoveKey)
        return s.multimap_remove_key(c, op.key)

    def mm_remove_entry(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        assert isinstance(op, MultimapRemoveEntry)
        return s.multimap_remove_entry(c, op.key, op.value, op.duplicates, now)

    def mm_contains_key(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        assert isinstance(op, MultimapContainsKey)
        return s.multimap_contains_key(c, op.key)

    def mm_contains_entry(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        assert isinstance(op, MultimapContainsEntry)
        return s.multimap_contains_entry(c, op.key, op.value)

    def mm_contains_value(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        assert isinstance(op, MultimapContainsValue)
        return s.multimap_contains_value(c, op.value)

    def mm_size(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        return s.multimap_size(c)

    def counter_create(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        assert isinstance(op, CounterCreate)
        return s.counter_create(op.name, op.config)

    def counter_config(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        assert isinstance(op, CounterGetConfig)
        return s.counter_config(op.name)

    def counter_defined(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        assert isinstance(op, CounterIsDefined)
        return s.counter_defined(op.name)

    def counter_get(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        assert isinstance(op, CounterGet)
        return s.counter_get(op.name)

    def counter_add(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        assert isinstance(op, CounterAddAndGet)
        return s.counter_add(op.name, op.delta)

    def counter_reset(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        assert isinstance(op, CounterReset)
        return s.counter_reset(op.name)

    def counter_cas(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        assert isinstance(op, CounterCompareAndSwap)
        return s.counter_compare_and_swap(op.name, op.expect, op.update)

    def counter_set(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        assert isinstance(op, CounterGetAndSet)
        return s.counter_get_and_set(op.name, op.value)

    def counter_remove(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        assert isinstance(op, CounterRemove)
        return s.counter_remove(op.name)

    def counter_names(s: ShardStore, c: str, op: CacheOp, now: int) -> CacheResult:
        return s.counter_names()

    return {
        MultimapGet: mm_get, MultimapPut: mm_put, MultimapRemoveKey: mm_remove_key,
        MultimapRemoveEntry: mm_remove_entry, MultimapContainsKey: mm_contains_key,
        MultimapContainsEntry: mm_contains_entry, MultimapContainsValue: mm_contains_value,
        MultimapSize: mm_size,
        CounterCreate: counter_create, CounterGetConfig: counter_config, CounterIsDefined: counter_defined,
        CounterGet: counter_get, CounterAddAndGet: counter_add, CounterReset: counter_reset,
        CounterCompareAndSwap: counter_cas, CounterGetAndSet: counter_set, CounterRemove: counter_remove,
        CounterNames: counter_names,
        Get: get, GetValue: get_value, ContainsKey: contains,
        Put: put, PutIfAbsent: put_if_absent, Replace: replace,
        ReplaceIfUnmodified: replace_if, Remove: remove, RemoveIfUnmodified: remove_if, PutAll: put_all,
        GetAll: get_all, Clear: clear, Size: size, Stats: stats, ScanSegments: scan,
    }


_UNDEFINED = CounterResult(CounterStatus.UNDEFINED)
_NOT_STRONG = CounterResult(CounterStatus.NOT_STRONG)
_APPLY = _build_apply()
