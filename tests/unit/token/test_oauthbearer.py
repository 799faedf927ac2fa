"""OAUTHBEARER (RFC 7628) server and client mechanisms, with bytes only."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridactor.client.hotrod import HotRodAuthenticationError
from gridactor.client.oauthbearer import OAuthBearerClient
from gridactor.security.identity import Identity
from gridactor.security.sasl.base import Challenge, Failure, SaslSettings, Success
from gridactor.security.sasl.oauthbearer import (
    OAuthBearerMechanism,
    OAuthBearerParseError,
    TokenAccepted,
    TokenCheck,
    TokenRejected,
    error_challenge,
    parse_client_response,
)

# RFC 7628 §4.1 initial client response (security-vectors.md §1.8).
RFC_4_1 = base64.b64decode(
    "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVy"
    "IHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB"
)
RFC_TOKEN = "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="
ALICE = Identity("alice", "token-realm", frozenset({"admin"}))


def mechanism() -> OAuthBearerMechanism:
    return OAuthBearerMechanism(SaslSettings(realm="token-realm"))


def message(pairs: str, header: str = "n,,") -> bytes:
    return (header + "\x01" + pairs + "\x01").encode()


def test_rfc7628_initial_response_vector() -> None:
    parsed = parse_client_response(RFC_4_1)
    assert parsed.authzid == "user@example.com"
    assert parsed.token == RFC_TOKEN
    assert parsed.pairs == {"host": "server.example.com", "port": "143"}
    assert RFC_TOKEN not in repr(parsed)


def test_rfc7628_error_challenge_vector() -> None:
    expected = base64.b64decode(
        "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NvcGUiOiJleGFtcGxlX3Njb3BlIiwib3BlbmlkLWNvbmZpZ3VyYXRpb24i"
        "OiJodHRwczovL2V4YW1wbGUuY29tLy53ZWxsLWtub3duL29wZW5pZC1jb25maWd1cmF0aW9uIn0="
    )
    got = error_challenge(
        scope="example_scope", openid_configuration="https://example.com/.well-known/openid-configuration"
    )
    assert got == expected


def test_success_carries_the_identity_from_the_token() -> None:
    mech = mechanism()
    asked = mech.step(message("auth=Bearer abc.DEF-123\x01"))
    assert isinstance(asked, TokenCheck)
    assert asked.token == "abc.DEF-123"
    assert "abc" not in repr(asked)
    assert mech.supply(TokenAccepted(ALICE)) == Success("alice")
    assert mech.established_identity == Identity("alice", "token-realm", frozenset({"admin"}), "OAUTHBEARER")


def test_rejected_token_sends_json_error_then_fails_on_the_dummy_response() -> None:
    mech = mechanism()
    assert isinstance(mech.step(message("auth=Bearer abc\x01")), TokenCheck)
    challenge = mech.supply(TokenRejected("the token is not active"))
    assert challenge == Challenge(b'{"status":"invalid_token"}')
    outcome = mech.step(b"\x01")
    assert outcome == Failure("OAUTHBEARER: the token is not active")
    assert mech.established_identity is None
    # The exchange is over: nothing loops back to asking the realm.
    assert isinstance(mech.step(message("auth=Bearer abc\x01")), Failure)


def test_anything_but_the_dummy_response_after_the_error_fails() -> None:
    mech = mechanism()
    mech.step(message("auth=Bearer abc\x01"))
    mech.supply(TokenRejected("inactive"))
    outcome = mech.step(message("auth=Bearer other\x01"))
    assert isinstance(outcome, Failure)
    assert "did not acknowledge" in outcome.reason


def test_authzid_must_be_the_token_principal() -> None:
    mech = mechanism()
    mech.step(message("auth=Bearer abc\x01", header="n,a=admin,"))
    assert isinstance(mech.supply(TokenAccepted(ALICE)), Challenge)
    assert "differs" in mech.step(b"\x01").reason  # type: ignore[union-attr]
    same = mechanism()
    same.step(message("auth=Bearer abc\x01", header="n,a=alice,"))
    assert same.supply(TokenAccepted(ALICE)) == Success("alice")


def test_empty_initial_response_gets_an_empty_challenge_once() -> None:
    mech = mechanism()
    assert mech.step(b"") == Challenge(b"")
    assert isinstance(mech.step(message("auth=Bearer abc\x01")), TokenCheck)


@pytest.mark.parametrize(
    "raw",
    [
        b"",  # nothing
        b"\x01",  # the dummy response as a first message
        message("auth=Bearer abc\x01", header="F,n,,"),  # non-standard flag
        message("auth=Bearer abc\x01", header="p=tls-unique,,"),  # channel binding
        message("auth=Bearer abc\x01", header="x,,"),
        message("auth=Bearer abc\x01", header="n,b=x,"),
        message("auth=Bearer abc\x01", header="n,a=a=2Xb,"),  # bad saslname escape
        message("host=x\x01"),  # missing auth=
        message("auth=token\x01"),  # no Bearer scheme
        message("auth=Bearer\x01"),
        message("auth=Bearer a b\x01"),
        message("auth=Bearer abc\x01auth=Bearer def\x01"),  # two auth keys
        message("k3y=v\x01auth=Bearer abc\x01"),  # key with digits
        message("x=a\x00b\x01auth=Bearer abc\x01"),  # NUL in a value
        b"n,,\x01auth=Bearer abc\x01",  # missing final ^A
        b"n,,\x01auth=Bearer abc",
        b"n,,auth=Bearer abc\x01\x01",  # no kvsep after the header
        b"n,," + b"\x01auth=Bearer " + b"a" * 20000 + b"\x01\x01",  # oversized
    ],
)
def test_malformed_messages_fail_without_asking_the_realm(raw: bytes) -> None:
    mech = mechanism()
    outcome = mech.step(raw)
    if raw == b"":
        outcome = mech.step(b"")
    assert isinstance(outcome, Failure), outcome


def test_lowercase_bearer_and_y_flag_and_escaped_authzid_are_accepted() -> None:
    parsed = parse_client_response(message("auth=bearer  abc==\x01", header="y,a=a=2Cb=3Dc,"))
    assert (parsed.authzid, parsed.token) == ("a,b=c", "abc==")


@given(st.binary(max_size=200))
def test_parser_only_raises_its_own_error(raw: bytes) -> None:
    try:
        parse_client_response(raw)
    except OAuthBearerParseError:
        pass


def test_client_and_server_mechanisms_agree() -> None:
    client = OAuthBearerClient("tok-EN_1", authzid="a,b", host="h", port=1)
    server = mechanism()
    asked = server.step(client.initial_response())
    assert isinstance(asked, TokenCheck)
    assert asked.token == "tok-EN_1"
    assert parse_client_response(client.initial_response()).authzid == "a,b"
    challenge = server.supply(TokenRejected("nope"))
    assert isinstance(challenge, Challenge)
    assert client.evaluate(challenge.data) == b"\x01"
    assert client.server_error == {"status": "invalid_token"}
    assert isinstance(server.step(b"\x01"), Failure)
    with pytest.raises(HotRodAuthenticationError):
        client.complete(b"")
    assert "tok-EN_1" not in repr(client)


def test_client_refuses_a_non_token_and_a_non_json_challenge() -> None:
    with pytest.raises(ValueError, match="b64token"):
        OAuthBearerClient("has space")
    client = OAuthBearerClient("abc")
    client.initial_response()
    with pytest.raises(HotRodAuthenticationError):
        client.evaluate(b"not json")
    assert json.loads(error_challenge()) == {"status": "invalid_token"}
