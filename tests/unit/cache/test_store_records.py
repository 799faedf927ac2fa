"""The compact record format of ShardStore: every metadata combination round-trips."""

from __future__ import annotations

import itertools

import pytest

from gridactor.cache.api import INFINITE, CacheSettings, Entry, GetValue, segment_of
from gridactor.cache.store import ShardStore
from gridactor.errors import InvalidRequestError

NOW = 1_700_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now


@pytest.mark.parametrize(
    ("media", "lifespan", "max_idle"),
    list(itertools.product(["", "text/plain; charset=UTF-8", "é" * 300], [INFINITE, 0, 5_000], [-1, 7_000])),
)
def test_metadata_round_trips(media: str, lifespan: int, max_idle: int) -> None:
    store = ShardStore([CacheSettings("c")], clock=Clock(), epoch=0x1234)
    value = bytes(range(256)) * 3
    store.put("c", b"key", value, lifespan, max_idle, media, NOW)
    e = store.get("c", b"key", NOW)
    assert e == Entry(b"key", value, media, e.version if e else 0, NOW, NOW, lifespan, max_idle)
    assert e is not None
    assert e.version >> 40 == 0x1234
    assert store.get_value("c", b"key", NOW) == value


def test_get_value_counts_and_touches_like_get() -> None:
    store = ShardStore([CacheSettings("c", max_count=2)], clock=Clock())
    store.put("c", b"a", b"1", None, None, "", NOW)
    store.put("c", b"b", b"2", None, None, "", NOW)
    assert store.apply("c", GetValue(b"a"), NOW) == b"1"  # a is now the most recently used
    assert store.get_value("c", b"zz", NOW) is None
    store.put("c", b"c", b"3", None, None, "", NOW)  # evicts b, not a
    assert store.get_value("c", b"a", NOW) == b"1"
    assert store.get_value("c", b"b", NOW) is None
    stats = store.stats("c", NOW)
    assert (stats.hits, stats.misses) == (2, 2)


def test_empty_value_and_binary_tail_bytes() -> None:
    store = ShardStore([CacheSettings("c")], clock=Clock())
    for value in (b"", b"\x00" * 11, b"\xff" * 40):
        store.put("c", b"k", value, None, None, "", NOW)
        e = store.get("c", b"k", NOW)
        assert e is not None
        assert e.value == value
        assert e.media_type == ""


def test_versions_are_distinct_and_match_conditional_writes() -> None:
    store = ShardStore([CacheSettings("c")], clock=Clock(), shard_index=1, shard_count=3)
    versions = []
    for i in range(50):
        _, _, written = store.put("c", b"k", b"v%d" % i, None, None, "", NOW)
        e = store.get("c", b"k", NOW)
        assert e is not None
        assert e.version == written  # a write reports the version it stored
        versions.append(e.version)
    assert len(set(versions)) == 50
    done, _, _ = store.replace_if_unmodified("c", b"k", b"new", versions[-1], None, None, "", NOW)
    assert done
    done, current, *_ = store.remove_if_unmodified("c", b"k", versions[-1], NOW)
    assert not done
    assert current is not None
    assert current.value == b"new"


def test_creation_times_before_the_shard_started() -> None:
    clock = Clock()
    store = ShardStore([CacheSettings("c")], clock=clock)
    store.put("c", b"k", b"v", None, None, "", NOW - 86_400_000)  # a day before the base
    e = store.get("c", b"k", NOW)
    assert e is not None
    assert e.created_ms == NOW - 86_400_000


def test_a_clock_decades_away_is_refused_without_corrupting_entries() -> None:
    store = ShardStore([CacheSettings("c")], clock=Clock())
    store.put("c", b"k", b"v", None, None, "", NOW)
    with pytest.raises(InvalidRequestError):
        store.put("c", b"k", b"w", None, None, "", NOW + (1 << 40))
    e = store.get("c", b"k", NOW)
    assert e is not None
    assert e.value == b"v"


def test_max_idle_read_refreshes_last_use_without_rewriting_the_record() -> None:
    store = ShardStore([CacheSettings("c")], clock=Clock())
    store.put("c", b"k", b"v", None, 1_000, "", NOW)
    seg = store._caches["c"].segments[segment_of(b"k")]
    record = seg[b"k"]
    e = store.get("c", b"k", NOW + 900)
    assert e is not None
    assert e.last_used_ms == NOW + 900
    assert seg[b"k"] == record  # the read did not write a new version or time into the record
    assert store.get("c", b"k", NOW + 1_800) is not None  # 900 ms idle: alive
    assert store.get("c", b"k", NOW + 2_801) is None  # 1001 ms idle: gone
    assert store._caches["c"].last_used == {}


def test_an_immortal_100_byte_entry_costs_the_value_plus_11_bytes() -> None:
    # The memory target of issue 7 rests on this: the metadata costs 11 bytes in the segment's slab.
    store = ShardStore([CacheSettings("c")], clock=Clock())
    store.put("c", b"k%09d" % 1, b"x" * 100, None, None, "", NOW)
    record = store._caches["c"].segments[segment_of(b"k%09d" % 1)][b"k%09d" % 1]
    assert type(record) is bytes
    assert len(record) == 111


def test_put_replacing_says_whether_it_replaced() -> None:
    store = ShardStore([CacheSettings("c")], clock=Clock())
    done, replaced, first = store.put_replacing("c", b"k", b"1", None, None, "", NOW)
    assert (done, replaced) == (True, False)
    done, replaced, second = store.put_replacing("c", b"k", b"2", None, None, "", NOW)
    assert (done, replaced) == (True, True)
    entry = store.get("c", b"k", NOW)
    assert entry is not None
    assert (entry.value, entry.version) == (b"2", second)
    assert second != first


def test_expired_entries_are_reported_once_whether_a_read_or_the_sweep_finds_them() -> None:
    clock = Clock()
    store = ShardStore([CacheSettings("c")], clock=clock)
    seen: list[tuple[str, bytes]] = []
    store.on_expired = lambda cache, key: seen.append((cache, key))
    store.put("c", b"read", b"1", 10, None, "", NOW)
    store.put("c", b"swept", b"2", None, 10, "", NOW)
    store.put("c", b"immortal", b"3", None, None, "", NOW)
    assert store.get_value("c", b"read", NOW + 11) is None
    assert store.purge_expired(NOW + 11) == 1
    assert store.purge_expired(NOW + 12) == 0
    assert seen == [("c", b"read"), ("c", b"swept")]
