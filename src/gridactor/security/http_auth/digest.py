"""HTTP Digest (RFC 7616), as Elytron's ``DIGEST`` / ``DIGEST-SHA-256`` mechanisms answer it.

Challenge (byte-for-byte Elytron's; one line)::

    Digest realm="default", nonce="<b64>", opaque="00000000000000000000000000000000",
    algorithm=SHA-256, qop=auth

Checks, in order: header syntax and required directives (400), ``uri`` equal to the request
target (400 — a mismatch must never run the request, CVE-2021-31917), realm / algorithm /
qop / opaque as offered (401 + challenge), then the proof against the realm's clear
password or ``H(user:realm:password)`` of the same hash (401 + challenge), then the nonce:
a valid proof on an expired, foreign or replayed nonce gets 401 with ``stale=true`` so the
client retries without asking its user again.

Nonces are stateless to issue (timestamp + random, HMAC-protected with a per-process key),
valid 5 minutes for a first use and 15 minutes for follow-up requests with a higher ``nc``.
Used ``nc`` values are tracked per nonce with a sliding window (bounded memory), and a
bounded table of nonces whose evictions make older untracked nonces stale, never reusable.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
import threading
import time
from base64 import b64decode, b64encode
from binascii import Error as B64Error
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from urllib.parse import unquote

from gridactor.security.credentials import ClearPassword, Credential, DigestHash
from gridactor.security.http_auth.base import (
    MAX_AUTHORIZATION_LENGTH,
    HttpAuthOutcome,
    HttpAuthSettings,
    HttpFailure,
    HttpMechanism,
    HttpSuccess,
    NeedCredentials,
    header_text,
    quote,
)

OPAQUE = "0" * 32  # Elytron sends a constant opaque
NONCE_VALIDITY_S = 300.0
NONCE_SESSION_S = 900.0
NC_WINDOW = 64  # out-of-order nc values accepted below the highest seen (HTTP/2 concurrency)

_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_HEX = frozenset("0123456789abcdefABCDEF")


class NonceStatus(Enum):
    OK = "ok"
    INVALID = "invalid"  # not ours (bad MAC, other realm or server instance, garbage)
    EXPIRED = "expired"
    REPLAYED = "replayed"


@dataclass(slots=True)
class _NonceState:
    issued: float
    highest: int  # highest nc used; -1: single-use nonce (no qop) already used
    window: int  # bit i set: nc == highest - i was used


class NonceManager:
    """Issues and checks Digest nonces. One per endpoint (shared by its mechanism objects)."""

    def __init__(
        self,
        *,
        key: bytes | None = None,
        validity: float = NONCE_VALIDITY_S,
        session: float = NONCE_SESSION_S,
        max_tracked: int = 65536,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = key or secrets.token_bytes(32)
        self.validity = validity
        self.session = max(session, validity)
        self.max_tracked = max_tracked
        self._clock = clock
        self._lock = threading.Lock()
        self._used: OrderedDict[str, _NonceState] = OrderedDict()
        self._watermark = float("-inf")  # untracked nonces issued at or before this are stale

    def _mac(self, body: bytes, realm: str) -> bytes:
        return hmac.new(self._key, body + realm.encode("utf-8"), hashlib.sha256).digest()[:16]

    def new_nonce(self, realm: str) -> str:
        body = struct.pack(">Q", int(self._clock() * 1000)) + secrets.token_bytes(8)
        return b64encode(body + self._mac(body, realm)).decode("ascii")

    def issued_at(self, nonce: str, realm: str) -> float | None:
        """When ``nonce`` was issued for ``realm`` by this manager; None if it is not ours."""
        try:
            raw = b64decode(nonce, validate=True)
        except (B64Error, ValueError):
            return None
        if len(raw) != 32 or not hmac.compare_digest(raw[16:], self._mac(raw[:16], realm)):
            return None
        return float(struct.unpack(">Q", raw[:8])[0]) / 1000.0

    def use(self, nonce: str, nc: int, realm: str) -> NonceStatus:
        """Consume (nonce, nc). ``nc == 0``: a request without qop, the nonce is single-use."""
        issued = self.issued_at(nonce, realm)
        if issued is None:
            return NonceStatus.INVALID
        now = self._clock()
        age = now - issued
        with self._lock:
            self._purge(now)
            if age < -5.0 or age > self.session:
                return NonceStatus.EXPIRED
            state = self._used.get(nonce)
            if state is None:
                if issued <= self._watermark or age > self.validity:
                    return NonceStatus.EXPIRED
                self._used[nonce] = _NonceState(issued, -1 if nc == 0 else nc, 1)
                while len(self._used) > self.max_tracked:
                    _, evicted = self._used.popitem(last=False)
                    self._watermark = max(self._watermark, evicted.issued)
                return NonceStatus.OK
            if state.highest < 0 or nc == 0:
                return NonceStatus.REPLAYED
            if nc > state.highest:
                shift = nc - state.highest
                state.window = ((state.window << shift) | 1) & ((1 << NC_WINDOW) - 1)
                state.highest = nc
                return NonceStatus.OK
            offset = state.highest - nc
            if offset >= NC_WINDOW or state.window & (1 << offset):
                return NonceStatus.REPLAYED
            state.window |= 1 << offset
            return NonceStatus.OK

    def _purge(self, now: float) -> None:
        # Entries are roughly in issue order; dropping expired ones is safe because an
        # expired nonce is refused by its age alone.
        while self._used:
            nonce, state = next(iter(self._used.items()))
            if now - state.issued <= self.session:
                break
            del self._used[nonce]

    def __repr__(self) -> str:
        return f"NonceManager(tracked={len(self._used)})"


class _BadRequest(Exception):
    pass


def parse_auth_params(text: str) -> dict[str, str]:
    """``k=v, k="quoted"`` pairs (RFC 7235 auth-param list). Keys lower-cased; duplicates refused."""
    params: dict[str, str] = {}
    i, n = 0, len(text)

    def skip_ows(j: int) -> int:
        while j < n and text[j] in " \t":
            j += 1
        return j

    while True:
        i = skip_ows(i)
        while i < n and text[i] == ",":  # empty list elements are allowed
            i = skip_ows(i + 1)
        if i >= n:
            return params
        start = i
        while i < n and text[i] in _TCHAR:
            i += 1
        key = text[start:i].lower()
        if not key:
            raise _BadRequest("expected a directive name")
        i = skip_ows(i)
        if i >= n or text[i] != "=":
            raise _BadRequest(f"directive '{key}' without '='")
        i = skip_ows(i + 1)
        if i < n and text[i] == '"':
            i += 1
            chars: list[str] = []
            while True:
                if i >= n:
                    raise _BadRequest(f"unterminated quoted value of '{key}'")
                char = text[i]
                if char == "\\":
                    if i + 1 >= n:
                        raise _BadRequest(f"unterminated quoted value of '{key}'")
                    chars.append(text[i + 1])
                    i += 2
                elif char == '"':
                    i += 1
                    break
                else:
                    chars.append(char)
                    i += 1
            value = "".join(chars)
        else:
            start = i
            while i < n and (text[i] in _TCHAR or text[i] in "/="):  # unquoted base64 nonces
                i += 1
            value = text[start:i]
            if not value:
                raise _BadRequest(f"empty value of '{key}'")
        if key in params:
            raise _BadRequest(f"duplicate directive '{key}'")
        params[key] = value
        i = skip_ows(i)
        if i < n and text[i] != ",":
            raise _BadRequest(f"expected ',' after '{key}'")


def _origin_form(uri: str) -> str:
    scheme, sep, rest = uri.partition("://")
    if not sep or not scheme or "/" in scheme:
        return uri
    slash = rest.find("/")
    query = rest.find("?")
    if slash < 0 or (0 <= query < slash):
        return "/" + rest[query:] if query >= 0 else "/"
    return rest[slash:]


def same_target(digest_uri: str, request_target: str) -> bool:
    """Elytron accepts the request URI absolute or as raw path[?query]; nothing else."""
    if digest_uri == request_target:
        return True
    return _origin_form(digest_uri) == _origin_form(request_target)


def _decode_ext_value(value: str) -> str:
    # RFC 8187 ext-value: charset'lang'pct-encoded (username* for non-ASCII names)
    charset, sep, rest = value.partition("'")
    _lang, sep2, encoded = rest.partition("'")
    if not sep or not sep2 or charset.lower() != "utf-8":
        raise _BadRequest("username* must be UTF-8''<percent-encoded>")
    return unquote(encoded, encoding="utf-8", errors="strict")


def digest_request_algorithm(authorization: str | bytes | None) -> str | None:
    """The ``algorithm`` a Digest Authorization names (``MD5`` when absent), to pick a variant."""
    text = header_text(authorization)
    if not text:
        return None
    scheme, _, rest = text.strip().partition(" ")
    if scheme.lower() != "digest":
        return None
    try:
        return parse_auth_params(rest).get("algorithm", "MD5").upper()
    except _BadRequest:
        return None


def digest_response(
    hash_name: str,
    ha1: str,
    nonce: str,
    nc: str | None,
    cnonce: str | None,
    qop: str | None,
    method: str,
    uri: str,
) -> str:
    """RFC 7616 §3.4.1 ``response`` (RFC 2069 form when ``qop`` is None), lower-case hex."""

    def h(text: str) -> str:
        return hashlib.new(hash_name, text.encode("utf-8")).hexdigest()

    ha2 = h(f"{method}:{uri}")
    if qop is None:
        return h(f"{ha1}:{nonce}:{ha2}")
    return h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


@dataclass(frozen=True, slots=True)
class _Request:
    username: str
    method: str
    digest_uri: str
    nonce: str
    nc: str | None
    cnonce: str | None
    qop: str | None
    response: str


class DigestMechanism(HttpMechanism):
    """``DIGEST``: RFC 7616 with MD5 (the realm's ``digest-md5`` hashes or clear passwords)."""

    name = "DIGEST"
    scheme = "DIGEST"
    algorithm = "MD5"
    hash_name = "md5"
    credential_algorithm = "digest-md5"

    def __init__(self, settings: HttpAuthSettings, nonces: NonceManager, *, opaque: str = OPAQUE) -> None:
        super().__init__(settings)
        self.nonces = nonces
        self.opaque = opaque
        self._request: _Request | None = None

    # -- challenge

    def challenge(self) -> list[str]:
        return [self._challenge_value(stale=False)]

    def _challenge_value(self, *, stale: bool) -> str:
        realm = self.settings.realm
        parts = [
            f"Digest realm={quote(realm)}",
            f"nonce={quote(self.nonces.new_nonce(realm))}",
            f"opaque={quote(self.opaque)}",
        ]
        if stale:
            parts.append("stale=true")
        parts += [f"algorithm={self.algorithm}", "qop=auth"]
        return ", ".join(parts)

    def _hex(self, text: str) -> str:
        return hashlib.new(self.hash_name, text.encode("utf-8")).hexdigest()

    # -- request

    def authenticate(self, method: str, uri: str, authorization: str | bytes | None) -> HttpAuthOutcome:
        text = header_text(authorization)
        if not text:
            return self._fail(401, "no credentials")
        if len(text) > MAX_AUTHORIZATION_LENGTH:
            return self._fail(400, "Authorization header too long")
        scheme, _, rest = text.strip().partition(" ")
        if scheme.lower() != "digest":
            return self._fail(401, "not a Digest credentials header")
        try:
            request = self._parse(method, uri, parse_auth_params(rest))
        except _BadRequest as exc:
            return self._fail(400, str(exc))
        except _Unauthorized as exc:
            return self._fail(401, str(exc))
        self._request = request
        return NeedCredentials(request.username, (ClearPassword, DigestHash))

    def _parse(self, method: str, target: str, params: dict[str, str]) -> _Request:
        for required in ("realm", "nonce", "uri", "response"):
            if required not in params:
                raise _BadRequest(f"missing directive '{required}'")
        if ("username" in params) == ("username*" in params):
            raise _BadRequest("exactly one of 'username' and 'username*' is required")
        username = params["username"] if "username" in params else _decode_username_star(params["username*"])
        if not username:
            raise _BadRequest("empty username")
        if not same_target(params["uri"], target):
            raise _BadRequest("digest uri does not match the request target")
        if "charset" in params and params["charset"].upper() != "UTF-8":
            raise _BadRequest("unsupported charset")
        if params.get("userhash", "false").lower() != "false":
            raise _Unauthorized("userhash is not supported")
        if params["realm"] != self.settings.realm:
            raise _Unauthorized("realm is not the one offered")
        if params.get("algorithm", "MD5").upper() != self.algorithm:
            raise _Unauthorized("algorithm is not the one offered")
        if "opaque" in params and params["opaque"] != self.opaque:
            raise _Unauthorized("opaque is not the one offered")
        qop = params.get("qop")
        nc = params.get("nc")
        cnonce = params.get("cnonce")
        if qop is None:
            if nc is not None or cnonce is not None:
                raise _BadRequest("nc/cnonce without qop")
        else:
            if qop.lower() != "auth":
                raise _Unauthorized("qop is not the one offered")
            if nc is None or cnonce is None:
                raise _BadRequest("qop without nc and cnonce")
            if len(nc) != 8 or not set(nc) <= _HEX or int(nc, 16) == 0:
                raise _BadRequest("nc must be 8 hex digits, not zero")
            if not cnonce:
                raise _BadRequest("empty cnonce")
        response = params["response"]
        size = hashlib.new(self.hash_name).digest_size * 2
        if len(response) != size or not set(response) <= _HEX:
            raise _BadRequest("malformed response")
        return _Request(
            username,
            method,
            params["uri"],
            params["nonce"],
            nc,
            cnonce,
            None if qop is None else "auth",
            response.lower(),
        )

    def supply_credentials(self, credentials: Sequence[Credential] | None) -> HttpAuthOutcome:
        request, self._request = self._request, None
        if request is None:
            return self._fail(401, "credentials supplied without a request")
        realm = self.settings.realm
        ha1 = self._ha1(request.username, realm, credentials or ())
        usable = ha1 is not None
        if ha1 is None:
            # Same work as a real check, so unknown users are not told apart by timing.
            ha1 = secrets.token_hex(hashlib.new(self.hash_name).digest_size)
        expected = digest_response(
            self.hash_name,
            ha1,
            request.nonce,
            request.nc,
            request.cnonce,
            request.qop,
            request.method,
            request.digest_uri,
        )
        if not hmac.compare_digest(expected, request.response) or not usable:
            return self._fail(401, "wrong response" if usable else "no usable credential for the user")
        nc = 0 if request.nc is None else int(request.nc, 16)
        status = self.nonces.use(request.nonce, nc, realm)
        if status is not NonceStatus.OK:
            return self._fail(401, f"nonce {status.value}", [self._challenge_value(stale=True)])
        headers: tuple[tuple[str, str], ...] = ()
        if request.nc is None:
            headers = (("Authentication-Info", f"nextnonce={quote(self.nonces.new_nonce(realm))}"),)
        return HttpSuccess(request.username, headers, self.name)

    def _ha1(self, username: str, realm: str, credentials: Sequence[Credential]) -> str | None:
        for credential in credentials:
            if isinstance(credential, ClearPassword):
                return self._hex(f"{username}:{realm}:{credential.password}")
            if (
                isinstance(credential, DigestHash)
                and credential.algorithm == self.credential_algorithm
                and credential.realm == realm
            ):
                return credential.digest.hex()
        return None


class _Unauthorized(Exception):
    pass


def _decode_username_star(value: str) -> str:
    try:
        return _decode_ext_value(value)
    except UnicodeDecodeError:
        raise _BadRequest("username* is not valid UTF-8") from None


class DigestSha256Mechanism(DigestMechanism):
    """``DIGEST-SHA-256``: RFC 7616 with SHA-256 (``digest-sha-256`` hashes or clear passwords)."""

    name = "DIGEST-SHA-256"
    algorithm = "SHA-256"
    hash_name = "sha256"
    credential_algorithm = "digest-sha-256"


class DigestSha512_256Mechanism(DigestMechanism):
    """``DIGEST-SHA-512-256``: FIPS SHA-512/256 (not the truncated SHA-512 of RFC 7616's erratum)."""

    name = "DIGEST-SHA-512-256"
    algorithm = "SHA-512-256"
    hash_name = "sha512_256"
    credential_algorithm = "digest-sha-512-256"


DIGEST_MECHANISMS: dict[str, type[DigestMechanism]] = {
    m.algorithm: m for m in (DigestMechanism, DigestSha256Mechanism, DigestSha512_256Mechanism)
}


def failure_is_stale(outcome: HttpAuthOutcome) -> bool:
    """Did a Digest failure ask the client to retry with a fresh nonce?"""
    return isinstance(outcome, HttpFailure) and any("stale=true" in v for _, v in outcome.headers)
