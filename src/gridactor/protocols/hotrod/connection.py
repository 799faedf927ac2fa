"""The trio side of a Hot Rod connection: read, decode every frame, execute, one write.

Each receive is drained completely: all complete requests go to the session as one
batch (one ``execute_many``), and all their responses leave with one ``send_all``.
That is where the throughput comes from (see ``performance-notes.md``).

On a plain TCP connection (``trio.SocketStream``) the loop talks to the socket itself
through ``gridactor.server.socket_io.SocketIO`` (try-first ``recv``/``send``, one wake-up
per request), on TLS through ``TlsSocketIO`` (the same over a non-blocking ``SSLSocket``);
in-memory test streams go through ``StreamIO``.
"""

from __future__ import annotations

import logging
import math

import trio

from gridactor.cache.events import CacheEvent
from gridactor.protocols.hotrod import messages as m
from gridactor.protocols.hotrod.codec import HotRodServerCodec
from gridactor.protocols.hotrod.handler import ClientListener, HotRodSession, SaslAuthenticator
from gridactor.security.sasl.base import SaslError, SaslMechanism
from gridactor.security.sasl.framing import UnwrapDecoder, wrap_stream
from gridactor.server.context import EndpointContext
from gridactor.server.socket_io import SocketIO as _SocketIO
from gridactor.server.socket_io import StreamIO as _StreamIO
from gridactor.server.socket_io import io_for as _io_for

log = logging.getLogger(__name__)

_DEFAULT_LAYER_BUFFER = 16 * 1024 * 1024


def negotiated_layer(authenticator: SaslAuthenticator | None) -> SaslMechanism | None:
    """The mechanism whose security layer (QoP auth-int/auth-conf) now protects the stream."""
    layer = getattr(authenticator, "security_layer", None)
    return layer if isinstance(layer, SaslMechanism) else None


def drain(codec: HotRodServerCodec) -> tuple[list[m.Request | m.RequestError], bool]:
    """Every event the codec can produce now, and whether the connection must end after them."""
    batch: list[m.Request | m.RequestError] = []
    while True:
        event = codec.next_event()
        if event is m.NEED_DATA:
            return batch, False
        if event is m.CLOSED:
            return batch, True
        batch.append(event)  # type: ignore[arg-type]  # the sentinels are handled above
        if type(event) is m.RequestError and event.close:
            return batch, True


async def serve_hotrod(
    stream: trio.abc.Stream,
    initial: bytes,
    ctx: EndpointContext,
    *,
    authenticator: SaslAuthenticator | None = None,
) -> None:
    """Serve one Hot Rod connection until the peer leaves, a fatal error, or shutdown.

    ``initial``: bytes already read by the listener while sniffing the protocol.
    ``authenticator``: this connection's SASL engine (None: none available; with a
    security realm set, every op but PING/AUTH_MECH_LIST/AUTH is then refused).

    Never raises for peer misbehaviour or a broken stream; the stream is closed on return.

    Cancellation: safe at any point; a batch being executed is abandoned unanswered.
    Shutdown (``ctx.stopping``) interrupts a connection only while it waits for the
    peer: the batch in hand is always answered first.
    """
    codec = HotRodServerCodec(ctx.limits)
    session = HotRodSession(ctx, authenticator)
    idle_timeout = ctx.limits.idle_timeout_s
    stopping = ctx.stopping
    io: _StreamIO | _SocketIO = _io_for(stream)
    # One scope for the whole connection (a scope per receive costs a measurable share
    # of a one-request round trip): shutdown cancels it only while we wait for the peer,
    # and the idle deadline is armed only for those waits.
    waiting = False
    receive_scope = trio.CancelScope()

    async def interrupt_receive_on_stop() -> None:
        await stopping.wait()
        if waiting:
            receive_scope.cancel()

    # Client listeners write events from their own tasks; once one exists, every write
    # of this connection takes the lock (before that the request loop is the only writer
    # and pays nothing for it).
    send_lock = trio.StrictFIFOLock()
    layer: SaslMechanism | None = None

    async def send(out: bytes) -> None:
        if layer is not None:
            out = wrap_stream(layer, out)
        if session.listeners:
            async with send_lock:
                await io.send(out)
        else:
            await io.send(out)

    async def pump_events(listener: ClientListener, stop: trio.CancelScope) -> None:
        receive = listener.subscription.receive
        try:
            async with receive:
                await _pump(listener, receive)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            stop.cancel()  # the peer is gone: end the connection, not just this pump

    async def _pump(listener: ClientListener, receive: trio.MemoryReceiveChannel[CacheEvent]) -> None:
        async for first in receive:
            frames = [listener.frame(first)]
            while True:  # everything already queued leaves with one send
                try:
                    frames.append(listener.frame(receive.receive_nowait()))
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            out = b"".join(f for f in frames if f)
            if out:
                await send(out)

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(interrupt_receive_on_stop)
            if initial:
                codec.receive_data(initial)
            # After a SASL exchange that negotiated a security layer, every buffer in both
            # directions is wrapped (Infinispan's SaslQopHandler framing); the AUTH response
            # that completes the exchange itself still goes out in the clear.
            unwrapper: UnwrapDecoder | None = None
            with receive_scope:
                while True:
                    batch, finished = drain(codec)
                    if batch:
                        await send(await session.handle_batch(batch))
                        while session.new_listeners:
                            nursery.start_soon(pump_events, session.new_listeners.pop(), nursery.cancel_scope)
                        if layer is None and (layer := negotiated_layer(authenticator)) is not None:
                            limit = getattr(layer, "max_receive_size", _DEFAULT_LAYER_BUFFER)
                            unwrapper = UnwrapDecoder(layer, limit)
                    if finished or stopping.is_set():
                        break
                    if idle_timeout > 0:
                        receive_scope.deadline = trio.current_time() + idle_timeout
                    waiting = True
                    data = await io.receive()
                    waiting = False
                    if idle_timeout > 0:
                        receive_scope.deadline = math.inf
                    if unwrapper is not None:
                        if not data:
                            break
                        try:
                            data = unwrapper.feed(bytes(data))
                        except SaslError as exc:
                            log.info("closing a connection: SASL security layer: %s", exc)
                            break
                        if not data:
                            continue
                    codec.receive_data(data)
            nursery.cancel_scope.cancel()
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    except Exception:
        # A bug must cost this connection only, never the listener serving the others.
        log.exception("Hot Rod connection failed")
    finally:
        session.close()
        io.close()
        await trio.aclose_forcefully(stream)
