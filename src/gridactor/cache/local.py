"""A :class:`CacheService` that runs one :class:`ShardStore` inside the calling process.

No IPC and no extra tasks: used by protocol unit tests and by ``--shards 0``. Each batch
still costs one checkpoint so callers see the same scheduling behaviour as with the
real router (a batch is never instantaneous from trio's point of view).
"""

from __future__ import annotations

from collections.abc import Sequence

import trio

from gridactor.cache.api import COUNTER_OPS, CacheOp, CacheResult, CacheSettings
from gridactor.cache.store import Clock, ShardStore, wall_clock_ms
from gridactor.errors import CacheExistsError, CacheNotFoundError, GridError


class InProcessCacheService:
    """Every cache's entries in one in-process store (shard 0 of 1)."""

    def __init__(
        self,
        caches: Sequence[CacheSettings],
        default_cache: str | None = None,
        *,
        clock: Clock = wall_clock_ms,
    ) -> None:
        self._store = ShardStore(caches, clock=clock)
        self._default = default_cache
        self._clock = clock

    @property
    def store(self) -> ShardStore:
        """The underlying store (tests use it to purge or inspect)."""
        return self._store

    def cache_names(self) -> list[str]:
        return self._store.cache_names()

    def default_cache(self) -> str | None:
        return self._default

    def _resolve(self, cache: str) -> str:
        if cache:
            return cache
        if self._default is None:
            raise CacheNotFoundError("")
        return self._default

    def settings(self, cache: str) -> CacheSettings:
        name = self._resolve(cache)
        return self._store.settings(name)

    async def execute(self, cache: str, ops: Sequence[CacheOp]) -> list[CacheResult | GridError]:
        name = self._resolve(cache)
        if not self._store.has_cache(name):
            raise CacheNotFoundError(cache)
        await trio.lowlevel.checkpoint()
        return self._run([(name, op) for op in ops])

    async def execute_many(self, batch: Sequence[tuple[str, CacheOp]]) -> list[CacheResult | GridError]:
        await trio.lowlevel.checkpoint()
        return self._run(batch)

    def _run(self, batch: Sequence[tuple[str, CacheOp]]) -> list[CacheResult | GridError]:
        store = self._store
        now = self._clock()
        out: list[CacheResult | GridError] = []
        for cache, op in batch:
            try:
                # Counters are container-wide: no cache to resolve (see cache.api).
                name = "" if type(op) in COUNTER_OPS else self._resolve(cache)
                out.append(store.apply(name, op, now))
            except GridError as e:
                out.append(e)
        return out

    async def create_cache(self, settings: CacheSettings) -> None:
        await trio.lowlevel.checkpoint()
        if self._store.has_cache(settings.name):
            raise CacheExistsError(settings.name)
        self._store.define_cache(settings)

    async def remove_cache(self, name: str) -> None:
        await trio.lowlevel.checkpoint()
        self._store.drop_cache(name)
