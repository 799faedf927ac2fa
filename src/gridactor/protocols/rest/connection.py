"""The REST connection task: drives the h11 or h2 adapter over a Trio stream.

Entry point :func:`serve_http`, called by the listener once it has sniffed the first
bytes (and, with TLS, read the ALPN result).

HTTP/1.1: one task, no per-request tasks. Each receive is fed to h11; every complete
request in it is dispatched in order (``await`` inline) and answered into the adapter's
buffer; the buffer leaves in one ``send_all`` when h11 needs more bytes. Pipelined
requests therefore cost one receive and one send per batch.

HTTP/2: a reader loop (this task), one writer task and one task per request stream
(streams are concurrent by definition). Handlers only queue frames in the sans-IO
adapter and poke the writer; the writer sends whatever has piled up with one
``send_all``, so responses that finish in the same scheduling round share a send.

Shutdown (``ctx.stopping``): HTTP/1.1 closes an idle connection at once and marks the
response in progress ``Connection: close``; HTTP/2 refuses new streams
(REFUSED_STREAM), finishes the ones in flight, then sends GOAWAY and closes.
"""

from __future__ import annotations

import logging
import math

import trio

from gridactor.protocols.rest.events import CLOSED, H2CUpgrade, Request
from gridactor.protocols.rest.h2_adapter import H2Adapter
from gridactor.protocols.rest.h11_adapter import H11Adapter
from gridactor.protocols.rest.routes import Dispatcher, HttpAuthenticator
from gridactor.server.context import EndpointContext

log = logging.getLogger(__name__)

RECEIVE_SIZE = 65536
# After an error response on HTTP/1.1, how long to drain the peer's unread bytes before
# closing: closing with unread input makes the kernel send RST, which can destroy the
# error response before the client reads it.
LINGER_S = 1.0


async def serve_http(
    stream: trio.abc.Stream,
    initial: bytes,
    ctx: EndpointContext,
    *,
    http2: bool,
    authenticator: HttpAuthenticator | None = None,
) -> None:
    """Serve REST v2 on ``stream`` until the peer leaves, the protocol fails or the server stops.

    Args:
        stream: the accepted (possibly TLS) stream; closed when this returns.
        initial: bytes already read by the listener while sniffing; replayed first.
        ctx: the endpoint's context (caches, limits, stop event, realm).
        http2: True for prior-knowledge h2c (``initial`` starts with the preface) or when
            TLS ALPN selected ``h2``; False for HTTP/1.x (which may still upgrade to h2c).
        authenticator: the HTTP authentication step; None = authentication disabled, or
            a 401-only placeholder when ``ctx.security_realm`` is set.

    Broken or closed streams end the task quietly; bad input never raises.
    """
    dispatcher = Dispatcher(ctx, authenticator=authenticator)
    try:
        if http2:
            adapter = H2Adapter(ctx.limits)
            adapter.initiate()
            await _H2Connection(stream, ctx, dispatcher, adapter).run(initial, None)
        else:
            await _H11Connection(stream, ctx, dispatcher).run(initial)
    except* (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        await trio.aclose_forcefully(stream)


class _H11Connection:
    def __init__(self, stream: trio.abc.Stream, ctx: EndpointContext, dispatcher: Dispatcher) -> None:
        self._stream = stream
        self._ctx = ctx
        self._dispatcher = dispatcher
        self._adapter = H11Adapter(ctx.limits)
        self._receive_scope: trio.CancelScope | None = None

    async def run(self, initial: bytes) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_stopping)
            try:
                await self._loop(initial)
            finally:
                nursery.cancel_scope.cancel()

    async def _watch_stopping(self) -> None:
        await self._ctx.stopping.wait()
        # Only an idle wait is interrupted; a request being read is finished first.
        if self._receive_scope is not None and self._adapter.idle:
            self._receive_scope.cancel()

    async def _loop(self, initial: bytes) -> None:
        adapter = self._adapter
        stream = self._stream
        ctx = self._ctx
        if initial:
            adapter.receive_data(initial)
        while True:
            event = adapter.next_event()
            if isinstance(event, Request):
                response = await self._dispatcher.handle(event)
                if ctx.stopping.is_set():
                    response.close = True
                adapter.send_response(event, response)
                continue
            if isinstance(event, H2CUpgrade):
                await self._upgrade(event)
                return
            out = adapter.data_to_send()
            if out:
                await stream.send_all(out)
            if event is CLOSED:
                if adapter.errored:
                    await _linger(stream)
                return
            if ctx.stopping.is_set() and adapter.idle:
                return
            data = await self._receive()
            if data is None:
                return
            adapter.receive_data(data)

    async def _receive(self) -> bytes | None:
        """Next bytes from the peer (b"" = EOF), or None when idle-timed-out or stopping."""
        timeout = self._ctx.limits.idle_timeout_s
        deadline = trio.current_time() + timeout if timeout > 0 else math.inf
        with trio.CancelScope(deadline=deadline) as scope:
            self._receive_scope = scope
            try:
                return bytes(await self._stream.receive_some(RECEIVE_SIZE))
            finally:
                self._receive_scope = None
        return None

    async def _upgrade(self, upgrade: H2CUpgrade) -> None:
        # The 101 goes out on HTTP/1.1; everything after it is HTTP/2.
        await self._stream.send_all(self._adapter.data_to_send())
        h2 = H2Adapter(self._ctx.limits)
        h2.initiate_upgrade(upgrade.settings, upgrade.request)
        await _H2Connection(self._stream, self._ctx, self._dispatcher, h2).run(
            upgrade.trailing, upgrade.request
        )


