"""The parent side of the shard IPC: :class:`ShardRouter` implements ``CacheService``.

Theory of operation
-------------------
A key lives in segment ``segment_of(key)``, owned by shard ``segment % shard_count``.
``execute`` turns a caller's batch into request items, appends them to the outbox of
each shard they touch and registers one *call* (results list + remaining count + one
``trio.Event``). Then the caller waits **once** for its whole batch.

Per shard, a :class:`ShardLink` runs two tasks (started by the pool's supervisor):

* the writer parks until an outbox is non-empty, then sends *everything* queued -- from
  every caller that ran since the last flush -- as one frame with one ``send``;
* the reader receives, decodes every complete reply frame, resolves each reply by its
  request id into its call, and sets the call's event when its last part arrives.

So a batch of N ops on one shard costs the caller one wake-up and the shard one frame,
and concurrent callers share frames too. Whole-cache ops (Clear, Size, Stats, scans of
all segments) and multi-key ops (PutAll, GetAll) are split per shard as *parts*; the
caller merges the parts after its single wake-up, outside the reader's loop.

When a shard link dies, every request in flight on it fails at once with
``ShardUnavailableError`` (or ``ServerStoppingError`` on shutdown): nobody hangs. Until
the supervisor attaches a new link, requests for that shard fail immediately the same way.

Backpressure: a link accepts at most ``max_pending`` requests in flight; callers beyond
that wait (before sending anything) until replies drain it.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable, Sequence
from typing import Any, Final

import trio

from gridactor.cache.api import (
    COUNTER_OPS,
    SEGMENTS,
    CacheOp,
    CacheResult,
    CacheSettings,
    CacheStatistics,
    ContainsKey,
    CounterNames,
    Entry,
    Get,
    GetAll,
    MultimapContainsEntry,
    MultimapContainsKey,
    MultimapGet,
    MultimapPut,
    MultimapRemoveEntry,
    MultimapRemoveKey,
    Put,
    PutAll,
    PutIfAbsent,
    Remove,
    RemoveIfUnmodified,
    Replace,
    ReplaceIfUnmodified,
    ScanSegments,
    SegmentEntries,
    segment_of,
)
from gridactor.cache.messages import (
    MSG_REQUESTS,
    OP_COUNTER_NAMES,
    OP_DEFINE_CACHE,
    OP_DROP_CACHE,
    OP_GET_ALL,
    OP_MM_CONTAINS_VALUE,
    OP_MM_SIZE,
    OP_PUT_ALL,
    OP_SCAN,
    OP_SIZE,
    OP_STATS,
    OP_TAGS,
    RESULT_DECODERS,
    STATUS_OK,
    DefineCache,
    DropCache,
    Item,
    ProtocolViolation,
    RemoteShardError,
    ReplyBatch,
    encode_op,
    error_from_wire,
    parse_message,
)
from gridactor.errors import (
    CacheExistsError,
    CacheNotFoundError,
    GridError,
    InvalidRequestError,
    ShardUnavailableError,
)
from gridactor.runtime.framing import FrameDecoder, encode

log = logging.getLogger("gridactor.cache.router")

RECV_SIZE: Final = 1 << 20
DEFAULT_MAX_PENDING: Final = 65536

_SINGLE_KEY: Final = frozenset({Get, ContainsKey, Put, PutIfAbsent, Replace, ReplaceIfUnmodified, Remove,
                                RemoveIfUnmodified, MultimapGet, MultimapPut, MultimapRemoveKey,
                                MultimapRemoveEntry, MultimapContainsKey, MultimapContainsEntry})
# Counter ops on one counter: routed by the UTF-8 bytes of the name, like a key.
_SINGLE_COUNTER: Final = COUNTER_OPS - {CounterNames}


class ShardLostError(GridError):
    """The link to a shard process broke (EOF, reset, garbage). Internal to the pool."""


class _Call:
    """One caller's batch in flight."""

    __slots__ = ("event", "parts", "remaining", "results")

    def __init__(self, n: int) -> None:
        self.results: list[CacheResult | GridError] = [None] * n
        self.remaining = 0
        self.event: trio.Event | None = None
        # op index -> (op tag, replies so far), for ops split over several shards
        self.parts: dict[int, tuple[int, list[CacheResult | GridError]]] | None = None

    def resolve(self, index: int, fan: bool, value: CacheResult | GridError) -> None:
        if fan:
            assert self.parts is not None
            self.parts[index][1].append(value)
        else:
            self.results[index] = value
        self.remaining -= 1
        if self.remaining == 0 and self.event is not None:
            self.event.set()


