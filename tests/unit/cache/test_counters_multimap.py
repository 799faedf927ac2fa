"""Counters and multimap buckets in the shard: store semantics, the IPC tuples, real shard processes."""

from __future__ import annotations

import pytest
import trio

from gridactor.cache.api import (
    INT64_MAX,
    INT64_MIN,
    CacheOp,
    CacheSettings,
    Clear,
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
    Get,
    MultimapContainsEntry,
    MultimapContainsKey,
    MultimapContainsValue,
    MultimapEntry,
    MultimapGet,
    MultimapPut,
    MultimapRemoveEntry,
    MultimapRemoveKey,
    MultimapSize,
    Size,
    segment_of,
)
from gridactor.cache.local import InProcessCacheService
from gridactor.cache.messages import (
    OP_TAGS,
    RESULT_DECODERS,
    STATUS_OK,
    ReplyBatch,
    RequestBatch,
    encode_op,
    execute_items,
    parse_message,
)
from gridactor.cache.pool import ShardPool
from gridactor.cache.store import ShardStore
from gridactor.errors import CacheNotFoundError, InvalidRequestError
from gridactor.runtime.framing import FrameDecoder, encode

OK, UNDEFINED = CounterStatus.OK, CounterStatus.UNDEFINED
LOWER, UPPER = CounterStatus.LOWER_BOUND_REACHED, CounterStatus.UPPER_BOUND_REACHED
STRONG = CounterConfig(initial_value=10)
BOUNDED = CounterConfig(bounded=True, lower_bound=0, upper_bound=3, initial_value=1)
WEAK = CounterConfig(weak=True, concurrency_level=8, initial_value=2)


def store(now: int = 5_000) -> ShardStore:
    return ShardStore([CacheSettings("c"), CacheSettings("d")], clock=lambda: now, epoch=7)


# ---------------------------------------------------------------- counters


def test_counter_definition_and_lookup() -> None:
    s = store()
    assert s.counter_get("x") == CounterResult(UNDEFINED)
    assert not s.counter_defined("x")
    assert s.counter_config("x") is None
    assert s.counter_create("x", STRONG) is True
    assert s.counter_create("x", WEAK) is False  # the name is taken; the first definition stays
    assert s.counter_defined("x")
    assert s.counter_config("x") == STRONG
    assert s.counter_get("x") == CounterResult(OK, 10)
    assert s.counter_create("b", BOUNDED)
    assert s.counter_create("w", WEAK)
    assert s.counter_names() == ["b", "w", "x"]


def test_unbounded_bounds_are_the_long_range_whatever_was_sent() -> None:
    s = store()
    s.counter_create("x", CounterConfig(lower_bound=5, upper_bound=6))
    config = s.counter_config("x")
    assert config is not None
    assert (config.lower_bound, config.upper_bound) == (INT64_MIN, INT64_MAX)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (CounterConfig(weak=True, bounded=True), "WEAK and BOUNDED"),
        (CounterConfig(weak=True, concurrency_level=0), "ISPN029509"),
        (CounterConfig(bounded=True, lower_bound=0, upper_bound=3, initial_value=4), "ISPN029508"),
        (CounterConfig(bounded=True, lower_bound=0, upper_bound=3, initial_value=-1), "ISPN029508"),
        (CounterConfig(bounded=True, lower_bound=2, upper_bound=2, initial_value=2), "ISPN029524"),
    ],
)
def test_invalid_definitions_are_refused(config: CounterConfig, message: str) -> None:
    problem = config.problem()
    assert problem is not None
    assert message in problem
    s = store()
    with pytest.raises(InvalidRequestError, match=message):
        s.counter_create("x", config)
    assert not s.counter_defined("x")


