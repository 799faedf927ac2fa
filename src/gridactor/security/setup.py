"""From configuration to running security: realm backends and each endpoint's offer.

Which mechanisms an endpoint offers follows the spec's tables (``offered_mechanisms`` in
:mod:`gridactor.config.check`, the one place that table lives), then what this server
implements, then what the realm's stored credentials can serve: a mechanism that cannot
work for anyone (CRAM-MD5 against hashed passwords) is left out with a warning at start
rather than offered and failed.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from gridactor.config.check import offered_mechanisms
from gridactor.config.model import EndpointConfig, SecurityRealmConfig, ServerConfig
from gridactor.errors import ConfigError
from gridactor.security.endpoint import HTTP_MECHANISMS, EndpointSecurity
from gridactor.security.http_auth.base import HttpAuthSettings
from gridactor.security.kerberos import (
    HTTP_KERBEROS_MECHANISMS,
    SASL_KERBEROS_MECHANISMS,
    KerberosRealm,
    check_endpoint_principal,
    load_identities,
)
from gridactor.security.realm_actor import RealmClient
from gridactor.security.realms.base import Realm
from gridactor.security.realms.empty import EmptyRealm
from gridactor.security.realms.ldap import LdapRealm, build_ldap_realm
from gridactor.security.realms.properties import PropertiesRealm
from gridactor.security.realms.token import TokenRealm, build_token_realm, trust_pem_files
from gridactor.security.realms.truststore import (
    CertificateOrPasswordRealm,
    TrustStoreRealm,
    truststore_realm_from_config,
)
from gridactor.security.sasl.base import SaslSettings
from gridactor.security.sasl.external import ExternalMechanism
from gridactor.security.sasl.oauthbearer import OAuthBearerMechanism
from gridactor.security.sasl.registry import MECHANISMS, register_mechanism

log = logging.getLogger("gridactor.security")

# OAUTHBEARER needs no stored credential: the token realm answers its TokenCheck.
register_mechanism(OAuthBearerMechanism.name, OAuthBearerMechanism, ())
TOKEN_MECHANISMS = frozenset({"OAUTHBEARER", "BEARER_TOKEN"})


def build_realm(config: SecurityRealmConfig, source: str) -> Realm:
    """The realm backend for a ``<security-realm>`` (one actor each)."""
    if config.kerberos and config.server_identities is not None:
        # Kerberos authenticates; the realm's other backend (properties, LDAP…) supplies groups.
        identities = load_identities(config.kerberos, source)
        groups_config = replace(config, server_identities=replace(config.server_identities, kerberos=()))
        backends = (config.properties_realm, config.ldap_realm, config.truststore_realm, config.token_realm)
        groups_realm = build_realm(groups_config, source) if any(backends) else None
        return KerberosRealm(config.name, identities, groups_realm)
    token = config.token_realm
    if token is not None:
        others = [
            label
            for label, present in (
                ("properties-realm", config.properties_realm),
                ("ldap-realm", config.ldap_realm),
                ("truststore-realm", config.truststore_realm),
            )
            if present is not None
        ]
        if others:
            raise ConfigError(
                f"not supported yet: security realm '{config.name}' combines <token-realm> with "
                f"<{others[0]}>; give the token realm a security realm of its own",
                file=source,
                line=token.line,
                element="token-realm",
            )
        ssl = config.server_identities.ssl if config.server_identities else None
        truststore = ssl.truststore.path if ssl is not None and ssl.truststore is not None else None
        return build_token_realm(
            token,
            security_realm=config.name,
            cache_max_size=config.cache_max_size,
            cache_lifespan_ms=config.cache_lifespan_ms,
            source=source,
            trust_files=trust_pem_files([(config.name, str(truststore) if truststore else None)]),
        )
    if config.truststore_realm is not None:
        certificates = truststore_realm_from_config(config, source)
        if config.properties_realm is None and config.ldap_realm is None:
            return certificates
        # Certificates for EXTERNAL / CLIENT_CERT, the password realm for every other mechanism.
        passwords = build_realm(replace(config, truststore_realm=None), source)
        return CertificateOrPasswordRealm(certificates, passwords)
    if config.ldap_realm is not None:
        if config.properties_realm is not None or config.truststore_realm is not None:
            raise ConfigError(
                f"not supported yet: security realm '{config.name}' combines <ldap-realm> with another "
                "realm type; give the LDAP realm a security realm of its own",
                file=source,
                line=config.ldap_realm.line,
                element="ldap-realm",
            )
        return build_ldap_realm(config, source)
    props = config.properties_realm
    if props is not None:
        users = props.user_properties
        groups = props.group_properties
        return PropertiesRealm(
            users.path,
            groups.path if groups is not None else None,
            security_realm=config.name,
            plain_text=users.plain_text,
            digest_realm_name=users.digest_realm_name,
            groups_attribute=props.groups_attribute,
            # Two stat() calls per lookup: edits apply to the very next login, as in Infinispan.
            check_interval=0.0,
        )
    if config.has_tls and not config.kerberos:
        # Spec 4.2.1's examples: only an SSL identity. TLS is on, and nobody can log in.
        return EmptyRealm(config.name)
    raise ConfigError(
        f"not supported yet: security realm '{config.name}' has no realm type this server serves",
        file=source,
        line=config.line,
        element="security-realm",
    )


def realm_is_empty(realm: Realm) -> bool:
    if isinstance(realm, KerberosRealm):
        return False  # the KDC holds the users
    if isinstance(realm, PropertiesRealm):
        return not realm.snapshot.users
    return False


@dataclass(frozen=True, slots=True)
class Offer:
    mechanisms: tuple[str, ...]
    left_out: tuple[tuple[str, str], ...]  # (mechanism, why)


def _servable(realm: Realm, mechanism: str) -> str | None:
    """Why ``realm`` cannot serve ``mechanism`` for anyone, or None when it can."""
    if isinstance(realm, KerberosRealm):
        if mechanism in SASL_KERBEROS_MECHANISMS + HTTP_KERBEROS_MECHANISMS:
            return realm.unservable_reason(mechanism)
        if realm.authorization is None:
            return f"security realm '{realm.name}' authenticates with Kerberos only"
        realm = realm.authorization
    elif mechanism in SASL_KERBEROS_MECHANISMS + HTTP_KERBEROS_MECHANISMS:
        return f"{mechanism} needs a <kerberos> server identity in the security realm"
    if isinstance(realm, TokenRealm) != (mechanism in TOKEN_MECHANISMS):
        if mechanism in TOKEN_MECHANISMS:
            return f"{mechanism} needs a token realm"
        return f"a token realm authenticates bearer tokens only, not {mechanism}"
    if mechanism in (ExternalMechanism.name, "CLIENT_CERT"):
        if isinstance(realm, TrustStoreRealm | CertificateOrPasswordRealm):
            return None
        return f"{mechanism} needs a trust-store realm"
    if isinstance(realm, TrustStoreRealm):
        return f"a trust-store realm authenticates client certificates only, not {mechanism}"
    if isinstance(realm, CertificateOrPasswordRealm):
        realm = realm.passwords
    if isinstance(realm, LdapRealm):
        if not realm.supports_mechanism(mechanism):
            if mechanism in ("PLAIN", "BASIC"):
                return "the LDAP realm has neither direct-verification nor a <user-password-mapper>"
            return f"{mechanism} needs the password itself: the LDAP realm has no <user-password-mapper>"
        return None
    if isinstance(realm, PropertiesRealm):
        snapshot = realm.snapshot
        if not snapshot.users:
            # No users yet: decide by the file format, since the first user is still to come.
            if mechanism == "CRAM-MD5" and not realm.plain_text:
                return 'CRAM-MD5 needs clear-text passwords (plain-text="true")'
            return None
        if not realm.supports_mechanism(mechanism):
            return f"no user of realm '{realm.name}' has a credential {mechanism} can use"
    return None


# HTTP mechanisms are judged by the SASL mechanism that needs the same stored credential.
_SASL_EQUIVALENT = {"DIGEST": "DIGEST-MD5", "BASIC": "PLAIN", "CLIENT_CERT": "EXTERNAL"}


def _filter_offer(
    wanted: Sequence[str],
    implemented: Collection[str],
    realm: Realm,
    *,
    explicit: bool,
    kind: str,
    where: tuple[str, int, str],
) -> Offer:
    """Keep what is implemented and servable; an explicit unimplemented name is an error."""
    offered: list[str] = []
    left_out: list[tuple[str, str]] = []
    for name in wanted:
        if name not in implemented:
            if explicit:
                source, line, element = where
                raise ConfigError(
                    f"not supported yet: {kind} mechanism {name}", file=source, line=line, element=element
                )
            left_out.append((name, "not implemented by this server yet"))
            continue
        why = _servable(realm, _SASL_EQUIVALENT.get(name, name))
        if why is not None:
            left_out.append((name, why))
            continue
        offered.append(name)
    return Offer(tuple(offered), tuple(left_out))


def sasl_offer(config: ServerConfig, endpoint: EndpointConfig, realm: Realm) -> Offer:
    sasl = endpoint.hotrod.authentication.sasl if endpoint.hotrod and endpoint.hotrod.authentication else None
    explicit = sasl.mechanisms if sasl is not None else ()
    policy = sasl.policy if sasl is not None else None
    wanted = offered_mechanisms(config.realm(endpoint.hotrod_realm), "hotrod", explicit, policy)
    where = (str(config.source), sasl.line if sasl is not None else endpoint.line, "sasl")
    return _filter_offer(wanted, MECHANISMS, realm, explicit=bool(explicit), kind="SASL", where=where)


def http_offer(config: ServerConfig, endpoint: EndpointConfig, realm: Realm) -> Offer:
    auth = endpoint.rest.authentication if endpoint.rest else None
    explicit = auth.mechanisms if auth is not None else ()
    wanted = offered_mechanisms(config.realm(endpoint.rest_realm), "rest", explicit)
    where = (str(config.source), auth.line if auth is not None else endpoint.line, "authentication")
    return _filter_offer(wanted, HTTP_MECHANISMS, realm, explicit=bool(explicit), kind="HTTP", where=where)


def endpoint_security(
    config: ServerConfig,
    endpoint: EndpointConfig,
    realms: dict[str, tuple[Realm, RealmClient]],
    *,
    auth_timeout_s: float,
) -> EndpointSecurity | None:
    """The authentication of one endpoint; None when it has no security realm (spec 4.4)."""
    hotrod_realm = endpoint.hotrod_realm if endpoint.hotrod else None
    rest_realm = endpoint.rest_realm if endpoint.rest else None
    names = {name for name in (hotrod_realm, rest_realm) if name is not None}
    if not names:
        return None
    if len(names) > 1:
        raise ConfigError(
            "not supported yet: different security realms for the Hot Rod and REST connectors "
            "of one endpoint",
            file=str(config.source),
            line=endpoint.line,
            element="endpoints",
        )
    realm_name = names.pop()
    realm, client = realms[realm_name]
    sasl = endpoint.hotrod.authentication.sasl if endpoint.hotrod and endpoint.hotrod.authentication else None
    sasl_mechs = sasl_offer(config, endpoint, realm) if endpoint.hotrod else Offer((), ())
    http_mechs = http_offer(config, endpoint, realm) if endpoint.rest else Offer((), ())
    for name, why in sasl_mechs.left_out + http_mechs.left_out:
        log.warning("endpoint %s: mechanism %s is not offered: %s", endpoint.socket_binding, name, why)
    where = endpoint.socket_binding
    if endpoint.hotrod and not sasl_mechs.mechanisms:
        log.warning("endpoint %s: Hot Rod offers no SASL mechanism: nobody can log in", where)
    if endpoint.rest and not http_mechs.mechanisms:
        log.warning("endpoint %s: REST offers no HTTP mechanism: nobody can log in", where)
    settings = SaslSettings(
        realm=realm_name,
        server_name=sasl.server_name if sasl is not None else None,
        qop=sasl.qop if sasl is not None and sasl.qop else ("auth",),
        extra=dict(sasl.properties) if sasl is not None else {},
        server_principal=sasl.server_principal if sasl is not None else None,
    )
    rest_auth = endpoint.rest.authentication if endpoint.rest else None
    rest_principal = rest_auth.server_principal if rest_auth is not None else None
    if isinstance(realm, KerberosRealm):
        source = str(config.source)
        if set(sasl_mechs.mechanisms) & set(SASL_KERBEROS_MECHANISMS):
            line = sasl.line if sasl is not None else endpoint.line
            principal, host = settings.server_principal, settings.server_name
            check_endpoint_principal(realm, settings.protocol, principal, host, file=source, line=line)
        if set(http_mechs.mechanisms) & set(HTTP_KERBEROS_MECHANISMS):
            line = rest_auth.line if rest_auth is not None else endpoint.line
            check_endpoint_principal(realm, "HTTP", rest_principal, None, file=source, line=line)
    return EndpointSecurity(
        realm=client,
        sasl_mechanisms=sasl_mechs.mechanisms,
        sasl_settings=settings,
        http_mechanisms=http_mechs.mechanisms,
        http_settings=HttpAuthSettings(realm=realm_name, server_principal=rest_principal),
        auth_timeout_s=auth_timeout_s,
    )
