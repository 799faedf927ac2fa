"""Hot Rod counters (0x4B..0x80) and multimap (0x67..0x78): request bytes, response bytes, the session.

Request bodies are the ones the Node client (infinispan 0.16.3, lib/protocols.js CounterMixin
and MultimapMixin) writes; layouts and statuses follow hotrod.gr and hotrod_protocol.adoc.
"""

from __future__ import annotations

import pytest

from gridactor.cache.api import INT64_MAX, INT64_MIN, CacheSettings, CounterConfig, MultimapEntry
from gridactor.cache.local import InProcessCacheService
from gridactor.protocols.hotrod import messages as m
from gridactor.protocols.hotrod import operations as op
from gridactor.protocols.hotrod import responses as resp
from gridactor.protocols.hotrod.codec import HotRodServerCodec
from gridactor.protocols.hotrod.connection import drain
from gridactor.protocols.hotrod.handler import HotRodSession
from gridactor.protocols.hotrod.primitives import Reader, write_bytes, write_long, write_string
from gridactor.security import access
from gridactor.security.permissions import Permission
from gridactor.server.context import EndpointContext
from tests.unit.hotrod.hotrod_helpers import Response, error_of, frame, next_response, one

H41 = (7, 41, "c", 0, "text/plain", "text/plain")  # message id, version, cache, flags, media types


def decode(data: bytes) -> m.Event:
    codec = HotRodServerCodec()
    codec.receive_data(data)
    event = codec.next_event()
    assert codec.next_event() is m.NEED_DATA
    assert codec.buffered == 0
    return event


