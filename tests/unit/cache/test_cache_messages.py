"""The shard IPC codec: every op crosses as a tuple and comes back as the same result."""

from __future__ import annotations

import pytest
from tests.unit.cache.shard_helpers import wire

from gridactor.cache.api import (
    CacheOp,
    CacheSettings,
    Clear,
    ContainsKey,
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
    Size,
    Stats,
)
from gridactor.cache.messages import (
    OP_TAGS,
    RESULT_DECODERS,
    STATUS_ERROR,
    STATUS_OK,
    DefineCache,
    DropCache,
    Hello,
    ProtocolViolation,
    RemoteShardError,
    ReplyBatch,
    RequestBatch,
    Shutdown,
    encode_op,
    error_from_wire,
    execute_items,
    parse_message,
    settings_from_item,
)
from gridactor.cache.store import ShardStore
from gridactor.errors import CacheExistsError, CacheNotFoundError, InvalidRequestError

OPS: list[CacheOp] = [
    Put(b"a", b"1", lifespan_ms=10_000, max_idle_ms=5_000, media_type="text/plain"),
    Get(b"a"),
    Get(b"zz"),
    ContainsKey(b"a"),
    PutIfAbsent(b"a", b"2"),
    PutIfAbsent(b"b", b"2"),
    Replace(b"b", b"3"),
    Replace(b"nope", b"3"),
    ReplaceIfUnmodified(b"b", b"4", 12345),
    Remove(b"nope"),
    RemoveIfUnmodified(b"b", 1),
    PutAll(((b"x", b"1"), (b"y", b"2")), media_type="m"),
    GetAll((b"x", b"y", b"q")),
    Size(),
    Stats(),
    ScanSegments(),
    ScanSegments((3, 7)),
    Remove(b"a"),
    Clear(),
    Size(),
]


def test_every_op_roundtrips_like_apply() -> None:
    def clock() -> int:
        return 5_000

    local = ShardStore([CacheSettings("c")], clock=clock, epoch=42)
    remote = ShardStore([CacheSettings("c")], clock=clock, epoch=42)
    items = [encode_op(rid, "c", op) for rid, op in enumerate(OPS)]
    batch = parse_message(wire(RequestBatch(items).to_wire()))
    assert isinstance(batch, RequestBatch)
    out: list[object] = []
    execute_items(remote, batch.items, clock(), out)
    reply = parse_message(wire(ReplyBatch(out).to_wire()))
    assert isinstance(reply, ReplyBatch)
    flat = reply.flat
    for j, op in enumerate(OPS):
        rid, status, payload = flat[3 * j : 3 * j + 3]
        assert rid == j
        assert status == STATUS_OK
        assert RESULT_DECODERS[OP_TAGS[type(op)]](payload) == local.apply("c", op), op


def test_errors_cross_as_local_classes() -> None:
    store = ShardStore([CacheSettings("c")])
    items = [
        encode_op(0, "nope", Get(b"k")),
        encode_op(1, "c", ScanSegments((999,))),
        DefineCache(CacheSettings("c")).to_item(2),
        (3, "c", 99),  # unknown op tag
        "garbage",
        encode_op(5, "c", Size()),
    ]
    out: list[object] = []
    execute_items(store, wire(tuple(items)), 0, out)  # type: ignore[arg-type]
    flat = wire(out)
    assert isinstance(flat, tuple)
    statuses = flat[1::3]
    assert statuses == (STATUS_ERROR,) * 5 + (STATUS_OK,)
    errs = [error_from_wire(p) for p in flat[2:15:3]]
    assert isinstance(errs[0], CacheNotFoundError)
    assert errs[0].cache == "nope"
    assert isinstance(errs[1], InvalidRequestError)
    assert isinstance(errs[2], CacheExistsError)
    assert errs[2].cache == "c"
    assert isinstance(errs[3], RemoteShardError)
    assert errs[3].boxed_type == "KeyError"
    assert isinstance(errs[4], RemoteShardError)
    assert isinstance(error_from_wire("junk"), RemoteShardError)


def test_define_and_drop_items() -> None:
    s = CacheSettings("n", mode="distributed", lifespan_ms=5, max_idle_ms=6, max_count=7, statistics=False,
                      key_media_type="k", value_media_type="v")
    item = wire(DefineCache(s).to_item(9))
    assert isinstance(item, tuple)
    assert settings_from_item(item) == s
    store = ShardStore()
    out: list[object] = []
    execute_items(store, [item, wire(DropCache("n").to_item(10))], 0, out)  # type: ignore[list-item]
    assert out == [9, STATUS_OK, None, 10, STATUS_OK, None]
    assert store.cache_names() == []


def test_messages_parse() -> None:
    assert parse_message(wire(Hello(1, 2, 3, 4).to_wire())) == Hello(1, 2, 3, 4)
    assert parse_message(wire(Shutdown().to_wire())) == Shutdown()
    for bad in [None, (), (77,), (1, "x", 2, 3, 4), (1, 2), (3, (1, 2)), (2, 5)]:
        with pytest.raises(ProtocolViolation):
            parse_message(bad)
