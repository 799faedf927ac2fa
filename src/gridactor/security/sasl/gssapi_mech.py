"""GSSAPI (RFC 4752), server side: Kerberos V5 with the SASL security layer.

Exchange (Hot Rod AUTH rounds)::

    C: initial context token (AP-REQ)              S: AP-REP (mutual authentication)
    C: (empty)                                     S: wrap(layers ‖ maxbuf)
    C: wrap(chosen layer ‖ maxbuf ‖ authzid)       S: success

The mechanism first asks its realm for the acceptor credentials of its service
(:class:`AcceptorCredentialsRequest`: the realm holds the keytab), then accepts the token
inline: ``accept_sec_context`` needs no KDC, only the keytab and the replay cache, and
costs well under a millisecond. python-gssapi defers acceptor errors to the next call by
default (a bad token would come back as an "output token"); that is turned off, so every
GSS failure fails the exchange at once.

Layers follow ``qop``: ``auth`` → 1 (none), ``auth-int`` → 2 (integrity), ``auth-conf`` →
4 (confidentiality). After success with a layer, :meth:`wrap`/:meth:`unwrap` protect every
following Hot Rod buffer (Infinispan's 4-byte length framing, see ``sasl/framing.py``).
The authenticated name is the principal as the realm rewrites it (``alice@REALM`` →
``alice``); an authzid other than that name (or the full principal) is refused, as no
identity switch is supported.
"""

from __future__ import annotations

from typing import Any

import gssapi
from gssapi.raw.misc import GSSError

from gridactor.security.kerberos import AcceptorCredentials, AcceptorCredentialsRequest, AcceptorUnavailable
from gridactor.security.sasl.base import (
    Challenge,
    Failure,
    SaslError,
    SaslMechanism,
    SaslOutcome,
    SaslSettings,
    Success,
)
from gridactor.security.sasl.registry import register_mechanism

LAYER_NONE = 1
LAYER_INTEGRITY = 2
LAYER_CONFIDENTIALITY = 4
QOP_LAYERS = {"auth": LAYER_NONE, "auth-int": LAYER_INTEGRITY, "auth-conf": LAYER_CONFIDENTIALITY}
LAYER_QOPS = {v: k for k, v in QOP_LAYERS.items()}
DEFAULT_MAXBUF = 65536
MAX_MAXBUF = 0xFFFFFF  # three octets
PROP_MAXBUF = "javax.security.sasl.maxbuffer"
# A Kerberos AP-REQ with a large PAC is a few KiB; nothing legitimate comes near this.
MAX_TOKEN_BYTES = 65536


def gss_error_text(exc: GSSError) -> str:
    """The major and minor messages of a GSS failure (no key or ticket material in them)."""
    try:
        return " ".join(exc.gen_message().split())
    except Exception:  # pragma: no cover - message lookup itself failed
        return type(exc).__name__


def new_acceptor(credentials: gssapi.Credentials, channel_bindings: Any = None) -> gssapi.SecurityContext:
    context = gssapi.SecurityContext(creds=credentials, usage="accept", channel_bindings=channel_bindings)
    # python-gssapi returns the error token of a failed step and raises only at the next call.
    context.__DEFER_STEP_ERRORS__ = False  # type: ignore[attr-defined]
    return context


class KerberosSaslMechanism(SaslMechanism):
    """What GSSAPI and GS2-KRB5 share: getting acceptor credentials and naming the client."""

    def __init__(self, settings: SaslSettings) -> None:
        super().__init__(settings)
        self._context: gssapi.SecurityContext | None = None
        self._acceptor: AcceptorCredentials | None = None
        self._pending_token = b""
        self._done = False

    def _request_credentials(self, token: bytes) -> SaslOutcome:
        if len(token) > MAX_TOKEN_BYTES:
            return self._fail("client token too large")
        self._pending_token = token
        return AcceptorCredentialsRequest(
            service=self.settings.protocol,
            principal=self.settings.server_principal,
            host=self.settings.server_name,
        )

    def supply(self, answer: object) -> SaslOutcome:
        if self._done or self._acceptor is not None:
            return self._fail("unexpected realm answer")
        if isinstance(answer, AcceptorUnavailable):
            return self._fail(answer.reason)
        if not isinstance(answer, AcceptorCredentials):
            return self._fail(f"unexpected realm answer {type(answer).__name__}")
        self._acceptor = answer
        token, self._pending_token = self._pending_token, b""
        return self._accept(token)

    def _accept(self, token: bytes) -> SaslOutcome:
        raise NotImplementedError

    def _client_name(self) -> tuple[str, str]:
        """(full principal, name after the realm's rewriting) of the established context."""
        assert self._context is not None
        assert self._acceptor is not None
        principal = str(self._context.initiator_name)
        return principal, self._acceptor.rewrite(principal)

    @staticmethod
    def _authzid_allowed(authzid: str, principal: str, name: str) -> bool:
        return authzid in ("", principal, name)

    def _fail(self, reason: str) -> Failure:
        self._done = True
        return Failure(reason)


