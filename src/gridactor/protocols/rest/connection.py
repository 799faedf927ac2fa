"""The REST connection task: drives the h11 or h2 adapter over a Trio stream.

Entry point :func:`serve_http`, called by the listener once it has sniffed the first
bytes (and, with TLS, read the ALPN result).

HTTP/1.1: one task, no per-request tasks. Each receive is fed to h11; every complete
request in it is dispatched in order (``await`` inline) and answered into the adapter's
buffer; the buffer leaves in one ``send_all`` when h11 needs more bytes. Pipelined
requests therefore cost one receive and one send per batch.

HTTP/2: like the Hot Rod loop. Every request complete in one receive forms a batch:
entry requests (GET/HEAD/PUT/POST/DELETE of ``caches/{cache}/{key}``) are authenticated
in arrival order, authorized and planned, their cache ops run as one
``CacheService.execute_many``, and all responses of the batch leave with one send. Other
requests (cache admin, listings, conditional writes) run in a task of their own, so a
slow one does not hold up the streams beside it; their responses are sent by a writer
task, or by the reader if it flushes first (one sender at a time).

Plain TCP goes through the try-first socket I/O of ``gridactor.server.socket_io``.

Shutdown (``ctx.stopping``): HTTP/1.1 closes an idle connection at once and marks the
response in progress ``Connection: close``; HTTP/2 refuses new streams
(REFUSED_STREAM), finishes the ones in flight, then sends GOAWAY and closes.
"""

from __future__ import annotations

import logging
import math

import trio

from gridactor.cache.api import CacheOp, CacheResult, execute_guarded
from gridactor.errors import GridError
from gridactor.protocols.rest.events import CLOSED, H2CUpgrade, Headers, Request, Response
from gridactor.protocols.rest.h2_adapter import H2Adapter
from gridactor.protocols.rest.h11_adapter import H11Adapter
from gridactor.protocols.rest.resources import Planned
from gridactor.protocols.rest.routes import Dispatcher, HttpAuthenticator, Match
from gridactor.server.context import EndpointContext
from gridactor.server.socket_io import SocketIO, StreamIO, io_for

log = logging.getLogger(__name__)

