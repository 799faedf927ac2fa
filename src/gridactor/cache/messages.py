"""The shard IPC: typed messages, compact op/result tuples, and the shard-side executor.

Every frame (see :mod:`gridactor.runtime.framing`) carries one message, a msgpack array
whose first element is a small tag. Nothing is pickled: each type converts itself to and
from plain tuples explicitly, so a broken or hostile peer can at worst send a malformed
tuple (-> :class:`ProtocolViolation`), never code.

Hot path shapes (kept flat because msgpack allocates per nested array):

* request item: ``(rid, cache, op_tag, *op_fields)``
* replies: one flat list ``rid, status, payload, rid, status, payload, ...`` where status
  ``0`` = ok (payload is the encoded result) and ``1`` = error (payload is
  ``(code, type, message, cache)``).

Control operations (define / drop a cache, open the shard to more parents, broadcast a
notice) travel as request items too, so they are ordered with data operations on the same
channel and answered like them. (:class:`Watch` is a message: it needs no answer.)

A shard serves several *parents* (the main process over its inherited socket, worker
listener processes over the shard's listen address). Besides replies, a shard sends a
parent unsolicited messages: :class:`EventBatch` (client-listener events of the caches
that parent watches), :class:`CacheDefined` / :class:`CacheDropped` (shard 0 only: another
parent changed the cache definitions), :class:`Notice` (shard 0 only: another parent's
broadcast), and after Hello to a non-main parent, :class:`CacheDefinitions` (shard 0
only: the current definitions).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from gridactor.cache.api import (
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
)
from gridactor.cache.store import ShardStore, WriteOutcome
from gridactor.errors import (
    CacheExistsError,
    CacheNotFoundError,
    GridError,
    InvalidRequestError,
    ServerStoppingError,
    ShardUnavailableError,
)

log = logging.getLogger("gridactor.cache.shard")

# message tags
MSG_HELLO: Final = 1
MSG_REQUESTS: Final = 2
MSG_REPLIES: Final = 3
MSG_SHUTDOWN: Final = 4
MSG_DEFINITIONS: Final = 5
MSG_EVENTS: Final = 6
MSG_CACHE_DEFINED: Final = 7
MSG_CACHE_DROPPED: Final = 8
MSG_NOTICE: Final = 9
MSG_WATCH: Final = 10

# op tags
OP_GET: Final = 1
OP_CONTAINS: Final = 2
OP_PUT: Final = 3
OP_PUT_IF_ABSENT: Final = 4
OP_REPLACE: Final = 5
OP_REPLACE_IF: Final = 6
OP_REMOVE: Final = 7
OP_REMOVE_IF: Final = 8
OP_PUT_ALL: Final = 9
OP_GET_ALL: Final = 10
OP_CLEAR: Final = 11
OP_SIZE: Final = 12
OP_STATS: Final = 13
OP_SCAN: Final = 14
OP_GET_VALUE: Final = 15
OP_DEFINE_CACHE: Final = 20
OP_DROP_CACHE: Final = 21
# per-parent control items, handled by the shard process itself (see shard_process.py)
OP_OPEN: Final = 23  # (rid, "", tag): main parent only: definitions are in, accept more parents
OP_NOTICE: Final = 24  # (rid, "", tag, kind, payload): shard 0 relays it to every other parent
# multimap buckets: (rid, cache, tag, key[, value, duplicates]); size / contains-value fan out
OP_MM_GET: Final = 30
OP_MM_PUT: Final = 31
OP_MM_REMOVE_KEY: Final = 32
OP_MM_REMOVE_ENTRY: Final = 33
OP_MM_CONTAINS_KEY: Final = 34
OP_MM_CONTAINS_ENTRY: Final = 35
OP_MM_CONTAINS_VALUE: Final = 36
OP_MM_SIZE: Final = 37
# counters: (rid, "", tag, name, *numbers); the cache field is unused; names fan out
OP_COUNTER_CREATE: Final = 40
OP_COUNTER_CONFIG: Final = 41
OP_COUNTER_DEFINED: Final = 42
OP_COUNTER_GET: Final = 43
OP_COUNTER_ADD: Final = 44
OP_COUNTER_RESET: Final = 45
OP_COUNTER_CAS: Final = 46
OP_COUNTER_SET: Final = 47
OP_COUNTER_REMOVE: Final = 48
OP_COUNTER_NAMES: Final = 49

STATUS_OK: Final = 0
STATUS_ERROR: Final = 1

# event kinds on the wire: the Hot Rod event opcodes (gridactor.cache.events.EventKind,
# not imported here so that the shard process never loads trio)
EVENT_CREATED: Final = 0x60
EVENT_MODIFIED: Final = 0x61
EVENT_REMOVED: Final = 0x62
EVENT_EXPIRED: Final = 0x63

# Decoded IPC data is untyped by nature; handlers validate by use (a bad item fails alone).
Item = tuple[Any, ...]


class ProtocolViolation(GridError):
    """A well-framed message that is not a valid shard IPC message."""


class RemoteShardError(GridError):
    """A failure inside a shard process that has no local error class (boxed, as tractor does)."""

    def __init__(self, boxed_type: str, message: str, code: int = 0x85) -> None:
        super().__init__(f"{boxed_type}: {message}")
        self.boxed_type = boxed_type
        self.hotrod_status = code


# ---------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class Hello:
    """First message of a shard process: who it is. The parent checks index and count."""

    shard_index: int
    shard_count: int
    pid: int
    epoch: int

    def to_wire(self) -> tuple[object, ...]:
        return (MSG_HELLO, self.shard_index, self.shard_count, self.pid, self.epoch)


@dataclass(frozen=True, slots=True)
class RequestBatch:
    """Many request items, one frame."""

    items: Sequence[Item]

    def to_wire(self) -> tuple[object, ...]:
        return (MSG_REQUESTS, self.items)


@dataclass(frozen=True, slots=True)
class ReplyBatch:
    """Replies as a flat ``rid, status, payload`` sequence."""

    flat: Sequence[object]

    def to_wire(self) -> tuple[object, ...]:
        return (MSG_REPLIES, self.flat)


@dataclass(frozen=True, slots=True)
class Shutdown:
    def to_wire(self) -> tuple[object, ...]:
        return (MSG_SHUTDOWN,)


@dataclass(frozen=True, slots=True)
class DefineCache:
    settings: CacheSettings

    def to_item(self, rid: int) -> Item:
        return (rid, self.settings.name, OP_DEFINE_CACHE, *settings_to_wire(self.settings)[1:])


@dataclass(frozen=True, slots=True)
class DropCache:
    name: str

    def to_item(self, rid: int) -> Item:
        return (rid, self.name, OP_DROP_CACHE)


@dataclass(frozen=True, slots=True)
class Watch:
    """Start (``on``) or stop sending this parent the events of ``cache``.

    A message of its own rather than a request item: it has no reply, and the parent
    sends it in front of the request frame of the same flush, so it takes effect before
    any write queued after the subscription that caused it.
    """

    cache: str
    on: bool

    def to_wire(self) -> tuple[object, ...]:
        return (MSG_WATCH, self.cache, self.on)


@dataclass(frozen=True, slots=True)
class OpenToParents:
    """Request item from the main parent, queued after the definitions: accept other parents now."""

    def to_item(self, rid: int) -> Item:
        return (rid, "", OP_OPEN)


@dataclass(frozen=True, slots=True)
class Notice:
    """A small broadcast between parents (e.g. "flush the permission cache").

    As a request item it goes to shard 0, which sends it as a message to every *other*
    connected parent. ``kind`` says what it is; ``payload`` is for the kind to define.
    """

    kind: str
    payload: bytes = b""

    def to_item(self, rid: int) -> Item:
        return (rid, "", OP_NOTICE, self.kind, self.payload)

    def to_wire(self) -> tuple[object, ...]:
        return (MSG_NOTICE, self.kind, self.payload)


@dataclass(frozen=True, slots=True)
class CacheDefinitions:
    """Every cache shard 0 has, sent after Hello to a parent that is not the main one."""

    caches: tuple[CacheSettings, ...]

    def to_wire(self) -> tuple[object, ...]:
        return (MSG_DEFINITIONS, tuple(settings_to_wire(s) for s in self.caches))


@dataclass(frozen=True, slots=True)
class CacheDefined:
    """Shard 0 applied another parent's DefineCache."""

    settings: CacheSettings

    def to_wire(self) -> tuple[object, ...]:
        return (MSG_CACHE_DEFINED, settings_to_wire(self.settings))


