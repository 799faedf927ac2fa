"""Hot Rod primitive encodings: vInt/vLong, signed vInt, byte[], string, long, MediaType.

Writers are plain functions returning ``bytes``. Reading goes through :class:`Reader`,
a cursor over an immutable ``bytes`` snapshot: it never mutates anything but its own
position, so a frame that turns out to be incomplete is simply re-read later from its
first byte (the codec's transactional buffer relies on this).

Reader errors are exceptions because they are rare (once per receive at most), while the
success path stays free of result checks:

* :class:`Incomplete` - more bytes are needed; ``need`` is the absolute offset the
  reader tried to reach, so the codec can skip re-parsing until that much has arrived.
* :class:`Oversize` - a byte[]/string length is over its limit. It is raised as soon as
  the length is read, before the payload arrives, with the offsets of the length prefix
  so the codec can drop the payload without buffering it.
* :class:`Malformed` - bytes that cannot be a valid encoding; the stream is lost.
"""

from __future__ import annotations

import struct

# ---------------------------------------------------------------- predefined media types

# Infinispan's MediaTypeIds (the ids Hot Rod clients put on the wire).
MEDIA_TYPE_BY_ID: dict[int, str] = {
    1: "application/x-java-object",
    2: "application/json",
    3: "application/octet-stream",
    4: "application/pdf",
    5: "application/rtf",
    6: "application/zip",
    7: "image/gif",
    8: "image/jpeg",
    9: "image/png",
    10: "text/css",
    11: "text/csv",
    12: "application/x-protostream",
    13: "text/plain",
    14: "text/html",
    15: "application/x-jboss-marshalling",
    17: "application/unknown",
}
MEDIA_TYPE_ID: dict[str, int] = {name: ident for ident, name in MEDIA_TYPE_BY_ID.items()}

_LONG = struct.Struct(">q")
_SHORT = struct.Struct(">H")
_INT = struct.Struct(">i")

_MASK32 = 0xFFFFFFFF
_MASK64 = 0xFFFFFFFFFFFFFFFF

# Most lengths, counts and flags are below 128: one lookup instead of a loop.
_SMALL = tuple(bytes((i,)) for i in range(128))


class Incomplete(Exception):
    """Not enough bytes yet; ``need`` is the absolute buffer offset required."""

    def __init__(self, need: int) -> None:
        super().__init__(need)
        self.need = need


class Oversize(Exception):
    """A length-prefixed field is longer than allowed.

    ``prefix_start``/``data_start`` delimit the length prefix; the payload is
    ``length`` bytes from ``data_start``.
    """

    def __init__(self, what: str, prefix_start: int, data_start: int, length: int, limit: int) -> None:
        super().__init__(what, length, limit)
        self.what = what
        self.prefix_start = prefix_start
        self.data_start = data_start
        self.length = length
        self.limit = limit


class Malformed(Exception):
    """Bytes that are no valid Hot Rod encoding; the stream cannot be resynchronised."""


# ---------------------------------------------------------------- writers


def write_vint(n: int) -> bytes:
    """Unsigned LEB128 of a 32-bit int (negative ints take 5 bytes, as Java writes them)."""
    if 0 <= n < 128:
        return _SMALL[n]
    if n < 0:
        n &= _MASK32
    return _write_varint(n)


def write_vlong(n: int) -> bytes:
    """Unsigned LEB128 of a 64-bit long (negative longs take 10 bytes)."""
    if 0 <= n < 128:
        return _SMALL[n]
    if n < 0:
        n &= _MASK64
    return _write_varint(n)


def _write_varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def write_signed_vint(n: int) -> bytes:
    """ZigZag then vInt: -1 -> 01, 0 -> 00, 1 -> 02."""
    return write_vint(((n << 1) ^ (n >> 31)) & _MASK32)


def write_bytes(data: bytes) -> bytes:
    """byte[]: vInt length then the bytes."""
    return write_vint(len(data)) + data


def write_string(text: str) -> bytes:
    """string: vInt UTF-8 byte length then the UTF-8 bytes."""
    return write_bytes(text.encode())


def write_long(n: int) -> bytes:
    return _LONG.pack(n)


def write_short(n: int) -> bytes:
    return _SHORT.pack(n)


