"""OAUTHBEARER (RFC 7628), server side, and the token question it asks its realm.

The client sends one message: a GS2 header, then ``%x01``-separated ``key=value`` pairs,
one of which is ``auth=Bearer <token>`` (RFC 6750 b64token), then a final ``%x01``::

    n,a=user@example.com,^Ahost=server.example.com^Aport=143^Aauth=Bearer vF9dft…==^A^A

The mechanism parses it strictly (no channel binding, no non-standard GS2 flag, no
duplicate key, ``auth`` exactly once) and asks the realm (:class:`TokenCheck`) whether the
token is valid. The realm answers :class:`TokenAccepted` with the identity the token
carries, or :class:`TokenRejected`. On a rejection RFC 7628 §3.2.2 has the server send a
JSON error as a challenge, which the client must acknowledge with a single ``%x01`` before
the server fails the exchange; a client that answers anything else fails just the same.

The identity of a token realm comes from the token's claims, not from a user lookup, so a
successful mechanism exposes it as :attr:`OAuthBearerMechanism.established_identity` and
the endpoint uses it instead of asking ``realm.identity(name)``. Tokens never appear in a
repr, a log line or a failure reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from gridactor.security.identity import Identity
from gridactor.security.sasl.base import (
    Challenge,
    Failure,
    RealmRequest,
    SaslMechanism,
    SaslOutcome,
    SaslSettings,
    Success,
)

# Longer messages are refused before parsing: real access tokens (even JWTs with many
# roles) stay far below this, and the token goes to the authorization server as is.
MAX_MESSAGE_BYTES = 16384
KVSEP = b"\x01"

# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_AUTH_VALUE = re.compile(r"(?i:bearer) +(" + B64TOKEN.pattern + r")")
_KEY = re.compile(rb"[A-Za-z]+")
# RFC 7628 §3.1: value = *(VCHAR / SP / HTAB / CR / LF)
_VALUE = re.compile(rb"[\x21-\x7e \t\r\n]*")
# RFC 5801 saslname: no NUL, "," or "="; "=2C" / "=3D" are the only escapes.
_SASLNAME = re.compile(r"(?:[^\x00,=]|=2C|=3D)+")


@dataclass(frozen=True, slots=True, repr=False)
class TokenCheck(RealmRequest):
    """Ask a token realm whether ``token`` is an active access token, and whose."""

    token: str

    def __repr__(self) -> str:
        return "TokenCheck(***)"


@dataclass(frozen=True, slots=True)
class TokenAccepted:
    """The token is valid; ``identity`` is built from its claims."""

    identity: Identity


@dataclass(frozen=True, slots=True)
class TokenRejected:
    """The token is not valid (inactive, expired, revoked, unknown, wrong audience…).

    ``reason`` is for the server log: it never contains the token."""

    reason: str


class OAuthBearerParseError(ValueError):
    """The client message does not follow RFC 7628 §3.1 (the text never has the token)."""


@dataclass(frozen=True, slots=True, repr=False)
class ClientResponse:
    authzid: str | None
    token: str
    pairs: dict[str, str]

    def __repr__(self) -> str:
        return f"ClientResponse(authzid={self.authzid!r}, token=***)"


def _saslname(raw: str) -> str:
    if not _SASLNAME.fullmatch(raw):
        raise OAuthBearerParseError("malformed authzid in the GS2 header")
    return raw.replace("=2C", ",").replace("=3D", "=")


def parse_gs2_header(header: bytes) -> str | None:
    """The authzid of a GS2 header ``n,[a=…],`` (RFC 5801 §4); None when absent."""
    try:
        text = header.decode("utf-8")
    except UnicodeDecodeError:
        raise OAuthBearerParseError("GS2 header is not UTF-8") from None
    if text.startswith("F,"):
        raise OAuthBearerParseError("non-standard GS2 flag 'F' is not supported")
    parts = text.split(",")
    if len(parts) != 3 or parts[2] != "":
        raise OAuthBearerParseError("malformed GS2 header")
    flag, authzid = parts[0], parts[1]
    if flag.startswith("p="):
        raise OAuthBearerParseError("channel binding requested, but OAUTHBEARER has none here")
    if flag not in ("n", "y"):
        raise OAuthBearerParseError("malformed GS2 channel-binding flag")
    if not authzid:
        return None
    if not authzid.startswith("a="):
        raise OAuthBearerParseError("malformed GS2 authzid")
    return _saslname(authzid[2:])


def parse_client_response(message: bytes) -> ClientResponse:
    """Parse an RFC 7628 initial client response; raises :class:`OAuthBearerParseError`."""
    if len(message) > MAX_MESSAGE_BYTES:
        raise OAuthBearerParseError("client response too long")
    header, sep, rest = message.partition(KVSEP)
    if not sep:
        raise OAuthBearerParseError("no %x01 after the GS2 header")
    authzid = parse_gs2_header(header)
    # rest = *(key "=" value kvsep) kvsep
    if not rest.endswith(KVSEP):
        raise OAuthBearerParseError("the message does not end with %x01")
    body = rest[:-1]
    pairs: dict[str, str] = {}
    if body:
        if not body.endswith(KVSEP):
            raise OAuthBearerParseError("a key-value pair is not terminated by %x01")
        for raw in body[:-1].split(KVSEP):
            key, eq, value = raw.partition(b"=")
            if not eq or not _KEY.fullmatch(key):
                raise OAuthBearerParseError("malformed key-value pair")
            if not _VALUE.fullmatch(value):
                raise OAuthBearerParseError("forbidden character in a value")
            name = key.decode("ascii")
            if name in pairs:
                raise OAuthBearerParseError(f"key {name!r} appears twice")
            pairs[name] = value.decode("ascii")
    auth = pairs.pop("auth", None)
    if auth is None:
        raise OAuthBearerParseError("no auth= key")
    match = _AUTH_VALUE.fullmatch(auth)
    if match is None:
        raise OAuthBearerParseError("auth= is not 'Bearer <b64token>'")
    return ClientResponse(authzid, match.group(1), pairs)


def error_challenge(
    status: str = "invalid_token", *, scope: str | None = None, openid_configuration: str | None = None
) -> bytes:
    """The JSON failure challenge of RFC 7628 §3.2.2."""
    body: dict[str, str] = {"status": status}
    if scope:
        body["scope"] = scope
    if openid_configuration:
        body["openid-configuration"] = openid_configuration
    return json.dumps(body, separators=(",", ":")).encode()


class OAuthBearerMechanism(SaslMechanism):
    name = "OAUTHBEARER"

    def __init__(self, settings: SaslSettings) -> None:
        super().__init__(settings)
        self._state = "start"
        self._authzid: str | None = None
        self._failure_reason = ""
        self.established_identity: Identity | None = None

    def step(self, response: bytes) -> SaslOutcome:
        state = self._state
        if state == "start":
            if not response:
                # Client-first mechanism; a client that waited for the server gets an
                # empty challenge once (RFC 4422 §5), then must send its message.
                self._state = "expect-response"
                return Challenge(b"")
            return self._first(response)
        if state == "expect-response":
            return self._first(response)
        if state == "error-sent":
            self._state = "done"
            if response != KVSEP:
                return Failure(
                    f"{self._failure_reason}; then the client did not acknowledge the error with %x01"
                )
            return Failure(self._failure_reason)
        self._state = "done"
        return Failure("OAUTHBEARER exchange already finished")

    def _first(self, response: bytes) -> SaslOutcome:
        if response == KVSEP:
            self._state = "done"
            return Failure("OAUTHBEARER client sent %x01 without a token")
        try:
            parsed = parse_client_response(response)
        except OAuthBearerParseError as exc:
            self._state = "done"
            return Failure(f"OAUTHBEARER: {exc}")
        self._authzid = parsed.authzid
        self._state = "asked-realm"
        return TokenCheck(parsed.token)

    def supply(self, answer: object) -> SaslOutcome:
        if self._state != "asked-realm":
            self._state = "done"
            return Failure("OAUTHBEARER realm answer without a question")
        if isinstance(answer, TokenAccepted):
            identity = answer.identity
            if self._authzid is not None and self._authzid != identity.name:
                return self._reject(
                    f"authzid {self._authzid!r} differs from the token's principal {identity.name!r}"
                )
            self._state = "done"
            self.established_identity = Identity(
                name=identity.name,
                realm=identity.realm,
                groups=identity.groups,
                mechanism=self.name,
                certificate_subject=identity.certificate_subject,
            )
            return Success(identity.name)
        if isinstance(answer, TokenRejected):
            return self._reject(answer.reason)
        self._state = "done"
        return Failure(f"OAUTHBEARER: unexpected realm answer {type(answer).__name__}")

    def _reject(self, reason: str) -> SaslOutcome:
        self._state = "error-sent"
        self._failure_reason = f"OAUTHBEARER: {reason}"
        return Challenge(error_challenge("invalid_token"))
