"""The listener actor: owns one server socket, terminates TLS, sniffs, dispatches.

Theory of operation. A :class:`Listener` binds its address in ``run`` and reports the
bound port through ``task_status.started``, so the supervisor knows the endpoint is
serving before it says "started". Each accepted connection becomes one task in the
listener's connection nursery. That task has a single deadline for everything before the
protocol begins (TLS handshake, first bytes for sniffing): a client that connects and
says nothing holds a socket for ``Limits.handshake_timeout_s`` at most, never a worker.
Then it hands the stream to the Hot Rod or the REST front-end, which owns it until the
connection ends.

Shutdown is staged: :meth:`Listener.stop_accepting` closes the server socket and sets
the endpoint's ``stopping`` event (front-ends finish the batch in hand and stop
reading); ``run`` then gives the open connections ``grace_s`` seconds before cancelling
them.
"""

from __future__ import annotations

import logging
import socket
import ssl
from dataclasses import dataclass

import trio

from gridactor.protocols.hotrod.connection import serve_hotrod
from gridactor.protocols.rest.connection import serve_http
from gridactor.server.context import EndpointContext
from gridactor.server.sniff import NEED_MORE, Wire, sniff
from gridactor.server.socket_io import TlsSocketStream, tls_accept

log = logging.getLogger("gridactor.listener")

_SNIFF_READ = 65536
_BACKLOG = 4096  # the kernel caps it at net.core.somaxconn


@dataclass(slots=True)
class ListenerStatistics:
    accepted: int = 0
    active: int = 0
    hotrod: int = 0
    http1: int = 0
    http2: int = 0
    rejected: int = 0  # closed before a protocol started (timeout, TLS on a plain port, …)


