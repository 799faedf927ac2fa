"""GSSAPI, GS2-KRB5 and SPNEGO server mechanisms against a real MIT KDC (k5test, loopback).

The mechanisms are driven with bytes, in-process; their realm questions are answered by a
real :class:`KerberosRealm` reading the fixture's keytabs. Clients are our own
(``gridactor.client.kerberos``) and plain python-gssapi for SPNEGO.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

import gssapi
import gssapi.raw
import pytest
from gssapi.raw.misc import GSSError

from gridactor.client.hotrod import HotRodAuthenticationError
from gridactor.client.kerberos import Gs2Krb5Client, GssapiClient
from gridactor.security.http_auth.base import HttpAuthSettings, HttpFailure, HttpSuccess
from gridactor.security.http_auth.spnego import SpnegoMechanism
from gridactor.security.kerberos import (
    AcceptorCredentialsRequest,
    AcceptorUnavailable,
    KerberosRealm,
    KerberosServerIdentity,
)
from gridactor.security.sasl.base import Challenge, Failure, SaslMechanism, SaslOutcome, SaslSettings, Success
from gridactor.security.sasl.gs2 import Gs2Krb5Mechanism
from gridactor.security.sasl.gssapi_mech import GssapiMechanism
from tests.fixtures.kerberos import HOTROD_PRINCIPAL, HTTP_PRINCIPAL, OTHER_PRINCIPAL, KerberosTestRealm

SPNEGO = gssapi.OID.from_int_seq("1.3.6.1.5.5.2")


@pytest.fixture(scope="module")
def realm(kerberos_realm: KerberosTestRealm) -> KerberosRealm:
    identities = [
        KerberosServerIdentity(HOTROD_PRINCIPAL, kerberos_realm.hotrod_keytab, required=True),
        KerberosServerIdentity(HTTP_PRINCIPAL, kerberos_realm.http_keytab, required=True),
    ]
    return KerberosRealm("default", identities)


@pytest.fixture(scope="module")
def alice(kerberos_realm: KerberosTestRealm) -> gssapi.Credentials:
    return kerberos_realm.user_credentials("alice")


@pytest.fixture(scope="module")
def alice_spnego(kerberos_realm: KerberosTestRealm) -> gssapi.Credentials:
    return kerberos_realm.user_credentials("alice", spnego=True)


def settings(**kw: object) -> SaslSettings:
    return SaslSettings(realm="default", server_principal=HOTROD_PRINCIPAL, **kw)  # type: ignore[arg-type]


def answer(mechanism: SaslMechanism, outcome: SaslOutcome, realm: KerberosRealm) -> SaslOutcome:
    while isinstance(outcome, AcceptorCredentialsRequest):
        outcome = mechanism.supply(realm.answer(outcome))
    return outcome


def run_gssapi(server: SaslMechanism, client: GssapiClient, realm: KerberosRealm) -> SaslOutcome:
    outcome = answer(server, server.step(client.initial_response()), realm)
    for _ in range(5):
        if not isinstance(outcome, Challenge):
            return outcome
        response = client.evaluate(outcome.data)
        outcome = answer(server, server.step(response or b""), realm)
    raise AssertionError("no end to the exchange")


@pytest.mark.parametrize("qop", ["auth", "auth-int", "auth-conf"])
def test_gssapi_negotiates_each_layer(realm: KerberosRealm, alice: gssapi.Credentials, qop: str) -> None:
    server = GssapiMechanism(settings(qop=("auth-conf", "auth-int", "auth")))
    client = GssapiClient(HOTROD_PRINCIPAL, alice, qop=(qop,))
    outcome = run_gssapi(server, client, realm)
    assert outcome == Success("alice")
    client.complete(b"")
    assert server.negotiated_qop == client.negotiated_qop == qop
    frame = b"\xa0\x01hot rod frame"
    if qop == "auth":
        assert server.wrap(frame) == frame
        return
    wrapped = client.wrap(frame)
    assert server.unwrap(wrapped) == frame
    assert client.unwrap(server.wrap(frame)) == frame
    assert (frame in wrapped) is (qop == "auth-int")  # confidentiality hides the bytes
    assert server.max_send_size is not None
    assert 0 < server.max_send_size < 65536


def test_gssapi_refuses_a_layer_it_did_not_offer(realm: KerberosRealm, alice: gssapi.Credentials) -> None:
    server = GssapiMechanism(settings(qop=("auth",)))
    client = GssapiClient(HOTROD_PRINCIPAL, alice, qop=("auth-conf",))
    with pytest.raises(HotRodAuthenticationError, match="no acceptable layer"):
        run_gssapi(server, client, realm)


def test_gssapi_tampered_layer_buffer_is_a_sasl_error(
    realm: KerberosRealm, alice: gssapi.Credentials
) -> None:
    server = GssapiMechanism(settings(qop=("auth-int",)))
    client = GssapiClient(HOTROD_PRINCIPAL, alice, qop=("auth-int",))
    assert run_gssapi(server, client, realm) == Success("alice")
    wrapped = bytearray(client.wrap(b"payload"))
    wrapped[-1] ^= 1
    from gridactor.security.sasl.base import SaslError

    with pytest.raises(SaslError, match="GSS unwrap failed"):
        server.unwrap(bytes(wrapped))


def test_gssapi_refuses_another_authzid(realm: KerberosRealm, alice: gssapi.Credentials) -> None:
    server = GssapiMechanism(settings())
    client = GssapiClient(HOTROD_PRINCIPAL, alice, qop=("auth",), authzid="bob")
    outcome = run_gssapi(server, client, realm)
    assert isinstance(outcome, Failure)
    assert "may not act as 'bob'" in outcome.reason
    ok = GssapiClient(HOTROD_PRINCIPAL, alice, qop=("auth",), authzid="alice@INFINISPAN.ORG")
    assert run_gssapi(GssapiMechanism(settings()), ok, realm) == Success("alice")


@pytest.mark.parametrize("target", [HTTP_PRINCIPAL, OTHER_PRINCIPAL])
def test_gssapi_ticket_for_another_service_is_refused(
    realm: KerberosRealm, alice: gssapi.Credentials, target: str
) -> None:
    outcome = run_gssapi(GssapiMechanism(settings()), GssapiClient(target, alice), realm)
    assert isinstance(outcome, Failure)
    assert "GSS accept failed" in outcome.reason


def test_gssapi_garbage_token_fails_at_once(realm: KerberosRealm) -> None:
    server = GssapiMechanism(settings())
    outcome = answer(server, server.step(b"\x60\x03\x06\x01\x00"), realm)
    assert isinstance(outcome, Failure)
    assert "GSS accept failed" in outcome.reason
    assert isinstance(GssapiMechanism(settings()).step(b""), Failure)


def test_replayed_token_is_refused(realm: KerberosRealm, alice: gssapi.Credentials) -> None:
    token = GssapiClient(HOTROD_PRINCIPAL, alice).initial_response()
    first = GssapiMechanism(settings())
    assert isinstance(answer(first, first.step(token), realm), Challenge)
    second = GssapiMechanism(settings())
    outcome = answer(second, second.step(token), realm)
    assert isinstance(outcome, Failure)
    assert "replay" in outcome.reason.lower()


def test_expired_ticket_is_refused(
    kerberos_realm: KerberosTestRealm, realm: KerberosRealm, tmp_path: Path
) -> None:
    """A 3 s ticket (1 s expired before its first use on a loaded machine): its token,
    presented once the ticket and the 2 s clock skew are over,
    is refused by the acceptor; and the client itself then cannot make a new token."""
    ccache = tmp_path / "short.cc"
    kerberos_realm.realm.kinit(
        f"bob@{kerberos_realm.name}", "bob-krb-Secret2", flags=["-l", "3s", "-c", str(ccache)], verbose=False
    )
    credentials = gssapi.Credentials(usage="initiate", store={b"ccache": f"FILE:{ccache}".encode()})
    end = time.time() + credentials.lifetime
    token = GssapiClient(HOTROD_PRINCIPAL, credentials).initial_response()
    time.sleep(max(0.0, end + 2.5 - time.time()))
    server = GssapiMechanism(settings())
    outcome = answer(server, server.step(token), realm)
    assert isinstance(outcome, Failure)
    assert "expired" in outcome.reason.lower() or "skew" in outcome.reason.lower(), outcome.reason
    with pytest.raises(GSSError, match="expired"):
        GssapiClient(HOTROD_PRINCIPAL, credentials).initial_response()


def run_gs2(client: Gs2Krb5Client, realm: KerberosRealm) -> SaslOutcome:
    server = Gs2Krb5Mechanism(settings())
    return answer(server, server.step(client.initial_response()), realm)


def test_gs2_authenticates_with_mutual_token(realm: KerberosRealm, alice: gssapi.Credentials) -> None:
    client = Gs2Krb5Client(HOTROD_PRINCIPAL, alice)
    outcome = run_gs2(client, realm)
    assert isinstance(outcome, Success)
    assert outcome.username == "alice"
    assert outcome.final_data
    client.complete(outcome.final_data)  # verifies the server's AP-REP


def test_gs2_refuses_a_client_that_does_not_bind(realm: KerberosRealm, alice: gssapi.Credentials) -> None:
    outcome = run_gs2(Gs2Krb5Client(HOTROD_PRINCIPAL, alice, bind=False), realm)
    assert isinstance(outcome, Failure)
    assert "channel bindings are required" in outcome.reason


def test_gs2_refuses_bindings_of_another_header(realm: KerberosRealm, alice: gssapi.Credentials) -> None:
    client = Gs2Krb5Client(HOTROD_PRINCIPAL, alice, authzid="alice", bound_header=b"n,,")
    outcome = run_gs2(client, realm)
    assert isinstance(outcome, Failure)
    assert "GSS accept failed" in outcome.reason


def test_gs2_authzid(realm: KerberosRealm, alice: gssapi.Credentials) -> None:
    assert run_gs2(Gs2Krb5Client(HOTROD_PRINCIPAL, alice, authzid="alice"), realm) == Success(
        "alice", ANY_DATA
    )
    outcome = run_gs2(Gs2Krb5Client(HOTROD_PRINCIPAL, alice, authzid="bob"), realm)
    assert isinstance(outcome, Failure)
    assert "may not act as" in outcome.reason


class _AnyData:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, bytes) and len(other) > 0


ANY_DATA: bytes = _AnyData()  # type: ignore[assignment]


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b"F,n,,\x01", "non-standard"),
        (b"p=tls-unique,,\x01", "GS2-KRB5-PLUS is not offered"),
        (b"x,,\x01", "channel-binding flag"),
        (b"n,b=alice,\x01", "authzid"),
        (b"n,,", "no context token"),
        (b"no header", "no GS2 header"),
    ],
)
def test_gs2_malformed_headers(message: bytes, reason: str) -> None:
    outcome = Gs2Krb5Mechanism(settings()).step(message)
    assert isinstance(outcome, Failure)
    assert reason in outcome.reason


def test_gs2_token_framing_round_trips(alice: gssapi.Credentials) -> None:
    from gridactor.security.sasl.gs2 import frame_token, unframe_token

    context = gssapi.SecurityContext(
        name=gssapi.Name(HOTROD_PRINCIPAL, gssapi.NameType.kerberos_principal), creds=alice, usage="initiate"
    )
    token = bytes(context.step())
    assert frame_token(unframe_token(token)) == token


# ---------------------------------------------------------------- SPNEGO


def spnego_token(
    credentials: gssapi.Credentials, target: str = HTTP_PRINCIPAL
) -> tuple[gssapi.SecurityContext, str]:
    context = gssapi.SecurityContext(
        name=gssapi.Name(target, gssapi.NameType.kerberos_principal),
        creds=credentials,
        usage="initiate",
        mech=SPNEGO,
        flags=gssapi.RequirementFlag.mutual_authentication,
    )
    return context, "Negotiate " + base64.b64encode(context.step()).decode()


def spnego(realm: KerberosRealm, header: str, principal: str | None = HTTP_PRINCIPAL) -> object:
    mechanism = SpnegoMechanism(HttpAuthSettings(server_principal=principal))
    outcome = mechanism.authenticate("GET", "/rest/v2/caches", header)
    if isinstance(outcome, AcceptorCredentialsRequest):
        outcome = mechanism.supply(realm.answer(outcome))
    return outcome


def test_spnego_success_carries_the_mutual_token(
    realm: KerberosRealm, alice_spnego: gssapi.Credentials
) -> None:
    context, header = spnego_token(alice_spnego)
    outcome = spnego(realm, header)
    assert isinstance(outcome, HttpSuccess)
    assert outcome.username == "alice"
    [(name, value)] = outcome.response_headers
    assert name == "WWW-Authenticate"
    assert value.startswith("Negotiate ")
    context.step(base64.b64decode(value.split()[1]))
    assert context.complete
    assert SpnegoMechanism(HttpAuthSettings()).challenge() == ["Negotiate"]


def test_spnego_uses_the_first_http_identity_without_server_principal(
    realm: KerberosRealm, alice_spnego: gssapi.Credentials
) -> None:
    assert isinstance(spnego(realm, spnego_token(alice_spnego)[1], principal=None), HttpSuccess)


@pytest.mark.parametrize(
    ("header", "status"),
    [
        ("Negotiate " + base64.b64encode(b"NTLMSSP\x00\x01\x00\x00\x00").decode(), 401),
        ("Negotiate not*base64", 400),
        ("Negotiate", 401),
        ("Negotiate " + base64.b64encode(b"\x60\x03\x06\x01\x00").decode(), 401),
    ],
)
def test_spnego_refuses_bad_tokens(realm: KerberosRealm, header: str, status: int) -> None:
    outcome = spnego(realm, header)
    assert isinstance(outcome, HttpFailure)
    assert outcome.status == status
    assert ("WWW-Authenticate", "Negotiate") in outcome.headers


def test_spnego_ticket_for_hotrod_is_refused(realm: KerberosRealm, alice_spnego: gssapi.Credentials) -> None:
    outcome = spnego(realm, spnego_token(alice_spnego, HOTROD_PRINCIPAL)[1])
    assert isinstance(outcome, HttpFailure)
    assert "GSS accept failed" in outcome.reason


def test_spnego_replay_is_refused(realm: KerberosRealm, alice_spnego: gssapi.Credentials) -> None:
    header = spnego_token(alice_spnego)[1]
    assert isinstance(spnego(realm, header), HttpSuccess)
    outcome = spnego(realm, header)
    assert isinstance(outcome, HttpFailure)
    assert "replay" in outcome.reason.lower()


def test_unknown_server_principal_is_unavailable(realm: KerberosRealm) -> None:
    answer_ = realm.answer(AcceptorCredentialsRequest("hotrod", "hotrod/elsewhere@INFINISPAN.ORG"))
    assert isinstance(answer_, AcceptorUnavailable)
