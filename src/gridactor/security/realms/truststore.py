"""The trust-store realm (spec 4.1.3): clients are the certificates a trust store lists.

Authentication is two gates. The TLS handshake verifies the client's certificate chain
against the trust store (every certificate in it is a trust anchor, see
:mod:`gridactor.server.tls`), so a stranger's, an expired or a not-yet-valid certificate
never completes the handshake. Then SASL EXTERNAL / HTTP CLIENT_CERT ask this realm to
vouch for the certificate: as Infinispan's key-store-backed realm does, the certificate
itself must be an entry of the trust store ("keystores that contain the public certificates
of all clients that are allowed to connect"). A certificate merely *signed* by a trusted CA
passes the handshake but is not an identity here. Validity is checked again at this point
(a long-lived connection may outlive its certificate).

The principal is the subject DN (``CN=admin,OU=server,O=org``). The realm has no groups:
roles come from the authorization layer's ``common-name-role-mapper``, which reads
:attr:`Identity.certificate_subject`.

:class:`CertificateOrPasswordRealm` combines this realm with a password realm (Infinispan
lets one ``<security-realm>`` hold a ``<truststore-realm>`` and a ``<properties-realm>``):
certificates for EXTERNAL / CLIENT_CERT, passwords for every other mechanism. A subject DN
known to the trust store is resolved by the certificate side first.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from gridactor.config.model import SecurityRealmConfig
from gridactor.errors import ConfigError
from gridactor.security.credentials import Credential
from gridactor.security.identity import Identity
from gridactor.security.realms.base import Realm, UnsupportedRealmRequest
from gridactor.security.sasl.base import RealmRequest
from gridactor.security.sasl.external import CertificateVerdict, VerifyClientCertificate

log = logging.getLogger("gridactor.security.truststore")

__all__ = ["CertificateOrPasswordRealm", "TrustStoreRealm", "truststore_realm_from_config"]


@dataclass(frozen=True, slots=True)
class _TrustSnapshot:
    by_fingerprint: dict[bytes, x509.Certificate]
    subjects: frozenset[str]


def _fingerprint(der: bytes) -> bytes:
    return hashlib.sha256(der).digest()


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class TrustStoreRealm:
    """Certificates of a trust store as identities. Thread-safe (the realm actor calls it from
    worker threads)."""

    def __init__(
        self,
        path: Path,
        password: str | None,
        *,
        security_realm: str,
        store_type: str | None = None,
        source: str = "",
        line: int = 0,
        clock: Callable[[], datetime.datetime] = _utc_now,
    ) -> None:
        self._path = path
        self._password = password
        self._store_type = store_type
        self._security_realm = security_realm
        self._source = source
        self._line = line
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        # Load at construction: a wrong password or a missing file stops the start, naming it.
        self._snapshot = self._load()

    @property
    def name(self) -> str:
        return self._security_realm

    @property
    def path(self) -> Path:
        return self._path

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            stat = os.stat(self._path)
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def _load(self) -> _TrustSnapshot:
        from gridactor.server.tls import certificate_subject, load_trusted_certificates

        stamp = self._file_stamp()
        certificates = load_trusted_certificates(
            self._path,
            self._password,
            store_type=self._store_type,
            source=self._source,
            line=self._line,
            element="truststore-realm",
        )
        self._stamp = stamp
        from cryptography.hazmat.primitives.serialization import Encoding

        return _TrustSnapshot(
            {_fingerprint(c.public_bytes(Encoding.DER)): c for c in certificates},
            frozenset(certificate_subject(c) for c in certificates),
        )

    def refresh(self) -> None:
        """Re-read the trust store when it changed; a broken new file keeps the last good one."""
        if self._file_stamp() == self._stamp:
            return
        with self._lock:
            try:
                self._snapshot = self._load()
                count = len(self._snapshot.subjects)
                log.info("trust store %s reloaded (%d certificates)", self._path, count)
            except ConfigError as exc:
                self._stamp = self._file_stamp()
                log.error("trust store %s not reloaded, keeping the old one: %s", self._path, exc.message)

    def credentials(self, username: str) -> Sequence[Credential] | None:
        return None  # no passwords here

    def verify_password(self, username: str, password: str) -> bool:
        return False

    def identity(self, username: str) -> Identity | None:
        if username not in self._snapshot.subjects:
            return None
        return Identity(name=username, realm=self._security_realm, certificate_subject=username)

    def knows_subject(self, subject: str) -> bool:
        return subject in self._snapshot.subjects

    def credential_kinds(self) -> frozenset[type]:
        return frozenset()

    def verify(self, der: bytes) -> CertificateVerdict:
        """Is this DER certificate a currently valid entry of the trust store?"""
        from gridactor.server.tls import certificate_subject

        try:
            certificate = x509.load_der_x509_certificate(der)
        except ValueError:
            return CertificateVerdict(None, "the client certificate is not a valid X.509 certificate")
        subject = certificate_subject(certificate)
        now = self._clock()
        if now < certificate.not_valid_before_utc:
            return CertificateVerdict(
                None, f"the certificate of {subject!r} is not valid before {certificate.not_valid_before_utc}"
            )
        if now > certificate.not_valid_after_utc:
            return CertificateVerdict(
                None, f"the certificate of {subject!r} expired on {certificate.not_valid_after_utc}"
            )
        if _fingerprint(der) not in self._snapshot.by_fingerprint:
            return CertificateVerdict(
                None, f"the certificate of {subject!r} is not in the trust store of realm '{self.name}'"
            )
        return CertificateVerdict(subject)

    def answer(self, request: RealmRequest) -> object:
        if isinstance(request, VerifyClientCertificate):
            return self.verify(request.certificate)
        raise UnsupportedRealmRequest(f"a trust-store realm cannot answer {type(request).__name__}")


class CertificateOrPasswordRealm:
    """A trust-store realm and a password realm behind one ``<security-realm>``."""

    def __init__(self, certificates: TrustStoreRealm, passwords: Realm) -> None:
        self.certificates = certificates
        self.passwords = passwords

    @property
    def name(self) -> str:
        return self.passwords.name

    def refresh(self) -> None:
        self.certificates.refresh()
        self.passwords.refresh()

    def credentials(self, username: str) -> Sequence[Credential] | None:
        return self.passwords.credentials(username)

    def verify_password(self, username: str, password: str) -> bool:
        return self.passwords.verify_password(username, password)

    def identity(self, username: str) -> Identity | None:
        if self.certificates.knows_subject(username):
            return self.certificates.identity(username)
        return self.passwords.identity(username)

    def credential_kinds(self) -> frozenset[type]:
        return self.passwords.credential_kinds()

    def answer(self, request: RealmRequest) -> object:
        if isinstance(request, VerifyClientCertificate):
            return self.certificates.answer(request)
        return self.passwords.answer(request)


def truststore_realm_from_config(config: SecurityRealmConfig, source: str) -> TrustStoreRealm:
    """The trust store of ``<truststore-realm>``: its own ``path`` (the 11.0 form of the spec),
    else the ``<ssl><truststore>`` of the realm's server identity (later Infinispan forms)."""
    trust = config.truststore_realm
    assert trust is not None
    if trust.path is not None:
        return TrustStoreRealm(
            trust.path, trust.password, security_realm=config.name, source=source, line=trust.line
        )
    ssl_identity = config.server_identities.ssl if config.server_identities else None
    ts = ssl_identity.truststore if ssl_identity is not None else None
    if ts is None or ts.path is None:
        raise ConfigError(
            "a truststore-realm needs a path, or an <ssl><truststore path=…> in the realm's server "
            "identities",
            file=source,
            line=trust.line,
            element="truststore-realm",
        )
    return TrustStoreRealm(
        ts.path, ts.password, security_realm=config.name, store_type=ts.type, source=source, line=ts.line
    )