def write_media_type(name: str) -> bytes:
    """A MediaType in the form every client can read.

    The Node client reads only kind 00 or ``01 <id> 00`` (one-byte id, no parameters),
    so parameters are dropped and types without a predefined id are sent as kind 00.
    """
    ident = MEDIA_TYPE_ID.get(name.split(";", 1)[0].strip()) if name else None
    if ident is None:
        return b"\x00"
    return b"\x01" + _SMALL[ident] + b"\x00"


# ---------------------------------------------------------------- reader


class Reader:
    """A cursor over ``data[pos:end]``. Raises Incomplete/Oversize/Malformed (module doc)."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def byte(self) -> int:
        p = self.pos
        if p >= self.end:
            raise Incomplete(p + 1)
        self.pos = p + 1
        return self.data[p]

    def peek(self) -> int | None:
        """The next byte without consuming it, or None when none has arrived yet."""
        return self.data[self.pos] if self.pos < self.end else None

    def vint(self) -> int:
        """A vInt as a signed 32-bit int (Java's int), so FF FF FF FF 0F is -1."""
        p = self.pos
        if p < self.end:
            b = self.data[p]
            if b < 0x80:
                self.pos = p + 1
                return b
        n = self._varint(5) & _MASK32
        return n - (1 << 32) if n & 0x80000000 else n

    def vlong(self) -> int:
        """A vLong as a signed 64-bit int."""
        p = self.pos
        if p < self.end:
            b = self.data[p]
            if b < 0x80:
                self.pos = p + 1
                return b
        n = self._varint(10) & _MASK64
        return n - (1 << 64) if n & 0x8000000000000000 else n

    def _varint(self, max_bytes: int) -> int:
        data = self.data
        p = self.pos
        end = self.end
        result = 0
        shift = 0
        for _ in range(max_bytes):
            if p >= end:
                raise Incomplete(p + 1)
            b = data[p]
            p += 1
            result |= (b & 0x7F) << shift
            if b < 0x80:
                self.pos = p
                return result
            shift += 7
        raise Malformed(f"variable-length integer longer than {max_bytes} bytes")

    def signed_vint(self) -> int:
        n = self.vint() & _MASK32
        return (n >> 1) ^ -(n & 1)

    def long(self) -> int:
        p = self.pos
        if p + 8 > self.end:
            raise Incomplete(p + 8)
        self.pos = p + 8
        value: int = _LONG.unpack_from(self.data, p)[0]
        return value

    def int32(self) -> int:
        p = self.pos
        if p + 4 > self.end:
            raise Incomplete(p + 4)
        self.pos = p + 4
        value: int = _INT.unpack_from(self.data, p)[0]
        return value

    def fixed(self, n: int) -> bytes:
        p = self.pos
        if p + n > self.end:
            raise Incomplete(p + n)
        self.pos = p + n
        return self.data[p : p + n]

    def array(self, limit: int, what: str = "array") -> bytes:
        """byte[]; Oversize when the declared length is over ``limit``."""
        start = self.pos
        n = self.vint()
        if n < 0:
            raise Malformed(f"negative {what} length {n}")
        p = self.pos
        if n > limit:
            raise Oversize(what, start, p, n, limit)
        if p + n > self.end:
            raise Incomplete(p + n)
        self.pos = p + n
        return self.data[p : p + n]

    def string(self, limit: int, what: str = "string") -> str:
        return self.array(limit, what).decode("utf-8", "replace")

    def optional_array(self, limit: int, what: str = "array") -> bytes | None:
        """Signed-vInt length, -1 (or any negative) = absent."""
        start = self.pos
        n = self.signed_vint()
        if n < 0:
            return None
        p = self.pos
        if n > limit:
            raise Oversize(what, start, p, n, limit)
        if p + n > self.end:
            raise Incomplete(p + n)
        self.pos = p + n
        return self.data[p : p + n]

    def media_type(self, limit: int) -> str:
        """A MediaType as text: "" when none/unknown, "type/sub; k=v" otherwise."""
        kind = self.byte()
        if kind == 0:
            return ""
        if kind == 1:
            name = MEDIA_TYPE_BY_ID.get(self.vint(), "")
        elif kind == 2:
            name = self.string(limit, "media type")
        else:
            raise Malformed(f"unknown MediaType definition {kind}")
        n_params = self.vint()
        if n_params < 0:
            raise Malformed("negative MediaType parameter count")
        for _ in range(n_params):
            key = self.string(limit, "media type parameter")
            value = self.string(limit, "media type parameter")
            if name:
                name = f"{name}; {key}={value}"
        return name
