"""A realm that knows nobody: a ``<security-realm>`` with only a server identity.

The spec's SSL-identity examples (4.2.1) define a realm holding just a keystore. Endpoints
using it speak TLS, but no mechanism can authenticate anyone, so every protected operation
is refused: the server says so at start instead of refusing to start, and never falls back
to running without authentication.
"""

from __future__ import annotations

from collections.abc import Sequence

from gridactor.security.credentials import Credential
from gridactor.security.identity import Identity
from gridactor.security.realms.base import UnsupportedRealmRequest
from gridactor.security.sasl.base import RealmRequest

__all__ = ["EmptyRealm"]


class EmptyRealm:
    def __init__(self, security_realm: str) -> None:
        self._name = security_realm

    @property
    def name(self) -> str:
        return self._name

    def refresh(self) -> None:
        pass

    def credentials(self, username: str) -> Sequence[Credential] | None:
        return None

    def verify_password(self, username: str, password: str) -> bool:
        return False

    def identity(self, username: str) -> Identity | None:
        return None

    def credential_kinds(self) -> frozenset[type]:
        return frozenset()

    def answer(self, request: RealmRequest) -> object:
        raise UnsupportedRealmRequest(f"realm '{self._name}' has no users, tokens or certificates")
