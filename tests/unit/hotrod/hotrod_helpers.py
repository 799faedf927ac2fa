"""Builders for Hot Rod request frames and a small response reader, for the tests."""

from __future__ import annotations

from dataclasses import dataclass

from gridactor.protocols.hotrod.primitives import Reader, write_bytes, write_string, write_vint, write_vlong

TEXT_PLAIN = b"\x01\x0d\x00"


def header(
    opcode: int,
    *,
    mid: int = 1,
    version: int = 41,
    cache: str = "",
    flags: int = 0,
    key_type: bytes = TEXT_PLAIN,
    value_type: bytes = TEXT_PLAIN,
) -> bytes:
    out = b"\xa0" + write_vlong(mid) + bytes((version, opcode)) + write_string(cache)
    out += write_vint(flags) + b"\x03\x00"  # intelligence 3, topology 0
    if version < 20:
        out += b"\x00"  # 1.x transaction marker
    if version >= 28:
        out += key_type + value_type
    if version >= 40:
        out += b"\x00"
    return out


def frame(opcode: int, body: bytes = b"", **kw: object) -> bytes:
    return header(opcode, **kw) + body  # type: ignore[arg-type]


def kv(key: bytes, units: int = 0x77, value: bytes | None = None, extra: bytes = b"") -> bytes:
    """key, expiration (units only), [extra], [value]."""
    out = write_bytes(key) + bytes((units,)) + extra
    if value is not None:
        out += write_bytes(value)
    return out


@dataclass
class Response:
    message_id: int
    opcode: int
    status: int
    body: Reader

    def string(self) -> str:
        return self.body.string(1 << 30)


def next_response(r: Reader) -> Response:
    """Read one response header from ``r``; its body is read by the caller from ``r``."""
    assert r.byte() == 0xA1
    mid = r.vlong()
    opcode = r.byte()
    status = r.byte()
    assert r.byte() == 0  # topology marker: never sent
    return Response(mid, opcode, status, r)


def one(data: bytes) -> Response:
    return next_response(Reader(data))


def error_of(data: bytes) -> tuple[int, int, str]:
    """(message id, status, text) of an error response that must span all of ``data``."""
    resp = one(data)
    assert resp.opcode == 0x50
    text = resp.string()
    assert resp.body.pos == len(data)
    return resp.message_id, resp.status, text
