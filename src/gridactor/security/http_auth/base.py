"""The sans-IO contract of HTTP authentication mechanisms (server side).

Like the SASL mechanisms (:mod:`gridactor.security.sasl.base`), an HTTP mechanism never does
I/O: the REST gate creates one per request, calls :meth:`HttpMechanism.authenticate` with the
method, the raw request-target and the ``Authorization`` header, and acts on the outcome:

* :class:`NeedCredentials` / :class:`NeedPasswordCheck` (the SASL types) — ask the realm,
  answer with :meth:`HttpMechanism.supply_credentials` / :meth:`HttpMechanism.supply_password_check`.
* :class:`HttpSuccess` — authenticated as ``username``; add ``response_headers`` to the response.
* :class:`HttpFailure` — answer ``status`` (401, or 400 for a request that must not be retried
  as is) with ``headers`` (a fresh challenge). ``reason`` is for the server log only.

Only a :class:`HttpSuccess` authenticates: the gate must never treat "not 401" as success
(CVE-2021-31917). Shared state (Digest nonces) lives in objects passed to the constructor.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from gridactor.security.credentials import Credential
from gridactor.security.sasl.base import NeedCredentials, NeedPasswordCheck, RealmRequest

__all__ = [
    "MAX_AUTHORIZATION_LENGTH",
    "HttpAuthOutcome",
    "HttpAuthSettings",
    "HttpFailure",
    "HttpMechanism",
    "HttpSuccess",
    "NeedCredentials",
    "NeedPasswordCheck",
    "RealmRequest",
    "auth_scheme",
    "header_text",
    "quote",
]

# Longer Authorization headers are refused before any parsing work.
MAX_AUTHORIZATION_LENGTH = 8192

Header = tuple[str, str]


@dataclass(frozen=True, slots=True)
class HttpSuccess:
    username: str
    response_headers: tuple[Header, ...] = ()
    mechanism: str = ""


@dataclass(frozen=True, slots=True)
class HttpFailure:
    status: int  # 401 or 400
    reason: str  # server log only; never a secret
    headers: tuple[Header, ...] = ()


HttpAuthOutcome = HttpSuccess | HttpFailure | NeedCredentials | NeedPasswordCheck | RealmRequest


@dataclass(frozen=True, slots=True)
class HttpAuthSettings:
    realm: str = "default"  # the security-realm name, shown in challenges
    basic_charset: str | None = None  # e.g. "UTF-8": adds `charset="UTF-8"` (RFC 7617 §2.1)
    server_principal: str | None = None  # `server-principal`: the SPNEGO acceptor (HTTP/host@REALM)


def quote(value: str) -> str:
    """An HTTP quoted-string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def header_text(value: str | bytes | None) -> str | None:
    """Header bytes as text: UTF-8 when valid (what clients send), else ISO-8859-1."""
    if value is None or isinstance(value, str):
        return value
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def auth_scheme(authorization: str | bytes | None) -> str | None:
    """The scheme of an ``Authorization`` header, upper-cased (``BASIC``, ``DIGEST``…)."""
    text = header_text(authorization)
    if not text:
        return None
    scheme = text.strip().split(None, 1)
    return scheme[0].upper() if scheme else None


class HttpMechanism(ABC):
    """One authentication attempt for one request. Use once."""

    name: str = ""
    scheme: str = ""  # the Authorization scheme this mechanism answers (upper case)

    def __init__(self, settings: HttpAuthSettings) -> None:
        self.settings = settings

    @abstractmethod
    def challenge(self) -> list[str]:
        """``WWW-Authenticate`` values for a 401 to a request without credentials."""

    @abstractmethod
    def authenticate(self, method: str, uri: str, authorization: str | bytes | None) -> HttpAuthOutcome:
        """Start with the request's method, raw request-target and Authorization header."""

    def supply_credentials(self, credentials: Sequence[Credential] | None) -> HttpAuthOutcome:
        """Answer a NeedCredentials. ``None``: no such user (indistinguishable outside)."""
        raise NotImplementedError(f"{self.name} never asks for credentials")

    def supply_password_check(self, valid: bool) -> HttpAuthOutcome:
        """Answer a NeedPasswordCheck."""
        raise NotImplementedError(f"{self.name} never asks for a password check")

    def supply(self, answer: object) -> HttpAuthOutcome:
        """Answer a RealmRequest (bearer token, client certificate, SPNEGO…)."""
        raise NotImplementedError(f"{self.name} never asks its realm anything else")

    def _fail(self, status: int, reason: str, challenge: Sequence[str] | None = None) -> HttpFailure:
        values = self.challenge() if challenge is None else challenge
        return HttpFailure(status, reason, tuple(("WWW-Authenticate", v) for v in values))