@dataclass(frozen=True, slots=True)
class CacheDropped:
    """Shard 0 applied another parent's DropCache."""

    name: str

    def to_wire(self) -> tuple[object, ...]:
        return (MSG_CACHE_DROPPED, self.name)


@dataclass(frozen=True, slots=True)
class EventBatch:
    """Client-listener events as a flat ``cache, kind, key, version`` sequence."""

    flat: Sequence[object]

    def to_wire(self) -> tuple[object, ...]:
        return (MSG_EVENTS, self.flat)


Message = (
    Hello | RequestBatch | ReplyBatch | Shutdown | CacheDefinitions | CacheDefined | CacheDropped
    | EventBatch | Notice | Watch
)
# What a parent may receive besides replies (handed to the router's control handler).
ControlMessage = CacheDefinitions | CacheDefined | CacheDropped | EventBatch | Notice


def parse_message(obj: object) -> Message:
    """The typed message for a decoded frame body. Raises ProtocolViolation."""
    if not isinstance(obj, tuple) or not obj:
        raise ProtocolViolation(f"message is not a tagged array: {type(obj).__name__}")
    tag = obj[0]
    try:
        if tag == MSG_REQUESTS:
            items = obj[1]
            if not isinstance(items, tuple):
                raise ProtocolViolation("request batch without items")
            return RequestBatch(items)
        if tag == MSG_REPLIES:
            flat = obj[1]
            if not isinstance(flat, tuple) or len(flat) % 3:
                raise ProtocolViolation("reply batch is not rid/status/payload triples")
            return ReplyBatch(flat)
        if tag == MSG_HELLO:
            _, index, count, pid, epoch = obj
            if not all(isinstance(x, int) for x in (index, count, pid, epoch)):
                raise ProtocolViolation("hello fields must be integers")
            return Hello(index, count, pid, epoch)
        if tag == MSG_SHUTDOWN:
            return Shutdown()
        if tag == MSG_EVENTS:
            flat = obj[1]
            if not isinstance(flat, tuple) or len(flat) % 4:
                raise ProtocolViolation("event batch is not cache/kind/key/version quadruples")
            return EventBatch(flat)
        if tag == MSG_NOTICE:
            _, kind, payload = obj
            if not isinstance(kind, str) or not isinstance(payload, bytes):
                raise ProtocolViolation("notice fields must be a string and bytes")
            return Notice(kind, payload)
        if tag == MSG_WATCH:
            _, cache, on = obj
            if not isinstance(cache, str) or not isinstance(on, bool):
                raise ProtocolViolation("watch fields must be a string and a boolean")
            return Watch(cache, on)
        if tag == MSG_CACHE_DEFINED:
            _, settings = obj
            return CacheDefined(settings_from_wire(settings))
        if tag == MSG_CACHE_DROPPED:
            _, name = obj
            if not isinstance(name, str):
                raise ProtocolViolation("dropped cache name must be a string")
            return CacheDropped(name)
        if tag == MSG_DEFINITIONS:
            _, caches = obj
            if not isinstance(caches, tuple):
                raise ProtocolViolation("cache definitions must be an array")
            return CacheDefinitions(tuple(settings_from_wire(s) for s in caches))
    except (ValueError, IndexError, TypeError) as e:
        raise ProtocolViolation(f"malformed message with tag {tag!r}: {e}") from None
    raise ProtocolViolation(f"unknown message tag {tag!r}")


