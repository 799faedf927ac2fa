"""Real shard processes: every op through ShardPool/ShardRouter, crash recovery, clean shutdown."""

from __future__ import annotations

import os
import signal

import pytest
import trio
from tests.unit.cache.shard_helpers import alive, key_on

from gridactor.cache.api import (
    SEGMENTS,
    CacheService,
    CacheSettings,
    CacheStatistics,
    Clear,
    ContainsKey,
    Entry,
    Get,
    GetAll,
    GetValue,
    Put,
    PutAll,
    PutIfAbsent,
    Remove,
    RemoveIfUnmodified,
    Replace,
    ReplaceIfUnmodified,
    ScanSegments,
    Size,
    Stats,
    WriteResult,
    segment_of,
)
from gridactor.cache.pool import ShardPool
from gridactor.cache.router import ShardRouter
from gridactor.errors import (
    CacheExistsError,
    CacheNotFoundError,
    InvalidRequestError,
    ServerStoppingError,
    ShardUnavailableError,
)


@pytest.fixture
async def pool(nursery: trio.Nursery) -> ShardPool:
    p = ShardPool([CacheSettings("c"), CacheSettings("small", max_count=4)], "c", 2, grace=1.0)
    with trio.fail_after(10):
        await nursery.start(p.run)
    return p


async def test_put_ships_the_previous_entry_only_when_asked(pool: ShardPool) -> None:
    c, d = key_on(0, prefix="c"), key_on(1, prefix="d")
    puts = [Put(c, b"1"), Put(c, b"2"), Put(c, b"3", previous=False), Put(d, b"4", previous=False)]
    with trio.fail_after(5):
        _, asked, quiet, fresh = await pool.router.execute("", puts)
    assert isinstance(asked, WriteResult)
    assert isinstance(asked.previous, Entry)
    assert asked.previous.value == b"1"
    assert quiet == fresh == WriteResult(True, None)  # versions are not compared


async def test_every_op(pool: ShardPool) -> None:
    svc: CacheService = pool.router
    assert svc.cache_names() == ["c", "small"]
    assert svc.default_cache() == "c"
    assert svc.settings("").name == "c"
    a, b = key_on(0), key_on(1)
    with trio.fail_after(5):
        r = await svc.execute("", [Put(a, b"1", media_type="t"), Put(b, b"2"), Get(a), Get(b), Get(b"none")])
        assert r[0] == r[1] == WriteResult(True, None)
        ea, eb = r[2], r[3]
        assert isinstance(ea, Entry)
        assert isinstance(eb, Entry)
        assert (ea.value, ea.media_type, eb.value) == (b"1", "t", b"2")
        assert ea.version != eb.version
        assert r[4] is None
        assert await svc.execute("", [GetValue(a), GetValue(b), GetValue(b"none")]) == [b"1", b"2", None]
        r = await svc.execute("c", [
            ContainsKey(a), PutIfAbsent(a, b"x"), Replace(b, b"3"), ReplaceIfUnmodified(a, b"4", ea.version),
            ReplaceIfUnmodified(a, b"5", ea.version), RemoveIfUnmodified(b, 0), Remove(b), Remove(b),
        ])
        assert r[0] is True
        assert isinstance(r[1], WriteResult)
        assert not r[1].done
        assert r[1].previous == ea
        assert isinstance(r[2], WriteResult)
        assert r[2].done
        assert r[3] == WriteResult(True, ea)
        assert isinstance(r[4], WriteResult)
        assert not r[4].done
        assert isinstance(r[5], WriteResult)
        assert not r[5].done
        assert r[5].previous is not None
        assert isinstance(r[6], WriteResult)
        assert r[6].done
        assert r[7] == WriteResult(False, None)
        pairs = tuple((f"p{i}".encode(), b"v") for i in range(40))
        r = await svc.execute("", [
            PutAll(pairs), Size(), GetAll((*tuple(k for k, _ in pairs[:10]), b"missing")), GetAll(()),
            ScanSegments(), ScanSegments((segment_of(a), 1, 0)), ScanSegments((SEGMENTS,)), Stats(),
        ])
        assert r[0] is None
        assert r[1] == 41
        assert isinstance(r[2], dict)
        assert len(r[2]) == 10
        assert r[3] == {}
        scan = r[4]
        assert isinstance(scan, list)
        assert [s.segment for s in scan] == list(range(SEGMENTS))
        assert sum(len(s.entries) for s in scan) == 41
        part = r[5]
        assert isinstance(part, list)
        assert [s.segment for s in part] == sorted({0, 1, segment_of(a)})
        assert isinstance(r[6], InvalidRequestError)
        st = r[7]
        assert isinstance(st, CacheStatistics)
        assert st.current_entries == 41
        assert st.stores == 44
        assert await svc.execute("", [Clear(), Size()]) == [None, 0]
        # eviction: each of the 2 shards keeps its share (2) of max_count=4
        await svc.execute("small", [Put(f"e{i}".encode(), b"v") for i in range(20)])
        [n, st] = await svc.execute("small", [Size(), Stats()])
        assert n == 4
        assert isinstance(st, CacheStatistics)
        assert st.evictions == 16


