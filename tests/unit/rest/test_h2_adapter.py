"""The h2 adapter, sans-IO: a real h2 client connection on the other side, no trio."""

from __future__ import annotations

import h2.config
import h2.connection
import h2.events
import h2.settings

from gridactor.protocols.rest.events import CLOSED, Request, Response
from gridactor.protocols.rest.h2_adapter import H2Adapter
from gridactor.server.context import Limits


def pair(limits: Limits | None = None) -> tuple[H2Adapter, h2.connection.H2Connection]:
    server = H2Adapter(limits or Limits())
    server.initiate()
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    client.initiate_connection()
    return server, client


def exchange(
    server: H2Adapter, client: h2.connection.H2Connection
) -> tuple[list[object], list[h2.events.Event]]:
    """Move bytes both ways until quiet; return server items and client events."""
    items: list[object] = []
    events: list[h2.events.Event] = []
    for _ in range(10):
        to_server = client.data_to_send()
        if to_server:
            items.extend(server.receive_data(to_server))
        to_client = server.data_to_send()
        if to_client:
            events.extend(client.receive_data(to_client))
        if not to_server and not to_client:
            break
    return items, events


def headers(method: str, path: str, *extra: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    return [(b":method", method.encode()), (b":path", path.encode()), (b":scheme", b"http"),
            (b":authority", b"x"), *extra]


def test_request_and_response() -> None:
    server, client = pair()
    client.send_headers(1, headers("PUT", "/a?b=c", (b"content-type", b"text/plain")))
    client.send_data(1, b"hel")
    client.send_data(1, b"lo", end_stream=True)
    items, _ = exchange(server, client)
    [request] = items
    assert isinstance(request, Request)
    assert request.method == "PUT"
    assert request.target == b"/a?b=c"
    assert request.body == b"hello"
    assert request.header(b"host") == b"x"
    assert request.header(b"content-type") == b"text/plain"
    assert request.http_version == "2"
    server.send_response(1, Response.text(200, "ok", [(b"connection", b"close")]), head=False)
    _, events = exchange(server, client)
    response = next(e for e in events if isinstance(e, h2.events.ResponseReceived))
    hdrs = dict(response.headers or [])
    assert hdrs[b":status"] == b"200"
    assert b"connection" not in hdrs
    assert hdrs[b"content-length"] == b"2"
    data = b"".join(e.data or b"" for e in events if isinstance(e, h2.events.DataReceived))
    assert data == b"ok"
    assert any(isinstance(e, h2.events.StreamEnded) for e in events)


def test_head_response_ends_after_headers() -> None:
    server, client = pair()
    client.send_headers(1, headers("HEAD", "/"), end_stream=True)
    items, _ = exchange(server, client)
    assert len(items) == 1
    server.send_response(1, Response.text(200, "12345"), head=True)
    _, events = exchange(server, client)
    response = next(e for e in events if isinstance(e, h2.events.ResponseReceived))
    assert dict(response.headers or [])[b"content-length"] == b"5"
    assert not [e for e in events if isinstance(e, h2.events.DataReceived)]
    assert any(isinstance(e, h2.events.StreamEnded) for e in events)


def test_body_waits_for_flow_control_credit() -> None:
    server, client = pair()
    client.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 10})
    client.send_headers(1, headers("GET", "/"), end_stream=True)
    exchange(server, client)
    server.send_response(1, Response(200, [], b"x" * 25), head=False)
    _, events = exchange(server, client)
    got = b"".join(e.data or b"" for e in events if isinstance(e, h2.events.DataReceived))
    assert got == b"x" * 10
    assert server.has_pending_output
    client.increment_flow_control_window(100, stream_id=1)
    _, events = exchange(server, client)
    got += b"".join(e.data or b"" for e in events if isinstance(e, h2.events.DataReceived))
    assert got == b"x" * 25
    assert not server.has_pending_output
    assert any(isinstance(e, h2.events.StreamEnded) for e in events)


def test_reset_stream_drops_pending_output() -> None:
    server, client = pair()
    client.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1})
    client.send_headers(1, headers("GET", "/"), end_stream=True)
    exchange(server, client)
    server.send_response(1, Response(200, [], b"abc"), head=False)
    exchange(server, client)
    assert server.has_pending_output
    client.reset_stream(1)
    exchange(server, client)
    assert not server.has_pending_output
    # A late response to a reset stream is dropped, not an exception.
    server.send_response(1, Response(200, [], b"late"), head=False)


def test_declared_body_over_limit_gets_413_and_reset() -> None:
    server, client = pair(Limits(max_http_body_bytes=4))
    client.send_headers(1, headers("PUT", "/k", (b"content-length", b"5")))
    items, events = exchange(server, client)
    assert items == []
    response = next(e for e in events if isinstance(e, h2.events.ResponseReceived))
    assert dict(response.headers or [])[b":status"] == b"413"
    assert any(isinstance(e, h2.events.StreamReset) for e in events)
    # The connection lives on.
    client.send_headers(3, headers("GET", "/"), end_stream=True)
    items, _ = exchange(server, client)
    assert len(items) == 1


def test_streamed_body_over_limit_gets_413() -> None:
    server, client = pair(Limits(max_http_body_bytes=4))
    client.send_headers(1, headers("PUT", "/k"))
    client.send_data(1, b"abc")
    exchange(server, client)
    client.send_data(1, b"def", end_stream=True)
    items, events = exchange(server, client)
    assert items == []
    responses = [e for e in events if isinstance(e, h2.events.ResponseReceived)]
    statuses = [dict(e.headers or [])[b":status"] for e in responses]
    assert statuses == [b"413"]


def test_concurrent_streams_interleaved() -> None:
    server, client = pair()
    for sid in (1, 3, 5):
        client.send_headers(sid, headers("PUT", f"/{sid}"))
    for sid in (5, 3, 1):
        client.send_data(sid, str(sid).encode(), end_stream=True)
    items, _ = exchange(server, client)
    assert [(r.stream_id, r.body) for r in items if isinstance(r, Request)] == [
        (5, b"5"), (3, b"3"), (1, b"1")
    ]


def test_garbage_gives_goaway_and_closed() -> None:
    server = H2Adapter(Limits())
    server.initiate()
    items = server.receive_data(b"GET / HTTP/1.1\r\n\r\n" + b"\x00" * 30)
    assert items == [CLOSED]
    assert server.closed
    out = server.data_to_send()
    assert b"\x07" in out  # a GOAWAY frame type among what is queued


def test_missing_path_is_a_protocol_error() -> None:
    server, client = pair()
    client_config = h2.config.H2Configuration(client_side=True, validate_outbound_headers=False,
                                              header_encoding=None)
    client.config = client_config
    client.send_headers(1, [(b":method", b"GET"), (b":scheme", b"http")], end_stream=True)
    items, events = exchange(server, client)
    assert CLOSED in items or any(isinstance(e, h2.events.StreamReset) for e in events)


def test_eof_closes() -> None:
    server, _ = pair()
    assert server.receive_data(b"") == [CLOSED]
    assert server.receive_data(b"more") == [CLOSED]


def test_close_sends_goaway() -> None:
    server, client = pair()
    exchange(server, client)
    server.close()
    _, events = exchange(server, client)
    assert any(isinstance(e, h2.events.ConnectionTerminated) for e in events)
    server.close()  # idempotent