def settings_to_wire(s: CacheSettings) -> tuple[object, ...]:
    return (
        s.name, s.mode, s.lifespan_ms, s.max_idle_ms, s.max_count, s.statistics, s.key_media_type,
        s.value_media_type,
    )


def settings_from_wire(t: Any) -> CacheSettings:
    """Raises ValueError/TypeError on a malformed tuple (parse_message makes it a ProtocolViolation)."""
    name, mode, lifespan, max_idle, max_count, statistics, kmt, vmt = t
    if not isinstance(name, str) or not isinstance(mode, str):
        raise ValueError("cache name and mode must be strings")
    return CacheSettings(
        name=name, mode=mode, lifespan_ms=int(lifespan), max_idle_ms=int(max_idle),
        max_count=int(max_count),
        statistics=bool(statistics), key_media_type=str(kmt), value_media_type=str(vmt),
    )


def settings_from_item(item: Item) -> CacheSettings:
    return settings_from_wire((item[1], *item[3:]))


# ---------------------------------------------------------------- parent side: ops out, results in


OP_TAGS: Final[dict[type, int]] = {
    Get: OP_GET, GetValue: OP_GET_VALUE, ContainsKey: OP_CONTAINS,
    Put: OP_PUT, PutIfAbsent: OP_PUT_IF_ABSENT, Replace: OP_REPLACE,
    ReplaceIfUnmodified: OP_REPLACE_IF, Remove: OP_REMOVE, RemoveIfUnmodified: OP_REMOVE_IF,
    PutAll: OP_PUT_ALL, GetAll: OP_GET_ALL, Clear: OP_CLEAR, Size: OP_SIZE, Stats: OP_STATS,
    ScanSegments: OP_SCAN,
    MultimapGet: OP_MM_GET, MultimapPut: OP_MM_PUT, MultimapRemoveKey: OP_MM_REMOVE_KEY,
    MultimapRemoveEntry: OP_MM_REMOVE_ENTRY, MultimapContainsKey: OP_MM_CONTAINS_KEY,
    MultimapContainsEntry: OP_MM_CONTAINS_ENTRY, MultimapContainsValue: OP_MM_CONTAINS_VALUE,
    MultimapSize: OP_MM_SIZE,
    CounterCreate: OP_COUNTER_CREATE, CounterGetConfig: OP_COUNTER_CONFIG,
    CounterIsDefined: OP_COUNTER_DEFINED,
    CounterGet: OP_COUNTER_GET, CounterAddAndGet: OP_COUNTER_ADD, CounterReset: OP_COUNTER_RESET,
    CounterCompareAndSwap: OP_COUNTER_CAS, CounterGetAndSet: OP_COUNTER_SET, CounterRemove: OP_COUNTER_REMOVE,
    CounterNames: OP_COUNTER_NAMES,
}


