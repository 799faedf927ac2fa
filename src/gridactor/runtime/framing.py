"""Length-prefixed msgpack frames, sans-IO (no sockets, no trio).

A frame is a 4-byte big-endian body length followed by one msgpack object. Feed received
bytes with :meth:`FrameDecoder.receive_data` and take *every* complete frame with
:meth:`FrameDecoder.next_frames`: the IPC hot path must parse all frames of one receive
in one go, never one frame per wake-up.

Malformed input (bad msgpack, oversized length) raises :class:`FrameError` and leaves the
decoder broken; the caller drops the connection. Nothing else ever escapes, whatever the
bytes.
"""

from __future__ import annotations

from typing import Final

import msgpack

from gridactor.errors import GridError

HEADER: Final = 4
DEFAULT_MAX_FRAME: Final = 256 * 1024 * 1024  # whole-cache scans travel as one frame


class FrameError(GridError):
    """The peer sent bytes that are not a valid frame (our IPC peer is broken)."""


def encode(obj: object) -> bytes:
    """One frame carrying ``obj`` (msgpack-able: tuples, lists, bytes, str, ints, None, dicts)."""
    body = msgpack.packb(obj, use_bin_type=True)
    return len(body).to_bytes(HEADER, "big") + body


def decode_body(body: bytes | memoryview) -> object:
    """The msgpack object of one frame body (tuples for arrays)."""
    return msgpack.unpackb(body, use_list=False, raw=False, strict_map_key=False)


class FrameDecoder:
    """Bytes in, msgpack objects out."""

    __slots__ = ("_broken", "_buf", "_eof", "max_frame")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()
        self._eof = False
        self._broken = False

    def receive_data(self, data: bytes) -> None:
        """Buffer ``data``; ``b""`` means the peer closed its end."""
        if not data:
            self._eof = True
            return
        self._buf += data

    @property
    def eof(self) -> bool:
        return self._eof

    @property
    def buffered(self) -> int:
        """Bytes held that do not make a complete frame yet."""
        return len(self._buf)

    def next_frames(self) -> list[object]:
        """Every complete frame buffered so far, in order (possibly none).

        Raises:
            FrameError: a frame is too large or its body is not one msgpack object; also
                at EOF in the middle of a frame.
        """
        if self._broken:
            raise FrameError("frame decoder already failed")
        buf = self._buf
        n = len(buf)
        pos = 0
        out: list[object] = []
        view = memoryview(buf)  # released below: a live export would forbid resizing buf
        try:
            while n - pos >= HEADER:
                size = int.from_bytes(buf[pos : pos + HEADER], "big")
                if size > self.max_frame:
                    raise FrameError(f"frame of {size} bytes exceeds the limit of {self.max_frame}")
                end = pos + HEADER + size
                if end > n:
                    break
                try:
                    out.append(decode_body(view[pos + HEADER : end]))
                except Exception as e:  # msgpack raises several unrelated types on bad input
                    raise FrameError(f"undecodable frame body: {e!r}") from e
                pos = end
        except FrameError:
            self._broken = True
            raise
        finally:
            view.release()
        if pos:
            del buf[:pos]
        if self._eof and buf and not out:
            self._broken = True
            raise FrameError(f"connection closed inside a frame ({len(buf)} bytes pending)")
        return out
