from __future__ import annotations

import base64
import re

import pytest

from gridactor.security.credentials import ClearPassword, make_digest
from gridactor.security.sasl.base import Challenge, NeedCredentials, SaslSettings, Success
from gridactor.security.sasl.cram_md5 import CramMd5Mechanism
from tests.unit.sasl.helpers import assert_failure, fixed, load, run

VECTOR = load("cram_md5.json")
SETTINGS = SaslSettings(realm="default", server_name=VECTOR["server_name"])
USERS = {"tim": [ClearPassword(VECTOR["secret"])]}


def _started(settings: SaslSettings = SETTINGS) -> tuple[CramMd5Mechanism, bytes]:
    mech = CramMd5Mechanism(settings, nonce_factory=fixed(VECTOR["nonce"]))
    challenge = mech.step(b"")
    assert isinstance(challenge, Challenge)
    return mech, challenge.data


def test_rfc2195_exchange() -> None:
    mech, challenge = _started()
    assert challenge == base64.b64decode(VECTOR["challenge_b64"])
    outcome = mech.step(base64.b64decode(VECTOR["response_b64"]))
    assert outcome == NeedCredentials("tim", (ClearPassword,))
    assert mech.supply_credentials(USERS["tim"]) == Success("tim")


def test_challenges_are_unique() -> None:
    settings = SaslSettings(realm="default")
    challenges = set()
    for _ in range(50):
        challenge = CramMd5Mechanism(settings).step(b"")
        assert isinstance(challenge, Challenge)
        assert re.fullmatch(rb"<\d+\.\d+@gridactor>", challenge.data)
        challenges.add(challenge.data)
    assert len(challenges) == 50


def test_needs_a_clear_password() -> None:
    mech, _ = _started()
    mech.step(base64.b64decode(VECTOR["response_b64"]))
    assert_failure(mech.supply_credentials([make_digest("digest-md5", "tim", "default", "x")]))


def test_unknown_user_and_wrong_password_fail() -> None:
    mech, _challenge = _started()
    assert_failure(run(mech, b"nobody b913a602c7eda7a495b4e6e7334d3890", USERS))
    mech, _ = _started()
    assert_failure(run(mech, b"tim 00000000000000000000000000000000", USERS))


@pytest.mark.parametrize(
    "response",
    [
        b"timb913a602c7eda7a495b4e6e7334d3890",  # no space
        b"tim B913A602C7EDA7A495B4E6E7334D3890",  # upper-case hex
        b"tim b913a602c7eda7a495b4e6e7334d389",  # 31 hex chars
        b"tim b913a602c7eda7a495b4e6e7334d38900",  # 33 hex chars
        b"tim b913a602c7eda7a495b4e6e7334d3890 ",  # trailing data
        b"tim\x00b913a602c7eda7a495b4e6e7334d3890",  # NUL instead of space
        b"t\x00m b913a602c7eda7a495b4e6e7334d3890",  # NUL in the name
        b" b913a602c7eda7a495b4e6e7334d3890",  # empty name
        b"\xff b913a602c7eda7a495b4e6e7334d3890",  # invalid UTF-8
        b"",
    ],
)
def test_malformed_responses_fail(response: bytes) -> None:
    mech, _ = _started()
    assert_failure(mech.step(response))


def test_initial_response_is_refused_and_steps_after_end_fail() -> None:
    assert_failure(CramMd5Mechanism(SETTINGS).step(b"tim"))
    mech, _ = _started()
    assert run(mech, base64.b64decode(VECTOR["response_b64"]), USERS) == Success("tim")
    assert_failure(mech.step(b""))