def counter_config_to_wire(c: CounterConfig) -> tuple[object, ...]:
    return (
        c.weak, c.bounded, c.persistent, c.concurrency_level, c.lower_bound, c.upper_bound, c.initial_value
    )


def counter_config_from_wire(t: Any) -> CounterConfig:
    weak, bounded, persistent, level, lower, upper, initial = t
    return CounterConfig(
        bool(weak), bool(bounded), bool(persistent), int(level), int(lower), int(upper), int(initial)
    )


def encode_op(rid: int, cache: str, op: CacheOp) -> Item:
    """The request item for one op (multi-key ops are split by the router beforehand)."""
    if isinstance(op, (GetValue, Get, ContainsKey, Remove)):
        return (rid, cache, OP_TAGS[type(op)], op.key)
    if isinstance(op, Put):
        return (
            rid, cache, OP_PUT, op.key, op.value, op.lifespan_ms, op.max_idle_ms, op.media_type, op.previous
        )
    if isinstance(op, (PutIfAbsent, Replace)):
        return (
            rid, cache, OP_TAGS[type(op)], op.key, op.value, op.lifespan_ms, op.max_idle_ms, op.media_type
        )
    if isinstance(op, ReplaceIfUnmodified):
        return (rid, cache, OP_REPLACE_IF, op.key, op.value, op.version, op.lifespan_ms, op.max_idle_ms,
                op.media_type)
    if isinstance(op, RemoveIfUnmodified):
        return (rid, cache, OP_REMOVE_IF, op.key, op.version)
    if isinstance(op, PutAll):
        return (rid, cache, OP_PUT_ALL, op.entries, op.lifespan_ms, op.max_idle_ms, op.media_type)
    if isinstance(op, GetAll):
        return (rid, cache, OP_GET_ALL, op.keys)
    if isinstance(op, ScanSegments):
        return (rid, cache, OP_SCAN, op.segments)
    if isinstance(op, (MultimapGet, MultimapRemoveKey, MultimapContainsKey)):
        return (rid, cache, OP_TAGS[type(op)], op.key)
    if isinstance(op, (MultimapPut, MultimapRemoveEntry)):
        return (rid, cache, OP_TAGS[type(op)], op.key, op.value, op.duplicates)
    if isinstance(op, MultimapContainsEntry):
        return (rid, cache, OP_MM_CONTAINS_ENTRY, op.key, op.value)
    if isinstance(op, MultimapContainsValue):
        return (rid, cache, OP_MM_CONTAINS_VALUE, op.value)
    if isinstance(op, CounterCreate):
        return (rid, "", OP_COUNTER_CREATE, op.name, counter_config_to_wire(op.config))
    if isinstance(op, (CounterGetConfig, CounterIsDefined, CounterGet, CounterReset, CounterRemove)):
        return (rid, "", OP_TAGS[type(op)], op.name)
    if isinstance(op, CounterAddAndGet):
        return (rid, "", OP_COUNTER_ADD, op.name, op.delta)
    if isinstance(op, CounterCompareAndSwap):
        return (rid, "", OP_COUNTER_CAS, op.name, op.expect, op.update)
    if isinstance(op, CounterGetAndSet):
        return (rid, "", OP_COUNTER_SET, op.name, op.value)
    if isinstance(op, CounterNames):
        return (rid, "", OP_COUNTER_NAMES)
    return (rid, cache, OP_TAGS[type(op)])  # Clear, Size, Stats, MultimapSize


