"""HTTP Bearer (RFC 6750 §2.1): ``Authorization: Bearer <b64token>``, Infinispan's BEARER_TOKEN.

The token goes to the realm (:class:`TokenCheck`, the same question OAUTHBEARER asks);
the identity comes from the token's claims (:attr:`BearerMechanism.established_identity`).
Challenges follow RFC 6750 §3: ``Bearer realm="…"`` without an error when no token was
sent, ``error="invalid_token"`` (401) for a token the realm rejects, and
``error="invalid_request"`` (400) for a header that is not a Bearer credential at all.
Tokens are accepted only from the header, never from the query string or the body.
"""

from __future__ import annotations

import re

from gridactor.security.http_auth.base import (
    MAX_AUTHORIZATION_LENGTH,
    HttpAuthOutcome,
    HttpFailure,
    HttpMechanism,
    HttpSuccess,
    header_text,
    quote,
)
from gridactor.security.identity import Identity
from gridactor.security.sasl.oauthbearer import B64TOKEN, TokenAccepted, TokenCheck, TokenRejected

_BEARER = re.compile(r"[ \t]*(?i:bearer) +(" + B64TOKEN.pattern + r")[ \t]*")


class BearerMechanism(HttpMechanism):
    name = "BEARER_TOKEN"
    scheme = "BEARER"

    established_identity: Identity | None = None
    _asked = False

    def challenge(self) -> list[str]:
        return [f"Bearer realm={quote(self.settings.realm)}"]

    def _error(self, status: int, error: str, reason: str) -> HttpFailure:
        value = f"Bearer realm={quote(self.settings.realm)}, error={quote(error)}"
        return self._fail(status, reason, [value])

    def authenticate(self, method: str, uri: str, authorization: str | bytes | None) -> HttpAuthOutcome:
        text = header_text(authorization)
        if not text:
            return self._fail(401, "no credentials")
        if len(text) > MAX_AUTHORIZATION_LENGTH:
            return self._error(400, "invalid_request", "Authorization header too long")
        match = _BEARER.fullmatch(text)
        if match is None:
            return self._error(400, "invalid_request", "not a Bearer credentials header")
        self._asked = True
        return TokenCheck(match.group(1))

    def supply(self, answer: object) -> HttpAuthOutcome:
        if not self._asked:
            return self._error(401, "invalid_token", "realm answer without a question")
        self._asked = False
        if isinstance(answer, TokenAccepted):
            identity = answer.identity
            self.established_identity = Identity(
                name=identity.name,
                realm=identity.realm,
                groups=identity.groups,
                mechanism=self.name,
                certificate_subject=identity.certificate_subject,
            )
            return HttpSuccess(identity.name, (), self.name)
        if isinstance(answer, TokenRejected):
            return self._error(401, "invalid_token", answer.reason)
        return self._error(401, "invalid_token", f"unexpected realm answer {type(answer).__name__}")
