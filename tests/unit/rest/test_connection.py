"""serve_http over memory streams with real h11 / h2 clients (hypercorn's test_sanity style)."""

from __future__ import annotations

import base64

import h2.config
import h2.connection
import h2.events
import h11
import trio
import trio.testing

from gridactor.protocols.rest.connection import serve_http
from gridactor.server.context import Limits
from tests.unit.rest.helpers import (
    H2_PREFACE,
    H2Client,
    H11Client,
    _H2Stream,
    make_ctx,
    open_server,
    read_until_closed,
)


async def test_keep_alive_several_requests_one_connection() -> None:
    ctx = make_ctx()
    async with open_server(ctx) as (stream, done):
        client = H11Client(stream)
        for i in range(3):
            put = await client.request("PUT", f"/rest/v2/caches/default/k{i}", body=f"v{i}".encode())
            assert put.status == 204
        for i in range(3):
            got = await client.request("GET", f"/rest/v2/caches/default/k{i}")
            assert got.status == 200
            assert got.body == f"v{i}".encode()
        assert not done.is_set()


async def test_pipelined_requests_answered_in_order() -> None:
    ctx = make_ctx()
    async with open_server(ctx) as (stream, _):
        raw = b"".join(
            b"PUT /rest/v2/caches/default/p%d HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n%d" % (i, i)
            for i in range(10)
        )
        raw += b"".join(b"GET /rest/v2/caches/default/p%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(10))
        raw += b"GET /rest/v2/server HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        await stream.send_all(raw)
        data = await read_until_closed(stream)
    client = h11.Connection(h11.CLIENT)
    client.receive_data(data)
    client.receive_data(b"")
    statuses: list[int] = []
    bodies: list[bytes] = []
    for _ in range(21):
        client.send(h11.Request(method="GET", target="/", headers=[("host", "x")]))
        client.send(h11.EndOfMessage())
        body = b""
        while True:
            event = client.next_event()
            if isinstance(event, h11.Response):
                statuses.append(event.status_code)
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                bodies.append(body)
                break
        if client.their_state is h11.DONE:
            client.start_next_cycle()
    assert statuses == [204] * 10 + [200] * 10 + [200]
    assert bodies[10:20] == [str(i).encode() for i in range(10)]
    assert b"version" in bodies[20]


async def test_pipelined_batch_is_one_send() -> None:
    """Twenty pipelined GETs in one receive produce one send_all."""
    ctx = make_ctx()
    client_stream, server_stream = trio.testing.memory_stream_pair()
    sends = 0
    original = server_stream.send_stream.send_all_hook

    async def count() -> None:
        nonlocal sends
        sends += 1
        if original is not None:
            await original()

    server_stream.send_stream.send_all_hook = count
    raw = b"GET /rest/v2/server HTTP/1.1\r\nHost: x\r\n\r\n" * 20
    async with trio.open_nursery() as nursery:

        async def run() -> None:
            await serve_http(server_stream, raw, ctx, http2=False)

        nursery.start_soon(run)
        data = bytearray()
        with trio.fail_after(5):
            while data.count(b"HTTP/1.1 200") < 20:
                data += await client_stream.receive_some(1 << 20)
        await client_stream.aclose()
    assert sends == 1


async def test_eof_ends_task_quietly() -> None:
    ctx = make_ctx()
    async with open_server(ctx) as (stream, done):
        await stream.send_all(b"GET /rest/v2/ser")
        await stream.send_eof()
        with trio.fail_after(5):
            await done.wait()


async def test_peer_vanishing_mid_response_is_quiet() -> None:
    ctx = make_ctx()
    client, server = trio.testing.memory_stream_pair()
    await client.send_all(b"GET /rest/v2/server HTTP/1.1\r\nHost: x\r\n\r\n")
    await client.aclose()
    with trio.fail_after(5):
        await serve_http(server, b"", ctx, http2=False)


async def test_malformed_request_gets_400_and_close() -> None:
    ctx = make_ctx()
    async with open_server(ctx) as (stream, done):
        await stream.send_all(b"NOT HTTP AT ALL\r\n\r\n")
        data = await read_until_closed(stream)
        assert data.startswith(b"HTTP/1.1 400 ")
        with trio.fail_after(5):
            await done.wait()


async def test_header_limit_gets_431() -> None:
    ctx = make_ctx(Limits(max_http_header_bytes=2048))
    async with open_server(ctx) as (stream, _):
        big = b"X-Big: " + b"a" * 5000 + b"\r\n"
        await stream.send_all(b"GET /rest/v2/server HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n")
        data = await read_until_closed(stream)
        assert data.startswith(b"HTTP/1.1 431 ")


async def test_body_limit_gets_413_with_reason() -> None:
    ctx = make_ctx(Limits(max_http_body_bytes=100))
    async with open_server(ctx) as (stream, _):
        client = H11Client(stream)
        reply = await client.request("PUT", "/rest/v2/caches/default/big", body=b"x" * 101)
        assert reply.status == 413
        assert b"exceeds the limit of 100 bytes" in reply.body


async def test_value_limit_gets_413() -> None:
    ctx = make_ctx(Limits(max_value_bytes=10))
    async with open_server(ctx) as (stream, _):
        client = H11Client(stream)
        reply = await client.request("PUT", "/rest/v2/caches/default/big", body=b"x" * 11)
        assert reply.status == 413
        ok = await client.request("PUT", "/rest/v2/caches/default/big", body=b"x" * 10)
        assert ok.status == 204


async def test_stopping_closes_idle_connection() -> None:
    ctx = make_ctx()
    async with open_server(ctx) as (stream, done):
        client = H11Client(stream)
        assert (await client.request("GET", "/rest/v2/server")).status == 200
        ctx.stopping.set()
        with trio.fail_after(5):
            await done.wait()


async def test_stopping_marks_response_connection_close() -> None:
    """A request already received when the server stops is answered, then the connection closes."""
    ctx = make_ctx()
    ctx.stopping.set()
    request = b"GET /rest/v2/server HTTP/1.1\r\nHost: x\r\n\r\n"
    async with open_server(ctx, initial=request) as (stream, done):
        data = await read_until_closed(stream)
        assert data.startswith(b"HTTP/1.1 200 ")
        assert b"connection: close" in data
        with trio.fail_after(5):
            await done.wait()


async def test_stopping_closes_new_connection_without_reading() -> None:
    ctx = make_ctx()
    ctx.stopping.set()
    async with open_server(ctx) as (stream, done):
        assert await read_until_closed(stream) == b""
        with trio.fail_after(5):
            await done.wait()


async def test_idle_timeout_closes(autojump_clock: trio.testing.MockClock) -> None:
    ctx = make_ctx(Limits(idle_timeout_s=30))
    async with open_server(ctx) as (stream, done):
        client = H11Client(stream)
        assert (await client.request("GET", "/rest/v2/server")).status == 200
        await trio.sleep(31)
        assert done.is_set()


# ------------------------------------------------------------------------------------ HTTP/2


async def test_h2c_prior_knowledge() -> None:
    ctx = make_ctx()
    async with open_server(ctx, http2=True) as (stream, _), trio.open_nursery() as nursery:
        client = H2Client(stream)
        await client.start(nursery)
        text = [("content-type", "text/plain")]
        put = await client.request("PUT", "/rest/v2/caches/default/h2", text, b"v")
        assert put.status == 204
        got = await client.request("GET", "/rest/v2/caches/default/h2")
        assert got.status == 200
        assert got.body == b"v"
        assert got.header("content-type") == "text/plain"
        assert got.http_version == "2"
        nursery.cancel_scope.cancel()


async def test_h2c_prior_knowledge_with_sniffed_bytes() -> None:
    """The listener hands over the preface it read while sniffing."""
    ctx = make_ctx()
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    conn.initiate_connection()
    first = conn.data_to_send()
    assert first.startswith(H2_PREFACE)
    async with open_server(ctx, http2=True, initial=first) as (stream, _), trio.open_nursery() as nursery:
        client = H2Client(stream, conn=conn)
        await client.start(nursery, preface=False)
        got = await client.request("GET", "/rest/v2/server")
        assert got.status == 200
        nursery.cancel_scope.cancel()


async def test_h2_concurrent_streams() -> None:
    ctx = make_ctx()
    async with open_server(ctx, http2=True) as (stream, _), trio.open_nursery() as nursery:
        client = H2Client(stream)
        await client.start(nursery)
        ids = [
            await client.send_request("PUT", f"/rest/v2/caches/default/c{i}", body=f"value-{i}".encode())
            for i in range(20)
        ]
        assert [(await client.wait(sid)).status for sid in ids] == [204] * 20
        ids = [await client.send_request("GET", f"/rest/v2/caches/default/c{i}") for i in range(20)]
        replies = [await client.wait(sid) for sid in ids]
        assert [r.body for r in replies] == [f"value-{i}".encode() for i in range(20)]
        nursery.cancel_scope.cancel()


async def test_h2_large_body_respects_flow_control() -> None:
    ctx = make_ctx()
    big = bytes(range(256)) * 1024  # 256 KiB > the 64 KiB default window
    async with open_server(ctx, http2=True) as (stream, _), trio.open_nursery() as nursery:
        client = H2Client(stream)
        await client.start(nursery)
        conn = client.conn
        sid = conn.get_next_available_stream_id()
        client.streams[sid] = _H2Stream()
        conn.send_headers(sid, [(":method", "PUT"), (":path", "/rest/v2/caches/default/big"),
                                (":scheme", "http"), (":authority", "x")])
        offset = 0
        with trio.fail_after(5):
            while offset < len(big):
                window = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                if window <= 0:
                    await client.flush()
                    await trio.sleep(0.01)
                    continue
                chunk = big[offset : offset + window]
                offset += len(chunk)
                conn.send_data(sid, chunk, end_stream=offset >= len(big))
            await client.flush()
        assert (await client.wait(sid)).status == 204
        got = await client.request("GET", "/rest/v2/caches/default/big")
        assert got.body == big
        nursery.cancel_scope.cancel()


async def test_h2_garbage_gets_goaway() -> None:
    ctx = make_ctx()
    async with open_server(ctx, http2=True) as (stream, done):
        # A CONTINUATION frame with no HEADERS before it.
        await stream.send_all(H2_PREFACE + b"\x00\x00\x01\x09\x00\x00\x00\x00\x07x")
        data = await read_until_closed(stream)
        assert b"\x07" in data
        with trio.fail_after(5):
            await done.wait()


async def test_h2_stopping_refuses_new_streams_and_goes_away() -> None:
    ctx = make_ctx()
    async with open_server(ctx, http2=True) as (stream, done), trio.open_nursery() as nursery:
        client = H2Client(stream)
        await client.start(nursery)
        assert (await client.request("GET", "/rest/v2/server")).status == 200
        ctx.stopping.set()
        with trio.fail_after(5):
            await done.wait()
            await client.closed.wait()
        assert client.terminated is not None


async def test_h2c_upgrade() -> None:
    ctx = make_ctx()
    async with open_server(ctx) as (stream, _), trio.open_nursery() as nursery:
        # PUT a value on HTTP/1.1 first, then upgrade on the same connection.
        h1 = H11Client(stream)
        assert (await h1.request("PUT", "/rest/v2/caches/default/up", body=b"upgraded")).status == 204
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
        settings = conn.initiate_upgrade_connection()
        assert settings is not None
        settings = settings.rstrip(b"=")  # as curl sends it
        await stream.send_all(
            b"GET /rest/v2/caches/default/up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            b"Upgrade: h2c\r\nHTTP2-Settings: " + settings + b"\r\n\r\n"
        )
        head = bytearray()
        with trio.fail_after(5):
            while b"\r\n\r\n" not in head:
                head += await stream.receive_some(1)
        assert head.startswith(b"HTTP/1.1 101 ")
        client = H2Client(stream, conn=conn)
        client.streams[1] = _H2Stream()
        await client.flush()  # client preface + SETTINGS
        await client.start(nursery, preface=False)
        reply = await client.wait(1)
        assert reply.status == 200
        assert reply.body == b"upgraded"
        more = await client.request("GET", "/rest/v2/server")
        assert more.status == 200
        nursery.cancel_scope.cancel()


def test_settings_value_is_base64url() -> None:
    assert base64.urlsafe_b64decode(b"AAMAAABkAARAAAAAAAIAAAAA")
