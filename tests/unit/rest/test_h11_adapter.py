"""The h11 adapter, sans-IO: bytes in, neutral events and bytes out."""

from __future__ import annotations

import base64

import h11

from gridactor.protocols.rest.events import CLOSED, NEED_DATA, H2CUpgrade, Request, Response
from gridactor.protocols.rest.h11_adapter import H11Adapter
from gridactor.server.context import Limits


def parse_responses(data: bytes) -> list[tuple[int, dict[bytes, bytes], bytes]]:
    """Decode server bytes with a real h11 client (after sending matching GETs)."""
    out: list[tuple[int, dict[bytes, bytes], bytes]] = []
    client = h11.Connection(h11.CLIENT)
    client.receive_data(data)
    while True:
        client.send(h11.Request(method="GET", target="/", headers=[("host", "x")]))
        client.send(h11.EndOfMessage())
        status = 0
        headers: dict[bytes, bytes] = {}
        body = b""
        while True:
            event = client.next_event()
            if event is h11.NEED_DATA:
                return out
            if isinstance(event, h11.InformationalResponse):
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
                headers = dict(event.headers)
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                out.append((status, headers, body))
                break
        if client.our_state is not h11.DONE or client.their_state is not h11.DONE:
            return out
        client.start_next_cycle()


def test_simple_get_becomes_request() -> None:
    a = H11Adapter(Limits())
    a.receive_data(b"GET /rest/v2/caches?x=1&action= HTTP/1.1\r\nHost: a\r\nX-Thing: 1\r\nX-Thing: 2\r\n\r\n")
    event = a.next_event()
    assert isinstance(event, Request)
    assert event.method == "GET"
    assert event.target == b"/rest/v2/caches?x=1&action="
    assert event.raw_path == b"/rest/v2/caches"
    assert event.query == {"x": ["1"], "action": [""]}
    assert event.header(b"x-thing") == b"1, 2"
    assert event.body == b""
    a.send_response(event, Response.text(200, "hi"))
    out = a.data_to_send()
    assert out.startswith(b"HTTP/1.1 200 ")
    assert b"content-length: 2\r\n" in out
    assert out.endswith(b"\r\n\r\nhi")
    assert a.next_event() is NEED_DATA


def test_byte_at_a_time() -> None:
    a = H11Adapter(Limits())
    raw = b"PUT /k HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
    for i in range(len(raw) - 1):
        a.receive_data(raw[i : i + 1])
        assert a.next_event() is NEED_DATA
    a.receive_data(raw[-1:])
    event = a.next_event()
    assert isinstance(event, Request)
    assert event.body == b"hello"


def test_chunked_body_is_joined() -> None:
    a = H11Adapter(Limits())
    a.receive_data(
        b"POST /k HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    event = a.next_event()
    assert isinstance(event, Request)
    assert event.body == b"abcde"


def test_pipelined_requests_answered_in_order_one_buffer() -> None:
    a = H11Adapter(Limits())
    a.receive_data(b"".join(f"GET /{i} HTTP/1.1\r\nHost: a\r\n\r\n".encode() for i in range(5)))
    for i in range(5):
        event = a.next_event()
        assert isinstance(event, Request)
        assert event.target == f"/{i}".encode()
        a.send_response(event, Response.text(200, str(i)))
    assert a.next_event() is NEED_DATA
    replies = parse_responses(a.data_to_send())
    assert [body for _, _, body in replies] == [b"0", b"1", b"2", b"3", b"4"]


def test_head_response_has_length_but_no_body() -> None:
    a = H11Adapter(Limits())
    a.receive_data(b"HEAD /x HTTP/1.1\r\nHost: a\r\n\r\nGET /y HTTP/1.1\r\nHost: a\r\n\r\n")
    head = a.next_event()
    assert isinstance(head, Request)
    a.send_response(head, Response.text(200, "12345"))
    out = a.data_to_send()
    assert b"content-length: 5" in out
    assert out.endswith(b"\r\n\r\n")
    assert isinstance(a.next_event(), Request)


def test_connection_close_from_client() -> None:
    a = H11Adapter(Limits())
    a.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    event = a.next_event()
    assert isinstance(event, Request)
    a.send_response(event, Response.empty(204))
    assert a.closed
    assert not a.errored
    assert a.next_event() is CLOSED


def test_response_close_flag_closes() -> None:
    a = H11Adapter(Limits())
    a.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    event = a.next_event()
    assert isinstance(event, Request)
    a.send_response(event, Response(200, close=True))
    assert b"connection: close" in a.data_to_send()
    assert a.next_event() is CLOSED


def test_http10_request() -> None:
    a = H11Adapter(Limits())
    a.receive_data(b"GET / HTTP/1.0\r\n\r\n")
    event = a.next_event()
    assert isinstance(event, Request)
    assert event.http_version == "1.0"
    a.send_response(event, Response.text(200, "x"))
    assert a.data_to_send().startswith(b"HTTP/1.1 200")
    assert a.next_event() is CLOSED


def test_eof_is_closed() -> None:
    a = H11Adapter(Limits())
    a.receive_data(b"")
    assert a.next_event() is CLOSED
    assert not a.errored


def test_malformed_request_line_gets_400_then_close() -> None:
    a = H11Adapter(Limits())
    a.receive_data(b"THIS IS NOT HTTP\r\n\r\n")
    assert a.next_event() is CLOSED
    out = a.data_to_send()
    assert out.startswith(b"HTTP/1.1 400 ")
    assert b"connection: close" in out
    assert b"Malformed request" in out
    assert a.errored


def test_bad_header_gets_400() -> None:
    a = H11Adapter(Limits())
    a.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n")
    assert a.next_event() is CLOSED
    assert a.data_to_send().startswith(b"HTTP/1.1 400 ")


def test_conflicting_lengths_get_400() -> None:
    a = H11Adapter(Limits())
    a.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab")
    assert a.next_event() is CLOSED
    assert a.data_to_send().startswith(b"HTTP/1.1 400 ")


def test_oversized_head_gets_431() -> None:
    a = H11Adapter(Limits(max_http_header_bytes=1024))
    a.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 2000)
    assert a.next_event() is CLOSED
    out = a.data_to_send()
    assert out.startswith(b"HTTP/1.1 431 ")


