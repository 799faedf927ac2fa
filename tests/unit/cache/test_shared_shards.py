"""Several processes' routers in front of the same shard processes.

A real ShardPool (the main process's, primary router "A") and SharedShardClients (the
routers a worker listener process would use, "B" and "C") run in this test process: to
the shard processes they are just more parents. Nothing is mocked.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable

import pytest
import trio
from tests.unit.cache import shard_helpers
from tests.unit.cache.shard_helpers import alive

from gridactor.cache.api import (
    CacheSettings,
    Entry,
    Get,
    Put,
    PutAll,
    PutIfAbsent,
    Remove,
    RemoveIfUnmodified,
    Replace,
    Size,
    WriteResult,
)
from gridactor.cache.events import CacheEvent, EventHub, EventKind
from gridactor.cache.messages import (
    STATUS_OK,
    Notice,
    ReplyBatch,
    RequestBatch,
    Shutdown,
    encode_op,
    parse_message,
)
from gridactor.cache.pool import ShardPool
from gridactor.cache.router import ShardRouter
from gridactor.cache.shared import SharedShardClient, connect_to_shard, receive_handshake
from gridactor.errors import CacheExistsError, CacheNotFoundError, ShardUnavailableError
from gridactor.runtime.framing import encode

SHARDS = 2


def key_on(shard: int, prefix: str = "k") -> bytes:
    return shard_helpers.key_on(shard, SHARDS, prefix)


async def eventually(check: Callable[[], bool]) -> None:
    """Poll: the other processes' notices arrive on their own schedule (bounded: 5 s)."""
    with trio.fail_after(5):
        for _ in range(1000):
            if check():
                return
            await trio.sleep(0.01)
    raise AssertionError("condition not met within 5 s")


def drain(receive: trio.MemoryReceiveChannel[CacheEvent]) -> list[CacheEvent]:
    out = []
    while True:
        try:
            out.append(receive.receive_nowait())
        except trio.WouldBlock:
            return out


async def events_until(receive: trio.MemoryReceiveChannel[CacheEvent], n: int) -> list[CacheEvent]:
    out: list[CacheEvent] = []
    with trio.fail_after(5):
        while len(out) < n:
            out.append(await receive.receive())
    await trio.sleep(0.05)  # and nothing more arrives
    return out + drain(receive)


async def barrier(router: ShardRouter) -> None:
    """A round trip to every shard: what this router sent before (a watch) has been applied."""
    await router.execute("c", [Size()])


@pytest.fixture
async def pool(nursery: trio.Nursery) -> ShardPool:
    p = ShardPool([CacheSettings("c"), CacheSettings("other")], "c", SHARDS, grace=1.0)
    with trio.fail_after(15):
        await nursery.start(p.run)
    return p


Worker = tuple[SharedShardClient, ShardRouter]


async def start_client(nursery: trio.Nursery, pool: ShardPool, max_backoff: float = 2.0) -> Worker:
    client = SharedShardClient(pool.addresses, "c", max_backoff=max_backoff)
    with trio.fail_after(10):
        router: ShardRouter = await nursery.start(client.run)
    return client, router


@pytest.fixture
async def worker(nursery: trio.Nursery, pool: ShardPool) -> Worker:
    return await start_client(nursery, pool, max_backoff=0.2)


async def test_every_process_sees_the_same_entries(pool: ShardPool, worker: Worker) -> None:
    a, (_, b) = pool.router, worker
    assert b.cache_names() == a.cache_names() == ["c", "other"]
    assert b.default_cache() == "c"
    assert not b.primary
    k0, k1 = key_on(0), key_on(1)
    with trio.fail_after(5):
        await a.execute("", [Put(k0, b"from a"), Put(k1, b"from a")])
        r = await b.execute("c", [Get(k0), Get(k1), Put(k1, b"from b")])
        assert [e.value for e in r[:2] if isinstance(e, Entry)] == [b"from a", b"from a"]
        [got] = await a.execute("c", [Get(k1)])
        assert isinstance(got, Entry)
        assert got.value == b"from b"
        with pytest.raises(CacheNotFoundError):
            await b.execute("nope", [Get(k0)])