_Pending = tuple[_Call, int, int, bool]  # call, op index, op tag, is-a-part


class ShardLink:
    """The parent's end of one shard process's socket, with its outbox and in-flight table."""

    def __init__(self, index: int, sock: socket.socket, pid: int, max_pending: int) -> None:
        self.index = index
        self.sock = sock
        self.pid = pid
        self.max_pending = max_pending
        self.alive = True
        self.pending: dict[int, _Pending] = {}
        self.outbox: list[Item] = []
        self.decoder = FrameDecoder()
        self._next_rid = 0
        self._writer_lot = trio.lowlevel.ParkingLot()
        self._space_lot = trio.lowlevel.ParkingLot()
        self.frames_sent = 0
        self.frames_received = 0
        self.lost: BaseException | None = None  # why the link ended, set by the supervisor
        self.mid_frame = False  # a send was interrupted: the stream may end inside a frame

    def enqueue(self, call: _Call, index: int, tag: int, fan: bool, cache: str, op: CacheOp) -> None:
        rid = self._next_rid
        self._next_rid = rid + 1
        self.pending[rid] = (call, index, tag, fan)
        call.remaining += 1
        self.outbox.append(encode_op(rid, cache, op))

    def enqueue_item(
        self, call: _Call, index: int, tag: int, fan: bool, make: DefineCache | DropCache
    ) -> None:
        rid = self._next_rid
        self._next_rid = rid + 1
        self.pending[rid] = (call, index, tag, fan)
        call.remaining += 1
        self.outbox.append(make.to_item(rid))

    def wake_writer(self) -> None:
        if self._writer_lot:
            self._writer_lot.unpark()

    async def wait_for_space(self) -> None:
        while self.alive and len(self.pending) >= self.max_pending:
            await self._space_lot.park()

    def fail(self, error: GridError) -> None:
        """Fail everything in flight; later requests see ``alive=False`` and fail at once."""
        self.alive = False
        pending, self.pending = self.pending, {}
        self.outbox = []
        for call, index, _tag, fan in pending.values():
            call.resolve(index, fan, error)
        self._space_lot.unpark_all()
        self._writer_lot.unpark_all()

    # ------------------------------------------------------------ I/O tasks (run by the pool)

    async def receive_some(self) -> bytes:
        """Bytes from the shard; ``b""`` at EOF. Tries the syscall before waiting."""
        sock = self.sock
        while True:
            try:
                return sock.recv(RECV_SIZE)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(sock)

    async def send_all(self, data: bytes) -> None:
        sock = self.sock
        view = memoryview(data)
        self.mid_frame = True
        while view:
            try:
                sent = sock.send(view)
            except BlockingIOError:
                await trio.lowlevel.wait_writable(sock)
                continue
            view = view[sent:]
        self.mid_frame = False

    async def run_writer(self) -> None:
        """Flush the outbox, all of it in one frame, whenever it is non-empty. Never returns."""
        while True:
            if not self.outbox:
                await self._writer_lot.park()
                continue
            items, self.outbox = self.outbox, []
            data = encode((MSG_REQUESTS, items))
            self.frames_sent += 1
            try:
                await self.send_all(data)
            except OSError as e:
                raise ShardLostError(f"shard {self.index}: send failed: {e}") from e

    async def run_reader(self) -> None:
        """Resolve replies until the link breaks; raises ShardLostError (never returns)."""
        decoder = self.decoder
        while True:
            try:
                data = await self.receive_some()
            except OSError as e:
                raise ShardLostError(f"shard {self.index}: receive failed: {e}") from e
            if not data:
                raise ShardLostError(f"shard {self.index} (pid {self.pid}) closed its IPC channel")
            decoder.receive_data(data)
            try:
                for obj in decoder.next_frames():
                    msg = parse_message(obj)
                    if not isinstance(msg, ReplyBatch):
                        raise ProtocolViolation(f"unexpected {type(msg).__name__} from shard")
                    self.frames_received += 1
                    self._resolve(msg.flat)
            except GridError as e:  # FrameError / ProtocolViolation: the stream is unusable
                raise ShardLostError(f"shard {self.index}: {e.message}") from e
            if self._space_lot and len(self.pending) < self.max_pending:
                self._space_lot.unpark_all()

    def _resolve(self, flat: Sequence[Any]) -> None:
        pop = self.pending.pop
        decoders = RESULT_DECODERS
        for j in range(0, len(flat), 3):
            rec = pop(flat[j], None)
            if rec is None:
                log.warning("shard %d: reply for unknown request id %r", self.index, flat[j])
                continue
            call, index, tag, fan = rec
            value: CacheResult | GridError
            try:
                if flat[j + 1] == STATUS_OK:
                    value = decoders[tag](flat[j + 2])
                else:
                    value = error_from_wire(flat[j + 2])
            except Exception as e:  # a malformed payload fails its own op only
                value = RemoteShardError("ProtocolViolation", f"undecodable reply: {e!r}")
            call.resolve(index, fan, value)


