"""Any bytes, in any split, only ever produce events: the adapters never raise."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gridactor.protocols.rest.events import CLOSED, NEED_DATA, Request, Response
from gridactor.protocols.rest.h2_adapter import H2Adapter
from gridactor.protocols.rest.h11_adapter import H11Adapter
from gridactor.server.context import Limits

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HTTP_BITS = st.sampled_from(
    [b"GET ", b"PUT ", b"/rest/v2/caches/default/k", b" HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n",
     b"Content-Length: 3\r\n", b"Transfer-Encoding: chunked\r\n", b"3\r\nabc\r\n0\r\n\r\n", b"abc",
     b"Upgrade: h2c\r\n", b"Connection: Upgrade, HTTP2-Settings\r\n", b"HTTP2-Settings: AAMAAABk\r\n",
     b"Expect: 100-continue\r\n", b"\x00", b":", b" "]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(HTTP_BITS, st.binary(max_size=20)), max_size=30))
def test_h11_adapter_never_raises(chunks: list[bytes]) -> None:
    adapter = H11Adapter(Limits(max_http_header_bytes=512, max_http_body_bytes=64))
    for chunk in [*chunks, b""]:
        adapter.receive_data(chunk)
        for _ in range(50):
            event = adapter.next_event()
            if isinstance(event, Request):
                adapter.send_response(event, Response.text(200, "ok"))
                continue
            if event is NEED_DATA or event is CLOSED:
                break
            break  # an accepted upgrade: the h11 side is done
        adapter.data_to_send()
        if adapter.closed:
            return


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=20))
def test_h2_adapter_never_raises(chunks: list[bytes]) -> None:
    adapter = H2Adapter(Limits(max_http_body_bytes=64))
    adapter.initiate()
    for chunk in [H2_PREFACE, *chunks]:
        for item in adapter.receive_data(chunk):
            if isinstance(item, Request):
                adapter.send_response(item.stream_id, Response.text(200, "ok"), head=False)
        adapter.data_to_send()