async def test_cache_definitions_made_anywhere_reach_every_process(
    nursery: trio.Nursery, pool: ShardPool, worker: Worker
) -> None:
    a, (_, b) = pool.router, worker
    with trio.fail_after(10):
        await b.create_cache(CacheSettings("by-b", lifespan_ms=60_000))
        await eventually(lambda: "by-b" in a.cache_names())
        assert a.settings("by-b").lifespan_ms == 60_000
        await a.execute("by-b", [Put(key_on(1), b"v")])
        [entry] = await b.execute("by-b", [Get(key_on(1))])
        assert isinstance(entry, Entry)
        assert entry.lifespan_ms == 60_000
        # A process that connects later gets the definitions made at run time.
        _, c = await start_client(nursery, pool)
        assert "by-b" in c.cache_names()
        await a.create_cache(CacheSettings("by-a"))
        await eventually(lambda: "by-a" in b.cache_names() and "by-a" in c.cache_names())
        # Shard 0 settles who created a cache first, even before the others heard of it.
        results = []

        async def create(router: ShardRouter) -> None:
            try:
                await router.create_cache(CacheSettings("race"))
                results.append("created")
            except CacheExistsError:
                results.append("exists")

        async with trio.open_nursery() as racing:
            for router in (a, b, c):
                racing.start_soon(create, router)
        assert sorted(results) == ["created", "exists", "exists"]
        await b.remove_cache("by-a")
        await eventually(lambda: "by-a" not in a.cache_names() and "by-a" not in c.cache_names())
        with pytest.raises(CacheNotFoundError):
            await a.execute("by-a", [Get(b"k")])
        await a.remove_cache("by-b")
        await eventually(lambda: "by-b" not in b.cache_names() and "by-b" not in c.cache_names())
        with pytest.raises(CacheNotFoundError):
            await b.remove_cache("by-b")
        assert a.cache_names() == b.cache_names() == c.cache_names() == ["c", "other", "race"]


async def test_listeners_see_writes_made_through_another_process(
    pool: ShardPool, worker: Worker
) -> None:
    a, (_, b) = pool.router, worker
    hub_a, hub_b = EventHub(), EventHub()
    a.serve_events(hub_a)
    b.serve_events(hub_b)
    with trio.fail_after(10):
        await a.execute("c", [Put(b"old", b"0")])
        sub = hub_a.subscribe("c")
        assert a.watched() == ["c"]
        await barrier(a)
        r = await b.execute("c", [
            Put(b"x", b"1"), Put(b"x", b"2", previous=False), PutIfAbsent(b"x", b"3"), Replace(b"none", b"4"),
            Remove(b"x"), Remove(b"x"),
        ])
        await b.execute("other", [Put(b"x", b"quiet")])  # not watched
        pa = await b.execute("c", [PutAll(((b"old", b"5"), (b"new", b"6")))])
        assert pa == [None]
        got = await events_until(sub.receive, 5)
        assert [(e.kind, e.key) for e in got] == [
            (EventKind.CREATED, b"x"), (EventKind.MODIFIED, b"x"), (EventKind.REMOVED, b"x"),
            (EventKind.MODIFIED, b"old"), (EventKind.CREATED, b"new"),
        ]  # the refused put-if-absent and replace, and the second remove changed nothing
        assert all(e.cache == "c" for e in got)
        assert isinstance(r[0], WriteResult)
        assert isinstance(r[1], WriteResult)
        assert r[1].previous is None  # not asked for; the event still says "modified"
        assert [got[0].version, got[1].version, got[2].version] == [r[0].version, r[1].version, 0]
        entries = await a.execute("c", [Get(b"old"), Get(b"new")])  # PutAll events carry real versions
        assert [e.version for e in entries if isinstance(e, Entry)] == [got[3].version, got[4].version]
        # Writes through A itself too; a conditional remove with the right version.
        [written] = await a.execute("c", [Put(b"y", b"1")])
        assert isinstance(written, WriteResult)
        await b.execute("c", [RemoveIfUnmodified(b"y", written.version)])
        got = await events_until(sub.receive, 2)
        assert [(e.kind, e.key) for e in got] == [(EventKind.CREATED, b"y"), (EventKind.REMOVED, b"y")]
        # B's hub has no subscriber: B's router never received an event.
        assert hub_b.watched_caches() == []
        assert b.statistics()["events_received"] == 0


