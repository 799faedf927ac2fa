from __future__ import annotations

import base64

import pytest

from gridactor.security.credentials import ClearPassword, make_scram
from gridactor.security.sasl.base import NeedPasswordCheck, SaslSettings, Success
from gridactor.security.sasl.plain import PlainMechanism
from tests.unit.sasl.helpers import assert_failure, load, run

SETTINGS = SaslSettings(realm="default")
USERS = {
    "tim": [ClearPassword("tanstaaftanstaaf")],
    "Kurt": [ClearPassword("xipj3plmq")],
    "bob": [make_scram("scram-sha-256", "secret", b"0123456789ab", 4096)],
}


@pytest.mark.parametrize("example", load("plain.json")["examples"])
def test_rfc4616_examples(example: dict[str, str]) -> None:
    mech = PlainMechanism(SETTINGS)
    outcome = mech.step(base64.b64decode(example["message_b64"]))
    if example["outcome"] == "check":
        assert outcome == NeedPasswordCheck(example["authcid"], example["password"])
        assert mech.supply_password_check(True) == Success(example["authcid"], None)
    else:
        # Ursel is not Kurt: no run-as, so the authzid fails before any password check.
        assert_failure(outcome)


def test_one_step_with_node_client_bytes() -> None:
    # What the Node client sends in its single AUTH round for PLAIN.
    outcome = run(PlainMechanism(SETTINGS), b"\x00bob\x00secret", USERS)
    assert outcome == Success("bob", None)


def test_authzid_equal_to_authcid_is_allowed() -> None:
    assert run(PlainMechanism(SETTINGS), b"tim\x00tim\x00tanstaaftanstaaf", USERS) == Success("tim")


def test_wrong_password_and_unknown_user_fail_alike() -> None:
    wrong = assert_failure(run(PlainMechanism(SETTINGS), b"\x00tim\x00nope", USERS))
    unknown = assert_failure(run(PlainMechanism(SETTINGS), b"\x00nobody\x00nope", USERS))
    assert wrong == unknown


@pytest.mark.parametrize(
    "message",
    [
        b"testuser\x00",  # one NUL
        b"\x00a\x00b\x00c",  # three NULs
        b"no-nul-at-all",
        b"",
        b"\x00\x00password",  # empty authcid
        b"\x00tim\x00",  # empty password
        b"\x00tim\x00pa\x00ss",  # NUL inside the password
        b"\x00tim\x00\xff\xfe",  # invalid UTF-8
        b"\x00t\xc3\x00pw",  # truncated UTF-8 sequence
        b"\x00tim\x00bad\x07pw",  # SASLprep-prohibited control character
        b"\x00\xd8\xa71\x00pw",  # bidi failure (U+0627 U+0031)
        b"victim\x00attacker\x00attackerpw",  # impersonation
        b"\x00\xc2\xad\x00pw",  # authcid empty after SASLprep
    ],
)
def test_malformed_and_hostile_messages_fail(message: bytes) -> None:
    mech = PlainMechanism(SETTINGS)
    assert_failure(mech.step(message))
    assert_failure(mech.step(b"\x00tim\x00tanstaaftanstaaf"))  # and the exchange is over


def test_255_octet_fields_are_accepted() -> None:
    name, password = "u" * 255, "p" * 255
    outcome = PlainMechanism(SETTINGS).step(f"{name}\x00{name}\x00{password}".encode())
    assert outcome == NeedPasswordCheck(name, password)


def test_saslprep_applies_to_authcid_and_password() -> None:
    outcome = PlainMechanism(SETTINGS).step("\x00I\u00adX\x00\u2168".encode())
    assert outcome == NeedPasswordCheck("IX", "IX")


def test_steps_after_success_and_out_of_turn_calls_fail() -> None:
    mech = PlainMechanism(SETTINGS)
    assert_failure(mech.supply_password_check(True))  # nothing asked yet
    mech = PlainMechanism(SETTINGS)
    assert isinstance(mech.step(b"\x00tim\x00x"), NeedPasswordCheck)
    assert_failure(mech.step(b"\x00tim\x00x"))  # racing the realm
    assert_failure(mech.supply_password_check(True))  # the exchange already failed
    mech = PlainMechanism(SETTINGS)
    assert run(mech, b"\x00tim\x00tanstaaftanstaaf", USERS) == Success("tim")
    assert_failure(mech.step(b"\x00tim\x00tanstaaftanstaaf"))
    assert_failure(mech.supply_password_check(True))


def test_no_password_in_repr() -> None:
    mech = PlainMechanism(SETTINGS)
    outcome = mech.step(b"\x00tim\x00tanstaaftanstaaf")
    assert "tanstaaf" not in repr(outcome)
    assert "tanstaaf" not in repr(mech)