def counter_frame(opcode: int, body: bytes, **kw: object) -> bytes:
    return frame(opcode, body, mid=7, cache="c", **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------- request decoding


def test_counter_create_strong_weak_bounded() -> None:
    # Node: name, flags, [vInt concurrency if weak], [long lower, long upper if bounded], long initial.
    strong = write_string("s") + b"\x00" + write_long(10)
    assert decode(counter_frame(op.COUNTER_CREATE, strong)) == m.CounterCreateRequest(
        *H41, "s", CounterConfig(initial_value=10)
    )
    weak = write_string("w") + b"\x01" + b"\x08" + write_long(-2)
    assert decode(counter_frame(op.COUNTER_CREATE, weak)) == m.CounterCreateRequest(
        *H41, "w", CounterConfig(weak=True, concurrency_level=8, initial_value=-2)
    )
    bounded = write_string("b") + b"\x06" + write_long(-1) + write_long(3) + write_long(1)
    assert decode(counter_frame(op.COUNTER_CREATE, bounded)) == m.CounterCreateRequest(
        *H41,
        "b",
        CounterConfig(bounded=True, persistent=True, lower_bound=-1, upper_bound=3, initial_value=1),
    )


def test_counter_create_weak_and_bounded_is_read_whole_and_refused() -> None:
    body = write_string("x") + b"\x03" + b"\x10" + write_long(0) + write_long(9) + write_long(1)
    codec = HotRodServerCodec()
    codec.receive_data(counter_frame(op.COUNTER_CREATE, body) + frame(op.PING, mid=8))
    event = codec.next_event()
    assert isinstance(event, m.RequestError)
    assert (event.message_id, event.status, event.close) == (7, op.PARSE_ERROR, False)
    assert "WEAK and BOUNDED" in event.text
    assert isinstance(codec.next_event(), m.PingRequest)


@pytest.mark.parametrize(
    ("opcode", "body", "expected"),
    [
        (op.COUNTER_GET_CONFIGURATION, write_string("n"), m.CounterGetConfigurationRequest(*H41, "n")),
        (op.COUNTER_IS_DEFINED, write_string("n"), m.CounterIsDefinedRequest(*H41, "n")),
        (op.COUNTER_GET, write_string("n"), m.CounterGetRequest(*H41, "n")),
        (op.COUNTER_RESET, write_string("n"), m.CounterResetRequest(*H41, "n")),
        (op.COUNTER_REMOVE, write_string("n"), m.CounterRemoveRequest(*H41, "n")),
        (
            op.COUNTER_ADD_AND_GET,
            write_string("n") + write_long(-5),
            m.CounterAddAndGetRequest(*H41, "n", -5),
        ),
        (op.COUNTER_GET_AND_SET, write_string("n") + write_long(9), m.CounterGetAndSetRequest(*H41, "n", 9)),
        (
            op.COUNTER_CAS,
            write_string("n") + write_long(1) + write_long(INT64_MAX),
            m.CounterCompareAndSwapRequest(*H41, "n", 1, INT64_MAX),
        ),
        (op.COUNTER_GET_NAMES, b"", m.CounterGetNamesRequest(*H41)),
    ],
)
def test_counter_requests(opcode: int, body: bytes, expected: m.Request) -> None:
    assert decode(counter_frame(opcode, body)) == expected


def test_multimap_requests_as_node_sends_them() -> None:
    key, value, no_dup = write_bytes(b"k"), write_bytes(b"v"), b"\x00"
    cases: list[tuple[int, bytes, m.Request]] = [
        (op.MULTIMAP_GET, key + no_dup, m.MultimapGetRequest(*H41, b"k", False)),
        (op.MULTIMAP_GET_WITH_METADATA, key + b"\x01", m.MultimapGetWithMetadataRequest(*H41, b"k", True)),
        # put carries an expiration (Node: its lifespan options); it is read and ignored
        (
            op.MULTIMAP_PUT,
            key + b"\x01\x0a\xf4\x03" + value + no_dup,
            m.MultimapPutRequest(*H41, b"k", b"v", False),
        ),
        (op.MULTIMAP_REMOVE_KEY, key + no_dup, m.MultimapRemoveKeyRequest(*H41, b"k", False)),
        (
            op.MULTIMAP_REMOVE_ENTRY,
            key + b"\x77" + value + b"\x01",
            m.MultimapRemoveEntryRequest(*H41, b"k", b"v", True),
        ),
        (op.MULTIMAP_SIZE, no_dup, m.MultimapSizeRequest(*H41, False)),
        (
            op.MULTIMAP_CONTAINS_ENTRY,
            key + b"\x77" + value + no_dup,
            m.MultimapContainsEntryRequest(*H41, b"k", b"v", False),
        ),
        (op.MULTIMAP_CONTAINS_KEY, key + no_dup, m.MultimapContainsKeyRequest(*H41, b"k", False)),
        (
            op.MULTIMAP_CONTAINS_VALUE,
            b"\x77" + value + no_dup,
            m.MultimapContainsValueRequest(*H41, b"v", False),
        ),
    ]
    for opcode, body, expected in cases:
        assert decode(counter_frame(opcode, body)) == expected, hex(opcode)


def test_multimap_at_31_reads_nodes_flag_but_never_supports_duplicates() -> None:
    body = write_bytes(b"k") + b"\x77" + write_bytes(b"v") + b"\x01"
    got = decode(frame(op.MULTIMAP_PUT, body, version=31))
    assert isinstance(got, m.MultimapPutRequest)
    assert (got.key, got.value, got.duplicates) == (b"k", b"v", False)


# ---------------------------------------------------------------- response bytes


def test_counter_response_bytes() -> None:
    assert resp.counter_value(5, op.COUNTER_GET, -1) == bytes.fromhex("A1 05 57 00 00") + b"\xff" * 8
    assert resp.counter_value(5, op.COUNTER_GET_AND_SET, 3) == bytes.fromhex("A1 05 80 00 00") + write_long(3)
    assert resp.status_only(5, op.COUNTER_IS_DEFINED, op.SUCCESS) == bytes.fromhex("A1 05 51 00 00")
    strong = resp.counter_configuration(5, CounterConfig(initial_value=2))
    assert strong == bytes.fromhex("A1 05 4E 00 00 00") + write_long(2)
    weak = resp.counter_configuration(5, CounterConfig(weak=True, persistent=True, concurrency_level=300))
    assert weak == bytes.fromhex("A1 05 4E 00 00 05 AC 02") + write_long(0)
    bounded = resp.counter_configuration(5, CounterConfig(bounded=True, lower_bound=-3, upper_bound=3))
    assert bounded == bytes.fromhex("A1 05 4E 00 00 02") + write_long(-3) + write_long(3) + write_long(0)
    names = resp.counter_names(5, ["a", "bc"])
    assert names == bytes.fromhex("A1 05 65 00 00 02 01 61 02 62 63")


def test_multimap_response_bytes() -> None:
    assert resp.multimap_values(5, (b"a", b"bc")) == bytes.fromhex("A1 05 68 00 00 02 01 61 02 62 63")
    entry = MultimapEntry(b"k", (b"a",), 0x0102, 0)
    with_metadata = resp.multimap_entry(5, entry)
    expected = bytes.fromhex("A1 05 6A 00 00 03") + write_long(0x0102) + bytes.fromhex("01 01 61")
    assert with_metadata == expected
    assert resp.boolean(5, op.MULTIMAP_CONTAINS_VALUE, True) == bytes.fromhex("A1 05 78 00 00 01")
    assert resp.boolean(5, op.MULTIMAP_REMOVE_KEY, False) == bytes.fromhex("A1 05 6E 00 00 00")
    assert resp.multimap_size(5, 300) == bytes.fromhex("A1 05 72 00 00 AC 02")


# ---------------------------------------------------------------- the session


def make_session(default: str | None = "c") -> HotRodSession:
    caches = InProcessCacheService([CacheSettings(name="c")], default_cache=default, clock=lambda: 1_000)
    return HotRodSession(EndpointContext(caches=caches, security_realm=None))


async def raw(session: HotRodSession, *frames: bytes) -> bytes:
    codec = HotRodServerCodec()
    codec.receive_data(b"".join(frames))
    batch, _closed = drain(codec)
    assert len(batch) == len(frames)
    return await session.handle_batch(batch)


async def send(session: HotRodSession, *frames: bytes) -> Reader:
    return Reader(await raw(session, *frames))


async def ask(session: HotRodSession, opcode: int, body: bytes, **kw: object) -> Response:
    r = await send(session, frame(opcode, body, **kw))  # type: ignore[arg-type]
    return next_response(r)


def name(n: str) -> bytes:
    return write_string(n)


async def test_counter_session_round_trip_in_one_batch() -> None:
    session = make_session()
    r = await send(
        session,
        frame(op.COUNTER_IS_DEFINED, name("s"), mid=1),
        frame(op.COUNTER_GET, name("s"), mid=2),
        frame(op.COUNTER_CREATE, name("s") + b"\x00" + write_long(10), mid=3),
        frame(op.COUNTER_CREATE, name("s") + b"\x00" + write_long(0), mid=4),
        frame(op.COUNTER_IS_DEFINED, name("s"), mid=5),
        frame(op.COUNTER_ADD_AND_GET, name("s") + write_long(5), mid=6),
        frame(op.COUNTER_CAS, name("s") + write_long(15) + write_long(1), mid=7),
        frame(op.COUNTER_GET_AND_SET, name("s") + write_long(4), mid=8),
        frame(op.COUNTER_RESET, name("s"), mid=9),
        frame(op.COUNTER_GET, name("s"), mid=10),
        frame(op.COUNTER_GET_CONFIGURATION, name("s"), mid=11),
        frame(op.COUNTER_GET_CONFIGURATION, name("none"), mid=12),
        frame(op.COUNTER_REMOVE, name("none"), mid=13),
        frame(op.COUNTER_REMOVE, name("s"), mid=14),
        frame(op.COUNTER_GET_NAMES, b"", mid=15),
    )
    def status(mid: int, opcode: int) -> int:
        got = next_response(r)
        assert (got.message_id, got.opcode) == (mid, opcode)
        return got.status

    assert status(1, 0x51) == op.NOT_EXECUTED  # isDefined: 0x01 = not defined
    assert status(2, 0x57) == op.KEY_DOES_NOT_EXIST
    assert status(3, 0x4C) == op.SUCCESS
    assert status(4, 0x4C) == op.NOT_EXECUTED  # already defined
    assert status(5, 0x51) == op.SUCCESS
    assert (status(6, 0x53), r.long()) == (op.SUCCESS, 15)
    assert (status(7, 0x59), r.long()) == (op.SUCCESS, 15)  # the value before: swapped
    assert (status(8, 0x80), r.long()) == (op.SUCCESS, 1)
    assert status(9, 0x55) == op.SUCCESS
    assert (status(10, 0x57), r.long()) == (op.SUCCESS, 10)
    assert (status(11, 0x4E), r.byte(), r.long()) == (op.SUCCESS, 0, 10)
    assert status(12, 0x4E) == op.KEY_DOES_NOT_EXIST
    assert status(13, 0x5F) == op.KEY_DOES_NOT_EXIST
    assert status(14, 0x5F) == op.SUCCESS
    assert status(15, 0x65) == op.SUCCESS
    assert (r.vint(), r.string(10)) == (1, "s")
    assert r.pos == len(r.data)


async def test_counters_need_no_cache() -> None:
    session = make_session(default=None)  # Infinispan serves counters whatever the cache
    created = await ask(session, op.COUNTER_CREATE, name("x") + b"\x00" + write_long(3), cache="")
    assert created.status == op.SUCCESS
    got = await ask(session, op.COUNTER_GET, name("x"), cache="no-such-cache")
    assert (got.status, got.body.long()) == (op.SUCCESS, 3)


async def test_bound_refusals_are_error_frames_and_the_stream_goes_on() -> None:
    session = make_session()
    bounded = name("b") + b"\x02" + write_long(0) + write_long(3) + write_long(1)
    assert (await ask(session, op.COUNTER_CREATE, bounded)).status == op.SUCCESS
    out = await send(
        session,
        frame(op.COUNTER_ADD_AND_GET, name("b") + write_long(5), mid=2),
        frame(op.COUNTER_CAS, name("b") + write_long(3) + write_long(-1), mid=3),
        frame(op.COUNTER_GET, name("b"), mid=4),
    )
    for mid, bound in ((2, "Upper"), (3, "Lower")):
        refused = next_response(out)
        assert (refused.message_id, refused.opcode, refused.status) == (mid, 0x50, op.SERVER_ERROR)
        text = out.string(1000)
        exception = "org.infinispan.counter.exception.CounterOutOfBoundsException"
        assert text == f"{exception}: ISPN029501: {bound} bound reached."
    last = next_response(out)
    assert (last.message_id, last.status, out.long()) == (4, op.SUCCESS, 3)
    assert out.pos == len(out.data)


async def test_weak_counter_rules_and_invalid_definitions() -> None:
    session = make_session()
    weak = name("w") + b"\x01\x04" + write_long(2)
    assert (await ask(session, op.COUNTER_CREATE, weak)).status == op.SUCCESS
    added = await ask(session, op.COUNTER_ADD_AND_GET, name("w") + write_long(3))
    assert (added.status, added.body.long()) == (op.SUCCESS, 0)
    _, status, text = error_of(await raw(session, frame(op.COUNTER_GET_AND_SET, name("w") + write_long(1))))
    assert status == op.SERVER_ERROR
    assert "ISPN029514" in text
    assert "Expected=STRONG" in text
    bad = name("x") + b"\x02" + write_long(0) + write_long(3) + write_long(7)  # initial value over the bound
    _, status, text = error_of(await raw(session, frame(op.COUNTER_CREATE, bad)))
    assert status == op.SERVER_ERROR
    assert text.startswith("org.infinispan.counter.exception.CounterConfigurationException: ISPN029508")
    nameless = frame(op.COUNTER_CREATE, name("") + b"\x00" + write_long(0))
    _, status, text = error_of(await raw(session, nameless))
    assert "ISPN029503" in text
    defined = await ask(session, op.COUNTER_IS_DEFINED, name("x"))
    assert defined.status == op.NOT_EXECUTED


async def test_multimap_session() -> None:
    session = make_session()
    kv = write_bytes(b"k") + b"\x77"
    r = await send(
        session,
        frame(op.MULTIMAP_GET, write_bytes(b"k") + b"\x00", mid=1),
        frame(op.MULTIMAP_PUT, kv + write_bytes(b"a") + b"\x00", mid=2),
        frame(op.MULTIMAP_PUT, kv + write_bytes(b"b") + b"\x00", mid=3),
        frame(op.MULTIMAP_PUT, kv + write_bytes(b"a") + b"\x01", mid=4),  # duplicates allowed
        frame(op.MULTIMAP_GET, write_bytes(b"k") + b"\x00", mid=5),
        frame(op.MULTIMAP_GET_WITH_METADATA, write_bytes(b"k") + b"\x00", mid=6),
        frame(op.MULTIMAP_SIZE, b"\x00", mid=7),
        frame(op.MULTIMAP_CONTAINS_ENTRY, kv + write_bytes(b"b") + b"\x00", mid=8),
        frame(op.MULTIMAP_CONTAINS_VALUE, b"\x77" + write_bytes(b"z") + b"\x00", mid=9),
        frame(op.MULTIMAP_REMOVE_ENTRY, kv + write_bytes(b"a") + b"\x01", mid=10),
        frame(op.MULTIMAP_CONTAINS_KEY, write_bytes(b"k") + b"\x00", mid=11),
        frame(op.MULTIMAP_REMOVE_KEY, write_bytes(b"k") + b"\x00", mid=12),
        frame(op.MULTIMAP_GET_WITH_METADATA, write_bytes(b"k") + b"\x00", mid=13),
        frame(op.SIZE, mid=14),
    )
    def head(mid: int, opcode: int, status: int = op.SUCCESS) -> None:
        got = next_response(r)
        assert (got.message_id, got.opcode, got.status) == (mid, opcode, status)

    head(1, 0x68, op.KEY_DOES_NOT_EXIST)
    for mid in (2, 3, 4):
        head(mid, 0x6C)
    head(5, 0x68)
    assert [r.array(10) for _ in range(r.vint())] == [b"a", b"b", b"a"]
    head(6, 0x6A)
    assert r.byte() == 0x03  # immortal: no times
    r.long()  # version
    assert [r.array(10) for _ in range(r.vint())] == [b"a", b"b", b"a"]
    head(7, 0x72)
    assert r.vlong() == 3
    head(8, 0x74)
    assert r.byte() == 1
    head(9, 0x78)
    assert r.byte() == 0
    head(10, 0x70)
    assert r.byte() == 1  # both "a"s went
    head(11, 0x76)
    assert r.byte() == 1
    head(12, 0x6E)
    assert r.byte() == 1
    head(13, 0x6A, op.KEY_DOES_NOT_EXIST)
    head(14, 0x2A)
    assert r.vlong() == 0  # buckets are not plain entries
    assert r.pos == len(r.data)


async def test_multimap_on_an_unknown_cache_is_cache_not_found() -> None:
    session = make_session()
    _, status, text = error_of(await raw(session, frame(op.MULTIMAP_SIZE, b"\x00", cache="nope")))
    assert status == 0x84
    assert "CacheNotFoundException" in text


def test_every_new_opcode_has_an_access_rule() -> None:
    new = [code for code, name in op.OPERATION_NAMES.items() if "COUNTER" in name or "MULTIMAP" in name]
    assert len(new) == 21
    for code in new:
        assert access.HOTROD[code].scope is access.Scope.CACHE
    assert access.HOTROD[op.MULTIMAP_SIZE].permission is Permission.BULK_READ
    assert access.HOTROD[op.MULTIMAP_CONTAINS_VALUE].permission is Permission.BULK_READ
    assert access.HOTROD[op.MULTIMAP_PUT].permission is Permission.WRITE
    assert access.HOTROD[op.COUNTER_GET].permission is Permission.READ
    assert access.HOTROD[op.COUNTER_ADD_AND_GET].permission is Permission.WRITE


def test_ping_advertises_counters_and_multimap() -> None:
    for code in (op.COUNTER_CREATE, op.COUNTER_GET_AND_SET, op.MULTIMAP_GET, op.MULTIMAP_CONTAINS_VALUE):
        assert code in op.SUPPORTED_OPERATIONS
    assert op.COUNTER_ADD_LISTENER not in op.SUPPORTED_OPERATIONS
    assert INT64_MIN < 0 < INT64_MAX
    assert one(resp.status_only(1, op.COUNTER_REMOVE, op.SUCCESS)).opcode == 0x5F
