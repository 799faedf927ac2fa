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
from gridactor.server.context import EndpointContext

log = logging.getLogger(__name__)

RECEIVE_SIZE = 64 * 1024


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
            while True:
                batch, finished = drain(codec)
                if batch:
                    await stream.send_all(await session.handle_batch(batch))
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
                codec.receive_data(data)
            nursery.cancel_scope.cancel()
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    except Exception:
        # A bug must cost this connection only, never the listener serving the others.
        log.exception("Hot Rod connection failed")
    finally:
        await trio.aclose_forcefully(stream)