def entry_to_wire(e: Entry) -> tuple[object, ...]:
    return (
        e.key, e.value, e.media_type, e.version, e.created_ms, e.last_used_ms, e.lifespan_ms, e.max_idle_ms
    )


def entry_from_wire(t: Any) -> Entry:
    return Entry(*t)


_make_entry = Entry._make


def _dec_entry(p: Any) -> CacheResult:
    return None if p is None else _make_entry(p)


def _dec_write(p: Any) -> CacheResult:
    done, prev, *version = p
    # prev: an entry, None, or True (one was replaced; the op did not ask for it: Put.previous)
    previous = None if prev is None or prev is True else _make_entry(prev)
    return WriteResult(done, previous, version[0] if version else 0)


def _dec_plain(p: Any) -> CacheResult:
    result: CacheResult = p
    return result


def _dec_get_all(p: Any) -> CacheResult:
    out: dict[bytes, Entry] = {}
    for t in p:
        e = Entry(*t)
        out[e.key] = e
    return out


def _dec_stats(p: Any) -> CacheResult:
    return CacheStatistics(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], dict(p[9]))


def _dec_scan(p: Any) -> CacheResult:
    return [SegmentEntries(s, tuple(Entry(*t) for t in es)) for s, es in p]


def _dec_bucket(p: Any) -> CacheResult:
    if p is None:
        return None
    key, values, version, created = p
    return MultimapEntry(key, tuple(values), version, created)


def _dec_counter(p: Any) -> CacheResult:
    return CounterResult(CounterStatus(p[0]), p[1])


def _dec_counter_config(p: Any) -> CacheResult:
    return None if p is None else counter_config_from_wire(p)


def _dec_names(p: Any) -> CacheResult:
    return [str(name) for name in p]


RESULT_DECODERS: Final[dict[int, Callable[[Any], CacheResult]]] = {
    OP_MM_GET: _dec_bucket, OP_MM_PUT: _dec_plain, OP_MM_REMOVE_KEY: _dec_plain,
    OP_MM_REMOVE_ENTRY: _dec_plain,
    OP_MM_CONTAINS_KEY: _dec_plain, OP_MM_CONTAINS_ENTRY: _dec_plain, OP_MM_CONTAINS_VALUE: _dec_plain,
    OP_MM_SIZE: _dec_plain,
    OP_COUNTER_CREATE: _dec_plain, OP_COUNTER_CONFIG: _dec_counter_config, OP_COUNTER_DEFINED: _dec_plain,
    OP_COUNTER_GET: _dec_counter, OP_COUNTER_ADD: _dec_counter, OP_COUNTER_RESET: _dec_counter,
    OP_COUNTER_CAS: _dec_counter, OP_COUNTER_SET: _dec_counter, OP_COUNTER_REMOVE: _dec_counter,
    OP_COUNTER_NAMES: _dec_names,
    OP_GET: _dec_entry, OP_GET_VALUE: _dec_plain, OP_CONTAINS: _dec_plain,
    OP_PUT: _dec_write, OP_PUT_IF_ABSENT: _dec_write,
    OP_REPLACE: _dec_write, OP_REPLACE_IF: _dec_write, OP_REMOVE: _dec_write, OP_REMOVE_IF: _dec_write,
    OP_PUT_ALL: _dec_plain, OP_GET_ALL: _dec_get_all, OP_CLEAR: _dec_plain, OP_SIZE: _dec_plain,
    OP_STATS: _dec_stats, OP_SCAN: _dec_scan, OP_DEFINE_CACHE: _dec_plain, OP_DROP_CACHE: _dec_plain,
    OP_OPEN: _dec_plain, OP_NOTICE: _dec_plain,
}