async def _linger(stream: trio.abc.Stream) -> None:
    with trio.move_on_after(LINGER_S):
        if isinstance(stream, trio.abc.HalfCloseableStream):
            await stream.send_eof()
        total = 0
        while total < (1 << 20):
            data = await stream.receive_some(RECEIVE_SIZE)
            if not data:
                return
            total += len(data)


class _H2Connection:
    def __init__(
        self, stream: trio.abc.Stream, ctx: EndpointContext, dispatcher: Dispatcher, adapter: H2Adapter
    ) -> None:
        self._stream = stream
        self._ctx = ctx
        self._dispatcher = dispatcher
        self._adapter = adapter
        self._wake = trio.Event()
        self._in_flight = 0
        self._handlers_done = trio.Event()
        self._handlers_done.set()
        self._finishing = False
        self._writer_done = trio.Event()
        self._receive_scope: trio.CancelScope | None = None

    async def run(self, initial: bytes, upgraded: Request | None) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._writer)
            nursery.start_soon(self._watch_stopping)
            if upgraded is not None:
                self._spawn(nursery, upgraded)
            if initial:
                self._feed(nursery, initial)
            self._wake.set()
            if not self._adapter.closed:
                await self._read_loop(nursery)
            await self._handlers_done.wait()
            self._adapter.close()
            self._finishing = True
            self._wake.set()
            await self._writer_done.wait()
            nursery.cancel_scope.cancel()

    def _feed(self, nursery: trio.Nursery, data: bytes) -> bool:
        """Hand bytes to h2; start a task per complete request. False once the connection is over."""
        stopping = self._ctx.stopping.is_set()
        for item in self._adapter.receive_data(data):
            if isinstance(item, Request):
                if stopping:
                    self._adapter.refuse(item.stream_id)
                else:
                    self._spawn(nursery, item)
            else:
                return False
        return not self._adapter.closed

    def _spawn(self, nursery: trio.Nursery, request: Request) -> None:
        self._in_flight += 1
        if self._handlers_done.is_set():
            self._handlers_done = trio.Event()
        nursery.start_soon(self._handle, request)

    async def _handle(self, request: Request) -> None:
        try:
            response = await self._dispatcher.handle(request)
            self._adapter.send_response(request.stream_id, response, head=request.method == "HEAD")
            self._wake.set()
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._handlers_done.set()
                self._maybe_stop_reading()

    def _maybe_stop_reading(self) -> None:
        if (
            self._ctx.stopping.is_set()
            and self._in_flight == 0
            and not self._adapter.has_pending_output
            and self._receive_scope is not None
        ):
            self._receive_scope.cancel()

    async def _watch_stopping(self) -> None:
        await self._ctx.stopping.wait()
        self._maybe_stop_reading()

    async def _read_loop(self, nursery: trio.Nursery) -> None:
        timeout = self._ctx.limits.idle_timeout_s
        while True:
            if (
                self._ctx.stopping.is_set()
                and self._in_flight == 0
                and not self._adapter.has_pending_output
            ):
                return
            idle = self._in_flight == 0 and not self._adapter.has_pending_output
            deadline = trio.current_time() + timeout if timeout > 0 and idle else math.inf
            data: bytes | None = None
            with trio.CancelScope(deadline=deadline) as scope:
                self._receive_scope = scope
                try:
                    data = bytes(await self._stream.receive_some(RECEIVE_SIZE))
                finally:
                    self._receive_scope = None
            if data is None:
                if self._ctx.stopping.is_set():
                    continue  # re-check; the loop returns once nothing is in flight
                return  # idle timeout
            alive = self._feed(nursery, data)
            self._wake.set()
            if not alive:
                return

    async def _writer(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake = trio.Event()
                data = self._adapter.data_to_send()
                if data:
                    await self._stream.send_all(data)
                if self._finishing:
                    # Anything queued while we were sending goes out too.
                    data = self._adapter.data_to_send()
                    if data:
                        await self._stream.send_all(data)
                    return
        finally:
            self._writer_done.set()
