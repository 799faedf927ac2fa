"""SPNEGO (HTTP ``Negotiate``, RFC 4559), server side, Kerberos only.

A request without credentials gets ``401`` with ``WWW-Authenticate: Negotiate``. A request
with ``Authorization: Negotiate <base64 token>`` is accepted with the SPNEGO acceptor
credentials of the endpoint's ``HTTP/…`` identity, which the mechanism asks its realm for
(:class:`AcceptorCredentialsRequest`). With Kerberos inside SPNEGO one leg completes the
context: the response then carries the mutual-authentication token
(``WWW-Authenticate: Negotiate <base64>``). Contexts are per request, so a mechanism that
would need a second leg (an NTLM-first client) fails with a fresh challenge; an NTLMSSP
token (``TlRMTVNTUA…``) is refused before any GSS work. Replayed tokens are refused by the
Kerberos replay cache. The same code serves HTTP/1.1 and HTTP/2 (the gate is per request).
"""

from __future__ import annotations

import base64
import binascii

from gssapi.raw.misc import GSSError

from gridactor.security.http_auth.base import (
    MAX_AUTHORIZATION_LENGTH,
    HttpAuthOutcome,
    HttpAuthSettings,
    HttpMechanism,
    HttpSuccess,
    header_text,
)
from gridactor.security.kerberos import AcceptorCredentials, AcceptorCredentialsRequest, AcceptorUnavailable
from gridactor.security.sasl.gssapi_mech import gss_error_text, new_acceptor

NTLMSSP = b"NTLMSSP\x00"


class SpnegoMechanism(HttpMechanism):
    name = "SPNEGO"
    scheme = "NEGOTIATE"

    def __init__(self, settings: HttpAuthSettings) -> None:
        super().__init__(settings)
        self._token = b""
        self._asked = False

    def challenge(self) -> list[str]:
        return ["Negotiate"]

    def authenticate(self, method: str, uri: str, authorization: str | bytes | None) -> HttpAuthOutcome:
        text = header_text(authorization) or ""
        if len(text) > MAX_AUTHORIZATION_LENGTH:
            return self._fail(400, "Authorization header too long")
        parts = text.strip().split(None, 1)
        if len(parts) != 2 or parts[0].upper() != self.scheme:
            return self._fail(401, "no Negotiate token")
        try:
            token = base64.b64decode(parts[1].strip(), validate=True)
        except (binascii.Error, ValueError):
            return self._fail(400, "Negotiate token is not base64")
        if not token:
            return self._fail(401, "empty Negotiate token")
        if token.startswith(NTLMSSP):
            return self._fail(401, "NTLM is not supported (Kerberos only)")
        self._token = token
        self._asked = True
        return AcceptorCredentialsRequest(
            service="HTTP", principal=self.settings.server_principal, spnego=True
        )

    def supply(self, answer: object) -> HttpAuthOutcome:
        if not self._asked:
            return self._fail(401, "unexpected realm answer")
        self._asked = False
        token, self._token = self._token, b""
        if isinstance(answer, AcceptorUnavailable):
            return self._fail(401, answer.reason)
        if not isinstance(answer, AcceptorCredentials):
            return self._fail(401, f"unexpected realm answer {type(answer).__name__}")
        try:
            context = new_acceptor(answer.credentials)
            output = context.step(token)
            complete = context.complete
            principal = str(context.initiator_name) if complete else ""
        except GSSError as exc:
            return self._fail(401, f"GSS accept failed: {gss_error_text(exc)}")
        if not complete:
            # A second leg would need this context on the next request: not supported.
            return self._fail(401, "SPNEGO needs another leg (a non-Kerberos mechanism?)")
        headers: tuple[tuple[str, str], ...] = ()
        if output:
            headers = (("WWW-Authenticate", "Negotiate " + base64.b64encode(output).decode("ascii")),)
        return HttpSuccess(answer.rewrite(principal), headers, self.name)