def _merge(tag: int, parts: list[CacheResult | GridError]) -> CacheResult | GridError:
    for p in parts:
        if isinstance(p, GridError):
            return p
    if tag in (OP_SIZE, OP_MM_SIZE):
        return sum(p for p in parts if isinstance(p, int))
    if tag == OP_MM_CONTAINS_VALUE:
        return any(p is True for p in parts)
    if tag == OP_COUNTER_NAMES:
        return sorted(name for p in parts if isinstance(p, list) for name in p if isinstance(name, str))
    if tag == OP_GET_ALL:
        out: dict[bytes, Entry] = {}
        for p in parts:
            if isinstance(p, dict):
                out.update(p)
        return out
    if tag == OP_SCAN:
        segs = [se for p in parts if isinstance(p, list) for se in p if isinstance(se, SegmentEntries)]
        segs.sort(key=lambda se: se.segment)
        return segs
    if tag == OP_STATS:
        return _sum_stats([p for p in parts if isinstance(p, CacheStatistics)])
    return None  # Clear, PutAll, define/drop: nothing to merge


def _sum_stats(stats: list[CacheStatistics]) -> CacheStatistics:
    extra: dict[str, int] = {}
    for s in stats:
        for k, v in s.extra.items():
            extra[k] = extra.get(k, 0) + v
    return CacheStatistics(
        time_since_start_s=max((s.time_since_start_s for s in stats), default=0),
        current_entries=sum(s.current_entries for s in stats),
        stores=sum(s.stores for s in stats),
        retrievals=sum(s.retrievals for s in stats),
        hits=sum(s.hits for s in stats),
        misses=sum(s.misses for s in stats),
        remove_hits=sum(s.remove_hits for s in stats),
        remove_misses=sum(s.remove_misses for s in stats),
        evictions=sum(s.evictions for s in stats),
        extra=extra,
    )


