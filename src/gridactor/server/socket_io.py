"""Try-first socket I/O for connection loops (Hot Rod and REST share it).

On a plain TCP connection (``trio.SocketStream``) a connection loop talks to the socket
itself through :class:`SocketIO`: it tries ``recv``/``send`` first and waits for
readiness only when the kernel has nothing, so a request costs one wake-up.
``SocketStream`` pays two more scheduler round trips per call (a checkpoint before and
after each syscall), which profiles showed as a quarter of the server's time with one
request per connection in flight. A TLS connection is the same: :func:`tls_accept`
makes a :class:`TlsSocketStream` (an ``ssl.SSLSocket`` on the connection's socket) and
:class:`TlsSocketIO` tries ``recv``/``send`` on it first. ``trio.SSLStream`` would add a
MemoryBIO copy and several checkpoints and lock hops per call: profiles of one request
in flight per connection put half the connection loop's time there. In-memory test
streams (and any other stream) go through :class:`StreamIO`. :func:`io_for` picks one.
"""

from __future__ import annotations

import math
import os
import socket
import ssl

import trio

RECEIVE_SIZE = 64 * 1024


class StreamIO:
    """Any trio stream (TLS, memory streams in tests): receive/send through its API."""

    __slots__ = ("stream",)

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream

    async def receive(self) -> bytes | bytearray:
        return await self.stream.receive_some(RECEIVE_SIZE)

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    def close(self) -> None:
        pass


class SocketIO:
    """The socket under a ``trio.SocketStream``, driven with try-first syscalls.

    It shares the stream's file descriptor (``detach`` on close: the stream stays the
    owner and closes it). Readiness waits use the stream's own descriptor, so trio's
    bookkeeping for it (``notify_closing`` on close) stays correct. One task receives
    and one task at a time sends (the caller's duty), which is what ``SocketStream``'s
    conflict detection would otherwise check.
    """

    __slots__ = ("fd", "sock")

    def __init__(self, stream: trio.SocketStream) -> None:
        self.fd = stream.socket.fileno()
        self.sock = socket.socket(fileno=self.fd)

    async def receive(self) -> bytes:
        sock = self.sock
        while True:
            try:
                return sock.recv(RECEIVE_SIZE)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(self.fd)
            except OSError as exc:  # reset by peer and the like: the stream is over
                raise trio.BrokenResourceError(str(exc)) from exc

    async def send(self, data: bytes) -> None:
        sock = self.sock
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            raise trio.BrokenResourceError(str(exc)) from exc
        if sent == len(data):
            return
        view = memoryview(data)[sent:]
        while view:
            await trio.lowlevel.wait_writable(self.fd)
            try:
                sent = sock.send(view)
            except BlockingIOError:
                continue
            except OSError as exc:
                raise trio.BrokenResourceError(str(exc)) from exc
            view = view[sent:]

    def close(self) -> None:
        self.sock.detach()


def io_for(stream: trio.abc.Stream) -> StreamIO | SocketIO:
    """The raw-socket path for a plain ``SocketStream`` or a :class:`TlsSocketStream`,
    the stream's own API otherwise."""
    if type(stream) is TlsSocketStream:
        return TlsSocketIO(stream)
    if type(stream) is trio.SocketStream:
        try:
            return SocketIO(stream)
        except OSError:  # the descriptor is already unusable: the stream path reports it
            pass
    return StreamIO(stream)


# --- TLS on the connection's own socket ---------------------------------------------
#
# The ``ssl.SSLSocket`` works on a duplicate of the stream's descriptor (``os.dup``), not
# on the descriptor itself as SocketIO does: ``SSLContext.wrap_socket`` closes the socket
# it made on some of its own failure paths, and closing the shared number there would
# close it twice (the second time possibly someone else's new descriptor). A duplicate
# is always ours to close; the SocketStream still owns (and closes) the original, and
# every readiness wait is on the original, so trio's ``notify_closing`` bookkeeping stays
# right. The TCP connection ends when both are closed: TlsSocketStream.aclose closes the
# duplicate first, then the stream.