class GssapiMechanism(KerberosSaslMechanism):
    name = "GSSAPI"

    def __init__(self, settings: SaslSettings) -> None:
        super().__init__(settings)
        self._offered = 0
        for qop in settings.qop:
            self._offered |= QOP_LAYERS.get(qop, 0)
        if not self._offered:
            raise ValueError(f"no usable qop in {settings.qop!r}")
        maxbuf = int(settings.extra.get(PROP_MAXBUF, DEFAULT_MAXBUF))
        if not 0 < maxbuf <= MAX_MAXBUF:
            raise ValueError(f"{PROP_MAXBUF} must lie in [1, {MAX_MAXBUF}]")
        # RFC 4752 §3.1: with no security layer offered, the maximum size must be 0.
        self.max_receive_size = maxbuf if self._offered != LAYER_NONE else 0
        self.max_send_size: int | None = None
        self._state = "start"
        self._layer = LAYER_NONE
        self._username = ""

    # ------------------------------------------------------------ exchange

    def step(self, response: bytes) -> SaslOutcome:
        if self._done:
            return self._fail("the exchange is over")
        state = self._state
        if state == "start":
            if not response:
                return self._fail("GSSAPI is client-first: empty initial response")
            self._state = "context"
            return self._request_credentials(response)
        if state == "context":
            if self._acceptor is None:
                return self._fail("a response arrived before the realm's answer")
            return self._accept(response)
        if state == "await-empty":
            if response:
                return self._fail("expected an empty response after the final context token")
            return self._offer_layers()
        if state == "layer":
            return self._choose_layer(response)
        return self._fail(f"unexpected response in state {state}")

    def _accept(self, token: bytes) -> SaslOutcome:
        assert self._acceptor is not None
        try:
            if self._context is None:
                self._context = new_acceptor(self._acceptor.credentials)
            output = self._context.step(token)
            complete = self._context.complete
        except GSSError as exc:
            return self._fail(f"GSS accept failed: {gss_error_text(exc)}")
        if not complete:
            return Challenge(output or b"")
        if output:
            self._state = "await-empty"
            return Challenge(output)
        return self._offer_layers()

    def _offer_layers(self) -> SaslOutcome:
        assert self._context is not None
        message = bytes([self._offered]) + self.max_receive_size.to_bytes(3, "big")
        try:
            wrapped = self._context.wrap(message, False).message
        except GSSError as exc:
            return self._fail(f"GSS wrap failed: {gss_error_text(exc)}")
        self._state = "layer"
        return Challenge(wrapped)

    def _choose_layer(self, response: bytes) -> SaslOutcome:
        assert self._context is not None
        try:
            message = self._context.unwrap(response).message
        except GSSError as exc:
            return self._fail(f"GSS unwrap of the layer choice failed: {gss_error_text(exc)}")
        if len(message) < 4:
            return self._fail("layer choice shorter than 4 octets")
        chosen = message[0]
        if chosen not in LAYER_QOPS or not chosen & self._offered:
            return self._fail(f"client chose layer {chosen:#x}, offered {self._offered:#x}")
        flags = self._context.actual_flags
        if chosen == LAYER_INTEGRITY and gssapi.RequirementFlag.integrity not in flags:
            return self._fail("integrity layer chosen but the context has no integrity")
        if chosen == LAYER_CONFIDENTIALITY and gssapi.RequirementFlag.confidentiality not in flags:
            return self._fail("confidentiality layer chosen but the context has no confidentiality")
        client_maxbuf = int.from_bytes(message[1:4], "big")
        try:
            authzid = message[4:].decode("utf-8")
        except UnicodeDecodeError:
            return self._fail("authzid is not UTF-8")
        principal, name = self._client_name()
        if not self._authzid_allowed(authzid, principal, name):
            return self._fail(f"{principal} may not act as {authzid!r}")
        self._layer = chosen
        if chosen != LAYER_NONE:
            if client_maxbuf == 0:
                return self._fail("client chose a security layer with a maximum buffer of 0")
            try:
                limit = self._context.get_wrap_size_limit(client_maxbuf, chosen == LAYER_CONFIDENTIALITY)
            except GSSError as exc:
                return self._fail(f"GSS wrap size limit failed: {gss_error_text(exc)}")
            if limit <= 0:
                return self._fail(f"client maximum buffer {client_maxbuf} leaves no room for data")
            self.max_send_size = limit
        self._done = True
        self._state = "done"
        self._username = name
        return Success(name)

    # ------------------------------------------------------------ security layer

    @property
    def negotiated_qop(self) -> str:
        return LAYER_QOPS[self._layer] if self._state == "done" else "auth"

    def wrap(self, data: bytes) -> bytes:
        if self._layer == LAYER_NONE or self._context is None:
            return data
        try:
            return bytes(self._context.wrap(data, self._layer == LAYER_CONFIDENTIALITY).message)
        except GSSError as exc:
            raise SaslError(f"GSS wrap failed: {gss_error_text(exc)}") from None

    def unwrap(self, data: bytes) -> bytes:
        if self._layer == LAYER_NONE or self._context is None:
            return data
        try:
            result = self._context.unwrap(data)
        except GSSError as exc:
            raise SaslError(f"GSS unwrap failed: {gss_error_text(exc)}") from None
        if self._layer == LAYER_CONFIDENTIALITY and not result.encrypted:
            raise SaslError("unencrypted buffer on a confidentiality layer")
        return bytes(result.message)


register_mechanism(GssapiMechanism.name, GssapiMechanism, ())
