"""Framing of a SASL security layer on a byte stream, as Infinispan's Hot Rod server does.

Infinispan's ``SaslQopHandler`` (server/core …/transport/SaslQopHandler.java) is put in
front of the Hot Rod decoder right after the final AUTH response (that response itself
goes out unprotected). From then on, in both directions, every buffer is
``uint32 big-endian length ‖ wrap(bytes)``; the receiver unwraps each buffer and feeds the
plaintext to the Hot Rod decoder as a continuous stream, so Hot Rod messages may span
wrapped buffers and one buffer may hold several messages.

These helpers do that framing without I/O. :func:`wrap_stream` splits outgoing data so
that no wrapped buffer exceeds the peer's maxbuf; :class:`UnwrapDecoder` checks each
length prefix against our maxbuf *before* buffering (Infinispan closes the connection
with ``TooLongFrameException`` there) and raises :class:`SaslError` on any bad buffer.
"""

from __future__ import annotations

from gridactor.security.sasl.base import SaslError, SaslMechanism

LENGTH_BYTES = 4


def wrap_stream(mechanism: SaslMechanism, data: bytes, max_chunk: int | None = None) -> bytes:
    """Wrap ``data`` as one or more length-prefixed buffers.

    ``max_chunk`` is the largest plaintext per buffer (a DIGEST mechanism's
    ``max_send_size``); None sends everything as one buffer.
    """
    if max_chunk is None:
        max_chunk = getattr(mechanism, "max_send_size", None) or max(len(data), 1)
    out = bytearray()
    for start in range(0, max(len(data), 1), max_chunk):
        wrapped = mechanism.wrap(data[start : start + max_chunk])
        out += len(wrapped).to_bytes(LENGTH_BYTES, "big") + wrapped
    return bytes(out)


class UnwrapDecoder:
    """Accumulates received bytes and returns the unwrapped plaintext available so far."""

    def __init__(self, mechanism: SaslMechanism, max_buffer: int) -> None:
        self._mechanism = mechanism
        self._max_buffer = max_buffer
        self._pending = bytearray()

    def feed(self, data: bytes) -> bytes:
        """Add received bytes; returns the plaintext of every complete buffer (maybe b"")."""
        self._pending += data
        plain = bytearray()
        while len(self._pending) >= LENGTH_BYTES:
            length = int.from_bytes(self._pending[:LENGTH_BYTES], "big")
            if length > self._max_buffer:
                raise SaslError("wrapped buffer larger than the negotiated maxbuf")
            if len(self._pending) < LENGTH_BYTES + length:
                break
            wrapped = bytes(self._pending[LENGTH_BYTES : LENGTH_BYTES + length])
            del self._pending[: LENGTH_BYTES + length]
            plain += self._mechanism.unwrap(wrapped)
        return bytes(plain)