async def tls_accept(transport: trio.SocketStream, context: ssl.SSLContext) -> TlsSocketStream:
    """Run the server side of a TLS handshake on ``transport``'s socket.

    The caller bounds it with a deadline. Raises ``ssl.SSLError`` when the handshake
    itself fails (a refused client certificate is an ``ssl.SSLCertVerificationError``)
    and ``trio.BrokenResourceError`` when the connection breaks; nothing is left open
    by this function then (``transport`` stays the caller's to close).
    """
    fd = transport.socket.fileno()
    own = socket.socket(fileno=os.dup(fd))
    try:
        # Non-blocking before wrapping: the SSL object then puts its socket BIO in
        # non-blocking mode, and reads/writes raise SSLWantRead/WantWrite instead of
        # looping inside OpenSSL.
        own.setblocking(False)
        # suppress_ragged_eofs=False: a peer that stops without close_notify is a broken
        # stream, not a clean end (as trio.SSLStream reports it).
        tls = context.wrap_socket(
            own, server_side=True, do_handshake_on_connect=False, suppress_ragged_eofs=False
        )
    except OSError as exc:
        own.close()  # a no-op if wrap_socket already took (and closed) the descriptor
        if isinstance(exc, ssl.SSLError):
            raise
        raise trio.BrokenResourceError(str(exc)) from exc
    except BaseException:
        own.close()
        raise
    try:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                await trio.lowlevel.wait_readable(fd)
            except ssl.SSLWantWriteError:
                await trio.lowlevel.wait_writable(fd)
    except BaseException as exc:
        if isinstance(exc, ssl.SSLError):
            _discard_unread(fd)
        tls.close()
        if isinstance(exc, OSError) and not isinstance(exc, ssl.SSLError):
            raise trio.BrokenResourceError(str(exc)) from exc
        raise
    return TlsSocketStream(transport, tls)


def _discard_unread(fd: int) -> None:
    """Read and drop what the peer already sent after a failed handshake.

    OpenSSL stops reading at the record it refused; closing a socket with unread bytes
    makes the kernel answer with a reset instead of a FIN, and a reset can make the
    client lose the TLS alert (or report "connection reset" instead of the refusal).
    Bounded: a peer that keeps sending is cut off by the reset after all.
    """
    for _ in range(16):
        try:
            if not os.read(fd, RECEIVE_SIZE):
                return
        except OSError:  # BlockingIOError (nothing more) or a broken connection
            return


