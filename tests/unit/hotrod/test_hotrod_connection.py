from __future__ import annotations

import trio
import trio.testing

from gridactor.cache.api import CacheSettings
from gridactor.cache.local import InProcessCacheService
from gridactor.protocols.hotrod import operations as op
from gridactor.protocols.hotrod.connection import serve_hotrod
from gridactor.protocols.hotrod.primitives import Reader, write_bytes
from gridactor.server.context import EndpointContext
from tests.unit.hotrod.hotrod_helpers import frame, kv, next_response

NODE_FIRST_PACKET = bytes.fromhex("A0 03 29 17 07 6D79636163686500 03 00 01 0D 00 01 0D 00 00")


class CountingStream(trio.abc.Stream):
    """Delegates to another stream and counts writes."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.sends = 0
        self.closed = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.sends += 1
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        self.closed = True
        await self.inner.aclose()


def make_ctx() -> EndpointContext:
    caches = InProcessCacheService(
        [CacheSettings(name="default"), CacheSettings(name="mycache")], default_cache="default"
    )
    return EndpointContext(caches=caches)


async def read_exactly_responses(stream: trio.abc.Stream, count: int) -> list[tuple[int, int, int]]:
    """Receive until ``count`` complete responses (header + body of known shapes) arrived."""
    data = b""
    while True:
        try:
            return parse_responses(data, count)
        except Exception:
            chunk = await stream.receive_some()
            assert chunk, f"connection closed after {data!r}"
            data += chunk


def parse_responses(data: bytes, count: int) -> list[tuple[int, int, int]]:
    r = Reader(data)
    out = []
    for _ in range(count):
        resp = next_response(r)
        if resp.opcode == 0x50:
            r.string(10_000)
        elif resp.opcode == 0x18:
            r.media_type(100)
            r.media_type(100)
            r.byte()
            for _ in range(r.vint()):
                r.fixed(2)
        elif resp.opcode == 0x04 and resp.status == 0:
            r.array(10_000)
        out.append((resp.message_id, resp.opcode, resp.status))
    assert r.pos == len(data)
    return out


async def test_sniffed_bytes_pipelining_and_one_send_per_batch() -> None:
    client, server_side = trio.testing.memory_stream_pair()
    server = CountingStream(server_side)
    ctx = make_ctx()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_hotrod, server, NODE_FIRST_PACKET[:3], ctx)
        await client.send_all(NODE_FIRST_PACKET[3:])
        assert await read_exactly_responses(client, 1) == [(3, 0x18, 0)]
        batch = b"".join(
            frame(op.PUT, kv(f"k{i}".encode(), 0x77, b"v"), mid=10 + i) for i in range(20)
        ) + frame(op.GET, write_bytes(b"k7"), mid=99)
        sends_before = server.sends
        await client.send_all(batch)
        got = await read_exactly_responses(client, 21)
        assert got[:20] == [(10 + i, 0x02, 0) for i in range(20)]
        assert got[20] == (99, 0x04, 0)
        assert server.sends == sends_before + 1
        await client.aclose()
    assert server.closed


async def test_split_request_and_unknown_version_keeps_connection() -> None:
    client, server = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_hotrod, server, b"", make_ctx())
        await client.send_all(frame(op.PING, version=25, mid=1))
        assert await read_exactly_responses(client, 1) == [(1, 0x50, op.UNKNOWN_VERSION)]
        request = frame(op.PING, version=41, mid=2)
        for byte in request:
            await client.send_all(bytes((byte,)))
            await trio.testing.wait_all_tasks_blocked()
        assert await read_exactly_responses(client, 1) == [(2, 0x18, 0)]
        await client.aclose()


async def test_bad_magic_answers_then_closes() -> None:
    client, server = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_hotrod, server, b"", make_ctx())
        await client.send_all(NODE_FIRST_PACKET + b"\x00garbage")
        data = b""
        while chunk := await client.receive_some():
            data += chunk
        assert parse_responses(data, 2) == [(3, 0x18, 0), (0, 0x50, op.INVALID_MAGIC_OR_MESSAGE_ID)]


async def test_unknown_opcode_answers_then_closes() -> None:
    client, server = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_hotrod, server, b"", make_ctx())
        await client.send_all(b"\xa0\x05\x29\xe9")
        data = b""
        while chunk := await client.receive_some():
            data += chunk
        assert parse_responses(data, 1) == [(5, 0x50, op.UNKNOWN_OPERATION)]


async def test_stopping_ends_an_idle_connection() -> None:
    client, server = trio.testing.memory_stream_pair()
    ctx = make_ctx()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_hotrod, server, b"", ctx)
        await client.send_all(NODE_FIRST_PACKET)
        await read_exactly_responses(client, 1)
        ctx.stopping.set()
        with trio.fail_after(1):
            assert await client.receive_some() == b""


async def test_stopping_finishes_the_current_batch_first() -> None:
    client, server = trio.testing.memory_stream_pair()
    ctx = make_ctx()
    ctx.stopping.set()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_hotrod, server, NODE_FIRST_PACKET + NODE_FIRST_PACKET, ctx)
        data = b""
        while chunk := await client.receive_some():
            data += chunk
        assert parse_responses(data, 2) == [(3, 0x18, 0), (3, 0x18, 0)]


async def test_broken_stream_ends_quietly() -> None:
    client, server = trio.testing.lockstep_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_hotrod, server, NODE_FIRST_PACKET, make_ctx())
        await client.aclose()


async def test_peer_eof_ends_the_task() -> None:
    client, server = trio.testing.memory_stream_pair()
    with trio.fail_after(1):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_hotrod, server, b"", make_ctx())
            await client.send_eof()  # type: ignore[attr-defined]
