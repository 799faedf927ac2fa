"""Shared state handling for the server mechanisms of this package.

Every mechanism here is a small linear state machine. The rules common to all of them live
in :class:`ExchangeMechanism` so that no mechanism can forget one:

* after :class:`Success` or :class:`Failure` every further call is a :class:`Failure`;
* while the mechanism waits for the realm's answer, a client step is a :class:`Failure`
  (a client must not be able to race the realm);
* an unexpected exception while handling peer input becomes a :class:`Failure` whose reason
  names only the exception type — exception messages might quote secret material.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from enum import Enum, auto

from gridactor.security.credentials import Credential
from gridactor.security.sasl.base import (
    Challenge,
    Failure,
    NeedCredentials,
    NeedPasswordCheck,
    SaslMechanism,
    SaslOutcome,
    SaslSettings,
    Success,
)

NonceFactory = Callable[[], str]
RandomBytes = Callable[[int], bytes]


def default_nonce() -> str:
    # 24 random bytes in URL-safe base64: printable, no ',' or '"', so it is valid unquoted
    # in SCRAM and needs no escaping inside a DIGEST quoted-string.
    return secrets.token_urlsafe(24)


class _State(Enum):
    CLIENT = auto()  # waiting for the client's next response
    REALM = auto()  # waiting for supply_credentials / supply_password_check
    DONE = auto()


class ExchangeMechanism(SaslMechanism):
    """Base of this package's mechanisms: subclasses implement the ``_on_*`` hooks."""

    def __init__(
        self,
        settings: SaslSettings,
        *,
        nonce_factory: NonceFactory | None = None,
        random_bytes: RandomBytes | None = None,
    ) -> None:
        super().__init__(settings)
        self._nonce_source = nonce_factory
        self._random_bytes: RandomBytes = random_bytes or secrets.token_bytes
        self._state = _State.CLIENT
        self._complete = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} state={self._state.name.lower()}>"

    @property
    def is_complete(self) -> bool:
        """True once the exchange ended in :class:`Success`."""
        return self._complete

    # -- the public contract -------------------------------------------------------------

    def step(self, response: bytes) -> SaslOutcome:
        if self._state is _State.DONE:
            return self._finish(Failure("step after the exchange finished"))
        if self._state is _State.REALM:
            return self._finish(Failure("client step while waiting for the realm"))
        return self._guarded(lambda: self._on_step(bytes(response)))

    def supply_credentials(self, credentials: Sequence[Credential] | None) -> SaslOutcome:
        if self._state is not _State.REALM:
            return self._finish(Failure("credentials supplied out of turn"))
        return self._guarded(lambda: self._on_credentials(credentials))

    def supply_password_check(self, valid: bool) -> SaslOutcome:
        if self._state is not _State.REALM:
            return self._finish(Failure("password check supplied out of turn"))
        return self._guarded(lambda: self._on_password_check(valid))

    # -- hooks ---------------------------------------------------------------------------

    def _on_step(self, response: bytes) -> SaslOutcome:
        raise NotImplementedError

    def _on_credentials(self, credentials: Sequence[Credential] | None) -> SaslOutcome:
        return Failure(f"{self.name} never asks for credentials")

    def _on_password_check(self, valid: bool) -> SaslOutcome:
        return Failure(f"{self.name} never asks for a password check")

    # -- helpers -------------------------------------------------------------------------

    def _new_nonce(self, default: NonceFactory = default_nonce) -> str:
        """A fresh nonce; tests inject ``nonce_factory`` to replay published vectors."""
        return (self._nonce_source or default)()

    def _guarded(self, action: Callable[[], SaslOutcome]) -> SaslOutcome:
        try:
            outcome = action()
        except Exception as exc:  # peer input must never crash the connection task
            outcome = Failure(f"malformed input ({type(exc).__name__})")
        return self._finish(outcome)

    def _finish(self, outcome: SaslOutcome) -> SaslOutcome:
        if isinstance(outcome, Success):
            self._state = _State.DONE
            self._complete = True
        elif isinstance(outcome, Failure):
            self._state = _State.DONE
            self._complete = False
            self._forget()
        elif isinstance(outcome, NeedCredentials | NeedPasswordCheck):
            self._state = _State.REALM
        elif isinstance(outcome, Challenge):
            self._state = _State.CLIENT
        return outcome

    def _forget(self) -> None:
        """Drop secret material once the exchange has failed (overridden where held)."""
