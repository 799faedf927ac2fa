"""ShardStore semantics: every op, conditional writes, expiration on a fake clock, eviction, versions."""

from __future__ import annotations

import pytest

from gridactor.cache.api import (
    INFINITE,
    SEGMENTS,
    CacheSettings,
    CacheStatistics,
    Clear,
    ContainsKey,
    Entry,
    Get,
    GetAll,
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
from gridactor.cache.store import ShardStore, shard_share
from gridactor.errors import CacheExistsError, CacheNotFoundError, InvalidRequestError


class FakeClock:
    def __init__(self, now: int = 1_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> ShardStore:
    return ShardStore([CacheSettings("c")], clock=clock)


def test_get_put_roundtrip(store: ShardStore, clock: FakeClock) -> None:
    assert store.apply("c", Get(b"k")) is None
    r = store.apply("c", Put(b"k", b"v", media_type="text/plain"))
    assert r == WriteResult(True, None)
    e = store.apply("c", Get(b"k"))
    assert isinstance(e, Entry)
    assert (e.key, e.value, e.media_type) == (b"k", b"v", "text/plain")
    assert e.created_ms == e.last_used_ms == clock.now
    assert e.lifespan_ms == e.max_idle_ms == INFINITE
    assert e.expires_at_ms() == INFINITE
    r2 = store.apply("c", Put(b"k", b"w"))
    assert isinstance(r2, WriteResult)
    assert r2.done
    assert r2.previous == e
    assert store.apply("c", ContainsKey(b"k")) is True
    assert store.apply("c", ContainsKey(b"x")) is False


def test_versions_unique_and_epoch_distinct(clock: FakeClock) -> None:
    a = ShardStore([CacheSettings("c")], clock=clock, shard_index=0, shard_count=2)
    b = ShardStore([CacheSettings("c")], clock=clock, shard_index=1, shard_count=2, epoch=a.epoch)
    seen: set[int] = set()
    for s in (a, b):
        for i in range(100):
            s.apply("c", Put(b"k", str(i).encode()))
            e = s.apply("c", Get(b"k"))
            assert isinstance(e, Entry)
            assert 0 < e.version < 2**63
            seen.add(e.version)
    assert len(seen) == 200
    fresh = ShardStore([CacheSettings("c")], clock=clock, epoch=a.epoch + 1)
    fresh.apply("c", Put(b"k", b"v"))
    e = fresh.apply("c", Get(b"k"))
    assert isinstance(e, Entry)
    assert e.version not in seen


def test_put_if_absent(store: ShardStore) -> None:
    assert store.apply("c", PutIfAbsent(b"k", b"1")) == WriteResult(True, None)
    r = store.apply("c", PutIfAbsent(b"k", b"2"))
    assert isinstance(r, WriteResult)
    assert not r.done
    assert r.previous is not None
    assert r.previous.value == b"1"
    e = store.apply("c", Get(b"k"))
    assert isinstance(e, Entry)
    assert e.value == b"1"


def test_replace(store: ShardStore) -> None:
    assert store.apply("c", Replace(b"k", b"1")) == WriteResult(False, None)
    assert store.apply("c", Get(b"k")) is None
    store.apply("c", Put(b"k", b"1"))
    r = store.apply("c", Replace(b"k", b"2"))
    assert isinstance(r, WriteResult)
    assert r.done
    assert r.previous is not None
    assert r.previous.value == b"1"


def test_replace_if_unmodified(store: ShardStore) -> None:
    assert store.apply("c", ReplaceIfUnmodified(b"k", b"1", 5)) == WriteResult(False, None)
    store.apply("c", Put(b"k", b"1"))
    e = store.apply("c", Get(b"k"))
    assert isinstance(e, Entry)
    bad = store.apply("c", ReplaceIfUnmodified(b"k", b"2", e.version + 1))
    assert isinstance(bad, WriteResult)
    assert not bad.done
    assert bad.previous is not None
    assert bad.previous.version == e.version
    ok = store.apply("c", ReplaceIfUnmodified(b"k", b"2", e.version))
    assert ok == WriteResult(True, e)
    e2 = store.apply("c", Get(b"k"))
    assert isinstance(e2, Entry)
    assert e2.value == b"2"
    assert e2.version != e.version


def test_remove_and_remove_if_unmodified(store: ShardStore) -> None:
    assert store.apply("c", Remove(b"k")) == WriteResult(False, None)
    store.apply("c", Put(b"k", b"1"))
    e = store.apply("c", Get(b"k"))
    assert isinstance(e, Entry)
    assert store.apply("c", Remove(b"k")) == WriteResult(True, e)
    assert store.apply("c", RemoveIfUnmodified(b"k", 1)) == WriteResult(False, None)
    store.apply("c", Put(b"k", b"1"))
    e = store.apply("c", Get(b"k"))
    assert isinstance(e, Entry)
    bad = store.apply("c", RemoveIfUnmodified(b"k", e.version ^ 1))
    assert isinstance(bad, WriteResult)
    assert not bad.done
    assert bad.previous is not None
    assert store.apply("c", RemoveIfUnmodified(b"k", e.version)) == WriteResult(True, e)
    assert store.apply("c", Size()) == 0


def test_bulk_ops(store: ShardStore) -> None:
    pairs = tuple((f"k{i}".encode(), f"v{i}".encode()) for i in range(50))
    assert store.apply("c", PutAll(pairs, media_type="m")) is None
    assert store.apply("c", Size()) == 50
    got = store.apply("c", GetAll((b"k1", b"k2", b"nope")))
    assert isinstance(got, dict)
    assert set(got) == {b"k1", b"k2"}
    assert got[b"k1"].value == b"v1"
    scan = store.apply("c", ScanSegments())
    assert isinstance(scan, list)
    assert len(scan) == SEGMENTS
    assert [s.segment for s in scan] == list(range(SEGMENTS))
    assert sum(len(s.entries) for s in scan) == 50
    seg = segment_of(b"k1")
    one = store.apply("c", ScanSegments((seg,)))
    assert isinstance(one, list)
    assert len(one) == 1
    assert isinstance(one[0], SegmentEntries)
    assert b"k1" in {e.key for e in one[0].entries}
    with pytest.raises(InvalidRequestError):
        store.apply("c", ScanSegments((SEGMENTS,)))
    assert store.apply("c", Clear()) is None
    assert store.apply("c", Size()) == 0


def test_stats(store: ShardStore, clock: FakeClock) -> None:
    store.apply("c", Put(b"a", b"1"))
    store.apply("c", Get(b"a"))
    store.apply("c", Get(b"b"))
    store.apply("c", Remove(b"a"))
    store.apply("c", Remove(b"a"))
    clock.now += 5000
    st = store.apply("c", Stats())
    assert st == CacheStatistics(
        time_since_start_s=5, current_entries=0, stores=1, retrievals=2, hits=1, misses=1,
        remove_hits=1, remove_misses=1, evictions=0,
    )
    quiet = ShardStore([CacheSettings("q", statistics=False)], clock=clock)
    quiet.apply("q", Put(b"a", b"1"))
    st = quiet.apply("q", Stats())
    assert isinstance(st, CacheStatistics)
    assert st.stores == 0
    assert st.current_entries == 1


def test_lifespan(store: ShardStore, clock: FakeClock) -> None:
    store.apply("c", Put(b"k", b"v", lifespan_ms=1000))
    e = store.apply("c", Get(b"k"))
    assert isinstance(e, Entry)
    assert e.expires_at_ms() == clock.now + 1000
    clock.now += 1000
    assert store.apply("c", Get(b"k")) is not None
    clock.now += 1
    assert store.apply("c", Get(b"k")) is None
    assert store.apply("c", ContainsKey(b"k")) is False
    assert store.apply("c", Replace(b"k", b"x")) == WriteResult(False, None)


def test_max_idle_refreshed_by_reads(store: ShardStore, clock: FakeClock) -> None:
    store.apply("c", Put(b"k", b"v", max_idle_ms=100))
    for _ in range(5):
        clock.now += 90
        e = store.apply("c", Get(b"k"))
        assert isinstance(e, Entry)
        assert e.last_used_ms == clock.now
    clock.now += 101
    assert store.apply("c", Get(b"k")) is None


def test_cache_default_expiration_and_override(clock: FakeClock) -> None:
    s = ShardStore([CacheSettings("c", lifespan_ms=100, max_idle_ms=50)], clock=clock)
    s.apply("c", Put(b"d", b"v"))
    s.apply("c", Put(b"i", b"v", lifespan_ms=INFINITE, max_idle_ms=INFINITE))
    d = s.apply("c", Get(b"d"))
    assert isinstance(d, Entry)
    assert (d.lifespan_ms, d.max_idle_ms) == (100, 50)
    clock.now += 1000
    assert s.apply("c", Get(b"d")) is None
    assert s.apply("c", Get(b"i")) is not None


def test_periodic_purge(store: ShardStore, clock: FakeClock) -> None:
    for i in range(10):
        store.apply("c", Put(str(i).encode(), b"v", lifespan_ms=10 if i % 2 else INFINITE))
    assert store.purge_expired() == 0
    clock.now += 11
    assert store.purge_expired() == 5
    assert store.apply("c", Size()) == 5
    assert store.purge_expired() == 0


def test_size_hides_expired(store: ShardStore, clock: FakeClock) -> None:
    store.apply("c", Put(b"a", b"v", lifespan_ms=10))
    store.apply("c", Put(b"b", b"v"))
    clock.now += 20
    assert store.apply("c", Size()) == 1
    scan = store.apply("c", ScanSegments())
    assert isinstance(scan, list)
    assert [e.key for s in scan for e in s.entries] == [b"b"]


def test_lru_eviction(clock: FakeClock) -> None:
    s = ShardStore([CacheSettings("c", max_count=3)], clock=clock)
    for k in (b"a", b"b", b"c"):
        s.apply("c", Put(k, b"v"))
    s.apply("c", Get(b"a"))  # b is now the least recently used
    s.apply("c", Put(b"d", b"v"))
    assert s.apply("c", ContainsKey(b"b")) is False
    assert all(s.apply("c", ContainsKey(k)) for k in (b"a", b"c", b"d"))
    st = s.apply("c", Stats())
    assert isinstance(st, CacheStatistics)
    assert st.evictions == 1
    assert st.current_entries == 3
    s.apply("c", Put(b"a", b"again"))  # overwrite: no eviction
    assert s.apply("c", Size()) == 3


def test_shard_share() -> None:
    assert [shard_share(10, i, 3) for i in range(3)] == [4, 3, 3]
    assert sum(shard_share(7, i, 4) for i in range(4)) == 7
    assert shard_share(-1, 0, 2) == -1


def test_scan_on_a_shard_sees_only_owned_segments(clock: FakeClock) -> None:
    s = ShardStore([CacheSettings("c")], clock=clock, shard_index=1, shard_count=2)
    scan = s.apply("c", ScanSegments((0, 1, 2, 3)))
    assert isinstance(scan, list)
    assert [x.segment for x in scan] == [1, 3]
    full = s.apply("c", ScanSegments())
    assert isinstance(full, list)
    assert len(full) == SEGMENTS // 2


def test_cache_lifecycle(store: ShardStore) -> None:
    with pytest.raises(CacheNotFoundError):
        store.apply("nope", Get(b"k"))
    with pytest.raises(CacheExistsError):
        store.define_cache(CacheSettings("c"))
    store.define_cache(CacheSettings("d"))
    assert store.cache_names() == ["c", "d"]
    store.drop_cache("d")
    with pytest.raises(CacheNotFoundError):
        store.drop_cache("d")
