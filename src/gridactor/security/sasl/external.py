"""SASL EXTERNAL (RFC 4422 appendix A): the identity is the TLS client certificate.

The mechanism never sees a password: it asks the realm to vouch for the certificate that
the TLS layer verified (:class:`VerifyClientCertificate`), and the realm answers with a
:class:`CertificateVerdict`. One round, as the Node client requires: its initial response
is empty (or an authorization identity, which must then be the certificate's own principal:
switching identities is not supported), and the server completes with ``01 00``.

The same request/verdict pair serves HTTP ``CLIENT_CERT``
(:mod:`gridactor.security.http_auth.client_cert`).
"""

from __future__ import annotations

from dataclasses import dataclass

from gridactor.security.sasl.base import (
    Failure,
    RealmRequest,
    SaslMechanism,
    SaslOutcome,
    SaslSettings,
    Success,
)
from gridactor.security.sasl.registry import register_mechanism

__all__ = ["CertificateVerdict", "ExternalMechanism", "VerifyClientCertificate"]


@dataclass(frozen=True, slots=True)
class VerifyClientCertificate(RealmRequest):
    """Ask the realm who this (TLS-verified) client certificate is. ``certificate`` is the
    DER leaf certificate; certificates are public, so the repr may show its size."""

    certificate: bytes

    def __repr__(self) -> str:
        return f"VerifyClientCertificate({len(self.certificate)} bytes)"


@dataclass(frozen=True, slots=True)
class CertificateVerdict:
    """The realm's answer: the principal (subject DN), or None and why not (for the log)."""

    principal: str | None
    reason: str = ""


class ExternalMechanism(SaslMechanism):
    name = "EXTERNAL"
    # The per-connection authenticator hands the peer certificate to mechanisms that say so.
    uses_peer_certificate = True

    def __init__(self, settings: SaslSettings, *, peer_certificate: bytes | None = None) -> None:
        super().__init__(settings)
        self._certificate = peer_certificate
        self._authzid = ""
        self._asked = False

    def step(self, response: bytes) -> SaslOutcome:
        if self._asked:
            return Failure("EXTERNAL has a single round")
        self._asked = True
        try:
            self._authzid = response.decode("utf-8")
        except UnicodeDecodeError:
            return Failure("the authorization identity is not UTF-8")
        if "\x00" in self._authzid:
            return Failure("the authorization identity contains NUL")
        if not self.settings.tls or self._certificate is None:
            return Failure("EXTERNAL needs a TLS connection with a client certificate; none was presented")
        return VerifyClientCertificate(self._certificate)

    def supply(self, answer: object) -> SaslOutcome:
        if not isinstance(answer, CertificateVerdict):
            return Failure(f"the realm cannot verify certificates ({type(answer).__name__})")
        if answer.principal is None:
            return Failure(answer.reason or "the certificate was not accepted")
        if self._authzid and self._authzid != answer.principal:
            return Failure(
                f"authorization identity {self._authzid!r} differs from the certificate's "
                f"{answer.principal!r}; acting as another identity is not supported"
            )
        return Success(answer.principal)


register_mechanism(ExternalMechanism.name, ExternalMechanism, ())