def error_to_wire(e: BaseException) -> tuple[object, ...]:
    cache = getattr(e, "cache", "")
    code = getattr(e, "hotrod_status", 0x85)
    message = e.message if isinstance(e, GridError) else str(e)
    return (code, type(e).__name__, message, cache if isinstance(cache, str) else "")


_LOCAL_ERRORS: Final[dict[str, Callable[[str], GridError]]] = {
    "InvalidRequestError": InvalidRequestError,
    "ShardUnavailableError": ShardUnavailableError,
    "ServerStoppingError": ServerStoppingError,
}


def error_from_wire(p: Any) -> GridError:
    """Rebuild a shard's error as the local class when we have one, else boxed."""
    try:
        code, kind, message, cache = p
        kind, message, cache = str(kind), str(message), str(cache)
    except (TypeError, ValueError):
        return RemoteShardError("ProtocolViolation", f"malformed error payload {p!r}")
    if kind == "CacheNotFoundError":
        return CacheNotFoundError(cache)
    if kind == "CacheExistsError":
        return CacheExistsError(cache)
    make = _LOCAL_ERRORS.get(kind)
    if make is not None:
        return make(message)
    return RemoteShardError(kind, message, code if isinstance(code, int) else 0x85)


# ---------------------------------------------------------------- shard side: items in, replies out


# An Entry is a NamedTuple in field order: msgpack sends it as the array entry_to_wire makes.


def _r_get(s: ShardStore, c: str, it: Item, now: int) -> object:
    return s.get(c, it[3], now)


def _r_get_value(s: ShardStore, c: str, it: Item, now: int) -> object:
    return s.get_value(c, it[3], now)


def _wr(r: WriteOutcome) -> object:
    return r


def _r_contains(s: ShardStore, c: str, it: Item, now: int) -> object:
    return s.contains_key(c, it[3], now)


def _r_put(s: ShardStore, c: str, it: Item, now: int) -> object:
    if len(it) > 8 and not it[8]:
        # The previous entry is not wanted: ship only whether there was one (True), which
        # is all the shard's events need (created vs modified).
        done, replaced, version = s.put_replacing(c, it[3], it[4], it[5], it[6], it[7], now)
        return (done, True if replaced else None, version)
    return _wr(s.put(c, it[3], it[4], it[5], it[6], it[7], now))


def _r_put_if_absent(s: ShardStore, c: str, it: Item, now: int) -> object:
    return _wr(s.put_if_absent(c, it[3], it[4], it[5], it[6], it[7], now))


def _r_replace(s: ShardStore, c: str, it: Item, now: int) -> object:
    return _wr(s.replace(c, it[3], it[4], it[5], it[6], it[7], now))


def _r_replace_if(s: ShardStore, c: str, it: Item, now: int) -> object:
    return _wr(s.replace_if_unmodified(c, it[3], it[4], it[5], it[6], it[7], it[8], now))


def _r_remove(s: ShardStore, c: str, it: Item, now: int) -> object:
    return _wr(s.remove(c, it[3], now))


def _r_remove_if(s: ShardStore, c: str, it: Item, now: int) -> object:
    return _wr(s.remove_if_unmodified(c, it[3], it[4], now))


def _r_put_all(s: ShardStore, c: str, it: Item, now: int) -> object:
    s.put_all(c, it[3], it[4], it[5], it[6], now)
    return None


def _r_get_all(s: ShardStore, c: str, it: Item, now: int) -> object:
    return [entry_to_wire(e) for e in s.get_all(c, it[3], now).values()]


def _r_clear(s: ShardStore, c: str, it: Item, now: int) -> object:
    s.clear(c)
    return None


def _r_size(s: ShardStore, c: str, it: Item, now: int) -> object:
    return s.size(c, now)


def _r_stats(s: ShardStore, c: str, it: Item, now: int) -> object:
    st = s.stats(c, now)
    return (
        st.time_since_start_s, st.current_entries, st.stores, st.retrievals, st.hits, st.misses,
        st.remove_hits, st.remove_misses, st.evictions, st.extra,
    )


def _r_scan(s: ShardStore, c: str, it: Item, now: int) -> object:
    return [
        (se.segment, [entry_to_wire(e) for e in se.entries])
        for se in s.scan_segments(c, it[3], now)
    ]


def _r_define(s: ShardStore, c: str, it: Item, now: int) -> object:
    s.define_cache(settings_from_item(it))
    return None


