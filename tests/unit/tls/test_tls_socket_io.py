"""TLS on the connection's own socket (``tls_accept``, ``TlsSocketStream``, ``TlsSocketIO``).

Every test runs a real TLS pair on loopback: the server side is what the listener runs
(``tls_accept`` on an accepted ``trio.SocketStream``), the client is ``trio.SSLStream``
(or a bare socket for the misbehaving peers), certificates come from trustme. They
drive the paths a connection meets: reads and writes that must wait (both directions
at once), records already decrypted when the kernel has nothing more, clean and
unclean ends, refused handshakes, and the descriptors: the TLS socket works on a
duplicate, which must be closed exactly when the stream is.
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
import trio
import trustme

from gridactor.protocols.hotrod import operations as op
from gridactor.protocols.hotrod.connection import serve_hotrod
from gridactor.protocols.hotrod.primitives import write_bytes
from gridactor.server.socket_io import TlsSocketIO, TlsSocketStream, io_for, tls_accept
from tests.unit.hotrod.hotrod_helpers import frame, kv
from tests.unit.hotrod.test_hotrod_connection import make_ctx
from tests.unit.hotrod.test_hotrod_socket_io import BIG, _read_responses

BULK = 4 << 20  # far more than loopback socket buffers hold: writes must wait for the peer


@dataclass
class Certificates:
    server: ssl.SSLContext  # asks for a client certificate (optional), offers h2 and http/1.1
    strict_server: ssl.SSLContext  # requires a client certificate
    client: ssl.SSLContext  # trusts the CA, presents "alice"
    anonymous: ssl.SSLContext  # trusts the CA, presents nothing
    stranger: ssl.SSLContext  # presents a certificate from another CA
    alice_der: bytes


@pytest.fixture(scope="module")
def certificates() -> Certificates:
    ca = trustme.CA()
    localhost = ca.issue_cert("localhost")

    def server_context(verify: ssl.VerifyMode) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        localhost.configure_cert(context)
        ca.configure_trust(context)
        context.verify_mode = verify
        context.set_alpn_protocols(["h2", "http/1.1"])
        return context

    def client_context(cert: trustme.LeafCert | None) -> ssl.SSLContext:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        context.set_alpn_protocols(["h2"])
        if cert is not None:
            cert.configure_cert(context)
        return context

    alice = ca.issue_cert("alice@example.com")
    stranger = trustme.CA().issue_cert("mallory@example.com")
    alice_der = ssl.PEM_cert_to_DER_cert(alice.cert_chain_pems[0].bytes().decode())
    return Certificates(
        server_context(ssl.CERT_OPTIONAL),
        server_context(ssl.CERT_REQUIRED),
        client_context(alice),
        client_context(None),
        client_context(stranger),
        alice_der,
    )


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@asynccontextmanager
async def _accepted_tcp() -> AsyncIterator[tuple[trio.SocketStream, trio.SocketStream]]:
    """(server side, client side) of one loopback TCP connection; both closed on exit."""
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    client = await trio.open_tcp_stream("127.0.0.1", port)
    server = await listener.accept()
    await listener.aclose()
    try:
        yield server, client
    finally:
        await trio.aclose_forcefully(client)
        await trio.aclose_forcefully(server)


@asynccontextmanager
async def _tls_pair(
    certificates: Certificates, client_context: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[TlsSocketStream, trio.SSLStream[trio.SocketStream]]]:
    async with _accepted_tcp() as (raw, transport):
        client = trio.SSLStream(transport, client_context or certificates.client, server_hostname="localhost")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.do_handshake)
            with trio.fail_after(5):
                server = await tls_accept(raw, certificates.server)
        try:
            yield server, client
        finally:
            await trio.aclose_forcefully(server)


async def _receive_exactly(receive_some: object, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = await receive_some()  # type: ignore[operator]
        assert chunk, f"closed after {len(data)} of {size} bytes"
        data += chunk
    return bytes(data)


async def test_handshake_keeps_alpn_and_the_client_certificate(certificates: Certificates) -> None:
    async with _tls_pair(certificates) as (server, client):
        assert server.selected_alpn_protocol() == "h2" == client.selected_alpn_protocol()
        assert server.peer_certificate_der() == certificates.alice_der
        assert type(io_for(server)) is TlsSocketIO
    async with _tls_pair(certificates, certificates.anonymous) as (server, _):
        assert server.peer_certificate_der() is None


async def test_bulk_both_ways_at_once_waits_for_the_peer_and_keeps_order(
    certificates: Certificates,
) -> None:
    payload = os.urandom(BULK)
    async with _tls_pair(certificates) as (server, client):
        io = io_for(server)
        received: list[bytes] = []

        async def server_reads() -> None:
            data = bytearray()
            while len(data) < BULK:
                chunk = await io.receive()
                assert chunk
                data += chunk
            received.append(bytes(data))

        async def client_reads() -> None:
            received.append(await _receive_exactly(client.receive_some, BULK))

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                # The server's receive waits for readability while its send waits for room:
                # one waiter per direction on the same descriptor.
                nursery.start_soon(server_reads)
                nursery.start_soon(io.send, payload)
                nursery.start_soon(client.send_all, payload[::-1])
                nursery.start_soon(client_reads)
        assert sorted(received) == sorted([payload[::-1], payload])


async def test_decrypted_bytes_left_inside_openssl_are_returned_without_a_wake_up(
    certificates: Certificates,
) -> None:
    async with _tls_pair(certificates) as (server, client):
        io = io_for(server)
        assert isinstance(io, TlsSocketIO)
        await client.send_all(b"x" * 10_000)  # one record
        first = await io.receive(100)
        assert first == b"x" * 100
        # The rest of the record is in OpenSSL, not in the kernel: the descriptor is not
        # readable, so a receive that waited for it would hang here.
        with trio.fail_after(1):
            rest = await io.receive()
        assert rest == b"x" * 9_900


async def test_close_notify_is_a_clean_end_and_a_bare_close_a_broken_one(
    certificates: Certificates,
) -> None:
    async with _tls_pair(certificates) as (server, client):
        await client.send_all(b"last words")
        await client.aclose()  # sends close_notify
        with trio.fail_after(5):
            assert await server.receive_some() == b"last words"
            assert await server.receive_some() == b""
    async with _tls_pair(certificates) as (server, client):
        await client.transport_stream.aclose()  # TCP FIN without close_notify
        with trio.fail_after(5), pytest.raises(trio.BrokenResourceError):
            await io_for(server).receive()
    async with _tls_pair(certificates) as (server, client):
        # SO_LINGER 0: the close is a reset.
        client.transport_stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00" * 2)
        await client.transport_stream.aclose()
        with trio.fail_after(5), pytest.raises(trio.BrokenResourceError):
            await _receive_until_broken(server)
        with pytest.raises(trio.BrokenResourceError):
            await server.send_all(b"x" * BULK)


async def test_closing_the_stream_closes_both_descriptors_once(certificates: Certificates) -> None:
    before = _open_descriptors()
    async with _accepted_tcp() as (raw, transport):
        client = trio.SSLStream(transport, certificates.client, server_hostname="localhost")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.do_handshake)
            server = await tls_accept(raw, certificates.server)
        assert _open_descriptors() == before + 3  # client, server, the server's duplicate
        io_for(server).close()  # the I/O object owns nothing
        await server.send_all(b"ping")
        assert await client.receive_some() == b"ping"
        await server.aclose()  # graceful: close_notify, then both descriptors
        assert raw.socket.fileno() == -1
        assert _open_descriptors() == before + 1
        with trio.fail_after(5):
            assert await client.receive_some() == b""
        await server.aclose()  # idempotent
        with pytest.raises(trio.ClosedResourceError):
            await server.receive_some()
    assert _open_descriptors() == before


@pytest.mark.parametrize("peer", ["stranger", "plaintext", "silent"])
async def test_refused_handshakes_leave_nothing_open(certificates: Certificates, peer: str) -> None:
    before = _open_descriptors()
    async with _accepted_tcp() as (raw, transport), trio.open_nursery() as nursery:
        if peer == "stranger":
            client = trio.SSLStream(transport, certificates.stranger, server_hostname="localhost")
            nursery.start_soon(_handshake_quietly, client)
            with pytest.raises(ssl.SSLCertVerificationError):
                await tls_accept(raw, certificates.strict_server)
        elif peer == "plaintext":
            await transport.send_all(bytes.fromhex("a0012917000000000000"))  # a Hot Rod PING
            with pytest.raises(ssl.SSLError):
                await tls_accept(raw, certificates.server)
        else:
            with trio.move_on_after(0.2) as waited:
                await tls_accept(raw, certificates.server)
            assert waited.cancelled_caught
        assert _open_descriptors() == before + 2  # only the two TCP ends
        if peer == "plaintext":
            # The refused bytes were read: the close is a FIN (no reset), after the alert.
            await raw.aclose()
            with trio.fail_after(5):
                while await transport.receive_some():
                    pass
    assert _open_descriptors() == before


async def _receive_until_broken(stream: trio.abc.Stream) -> None:
    while True:
        await stream.receive_some()


async def _handshake_quietly(client: trio.SSLStream[trio.SocketStream]) -> None:
    try:
        await client.do_handshake()
        await client.receive_some()  # TLS 1.3: the refusal arrives after the client's Finished
    except (trio.BrokenResourceError, ssl.SSLError):
        pass


async def test_serve_hotrod_over_tls_pipelines_large_values(certificates: Certificates) -> None:
    async with _tls_pair(certificates) as (server, client):
        value = bytes(range(256)) * (BIG // 256)
        requests = [frame(op.PUT, kv(b"big", 0x77, value), mid=1)]
        requests += [frame(op.GET, write_bytes(b"big"), mid=2 + i) for i in range(3)]
        requests.append(frame(op.GET, write_bytes(b"missing"), mid=9))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_hotrod, server, b"", make_ctx())
            await client.send_all(b"".join(requests))
            with trio.fail_after(20):
                got = await _read_responses(client, 5)  # type: ignore[arg-type]
            assert got == [(1, 0x02, 0, -1), *[(2 + i, 0x04, 0, BIG) for i in range(3)], (9, 0x04, 2, -1)]
            await client.aclose()
        assert server.transport_stream.socket.fileno() == -1  # serve_hotrod closed it