async def test_expired_entries_are_announced_to_every_watching_process(nursery: trio.Nursery) -> None:
    caches = [CacheSettings("c"), CacheSettings("other")]
    pool = ShardPool(caches, "c", SHARDS, grace=1.0, purge_interval=0.05)
    with trio.fail_after(15):
        await nursery.start(pool.run)
    _, worker = await start_client(nursery, pool)
    hub = EventHub()
    worker.serve_events(hub)
    sub = hub.subscribe("c")
    with trio.fail_after(10):
        await barrier(worker)
        mortal = [Put(b"swept", b"1", lifespan_ms=100), Put(b"read", b"2", lifespan_ms=100)]
        await pool.router.execute("c", mortal)
        await pool.router.execute("other", [Put(b"quiet", b"3", lifespan_ms=100)])  # nobody watches it
        await trio.sleep(0.15)
        # Whichever comes first, a read meeting an expired entry or the sweep, announces it once.
        assert await pool.router.execute("c", [Get(b"read")]) == [None]
        got = await events_until(sub.receive, 4)
    assert sorted((e.kind, e.key) for e in got) == [
        (EventKind.CREATED, b"read"), (EventKind.CREATED, b"swept"),
        (EventKind.EXPIRED, b"read"), (EventKind.EXPIRED, b"swept"),
    ]
    assert all(e.cache == "c" for e in got)


async def test_no_event_traffic_when_nobody_watches(
    pool: ShardPool, worker: Worker
) -> None:
    a, (_, b) = pool.router, worker
    hub = EventHub()
    a.serve_events(hub)
    with trio.fail_after(10):
        await b.execute("c", [Put(key_on(s, f"q{i}"), b"v") for s in range(SHARDS) for i in range(20)])
        await trio.sleep(0.05)
        assert a.statistics()["events_received"] == 0
        sub = hub.subscribe("c")
        await barrier(a)
        await b.execute("c", [Put(b"watched", b"v")])
        assert [e.key for e in await events_until(sub.receive, 1)] == [b"watched"]
        sub.close()
        assert a.watched() == []
        await barrier(a)
        before = a.statistics()["events_received"]
        await b.execute("c", [Put(key_on(s, f"r{i}"), b"v") for s in range(SHARDS) for i in range(20)])
        await a.execute("c", [Put(b"x", b"v")])  # its reply comes after any event the shard would send
        await trio.sleep(0.05)
        assert a.statistics()["events_received"] == before


async def test_notices_reach_every_other_process(
    nursery: trio.Nursery, pool: ShardPool, worker: Worker
) -> None:
    a, (_, b) = pool.router, worker
    _, c = await start_client(nursery, pool)
    seen: dict[str, list[Notice]] = {"a": [], "b": [], "c": []}
    for name, router in (("a", a), ("b", b), ("c", c)):
        router.on_notice = seen[name].append
    with trio.fail_after(5):
        await b.broadcast_notice("flush-acl", b"payload")
        await eventually(lambda: bool(seen["a"] and seen["c"]))
        await a.broadcast_notice("flush-acl")
        await eventually(lambda: len(seen["b"]) == 1 and len(seen["c"]) == 2)
    assert seen["a"] == [Notice("flush-acl", b"payload")]
    assert seen["b"] == [Notice("flush-acl", b"")]
    assert seen["c"] == [Notice("flush-acl", b"payload"), Notice("flush-acl", b"")]


async def test_killed_shard_every_process_fails_fast_and_recovers(
    pool: ShardPool, worker: Worker
) -> None:
    a, (client, b) = pool.router, worker
    hub_a, hub_b = EventHub(), EventHub()
    a.serve_events(hub_a)
    b.serve_events(hub_b)
    sub_a, sub_b = hub_a.subscribe("late"), hub_b.subscribe("c")
    k0, k1 = key_on(0), key_on(1)
    with trio.fail_after(15):
        await b.create_cache(CacheSettings("late"))  # made by the worker: the pool must redefine it
        await eventually(lambda: "late" in a.cache_names())
        await barrier(a)
        await barrier(b)
        await a.execute("c", [Put(k0, b"1"), Put(k1, b"2")])
        assert len(await events_until(sub_b.receive, 2)) == 2
        pid = pool.pids[0]
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # the requests below are then surely in flight
        results: dict[str, list[object]] = {}

        async def in_flight(name: str, router: ShardRouter) -> None:
            results[name] = list(await router.execute("c", [Get(k0), Get(k1)]))

        async with trio.open_nursery() as n:
            n.start_soon(in_flight, "a", a)
            n.start_soon(in_flight, "b", b)
            await trio.sleep(0.1)
            assert not results
            killed_at = trio.current_time()
            os.kill(pid, signal.SIGKILL)
        assert trio.current_time() - killed_at < 1.0
        for name in ("a", "b"):
            assert isinstance(results[name][0], ShardUnavailableError), name
            assert isinstance(results[name][1], Entry), name  # the other shard is unaffected
        await pool.wait_shard_ready(0)
        await client.wait_shard_ready(0)
        assert pool.pids[0] != pid
        assert client.reconnects == [1, 0]
        r = await b.execute("c", [Get(k0), Put(k0, b"3"), Get(k0)])
        assert r[0] is None  # its data was lost, as logged
        assert isinstance(r[2], Entry)
        assert b.cache_names() == a.cache_names() == ["c", "late", "other"]
        # Watches came back (the worker's and the pool's), and the worker-made cache is
        # defined on the new shard 0.
        assert [(e.kind, e.key) for e in await events_until(sub_b.receive, 1)] == [(EventKind.CREATED, k0)]
        await b.execute("late", [Put(k0, b"v")])
        assert [(e.kind, e.key) for e in await events_until(sub_a.receive, 1)] == [(EventKind.CREATED, k0)]
        await a.execute("c", [Remove(k0)])
        assert [(e.kind, e.key) for e in await events_until(sub_b.receive, 1)] == [(EventKind.REMOVED, k0)]