def test_strong_add_cas_get_and_set_reset() -> None:
    s = store()
    s.counter_create("x", STRONG)
    assert s.counter_add("x", 5) == CounterResult(OK, 15)
    assert s.counter_add("x", -20) == CounterResult(OK, -5)
    assert s.counter_compare_and_swap("x", -5, 100) == CounterResult(OK, -5)  # swapped
    assert s.counter_compare_and_swap("x", 7, 8) == CounterResult(OK, 100)  # not swapped
    assert s.counter_get_and_set("x", 42) == CounterResult(OK, 100)
    assert s.counter_get("x") == CounterResult(OK, 42)
    assert s.counter_reset("x") == CounterResult(OK, 10)
    assert s.counter_get("x") == CounterResult(OK, 10)


def test_unbounded_counters_saturate_at_the_long_range() -> None:
    s = store()
    s.counter_create("x", CounterConfig(initial_value=INT64_MAX - 1))
    assert s.counter_add("x", 10) == CounterResult(OK, INT64_MAX)
    s.counter_get_and_set("x", INT64_MIN + 1)
    assert s.counter_add("x", -10) == CounterResult(OK, INT64_MIN)


def test_bounded_add_stops_at_the_bound_and_keeps_reporting_it() -> None:
    s = store()
    s.counter_create("b", BOUNDED)
    assert s.counter_add("b", 2) == CounterResult(OK, 3)  # exactly the bound is fine
    assert s.counter_add("b", 1) == CounterResult(UPPER, 3)
    assert s.counter_get("b") == CounterResult(OK, 3)
    # Infinispan's state machine: while at the upper bound, add 0 and further adds report it too.
    assert s.counter_add("b", 0) == CounterResult(UPPER, 3)
    assert s.counter_add("b", 5) == CounterResult(UPPER, 3)
    assert s.counter_add("b", -1) == CounterResult(OK, 2)
    assert s.counter_add("b", -10) == CounterResult(LOWER, 0)
    assert s.counter_get("b") == CounterResult(OK, 0)
    assert s.counter_add("b", 1) == CounterResult(OK, 1)


def test_bounded_cas_and_set_refuse_out_of_range_values_without_change() -> None:
    s = store()
    s.counter_create("b", BOUNDED)
    assert s.counter_compare_and_swap("b", 1, 9) == CounterResult(UPPER, 3)
    assert s.counter_compare_and_swap("b", 2, 9) == CounterResult(OK, 1)  # no match: no bound check
    assert s.counter_get_and_set("b", -1) == CounterResult(LOWER, 0)
    assert s.counter_get("b") == CounterResult(OK, 1)
    assert s.counter_compare_and_swap("b", 1, 3) == CounterResult(OK, 1)
    assert s.counter_get("b") == CounterResult(OK, 3)


def test_weak_counters() -> None:
    s = store()
    s.counter_create("w", WEAK)
    assert s.counter_add("w", 3) == CounterResult(OK, 0)  # a weak add reports no value
    assert s.counter_get("w") == CounterResult(OK, 5)
    assert s.counter_compare_and_swap("w", 5, 6) == CounterResult(CounterStatus.NOT_STRONG)
    assert s.counter_get_and_set("w", 6) == CounterResult(CounterStatus.NOT_STRONG)
    assert s.counter_get("w") == CounterResult(OK, 5)


def test_remove_keeps_the_definition_and_restarts_at_the_initial_value() -> None:
    s = store()
    s.counter_create("w", WEAK)
    s.counter_add("w", 40)
    assert s.counter_remove("w") == CounterResult(OK, 2)
    assert s.counter_defined("w")
    assert s.counter_get("w") == CounterResult(OK, 2)
    for undefined in (s.counter_remove, s.counter_reset, s.counter_get):
        assert undefined("none") == CounterResult(UNDEFINED)
    assert s.counter_add("none", 1) == CounterResult(UNDEFINED)
    assert s.counter_compare_and_swap("none", 1, 2) == CounterResult(UNDEFINED)
    assert s.counter_get_and_set("none", 1) == CounterResult(UNDEFINED)


def test_counters_do_not_belong_to_a_cache() -> None:
    s = store()
    assert s.apply("ignored", CounterCreate("x", STRONG)) is True
    s.clear("c")
    s.drop_cache("c")
    assert s.apply("", CounterGet("x")) == CounterResult(OK, 10)


