"""Which protocol a new connection speaks, from its first bytes (sans-IO).

Hot Rod and REST share one port, as in Infinispan since 10.0. A Hot Rod request starts
with the magic byte 0xA0; an HTTP/2 client with prior knowledge starts with the
connection preface; anything else is taken as HTTP/1.x, which h11 then validates (and
which may upgrade itself to h2c). A TLS ClientHello (0x16) on a plaintext port is named
so the listener can close it at once instead of feeding it to h11.
"""

from __future__ import annotations

import enum

HOTROD_MAGIC = 0xA0
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
TLS_HANDSHAKE = 0x16


class Wire(enum.Enum):
    HOTROD = "hotrod"
    HTTP2 = "h2"
    HTTP1 = "http/1.1"
    TLS = "tls"  # a TLS ClientHello on a plaintext port


class NeedMore(enum.Enum):
    NEED_MORE = "need-more"


NEED_MORE = NeedMore.NEED_MORE


def sniff(first: bytes) -> Wire | NeedMore:
    """Classify a connection from the bytes received so far.

    Returns NEED_MORE only while ``first`` is a strict prefix of the HTTP/2 preface (at
    most 23 bytes), so sniffing never waits for more than the preface length.
    """
    if not first:
        return NEED_MORE
    lead = first[0]
    if lead == HOTROD_MAGIC:
        return Wire.HOTROD
    if lead == TLS_HANDSHAKE:
        return Wire.TLS
    if first[: len(H2_PREFACE)] == H2_PREFACE[: len(first)]:
        return Wire.HTTP2 if len(first) >= len(H2_PREFACE) else NEED_MORE
    return Wire.HTTP1
