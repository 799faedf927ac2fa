"""The sans-IO contract of every SASL mechanism (server side).

A mechanism never does I/O and never awaits: the connection task feeds it the client's
bytes and acts on what it returns. When it needs something from the realm it says so
(:class:`NeedCredentials`, :class:`NeedPasswordCheck`); the connection asks the realm
actor and hands the answer back with :meth:`SaslMechanism.supply_credentials` /
:meth:`SaslMechanism.supply_password_check`. So the realm's secrets travel only between
the realm actor and the mechanism object, and mechanisms are tested with bytes alone.

Outcomes:
* :class:`Challenge` — send ``data`` to the client, wait for its next response.
* :class:`Success` — authenticated as ``username``; ``final_data`` (SCRAM ``v=…``,
  DIGEST ``rspauth=…``) goes to the client with the completion.
* :class:`Failure` — ``reason`` is for the server log only; the client is told just
  "authentication failed" (no user enumeration).

After :class:`Success`, a mechanism that negotiated a security layer (DIGEST QoP
``auth-int``/``auth-conf``, GSSAPI) wraps and unwraps every following frame.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

from gridactor.security.credentials import Credential


@dataclass(frozen=True, slots=True)
class Challenge:
    data: bytes


@dataclass(frozen=True, slots=True)
class Success:
    username: str
    final_data: bytes | None = None


@dataclass(frozen=True, slots=True)
class Failure:
    reason: str


@dataclass(frozen=True, slots=True)
class NeedCredentials:
    """Ask the realm for ``username``'s stored credentials of these types."""

    username: str
    kinds: tuple[type, ...]


@dataclass(frozen=True, slots=True, repr=False)
class NeedPasswordCheck:
    """Ask the realm whether ``password`` is ``username``'s (PLAIN; LDAP direct bind)."""

    username: str
    password: str

    def __repr__(self) -> str:
        return f"NeedPasswordCheck({self.username!r}, ***)"


class RealmRequest:
    """Base of any other question a mechanism asks its realm (a token, a certificate, a
    Kerberos principal…). The realm actor answers it with ``realm.answer(request)`` in a
    worker thread, and the connection hands the answer back with
    :meth:`SaslMechanism.supply`. Subclasses are frozen dataclasses defined next to the
    mechanism that asks them; they must not print secrets in their repr.
    """

    __slots__ = ()


SaslOutcome = Challenge | Success | Failure | NeedCredentials | NeedPasswordCheck | RealmRequest


class SaslError(Exception):
    """A security-layer (wrap/unwrap) failure: bad MAC, replay, oversize. Closes the connection."""


@dataclass(frozen=True, slots=True)
class SaslSettings:
    """What an endpoint tells its mechanisms (from `<sasl>` and the security realm)."""

    realm: str  # the security-realm name: DIGEST realm and the realm of stored digests
    server_name: str | None = None  # `server-name`; DIGEST digest-uri host checked only if set
    protocol: str = "hotrod"
    qop: tuple[str, ...] = ("auth",)  # preference order, from `qop="auth auth-int auth-conf"`
    scram_min_iterations: int = 4096
    scram_max_iterations: int = 32768
    tls: bool = False  # the connection is TLS (for EXTERNAL, channel binding)
    extra: dict[str, str] = field(default_factory=dict)  # `<property name=…>` values
    server_principal: str | None = None  # `server-principal`: the Kerberos acceptor (GSSAPI, GS2-KRB5)


class SaslMechanism(ABC):
    """One authentication exchange on one connection. Use once."""

    name: str = ""

    def __init__(self, settings: SaslSettings) -> None:
        self.settings = settings

    @abstractmethod
    def step(self, response: bytes) -> SaslOutcome:
        """Feed the client's next response (the first may be empty)."""

    def supply_credentials(self, credentials: Sequence[Credential] | None) -> SaslOutcome:
        """Answer a NeedCredentials. ``None``: no such user (must not be distinguishable)."""
        raise NotImplementedError(f"{self.name} never asks for credentials")

    def supply_password_check(self, valid: bool) -> SaslOutcome:
        """Answer a NeedPasswordCheck."""
        raise NotImplementedError(f"{self.name} never asks for a password check")

    def supply(self, answer: object) -> SaslOutcome:
        """Answer a RealmRequest with what the realm's ``answer`` returned."""
        raise NotImplementedError(f"{self.name} never asks its realm anything else")

    @property
    def negotiated_qop(self) -> str:
        """``auth`` unless the exchange negotiated a security layer."""
        return "auth"

    def wrap(self, data: bytes) -> bytes:
        """Protect an outgoing frame (identity unless a security layer was negotiated)."""
        return data

    def unwrap(self, data: bytes) -> bytes:
        """Check and strip the protection of an incoming frame. Raises SaslError."""
        return data
