"""HTTP Bearer (RFC 6750) as a sans-IO mechanism."""

from __future__ import annotations

import pytest

from gridactor.security.http_auth.base import HttpAuthSettings, HttpFailure, HttpSuccess
from gridactor.security.http_auth.bearer import BearerMechanism
from gridactor.security.identity import Identity
from gridactor.security.sasl.oauthbearer import TokenAccepted, TokenCheck, TokenRejected

SETTINGS = HttpAuthSettings(realm="token-realm")


def test_challenge_without_a_token_has_no_error() -> None:
    assert BearerMechanism(SETTINGS).challenge() == ['Bearer realm="token-realm"']
    outcome = BearerMechanism(SETTINGS).authenticate("GET", "/", None)
    assert outcome == HttpFailure(
        401, "no credentials", (("WWW-Authenticate", 'Bearer realm="token-realm"'),)
    )


@pytest.mark.parametrize("header", ["Bearer abc.DEF~+/==", "bearer abc", "BEARER  abc ", b"Bearer abc"])
def test_valid_header_asks_the_realm_and_succeeds(header: str | bytes) -> None:
    mech = BearerMechanism(SETTINGS)
    asked = mech.authenticate("GET", "/rest/v2/caches", header)
    assert isinstance(asked, TokenCheck)
    identity = Identity("alice", "token-realm", frozenset({"admin"}))
    assert mech.supply(TokenAccepted(identity)) == HttpSuccess("alice", (), "BEARER_TOKEN")
    assert mech.established_identity == Identity("alice", "token-realm", frozenset({"admin"}), "BEARER_TOKEN")


def test_rejected_token_is_401_invalid_token() -> None:
    mech = BearerMechanism(SETTINGS)
    mech.authenticate("GET", "/", "Bearer abc")
    outcome = mech.supply(TokenRejected("the token has expired"))
    assert isinstance(outcome, HttpFailure)
    assert outcome.status == 401
    assert outcome.headers == (("WWW-Authenticate", 'Bearer realm="token-realm", error="invalid_token"'),)
    assert mech.established_identity is None


@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer a b", "Bearer ab\x00c", "Bearer " + "a" * 9000, "Bearerabc", "Bearer é"]
)
def test_malformed_header_is_400_invalid_request(header: str) -> None:
    outcome = BearerMechanism(SETTINGS).authenticate("GET", "/", header)
    assert isinstance(outcome, HttpFailure)
    assert outcome.status == 400
    assert 'error="invalid_request"' in outcome.headers[0][1]


def test_an_answer_without_a_question_never_succeeds() -> None:
    mech = BearerMechanism(SETTINGS)
    outcome = mech.supply(TokenAccepted(Identity("alice", "token-realm")))
    assert isinstance(outcome, HttpFailure)
