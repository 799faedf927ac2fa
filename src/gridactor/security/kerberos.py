"""Kerberos server identities (``<server-identities><kerberos>``) and the realm that uses them.

A security realm with Kerberos identities authenticates by Kerberos: the GSSAPI and
GS2-KRB5 SASL mechanisms (Hot Rod) and SPNEGO (REST) accept the client's ticket with the
service key from a keytab. The realm's other backend (a properties realm today, LDAP
later: anything implementing :class:`Realm`) is then used for *authorization* only:
``identity(name)`` supplies the groups of the authenticated principal. That is how
Infinispan deploys it.

Decisions:

* **Names.** A principal of the server identity's own Kerberos realm loses its ``@REALM``
  (``alice@INFINISPAN.ORG`` → ``alice``), so it matches the user names of the properties
  realm. A principal of any other Kerberos realm (cross-realm trust) keeps its full name,
  so it can never be taken for a local user of the same short name.
* **Unknown principals.** A principal the authorization realm does not know still gets an
  identity, with no groups: Kerberos proved who it is, and with authorization enabled no
  group means no role, hence no permission. (With authorization disabled, as in the spec's
  examples, every principal the KDC vouches for may use the caches, as in Infinispan.)
* **Keytabs** are read with python-gssapi's credential store
  (``Credentials(usage="accept", store={"keytab": path})``), one set of credentials per
  identity and mechanism, never through process-wide variables (``KRB5_KTNAME``) that
  would leak between realms. ``required="true"``: a keytab that is missing, unreadable or
  lacks the principal's key is a start-up error naming the file. Not required: the
  identity is loaded at its first use, and each use retries until it loads (an operator
  may install the keytab later); a failed load fails that login only.
* Accepting a context needs no KDC (keytab and replay cache only), so the mechanisms call
  python-gssapi inline: measured at 0.1 to 0.3 ms per acceptor step. A KDC outage therefore
  affects neither established connections nor clients that still hold a service ticket.

python-gssapi is the optional ``kerberos`` extra: this module imports it only when
credentials are loaded, so configurations without Kerberos work without it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gridactor.config.model import KerberosIdentityConfig
from gridactor.errors import ConfigError
from gridactor.security.credentials import Credential
from gridactor.security.identity import Identity
from gridactor.security.realms.base import Realm, UnsupportedRealmRequest
from gridactor.security.sasl.base import RealmRequest

if TYPE_CHECKING:
    import gssapi

log = logging.getLogger("gridactor.security.kerberos")

SPNEGO_OID = "1.3.6.1.5.5.2"
KRB5_OID = "1.2.840.113554.1.2.2"
# SASL mechanism / HTTP mechanism → the service (principal's first component) it serves.
SASL_KERBEROS_MECHANISMS = ("GSSAPI", "GS2-KRB5")
HTTP_KERBEROS_MECHANISMS = ("SPNEGO",)


class KerberosIdentityError(Exception):
    """A server identity cannot be loaded; the text names the keytab and principal."""


def gssapi_available() -> bool:
    try:
        import gssapi  # noqa: F401
    except ImportError:
        return False
    return True


def split_principal(principal: str) -> tuple[str, str, str]:
    """``service/host@REALM`` → (service, host, realm); missing parts are empty."""
    name, _, realm = principal.rpartition("@") if "@" in principal else (principal, "", "")
    service, _, host = name.partition("/")
    return service, host, realm


def check_keytab(path: Path) -> None:
    """Raise KerberosIdentityError unless ``path`` is a readable, non-empty file."""
    try:
        with open(path, "rb") as keytab:
            head = keytab.read(2)
    except FileNotFoundError:
        raise KerberosIdentityError(f"keytab {path} does not exist") from None
    except IsADirectoryError:
        raise KerberosIdentityError(f"keytab {path} is a directory") from None
    except OSError as exc:
        raise KerberosIdentityError(f"keytab {path} cannot be read: {exc.strerror}") from None
    # MIT keytab files start with 0x05 0x01 or 0x05 0x02 (format versions 1 and 2).
    if len(head) < 2 or head[0] != 0x05 or head[1] not in (0x01, 0x02):
        raise KerberosIdentityError(f"keytab {path} is empty or not a keytab file")


@dataclass(eq=False)
class KerberosServerIdentity:
    """One ``<kerberos>`` element: a service principal and the keytab holding its key."""

    principal: str
    keytab: Path
    required: bool
    line: int = 0
    _credentials: dict[str, gssapi.Credentials] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_config(cls, config: KerberosIdentityConfig) -> KerberosServerIdentity:
        return cls(config.principal, config.keytab_path, config.required, config.line)

    @property
    def service(self) -> str:
        return split_principal(self.principal)[0]

    @property
    def host(self) -> str:
        return split_principal(self.principal)[1]

    @property
    def kerberos_realm(self) -> str:
        return split_principal(self.principal)[2]

    def acceptor_credentials(self, *, spnego: bool = False) -> gssapi.Credentials:
        """The acceptor credentials (krb5, or SPNEGO for HTTP); loaded once, then cached.

        Raises KerberosIdentityError (keytab missing, unreadable, or without this key).
        """
        key = "spnego" if spnego else "krb5"
        with self._lock:
            cached = self._credentials.get(key)
            if cached is None:
                cached = self._load(spnego)
                self._credentials[key] = cached
            return cached

    def _load(self, spnego: bool) -> gssapi.Credentials:
        import gssapi
        from gssapi.raw.misc import GSSError

        check_keytab(self.keytab)
        mech = gssapi.OID.from_int_seq(SPNEGO_OID if spnego else KRB5_OID)
        try:
            name = gssapi.Name(self.principal, gssapi.NameType.kerberos_principal)
            return gssapi.Credentials(
                name=name, usage="accept", mechs=[mech], store={b"keytab": str(self.keytab).encode()}
            )
        except GSSError as exc:
            raise KerberosIdentityError(
                f"keytab {self.keytab} has no usable key for {self.principal}: {exc.gen_message()}"
            ) from None


def load_identities(
    configs: Sequence[KerberosIdentityConfig], source: str
) -> tuple[KerberosServerIdentity, ...]:
    """Build the identities; load the required ones now (ConfigError naming the keytab)."""
    identities = tuple(KerberosServerIdentity.from_config(c) for c in configs)
    if not identities:
        return identities
    if not gssapi_available():
        raise ConfigError(
            "Kerberos identities need python-gssapi: install gridactor[kerberos] (and MIT krb5)",
            file=source,
            line=configs[0].line,
            element="kerberos",
        )
    for identity in identities:
        if identity.required:
            try:
                identity.acceptor_credentials()
            except KerberosIdentityError as exc:
                raise ConfigError(str(exc), file=source, line=identity.line, element="kerberos") from None
        else:
            try:
                check_keytab(identity.keytab)
            except KerberosIdentityError as exc:
                log.warning(
                    "Kerberos identity %s not available yet (loaded at first use): %s",
                    identity.principal,
                    exc,
                )
    return identities


# ---------------------------------------------------------------- mechanism ↔ realm


@dataclass(frozen=True, slots=True)
class AcceptorCredentialsRequest(RealmRequest):
    """A Kerberos mechanism asks its realm for the acceptor credentials of its service.

    ``service``: ``hotrod`` (SASL protocol) or ``HTTP``. ``principal``: the endpoint's
    ``server-principal``, if set. ``host``: the SASL ``server-name``, if set. ``spnego``:
    credentials for the SPNEGO mechanism (HTTP Negotiate) rather than raw krb5.
    """

    service: str
    principal: str | None = None
    host: str | None = None
    spnego: bool = False


@dataclass(frozen=True, slots=True)
class AcceptorCredentials:
    """The realm's answer: the credentials, and how the realm names an authenticated principal."""

    credentials: gssapi.Credentials = field(repr=False)
    principal: str
    rewrite: Callable[[str], str] = field(repr=False)