class ShardRouter:
    """``CacheService`` over shard processes. Created and fed links by ``ShardPool``."""

    def __init__(
        self,
        caches: Iterable[CacheSettings],
        default_cache: str | None,
        shard_count: int,
        *,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        if shard_count < 1:
            raise ValueError("a router needs at least one shard")
        self._caches: dict[str, CacheSettings] = {}
        for s in caches:
            if s.name in self._caches:
                raise CacheExistsError(s.name)
            self._caches[s.name] = s
        self._default = default_cache
        self.shard_count = shard_count
        self.max_pending = max_pending
        self._links: list[ShardLink | None] = [None] * shard_count
        self._down: list[GridError] = [
            ShardUnavailableError(f"shard {i} is not running") for i in range(shard_count)
        ]
        # Precomputed so the hot path is one crc32 and one list index.
        self._shard_of_segment = [s % shard_count for s in range(SEGMENTS)]

    # ------------------------------------------------------------ CacheService: metadata

    def cache_names(self) -> list[str]:
        return sorted(self._caches)

    def default_cache(self) -> str | None:
        return self._default

    def _resolve(self, cache: str) -> str:
        name = cache or self._default
        if name is None or name not in self._caches:
            raise CacheNotFoundError(cache)
        return name

    def settings(self, cache: str) -> CacheSettings:
        return self._caches[self._resolve(cache)]

    # ------------------------------------------------------------ links (called by the pool)

    def attach(self, index: int, sock: socket.socket, pid: int) -> tuple[ShardLink, _Call]:
        """Make a fresh link live and queue the definition of every current cache on it.

        Returns the link and the call that completes when those definitions are applied.
        Attaching and queueing happen without a checkpoint, so a concurrent create_cache
        either is in the snapshot or broadcasts to this link -- never neither.
        """
        link = ShardLink(index, sock, pid, self.max_pending)
        self._links[index] = link
        call = _Call(len(self._caches))
        call.event = trio.Event()
        for i, settings in enumerate(self._caches.values()):
            link.enqueue_item(call, i, OP_DEFINE_CACHE, False, DefineCache(settings))
        if call.remaining == 0:
            call.event.set()
        link.wake_writer()
        return link, call

    def detach(self, link: ShardLink, error: GridError) -> None:
        """Take a link out of service; its in-flight requests fail with ``error``."""
        if self._links[link.index] is link:
            self._links[link.index] = None
            self._down[link.index] = error
        link.fail(error)

    def links(self) -> list[ShardLink | None]:
        return list(self._links)

    def statistics(self) -> dict[str, object]:
        return {
            "shards": self.shard_count,
            "alive": [lk is not None and lk.alive for lk in self._links],
            "pending": [len(lk.pending) if lk else 0 for lk in self._links],
            "frames_sent": [lk.frames_sent if lk else 0 for lk in self._links],
        }

    # ------------------------------------------------------------ CacheService: operations

    async def execute(self, cache: str, ops: Sequence[CacheOp]) -> list[CacheResult | GridError]:
        name = self._resolve(cache)
        await self._wait_for_space()
        call = _Call(len(ops))
        for i, op in enumerate(ops):
            self._dispatch(call, i, name, op)
        return await self._finish(call)

    async def execute_many(self, batch: Sequence[tuple[str, CacheOp]]) -> list[CacheResult | GridError]:
        await self._wait_for_space()
        call = _Call(len(batch))
        for i, (cache, op) in enumerate(batch):
            if type(op) in COUNTER_OPS:  # container-wide: no cache to resolve
                self._dispatch(call, i, "", op)
                continue
            try:
                name = self._resolve(cache)
            except CacheNotFoundError as e:
                call.results[i] = e
                continue
            self._dispatch(call, i, name, op)
        return await self._finish(call)

    async def _wait_for_space(self) -> None:
        for link in self._links:
            if link is not None and len(link.pending) >= link.max_pending:
                await link.wait_for_space()

    def _dispatch(self, call: _Call, i: int, cache: str, op: CacheOp) -> None:
        t = type(op)
        if t in _SINGLE_KEY or t in _SINGLE_COUNTER:
            routing = op.key if t in _SINGLE_KEY else op.name.encode()  # type: ignore[union-attr]
            shard = self._shard_of_segment[segment_of(routing)]
            link = self._links[shard]
            if link is None or not link.alive:
                call.results[i] = self._down[shard]
                return
            link.enqueue(call, i, OP_TAGS[t], False, cache, op)
            link.wake_writer()
            return
        if isinstance(op, PutAll):
            by_shard: dict[int, list[tuple[bytes, bytes]]] = {}
            for kv in op.entries:
                by_shard.setdefault(self._shard_of_segment[segment_of(kv[0])], []).append(kv)
            lifespan, max_idle, media = op.lifespan_ms, op.max_idle_ms, op.media_type
            self._fan_out(call, i, cache, OP_PUT_ALL, {
                s: PutAll(tuple(kvs), lifespan, max_idle, media) for s, kvs in by_shard.items()
            })
        elif isinstance(op, GetAll):
            keys: dict[int, list[bytes]] = {}
            for k in op.keys:
                keys.setdefault(self._shard_of_segment[segment_of(k)], []).append(k)
            self._fan_out(call, i, cache, OP_GET_ALL, {s: GetAll(tuple(ks)) for s, ks in keys.items()})
        elif isinstance(op, ScanSegments):
            if op.segments:
                bad = [s for s in op.segments if not 0 <= s < SEGMENTS]
                if bad:
                    call.results[i] = InvalidRequestError(f"segment {bad[0]} out of range 0..{SEGMENTS - 1}")
                    return
                shards = {self._shard_of_segment[s] for s in op.segments}
            else:
                shards = set(range(self.shard_count))
            self._fan_out(call, i, cache, OP_SCAN, dict.fromkeys(shards, op))
        else:  # Clear, Size, Stats, MultimapSize, MultimapContainsValue, CounterNames: every shard
            tag = OP_TAGS[t]
            self._fan_out(call, i, cache, tag, dict.fromkeys(range(self.shard_count), op))

    def _fan_out(self, call: _Call, i: int, cache: str, tag: int, per_shard: dict[int, CacheOp]) -> None:
        if call.parts is None:
            call.parts = {}
        replies: list[CacheResult | GridError] = []
        call.parts[i] = (tag, replies)
        for shard, op in per_shard.items():
            link = self._links[shard]
            if link is None or not link.alive:
                replies.append(self._down[shard])
                continue
            link.enqueue(call, i, tag, True, cache, op)
            link.wake_writer()

    async def _finish(self, call: _Call) -> list[CacheResult | GridError]:
        if call.remaining:
            call.event = trio.Event()
            await call.event.wait()
        else:
            await trio.lowlevel.checkpoint()
        if call.parts:
            results = call.results
            for i, (tag, replies) in call.parts.items():
                results[i] = _merge(tag, replies)
        return call.results

    # ------------------------------------------------------------ CacheService: lifecycle

    async def create_cache(self, settings: CacheSettings) -> None:
        if settings.name in self._caches:
            raise CacheExistsError(settings.name)
        self._caches[settings.name] = settings
        await self._broadcast(OP_DEFINE_CACHE, DefineCache(settings))

    async def remove_cache(self, name: str) -> None:
        if name not in self._caches:
            raise CacheNotFoundError(name)
        del self._caches[name]
        await self._broadcast(OP_DROP_CACHE, DropCache(name))

    async def _broadcast(self, tag: int, msg: DefineCache | DropCache) -> None:
        # A shard that is down misses the message on purpose: its replacement is defined
        # from the router's table when it attaches.
        call = _Call(1)
        call.parts = {0: (tag, [])}
        for link in self._links:
            if link is not None and link.alive:
                link.enqueue_item(call, 0, tag, True, msg)
                link.wake_writer()
        await self._finish(call)
        assert call.parts is not None
        for r in call.parts[0][1]:
            if isinstance(r, GridError) and not isinstance(r, ShardUnavailableError | CacheExistsError):
                log.error("%s of cache %r failed on a shard: %s", type(msg).__name__, msg, r)