def _r_drop(s: ShardStore, c: str, it: Item, now: int) -> object:
    s.drop_cache(c)
    return None


def _r_mm_get(s: ShardStore, c: str, it: Item, now: int) -> object:
    found = s.multimap_get(c, it[3])
    return None if found is None else (found.key, found.values, found.version, found.created_ms)


def _r_mm_put(s: ShardStore, c: str, it: Item, now: int) -> object:
    return s.multimap_put(c, it[3], it[4], bool(it[5]), now)


def _r_mm_remove_key(s: ShardStore, c: str, it: Item, now: int) -> object:
    return s.multimap_remove_key(c, it[3])


def _r_mm_remove_entry(s: ShardStore, c: str, it: Item, now: int) -> object:
    return s.multimap_remove_entry(c, it[3], it[4], bool(it[5]), now)


def _r_mm_contains_key(s: ShardStore, c: str, it: Item, now: int) -> object:
    return s.multimap_contains_key(c, it[3])


def _r_mm_contains_entry(s: ShardStore, c: str, it: Item, now: int) -> object:
    return s.multimap_contains_entry(c, it[3], it[4])


def _r_mm_contains_value(s: ShardStore, c: str, it: Item, now: int) -> object:
    return s.multimap_contains_value(c, it[3])


def _r_mm_size(s: ShardStore, c: str, it: Item, now: int) -> object:
    return s.multimap_size(c)


def _counter_out(r: CounterResult) -> object:
    return (int(r.status), r.value)


def _r_counter_create(s: ShardStore, c: str, it: Item, now: int) -> object:
    return s.counter_create(str(it[3]), counter_config_from_wire(it[4]))


def _r_counter_config(s: ShardStore, c: str, it: Item, now: int) -> object:
    config = s.counter_config(it[3])
    return None if config is None else counter_config_to_wire(config)


def _r_counter_defined(s: ShardStore, c: str, it: Item, now: int) -> object:
    return s.counter_defined(it[3])


def _r_counter_get(s: ShardStore, c: str, it: Item, now: int) -> object:
    return _counter_out(s.counter_get(it[3]))


def _r_counter_add(s: ShardStore, c: str, it: Item, now: int) -> object:
    return _counter_out(s.counter_add(it[3], int(it[4])))


def _r_counter_reset(s: ShardStore, c: str, it: Item, now: int) -> object:
    return _counter_out(s.counter_reset(it[3]))


def _r_counter_cas(s: ShardStore, c: str, it: Item, now: int) -> object:
    return _counter_out(s.counter_compare_and_swap(it[3], int(it[4]), int(it[5])))


def _r_counter_set(s: ShardStore, c: str, it: Item, now: int) -> object:
    return _counter_out(s.counter_get_and_set(it[3], int(it[4])))


def _r_counter_remove(s: ShardStore, c: str, it: Item, now: int) -> object:
    return _counter_out(s.counter_remove(it[3]))


def _r_counter_names(s: ShardStore, c: str, it: Item, now: int) -> object:
    return s.counter_names()


Handler = Callable[[ShardStore, str, Item, int], object]

SHARD_HANDLERS: Final[dict[int, Handler]] = {
    OP_MM_GET: _r_mm_get, OP_MM_PUT: _r_mm_put, OP_MM_REMOVE_KEY: _r_mm_remove_key,
    OP_MM_REMOVE_ENTRY: _r_mm_remove_entry, OP_MM_CONTAINS_KEY: _r_mm_contains_key,
    OP_MM_CONTAINS_ENTRY: _r_mm_contains_entry, OP_MM_CONTAINS_VALUE: _r_mm_contains_value,
    OP_MM_SIZE: _r_mm_size,
    OP_COUNTER_CREATE: _r_counter_create, OP_COUNTER_CONFIG: _r_counter_config,
    OP_COUNTER_DEFINED: _r_counter_defined, OP_COUNTER_GET: _r_counter_get, OP_COUNTER_ADD: _r_counter_add,
    OP_COUNTER_RESET: _r_counter_reset, OP_COUNTER_CAS: _r_counter_cas, OP_COUNTER_SET: _r_counter_set,
    OP_COUNTER_REMOVE: _r_counter_remove, OP_COUNTER_NAMES: _r_counter_names,
    OP_GET: _r_get, OP_GET_VALUE: _r_get_value, OP_CONTAINS: _r_contains,
    OP_PUT: _r_put, OP_PUT_IF_ABSENT: _r_put_if_absent,
    OP_REPLACE: _r_replace, OP_REPLACE_IF: _r_replace_if, OP_REMOVE: _r_remove, OP_REMOVE_IF: _r_remove_if,
    OP_PUT_ALL: _r_put_all, OP_GET_ALL: _r_get_all, OP_CLEAR: _r_clear, OP_SIZE: _r_size,
    OP_STATS: _r_stats, OP_SCAN: _r_scan, OP_DEFINE_CACHE: _r_define, OP_DROP_CACHE: _r_drop,
}


