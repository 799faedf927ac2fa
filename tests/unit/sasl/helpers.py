"""Shared helpers for the SASL mechanism tests: vector loading and realm stand-ins."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gridactor.security.credentials import Credential, verify_password
from gridactor.security.sasl.base import (
    Failure,
    NeedCredentials,
    NeedPasswordCheck,
    SaslMechanism,
    SaslOutcome,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "sasl"


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def fixed(value: str) -> Any:
    """A nonce factory that returns ``value`` (to replay published exchanges)."""
    return lambda: value


def answer(
    mech: SaslMechanism,
    outcome: SaslOutcome,
    users: dict[str, Sequence[Credential]],
    realm: str = "default",
) -> SaslOutcome:
    """Play the realm actor: answer NeedCredentials / NeedPasswordCheck from ``users``."""
    if isinstance(outcome, NeedCredentials):
        stored = users.get(outcome.username)
        if stored is not None:
            stored = [c for c in stored if isinstance(c, outcome.kinds)]
        return mech.supply_credentials(stored)
    if isinstance(outcome, NeedPasswordCheck):
        stored = users.get(outcome.username)
        ok = stored is not None and verify_password(stored, outcome.username, realm, outcome.password)
        return mech.supply_password_check(ok)
    return outcome


def run(
    mech: SaslMechanism,
    response: bytes,
    users: dict[str, Sequence[Credential]],
    realm: str = "default",
) -> SaslOutcome:
    return answer(mech, mech.step(response), users, realm)


def assert_failure(outcome: SaslOutcome) -> Failure:
    assert isinstance(outcome, Failure), outcome
    return outcome
