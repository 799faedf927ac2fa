"""The trio side of a Hot Rod connection: read, decode every frame, execute, one write.

Each receive is drained completely: all complete requests go to the session as one
batch (one ``execute_many``), and all their responses leave with one ``send_all``.
That is where the throughput comes from (see ``performance-notes.md``).
"""

from __future__ import annotations

import logging

import trio

from gridactor.protocols.hotrod import messages as m
from gridactor.protocols.hotrod.codec import HotRodServerCodec
from gridactor.protocols.hotrod.handler import HotRodSession, SaslAuthenticator
from gridactor.security.sasl.base import SaslError, SaslMechanism
from gridactor.security.sasl.framing import UnwrapDecoder, wrap_stream
from gridactor.server.context import EndpointContext

log = logging.getLogger(__name__)

RECEIVE_SIZE = 64 * 1024
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
    """
    codec = HotRodServerCodec(ctx.limits)
    session = HotRodSession(ctx, authenticator)
    idle_timeout = ctx.limits.idle_timeout_s
    stopping = ctx.stopping
    receive_scope: trio.CancelScope | None = None

    async def interrupt_receive_on_stop() -> None:
        await stopping.wait()
        if receive_scope is not None:
            receive_scope.cancel()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(interrupt_receive_on_stop)
            if initial:
                codec.receive_data(initial)
            # After a SASL exchange that negotiated a security layer, every buffer in both
            # directions is wrapped (Infinispan's SaslQopHandler framing); the AUTH response
            # that completes the exchange itself still goes out in the clear.
            layer: SaslMechanism | None = None
            unwrapper: UnwrapDecoder | None = None
            while True:
                batch, finished = drain(codec)
                if batch:
                    out = await session.handle_batch(batch)
                    if layer is not None:
                        out = wrap_stream(layer, out)
                    await stream.send_all(out)
                    if layer is None and (layer := negotiated_layer(authenticator)) is not None:
                        limit = getattr(layer, "max_receive_size", _DEFAULT_LAYER_BUFFER)
                        unwrapper = UnwrapDecoder(layer, limit)
                if finished or stopping.is_set():
                    break
                data: bytes | bytearray | None = None
                with trio.CancelScope() as receive_scope:
                    if idle_timeout > 0:
                        receive_scope.deadline = trio.current_time() + idle_timeout
                    data = await stream.receive_some(RECEIVE_SIZE)
                receive_scope = None
                if data is None:  # cancelled by shutdown or the idle timeout
                    break
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
        await trio.aclose_forcefully(stream)
