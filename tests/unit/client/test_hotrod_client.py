"""The Hot Rod client against the real connection task and an in-process cache."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from gridactor.client.hotrod import (
    HotRodConnectionError,
    HotRodError,
    WriteResult,
    encode_expiration,
    encode_header_tail,
    encode_request,
    open_hotrod_client_on_stream,
)
from gridactor.protocols.hotrod import messages as m
from gridactor.protocols.hotrod import operations as op
from gridactor.protocols.hotrod.codec import HotRodServerCodec
from gridactor.protocols.hotrod.connection import serve_hotrod
from tests.unit.client.helpers import make_ctx, serving

VERSIONS = [30, 31, 40, 41]

# ---------------------------------------------------------------- encoding, bytes only


def test_header_v41_bytes() -> None:
    frame = encode_request(3, 41, op.PING, encode_header_tail(41, "mycache", 0, "text/plain", "text/plain"))
    # As the Node client's first packet (protocol notes §3), except intelligence 1 (basic).
    assert frame == bytes.fromhex("A0 03 29 17 07 6D79636163686500 01 00 01 0D 00 01 0D 00 00")


def test_header_v30_has_no_params_and_none_media_type() -> None:
    frame = encode_request(200, 30, op.GET, encode_header_tail(30, "", op.FORCE_RETURN_VALUE))
    assert frame == bytes.fromhex("A0 C8 01 1E 03 00 01 01 00 00 00")


@pytest.mark.parametrize(
    ("lifespan", "max_idle", "expected"),
    [
        (None, None, "77"),
        (10, 0.5, "01 0A F4 03"),  # protocol notes §5.1 example: seconds / milliseconds
        (-1, None, "87"),
        (float("inf"), -5, "88"),
        (None, 60, "70 3C"),
        (1.25, None, "17 E2 09"),
    ],
)
def test_expiration_encoding(lifespan: float | None, max_idle: float | None, expected: str) -> None:
    assert encode_expiration(lifespan, max_idle) == bytes.fromhex(expected)


async def test_requests_decode_on_the_server_codec() -> None:
    """Every frame the client writes is what the server's codec expects, field by field."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    async with (
        open_hotrod_client_on_stream(client_stream, cache="c1") as client,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(client.put, b"k", b"v")
        nursery.start_soon(lambda: client.put(b"k2", "v2", lifespan=2.5, max_idle=-1, previous=True))
        nursery.start_soon(lambda: client.replace_with_version(b"k", b"w", 77, cache="c2"))
        nursery.start_soon(lambda: client.put_all({b"a": b"1", b"b": b"2"}, lifespan=3))
        nursery.start_soon(lambda: client.get_all([b"a", "b"]))
        codec = HotRodServerCodec()
        events: list[m.Request] = []
        while len(events) < 5:
            codec.receive_data(await server_stream.receive_some())
            while isinstance(event := codec.next_event(), m.Request):
                events.append(event)
        nursery.cancel_scope.cancel()
    by_type = {type(e): e for e in events}
    put = [e for e in events if isinstance(e, m.PutRequest)]
    assert sorted((p.key, p.value, p.flags, p.lifespan_ms, p.max_idle_ms) for p in put) == [
        (b"k", b"v", 0, None, None),
        (b"k2", b"v2", op.FORCE_RETURN_VALUE, 2500, -1),
    ]
    assert all(e.cache == "c1" for e in events if not isinstance(e, m.ReplaceIfUnmodifiedRequest))
    replace = by_type[m.ReplaceIfUnmodifiedRequest]
    assert isinstance(replace, m.ReplaceIfUnmodifiedRequest)
    assert (replace.cache, replace.key, replace.value, replace.entry_version) == ("c2", b"k", b"w", 77)
    put_all = by_type[m.PutAllRequest]
    assert isinstance(put_all, m.PutAllRequest)
    assert put_all.entries == ((b"a", b"1"), (b"b", b"2"))
    assert put_all.lifespan_ms == 3000
    get_all = by_type[m.GetAllRequest]
    assert isinstance(get_all, m.GetAllRequest)
    assert get_all.keys == (b"a", b"b")
    assert len({e.message_id for e in events}) == 5


# ---------------------------------------------------------------- against the real server


@pytest.mark.parametrize("version", VERSIONS)
async def test_basic_operations(version: int) -> None:
    async with serving(version=version) as (client, _):
        info = await client.ping()
        if version >= 30:
            assert info.server_version == op.SERVER_PROTOCOL_VERSION
            assert op.GET in info.operations
        assert await client.get(b"k") is None
        assert await client.put(b"k", b"v1") is None
        assert await client.get(b"k") == b"v1"
        assert await client.get("k") == b"v1"
        assert await client.put(b"k", b"v2", previous=True) == b"v1"
        assert await client.put(b"new", b"x", previous=True) is None
        assert await client.contains_key(b"k")
        assert not await client.contains_key(b"nope")
        assert await client.size() == 2

        absent = await client.put_if_absent(b"k", b"zzz", previous=True)
        assert absent == WriteResult(False, b"v2", absent.version)
        assert not absent
        assert await client.put_if_absent(b"k3", b"v3")

        assert not await client.replace(b"missing", b"x")
        replaced = await client.replace(b"k", b"v3", previous=True)
        assert replaced.done
        assert replaced.previous == b"v2"

        removed = await client.remove(b"k3", previous=True)
        assert removed.done
        assert removed.previous == b"v3"
        assert not await client.remove(b"k3")
        assert await client.size() == 2
        await client.clear()
        assert await client.size() == 0


