"""GS2-KRB5 (RFC 5801), server side: Kerberos V5 through the GS2 bridge, one round trip.

The client's only message is the GS2 header followed by its initial context token with
the RFC 2743 §3.1 framing (``60 len 06 09 <krb5 OID>``) stripped::

    n,,<inner token>          (or  n,a=authzid,<inner token>)

The server restores the framing, and accepts the token with GSS channel bindings whose
application data is the GS2 header (without a leading ``F,``): that is how RFC 5801 binds
the header, authzid included, to the Kerberos authenticator. MIT accepts a token that
carries no channel bindings at all, so the mechanism additionally requires
``channel_bound`` in the context's flags: a client that does not bind is refused. The
mutual-authentication token goes back with the success. GS2 has no security layer.

Channel-binding flags: ``n`` (client cannot bind to TLS) and ``y`` (client could, but
thinks the server cannot) are accepted because this server does not offer
GS2-KRB5-PLUS; ``p=…`` asks for TLS channel binding, which is refused. The non-standard
``F`` flag is refused: Kerberos tokens always have the standard framing.
"""

from __future__ import annotations

import re

import gssapi
import gssapi.raw
from gssapi.raw.misc import GSSError

from gridactor.security.sasl.base import Challenge, SaslOutcome, SaslSettings, Success
from gridactor.security.sasl.gssapi_mech import KerberosSaslMechanism, gss_error_text, new_acceptor
from gridactor.security.sasl.registry import register_mechanism

# DER of the Kerberos V5 mechanism OID 1.2.840.113554.1.2.2, tag and length included.
KRB5_OID_DER = bytes.fromhex("06092a864886f712010202")
_SASLNAME = re.compile(rb"(?:[\x01-\x2b\x2d-\x3c\x3e-\x7f]|[\x80-\xff]|=2C|=3D)+")


class Gs2ParseError(ValueError):
    """The client message does not start with a valid GS2 header."""


def der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def frame_token(inner: bytes, oid_der: bytes = KRB5_OID_DER) -> bytes:
    """RFC 2743 §3.1 InitialContextToken: ``60 <len> <OID> <inner>``."""
    body = oid_der + inner
    return b"\x60" + der_length(len(body)) + body


def unframe_token(token: bytes, oid_der: bytes = KRB5_OID_DER) -> bytes:
    """The inner token of an RFC 2743 framed token of mechanism ``oid_der`` (clients use it)."""
    if len(token) < 2 or token[0] != 0x60:
        raise ValueError("not an RFC 2743 initial context token")
    first = token[1]
    pos = 2
    if first & 0x80:
        count = first & 0x7F
        if count == 0 or count > 4 or len(token) < pos + count:
            raise ValueError("bad DER length")
        length = int.from_bytes(token[pos : pos + count], "big")
        pos += count
    else:
        length = first
    if len(token) != pos + length or not token[pos:].startswith(oid_der):
        raise ValueError("framing does not match the token or the mechanism")
    return token[pos + len(oid_der) :]


def parse_gs2_header(message: bytes) -> tuple[bytes, str, str, bytes]:
    """Split ``message`` into (header, cb flag, authzid, rest); raises Gs2ParseError.

    ``header`` is the gs2-header as it goes into the channel bindings (no ``F,``).
    """
    if message.startswith(b"F,"):
        raise Gs2ParseError("the non-standard GS2 flag F is not supported for Kerberos")
    first = message.find(b",")
    second = message.find(b",", first + 1) if first >= 0 else -1
    if first < 0 or second < 0:
        raise Gs2ParseError("no GS2 header")
    cb_flag = message[:first]
    authzid_field = message[first + 1 : second]
    if cb_flag not in (b"n", b"y") and not re.fullmatch(rb"p=[A-Za-z0-9.\-]+", cb_flag):
        raise Gs2ParseError("malformed GS2 channel-binding flag")
    authzid = ""
    if authzid_field:
        if not authzid_field.startswith(b"a=") or not _SASLNAME.fullmatch(authzid_field[2:]):
            raise Gs2ParseError("malformed GS2 authzid")
        try:
            authzid = authzid_field[2:].decode("utf-8").replace("=2C", ",").replace("=3D", "=")
        except UnicodeDecodeError:
            raise Gs2ParseError("GS2 authzid is not UTF-8") from None
    return message[: second + 1], cb_flag.decode("ascii"), authzid, message[second + 1 :]


class Gs2Krb5Mechanism(KerberosSaslMechanism):
    name = "GS2-KRB5"

    def __init__(self, settings: SaslSettings) -> None:
        super().__init__(settings)
        self._header = b""
        self._authzid = ""

    def step(self, response: bytes) -> SaslOutcome:
        if self._done:
            return self._fail("the exchange is over")
        if self._context is not None:
            # Only a multi-leg mechanism would get here; Kerberos completes in one leg.
            return self._accept(response)
        if self._acceptor is not None or self._pending_token:
            return self._fail("unexpected response")
        try:
            header, cb_flag, authzid, inner = parse_gs2_header(response)
        except Gs2ParseError as exc:
            return self._fail(str(exc))
        if cb_flag.startswith("p="):
            return self._fail(
                f"TLS channel binding {cb_flag[2:]} requested, but GS2-KRB5-PLUS is not offered"
            )
        if not inner:
            return self._fail("no context token after the GS2 header")
        self._header = header
        self._authzid = authzid
        return self._request_credentials(frame_token(inner))

    def _accept(self, token: bytes) -> SaslOutcome:
        assert self._acceptor is not None
        try:
            if self._context is None:
                bindings = gssapi.raw.ChannelBindings(application_data=self._header)
                self._context = new_acceptor(self._acceptor.credentials, bindings)
            output = self._context.step(token)
            complete = self._context.complete
            flags = self._context.actual_flags
        except GSSError as exc:
            return self._fail(f"GSS accept failed: {gss_error_text(exc)}")
        if not complete:
            return Challenge(output or b"")
        if gssapi.RequirementFlag.channel_bound not in flags:
            return self._fail("the client did not bind the GS2 header (channel bindings are required)")
        principal, name = self._client_name()
        if not self._authzid_allowed(self._authzid, principal, name):
            return self._fail(f"{principal} may not act as {self._authzid!r}")
        self._done = True
        return Success(name, output or None)


register_mechanism(Gs2Krb5Mechanism.name, Gs2Krb5Mechanism, ())