async def test_cache_lifecycle_and_errors(pool: ShardPool) -> None:
    svc = pool.router
    with trio.fail_after(5):
        with pytest.raises(CacheNotFoundError):
            await svc.execute("nope", [Get(b"k")])
        r = await svc.execute_many([("c", Put(b"k", b"v")), ("nope", Get(b"k")), ("", Get(b"k"))])
        assert isinstance(r[1], CacheNotFoundError)
        assert isinstance(r[2], Entry)
        await svc.create_cache(CacheSettings("new", lifespan_ms=60_000))
        with pytest.raises(CacheExistsError):
            await svc.create_cache(CacheSettings("new"))
        r = await svc.execute("new", [Put(b"k", b"v"), Get(b"k")])
        assert isinstance(r[1], Entry)
        assert r[1].lifespan_ms == 60_000
        await svc.remove_cache("new")
        with pytest.raises(CacheNotFoundError):
            await svc.remove_cache("new")
        with pytest.raises(CacheNotFoundError):
            await svc.execute("new", [Get(b"k")])


async def test_killed_shard_fails_in_flight_and_recovers(pool: ShardPool) -> None:
    svc = pool.router
    a, b = key_on(0), key_on(1)
    with trio.fail_after(10):
        await svc.create_cache(CacheSettings("late"))
        await svc.execute("", [Put(a, b"1"), Put(b, b"2")])
        pid = pool.pids[0]
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # the request below is then surely in flight
        results: list[object] = []

        async def in_flight() -> None:
            results.extend(await svc.execute("", [Get(a), Get(b)]))

        async with trio.open_nursery() as n:
            n.start_soon(in_flight)
            await trio.sleep(0.05)
            assert not results
            os.kill(pid, signal.SIGKILL)
        assert isinstance(results[0], ShardUnavailableError)
        assert isinstance(results[1], Entry)  # the other shard is unaffected
        # Until the replacement is attached, that shard's requests fail at once.
        [now] = await svc.execute("", [Get(a)])
        assert isinstance(now, ShardUnavailableError)
        [size] = await svc.execute("", [Size()])
        assert isinstance(size, ShardUnavailableError)
        await pool.wait_shard_ready(0)
        assert pool.restarts == [1, 0]
        assert pool.pids[0] != pid
        assert not alive(pid)
        r = await svc.execute("", [Get(a), Get(b), Put(a, b"3"), Get(a)])
        assert r[0] is None  # its data was lost, as logged
        assert isinstance(r[1], Entry)
        assert isinstance(r[3], Entry)
        assert r[3].value == b"3"
        r = await svc.execute("late", [Put(a, b"v"), Get(a)])  # caches created later are redefined
        assert isinstance(r[1], Entry)


async def test_no_children_left_and_stop_fails_in_flight() -> None:
    p = ShardPool([CacheSettings("c")], "c", 2, grace=0.2)
    results: list[object] = []

    async def in_flight(router: ShardRouter) -> None:
        results.extend(await router.execute("", [Get(key_on(1))]))

    with trio.fail_after(10):
        async with trio.open_nursery() as outer, trio.open_nursery() as n:
            router: ShardRouter = await n.start(p.run)
            pids = [pid for pid in p.pids if pid is not None]
            assert len(pids) == 2
            assert all(alive(pid) for pid in pids)
            os.kill(pids[1], signal.SIGSTOP)  # also forces the SIGTERM/SIGKILL escalation
            outer.start_soon(in_flight, router)
            await trio.sleep(0.05)
            n.cancel_scope.cancel()
    assert len(results) == 1
    assert isinstance(results[0], ServerStoppingError)
    assert not any(alive(pid) for pid in pids)


async def test_first_start_failure_is_loud(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gridactor.cache.pool.SHARD_MODULE", "gridactor.no_such_module")
    p = ShardPool([CacheSettings("c")], "c", 2, startup_timeout=5)
    with trio.fail_after(10):
        async with trio.open_nursery() as n:
            with pytest.raises(ShardUnavailableError, match="failed to start"):
                await n.start(p.run)
