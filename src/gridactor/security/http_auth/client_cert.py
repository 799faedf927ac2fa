"""HTTP ``CLIENT_CERT``: the REST identity is the TLS client certificate.

There is no ``Authorization`` scheme and no ``WWW-Authenticate`` challenge: a request
without an Authorization header on a connection that presented a certificate is
authenticated by that certificate, once per connection (as Infinispan caches the subject
of the connection). The realm vouches for the certificate through the same
:class:`~gridactor.security.sasl.external.VerifyClientCertificate` request that SASL
EXTERNAL uses.
"""

from __future__ import annotations

from gridactor.security.http_auth.base import (
    HttpAuthOutcome,
    HttpAuthSettings,
    HttpFailure,
    HttpMechanism,
    HttpSuccess,
)
from gridactor.security.sasl.external import CertificateVerdict, VerifyClientCertificate

__all__ = ["ClientCertMechanism"]


class ClientCertMechanism(HttpMechanism):
    name = "CLIENT_CERT"
    scheme = ""  # answers requests *without* an Authorization header

    def __init__(self, settings: HttpAuthSettings, *, peer_certificate: bytes | None = None) -> None:
        super().__init__(settings)
        self._certificate = peer_certificate

    def challenge(self) -> list[str]:
        return []  # a certificate is asked for by the TLS handshake, not by a header

    def authenticate(self, method: str, uri: str, authorization: str | bytes | None) -> HttpAuthOutcome:
        if self._certificate is None:
            return HttpFailure(401, "no client certificate was presented")
        return VerifyClientCertificate(self._certificate)

    def supply(self, answer: object) -> HttpAuthOutcome:
        if not isinstance(answer, CertificateVerdict):
            return HttpFailure(401, f"the realm cannot verify certificates ({type(answer).__name__})")
        if answer.principal is None:
            return HttpFailure(401, answer.reason or "the certificate was not accepted")
        return HttpSuccess(answer.principal, mechanism=self.name)