def execute_items(
    store: ShardStore,
    items: Sequence[Item],
    now: int,
    out: list[object],
    handlers: Mapping[int, Handler] = SHARD_HANDLERS,
) -> None:
    """Run every request item in order, appending ``rid, status, payload`` to ``out``.

    One failing item never stops the others: its error becomes its reply. ``handlers``:
    the shard process passes SHARD_HANDLERS plus its per-parent control handlers.
    """
    for it in items:
        rid: object = None
        try:
            rid = it[0]
            out += (rid, STATUS_OK, handlers[it[2]](store, it[1], it, now))
        except GridError as e:
            out += (rid, STATUS_ERROR, error_to_wire(e))
        except Exception as e:  # a malformed item or a bug: answer it, keep serving the rest
            log.exception("shard %d: request item %r failed", store.shard_index, it[:3])
            out += (rid, STATUS_ERROR, error_to_wire(e))


# ---------------------------------------------------------------- shard side: client-listener events

_WRITE_TAGS: Final = frozenset({OP_PUT, OP_PUT_IF_ABSENT, OP_REPLACE, OP_REPLACE_IF})
_REMOVE_TAGS: Final = frozenset({OP_REMOVE, OP_REMOVE_IF})
EVENT_TAGS: Final = _WRITE_TAGS | _REMOVE_TAGS | {OP_PUT_ALL}


def _put_all_with_events(store: ShardStore, cache: str, it: Item, now: int, events: list[object]) -> object:
    """PutAll of a watched cache, key by key, so each event says created or modified, with its version.

    Same effect on the store as ``put_all`` (which is a lookup and a write per key too).
    """
    _, _, _, entries, lifespan, max_idle, media_type = it
    put = store.put
    for key, value in entries:
        outcome = put(cache, key, value, lifespan, max_idle, media_type, now)
        events += (
            cache, EVENT_CREATED if outcome[1] is None else EVENT_MODIFIED, key,
            outcome[2] if len(outcome) > 2 else 0,
        )
    return None


def execute_items_with_events(
    store: ShardStore,
    items: Sequence[Item],
    now: int,
    out: list[object],
    handlers: Mapping[int, Handler],
    watched: Container[str],
    events: list[object],
) -> None:
    """:func:`execute_items`, plus the events of successful writes to ``watched`` caches.

    Appends ``cache, kind, key, version`` to ``events`` (versions are 0 for removals).
    The shard calls this only while some parent watches a cache, so a shard nobody
    watches pays nothing; here the price is one set lookup per write.
    """
    event_tags = EVENT_TAGS
    for it in items:
        rid: object = None
        try:
            rid = it[0]
            tag = it[2]
            cache = it[1]
            if tag in event_tags and cache in watched:
                if tag == OP_PUT_ALL:
                    payload = _put_all_with_events(store, cache, it, now, events)
                else:
                    payload = handlers[tag](store, cache, it, now)
                    outcome: Any = payload
                    if outcome[0]:  # done: (True, previous, version) / (True, previous)
                        if tag in _REMOVE_TAGS:
                            events += (cache, EVENT_REMOVED, it[3], 0)
                        else:
                            kind = EVENT_CREATED if outcome[1] is None else EVENT_MODIFIED
                            events += (cache, kind, it[3], outcome[2] if len(outcome) > 2 else 0)
            else:
                payload = handlers[tag](store, cache, it, now)
            out += (rid, STATUS_OK, payload)
        except GridError as e:
            out += (rid, STATUS_ERROR, error_to_wire(e))
        except Exception as e:  # a malformed item or a bug: answer it, keep serving the rest
            log.exception("shard %d: request item %r failed", store.shard_index, it[:3])
            out += (rid, STATUS_ERROR, error_to_wire(e))