RECEIVE_SIZE = 65536  # for the linger drain; connection reads use socket_io's size
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
    io = io_for(stream)
    try:
        if http2:
            adapter = H2Adapter(ctx.limits)
            adapter.initiate()
            await _H2Connection(io, ctx, dispatcher, adapter).run(initial, None)
        else:
            await _H11Connection(stream, io, ctx, dispatcher).run(initial)
    except* (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        io.close()
        await trio.aclose_forcefully(stream)


class _H11Connection:
    def __init__(
        self, stream: trio.abc.Stream, io: StreamIO | SocketIO, ctx: EndpointContext, dispatcher: Dispatcher
    ) -> None:
        self._stream = stream
        self._io = io
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
        io = self._io
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
                await io.send(out)
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
                return bytes(await self._io.receive())
            finally:
                self._receive_scope = None
        return None

    async def _upgrade(self, upgrade: H2CUpgrade) -> None:
        # The 101 goes out on HTTP/1.1; everything after it is HTTP/2.
        await self._io.send(self._adapter.data_to_send())
        h2 = H2Adapter(self._ctx.limits)
        h2.initiate_upgrade(upgrade.settings, upgrade.request)
        await _H2Connection(self._io, self._ctx, self._dispatcher, h2).run(
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
        self, io: StreamIO | SocketIO, ctx: EndpointContext, dispatcher: Dispatcher, adapter: H2Adapter
    ) -> None:
        self._io = io
        self._ctx = ctx
        self._dispatcher = dispatcher
        self._adapter = adapter
        self._wake = trio.Event()  # a task queued a response: the writer should flush
        self._in_flight = 0  # requests being handled in tasks of their own
        self._handlers_done = trio.Event()
        self._handlers_done.set()
        self._sending = False  # one sender at a time: whoever sends drains the adapter
        self._send_done = trio.Event()
        self._waiting = False  # the reader waits for the peer (the only time stop may cancel it)
        self._receive_scope = trio.CancelScope()

    async def run(self, initial: bytes, upgraded: Request | None) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._writer)
            nursery.start_soon(self._watch_stopping)
            batch: list[Request] = [] if upgraded is None else [upgraded]
            alive = True
            if initial:
                received, alive = self._receive(initial)
                batch.extend(received)
            if batch:
                await self._serve_batch(nursery, batch)
            await self._flush()
            if alive and not self._adapter.closed:
                await self._read_loop(nursery)
            await self._handlers_done.wait()
            self._adapter.close()
            await self._flush()
            while self._sending:  # the writer is still sending: GOAWAY must follow, not cut
                self._send_done = trio.Event()
                await self._send_done.wait()
            nursery.cancel_scope.cancel()

    def _receive(self, data: bytes) -> tuple[list[Request], bool]:
        """Hand bytes to h2: the complete requests, and False once the connection is over."""
        stopping = self._ctx.stopping.is_set()
        requests: list[Request] = []
        alive = True
        for item in self._adapter.receive_data(data):
            if isinstance(item, Request):
                if stopping:
                    self._adapter.refuse(item.stream_id)
                else:
                    requests.append(item)
            else:
                alive = False
        return requests, alive and not self._adapter.closed

    async def _serve_batch(self, nursery: trio.Nursery, requests: list[Request]) -> None:
        """Answer (or hand to a task) every request of one receive; one execute_many."""
        dispatcher = self._dispatcher
        adapter = self._adapter
        planned: list[tuple[Request, Planned, Headers]] = []
        for request in requests:
            found = dispatcher.resolve(request)
            if isinstance(found, Response):
                adapter.send_response(request.stream_id, found, head=request.method == "HEAD")
                continue
            if found.invocation.planner is None:
                self._spawn(nursery, request, found, None)
                continue
            extra: Headers = []
            if dispatcher.needs_authentication(found):
                # Per request, in arrival order, before anything else looks at the request.
                outcome = await dispatcher.authenticate(request)
                if isinstance(outcome, Response):
                    adapter.send_response(request.stream_id, outcome, head=request.method == "HEAD")
                    continue
                extra = outcome
            plan = dispatcher.plan(request, found)
            if plan is None:
                self._spawn(nursery, request, found, extra)
            elif isinstance(plan, Response):
                adapter.send_response(request.stream_id, plan, head=request.method == "HEAD")
            else:
                planned.append((request, plan, extra))
        if not planned:
            return
        results = await self._execute([(plan[0], plan[1]) for _, plan, _ in planned])
        for (request, plan, extra), result in zip(planned, results, strict=True):
            response = dispatcher.finish(request, plan, result, extra)
            adapter.send_response(request.stream_id, response, head=request.method == "HEAD")

    async def _execute(self, batch: list[tuple[str, CacheOp]]) -> list[CacheResult | GridError]:
        return await execute_guarded(self._ctx.caches, batch)

    def _spawn(self, nursery: trio.Nursery, request: Request, found: Match, extra: Headers | None) -> None:
        self._in_flight += 1
        if self._handlers_done.is_set():
            self._handlers_done = trio.Event()
        nursery.start_soon(self._handle, request, found, extra)

    async def _handle(self, request: Request, found: Match, extra: Headers | None) -> None:
        try:
            response = await self._dispatcher.run(request, found, extra)
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
            and self._waiting
            and self._in_flight == 0
            and not self._adapter.has_pending_output
        ):
            self._receive_scope.cancel()

    async def _watch_stopping(self) -> None:
        await self._ctx.stopping.wait()
        self._maybe_stop_reading()

    async def _read_loop(self, nursery: trio.Nursery) -> None:
        timeout = self._ctx.limits.idle_timeout_s
        adapter = self._adapter
        io = self._io
        scope = self._receive_scope
        with scope:
            while True:
                idle = self._in_flight == 0 and not adapter.has_pending_output
                if idle and self._ctx.stopping.is_set():
                    return
                # One scope for the connection; the idle deadline is armed only for waits.
                scope.deadline = trio.current_time() + timeout if timeout > 0 and idle else math.inf
                self._waiting = True
                try:
                    data = bytes(await io.receive())
                finally:
                    self._waiting = False
                scope.deadline = math.inf
                requests, alive = self._receive(data)
                if requests:
                    await self._serve_batch(nursery, requests)
                await self._flush()
                if not alive:
                    return
        # Cancelled: idle timeout, or stopping with nothing in flight.

    async def _flush(self) -> None:
        """Send what the adapter has queued, unless a send is under way (it drains all)."""
        if self._sending:
            return
        self._sending = True
        try:
            while data := self._adapter.data_to_send():
                await self._io.send(data)
        finally:
            self._sending = False
            self._send_done.set()

    async def _writer(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            await self._flush()