@dataclass(frozen=True, slots=True)
class AcceptorUnavailable:
    """The realm has no (loadable) identity for the request; ``reason`` is for the log."""

    reason: str


def strip_realm_rewriter(kerberos_realm: str) -> Callable[[str], str]:
    """Drop ``@kerberos_realm`` from principals of that realm; keep others whole."""
    suffix = f"@{kerberos_realm}"

    def rewrite(principal: str) -> str:
        if kerberos_realm and principal.endswith(suffix) and len(principal) > len(suffix):
            return principal[: -len(suffix)]
        return principal

    return rewrite


class KerberosRealm:
    """A security realm whose identities are Kerberos principals.

    Kerberos mechanisms get their acceptor credentials here (:class:`AcceptorCredentialsRequest`);
    everything else (password lookups for password mechanisms, other realm requests, groups)
    goes to ``authorization``, the realm's other backend, when there is one.
    """

    def __init__(
        self,
        name: str,
        identities: Sequence[KerberosServerIdentity],
        authorization: Realm | None = None,
        *,
        rewriter: Callable[[str], str] | None = None,
    ) -> None:
        self._name = name
        self.identities = tuple(identities)
        self.authorization = authorization
        self._rewriter = rewriter

    @property
    def name(self) -> str:
        return self._name

    def refresh(self) -> None:
        if self.authorization is not None:
            self.authorization.refresh()

    def credentials(self, username: str) -> Sequence[Credential] | None:
        return self.authorization.credentials(username) if self.authorization is not None else None

    def verify_password(self, username: str, password: str) -> bool:
        return (
            self.authorization.verify_password(username, password)
            if self.authorization is not None
            else False
        )

    def identity(self, username: str) -> Identity | None:
        found = self.authorization.identity(username) if self.authorization is not None else None
        if found is not None:
            return found
        # Authenticated by Kerberos but unknown to the authorization backend: no groups.
        return Identity(name=username, realm=self._name)

    def credential_kinds(self) -> frozenset[type]:
        return self.authorization.credential_kinds() if self.authorization is not None else frozenset()

    def answer(self, request: RealmRequest) -> object:
        if isinstance(request, AcceptorCredentialsRequest):
            return self.acceptor(request)
        if self.authorization is not None:
            return self.authorization.answer(request)
        raise UnsupportedRealmRequest(f"a Kerberos realm cannot answer {type(request).__name__}")

    def find(
        self, service: str, principal: str | None = None, host: str | None = None
    ) -> KerberosServerIdentity | None:
        """The identity serving ``service``: the one named ``principal`` if given (it must
        exist), else the first whose host is ``host`` if given, else the first of the service.
        Services compare case-insensitively (``HTTP``/``http``), as Infinispan's prefix test."""
        if principal:
            return next((i for i in self.identities if i.principal == principal), None)
        candidates = [i for i in self.identities if i.service.lower() == service.lower()]
        if host:
            return next((i for i in candidates if i.host == host), None)
        return candidates[0] if candidates else None

    def acceptor(self, request: AcceptorCredentialsRequest) -> AcceptorCredentials | AcceptorUnavailable:
        identity = self.find(request.service, request.principal, request.host)
        if identity is None:
            wanted = request.principal or f"{request.service}/{request.host or '*'}"
            return AcceptorUnavailable(f"security realm '{self._name}' has no Kerberos identity for {wanted}")
        try:
            credentials = identity.acceptor_credentials(spnego=request.spnego)
        except KerberosIdentityError as exc:
            return AcceptorUnavailable(str(exc))
        rewrite = self._rewriter or strip_realm_rewriter(identity.kerberos_realm)
        return AcceptorCredentials(credentials, identity.principal, rewrite)

    def unservable_reason(self, mechanism: str) -> str | None:
        """Why no Kerberos identity of this realm can serve ``mechanism``, or None."""
        service = "HTTP" if mechanism in HTTP_KERBEROS_MECHANISMS else "hotrod"
        if self.find(service) is None:
            return f"security realm '{self._name}' has no Kerberos identity for {service}/…"
        return None


def check_endpoint_principal(
    realm: KerberosRealm, service: str, principal: str | None, host: str | None, *, file: str, line: int
) -> None:
    """Refuse at start-up an endpoint whose server-principal/server-name matches no identity."""
    if realm.find(service, principal, host) is None:
        wanted = principal or f"{service}/{host}"
        have = ", ".join(i.principal for i in realm.identities) or "none"
        raise ConfigError(
            f"no <kerberos> server identity of security realm '{realm.name}' is for {wanted} "
            f"(identities: {have})",
            file=file,
            line=line,
            element="authentication",
        )
