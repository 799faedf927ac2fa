"""Trust-store realm, SASL EXTERNAL and HTTP CLIENT_CERT with real certificates (no sockets)."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from gridactor.errors import ConfigError
from gridactor.security.http_auth.base import HttpAuthSettings, HttpFailure, HttpSuccess
from gridactor.security.http_auth.client_cert import ClientCertMechanism
from gridactor.security.realms.base import UnsupportedRealmRequest
from gridactor.security.realms.properties import PropertiesRealm
from gridactor.security.realms.truststore import CertificateOrPasswordRealm, TrustStoreRealm
from gridactor.security.sasl.base import Failure, RealmRequest, SaslSettings, Success
from gridactor.security.sasl.external import CertificateVerdict, ExternalMechanism, VerifyClientCertificate
from gridactor.security.sasl.registry import MECHANISMS, credential_kinds
from tests.unit.tls.helpers import PASSWORD, Pki, make_pki, write_pkcs12_truststore


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def realm(pki: Pki, tmp_path: Path) -> TrustStoreRealm:
    store = write_pkcs12_truststore(
        tmp_path / "trust.p12", [pki.alice.certificate, pki.expired.certificate, pki.future.certificate]
    )
    return TrustStoreRealm(store, PASSWORD, security_realm="default")


def test_listed_certificate_is_the_subject_dn(realm: TrustStoreRealm, pki: Pki) -> None:
    verdict = realm.verify(pki.alice.der)
    assert verdict == CertificateVerdict(pki.alice.subject)
    assert verdict.principal is not None
    assert verdict.principal.startswith("CN=alice,")
    identity = realm.identity(pki.alice.subject)
    assert identity is not None
    assert identity.name == identity.certificate_subject == pki.alice.subject
    assert identity.groups == frozenset()
    assert realm.identity("alice") is None


def test_unlisted_expired_and_future_certificates_are_refused(realm: TrustStoreRealm, pki: Pki) -> None:
    assert "not in the trust store" in realm.verify(pki.carol.der).reason
    assert "not in the trust store" in realm.verify(pki.stranger.der).reason
    assert "expired on" in realm.verify(pki.expired.der).reason
    assert "not valid before" in realm.verify(pki.future.der).reason
    assert "not a valid X.509" in realm.verify(b"\x30\x03junk").reason
    with pytest.raises(UnsupportedRealmRequest):
        realm.answer(RealmRequest())
    assert realm.credentials("alice") is None
    assert realm.verify_password("alice", "x") is False


def test_wrong_truststore_password_names_the_file(pki: Pki, tmp_path: Path) -> None:
    store = write_pkcs12_truststore(tmp_path / "trust.p12", [pki.alice.certificate])
    with pytest.raises(ConfigError, match=r"trust.p12: wrong password"):
        TrustStoreRealm(store, "nope", security_realm="default", source="s.xml", line=4)


def test_refresh_picks_up_a_new_store_and_keeps_the_old_on_error(pki: Pki, tmp_path: Path) -> None:
    store = write_pkcs12_truststore(tmp_path / "trust.p12", [pki.alice.certificate])
    realm = TrustStoreRealm(store, PASSWORD, security_realm="default")
    assert realm.verify(pki.carol.der).principal is None
    write_pkcs12_truststore(store, [pki.alice.certificate, pki.carol.certificate])
    realm.refresh()
    assert realm.verify(pki.carol.der).principal == pki.carol.subject
    store.write_bytes(b"broken")
    realm.refresh()
    assert realm.verify(pki.carol.der).principal == pki.carol.subject


def test_validity_is_checked_at_authentication_time(pki: Pki, tmp_path: Path) -> None:
    store = write_pkcs12_truststore(tmp_path / "trust.p12", [pki.alice.certificate])
    later = pki.alice.certificate.not_valid_after_utc + datetime.timedelta(days=1)
    realm = TrustStoreRealm(store, PASSWORD, security_realm="default", clock=lambda: later)
    assert "expired" in realm.verify(pki.alice.der).reason


# ---------------------------------------------------------------- EXTERNAL


def _external(certificate: bytes | None, *, tls: bool = True) -> ExternalMechanism:
    return ExternalMechanism(SaslSettings(realm="default", tls=tls), peer_certificate=certificate)


def test_external_completes_in_one_round(realm: TrustStoreRealm, pki: Pki) -> None:
    assert MECHANISMS["EXTERNAL"] is ExternalMechanism
    assert credential_kinds("EXTERNAL") == ()
    mechanism = _external(pki.alice.der)
    request = mechanism.step(b"")
    assert isinstance(request, VerifyClientCertificate)
    assert "bytes" in repr(request)
    outcome = mechanism.supply(realm.answer(request))
    assert outcome == Success(pki.alice.subject, None)  # -> `01 00` on the wire
    assert isinstance(mechanism.step(b""), Failure)  # single round


def test_external_authzid_must_be_the_certificate_itself(realm: TrustStoreRealm, pki: Pki) -> None:
    same = _external(pki.alice.der)
    request = same.step(pki.alice.subject.encode())
    assert isinstance(request, VerifyClientCertificate)
    assert isinstance(same.supply(realm.answer(request)), Success)
    other = _external(pki.alice.der)
    request = other.step(b"admin")
    assert isinstance(request, VerifyClientCertificate)
    outcome = other.supply(realm.answer(request))
    assert isinstance(outcome, Failure)
    assert "not supported" in outcome.reason


@pytest.mark.parametrize(("certificate", "tls"), [(None, True), (b"\x30", False)])
def test_external_without_a_certificate_fails(certificate: bytes | None, tls: bool) -> None:
    outcome = _external(certificate, tls=tls).step(b"")
    assert isinstance(outcome, Failure)
    assert "client certificate" in outcome.reason


def test_external_refused_certificate_reason(realm: TrustStoreRealm, pki: Pki) -> None:
    mechanism = _external(pki.carol.der)
    request = mechanism.step(b"")
    assert isinstance(request, VerifyClientCertificate)
    outcome = mechanism.supply(realm.answer(request))
    assert isinstance(outcome, Failure)
    assert "not in the trust store" in outcome.reason
    assert isinstance(_external(pki.alice.der).supply(object()), Failure)


# ---------------------------------------------------------------- CLIENT_CERT


def test_client_cert_mechanism(realm: TrustStoreRealm, pki: Pki) -> None:
    settings = HttpAuthSettings(realm="default")
    assert ClientCertMechanism(settings).challenge() == []
    assert isinstance(ClientCertMechanism(settings).authenticate("GET", "/", None), HttpFailure)
    mechanism = ClientCertMechanism(settings, peer_certificate=pki.alice.der)
    request = mechanism.authenticate("GET", "/rest/v2/caches", None)
    assert isinstance(request, VerifyClientCertificate)
    assert mechanism.supply(realm.answer(request)) == HttpSuccess(pki.alice.subject, mechanism="CLIENT_CERT")
    refused = ClientCertMechanism(settings, peer_certificate=pki.expired.der)
    request = refused.authenticate("GET", "/", None)
    assert isinstance(request, VerifyClientCertificate)
    outcome = refused.supply(realm.answer(request))
    assert isinstance(outcome, HttpFailure)
    assert outcome.status == 401


# ---------------------------------------------------------------- certificate + password realm


def test_composite_realm_routes_by_kind(realm: TrustStoreRealm, pki: Pki, tmp_path: Path) -> None:
    users = tmp_path / "users.properties"
    users.write_text("bob=bob-pass\n")
    groups = tmp_path / "groups.properties"
    groups.write_text("bob=reader\n")
    passwords = PropertiesRealm(users, groups, security_realm="default", plain_text=True)
    both = CertificateOrPasswordRealm(realm, passwords)
    assert both.name == "default"
    assert both.verify_password("bob", "bob-pass")
    bob = both.identity("bob")
    assert bob is not None
    assert bob.groups == frozenset({"reader"})
    assert bob.certificate_subject is None
    verdict = both.answer(VerifyClientCertificate(pki.alice.der))
    assert isinstance(verdict, CertificateVerdict)
    assert verdict.principal == pki.alice.subject
    alice = both.identity(pki.alice.subject)
    assert alice is not None
    assert alice.certificate_subject == pki.alice.subject
    assert both.credential_kinds() == passwords.credential_kinds()
    both.refresh()