class TlsSocketStream(trio.abc.Stream):
    """A server-side TLS connection as a ``trio.abc.Stream``, after :func:`tls_accept`.

    The listener reads the first bytes through it (sniffing) and hands it to a
    front-end; :func:`io_for` gives the front-end's hot path a :class:`TlsSocketIO` on
    the same ``ssl.SSLSocket``. Like ``trio.SSLStream`` it reports a clean TLS close
    (close_notify) as ``b""`` and a connection that ends without one, or breaks, as
    ``trio.BrokenResourceError``. One task receives and one task at a time sends (the
    front-ends' duty; this class does not police it).
    """

    def __init__(self, transport: trio.SocketStream, tls: ssl.SSLSocket) -> None:
        self.transport_stream = transport
        self.ssl_socket = tls
        self.fd = transport.socket.fileno()
        self._io = TlsSocketIO(self)
        self._closed = False

    def selected_alpn_protocol(self) -> str | None:
        return self.ssl_socket.selected_alpn_protocol()

    def peer_certificate_der(self) -> bytes | None:
        """The client's certificate (DER), verified against the trust store; None without one.

        Python 3.11 exposes only the leaf."""
        return self.ssl_socket.getpeercert(binary_form=True)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        # The stream contract: a checkpoint whether or not the bytes were already there.
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._closed:
            raise trio.ClosedResourceError("the TLS stream is closed")
        data = await self._io.receive(RECEIVE_SIZE if max_bytes is None else max_bytes)
        await trio.lowlevel.cancel_shielded_checkpoint()
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._closed:
            raise trio.ClosedResourceError("the TLS stream is closed")
        await self._io.send(bytes(data))
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def wait_send_all_might_not_block(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the TLS stream is closed")
        await trio.lowlevel.wait_writable(self.fd)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            tls = self.ssl_socket
            # A graceful close says so (close_notify) if the socket takes it now; a
            # forced one (already cancelled: trio.aclose_forcefully) must not claim a
            # clean end, as trio.SSLStream does not.
            if trio.current_effective_deadline() != -math.inf:
                try:
                    tls.unwrap()
                except (OSError, ValueError):
                    pass
            tls.close()
        await self.transport_stream.aclose()


class TlsSocketIO(SocketIO):
    """Try-first ``recv``/``send`` on a :class:`TlsSocketStream`'s ``ssl.SSLSocket``.

    A SocketIO whose socket speaks TLS: OpenSSL reads and writes the (non-blocking)
    descriptor itself, and ``SSLWantReadError``/``SSLWantWriteError`` say which
    readiness to wait for, in either direction (a TLS read may have to write and a
    write may have to read). The stream owns the SSL socket: ``close`` leaves it alone.
    """

    __slots__ = ("tls",)

    def __init__(self, stream: TlsSocketStream) -> None:
        self.fd = stream.fd
        self.sock = self.tls = stream.ssl_socket

    async def receive(self, max_bytes: int = RECEIVE_SIZE) -> bytes:
        tls = self.tls
        while True:
            try:
                data = tls.recv(max_bytes)
                break
            except ssl.SSLWantReadError:
                await trio.lowlevel.wait_readable(self.fd)
            except ssl.SSLWantWriteError:
                await _wait_writable_shared(self.fd)
            except ssl.SSLZeroReturnError:  # close_notify: a clean end of the stream
                return b""
            except (OSError, ValueError) as exc:  # a reset, a TLS error, EOF without close_notify
                raise trio.BrokenResourceError(str(exc)) from exc
        if not data:  # close_notify (an EOF without one raised SSLEOFError above)
            return data
        # Records already decrypted inside OpenSSL go out with this batch: no wake-up
        # will announce them (the kernel has nothing more to say).
        while len(data) < max_bytes and tls.pending():
            try:
                data += tls.recv(min(tls.pending(), max_bytes - len(data)))
            except (OSError, ValueError):
                break  # the next receive reports it
        return data

    async def send(self, data: bytes) -> None:
        tls = self.tls
        view = memoryview(data)
        while view:
            try:
                # Without partial-write mode OpenSSL finishes the whole buffer or
                # raises WantWrite/WantRead; a retry with the same bytes resumes it.
                sent = tls.send(view)
            except ssl.SSLWantWriteError:
                await trio.lowlevel.wait_writable(self.fd)
                continue
            except ssl.SSLWantReadError:
                await _wait_readable_shared(self.fd)
                continue
            except (OSError, ValueError) as exc:
                raise trio.BrokenResourceError(str(exc)) from exc
            view = view[sent:]

    def close(self) -> None:
        pass


async def _wait_writable_shared(fd: int) -> None:
    """Wait for room to write from the receiving side. The sending task may already
    wait on that (trio allows one waiter per direction); its write flushes the same
    OpenSSL output, so poll briefly instead of failing the connection."""
    try:
        await trio.lowlevel.wait_writable(fd)
    except trio.BusyResourceError:
        await trio.sleep(0.001)


async def _wait_readable_shared(fd: int) -> None:
    """The sending side's mirror of :func:`_wait_writable_shared` (the receiving task's
    read feeds OpenSSL the bytes this write is waiting for)."""
    try:
        await trio.lowlevel.wait_readable(fd)
    except trio.BusyResourceError:
        await trio.sleep(0.001)
