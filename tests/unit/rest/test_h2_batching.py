"""HTTP/2 batching: the entry requests of one receive share one execute_many and one send.

A counting subclass of the real in-process cache service records the calls; everything
else (h2 client, adapter, dispatcher, caches) is the real thing.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

import trio

from gridactor.cache.api import CacheOp, CacheResult, CacheSettings
from gridactor.cache.local import InProcessCacheService
from gridactor.errors import GridError
from gridactor.protocols.rest.connection import serve_http
from gridactor.protocols.rest.events import Request, Response
from gridactor.protocols.rest.h2_adapter import H2Adapter
from gridactor.server.context import EndpointContext, Limits
from tests.unit.rest.helpers import H2Client, open_server

HEX = "application/octet-stream; encoding=hex"


class CountingCacheService(InProcessCacheService):
    def __init__(self) -> None:
        super().__init__([CacheSettings(name="default")], default_cache="default")
        self.many_calls: list[int] = []
        self.single_calls = 0

    async def execute_many(self, batch: Sequence[tuple[str, CacheOp]]) -> list[CacheResult | GridError]:
        self.many_calls.append(len(batch))
        return await super().execute_many(batch)

    async def execute(self, cache: str, ops: Sequence[CacheOp]) -> list[CacheResult | GridError]:
        self.single_calls += 1
        return await super().execute(cache, ops)


async def _queue(
    client: H2Client, method: str, path: str, body: bytes = b"", extra: Sequence[tuple[str, str]] = ()
) -> int:
    conn = client.conn
    stream_id = conn.get_next_available_stream_id()
    headers = [(":method", method), (":path", path), (":scheme", "http"), (":authority", "t"), *extra]
    client.streams[stream_id] = type(client.streams.get(0, None) or _slot())()
    conn.send_headers(stream_id, headers, end_stream=not body)
    if body:
        conn.send_data(stream_id, body, end_stream=True)
    return stream_id


def _slot() -> object:
    from tests.unit.rest.helpers import _H2Stream

    return _H2Stream()


async def test_streams_of_one_receive_share_one_execute_many() -> None:
    service = CountingCacheService()
    ctx = EndpointContext(caches=service)
    async with open_server(ctx, http2=True) as (stream, _), trio.open_nursery() as nursery:
        client = H2Client(stream)
        await client.start(nursery)
        path = "/rest/v2/caches/default/k"
        puts = [await _queue(client, "PUT", f"{path}{i}", f"v{i}".encode()) for i in range(8)]
        await client.flush()  # all eight streams in one write
        assert [(await client.wait(sid)).status for sid in puts] == [204] * 8
        gets = [await _queue(client, "GET", f"/rest/v2/caches/default/k{i}") for i in range(8)]
        gets.append(await _queue(client, "HEAD", "/rest/v2/caches/default/k0"))
        await client.flush()
        replies = [await client.wait(sid) for sid in gets]
        assert [r.body for r in replies[:8]] == [f"v{i}".encode() for i in range(8)]
        assert replies[8].status == 200
        assert replies[8].body == b""
        assert replies[8].header("content-length") == "2"
        assert service.many_calls == [8, 9]
        assert service.single_calls == 0
        nursery.cancel_scope.cancel()


async def test_mixed_batch_keeps_every_answer() -> None:
    """Entry ops, a conditional write, an admin request and errors arriving together."""
    service = CountingCacheService()
    ctx = EndpointContext(caches=service)
    async with open_server(ctx, http2=True) as (stream, _), trio.open_nursery() as nursery:
        client = H2Client(stream)
        await client.start(nursery)
        ids = {
            "put": await _queue(client, "PUT", "/rest/v2/caches/default/a", b"1"),
            "create": await _queue(client, "POST", "/rest/v2/caches/other"),
            "missing-cache": await _queue(client, "GET", "/rest/v2/caches/nope/a"),
            "unknown-route": await _queue(client, "GET", "/rest/v2/nothing"),
            "bad-method": await _queue(client, "PATCH", "/rest/v2/caches/default/a"),
            "conditional": await _queue(
                client, "PUT", "/rest/v2/caches/default/b", b"2", [("if-none-match", "*")]
            ),
            "post": await _queue(client, "POST", "/rest/v2/caches/default/c", b"3"),
            "delete-absent": await _queue(client, "DELETE", "/rest/v2/caches/default/zz"),
            "empty-hex-key": await _queue(
                client, "GET", "/rest/v2/caches/default/zz", extra=[("key-content-type", HEX)]
            ),
        }
        await client.flush()
        status = {name: (await client.wait(sid)).status for name, sid in ids.items()}
        assert status == {
            "put": 204,
            "create": 200,
            "missing-cache": 404,
            "unknown-route": 404,
            "bad-method": 405,
            "conditional": 204,
            "post": 204,
            "delete-absent": 404,
            "empty-hex-key": 400,
        }
        missing = await client.wait(ids["missing-cache"])
        assert missing.body.startswith(b"ISPN012010")
        got = await client.request("GET", "/rest/v2/caches/default/b")
        assert got.body == b"2"
        nursery.cancel_scope.cancel()


async def test_h2_over_tcp_uses_the_socket_path() -> None:
    """serve_http on a real loopback socket (the try-first SocketIO path), HTTP/2 and HTTP/1.1."""
    ctx = EndpointContext(caches=CountingCacheService())
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]

    async def serve_one(http2: bool) -> None:
        sock, _ = await listener.accept()
        await serve_http(trio.SocketStream(sock), b"", ctx, http2=http2)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_one, True)
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with trio.open_nursery() as client_nursery:
                client = H2Client(stream)
                await client.start(client_nursery)
                big = bytes(range(256)) * 62  # one full DATA frame of the client
                assert (await client.request("PUT", "/rest/v2/caches/default/big", [], big)).status == 204
                got = await client.request("GET", "/rest/v2/caches/default/big")
                assert got.status == 200
                assert got.body == big
                client_nursery.cancel_scope.cancel()
            await stream.aclose()

            nursery.start_soon(serve_one, False)
            raw = socket.create_connection(("127.0.0.1", port))
            raw.setblocking(False)
            plain = trio.SocketStream(trio.socket.from_stdlib_socket(raw))
            await plain.send_all(
                b"GET /rest/v2/caches/default/big HTTP/1.1\r\nhost: t\r\n\r\n"
                b"GET /rest/v2/caches/default/none HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n"
            )
            data = b""
            while chunk := await plain.receive_some(1 << 16):
                data += chunk
            assert data.startswith(b"HTTP/1.1 200 ")
            assert data.count(b"HTTP/1.1 ") == 2
            assert b"HTTP/1.1 404 " in data
            await plain.aclose()
    listener.close()


# ------------------------------------------------------------------ outbound headers


def _response_headers(response: Response) -> list[tuple[bytes, bytes]]:
    """What a real h2 client decodes from the adapter's answer to one GET."""
    import h2.config
    import h2.connection
    import h2.events

    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    client.initiate_connection()
    adapter = H2Adapter(Limits())
    adapter.initiate()
    request_headers = [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "t")]
    client.send_headers(1, request_headers, end_stream=True)
    (request,) = [i for i in adapter.receive_data(client.data_to_send()) if isinstance(i, Request)]
    adapter.send_response(request.stream_id, response, head=False)
    for event in client.receive_data(adapter.data_to_send()):
        if isinstance(event, h2.events.ResponseReceived):
            return [(bytes(k), bytes(v)) for k, v in event.headers or ()]
    raise AssertionError("no response")


def test_outbound_headers_are_never_invalid() -> None:
    headers = _response_headers(
        Response(
            201,
            [
                (b"X-Mixed", b"kept, lower-cased"),
                (b"bad name", b"dropped"),
                (b"connection", b"close"),
                (b"transfer-encoding", b"chunked"),
                (b"content-length", b"999"),
                (b"content-type", b"text/plain\r\nx-injected: 1"),
                (b"etag", b"  padded\t"),
            ],
            b"body",
        )
    )
    assert headers == [
        (b":status", b"201"),
        (b"x-mixed", b"kept, lower-cased"),
        (b"etag", b"padded"),
        (b"content-length", b"4"),
    ]
