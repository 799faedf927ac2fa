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

Several processes may share the shards (worker listener processes, see
:mod:`gridactor.cache.shared`): each has its own router. The *primary* router (the
pool's, in the main process) defines every cache on a (re)started shard and then opens
the shard to the others. Cache definitions stay the same everywhere because shard 0 is
the authority: ``create_cache`` / ``remove_cache`` are applied on shard 0 first (which
settles races between processes), then on the other shards, and shard 0 tells every
other router (CacheDefined / CacheDropped), which updates its local view; the primary
also passes them on to its other shards, so a shard it restarted meanwhile has them too.
A non-primary router takes shard 0's definitions whenever it (re)connects to it.

Client-listener events are decided in the shards: the router tells every shard which
caches this process watches (:meth:`ShardRouter.watch`, driven by the EventHub) and
hands the EventBatch messages it gets to ``on_events``. Nobody watching: no event traffic.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

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
    GetValue,
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
from gridactor.cache.events import CacheEvent, EventKind
from gridactor.cache.messages import (
    MSG_REQUESTS,
    OP_COUNTER_NAMES,
    OP_DEFINE_CACHE,
    OP_DROP_CACHE,
    OP_GET_ALL,
    OP_MM_CONTAINS_VALUE,
    OP_MM_SIZE,
    OP_NOTICE,
    OP_OPEN,
    OP_PUT_ALL,
    OP_SCAN,
    OP_SIZE,
    OP_STATS,
    OP_TAGS,
    RESULT_DECODERS,
    STATUS_OK,
    CacheDefined,
    CacheDefinitions,
    CacheDropped,
    ControlMessage,
    DefineCache,
    DropCache,
    EventBatch,
    Item,
    Notice,
    OpenToParents,
    ProtocolViolation,
    RemoteShardError,
    ReplyBatch,
    Watch,
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

if TYPE_CHECKING:
    from gridactor.cache.events import EventHub

log = logging.getLogger("gridactor.cache.router")

RECV_SIZE: Final = 1 << 20
DEFAULT_MAX_PENDING: Final = 65536

_SINGLE_KEY: Final = frozenset({Get, GetValue, ContainsKey, Put, PutIfAbsent, Replace, ReplaceIfUnmodified,
                                Remove,
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
ControlItem = DefineCache | DropCache | OpenToParents | Notice
_CONTROL_MESSAGES: Final = (EventBatch, CacheDefined, CacheDropped, Notice, CacheDefinitions)


def _unawaited_call() -> _Call:
    """A call nobody waits for (control items whose outcome only matters to the shard)."""
    call = _Call(1)
    call.parts = {0: (0, [])}
    return call


class ShardLink:
    """The parent's end of one shard process's socket, with its outbox and in-flight table."""

    def __init__(
        self,
        index: int,
        sock: socket.socket,
        pid: int,
        max_pending: int,
        decoder: FrameDecoder | None = None,
        on_control: Callable[[ShardLink, ControlMessage], None] | None = None,
    ) -> None:
        self.index = index
        self.sock = sock
        self.pid = pid
        self.max_pending = max_pending
        self.alive = True
        self.pending: dict[int, _Pending] = {}
        self.outbox: list[Item] = []
        self.messages: list[tuple[object, ...]] = []  # sent ahead of the next request frame
        self.decoder = decoder or FrameDecoder()
        self.on_control = on_control
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

    def enqueue_item(self, call: _Call, index: int, tag: int, fan: bool, make: ControlItem) -> None:
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
        self.messages = []
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
            if not self.outbox and not self.messages:
                await self._writer_lot.park()
                continue
            if self.outbox:
                items, self.outbox = self.outbox, []
                data = encode((MSG_REQUESTS, items))
                self.frames_sent += 1
            else:
                data = b""
            if self.messages:  # ahead of the requests: a watch applies to writes queued after it
                data = b"".join(encode(m) for m in self.messages) + data
                self.messages = []
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
                self.handle_frames(decoder.next_frames())
            except GridError as e:  # FrameError / ProtocolViolation: the stream is unusable
                raise ShardLostError(f"shard {self.index}: {e.message}") from e
            if self._space_lot and len(self.pending) < self.max_pending:
                self._space_lot.unpark_all()

    def handle_frames(self, frames: Iterable[object]) -> None:
        """Replies resolve their calls; events and notices go to ``on_control``."""
        for obj in frames:
            msg = parse_message(obj)
            if isinstance(msg, ReplyBatch):
                self.frames_received += 1
                self._resolve(msg.flat)
            elif self.on_control is not None and isinstance(msg, _CONTROL_MESSAGES):
                self.on_control(self, msg)
            else:
                raise ProtocolViolation(f"unexpected {type(msg).__name__} from shard")

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


async def until_lost(fn: Callable[[], Awaitable[None]], link: ShardLink, scope: trio.CancelScope) -> None:
    """Run one of a link's tasks; when it ends, record why in ``link.lost`` and cancel ``scope``.

    Each task of a link (reader, writer, process watcher) runs under this, so the cause
    reaches the supervisor as one plain exception rather than an exception group.
    """
    try:
        await fn()
    except (ShardLostError, OSError) as e:
        if link.lost is None:
            link.lost = e
    scope.cancel()


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


def events_from_wire(flat: Sequence[Any]) -> list[CacheEvent]:
    """The CacheEvents of an EventBatch. Raises ProtocolViolation on a malformed one."""
    try:
        events = [
            CacheEvent(flat[j], EventKind(flat[j + 1]), flat[j + 2], flat[j + 3])
            for j in range(0, len(flat), 4)
        ]
    except ValueError as e:
        raise ProtocolViolation(f"malformed event: {e}") from None
    for ev in events:
        if not (isinstance(ev.cache, str) and isinstance(ev.key, bytes) and isinstance(ev.version, int)):
            raise ProtocolViolation("malformed event: wrong field types")
    return events


class ShardRouter:
    """``CacheService`` over shard processes. Fed links by ``ShardPool`` (the *primary*
    router, in the main process) or by ``SharedShardClient`` (worker processes).

    Callbacks (set them before serving, or use :meth:`serve_events`):

    * ``on_events(events)``: client-listener events from the shards, for the caches this
      process watches (:meth:`watch`);
    * ``on_notice(notice)``: a :class:`Notice` another process sent with :meth:`broadcast_notice`.
    """

    def __init__(
        self,
        caches: Iterable[CacheSettings],
        default_cache: str | None,
        shard_count: int,
        *,
        max_pending: int = DEFAULT_MAX_PENDING,
        primary: bool = True,
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
        self.primary = primary
        self._watched: set[str] = set()
        self.on_events: Callable[[list[CacheEvent]], None] | None = None
        self.on_notice: Callable[[Notice], None] | None = None
        self.events_received = 0

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

    def attach(
        self,
        index: int,
        sock: socket.socket,
        pid: int,
        *,
        decoder: FrameDecoder | None = None,
        early_frames: Sequence[object] = (),
        definitions: CacheDefinitions | None = None,
    ) -> tuple[ShardLink, _Call]:
        """Make a fresh link live and queue what the shard must know on it.

        The primary router queues the definition of every current cache, then
        OpenToParents; every router re-sends its watches. A non-primary router takes
        ``definitions`` (shard 0's, from the handshake) as its view of the caches.
        ``decoder`` and ``early_frames``: what the handshake read past its own messages.

        Returns the link and the call that completes when those items are applied.
        Attaching and queueing happen without a checkpoint, so a concurrent create_cache
        either is in the snapshot or broadcasts to this link -- never neither.
        """
        link = ShardLink(index, sock, pid, self.max_pending, decoder, self._on_control)
        self._links[index] = link
        if definitions is not None and not self.primary:
            self._caches = {s.name: s for s in definitions.caches}
        if self.primary:
            call = _Call(len(self._caches) + 1)
            for i, settings in enumerate(self._caches.values()):
                link.enqueue_item(call, i, OP_DEFINE_CACHE, False, DefineCache(settings))
            link.enqueue_item(call, len(self._caches), OP_OPEN, False, OpenToParents())
        else:
            call = _Call(0)
        call.event = trio.Event()
        for cache in sorted(self._watched):
            link.messages.append(Watch(cache, True).to_wire())
        if call.remaining == 0:
            call.event.set()
        link.wake_writer()
        try:
            link.handle_frames(early_frames)
        except GridError as e:
            self.detach(link, ShardUnavailableError(f"shard {index}: {e.message}"))
            raise ShardLostError(f"shard {index}: {e.message}") from e
        return link, call

    def detach(self, link: ShardLink, error: GridError) -> None:
        """Take a link out of service; its in-flight requests fail with ``error``."""
        if self._links[link.index] is link:
            self._links[link.index] = None
            self._down[link.index] = error
        link.fail(error)

    def links(self) -> list[ShardLink | None]:
        return list(self._links)

    # ------------------------------------------------------------ events, notices, other processes' changes

    def watch(self, cache: str, on: bool) -> None:
        """Ask every shard for the events of ``cache`` (or to stop). Idempotent, synchronous.

        A shard restarted or reconnected later gets the current watches when attached.
        """
        if on == (cache in self._watched):
            return
        if on:
            self._watched.add(cache)
        else:
            self._watched.discard(cache)
        message = Watch(cache, on).to_wire()
        for link in self._links:
            if link is not None and link.alive:
                link.messages.append(message)
                link.wake_writer()

    def watched(self) -> list[str]:
        return sorted(self._watched)

    def serve_events(self, hub: EventHub) -> None:
        """Feed ``hub`` from the shards' events and watch what its subscribers listen to."""
        self.on_events = hub.publish
        hub.on_watch = self.watch
        for cache in hub.watched_caches():
            self.watch(cache, True)

    async def broadcast_notice(self, kind: str, payload: bytes = b"") -> None:
        """Send a :class:`Notice` to every *other* process sharing the shards (through shard 0).

        Returns once shard 0 has passed it on. Raises ShardUnavailableError when shard 0
        is down (then nobody got it).
        """
        result = await self._ask_first(OP_NOTICE, Notice(kind, payload))
        if isinstance(result, GridError):
            raise result

    def _on_control(self, link: ShardLink, msg: ControlMessage) -> None:
        """An unsolicited message from a shard (called by the link's reader)."""
        if isinstance(msg, EventBatch):
            events = events_from_wire(msg.flat)  # ProtocolViolation: the link is unusable
            self.events_received += len(events)
            if self.on_events is not None:
                try:
                    self.on_events(events)
                except Exception:
                    log.exception("delivering %d cache events failed", len(events))
        elif isinstance(msg, CacheDefined):
            self._caches[msg.settings.name] = msg.settings
            self._pass_on(link, OP_DEFINE_CACHE, DefineCache(msg.settings))
        elif isinstance(msg, CacheDropped):
            self._caches.pop(msg.name, None)
            self._pass_on(link, OP_DROP_CACHE, DropCache(msg.name))
        elif isinstance(msg, Notice):
            if self.on_notice is not None:
                try:
                    self.on_notice(msg)
                except Exception:
                    log.exception("handling notice %r failed", msg.kind)
        elif isinstance(msg, CacheDefinitions) and not self.primary and link.index == 0:
            self._caches = {s.name: s for s in msg.caches}

    def _pass_on(self, origin: ShardLink, tag: int, item: DefineCache | DropCache) -> None:
        """Primary only: another process changed a definition; make sure every shard has it.

        Its process does the same (an already applied change just fails on the shard);
        this covers a shard the pool restarted while that change was on its way.
        """
        if not self.primary:
            return
        for link in self._links:
            if link is not None and link is not origin and link.alive:
                link.enqueue_item(_unawaited_call(), 0, tag, True, item)
                link.wake_writer()

    def statistics(self) -> dict[str, object]:
        return {
            "primary": self.primary,
            "watched": sorted(self._watched),
            "events_received": self.events_received,
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
        first = self._links[0]
        result = await self._ask_first(OP_DEFINE_CACHE, DefineCache(settings))
        if isinstance(result, GridError) and not (self.primary and isinstance(result, ShardUnavailableError)):
            raise result  # shard 0 decides (another process may have created it just now)
        self._caches[settings.name] = settings
        await self._broadcast(OP_DEFINE_CACHE, DefineCache(settings), first)

    async def remove_cache(self, name: str) -> None:
        if name not in self._caches:
            raise CacheNotFoundError(name)
        first = self._links[0]
        result = await self._ask_first(OP_DROP_CACHE, DropCache(name))
        if isinstance(result, CacheNotFoundError):
            self._caches.pop(name, None)  # another process removed it; its notice is on the way
            raise result
        if isinstance(result, GridError) and not (self.primary and isinstance(result, ShardUnavailableError)):
            raise result
        self._caches.pop(name, None)
        await self._broadcast(OP_DROP_CACHE, DropCache(name), first)

    async def _ask_first(self, tag: int, item: ControlItem) -> CacheResult | GridError:
        """Send one control item to shard 0 and wait for its answer.

        When shard 0 is down: its ShardUnavailableError. The primary router may go on
        without it (the pool defines every cache of its view on the replacement); other
        routers may not (shard 0 is where the other processes learn about changes).
        """
        link = self._links[0]
        if link is None or not link.alive:
            return self._down[0]
        call = _Call(1)
        link.enqueue_item(call, 0, tag, False, item)
        link.wake_writer()
        await self._finish(call)
        return call.results[0]

    async def _broadcast(self, tag: int, msg: DefineCache | DropCache, skip: ShardLink | None) -> None:
        # A shard that is down misses the message on purpose: its replacement is defined
        # from the primary router's table when it attaches.
        call = _Call(1)
        call.parts = {0: (tag, [])}
        for link in self._links:
            if link is not None and link is not skip and link.alive:
                link.enqueue_item(call, 0, tag, True, msg)
                link.wake_writer()
        await self._finish(call)
        assert call.parts is not None
        for r in call.parts[0][1]:
            # Exists / not found: the primary router passed another process's change on first.
            if isinstance(r, GridError) and not isinstance(
                r, ShardUnavailableError | CacheExistsError | CacheNotFoundError
            ):
                log.error("%s of cache %r failed on a shard: %s", type(msg).__name__, msg, r)