# ---------------------------------------------------------------- multimap buckets


def test_multimap_set_semantics_without_duplicates() -> None:
    s = store(now=9_000)
    assert s.multimap_get("c", b"k") is None
    assert s.multimap_put("c", b"k", b"a", False, 9_000) is True
    assert s.multimap_put("c", b"k", b"b", False, 9_000) is True
    assert s.multimap_put("c", b"k", b"a", False, 9_000) is False
    found = s.multimap_get("c", b"k")
    assert isinstance(found, MultimapEntry)
    assert (found.key, found.values, found.created_ms) == (b"k", (b"a", b"b"), 9_000)
    assert s.multimap_size("c") == 2
    assert s.multimap_remove_entry("c", b"k", b"a", False, 9_000) is True
    assert s.multimap_remove_entry("c", b"k", b"a", False, 9_000) is False
    assert s.multimap_remove_entry("c", b"k", b"b", False, 9_000) is True
    assert s.multimap_get("c", b"k") is None  # an emptied bucket goes
    assert not s.multimap_contains_key("c", b"k")


def test_multimap_duplicates_are_a_list() -> None:
    s = store()
    for value in (b"a", b"b", b"a"):
        assert s.multimap_put("c", b"k", value, True, 5_000)
    found = s.multimap_get("c", b"k")
    assert found is not None
    assert found.values == (b"a", b"b", b"a")
    assert s.multimap_size("c") == 3
    # Without duplicates a removal drops the first equal value; with them, every one.
    assert s.multimap_remove_entry("c", b"k", b"a", False, 5_000)
    middle = s.multimap_get("c", b"k")
    assert middle is not None
    assert middle.values == (b"b", b"a")
    assert s.multimap_put("c", b"k", b"a", True, 5_000)
    assert s.multimap_remove_entry("c", b"k", b"a", True, 5_000)
    after = s.multimap_get("c", b"k")
    assert after is not None
    assert after.values == (b"b",)


def test_multimap_versions_change_with_the_bucket() -> None:
    s = store()
    s.multimap_put("c", b"k", b"a", False, 5_000)
    first = s.multimap_get("c", b"k")
    s.multimap_put("c", b"k", b"a", False, 5_000)  # no change: same version
    same = s.multimap_get("c", b"k")
    s.multimap_put("c", b"k", b"b", False, 5_000)
    changed = s.multimap_get("c", b"k")
    assert first is not None
    assert same is not None
    assert changed is not None
    assert first.version == same.version != changed.version


def test_multimap_queries_and_isolation() -> None:
    s = store()
    s.multimap_put("c", b"k1", b"a", False, 5_000)
    s.multimap_put("c", b"k2", b"b", False, 5_000)
    s.multimap_put("d", b"k1", b"z", False, 5_000)
    assert s.multimap_contains_entry("c", b"k1", b"a")
    assert not s.multimap_contains_entry("c", b"k1", b"b")
    assert not s.multimap_contains_entry("c", b"nope", b"a")
    assert s.multimap_contains_value("c", b"b")
    assert not s.multimap_contains_value("c", b"z")  # another cache's bucket
    assert s.multimap_size("d") == 1
    # Buckets are not plain entries, and plain entries are not buckets.
    assert s.apply("c", Get(b"k1")) is None
    assert s.apply("c", Size()) == 0
    assert s.multimap_remove_key("c", b"k1") is True
    assert s.multimap_remove_key("c", b"k1") is False
    s.apply("c", Clear())
    assert s.multimap_size("c") == 0
    assert not s.multimap_contains_key("c", b"k2")
    assert s.multimap_size("d") == 1
    with pytest.raises(CacheNotFoundError):
        s.multimap_put("nope", b"k", b"v", False, 5_000)


# ---------------------------------------------------------------- IPC: every op crosses as a tuple

