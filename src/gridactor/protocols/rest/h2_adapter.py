"""HTTP/2 <-> neutral events, over h2 (sans-IO: no trio in here).

Theory of operation. ``receive_data`` turns bytes into complete :class:`Request` objects
(one per stream, body buffered); ``send_response`` queues headers and as much of the body
as the peer's flow-control windows allow; the rest waits in ``_outbound`` and goes out
when a WINDOW_UPDATE (or a SETTINGS change of the initial window) arrives. Nothing here
does I/O: the connection task drains ``data_to_send`` once per batch of events, so many
responses finished in the same scheduling round leave in one ``send_all``.

Inbound flow control: received DATA is acknowledged at once, since we buffer the body
anyway and bound it with ``max_http_body_bytes`` (a stream over it gets 413 and a reset,
the connection lives on). Protocol violations are h2's to judge: it queues a GOAWAY and
we report ``CLOSED``.
"""

from __future__ import annotations

import re

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes

from gridactor.protocols.rest.events import CLOSED, Request, Response, Sentinel, headers_to_dict
from gridactor.server.context import Limits

MAX_CONCURRENT_STREAMS = 100
# HTTP/1.1-only headers that HTTP/2 forbids (RFC 9113 §8.2.2); handlers may set them.
_CONNECTION_HEADERS = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)
# A response header name we may emit: a lower-case token (RFC 9110 §5.6.2, RFC 9113 §8.2.1).
_VALID_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+")
# What RFC 9113 §8.2.1 forbids in a field value: NUL, CR, LF anywhere; SP/HTAB at either end.
_INVALID_VALUE = re.compile(rb"[\x00\r\n]|\A[ \t]|[ \t]\Z")
_STATUS = {code: str(code).encode() for code in range(100, 600)}
# Names already checked against _VALID_NAME (they come from our own code: a handful).
_checked_names: set[bytes] = set()


class _Inbound:
    __slots__ = ("body", "request", "size")

    def __init__(self, request: Request) -> None:
        self.request = request
        self.body: list[bytes] = []
        self.size = 0


