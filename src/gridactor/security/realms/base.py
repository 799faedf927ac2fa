"""What a realm is to the rest of the server: a synchronous lookup-and-verify object.

Realms are plain objects (no trio) so they are tested directly; the realm *actor*
(:mod:`gridactor.security.realm_actor`) adds the mailbox, the thread off-loading for
slow work (PBKDF2, LDAP binds) and the concurrency limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gridactor.security.credentials import Credential
from gridactor.security.identity import Identity
from gridactor.security.sasl.base import RealmRequest


class Realm(Protocol):
    @property
    def name(self) -> str:
        """The ``<security-realm name=…>`` this backend serves."""
        ...

    def refresh(self) -> None:
        """Pick up changes of the backing store (files), keeping the last good state."""
        ...

    def credentials(self, username: str) -> Sequence[Credential] | None:
        """Stored credentials of ``username``; None when there is no such user."""
        ...

    def verify_password(self, username: str, password: str) -> bool:
        """Check a password guess. Unknown users cost the same work as known ones."""
        ...

    def identity(self, username: str) -> Identity | None:
        """The identity (with groups) of an authenticated ``username``."""
        ...

    def credential_kinds(self) -> frozenset[type]:
        """Credential types this realm can hand out (decides which mechanisms work)."""
        ...

    def answer(self, request: RealmRequest) -> object:
        """Answer any other mechanism question (tokens, certificates…); runs in a worker
        thread of the realm actor. Raise ``UnsupportedRealmRequest`` for a kind it lacks."""
        ...


class UnsupportedRealmRequest(Exception):
    """A mechanism asked a realm for something that kind of realm cannot answer."""