def test_declared_body_over_limit_gets_413_before_reading() -> None:
    a = H11Adapter(Limits(max_http_body_bytes=10))
    a.receive_data(b"PUT /k HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n")
    assert a.next_event() is CLOSED
    out = a.data_to_send()
    assert out.startswith(b"HTTP/1.1 413 ")
    assert b"exceeds the limit of 10 bytes" in out


def test_chunked_body_over_limit_gets_413() -> None:
    a = H11Adapter(Limits(max_http_body_bytes=4))
    a.receive_data(b"PUT /k HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
    assert a.next_event() is NEED_DATA
    a.receive_data(b"3\r\ndef\r\n")
    assert a.next_event() is CLOSED
    assert a.data_to_send().startswith(b"HTTP/1.1 413 ")


def test_expect_100_continue() -> None:
    a = H11Adapter(Limits())
    a.receive_data(b"PUT /k HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
    assert a.next_event() is NEED_DATA
    assert a.data_to_send().startswith(b"HTTP/1.1 100 ")
    a.receive_data(b"abc")
    event = a.next_event()
    assert isinstance(event, Request)
    assert event.body == b"abc"


def _settings_header() -> bytes:
    return base64.urlsafe_b64encode(b"\x00\x03\x00\x00\x00\x64").rstrip(b"=")


def test_h2c_upgrade_accepted() -> None:
    a = H11Adapter(Limits())
    a.receive_data(
        b"GET /rest/v2/server HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: " + _settings_header() + b"\r\n\r\nPRI * HTTP/2.0"
    )
    event = a.next_event()
    assert isinstance(event, H2CUpgrade)
    assert event.request.target == b"/rest/v2/server"
    assert event.trailing == b"PRI * HTTP/2.0"
    out = a.data_to_send()
    assert out.startswith(b"HTTP/1.1 101 ")
    assert b"upgrade: h2c" in out.lower()
    assert a.closed


def test_h2c_upgrade_without_settings_is_declined() -> None:
    a = H11Adapter(Limits())
    a.receive_data(b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
    event = a.next_event()
    assert isinstance(event, Request)
    a.send_response(event, Response.text(200, "ok"))
    assert a.data_to_send().startswith(b"HTTP/1.1 200 ")
    assert not a.closed


def test_h2c_upgrade_with_bad_settings_is_declined() -> None:
    a = H11Adapter(Limits())
    a.receive_data(
        b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        b"HTTP2-Settings: !!!\r\n\r\n"
    )
    assert isinstance(a.next_event(), Request)


def test_websocket_upgrade_is_declined() -> None:
    a = H11Adapter(Limits())
    a.receive_data(b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
    event = a.next_event()
    assert isinstance(event, Request)
    a.send_response(event, Response.text(404, "no"))
    assert a.data_to_send().startswith(b"HTTP/1.1 404 ")


def test_h2c_disabled() -> None:
    a = H11Adapter(Limits(), allow_h2c=False)
    a.receive_data(
        b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        b"HTTP2-Settings: " + _settings_header() + b"\r\n\r\n"
    )
    assert isinstance(a.next_event(), Request)


def test_invalid_response_header_does_not_raise() -> None:
    a = H11Adapter(Limits())
    a.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    event = a.next_event()
    assert isinstance(event, Request)
    a.send_response(event, Response(200, [(b"bad header", b"x")]))
    assert a.next_event() is CLOSED
