"""Version-neutral HTTP request/response types shared by the h11 and h2 adapters.

The adapters buffer a request's whole body before handing it over: every REST v2
handler needs the complete body anyway (a value, a cache definition), and the body is
bounded by ``Limits.max_http_body_bytes``. Streaming events (Body/EndBody in hypercorn's
terms) would only add wake-ups on the hot path.

Header names are lower-case bytes on both versions (h11 lower-cases them, HTTP/2 requires
it), so lookups never need to normalise.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from urllib.parse import unquote

Headers = list[tuple[bytes, bytes]]


@dataclass(slots=True)
class Request:
    """One complete request. ``stream_id`` is the h2 stream, or a per-connection counter
    for HTTP/1.1 (pipelined requests are answered in arrival order anyway)."""

    stream_id: int
    method: str
    target: bytes  # raw path + query, still percent-encoded
    headers: dict[bytes, bytes]  # lower-case name -> value; repeated fields joined with ", "
    body: bytes = b""
    http_version: str = "1.1"
    # Set by the authentication step (an Identity) for routes that are not anonymous.
    identity: object | None = None
    _path: bytes | None = field(default=None, repr=False)
    _query: dict[str, list[str]] | None = field(default=None, repr=False)

    def header(self, name: bytes) -> bytes | None:
        return self.headers.get(name)

    def header_str(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return None if value is None else value.decode("latin-1").strip()

    @property
    def raw_path(self) -> bytes:
        if self._path is None:
            self._split()
        assert self._path is not None
        return self._path

    @property
    def query(self) -> dict[str, list[str]]:
        if self._query is None:
            self._split()
        assert self._query is not None
        return self._query

    def query_param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def _split(self) -> None:
        path, _, raw_query = self.target.partition(b"?")
        self._path = path
        query: dict[str, list[str]] = {}
        if raw_query:
            for part in raw_query.decode("latin-1").split("&"):
                if not part:
                    continue
                name, _, value = part.partition("=")
                # keep_blank_values semantics: "?action=" must be seen as an empty action
                query.setdefault(unquote(name.replace("+", " ")), []).append(
                    unquote(value.replace("+", " "))
                )
        self._query = query


def headers_to_dict(pairs: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    for name, value in pairs:
        if name in out:
            out[name] = out[name] + b", " + value
        else:
            out[name] = value
    return out


@dataclass(slots=True)
class Response:
    """A complete response. Adapters add ``content-length`` and drop the body for HEAD."""

    status: int
    headers: Headers = field(default_factory=list)
    body: bytes = b""
    # Ask the HTTP/1.1 adapter to close the connection once this response is out.
    close: bool = False

    @classmethod
    def text(cls, status: int, message: str, headers: Headers | None = None) -> Response:
        hdrs: Headers = [(b"content-type", b"text/plain; charset=utf-8")]
        if headers:
            hdrs.extend(headers)
        return cls(status, hdrs, message.encode("utf-8"))

    @classmethod
    def empty(cls, status: int, headers: Headers | None = None) -> Response:
        return cls(status, headers or [])


class Sentinel(enum.Enum):
    NEED_DATA = "need-data"
    CLOSED = "closed"


# The adapter needs more bytes before it can produce another request.
NEED_DATA = Sentinel.NEED_DATA
# The connection is over: flush what the adapter has queued, then close.
CLOSED = Sentinel.CLOSED


@dataclass(frozen=True, slots=True)
class H2CUpgrade:
    """HTTP/1.1 ``Upgrade: h2c`` accepted: the 101 is queued in the h11 adapter; the
    request must be answered on HTTP/2 stream 1 after feeding ``trailing`` to h2."""

    request: Request
    settings: bytes  # the HTTP2-Settings header value (base64url)
    trailing: bytes  # bytes that followed the upgrade request (client preface, ...)
