"""Cache events for client listeners (Hot Rod ADD_CLIENT_LISTENER).

Writes are observed where they are decided. With shard processes, the shards decide:
the :class:`EventHub` tells the router (``on_watch``) when a cache gets its first
subscriber or loses its last, the router asks every shard for that cache's events, and
the shards send them -- for writes made through *any* process sharing them -- to be
published here (see ``ShardRouter.serve_events``). With the in-process store
(``--shards 0``), :class:`NotifyingCacheService` wraps the cache service every front-end
uses and after a batch turns the *successful* writes of caches that have listeners into
events (created / modified / removed). A cache nobody listens to costs nothing either way.

Each subscription has a bounded queue. A listener that cannot keep up is dropped (its
connection is told by the closed channel and logs it) rather than slowing every writer
down or growing memory without bound.

``expired`` events come from the shards too: an entry that a read meets expired, or that
the periodic sweep (every second) drops, is announced to the caches' watchers. The
in-process store (``--shards 0``) sends none.
Events are asynchronous, as Infinispan's are: an event may reach a listener before or
after the reply to the write that caused it.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import trio

from gridactor.cache.api import (
    CacheOp,
    CacheResult,
    CacheService,
    CacheSettings,
    ContainsKey,
    Put,
    PutAll,
    PutIfAbsent,
    Remove,
    RemoveIfUnmodified,
    Replace,
    ReplaceIfUnmodified,
    WriteResult,
)
from gridactor.errors import GridError

log = logging.getLogger("gridactor.events")

_WRITES = (Put, PutIfAbsent, Replace, ReplaceIfUnmodified)
_REMOVES = (Remove, RemoveIfUnmodified)


class EventKind(enum.IntEnum):
    # Values are the Hot Rod event opcodes.
    CREATED = 0x60
    MODIFIED = 0x61
    REMOVED = 0x62
    EXPIRED = 0x63

    @property
    def interest(self) -> int:
        return 1 << (self - EventKind.CREATED)


@dataclass(frozen=True, slots=True)
class CacheEvent:
    cache: str
    kind: EventKind
    key: bytes
    version: int = 0


class Subscription:
    def __init__(self, hub: EventHub, cache: str, size: int) -> None:
        self.hub = hub
        self.cache = cache
        self.send, self.receive = trio.open_memory_channel[CacheEvent](size)

    def close(self) -> None:
        self.hub.unsubscribe(self)


class EventHub:
    def __init__(self, queue_size: int = 10000) -> None:
        self.queue_size = queue_size
        self._by_cache: dict[str, list[Subscription]] = {}
        # Called with (cache, True) on a cache's first subscription and (cache, False)
        # when its last one goes: the shard router watches exactly the listened caches.
        self.on_watch: Callable[[str, bool], None] | None = None

    def listened(self, cache: str) -> bool:
        return cache in self._by_cache

    def watched_caches(self) -> list[str]:
        return sorted(self._by_cache)

    def subscribe(self, cache: str) -> Subscription:
        subscription = Subscription(self, cache, self.queue_size)
        subscribers = self._by_cache.setdefault(cache, [])
        subscribers.append(subscription)
        if len(subscribers) == 1 and self.on_watch is not None:
            self.on_watch(cache, True)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._by_cache.get(subscription.cache)
        if subscribers and subscription in subscribers:
            subscribers.remove(subscription)
            if not subscribers:
                del self._by_cache[subscription.cache]
                if self.on_watch is not None:
                    self.on_watch(subscription.cache, False)
        subscription.send.close()

    def publish(self, events: Sequence[CacheEvent]) -> None:
        for event in events:
            for subscription in list(self._by_cache.get(event.cache, ())):
                try:
                    subscription.send.send_nowait(event)
                except trio.WouldBlock:
                    log.warning(
                        "a listener of cache '%s' fell behind by %d events: dropped",
                        event.cache,
                        self.queue_size,
                    )
                    self.unsubscribe(subscription)
                except trio.BrokenResourceError:
                    self.unsubscribe(subscription)


class NotifyingCacheService:
    """A CacheService that also publishes the events of successful writes."""

    def __init__(self, inner: CacheService, hub: EventHub) -> None:
        self.inner = inner
        self.hub = hub

    def cache_names(self) -> list[str]:
        return self.inner.cache_names()

    def default_cache(self) -> str | None:
        return self.inner.default_cache()

    def settings(self, cache: str) -> CacheSettings:
        return self.inner.settings(cache)

    async def create_cache(self, settings: CacheSettings) -> None:
        await self.inner.create_cache(settings)

    async def remove_cache(self, name: str) -> None:
        await self.inner.remove_cache(name)

    async def execute(self, cache: str, ops: Sequence[CacheOp]) -> list[CacheResult | GridError]:
        if not self.hub._by_cache:
            return await self.inner.execute(cache, ops)
        batch = [(cache, op) for op in ops]
        existed = await self._before_put_all(batch)
        results = await self.inner.execute(cache, ops)
        self._notify(batch, results, existed)
        return results

    async def execute_many(self, batch: Sequence[tuple[str, CacheOp]]) -> list[CacheResult | GridError]:
        if not self.hub._by_cache:
            return await self.inner.execute_many(batch)
        existed = await self._before_put_all(batch)
        results = await self.inner.execute_many(batch)
        self._notify(batch, results, existed)
        return results

    def _listened(self, cache: str) -> str | None:
        name = cache or self.inner.default_cache() or ""
        return name if self.hub.listened(name) else None

    async def _before_put_all(self, batch: Sequence[tuple[str, CacheOp]]) -> set[tuple[str, bytes]]:
        """Which keys of listened PutAlls exist already (created vs modified events)."""
        probes = [
            (cache, ContainsKey(key))
            for cache, op in batch
            if isinstance(op, PutAll) and self._listened(cache) is not None
            for key, _ in op.entries
        ]
        if not probes:
            return set()
        found = await self.inner.execute_many(probes)
        return {
            (self._listened(cache) or "", probe.key)
            for (cache, probe), present in zip(probes, found, strict=True)
            if isinstance(probe, ContainsKey) and present is True
        }

    def _notify(
        self,
        batch: Sequence[tuple[str, CacheOp]],
        results: Sequence[object],
        existed: set[tuple[str, bytes]],
    ) -> None:
        events: list[CacheEvent] = []
        for (cache, op), result in zip(batch, results, strict=True):
            name = self._listened(cache)
            if name is None:
                continue
            if isinstance(op, _WRITES) and isinstance(result, WriteResult) and result.done:
                kind = EventKind.CREATED if result.previous is None else EventKind.MODIFIED
                events.append(CacheEvent(name, kind, op.key, result.version))
            elif isinstance(op, _REMOVES) and isinstance(result, WriteResult) and result.done:
                events.append(CacheEvent(name, EventKind.REMOVED, op.key))
            elif isinstance(op, PutAll) and not isinstance(result, GridError):
                # PutAll reports no versions: its events carry 0.
                events.extend(
                    CacheEvent(name, EventKind.MODIFIED if (name, key) in existed else EventKind.CREATED, key)
                    for key, _ in op.entries
                )
        if events:
            self.hub.publish(events)
