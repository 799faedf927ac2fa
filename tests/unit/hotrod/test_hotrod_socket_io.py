"""serve_hotrod over real loopback TCP: the try-first raw socket path of ``_SocketIO``.

Memory streams (the other connection tests) take the generic path; these drive the one
production connections use: partial sends that must wait for the peer, idle waits that
shutdown interrupts, and the stream's descriptor closed exactly once.
"""

from __future__ import annotations

import socket

import trio

from gridactor.protocols.hotrod import operations as op
from gridactor.protocols.hotrod.connection import _io_for, _SocketIO, _StreamIO, serve_hotrod
from gridactor.protocols.hotrod.primitives import Reader, write_bytes
from gridactor.server.context import EndpointContext
from tests.unit.hotrod.hotrod_helpers import frame, kv, next_response
from tests.unit.hotrod.test_hotrod_connection import NODE_FIRST_PACKET, make_ctx

BIG = 4 << 20  # far more than loopback socket buffers hold: the server's send must wait


served = trio.Event()  # replaced per test by _tcp_pair


async def _tcp_pair(
    ctx: EndpointContext, nursery: trio.Nursery
) -> tuple[trio.SocketStream, list[trio.SocketStream]]:
    """A client stream connected to ``serve_hotrod`` on a loopback listener."""
    global served
    served = trio.Event()
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    accepted: list[trio.SocketStream] = []

    async def handler(stream: trio.SocketStream) -> None:
        accepted.append(stream)
        await serve_hotrod(stream, b"", ctx)
        served.set()

    await nursery.start(trio.serve_listeners, handler, listeners)
    client = await trio.open_tcp_stream("127.0.0.1", port)
    return client, accepted


async def _read_responses(client: trio.SocketStream, count: int) -> list[tuple[int, int, int, int]]:
    """(message id, opcode, status, GET value length) of ``count`` responses."""
    data = b""
    while True:
        r = Reader(data)
        out = []
        try:
            for _ in range(count):
                resp = next_response(r)
                size = -1
                if resp.opcode == 0x18:
                    r.media_type(100)
                    r.media_type(100)
                    r.byte()
                    for _ in range(r.vint()):
                        r.fixed(2)
                elif resp.opcode == 0x04 and resp.status == 0:
                    size = len(r.array(BIG + 1))
                out.append((resp.message_id, resp.opcode, resp.status, size))
            return out
        except Exception:
            chunk = await client.receive_some(1 << 20)
            assert chunk, "connection closed early"
            data += chunk


def test_plain_socket_streams_get_the_raw_path() -> None:
    a, b = socket.socketpair()
    try:
        assert type(_io_for(trio.SocketStream(trio.socket.from_stdlib_socket(a)))) is _SocketIO
    finally:
        b.close()
    assert type(_io_for(trio.testing.memory_stream_pair()[0])) is _StreamIO  # type: ignore[attr-defined]


async def test_large_responses_wait_for_the_peer_and_pipelining_keeps_order() -> None:
    ctx = make_ctx()
    async with trio.open_nursery() as nursery:
        client, _ = await _tcp_pair(ctx, nursery)
        value = bytes(range(256)) * (BIG // 256)
        requests = [frame(op.PUT, kv(b"big", 0x77, value), mid=1)]
        requests += [frame(op.GET, write_bytes(b"big"), mid=2 + i) for i in range(3)]
        requests.append(frame(op.GET, write_bytes(b"missing"), mid=9))
        await client.send_all(b"".join(requests))
        with trio.fail_after(20):
            got = await _read_responses(client, 5)
        assert got == [(1, 0x02, 0, -1), *[(2 + i, 0x04, 0, BIG) for i in range(3)], (9, 0x04, 2, -1)]
        await client.aclose()
        nursery.cancel_scope.cancel()


async def test_stopping_interrupts_an_idle_socket_connection() -> None:
    ctx = make_ctx()
    async with trio.open_nursery() as nursery:
        client, accepted = await _tcp_pair(ctx, nursery)
        await client.send_all(NODE_FIRST_PACKET)
        assert await _read_responses(client, 1) == [(3, 0x18, 0, -1)]
        ctx.stopping.set()
        with trio.fail_after(2):
            assert await client.receive_some() == b""
        assert accepted[0].socket.fileno() == -1  # closed once, by the stream
        nursery.cancel_scope.cancel()


async def test_a_peer_reset_ends_the_connection_quietly() -> None:
    ctx = make_ctx()
    async with trio.open_nursery() as nursery:
        client, accepted = await _tcp_pair(ctx, nursery)
        await client.send_all(NODE_FIRST_PACKET)
        await _read_responses(client, 1)
        # SO_LINGER 0: close sends RST, so the server's next receive fails with ECONNRESET.
        client.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        await client.aclose()
        with trio.fail_after(2):
            await served.wait()
        assert accepted[0].socket.fileno() == -1
        nursery.cancel_scope.cancel()