@pytest.mark.parametrize("version", [31, 41])
async def test_versioned_operations(version: int) -> None:
    async with serving(version=version) as (client, _):
        await client.put(b"k", b"v1")
        meta = await client.get_with_metadata(b"k")
        assert meta is not None
        assert meta.value == b"v1"
        assert meta.lifespan_s == -1
        assert meta.max_idle_s == -1
        stale = meta.version + 1000
        assert not await client.replace_with_version(b"k", b"x", stale)
        assert await client.replace_with_version(b"k", b"v2", meta.version)
        assert await client.get(b"k") == b"v2"
        meta2 = await client.get_with_metadata(b"k")
        assert meta2 is not None
        assert meta2.version != meta.version
        assert not await client.remove_with_version(b"k", meta.version)
        removed = await client.remove_with_version(b"k", meta2.version, previous=True)
        assert removed.done
        assert removed.previous == b"v2"
        assert await client.get_with_metadata(b"k") is None


async def test_expiration_metadata() -> None:
    async with serving() as (client, _):
        await client.put(b"k", b"v", lifespan=100, max_idle=50)
        meta = await client.get_with_metadata(b"k")
        assert meta is not None
        assert (meta.lifespan_s, meta.max_idle_s) == (100, 50)
        assert meta.created_ms > 0
        assert meta.last_used_ms > 0


async def test_bulk_operations_and_stats() -> None:
    async with serving() as (client, _):
        await client.put_all([(b"a", b"1"), ("b", "2")])
        await client.put_all({b"c": b"3"})
        assert await client.get_all([b"a", b"b", b"c", b"missing"]) == {b"a": b"1", b"b": b"2", b"c": b"3"}
        assert await client.size() == 3
        assert await client.size(cache="other") == 0
        await client.put(b"x", b"y", cache="other")
        assert await client.get(b"x", cache="other") == b"y"
        assert await client.get(b"x") is None
        stats = await client.stats()
        assert int(stats["currentNumberOfEntries"]) == 3
        assert int(stats["stores"]) >= 3


async def test_error_response_raises_and_connection_stays_usable() -> None:
    async with serving() as (client, _):
        with pytest.raises(HotRodError) as info:
            await client.get(b"k", cache="no-such-cache")
        assert info.value.status == op.PARSE_ERROR
        assert "CacheNotFoundException" in info.value.message
        await client.put(b"k", b"v")
        assert await client.get(b"k") == b"v"


async def test_pipelined_calls_share_one_connection_and_coalesce() -> None:
    async with serving(count=True) as (client, counter):
        assert counter is not None
        values = {f"key-{i}".encode(): bytes([i]) * 100 for i in range(200)}
        async with trio.open_nursery() as nursery:
            for key, value in values.items():
                nursery.start_soon(client.put, key, value)
        results: dict[bytes, bytes | None] = {}

        async def fetch(key: bytes) -> None:
            results[key] = await client.get(key)

        sends_before = counter.sends
        async with trio.open_nursery() as nursery:
            for key in values:
                nursery.start_soon(fetch, key)
        assert results == values
        # 200 concurrent GETs went out in far fewer sends than requests.
        assert counter.sends - sends_before < 20
        assert client.statistics()["in_flight"] == 0


async def test_cancelled_call_leaves_connection_usable() -> None:
    async with serving() as (client, _):
        with trio.CancelScope() as scope:
            scope.cancel()
            await client.put(b"k", b"v" * 1000)
        assert await client.put(b"k2", b"v2") is None
        assert await client.get(b"k2") == b"v2"
        assert client.statistics()["in_flight"] == 0


async def test_server_closing_fails_waiting_and_later_calls() -> None:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    async with open_hotrod_client_on_stream(client_stream) as client:
        async with trio.open_nursery() as nursery:

            async def call() -> None:
                with pytest.raises(HotRodConnectionError):
                    await client.get(b"k")

            nursery.start_soon(call)
            await server_stream.receive_some()
            await server_stream.aclose()
        with pytest.raises(HotRodConnectionError):
            await client.ping()


async def test_garbage_response_breaks_the_connection() -> None:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    async with open_hotrod_client_on_stream(client_stream) as client, trio.open_nursery() as nursery:

        async def call() -> None:
            with pytest.raises(HotRodConnectionError, match="magic"):
                await client.get(b"k")

        nursery.start_soon(call)
        await server_stream.receive_some()
        await server_stream.send_all(b"\x42\x01\x04\x00\x00")


async def test_response_split_byte_by_byte() -> None:
    """A response arriving in 1-byte pieces is parsed once complete (lockstep stream)."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    async with open_hotrod_client_on_stream(client_stream) as client:
        got: list[bytes | None] = []

        async def call() -> None:
            got.append(await client.get(b"k"))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(call)
            await server_stream.receive_some()
            # A1, mid 1, GET response, success, no topology, byte[] of 3
            for byte in bytes.fromhex("A1 01 04 00 00 03") + b"abc":
                await server_stream.send_all(bytes([byte]))
                await trio.testing.wait_all_tasks_blocked()
        assert got == [b"abc"]


async def test_error_inside_body_is_not_an_exception_group() -> None:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_hotrod, server_stream, b"", make_ctx())
        with pytest.raises(HotRodError):
            async with open_hotrod_client_on_stream(client_stream) as client:
                await client.get(b"k", cache="missing")


def test_unknown_version_is_refused() -> None:
    from gridactor.client.hotrod import HotRodClient

    client_stream, _ = trio.testing.memory_stream_pair()
    with pytest.raises(ValueError, match="unsupported Hot Rod version"):
        HotRodClient(client_stream, version=12)
