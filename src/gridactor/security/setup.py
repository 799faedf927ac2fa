"""From configuration to running security: realm backends and each endpoint's offer.

Which mechanisms an endpoint offers follows the spec's tables (``offered_mechanisms`` in
:mod:`gridactor.config.check`, the one place that table lives), then what this server
implements, then what the realm's stored credentials can serve: a mechanism that cannot
work for anyone (CRAM-MD5 against hashed passwords) is left out with a warning at start
rather than offered and failed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gridactor.config.check import offered_mechanisms
from gridactor.config.model import EndpointConfig, SecurityRealmConfig, ServerConfig
from gridactor.errors import ConfigError
from gridactor.security.endpoint import HTTP_MECHANISMS, EndpointSecurity
from gridactor.security.http_auth.base import HttpAuthSettings
from gridactor.security.realm_actor import RealmClient
from gridactor.security.realms.base import Realm
from gridactor.security.realms.properties import PropertiesRealm
from gridactor.security.sasl.base import SaslSettings
from gridactor.security.sasl.registry import MECHANISMS

log = logging.getLogger("gridactor.security")


def build_realm(config: SecurityRealmConfig, source: str) -> Realm:
    """The realm backend for a ``<security-realm>`` (one actor each)."""
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
    raise ConfigError(
        f"not supported yet: security realm '{config.name}' has no realm type this server serves",
        file=source,
        line=config.line,
        element="security-realm",
    )


def realm_is_empty(realm: Realm) -> bool:
    if isinstance(realm, PropertiesRealm):
        return not realm.snapshot.users
    return False


@dataclass(frozen=True, slots=True)
class Offer:
    mechanisms: tuple[str, ...]
    left_out: tuple[tuple[str, str], ...]  # (mechanism, why)


def _servable(realm: Realm, mechanism: str) -> str | None:
    """Why ``realm`` cannot serve ``mechanism`` for anyone, or None when it can."""
    if isinstance(realm, PropertiesRealm):
        snapshot = realm.snapshot
        if not snapshot.users:
            # No users yet: decide by the file format, since the first user is still to come.
            if mechanism == "CRAM-MD5" and not realm.plain_text:
                return "CRAM-MD5 needs clear-text passwords (plain-text=\"true\")"
            return None
        if not realm.supports_mechanism(mechanism):
            return f"no user of realm '{realm.name}' has a credential {mechanism} can use"
    return None


def sasl_offer(config: ServerConfig, endpoint: EndpointConfig, realm: Realm) -> Offer:
    realm_config = config.realm(endpoint.hotrod_realm)
    sasl = endpoint.hotrod.authentication.sasl if endpoint.hotrod and endpoint.hotrod.authentication else None
    explicit = sasl.mechanisms if sasl is not None else ()
    policy = sasl.policy if sasl is not None else None
    wanted = offered_mechanisms(realm_config, "hotrod", explicit, policy)
    offered: list[str] = []
    left_out: list[tuple[str, str]] = []
    for name in wanted:
        if name not in MECHANISMS:
            if explicit:
                raise ConfigError(
                    f"not supported yet: SASL mechanism {name}",
                    file=str(config.source),
                    line=sasl.line if sasl is not None else endpoint.line,
                    element="sasl",
                )
            left_out.append((name, "not implemented by this server yet"))
            continue
        why = _servable(realm, name)
        if why is not None:
            left_out.append((name, why))
            continue
        offered.append(name)
    return Offer(tuple(offered), tuple(left_out))


def http_offer(config: ServerConfig, endpoint: EndpointConfig, realm: Realm) -> Offer:
    realm_config = config.realm(endpoint.rest_realm)
    auth = endpoint.rest.authentication if endpoint.rest else None
    explicit = auth.mechanisms if auth is not None else ()
    wanted = offered_mechanisms(realm_config, "rest", explicit)
    offered: list[str] = []
    left_out: list[tuple[str, str]] = []
    for name in wanted:
        if name not in HTTP_MECHANISMS:
            if explicit:
                raise ConfigError(
                    f"not supported yet: HTTP mechanism {name}",
                    file=str(config.source),
                    line=auth.line if auth is not None else endpoint.line,
                    element="authentication",
                )
            left_out.append((name, "not implemented by this server yet"))
            continue
        sasl_equivalent = {"DIGEST": "DIGEST-MD5", "BASIC": "PLAIN"}.get(name, name)
        why = _servable(realm, sasl_equivalent)
        if why is not None:
            left_out.append((name, why))
            continue
        offered.append(name)
    return Offer(tuple(offered), tuple(left_out))


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
    )
    return EndpointSecurity(
        realm=client,
        sasl_mechanisms=sasl_mechs.mechanisms,
        sasl_settings=settings,
        http_mechanisms=http_mechs.mechanisms,
        http_settings=HttpAuthSettings(realm=realm_name),
        auth_timeout_s=auth_timeout_s,
    )