async def open_shared_tcp_listeners(host: str, port: int) -> list[trio.SocketListener]:
    """Listening sockets with ``SO_REUSEPORT``, so that several listener processes serve one port.

    The kernel spreads new connections over the processes bound to the port (by a hash
    of the peer's address and port), which is how ``--listeners N`` uses more than one
    core. With port 0 every address gets the port the first one was given.
    """
    infos = await trio.socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE | socket.AI_ADDRCONFIG
    )
    listeners: list[trio.SocketListener] = []
    try:
        for family, kind, proto, _name, address in infos:
            sock = trio.socket.socket(family, kind, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                if port == 0 and listeners:
                    address = (address[0], listeners[0].socket.getsockname()[1], *address[2:])
                await sock.bind(address)
                sock.listen(_BACKLOG)
            except BaseException:
                sock.close()
                raise
            listeners.append(trio.SocketListener(sock))
    except BaseException:
        for listener in listeners:
            listener.socket.close()
        raise
    return listeners


class Listener:
    def __init__(
        self,
        host: str,
        port: int,
        context: EndpointContext,
        *,
        ssl_context: ssl.SSLContext | None = None,
        grace_s: float = 5.0,
        name: str = "default",
        reuse_port: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.reuse_port = reuse_port
        self.context = context
        self.ssl_context = ssl_context
        self.grace_s = grace_s
        self.name = name
        self._accepting = trio.CancelScope()
        self._stats = ListenerStatistics()

    def statistics(self) -> ListenerStatistics:
        return self._stats

    def stop_accepting(self) -> None:
        """Stage one of shutdown: no new connections; open ones wind down."""
        self.context.stopping.set()
        self._accepting.cancel()

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        if self.reuse_port:
            listeners = await open_shared_tcp_listeners(self.host, self.port)
        else:
            listeners = await trio.open_tcp_listeners(self.port, host=self.host)
        bound = listeners[0].socket.getsockname()[1]
        log.info(
            "ISPN080004: Connector %s (Hot Rod + REST%s) listening on %s:%d",
            self.name,
            ", TLS" if self.ssl_context else "",
            self.host,
            bound,
        )
        async with trio.open_nursery() as connections:
            task_status.started(bound)
            with self._accepting:
                await trio.serve_listeners(self._handle, listeners, handler_nursery=connections)
            for listener in listeners:
                await listener.aclose()
            self.context.stopping.set()
            # Stage two: bounded grace for connections in flight, then cancel them.
            connections.cancel_scope.deadline = trio.current_time() + self.grace_s

    async def _handle(self, stream: trio.SocketStream) -> None:
        self._stats.accepted += 1
        self._stats.active += 1
        try:
            await self._serve(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        except Exception:
            # A bug in a front-end must cost one connection, never the listener.
            log.exception("connection handler failed")
        finally:
            self._stats.active -= 1
            await trio.aclose_forcefully(stream)

    async def _serve(self, raw: trio.SocketStream) -> None:
        tls_streams: list[TlsSocketStream] = []
        try:
            await self._serve_accepted(raw, tls_streams)
        finally:
            # The front-end closed it already, unless the connection ended before one
            # started: the TLS socket (a duplicate descriptor) must not outlive ``raw``.
            for tls in tls_streams:
                await trio.aclose_forcefully(tls)

    async def _serve_accepted(self, raw: trio.SocketStream, tls_streams: list[TlsSocketStream]) -> None:
        stream: trio.abc.Stream = raw
        first = b""
        wire: Wire | None = None
        alpn: str | None = None
        peer_certificate: bytes | None = None
        with trio.move_on_after(self.context.limits.handshake_timeout_s):
            if self.ssl_context is not None:
                # TLS on the connection's own socket (server/socket_io.py): the front-ends
                # then serve it with try-first reads and writes, as plain TCP.
                try:
                    tls = await tls_accept(raw, self.ssl_context)
                except (trio.BrokenResourceError, ssl.SSLError) as exc:
                    _log_handshake_failure(raw, exc)
                    self._stats.rejected += 1
                    return
                tls_streams.append(tls)
                alpn = tls.selected_alpn_protocol()
                # Python 3.11 exposes only the leaf; it was verified against the trust store.
                peer_certificate = tls.peer_certificate_der()
                stream = tls
            while True:
                found = sniff(first)
                if found is not NEED_MORE:
                    wire = found
                    break
                data = await stream.receive_some(_SNIFF_READ)
                if not data:
                    self._stats.rejected += 1
                    return
                first += data
        if wire is None:
            self._stats.rejected += 1
            log.debug("connection closed: nothing usable before the handshake deadline")
            return
        if wire is Wire.TLS:
            self._stats.rejected += 1
            log.debug("TLS ClientHello on a plaintext endpoint: closed")
            return
        security = self.context.security
        peer = _peer_host(raw)
        if wire is Wire.HOTROD:
            if not self.context.hotrod_enabled:
                self._stats.rejected += 1
                return
            self._stats.hotrod += 1
            sasl = (
                security.hotrod_authenticator(
                    peer, tls=self.ssl_context is not None, peer_certificate=peer_certificate
                )
                if security
                else None
            )
            await serve_hotrod(stream, first, self.context, authenticator=sasl)
            return
        if not self.context.rest_enabled:
            self._stats.rejected += 1
            return
        http2 = wire is Wire.HTTP2 or alpn == "h2"
        if http2:
            self._stats.http2 += 1
        else:
            self._stats.http1 += 1
        http_auth = security.rest_authenticator(peer, peer_certificate=peer_certificate) if security else None
        await serve_http(stream, first, self.context, http2=http2, authenticator=http_auth)


def _log_handshake_failure(raw: trio.SocketStream, exc: BaseException) -> None:
    """A refused client certificate is worth an operator's attention (INFO, with the
    reason OpenSSL gives); other failures (scanners, plaintext clients) are DEBUG."""
    cause = exc.__cause__ if isinstance(exc.__cause__, ssl.SSLError) else exc
    if isinstance(cause, ssl.SSLCertVerificationError):
        peer = _peer_host(raw)
        log.info("TLS handshake from %s refused: client certificate: %s", peer, cause.verify_message)
    else:
        log.debug("TLS handshake from %s failed: %s", _peer_host(raw), cause)


def _peer_host(stream: trio.SocketStream) -> str:
    try:
        address = stream.socket.getpeername()
    except OSError:
        return "unknown"
    return str(address[0]) if isinstance(address, tuple) else str(address)