class H2Adapter:
    """Server side of one HTTP/2 connection."""

    def __init__(self, limits: Limits) -> None:
        # Outbound validation/normalisation is h2's costliest step per response (a chain of
        # generators per header). It is off because send_response guarantees the same
        # properties itself, more cheaply: lower-case token names (checked once per name),
        # no connection-specific fields, no pseudo-header but the leading :status, values
        # without NUL/CR/LF or surrounding whitespace. Inbound validation stays on.
        config = h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        self._conn = h2.connection.H2Connection(config=config)
        self._conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: MAX_CONCURRENT_STREAMS,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: limits.max_http_header_bytes,
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
            },
        )
        # h2 applies the advertised limit only once the peer ACKs our SETTINGS; enforce it
        # from the first HEADERS frame.
        self._conn.decoder.max_header_list_size = limits.max_http_header_bytes
        self._limits = limits
        self._inbound: dict[int, _Inbound] = {}
        # stream id -> (body, offset) still to send, waiting for flow-control credit.
        self._outbound: dict[int, tuple[memoryview, int]] = {}
        # Streams answered before their request ended (413): reset once the answer is out.
        self._reset_after_send: set[int] = set()
        self._closed = False

    def initiate(self) -> None:
        """Prior knowledge / ALPN: queue our SETTINGS (the server preface)."""
        self._conn.initiate_connection()

    def initiate_upgrade(self, settings_header: bytes, request: Request) -> None:
        """After ``101 Switching Protocols``: ``request`` becomes stream 1, already complete."""
        # Clients send base64url without padding (RFC 9113 §3.2.1); h2 decodes strictly.
        padded = settings_header + b"=" * (-len(settings_header) % 4)
        self._conn.initiate_upgrade_connection(padded)
        request.stream_id = 1
        request.http_version = "2"

    # ------------------------------------------------------------------ input

    def receive_data(self, data: bytes) -> list[Request | Sentinel]:
        """Feed bytes from the peer (``b""`` = EOF). Returns complete requests, and
        ``CLOSED`` last when the connection is over."""
        if self._closed:
            return [CLOSED]
        if not data:
            self._closed = True
            return [CLOSED]
        try:
            events = self._conn.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            # Frame errors: h2 already queued a GOAWAY with the right code. A bad preface
            # fails before that point, so queue one ourselves (refused if already sent).
            try:
                self._conn.close_connection(exc.error_code)
            except h2.exceptions.ProtocolError:
                pass
            self._closed = True
            return [CLOSED]
        out: list[Request | Sentinel] = []
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                self._on_request(event)
            elif isinstance(event, h2.events.DataReceived):
                self._on_data(event)
            elif isinstance(event, h2.events.StreamEnded):
                inbound = self._inbound.pop(event.stream_id, None)
                if inbound is not None:
                    request = inbound.request
                    request.body = b"".join(inbound.body)
                    out.append(request)
            elif isinstance(event, h2.events.StreamReset):
                self._inbound.pop(event.stream_id, None)
                self._outbound.pop(event.stream_id, None)
            elif isinstance(event, h2.events.WindowUpdated):
                if event.stream_id:
                    self._flush_stream(event.stream_id)
                else:
                    self._flush_all()
            elif isinstance(event, h2.events.RemoteSettingsChanged):
                if h2.settings.SettingCodes.INITIAL_WINDOW_SIZE in event.changed_settings:
                    self._flush_all()
            elif isinstance(event, h2.events.ConnectionTerminated):
                self._closed = True
                out.append(CLOSED)
                break
        return out

    def _on_request(self, event: h2.events.RequestReceived) -> None:
        stream_id = event.stream_id
        method = b"GET"
        path = b"/"
        pairs: list[tuple[bytes, bytes]] = []
        for name, value in event.headers or ():
            name_b = bytes(name)
            value_b = bytes(value)
            if name_b.startswith(b":"):
                if name_b == b":method":
                    method = value_b
                elif name_b == b":path":
                    path = value_b
                elif name_b == b":authority":
                    pairs.append((b"host", value_b))
            else:
                pairs.append((name_b, value_b))
        request = Request(
            stream_id=stream_id,
            method=method.decode("ascii", "replace"),
            target=path,
            headers=headers_to_dict(pairs),
            http_version="2",
        )
        length = request.headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self._limits.max_http_body_bytes:
            self._refuse_too_large(stream_id, int(length))
            return
        self._inbound[stream_id] = _Inbound(request)

    def _on_data(self, event: h2.events.DataReceived) -> None:
        stream_id = event.stream_id
        if event.flow_controlled_length:
            try:
                self._conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
            except h2.exceptions.StreamClosedError:
                pass
        inbound = self._inbound.get(stream_id)
        if inbound is None or event.data is None:
            return
        inbound.size += len(event.data)
        if inbound.size > self._limits.max_http_body_bytes:
            del self._inbound[stream_id]
            self._refuse_too_large(stream_id, inbound.size)
            return
        inbound.body.append(bytes(event.data))

    def _refuse_too_large(self, stream_id: int, size: int) -> None:
        response = Response.text(
            413,
            f"Request body of {size} bytes exceeds the limit of {self._limits.max_http_body_bytes} bytes",
        )
        # RFC 9113 §8.1: a complete response before the request ended, then
        # RST_STREAM(NO_ERROR) so the client stops sending the body. The reset waits
        # until the response body is out (see _flush_stream).
        self._reset_after_send.add(stream_id)
        self.send_response(stream_id, response, head=False)

    # ------------------------------------------------------------------ output

    def send_response(self, stream_id: int, response: Response, *, head: bool) -> None:
        """Queue a response; silently dropped if the peer reset the stream meanwhile."""
        if self._closed:
            return
        headers: list[tuple[bytes, bytes]] = [(b":status", _STATUS.get(response.status) or b"500")]
        for name, value in response.headers:
            if name not in _checked_names:
                if name in _CONNECTION_HEADERS or name == b"content-length":
                    continue
                if _VALID_NAME.fullmatch(name) is None:
                    lowered = name.lower()
                    if _VALID_NAME.fullmatch(lowered) is None or lowered in _CONNECTION_HEADERS:
                        continue  # never emit an invalid or connection-specific field
                    name = lowered
                elif len(_checked_names) < 1024:
                    _checked_names.add(name)
            if _INVALID_VALUE.search(value) is not None:
                value = value.strip(b" \t")
                if _INVALID_VALUE.search(value) is not None:
                    continue  # e.g. a stored media type with a line break: drop the field
            headers.append((name, value))
        headers.append((b"content-length", str(len(response.body)).encode()))
        body = b"" if head else response.body
        try:
            self._conn.send_headers(stream_id, headers, end_stream=not body)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            self._outbound.pop(stream_id, None)
            return
        if body:
            conn = self._conn
            size = len(body)
            if size <= conn.max_outbound_frame_size and size <= conn.local_flow_control_window(stream_id):
                # The usual small body: one DATA frame, no bookkeeping for flow control.
                try:
                    conn.send_data(stream_id, body, end_stream=True)
                except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                    return
                self._maybe_reset(stream_id)
                return
            self._outbound[stream_id] = (memoryview(body), 0)
            self._flush_stream(stream_id)
        else:
            self._maybe_reset(stream_id)

    def _flush_stream(self, stream_id: int) -> None:
        pending = self._outbound.get(stream_id)
        if pending is None:
            return
        body, offset = pending
        conn = self._conn
        try:
            while offset < len(body):
                window = min(conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
                if window <= 0:
                    self._outbound[stream_id] = (body, offset)
                    return
                chunk = body[offset : offset + window]
                offset += len(chunk)
                conn.send_data(stream_id, chunk.tobytes(), end_stream=offset >= len(body))
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            self._outbound.pop(stream_id, None)
            return
        del self._outbound[stream_id]
        self._maybe_reset(stream_id)

    def _maybe_reset(self, stream_id: int) -> None:
        if stream_id in self._reset_after_send:
            self._reset_after_send.discard(stream_id)
            try:
                self._conn.reset_stream(stream_id, ErrorCodes.NO_ERROR)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                pass

    def _flush_all(self) -> None:
        for stream_id in list(self._outbound):
            self._flush_stream(stream_id)

    def refuse(self, stream_id: int) -> None:
        """Reset a stream we will not serve (server stopping)."""
        try:
            self._conn.reset_stream(stream_id, ErrorCodes.REFUSED_STREAM)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            pass

    def close(self, error_code: ErrorCodes = ErrorCodes.NO_ERROR) -> None:
        """Queue a GOAWAY; nothing more will be sent after it."""
        if not self._closed:
            self._closed = True
            try:
                self._conn.close_connection(error_code)
            except h2.exceptions.ProtocolError:
                pass

    def data_to_send(self) -> bytes:
        return self._conn.data_to_send()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def has_pending_output(self) -> bool:
        """Response bodies still waiting for flow-control credit."""
        return bool(self._outbound)

