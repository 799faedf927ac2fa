"""A Trio Hot Rod client: pipelined, one connection, every basic cache operation.

Theory of operation
-------------------
Many tasks may call the client at once. Each call encodes its request frame with a
fresh message id, registers a *slot* under that id, queues the frame and waits on the
slot. Two background tasks own the stream:

* the **writer** sleeps until frames are queued, then sends everything queued so far with
  one ``send_all`` — requests of concurrent callers are coalesced, because Trio's cost is
  per wake-up and per send, not per byte (``performance-notes.md``);
* the **reader** receives, then parses *every* complete response in the buffer before it
  receives again, and completes the slot of each response by its message id.

Hot Rod responses carry no length, so the reader can only find the next response by
decoding the current one completely. That is why a slot keeps the decoder of its
response even when its caller was cancelled: the response is still parsed, then
dropped. An unparsable response, or the peer closing, breaks the connection: every
waiting call and every later call raises :class:`HotRodConnectionError`.

A caller that is cancelled never corrupts the stream: it never touches the stream
itself, the writer sends whole frames only.

Authentication runs before the background tasks start doing anything else:
AUTH_MECH_LIST, then AUTH rounds (the mechanism name is resent every round, as the Java
and Node clients do) until the server reports completion or the mechanism has nothing
more to say (SCRAM's ``v=`` arrives as a not-completed round; see the protocol notes §6).
"""

from __future__ import annotations

import math
import ssl
import struct
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, cast, runtime_checkable

import trio

from gridactor.errors import GridError
from gridactor.protocols.hotrod import operations as op
from gridactor.protocols.hotrod.primitives import (
    Incomplete,
    Malformed,
    Oversize,
    Reader,
    write_bytes,
    write_long,
    write_media_type,
    write_string,
    write_vint,
    write_vlong,
)

__all__ = [
    "CLIENT_VERSIONS",
    "EntryMetadata",
    "HotRodAuthenticationError",
    "HotRodClient",
    "HotRodClientError",
    "HotRodConnectionError",
    "HotRodError",
    "PingInfo",
    "RespondingMechanism",
    "SaslClientMechanism",
    "WriteResult",
    "encode_expiration",
    "open_hotrod_client",
    "open_hotrod_client_on_stream",
]

T = TypeVar("T")
Data = bytes | bytearray | memoryview | str

# Versions whose header and response layouts this client implements.
CLIENT_VERSIONS = frozenset({25, 26, 27, 28, 29, 30, 31, 40, 41})

# Responses larger than this are a broken or hostile peer, not data.
_MAX_RESPONSE_FIELD = 256 << 20
_RECEIVE_SIZE = 1 << 16
_LENGTH = struct.Struct(">I")


# ---------------------------------------------------------------- errors


class HotRodClientError(GridError):
    """Root of the client's errors."""


class HotRodError(HotRodClientError):
    """The server answered with an error response (opcode 0x50)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    def __str__(self) -> str:
        return f"[0x{self.status:02X}] {self.message}"


class HotRodAuthenticationError(HotRodError):
    """Authentication failed: refused by the server (``status`` set) or locally (``status`` 0)."""


class HotRodConnectionError(HotRodClientError):
    """The connection is unusable: closed by the peer, by us, or desynchronised."""


# ---------------------------------------------------------------- SASL interface


@runtime_checkable
class SaslClientMechanism(Protocol):
    """Client side of one SASL exchange (sans-IO; ``gridactor.client.sasl_client`` has some).

    * ``initial_response()``: the first AUTH payload, or ``None`` for server-first
      mechanisms (an empty payload is sent then, as the Node and Java clients do).
    * ``evaluate(challenge)``: the next payload, or ``None`` when the exchange is complete
      on the client's side (e.g. SCRAM after verifying the server's ``v=``): then no
      further AUTH is sent. Raise :class:`HotRodAuthenticationError` to abort.
    * ``complete(final)``: the server reported completion, with ``final`` data (usually
      empty). Raise if the mechanism requires something it did not get.

    A mechanism that negotiated a security layer may also define ``wrap``/``unwrap`` and
    a true ``security_layer`` attribute: every frame after authentication is then sent as
    ``int32 length + wrap(frame)``, as Infinispan's SASL codec expects.
    """

    name: str

    def initial_response(self) -> bytes | None: ...

    def evaluate(self, challenge: bytes) -> bytes | None: ...

    def complete(self, final: bytes) -> None: ...


class RespondingMechanism(Protocol):
    """The interface of ``gridactor.client.sasl`` mechanisms: one ``respond`` per challenge,
    then ``complete`` with the server's final data (``None`` when there is none)."""

    name: str

    def initial_response(self) -> bytes: ...

    def respond(self, challenge: bytes) -> bytes: ...

    def complete(self, final_data: bytes | None) -> None: ...