OPS: list[CacheOp] = [
    MultimapPut(b"k", b"a"),
    MultimapPut(b"k", b"a", duplicates=True),
    MultimapGet(b"k"),
    MultimapGet(b"nope"),
    MultimapContainsKey(b"k"),
    MultimapContainsEntry(b"k", b"a"),
    MultimapContainsValue(b"a"),
    MultimapSize(),
    MultimapRemoveEntry(b"k", b"a", duplicates=True),
    MultimapRemoveKey(b"k"),
    CounterCreate("s", STRONG),
    CounterCreate("b", BOUNDED),
    CounterCreate("w", WEAK),
    CounterGetConfig("b"),
    CounterGetConfig("nope"),
    CounterIsDefined("s"),
    CounterGet("s"),
    CounterAddAndGet("s", -3),
    CounterAddAndGet("b", 9),
    CounterCompareAndSwap("s", 7, 1),
    CounterCompareAndSwap("w", 7, 1),
    CounterGetAndSet("s", 5),
    CounterReset("s"),
    CounterRemove("w"),
    CounterGet("nope"),
    CounterNames(),
]


def wire(obj: object) -> object:
    decoder = FrameDecoder()
    decoder.receive_data(encode(obj))
    [out] = decoder.next_frames()
    return out


def test_every_op_roundtrips_like_apply() -> None:
    local, remote = store(), store()
    batch = parse_message(wire(RequestBatch([encode_op(i, "c", o) for i, o in enumerate(OPS)]).to_wire()))
    assert isinstance(batch, RequestBatch)
    out: list[object] = []
    execute_items(remote, batch.items, 5_000, out)
    reply = parse_message(wire(ReplyBatch(out).to_wire()))
    assert isinstance(reply, ReplyBatch)
    for j, o in enumerate(OPS):
        rid, status, payload = reply.flat[3 * j : 3 * j + 3]
        assert (rid, status) == (j, STATUS_OK), payload
        assert RESULT_DECODERS[OP_TAGS[type(o)]](payload) == local.apply("c", o, 5_000), o


async def test_in_process_service_serves_counters_without_a_default_cache() -> None:
    service = InProcessCacheService([CacheSettings("c")], default_cache=None)
    got = await service.execute_many([("", CounterCreate("x", STRONG)), ("", MultimapSize())])
    assert got[0] is True
    assert isinstance(got[1], CacheNotFoundError)


# ---------------------------------------------------------------- real shard processes


def name_on(shard: int, n: int = 2, prefix: str = "n") -> str:
    i = 0
    while segment_of(f"{prefix}{i}".encode()) % n != shard:
        i += 1
    return f"{prefix}{i}"


async def test_routing_and_fan_out_through_shard_processes(nursery: trio.Nursery) -> None:
    pool = ShardPool([CacheSettings("c")], "c", 2, grace=1.0)
    with trio.fail_after(10):
        service = await nursery.start(pool.run)
        names = [name_on(0), name_on(1)]
        keys = [name_on(0, prefix="k").encode(), name_on(1, prefix="k").encode()]
        batch: list[tuple[str, CacheOp]] = [("no-such-cache", CounterCreate(n, STRONG)) for n in names]
        batch += [("c", MultimapPut(k, v)) for k in keys for v in (b"a", b"b")]
        assert await service.execute_many(batch) == [True] * 6
        got = await service.execute_many([
            ("", CounterAddAndGet(names[0], 1)),
            ("", CounterAddAndGet(names[1], 2)),
            ("", CounterNames()),
            ("c", MultimapSize()),
            ("c", MultimapContainsValue(b"b")),
            ("c", MultimapContainsValue(b"z")),
            ("c", MultimapGet(keys[1])),
        ])
        assert got[:6] == [CounterResult(OK, 11), CounterResult(OK, 12), sorted(names), 4, True, False]
        bucket = got[6]
        assert isinstance(bucket, MultimapEntry)
        assert bucket.values == (b"a", b"b")
        # Each counter lives on the shard its name hashes to.
        stores_hold = await service.execute_many([("", CounterIsDefined(n)) for n in names])
        assert stores_hold == [True, True]
        nursery.cancel_scope.cancel()
