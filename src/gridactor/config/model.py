"""The loaded configuration: frozen, slotted dataclasses, each with its source line.

Everything here is plain data, already validated and with ``${...}`` expanded and relative
paths resolved. Secrets (passwords, client secrets, LDAP credentials) are excluded from
``repr`` so a logged model never leaks them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gridactor.cache.api import CacheSettings
from gridactor.errors import ConfigError

__all__ = [
    "CacheAuthorizationConfig",
    "CacheContainerConfig",
    "CacheDefinition",
    "CasePrincipalTransformer",
    "CommonNamePrincipalTransformer",
    "EndpointConfig",
    "FeatureUse",
    "GlobalAuthorizationConfig",
    "GroupPropertiesConfig",
    "HotRodAuthenticationConfig",
    "HotRodConnectorConfig",
    "InterfaceConfig",
    "JwtConfig",
    "KerberosIdentityConfig",
    "KeyStoreConfig",
    "LdapAttributeConfig",
    "LdapIdentityMappingConfig",
    "LdapRealmConfig",
    "LdapUserPasswordMapperConfig",
    "OAuth2IntrospectionConfig",
    "PrincipalTransformer",
    "PropertiesRealmConfig",
    "RegexPrincipalTransformer",
    "RestAuthenticationConfig",
    "RestConnectorConfig",
    "SaslConfig",
    "SaslPolicyConfig",
    "SecurityRealmConfig",
    "ServerConfig",
    "ServerIdentitiesConfig",
    "ServerPaths",
    "SocketBindingConfig",
    "SocketBindingsConfig",
    "SslEngineConfig",
    "SslIdentityConfig",
    "TokenRealmConfig",
    "TrustStoreConfig",
    "TrustStoreRealmConfig",
    "UserPropertiesConfig",
    "unsupported_features",
]


@dataclass(frozen=True, slots=True)
class FeatureUse:
    """One use of a configuration feature, so the server can refuse what it lacks."""

    feature: str
    element: str
    file: str
    line: int

    def describe(self) -> str:
        return f"not supported yet: <{self.element}> ({self.file}:{self.line})"


# ---------------------------------------------------------------- paths


@dataclass(frozen=True, slots=True)
class ServerPaths:
    """The named paths ``relative-to`` may refer to (Infinispan's ``infinispan.server.*.path``)."""

    config: Path
    home: Path
    root: Path
    data: Path
    log: Path

    def named(self) -> dict[str, Path]:
        return {
            "infinispan.server.config.path": self.config,
            "infinispan.server.home.path": self.home,
            "infinispan.server.root.path": self.root,
            "infinispan.server.data.path": self.data,
            "infinispan.server.log.path": self.log,
        }


# ---------------------------------------------------------------- interfaces, socket bindings


@dataclass(frozen=True, slots=True)
class InterfaceConfig:
    """``<interface>``: ``kind`` is the selector element (inet-address, loopback, any-address…)."""

    name: str
    kind: str
    value: str | None
    line: int

    @property
    def address(self) -> str | None:
        """A literal bind address, or None when the selector needs host inspection."""
        if self.kind == "inet-address":
            return self.value
        if self.kind == "loopback":
            return "127.0.0.1"
        if self.kind == "any-address":
            return "0.0.0.0"
        return None


@dataclass(frozen=True, slots=True)
class SocketBindingConfig:
    name: str
    port: int
    interface: str | None  # None: the socket-bindings' default-interface
    line: int


@dataclass(frozen=True, slots=True)
class SocketBindingsConfig:
    default_interface: str | None
    port_offset: int
    bindings: dict[str, SocketBindingConfig]
    line: int


# ---------------------------------------------------------------- security realms


@dataclass(frozen=True, slots=True)
class UserPropertiesConfig:
    path: Path
    relative_to: str | None
    plain_text: bool
    digest_realm_name: str | None
    line: int


@dataclass(frozen=True, slots=True)
class GroupPropertiesConfig:
    path: Path
    relative_to: str | None
    line: int


@dataclass(frozen=True, slots=True)
class PropertiesRealmConfig:
    name: str
    groups_attribute: str
    user_properties: UserPropertiesConfig
    group_properties: GroupPropertiesConfig | None
    line: int


@dataclass(frozen=True, slots=True)
class RegexPrincipalTransformer:
    name: str | None
    pattern: str
    replacement: str
    replace_all: bool
    line: int


@dataclass(frozen=True, slots=True)
class CasePrincipalTransformer:
    name: str | None
    uppercase: bool
    line: int


@dataclass(frozen=True, slots=True)
class CommonNamePrincipalTransformer:
    name: str | None
    line: int


PrincipalTransformer = RegexPrincipalTransformer | CasePrincipalTransformer | CommonNamePrincipalTransformer


@dataclass(frozen=True, slots=True)
class LdapAttributeConfig:
    """``<attribute filter=…>`` (kind ``filter``) or ``<attribute-reference reference=…>``."""

    kind: str
    filter: str | None
    reference: str | None
    filter_dn: str | None
    from_: str | None
    to: str | None
    search_recursive: bool
    role_recursion: int
    role_recursion_name: str
    extract_rdn: str | None
    line: int


@dataclass(frozen=True, slots=True)
class LdapUserPasswordMapperConfig:
    from_: str
    verifiable: bool
    writable: bool
    line: int


@dataclass(frozen=True, slots=True)
class LdapIdentityMappingConfig:
    rdn_identifier: str | None
    search_dn: str | None
    search_recursive: bool
    search_time_limit_ms: int
    filter_name: str | None
    attributes: tuple[LdapAttributeConfig, ...]
    user_password_mapper: LdapUserPasswordMapperConfig | None
    line: int


@dataclass(frozen=True, slots=True)
class LdapRealmConfig:
    name: str
    url: str
    principal: str | None
    credential: str | None = field(repr=False)
    direct_verification: bool
    page_size: int
    search_dn: str | None
    rdn_identifier: str | None
    connection_pooling: bool
    referral_mode: str
    connection_timeout_ms: int
    read_timeout_ms: int
    client_ssl_context: str | None
    name_rewriter: PrincipalTransformer | None
    identity_mappings: tuple[LdapIdentityMappingConfig, ...]
    line: int

    @property
    def has_password_mapper(self) -> bool:
        return any(m.user_password_mapper is not None for m in self.identity_mappings)


@dataclass(frozen=True, slots=True)
class TrustStoreRealmConfig:
    """``<truststore-realm>``: 11.0 form carries its own keystore; later forms use the SSL truststore."""

    name: str
    path: Path | None
    relative_to: str | None
    password: str | None = field(repr=False)
    provider: str | None
    line: int


@dataclass(frozen=True, slots=True)
class OAuth2IntrospectionConfig:
    client_id: str | None
    client_secret: str | None = field(repr=False)
    introspection_url: str | None
    client_ssl_context: str | None
    host_name_verification_policy: str | None
    connection_timeout_ms: int
    read_timeout_ms: int
    line: int


@dataclass(frozen=True, slots=True)
class JwtConfig:
    issuers: tuple[str, ...]
    audiences: tuple[str, ...]
    public_key: str | None
    jku_timeout_ms: int | None
    client_ssl_context: str | None
    host_name_verification_policy: str | None
    connection_timeout_ms: int
    read_timeout_ms: int
    line: int


@dataclass(frozen=True, slots=True)
class TokenRealmConfig:
    name: str
    auth_server_url: str | None
    client_id: str | None
    principal_claim: str
    introspection: OAuth2IntrospectionConfig | None
    jwt: JwtConfig | None
    line: int


@dataclass(frozen=True, slots=True)
class KeyStoreConfig:
    path: Path | None
    relative_to: str | None
    password: str | None = field(repr=False)
    alias: str | None
    key_password: str | None = field(repr=False)
    provider: str | None
    type: str | None
    generate_self_signed_certificate_host: str | None
    line: int


@dataclass(frozen=True, slots=True)
class TrustStoreConfig:
    path: Path | None
    relative_to: str | None
    password: str | None = field(repr=False)
    provider: str | None
    type: str | None
    line: int


@dataclass(frozen=True, slots=True)
class SslEngineConfig:
    enabled_protocols: tuple[str, ...]
    enabled_ciphersuites: str | None
    enabled_ciphersuites_tls13: str | None
    line: int


@dataclass(frozen=True, slots=True)
class SslIdentityConfig:
    keystore: KeyStoreConfig | None
    truststore: TrustStoreConfig | None
    engine: SslEngineConfig | None
    line: int


@dataclass(frozen=True, slots=True)
class KerberosIdentityConfig:
    principal: str
    keytab_path: Path
    relative_to: str | None
    required: bool
    debug: bool
    server: bool
    obtain_kerberos_ticket: bool
    wrap_gss_credential: bool
    minimum_remaining_lifetime_s: int
    request_lifetime_s: int | None
    fail_cache_s: int | None
    mechanism_names: tuple[str, ...]
    mechanism_oids: tuple[str, ...]
    line: int


@dataclass(frozen=True, slots=True)
class ServerIdentitiesConfig:
    ssl: SslIdentityConfig | None
    kerberos: tuple[KerberosIdentityConfig, ...]
    line: int


@dataclass(frozen=True, slots=True)
class SecurityRealmConfig:
    name: str
    server_identities: ServerIdentitiesConfig | None
    properties_realm: PropertiesRealmConfig | None
    ldap_realm: LdapRealmConfig | None
    truststore_realm: TrustStoreRealmConfig | None
    token_realm: TokenRealmConfig | None
    default_realm: str | None
    cache_max_size: int
    cache_lifespan_ms: int
    line: int

    @property
    def has_tls(self) -> bool:
        """An SSL identity with a keystore: endpoints using this realm speak TLS."""
        ids = self.server_identities
        return ids is not None and ids.ssl is not None and ids.ssl.keystore is not None

    @property
    def kerberos(self) -> tuple[KerberosIdentityConfig, ...]:
        return self.server_identities.kerberos if self.server_identities else ()


# ---------------------------------------------------------------- endpoints


@dataclass(frozen=True, slots=True)
class SaslPolicyConfig:
    """SASL policies (spec 4.3.2.4). None = not configured (the spec's default applies:
    false for all, except ``no_anonymous``, whose default true refuses anonymous logins)."""

    forward_secrecy: bool | None = None
    pass_credentials: bool | None = None
    no_plain_text: bool | None = None
    no_active: bool | None = None
    no_dictionary: bool | None = None
    no_anonymous: bool | None = None

    @property
    def anonymous_allowed(self) -> bool:
        return self.no_anonymous is False

    def enabled(self) -> list[str]:
        """The policies set to true, by their XML names (``no-active`` …)."""
        return [
            name.replace("_", "-")
            for name in ("forward_secrecy", "pass_credentials", "no_plain_text", "no_active", "no_dictionary",
                         "no_anonymous")
            if getattr(self, name) is True
        ]


@dataclass(frozen=True, slots=True)
class SaslConfig:
    mechanisms: tuple[str, ...]  # empty: derived from the realm (offered_mechanisms)
    server_name: str | None
    server_principal: str | None
    qop: tuple[str, ...]
    strength: tuple[str, ...]
    policy: SaslPolicyConfig | None  # None: no policy configured
    properties: dict[str, str]
    line: int


@dataclass(frozen=True, slots=True)
class HotRodAuthenticationConfig:
    security_realm: str | None
    sasl: SaslConfig | None
    line: int


@dataclass(frozen=True, slots=True)
class HotRodConnectorConfig:
    name: str
    socket_binding: str | None  # None: the endpoint's
    authentication: HotRodAuthenticationConfig | None
    external_host: str | None
    external_port: int | None
    idle_timeout_s: int
    tcp_nodelay: bool
    tcp_keepalive: bool
    line: int


@dataclass(frozen=True, slots=True)
class RestAuthenticationConfig:
    security_realm: str | None
    mechanisms: tuple[str, ...]  # empty: derived from the realm
    server_principal: str | None
    line: int


@dataclass(frozen=True, slots=True)
class RestConnectorConfig:
    name: str
    socket_binding: str | None
    context_path: str
    authentication: RestAuthenticationConfig | None
    extended_headers: str
    max_content_length: int | None
    compression_level: int | None
    line: int


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """One ``<endpoints>``/``<endpoint>``: a socket binding serving Hot Rod and/or REST."""

    socket_binding: str
    security_realm: str | None  # None: authentication disabled (spec 4.4)
    hotrod: HotRodConnectorConfig | None
    rest: RestConnectorConfig | None
    require_ssl_client_auth: bool
    idle_timeout_s: int
    line: int

    @property
    def hotrod_realm(self) -> str | None:
        """Realm for Hot Rod authentication: the connector's ``<authentication security-realm>`` wins."""
        if self.hotrod and self.hotrod.authentication and self.hotrod.authentication.security_realm:
            return self.hotrod.authentication.security_realm
        return self.security_realm

    @property
    def rest_realm(self) -> str | None:
        if self.rest and self.rest.authentication and self.rest.authentication.security_realm:
            return self.rest.authentication.security_realm
        return self.security_realm


# ---------------------------------------------------------------- cache container


@dataclass(frozen=True, slots=True)
class GlobalAuthorizationConfig:
    """``<cache-container><security><authorization>``."""

    enabled: bool
    role_mapper: str  # "cluster" | "identity" | "common-name" | "custom"
    role_mapper_class: str | None
    permission_mapper: str  # "cluster" | "custom"
    permission_mapper_class: str | None
    roles: dict[str, frozenset[str]]  # role -> permission names (expanded aliases kept as written)
    roles_are_default: bool  # no <role> given: Infinispan's predefined roles apply
    group_only_mapping: bool
    audit_logger: str | None
    line: int


@dataclass(frozen=True, slots=True)
class CacheAuthorizationConfig:
    enabled: bool
    roles: tuple[str, ...]  # empty: every global role applies
    line: int


@dataclass(frozen=True, slots=True)
class CacheDefinition:
    name: str
    kind: str  # element name: local-cache, distributed-cache, …
    settings: CacheSettings
    authorization: CacheAuthorizationConfig | None
    template: str | None  # configuration="…"
    sync_mode: str | None  # SYNC | ASYNC for clustered caches
    owners: int | None
    segments: int | None
    aliases: tuple[str, ...]
    line: int


@dataclass(frozen=True, slots=True)
class CacheContainerConfig:
    name: str
    default_cache: str | None
    statistics: bool
    caches: dict[str, CacheDefinition]
    templates: dict[str, CacheSettings]
    template_definitions: dict[str, CacheDefinition]
    authorization: GlobalAuthorizationConfig | None
    line: int


# ---------------------------------------------------------------- the whole server


@dataclass(frozen=True, slots=True)
class ServerConfig:
    source: Path
    paths: ServerPaths
    cache_container: CacheContainerConfig
    interfaces: dict[str, InterfaceConfig]
    socket_bindings: SocketBindingsConfig
    security_realms: dict[str, SecurityRealmConfig]
    endpoints: tuple[EndpointConfig, ...]
    features: tuple[FeatureUse, ...]

    def _binding(self, binding: str) -> SocketBindingConfig:
        found = self.socket_bindings.bindings.get(binding)
        if found is None:
            raise ConfigError(f"no socket binding named '{binding}'", file=str(self.source))
        return found

    def binding_address(self, binding: SocketBindingConfig | str) -> str:
        """Like :meth:`bind_address`, for a binding object or name."""
        return self.bind_address(binding if isinstance(binding, str) else binding.name)

    def effective_port(self, binding: str) -> int:
        """The TCP port to listen on: the binding's port plus the port offset (0 stays 0)."""
        port = self._binding(binding).port
        return port + self.socket_bindings.port_offset if port else 0

    def bind_address(self, binding: str) -> str:
        """The literal address of the binding's interface. Raises ConfigError if not literal."""
        sb = self._binding(binding)
        name = sb.interface or self.socket_bindings.default_interface
        iface = self.interfaces.get(name or "")
        if iface is None:
            raise ConfigError(
                f"socket binding '{binding}' has no interface", file=str(self.source), line=sb.line
            )
        if iface.address is None:
            raise ConfigError(
                f"interface '{iface.name}' uses <{iface.kind}>, which is not supported yet",
                file=str(self.source),
                line=iface.line,
                element="interface",
            )
        return iface.address

    def endpoint_address(self, endpoint: EndpointConfig) -> tuple[str, int]:
        return self.bind_address(endpoint.socket_binding), self.effective_port(endpoint.socket_binding)

    def realm(self, name: str | None) -> SecurityRealmConfig | None:
        return None if name is None else self.security_realms.get(name)


def unsupported_features(config: ServerConfig, implemented: set[str] | frozenset[str]) -> list[FeatureUse]:
    """Feature uses the server does not implement; refuse with ``FeatureUse.describe()``."""
    return [f for f in config.features if f.feature not in implemented]