class _RespondAdapter:
    """A RespondingMechanism seen as a SaslClientMechanism.

    Every challenge-response mechanism of that module answers exactly one challenge;
    the next not-completed AUTH data is the server's final data (SCRAM ``v=``, DIGEST
    ``rspauth=``), which Infinispan sends as a not-completed round (protocol notes §6).
    """

    def __init__(self, inner: RespondingMechanism) -> None:
        self.inner = inner
        self.name = inner.name
        self._responded = False
        self._done = False

    def initial_response(self) -> bytes | None:
        return self.inner.initial_response()

    def evaluate(self, challenge: bytes) -> bytes | None:
        if not self._responded:
            self._responded = True
            return self.inner.respond(challenge)
        self.complete(challenge)
        return None

    def complete(self, final: bytes) -> None:
        if not self._done:
            self._done = True
            self.inner.complete(final or None)


class _SecurityLayer(Protocol):
    def wrap(self, data: bytes) -> bytes: ...

    def unwrap(self, data: bytes) -> bytes: ...


# ---------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class PingInfo:
    """What a PING response says (fields absent in older versions are empty)."""

    key_type: str = ""
    value_type: str = ""
    server_version: int = 0
    operations: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class EntryMetadata:
    """GET_WITH_METADATA result (and the 4.x previous-value block). Times are epoch ms.

    ``lifespan_s``/``max_idle_s`` are -1 when infinite (then the matching time is -1 too).
    """

    value: bytes
    version: int
    created_ms: int = -1
    lifespan_s: int = -1
    last_used_ms: int = -1
    max_idle_s: int = -1


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Outcome of a conditional write. Truthy iff the write was done.

    ``previous`` is filled only when the call asked for it (``previous=True``) and the
    server had a value; ``version`` is the previous entry's version when known (4.x).
    """

    done: bool
    previous: bytes | None = None
    version: int | None = None

    def __bool__(self) -> bool:
        return self.done


# ---------------------------------------------------------------- encoding helpers


def _as_bytes(data: Data) -> bytes:
    if isinstance(data, str):
        return data.encode()
    return bytes(data)


def _duration(seconds: float | None) -> tuple[int, bytes]:
    """(unit, encoded amount) for one expiration duration."""
    if seconds is None:
        return op.UNIT_DEFAULT, b""
    if seconds < 0 or math.isinf(seconds):
        return op.UNIT_INFINITE, b""
    if float(seconds).is_integer():
        return 0, write_vlong(int(seconds))  # whole seconds: the shortest encoding
    return 1, write_vlong(round(seconds * 1000))  # else milliseconds


def encode_expiration(lifespan: float | None, max_idle: float | None) -> bytes:
    """Hot Rod 2.2+ expiration field; durations in seconds.

    ``None`` = the cache's default (unit 7), negative or ``inf`` = never (unit 8).
    Fractions of a second are sent in milliseconds.
    """
    lifespan_unit, lifespan_amount = _duration(lifespan)
    max_idle_unit, max_idle_amount = _duration(max_idle)
    return bytes(((lifespan_unit << 4) | max_idle_unit,)) + lifespan_amount + max_idle_amount


_NO_EXPIRATION = encode_expiration(None, None)


def encode_header_tail(
    version: int, cache: str, flags: int, key_type: str = "", value_type: str = ""
) -> bytes:
    """Header fields after the opcode: cache, flags, intelligence, topology id, media types, params.

    Intelligence 1 (basic) and topology id 0: we route nothing, so the server never needs
    to send us a topology.
    """
    out = write_string(cache) + write_vint(flags) + b"\x01" + write_vint(0)
    if version >= 28:
        out += write_media_type(key_type) + write_media_type(value_type)
    if version >= 40:
        out += b"\x00"  # no "other params"
    return out


def encode_request(message_id: int, version: int, opcode: int, tail: bytes, body: bytes = b"") -> bytes:
    """One whole request frame."""
    return b"\xa0" + write_vlong(message_id) + bytes((version, opcode)) + tail + body


# ---------------------------------------------------------------- response decoding

Decoder = Callable[[Reader, int], object]


def _read_metadata(r: Reader) -> tuple[int, int, int, int, int]:
    """(created, lifespan_s, last_used, max_idle_s, version) of a metadata block."""
    flags = r.byte()
    created = lifespan = last_used = max_idle = -1
    if not flags & 0x01:
        created = r.long()
        lifespan = r.vint()
    if not flags & 0x02:
        last_used = r.long()
        max_idle = r.vint()
    return created, lifespan, last_used, max_idle, r.long()


def _read_previous(r: Reader, version: int) -> tuple[bytes | None, int | None]:
    """A previous-value block: 3.x ``byte[]``; 4.x metadata + ``byte[]``. Empty = none."""
    entry_version: int | None = None
    if version >= 40:
        entry_version = _read_metadata(r)[4]
    value = r.array(_MAX_RESPONSE_FIELD, "previous value")
    if not value:
        return None, None
    return value, entry_version


@dataclass(slots=True)
class _Slot:
    """One request in flight: how to decode its response, and where the result goes."""

    decode: Decoder
    done: trio.Event = field(default_factory=trio.Event)
    result: object = None
    error: BaseException | None = None


# ---------------------------------------------------------------- the client


class HotRodClient:
    """A Hot Rod connection shared by any number of concurrent tasks.

    Build it with :func:`open_hotrod_client` (TCP/TLS) or
    :func:`open_hotrod_client_on_stream` (any Trio stream). Keys and values are bytes;
    ``str`` is accepted and sent as UTF-8. Durations are seconds (see
    :func:`encode_expiration`).

    Every operation raises :class:`HotRodError` for an error response and
    :class:`HotRodConnectionError` once the connection is broken or closed.
    Cancellation: a cancelled call leaves the connection usable; its request may or may
    not have reached the server.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        version: int = op.SERVER_PROTOCOL_VERSION,
        cache: str = "",
        key_media_type: str = "",
        value_media_type: str = "",
    ) -> None:
        if version not in CLIENT_VERSIONS:
            raise ValueError(f"unsupported Hot Rod version {version}; known: {sorted(CLIENT_VERSIONS)}")
        self._stream = stream
        self.version = version
        self.cache = cache
        self._key_type = key_media_type
        self._value_type = value_media_type
        self._tails: dict[tuple[str, int], bytes] = {}
        self._next_id = 1
        self._slots: dict[int, _Slot] = {}
        self._outbox: list[bytes] = []
        self._wake_writer = trio.Event()
        self._broken: HotRodConnectionError | None = None
        self._closed = False
        self._layer: _SecurityLayer | None = None
        self._max_wrap: int | None = None
        self._statistics = {"requests": 0, "sends": 0, "receives": 0}
        self._ping_decoder = _PING_DECODERS(version)
        self._write_decoder = _WRITE_DECODERS(version)

    # ------------------------------------------------------------ plumbing

    def _tail(self, cache: str | None, flags: int) -> bytes:
        name = self.cache if cache is None else cache
        key = (name, flags)
        tail = self._tails.get(key)
        if tail is None:
            tail = encode_header_tail(self.version, name, flags, self._key_type, self._value_type)
            if len(self._tails) < 64:  # a few caches x flag sets; never grows without bound
                self._tails[key] = tail
        return tail

    def _submit(
        self, opcode: int, body: bytes, decode: Decoder, flags: int = 0, cache: str | None = None
    ) -> _Slot:
        if self._broken is not None:
            raise self._broken
        if self._closed:
            raise HotRodConnectionError("the client is closed")
        mid = self._next_id
        self._next_id = mid + 1
        slot = _Slot(decode)
        self._slots[mid] = slot
        self._outbox.append(encode_request(mid, self.version, opcode, self._tail(cache, flags), body))
        self._wake_writer.set()
        self._statistics["requests"] += 1
        return slot

    async def _call(
        self,
        opcode: int,
        body: bytes,
        decode: Callable[[Reader, int], T],
        flags: int = 0,
        cache: str | None = None,
    ) -> T:
        slot = self._submit(opcode, body, decode, flags, cache)
        await slot.done.wait()
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]  # decode's own return type T

    async def _writer(self) -> None:
        while True:
            await self._wake_writer.wait()
            self._wake_writer = trio.Event()
            if not self._outbox:
                continue
            batch = b"".join(self._outbox)
            self._outbox.clear()
            if self._layer is not None:
                batch = self._wrap(batch)
            try:
                await self._stream.send_all(batch)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                self._fail(HotRodConnectionError(f"connection lost while sending: {exc!r}"))
                return
            self._statistics["sends"] += 1

    async def _reader(self) -> None:
        data = b""
        pos = 0
        needed = 1  # bytes from pos before parsing is worth retrying
        raw = b""  # undecoded security-layer input
        while True:
            try:
                chunk = await self._stream.receive_some(_RECEIVE_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                self._fail(HotRodConnectionError(f"connection lost: {exc!r}"))
                return
            if not chunk:
                self._fail(HotRodConnectionError("the server closed the connection"))
                return
            self._statistics["receives"] += 1
            if self._layer is not None:
                raw += chunk
                chunk, raw = self._unwrap_all(raw)
                if not chunk:
                    continue
            data = data[pos:] + chunk if pos < len(data) else bytes(chunk)
            pos = 0
            if len(data) < needed:
                continue
            try:
                pos, needed = self._parse_responses(data)
            except (Malformed, Oversize, HotRodConnectionError) as exc:
                self._fail(HotRodConnectionError(f"undecodable response: {exc}"))
                return

    def _wrap(self, data: bytes) -> bytes:
        """``uint32 length + wrap(chunk)`` buffers, no chunk over the peer's maxbuf."""
        assert self._layer is not None
        step = self._max_wrap or max(len(data), 1)
        out = []
        for start in range(0, len(data), step):
            wrapped = self._layer.wrap(data[start : start + step])
            out.append(_LENGTH.pack(len(wrapped)) + wrapped)
        return b"".join(out)

    def _unwrap_all(self, raw: bytes) -> tuple[bytes, bytes]:
        assert self._layer is not None
        out = []
        p = 0
        while len(raw) - p >= 4:
            (n,) = _LENGTH.unpack_from(raw, p)
            if len(raw) - p - 4 < n:
                break
            out.append(self._layer.unwrap(raw[p + 4 : p + 4 + n]))
            p += 4 + n
        return b"".join(out), raw[p:]

    def _parse_responses(self, data: bytes) -> tuple[int, int]:
        """Complete every whole response in ``data``; (consumed, bytes needed for the next)."""
        pos = 0
        end = len(data)
        slots = self._slots
        while pos < end:
            r = Reader(data, pos)
            try:
                magic = r.byte()
                if magic != op.MAGIC_RESPONSE:
                    raise HotRodConnectionError(f"bad response magic 0x{magic:02X}")
                mid = r.vlong()
                opcode = r.byte()
                status = r.byte()
                if r.byte():
                    _skip_topology(r)
                slot = slots.get(mid)
                if slot is None:
                    # Events (0x60..0x66) are only sent to listeners, which we never register.
                    raise HotRodConnectionError(f"response 0x{opcode:02X} for unknown message id {mid}")
                if opcode == op.ERROR_RESPONSE:
                    text = r.string(_MAX_RESPONSE_FIELD, "error message")
                    slot.error = (
                        HotRodAuthenticationError(status, text)
                        if slot.decode is _auth_decoder
                        else HotRodError(status, text)
                    )
                else:
                    slot.result = slot.decode(r, status)
            except Incomplete as short:
                return pos, short.need - pos
            del slots[mid]
            slot.done.set()
            pos = r.pos
        return pos, 1

    def _fail(self, error: HotRodConnectionError) -> None:
        if self._broken is None:
            self._broken = error
        slots, self._slots = self._slots, {}
        for slot in slots.values():
            slot.error = self._broken
            slot.done.set()

    def statistics(self) -> dict[str, int]:
        """Requests made, sends and receives done, requests now in flight."""
        return dict(self._statistics, in_flight=len(self._slots))

    async def aclose(self) -> None:
        """Close the connection; calls still waiting raise HotRodConnectionError."""
        self._closed = True
        self._fail(HotRodConnectionError("the client is closed"))
        await trio.aclose_forcefully(self._stream)

    # ------------------------------------------------------------ authentication

    async def authenticate(
        self, mechanism: SaslClientMechanism | RespondingMechanism, *, max_rounds: int = 16
    ) -> None:
        """SASL over AUTH_MECH_LIST + AUTH. Raises HotRodAuthenticationError.

        Takes either interface: :class:`SaslClientMechanism` (``evaluate``) or the
        ``respond``/``complete`` one of ``gridactor.client.sasl`` (DIGEST, CRAM, …).
        """
        mech = mechanism if isinstance(mechanism, SaslClientMechanism) else _RespondAdapter(mechanism)
        offered = await self.auth_mech_list()
        if mech.name not in offered:
            raise HotRodAuthenticationError(
                0,
                f"The selected authentication mechanism {mech.name} is not among the "
                f"supported server mechanisms: {', '.join(offered)}",
            )
        try:
            await self._auth_rounds(mech, max_rounds)
        except HotRodClientError:
            raise
        except Exception as exc:  # a mechanism refusing the server's data
            raise HotRodAuthenticationError(0, f"{mech.name}: {exc}") from exc
        if (
            getattr(mechanism, "security_layer", False)
            or getattr(mechanism, "negotiated_qop", "auth") != "auth"
        ):
            self._layer = cast(_SecurityLayer, mechanism)
            self._max_wrap = getattr(mechanism, "max_send_size", None)

    async def _auth_rounds(self, mech: SaslClientMechanism, max_rounds: int) -> None:
        response = mech.initial_response()
        payload = response if response is not None else b""
        mech_name = write_string(mech.name)  # resent every round, as the Java and Node clients do
        for _ in range(max_rounds):
            completed, challenge = await self._call(op.AUTH, mech_name + write_bytes(payload), _auth_decoder)
            if completed:
                mech.complete(challenge)
                return
            next_payload = mech.evaluate(challenge)
            if next_payload is None:
                return
            payload = next_payload
        raise HotRodAuthenticationError(0, f"{mech.name}: no completion after {max_rounds} rounds")

    async def auth_mech_list(self) -> list[str]:
        return await self._call(op.AUTH_MECH_LIST, b"", _mech_list_decoder)

    # ------------------------------------------------------------ operations

    async def ping(self, *, cache: str | None = None) -> PingInfo:
        return await self._call(op.PING, b"", self._ping_decoder, cache=cache)

    async def get(self, key: Data, *, cache: str | None = None) -> bytes | None:
        return await self._call(op.GET, write_bytes(_as_bytes(key)), _get_decoder, cache=cache)

    async def put(
        self,
        key: Data,
        value: Data,
        *,
        lifespan: float | None = None,
        max_idle: float | None = None,
        previous: bool = False,
        cache: str | None = None,
    ) -> bytes | None:
        """Store ``value``; with ``previous=True`` return the value it replaced (or None)."""
        body = _key_expiration_value(key, lifespan, max_idle, value)
        if previous:
            result = await self._call(op.PUT, body, self._write_decoder, op.FORCE_RETURN_VALUE, cache=cache)
            return result.previous
        await self._call(op.PUT, body, _ignore_decoder, cache=cache)
        return None

    async def put_if_absent(
        self,
        key: Data,
        value: Data,
        *,
        lifespan: float | None = None,
        max_idle: float | None = None,
        previous: bool = False,
        cache: str | None = None,
    ) -> WriteResult:
        body = _key_expiration_value(key, lifespan, max_idle, value)
        return await self._write(op.PUT_IF_ABSENT, body, previous, cache)

    async def replace(
        self,
        key: Data,
        value: Data,
        *,
        lifespan: float | None = None,
        max_idle: float | None = None,
        previous: bool = False,
        cache: str | None = None,
    ) -> WriteResult:
        body = _key_expiration_value(key, lifespan, max_idle, value)
        return await self._write(op.REPLACE, body, previous, cache)

    async def replace_with_version(
        self,
        key: Data,
        value: Data,
        version: int,
        *,
        lifespan: float | None = None,
        max_idle: float | None = None,
        previous: bool = False,
        cache: str | None = None,
    ) -> WriteResult:
        """Replace only if the entry's version (from get_with_metadata) is still ``version``."""
        body = (
            write_bytes(_as_bytes(key))
            + encode_expiration(lifespan, max_idle)
            + write_long(version)
            + write_bytes(_as_bytes(value))
        )
        return await self._write(op.REPLACE_IF_UNMODIFIED, body, previous, cache)

    async def remove(self, key: Data, *, previous: bool = False, cache: str | None = None) -> WriteResult:
        return await self._write(op.REMOVE, write_bytes(_as_bytes(key)), previous, cache)

    async def remove_with_version(
        self, key: Data, version: int, *, previous: bool = False, cache: str | None = None
    ) -> WriteResult:
        body = write_bytes(_as_bytes(key)) + write_long(version)
        return await self._write(op.REMOVE_IF_UNMODIFIED, body, previous, cache)

    async def _write(self, opcode: int, body: bytes, previous: bool, cache: str | None) -> WriteResult:
        flags = op.FORCE_RETURN_VALUE if previous else 0
        return await self._call(opcode, body, self._write_decoder, flags, cache=cache)

    async def contains_key(self, key: Data, *, cache: str | None = None) -> bool:
        return await self._call(op.CONTAINS_KEY, write_bytes(_as_bytes(key)), _found_decoder, cache=cache)

    async def get_with_metadata(self, key: Data, *, cache: str | None = None) -> EntryMetadata | None:
        return await self._call(
            op.GET_WITH_METADATA, write_bytes(_as_bytes(key)), _metadata_decoder, cache=cache
        )

    async def get_all(self, keys: Iterable[Data], *, cache: str | None = None) -> dict[bytes, bytes]:
        """The found keys' values (missing keys are absent from the result)."""
        encoded = [write_bytes(_as_bytes(key)) for key in keys]
        return await self._call(
            op.GET_ALL, write_vint(len(encoded)) + b"".join(encoded), _get_all_decoder, cache=cache
        )

    async def put_all(
        self,
        entries: Mapping[bytes, bytes] | Mapping[str, str] | Iterable[tuple[Data, Data]],
        *,
        lifespan: float | None = None,
        max_idle: float | None = None,
        cache: str | None = None,
    ) -> None:
        pairs = entries.items() if isinstance(entries, Mapping) else entries
        encoded = [write_bytes(_as_bytes(k)) + write_bytes(_as_bytes(v)) for k, v in pairs]
        body = encode_expiration(lifespan, max_idle) + write_vint(len(encoded)) + b"".join(encoded)
        await self._call(op.PUT_ALL, body, _ignore_decoder, cache=cache)

    async def size(self, *, cache: str | None = None) -> int:
        return await self._call(op.SIZE, b"", _size_decoder, cache=cache)

    async def clear(self, *, cache: str | None = None) -> None:
        await self._call(op.CLEAR, b"", _ignore_decoder, cache=cache)

    async def stats(self, *, cache: str | None = None) -> dict[str, str]:
        """Statistic name -> value, as the server sends them (decimal strings)."""
        return await self._call(op.STATS, b"", _stats_decoder, cache=cache)


# ---------------------------------------------------------------- decoders (one per response shape)


def _skip_topology(r: Reader) -> None:
    """Refuse a topology block (marker 1)."""
    # We declare intelligence 1 (basic), to which a conforming server never sends
    # topology. A server that does may follow it with hash information whose layout we
    # cannot tell, so the stream cannot be trusted any more.
    raise HotRodConnectionError("the server sent a topology update; this client does not route")


def _ignore_decoder(r: Reader, status: int) -> None:
    return None


def _get_decoder(r: Reader, status: int) -> bytes | None:
    if status == op.KEY_DOES_NOT_EXIST:
        return None
    return r.array(_MAX_RESPONSE_FIELD, "value")


def _found_decoder(r: Reader, status: int) -> bool:
    return status == op.SUCCESS


def _size_decoder(r: Reader, status: int) -> int:
    return r.vlong()


def _metadata_decoder(r: Reader, status: int) -> EntryMetadata | None:
    if status == op.KEY_DOES_NOT_EXIST:
        return None
    created, lifespan, last_used, max_idle, version = _read_metadata(r)
    value = r.array(_MAX_RESPONSE_FIELD, "value")
    return EntryMetadata(value, version, created, lifespan, last_used, max_idle)


def _get_all_decoder(r: Reader, status: int) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    for _ in range(r.vint()):
        key = r.array(_MAX_RESPONSE_FIELD, "key")
        out[key] = r.array(_MAX_RESPONSE_FIELD, "value")
    return out


def _stats_decoder(r: Reader, status: int) -> dict[str, str]:
    out: dict[str, str] = {}
    for _ in range(r.vint()):
        name = r.string(_MAX_RESPONSE_FIELD, "statistic name")
        out[name] = r.string(_MAX_RESPONSE_FIELD, "statistic value")
    return out


def _mech_list_decoder(r: Reader, status: int) -> list[str]:
    return [r.string(_MAX_RESPONSE_FIELD, "mechanism") for _ in range(r.vint())]


def _auth_decoder(r: Reader, status: int) -> tuple[bool, bytes]:
    completed = bool(r.byte())
    return completed, r.array(_MAX_RESPONSE_FIELD, "SASL challenge")


def _versioned(decoder: Callable[[Reader, int, int], T]) -> Callable[[int], Callable[[Reader, int], T]]:
    """Decoders whose layout depends on the protocol version, bound once per version."""
    cache: dict[int, Callable[[Reader, int], T]] = {}

    def bind(version: int) -> Callable[[Reader, int], T]:
        bound = cache.get(version)
        if bound is None:

            def bound(r: Reader, status: int) -> T:
                return decoder(r, status, version)

            cache[version] = bound
        return bound

    return bind


def _ping_body(r: Reader, status: int, version: int) -> PingInfo:
    if version < 29:
        return PingInfo()
    key_type = r.media_type(_MAX_RESPONSE_FIELD)
    value_type = r.media_type(_MAX_RESPONSE_FIELD)
    if version < 30:
        return PingInfo(key_type, value_type)
    server_version = r.byte()
    count = r.vint()
    ops = tuple(int.from_bytes(r.fixed(2), "big") for _ in range(count))
    return PingInfo(key_type, value_type, server_version, ops)


def _write_body(r: Reader, status: int, version: int) -> WriteResult:
    done = status in (op.SUCCESS, op.SUCCESS_WITH_PREVIOUS)
    if status in (op.SUCCESS_WITH_PREVIOUS, op.NOT_EXECUTED_WITH_PREVIOUS):
        previous, entry_version = _read_previous(r, version)
        return WriteResult(done, previous, entry_version)
    return WriteResult(done)


_PING_DECODERS = _versioned(_ping_body)
_WRITE_DECODERS = _versioned(_write_body)


def _key_expiration_value(key: Data, lifespan: float | None, max_idle: float | None, value: Data) -> bytes:
    expiration = (
        _NO_EXPIRATION if lifespan is None and max_idle is None else encode_expiration(lifespan, max_idle)
    )
    return write_bytes(_as_bytes(key)) + expiration + write_bytes(_as_bytes(value))


# ---------------------------------------------------------------- opening


@asynccontextmanager
async def open_hotrod_client_on_stream(
    stream: trio.abc.Stream,
    *,
    version: int = op.SERVER_PROTOCOL_VERSION,
    cache: str = "",
    sasl: SaslClientMechanism | None = None,
    key_media_type: str = "",
    value_media_type: str = "",
) -> AsyncIterator[HotRodClient]:
    """A client over an already connected stream (tests use in-memory streams).

    Authenticates with ``sasl`` if given. The stream is closed on exit.
    """
    client = HotRodClient(
        stream, version=version, cache=cache, key_media_type=key_media_type, value_media_type=value_media_type
    )
    try:
        # The reader and writer never raise (they turn failures into a broken client), so
        # any exception group here holds the caller's own single exception: unwrap it so
        # callers catch HotRodError, not an ExceptionGroup around it.
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(client._reader)
                nursery.start_soon(client._writer)
                try:
                    if sasl is not None:
                        await client.authenticate(sasl)
                    yield client
                finally:
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
    finally:
        with trio.CancelScope(shield=True):
            await client.aclose()


@asynccontextmanager
async def open_hotrod_client(
    host: str,
    port: int,
    *,
    version: int = op.SERVER_PROTOCOL_VERSION,
    cache: str = "",
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    sasl: SaslClientMechanism | None = None,
    key_media_type: str = "",
    value_media_type: str = "",
) -> AsyncIterator[HotRodClient]:
    """Connect (TCP, or TLS with ``ssl_context``), authenticate if ``sasl``, yield the client.

    Example::

        async with open_hotrod_client("127.0.0.1", 11222) as client:
            await client.put(b"k", b"v")
            assert await client.get(b"k") == b"v"
    """
    tcp = await trio.open_tcp_stream(host, port)
    stream: trio.abc.Stream = tcp
    # Latency over throughput for small frames: the writer already coalesces.
    tcp.setsockopt(trio.socket.IPPROTO_TCP, trio.socket.TCP_NODELAY, 1)
    if ssl_context is not None:
        tls = trio.SSLStream(
            tcp, ssl_context, server_hostname=server_hostname or host, https_compatible=False
        )
        try:
            await tls.do_handshake()
        except BaseException:
            await trio.aclose_forcefully(tcp)
            raise
        stream = tls
    async with open_hotrod_client_on_stream(
        stream,
        version=version,
        cache=cache,
        sasl=sasl,
        key_media_type=key_media_type,
        value_media_type=value_media_type,
    ) as client:
        yield client
