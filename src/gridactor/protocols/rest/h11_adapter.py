"""HTTP/1.1 <-> neutral events, over h11 (sans-IO: no trio in here).

Theory of operation. h11 parses one request/response cycle at a time; a pipelined
request sits in h11's buffer (``next_event`` says PAUSED) until we answered the current
one and called ``start_next_cycle``. So the connection loop is: feed bytes, pull every
complete request, answer each in order into our outgoing buffer, and only when h11 needs
more data flush the buffer with one ``send_all``. Twenty pipelined GETs cost one receive
and one send.

Every way a peer can misbehave ends inside this module as an error response queued in
the outgoing buffer plus ``CLOSED``: malformed syntax (400 with h11's reason), a head
over ``max_http_header_bytes`` (431), a body over ``max_http_body_bytes`` (413). The
connection loop never sees an h11 exception.
"""

from __future__ import annotations

import base64
import binascii

import h11
from h11._state import MIGHT_SWITCH_PROTOCOL

from gridactor.protocols.rest.events import (
    CLOSED,
    NEED_DATA,
    H2CUpgrade,
    Request,
    Response,
    Sentinel,
    headers_to_dict,
)
from gridactor.server.context import Limits

H11Event = Request | H2CUpgrade | Sentinel


def _valid_h2_settings(value: bytes) -> bool:
    # HTTP2-Settings is base64url of a SETTINGS payload (6-byte entries), padding optional.
    try:
        raw = base64.b64decode(value + b"=" * (-len(value) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return False
    return len(raw) % 6 == 0


class H11Adapter:
    """Server side of one HTTP/1.1 connection."""

    def __init__(self, limits: Limits, *, allow_h2c: bool = True) -> None:
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_http_header_bytes)
        self._limits = limits
        self._allow_h2c = allow_h2c
        self._out = bytearray()
        self._counter = 0
        # The request whose body is being read.
        self._pending: Request | None = None
        self._body: list[bytes] = []
        self._body_size = 0
        self._closed = False
        # Closed with input possibly left unread (error response, early answer).
        self._errored = False

    # ------------------------------------------------------------------ input

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the peer; ``b""`` means end of file."""
        if self._closed:
            return
        try:
            self._conn.receive_data(data)
        except RuntimeError:
            # Data after EOF: the peer is done with us anyway.
            self._closed = True

    def next_event(self) -> H11Event:
        """The next complete request, ``NEED_DATA``, ``CLOSED`` or an accepted h2c upgrade."""
        if self._closed:
            return CLOSED
        while True:
            try:
                event = self._conn.next_event()
            except h11.RemoteProtocolError as exc:
                return self._fail(exc.error_status_hint, f"Malformed request: {exc}")
            if event is h11.NEED_DATA:
                return NEED_DATA
            if event is h11.PAUSED:
                return self._on_paused()
            if isinstance(event, h11.Request):
                failed = self._start_request(event)
                if failed is not None:
                    return failed
            elif isinstance(event, h11.Data):
                if self._pending is None:  # pragma: no cover - h11 guarantees ordering
                    continue
                self._body_size += len(event.data)
                if self._body_size > self._limits.max_http_body_bytes:
                    return self._too_large(self._body_size)
                self._body.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                request = self._pending
                if request is None:  # pragma: no cover
                    continue
                request.body = b"".join(self._body) if len(self._body) != 1 else self._body[0]
                self._body = []
                if self._conn.their_state is MIGHT_SWITCH_PROTOCOL:
                    # h11 pauses before handing us anything else; decide on the upgrade then.
                    continue
                self._pending = None
                return request
            elif isinstance(event, h11.ConnectionClosed):
                self._closed = True
                return CLOSED

    def _start_request(self, event: h11.Request) -> Sentinel | None:
        self._counter += 1
        pairs = list(event.headers)
        # h11 bounds only a head still incomplete in its buffer; a whole head that arrived
        # in one read is checked here, so the limit holds whatever the read sizes.
        head_size = len(event.target) + sum(len(n) + len(v) + 4 for n, v in pairs)
        if head_size > self._limits.max_http_header_bytes:
            return self._fail(431, "Request header fields too large")
        headers = headers_to_dict(pairs)
        request = Request(
            stream_id=self._counter,
            method=event.method.decode("ascii", "replace"),
            target=event.target,
            headers=headers,
            http_version=event.http_version.decode("ascii", "replace"),
        )
        self._pending = request
        self._body = []
        self._body_size = 0
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self._limits.max_http_body_bytes:
            # Refuse before reading (and before a 100-continue invites) the body.
            return self._too_large(int(length))
        if self._conn.they_are_waiting_for_100_continue:
            self._out += self._conn.send(h11.InformationalResponse(status_code=100, headers=[])) or b""
        return None

    def _on_paused(self) -> H11Event:
        if self._conn.their_state is MIGHT_SWITCH_PROTOCOL and self._pending is not None:
            request = self._pending
            self._pending = None
            settings = request.headers.get(b"http2-settings")
            upgrade = request.headers.get(b"upgrade", b"").lower()
            wants_h2c = b"h2c" in [token.strip() for token in upgrade.split(b",")]
            if self._allow_h2c and wants_h2c and settings is not None and _valid_h2_settings(settings):
                self._out += self._conn.send(
                    h11.InformationalResponse(
                        status_code=101, headers=[(b"connection", b"Upgrade"), (b"upgrade", b"h2c")]
                    )
                ) or b""
                trailing, _ = self._conn.trailing_data
                self._closed = True
                return H2CUpgrade(request=request, settings=settings, trailing=bytes(trailing))
            # Declined (no h2c, or a protocol we do not speak): answer on HTTP/1.1, and a
            # normal response tells h11 the switch did not happen.
            return request
        # DONE with buffered bytes: the caller has not answered yet. Should not happen
        # since the caller answers before asking again; treat as "wait".
        return NEED_DATA

    # ------------------------------------------------------------------ output

    def send_response(self, request: Request, response: Response) -> None:
        """Queue the answer to ``request`` (the one last returned) in the outgoing buffer."""
        if self._closed and self._conn.our_state is not h11.SEND_RESPONSE:
            return
        headers = list(response.headers)
        headers.append((b"content-length", str(len(response.body)).encode()))
        if response.close:
            headers.append((b"connection", b"close"))
        self._emit_response(response.status, headers, b"" if request.method == "HEAD" else response.body)
        self._after_response()

    def _emit_response(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        conn = self._conn
        try:
            self._out += conn.send(h11.Response(status_code=status, headers=headers)) or b""
            if body:
                self._out += conn.send(h11.Data(data=body)) or b""
            self._out += conn.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError:
            # Our own misuse (e.g. a header value h11 rejects): never crash the connection
            # task for it; drop the connection instead.
            self._closed = True

    def _after_response(self) -> None:
        conn = self._conn
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        else:
            # Either side asked to close, or we answered before reading the whole body.
            self._closed = True
            self._errored = conn.their_state not in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED)

    def _fail(self, status: int, reason: str) -> Sentinel:
        if self._conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            body = reason.encode("utf-8", "replace")
            self._emit_response(
                status,
                [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
                body,
            )
        self._closed = True
        self._errored = True
        self._pending = None
        return CLOSED

    def _too_large(self, size: int) -> Sentinel:
        return self._fail(
            413,
            f"Request body of {size} bytes exceeds the limit of "
            f"{self._limits.max_http_body_bytes} bytes",
        )

    # ------------------------------------------------------------------ state

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    @property
    def closed(self) -> bool:
        """No further request will be read; flush, then close the transport."""
        return self._closed

    @property
    def errored(self) -> bool:
        """Closed on an error: the peer may still be sending (drain before closing)."""
        return self._errored

    @property
    def idle(self) -> bool:
        """Between requests: nothing read of the next one yet."""
        return self._pending is None and self._conn.their_state is h11.IDLE
