from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gridactor.server.sniff import H2_PREFACE, NEED_MORE, Wire, sniff


def test_hotrod_magic() -> None:
    assert sniff(bytes.fromhex("A0 03 29 17")) is Wire.HOTROD
    assert sniff(b"\xa0") is Wire.HOTROD


def test_http2_preface_needs_the_whole_preface() -> None:
    for cut in range(1, len(H2_PREFACE)):
        assert sniff(H2_PREFACE[:cut]) is NEED_MORE
    assert sniff(H2_PREFACE) is Wire.HTTP2
    assert sniff(H2_PREFACE + b"\x00\x00\x12\x04") is Wire.HTTP2


def test_http1_requests() -> None:
    assert sniff(b"GET /rest/v2/caches HTTP/1.1\r\n") is Wire.HTTP1
    assert sniff(b"PUT / HTTP/1.1\r\n") is Wire.HTTP1
    # Shares "P" with the preface but diverges at the second byte.
    assert sniff(b"POST /x HTTP/1.1\r\n") is Wire.HTTP1


def test_tls_client_hello_on_a_plain_port() -> None:
    assert sniff(bytes.fromhex("16 03 01 02 00")) is Wire.TLS


def test_nothing_yet() -> None:
    assert sniff(b"") is NEED_MORE


@given(st.binary(min_size=1, max_size=64))
def test_never_waits_past_the_preface_length(data: bytes) -> None:
    result = sniff(data)
    if result is NEED_MORE:
        assert len(data) < len(H2_PREFACE)
        assert H2_PREFACE.startswith(data)
