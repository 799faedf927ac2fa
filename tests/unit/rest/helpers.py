"""Test clients for the REST connection: real h11 / h2 client state machines over memory streams."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h11
import trio
import trio.testing

from gridactor.cache.api import CacheSettings
from gridactor.cache.local import InProcessCacheService
from gridactor.protocols.rest.connection import serve_http
from gridactor.server.context import EndpointContext, Limits

ClientStream = trio.StapledStream[trio.testing.MemorySendStream, trio.testing.MemoryReceiveStream]
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def make_ctx(limits: Limits | None = None, **kwargs: object) -> EndpointContext:
    service = InProcessCacheService(
        [CacheSettings(name="default"), CacheSettings(name="json", value_media_type="application/json")],
        default_cache="default",
    )
    return EndpointContext(caches=service, limits=limits or Limits(), **kwargs)  # type: ignore[arg-type]


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    http_version: str = "1.1"

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@asynccontextmanager
async def open_server(
    ctx: EndpointContext, *, http2: bool = False, initial: bytes = b""
) -> AsyncIterator[tuple[ClientStream, trio.Event]]:
    """Run serve_http on one end of a memory stream pair; yield the client end and a
    'server task finished' event."""
    client, server = trio.testing.memory_stream_pair()
    done = trio.Event()

    async def run() -> None:
        try:
            await serve_http(server, initial, ctx, http2=http2)
        finally:
            done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        try:
            yield client, done
        finally:
            await client.aclose()
            with trio.fail_after(5):
                await done.wait()


async def read_until_closed(stream: trio.abc.ReceiveStream) -> bytes:
    out = bytearray()
    with trio.fail_after(5):
        while True:
            data = await stream.receive_some(65536)
            if not data:
                return bytes(out)
            out += data


class H11Client:
    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.conn = h11.Connection(h11.CLIENT)

    async def request(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> Reply:
        hdrs = [("host", "test"), *(headers or [])]
        if body or method in ("PUT", "POST"):
            hdrs.append(("content-length", str(len(body))))
        data = self.conn.send(h11.Request(method=method, target=target, headers=hdrs))
        if body:
            data += self.conn.send(h11.Data(data=body))
        data += self.conn.send(h11.EndOfMessage())
        await self.stream.send_all(data)
        return await self.read_response()

    async def read_response(self) -> Reply:
        response: h11.Response | None = None
        body = bytearray()
        with trio.fail_after(5):
            while True:
                event = self.conn.next_event()
                if event is h11.NEED_DATA:
                    self.conn.receive_data(bytes(await self.stream.receive_some(65536)))
                    continue
                if isinstance(event, h11.Response):
                    response = event
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    raise AssertionError("connection closed before a response")
        assert response is not None
        headers = {k.decode().lower(): v.decode("latin-1") for k, v in response.headers}
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        return Reply(response.status_code, headers, bytes(body))


@dataclass
class _H2Stream:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)
    done: trio.Event = field(default_factory=trio.Event)
    reset: bool = False


class H2Client:
    """A minimal HTTP/2 client: a reader task dispatches frames to per-stream slots."""

    def __init__(self, stream: trio.abc.Stream, *, conn: h2.connection.H2Connection | None = None) -> None:
        self.stream = stream
        self.conn = conn or h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.streams: dict[int, _H2Stream] = {}
        self.terminated: h2.events.ConnectionTerminated | None = None
        self.closed = trio.Event()
        self.settings_acked = trio.Event()
        self.auto_ack = True
        self._send_lock = trio.Lock()

    async def start(self, nursery: trio.Nursery, *, preface: bool = True) -> None:
        if preface:
            self.conn.initiate_connection()
            await self.flush()
        nursery.start_soon(self._reader)

    async def flush(self) -> None:
        async with self._send_lock:
            data = self.conn.data_to_send()
            if data:
                await self.stream.send_all(data)

    async def _reader(self) -> None:
        try:
            while True:
                data = await self.stream.receive_some(65536)
                if not data:
                    break
                self.feed(bytes(data))
                try:
                    await self.flush()
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    break
                if self.terminated is not None:
                    break
        finally:
            self.closed.set()
            for slot in self.streams.values():
                slot.done.set()

    def feed(self, data: bytes) -> None:
        for event in self.conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                slot = self.streams.setdefault(event.stream_id, _H2Stream())
                for k, v in event.headers or ():
                    if k == b":status":
                        slot.status = int(v)
                    else:
                        slot.headers[bytes(k).decode()] = bytes(v).decode("latin-1")
            elif isinstance(event, h2.events.DataReceived):
                slot = self.streams.setdefault(event.stream_id, _H2Stream())
                slot.body += event.data or b""
                if self.auto_ack and event.flow_controlled_length:
                    self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self.streams.setdefault(event.stream_id, _H2Stream()).done.set()
            elif isinstance(event, h2.events.StreamReset):
                slot = self.streams.setdefault(event.stream_id, _H2Stream())
                slot.reset = True
                slot.done.set()
            elif isinstance(event, h2.events.SettingsAcknowledged):
                self.settings_acked.set()
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.terminated = event

    async def send_request(
        self,
        method: str,
        path: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":path", path), (":scheme", "http"), (":authority", "test")]
        hdrs += headers or []
        self.streams[stream_id] = _H2Stream()
        self.conn.send_headers(stream_id, hdrs, end_stream=not body)
        if body:
            self.conn.send_data(stream_id, body, end_stream=True)
        await self.flush()
        return stream_id

    async def wait(self, stream_id: int) -> Reply:
        slot = self.streams[stream_id]
        with trio.fail_after(5):
            await slot.done.wait()
        return Reply(slot.status, slot.headers, bytes(slot.body), "2")

    async def request(
        self,
        method: str,
        path: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> Reply:
        return await self.wait(await self.send_request(method, path, headers, body))
