"""Arbitrary bytes at any step never raise: the only outcomes are protocol outcomes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gridactor.security.credentials import ClearPassword, make_digest, make_scram
from gridactor.security.sasl.base import (
    Challenge,
    Failure,
    NeedCredentials,
    NeedPasswordCheck,
    RealmRequest,
    SaslError,
    SaslMechanism,
    SaslSettings,
    Success,
)
from gridactor.security.sasl.digest import DigestMechanism
from gridactor.security.sasl.registry import MECHANISMS, create_mechanism
from tests.unit.sasl.helpers import answer

SETTINGS = SaslSettings(realm="default", qop=("auth", "auth-int", "auth-conf"))
NAMES = sorted(MECHANISMS)


def _users(name: str) -> dict[str, list[object]]:
    creds: list[object] = [ClearPassword("secret")]
    if name.startswith("DIGEST"):
        creds.append(make_digest(name.lower(), "bob", "default", "secret"))
    if name.startswith("SCRAM"):
        creds.append(make_scram(name.lower(), "secret", b"s" * 12, 4096))
    return {"bob": creds}


def _drive(mech: SaslMechanism, name: str, messages: list[bytes]) -> None:
    for message in messages:
        outcome = answer(mech, mech.step(message), _users(name))  # type: ignore[arg-type]
        # A RealmRequest (Kerberos acceptor credentials, a token check) is a protocol outcome too.
        protocol_outcomes = Challenge | Failure | NeedCredentials | NeedPasswordCheck | Success | RealmRequest
        assert isinstance(outcome, protocol_outcomes)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(NAMES), st.lists(st.binary(max_size=300), min_size=1, max_size=4))
def test_arbitrary_bytes_from_the_start(name: str, messages: list[bytes]) -> None:
    _drive(create_mechanism(name, SETTINGS), name, messages)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(NAMES), st.binary(max_size=400))
def test_arbitrary_second_message_after_a_valid_first(name: str, message: bytes) -> None:
    mech = create_mechanism(name, SETTINGS)
    if name.startswith("SCRAM"):
        first = answer(mech, mech.step(b"n,,n=bob,r=abc"), _users(name))  # type: ignore[arg-type]
    else:
        first = mech.step(b"")
    if isinstance(first, Challenge):
        outcome = mech.step(message)
        assert isinstance(outcome, Failure | NeedCredentials | NeedPasswordCheck)
        if isinstance(outcome, NeedCredentials):
            final = answer(mech, outcome, _users(name))  # type: ignore[arg-type]
            assert isinstance(final, Failure)  # random bytes never authenticate
    else:
        assert isinstance(first, Failure)  # PLAIN: an empty message is malformed


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["DIGEST-MD5", "DIGEST-SHA-256"]), st.sampled_from([None, "rc4", "3des"]), st.binary())
def test_arbitrary_wrapped_buffers_raise_only_sasl_error(name: str, cipher: str | None, data: bytes) -> None:
    from gridactor.client.sasl import DigestClient

    qop = "auth-conf" if cipher else "auth-int"
    mech = create_mechanism(name, SETTINGS)
    assert isinstance(mech, DigestMechanism)
    client = DigestClient(name, "bob", "secret", qop=(qop,), ciphers=(cipher,) if cipher else ())
    challenge = mech.step(b"")
    assert isinstance(challenge, Challenge)
    outcome = answer(mech, mech.step(client.respond(challenge.data)), _users(name))  # type: ignore[arg-type]
    client.complete(getattr(outcome, "final_data", None))
    try:
        mech.unwrap(data)
    except SaslError:
        pass  # the only exception a forged buffer may cause