async def test_other_parents_come_and_go_only_the_main_one_stops_a_shard(pool: ShardPool) -> None:
    pids = [pid for pid in pool.pids if pid is not None]
    with trio.fail_after(10):
        async with trio.open_nursery() as n:
            _, b = await start_client(n, pool)
            await b.execute("c", [Put(b"k", b"v")])
            n.cancel_scope.cancel()
        # A worker asking to shut a shard down is ignored; garbage only drops that parent.
        sock = await connect_to_shard(pool.addresses[1])
        with sock:
            handshake = await receive_handshake(sock, with_definitions=False)
            size = RequestBatch([encode_op(7, "c", Size())])
            sock.send(encode(Shutdown().to_wire()) + encode(size.to_wire()))
            frames: list[object] = []
            while not frames:
                await trio.lowlevel.wait_readable(sock)
                handshake.decoder.receive_data(sock.recv(4096))
                frames = handshake.decoder.next_frames()
            reply = parse_message(frames[0])
            assert isinstance(reply, ReplyBatch)
            assert reply.flat == (7, STATUS_OK, 1)  # still serving: shard 1 holds b"k"
            sock.send(b"\x00\x00\x00\x02\xc1\xc1")  # not msgpack
            while True:
                await trio.lowlevel.wait_readable(sock)
                if sock.recv(4096) == b"":
                    break  # the shard dropped us
        [entry] = await pool.router.execute("c", [Get(b"k")])
        assert isinstance(entry, Entry)
        assert all(alive(pid) for pid in pids)
        assert pool.restarts == [0, 0]


async def test_shutdown_from_the_main_parent_stops_the_shards_and_workers_see_it() -> None:
    p = ShardPool([CacheSettings("c")], "c", SHARDS, grace=5.0)
    with trio.fail_after(15):
        async with trio.open_nursery() as outer:
            async with trio.open_nursery() as n:
                await n.start(p.run)
                pids = [pid for pid in p.pids if pid is not None]
                _, b = await start_client(outer, p, max_backoff=0.1)
                n.cancel_scope.cancel()
                stopping = trio.current_time()
            # Well within the grace period: they obeyed Shutdown (no SIGTERM), workers or not.
            assert trio.current_time() - stopping < 2.5
            assert not any(alive(pid) for pid in pids)
            [r] = await b.execute("c", [Get(key_on(0))])
            assert isinstance(r, ShardUnavailableError)
            outer.cancel_scope.cancel()


async def test_a_worker_cannot_start_without_shards() -> None:
    client = SharedShardClient(["gridactor-test-no-such-shard-0"], "c", startup_timeout=0.3)
    with trio.fail_after(5):
        async with trio.open_nursery() as n:
            with pytest.raises(ShardUnavailableError, match="cannot connect"):
                await n.start(client.run)


async def test_a_shard_whose_address_is_taken_does_not_start() -> None:
    p = ShardPool([CacheSettings("c")], "c", SHARDS, startup_timeout=5)
    squatter = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with squatter, trio.fail_after(10):
        squatter.bind("\0" + p.addresses[1])
        async with trio.open_nursery() as n:
            with pytest.raises(ShardUnavailableError, match=r"shard 1 failed to start.*already in use"):
                await n.start(p.run)
