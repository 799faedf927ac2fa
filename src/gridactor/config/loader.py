"""Load an Infinispan server configuration file into :class:`ServerConfig`.

The reader follows the element structure of Infinispan's ``infinispan-config`` (the
``<cache-container>``) and ``infinispan-server`` (``<server>``: interfaces, socket
bindings, security realms, endpoints) schemas, versions 11.0 to 16.x. Each reader function
declares the attributes and children it accepts; anything else is an error with
FILE:LINE. Features the configuration uses are recorded as :class:`FeatureUse` so the
server can refuse what it does not implement instead of running with a silently weaker
configuration.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from gridactor.config.cache_definition import (
    CACHE_KINDS,
    TEMPLATE_KINDS,
    ParsedCache,
    read_cache,
    resolve_caches,
)
from gridactor.config.model import (
    CacheContainerConfig,
    CasePrincipalTransformer,
    CommonNamePrincipalTransformer,
    EndpointConfig,
    FeatureUse,
    GlobalAuthorizationConfig,
    GroupPropertiesConfig,
    HotRodAuthenticationConfig,
    HotRodConnectorConfig,
    InterfaceConfig,
    JwtConfig,
    KerberosIdentityConfig,
    KeyStoreConfig,
    LdapAttributeConfig,
    LdapIdentityMappingConfig,
    LdapRealmConfig,
    LdapUserPasswordMapperConfig,
    OAuth2IntrospectionConfig,
    PrincipalTransformer,
    PropertiesRealmConfig,
    RegexPrincipalTransformer,
    RestAuthenticationConfig,
    RestConnectorConfig,
    SaslConfig,
    SaslPolicyConfig,
    SecurityRealmConfig,
    ServerConfig,
    ServerIdentitiesConfig,
    ServerPaths,
    SocketBindingConfig,
    SocketBindingsConfig,
    SslEngineConfig,
    SslIdentityConfig,
    TokenRealmConfig,
    TrustStoreConfig,
    TrustStoreRealmConfig,
    UserPropertiesConfig,
    unsupported_features,
)
from gridactor.config.xml import SERVER, Attrs, Elem, Source, first, parse_document, read_file
from gridactor.errors import ConfigError

__all__ = ["CACHE_PERMISSIONS", "DEFAULT_ROLES", "load_config", "server_paths", "unsupported_features"]

CONFIG_PATH = "infinispan.server.config.path"
DATA_PATH = "infinispan.server.data.path"

CACHE_PERMISSIONS = frozenset(
    {
        "LIFECYCLE",
        "READ",
        "WRITE",
        "EXEC",
        "LISTEN",
        "BULK_READ",
        "BULK_WRITE",
        "ADMIN",
        "CREATE",
        "MONITOR",
        "ALL",
        "ALL_READ",
        "ALL_WRITE",
        "NONE",
        "CONFIGURATION",  # listed by the spec's cache-manager table (Infinispan checks ADMIN for it)
    }
)

# Infinispan's predefined roles, in force when <authorization> defines none (reference §2.6).
DEFAULT_ROLES: dict[str, frozenset[str]] = {
    "admin": frozenset({"ALL"}),
    "deployer": frozenset({"ALL_READ", "ALL_WRITE", "LISTEN", "EXEC", "CREATE", "MONITOR"}),
    "application": frozenset({"ALL_READ", "ALL_WRITE", "LISTEN", "EXEC", "MONITOR"}),
    "observer": frozenset({"ALL_READ", "MONITOR"}),
    "monitor": frozenset({"MONITOR"}),
}

SASL_MECHANISMS = frozenset(
    {
        "PLAIN",
        "DIGEST-MD5",
        "DIGEST-SHA",
        "DIGEST-SHA-256",
        "DIGEST-SHA-384",
        "DIGEST-SHA-512",
        "DIGEST-SHA-512-256",
        "SCRAM-SHA-1",
        "SCRAM-SHA-256",
        "SCRAM-SHA-384",
        "SCRAM-SHA-512",
        "SCRAM-SHA-1-PLUS",
        "SCRAM-SHA-256-PLUS",
        "SCRAM-SHA-384-PLUS",
        "SCRAM-SHA-512-PLUS",
        "CRAM-MD5",
        "GSSAPI",
        "GS2-KRB5",
        "GS2-KRB5-PLUS",
        "EXTERNAL",
        "OAUTHBEARER",
        "ANONYMOUS",
    }
)
HTTP_MECHANISMS = frozenset(
    {
        "BASIC",
        "DIGEST",
        "DIGEST-SHA-256",
        "DIGEST-SHA-512-256",
        "SPNEGO",
        "BEARER_TOKEN",
        "CLIENT_CERT",
    }
)
TLS_PROTOCOLS = frozenset({"SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"})
_POLICIES = (
    "forward-secrecy",
    "pass-credentials",
    "no-plain-text",
    "no-active",
    "no-dictionary",
    "no-anonymous",
)
_CONNECTOR_COMMON = {
    "socket-binding",
    "cache-container",
    "io-threads",
    "worker-threads",
    "idle-timeout",
    "tcp-nodelay",
    "tcp-keepalive",
    "send-buffer-size",
    "receive-buffer-size",
    "require-ssl-client-auth",
}
# Children of <cache-container> we recognise but do not read: each is one feature.
_CONTAINER_OPAQUE = {
    "transport": "clustering",
    "serialization": "serialization",
    "jmx": "jmx",
    "global-state": "global-state",
    "threads": "thread-pools",
    "tracing": "tracing",
    "blocking-bounded-queue-thread-pool": "thread-pools",
    "non-blocking-bounded-queue-thread-pool": "thread-pools",
    "scheduled-thread-pool": "thread-pools",
    "cached-thread-pool": "thread-pools",
}
_REALM_OPAQUE = {
    "filesystem-realm": "filesystem-realm",
    "local-realm": "local-realm",
    "kerberos-realm": "kerberos-realm",
    "aggregate-realm": "aggregate-realm",
    "distributed-realm": "distributed-realm",
}


def server_paths(config_file: Path, properties: Mapping[str, str]) -> ServerPaths:
    """The named paths for a config file; ``-D`` properties override each one."""
    conf = config_file.parent
    root = Path(properties.get("infinispan.server.root.path", conf.parent))
    return ServerPaths(
        config=Path(properties.get(CONFIG_PATH, conf)),
        home=Path(properties.get("infinispan.server.home.path", root)),
        root=root,
        data=Path(properties.get(DATA_PATH, root / "data")),
        log=Path(properties.get("infinispan.server.log.path", root / "log")),
    )


def load_config(
    path: str | Path, properties: Mapping[str, str] = {}, *, port_offset: int | None = None
) -> ServerConfig:
    """Read, validate and model a server configuration. Raises ConfigError (FILE:LINE: element: what)."""
    file = Path(path)
    data = read_file(file)
    paths = server_paths(file.absolute(), properties)
    props = {name: str(p) for name, p in paths.named().items()} | dict(properties)
    source = Source(file=str(path), properties=props)
    root = parse_document(data, source)
    return _Loader(source, paths, file).load(root, port_offset)


class _Loader:
    def __init__(self, source: Source, paths: ServerPaths, file: Path) -> None:
        self.source = source
        self.paths = paths
        self.file = file
        self.features: list[FeatureUse] = []

    def feature(self, name: str, elem: Elem) -> None:
        self.features.append(FeatureUse(name, elem.name, elem.file, elem.line))

    # ------------------------------------------------------------ document

    def load(self, root: Elem, port_offset: int | None) -> ServerConfig:
        if root.name != "infinispan" or root.family != "config":
            raise root.error(
                "the root element must be <infinispan> (namespace urn:infinispan:config:* or none)"
            )
        root.attrs()
        groups = root.children(
            {"cache-container": False, "server": False, "jgroups": False, "threads": False},
            families={"server": SERVER},
        )
        for name in ("jgroups", "threads"):
            opaque = first(groups, name)
            if opaque is not None:
                self.feature("clustering" if name == "jgroups" else "thread-pools", opaque)
        cc = first(groups, "cache-container")
        container = self.cache_container(cc) if cc is not None else self.empty_container(root)
        server = first(groups, "server")
        interfaces: dict[str, InterfaceConfig] = {}
        bindings = SocketBindingsConfig(None, 0, {}, root.line)
        realms: dict[str, SecurityRealmConfig] = {}
        endpoints: tuple[EndpointConfig, ...] = ()
        if server is not None:
            server.attrs()
            sg = server.children(
                {
                    "interfaces": False,
                    "socket-bindings": False,
                    "security": False,
                    "endpoints": False,
                    "data-sources": False,
                }
            )
            if (ds := first(sg, "data-sources")) is not None:
                self.feature("data-sources", ds)
            if (el := first(sg, "interfaces")) is not None:
                interfaces = self.interfaces(el)
            if (el := first(sg, "socket-bindings")) is not None:
                bindings = self.socket_bindings(el, interfaces, port_offset)
            if (el := first(sg, "security")) is not None:
                realms = self.security(el)
            if (el := first(sg, "endpoints")) is not None:
                endpoints = self.endpoints(el, bindings, realms)
        authz = container.authorization
        # Infinispan refuses this too (ISPN080070): every request would be anonymous and denied.
        if (
            authz is not None
            and authz.enabled
            and endpoints
            and not any(e.hotrod_realm or e.rest_realm for e in endpoints)
        ):
            raise ConfigError(
                "authorization is enabled but no endpoint has authentication (set security-realm)",
                file=self.source.file,
                line=authz.line,
                element="authorization",
            )
        return ServerConfig(
            source=self.file,
            paths=self.paths,
            cache_container=container,
            interfaces=interfaces,
            socket_bindings=bindings,
            security_realms=realms,
            endpoints=endpoints,
            features=tuple(self.features),
        )

    # ------------------------------------------------------------ cache container

    def empty_container(self, root: Elem) -> CacheContainerConfig:
        return CacheContainerConfig("default", None, True, {}, {}, {}, None, root.line)

    def cache_container(self, el: Elem) -> CacheContainerConfig:
        a = el.attrs(
            {
                "name",
                "default-cache",
                "statistics",
                "shutdown-hook",
                "zero-capacity-node",
                "start",
                "module",
                "jndi-name",
                "listener-executor",
                "non-blocking-executor",
                "blocking-executor",
                "expiration-executor",
                "async-executor",
                "persistence-executor",
                "state-transfer-executor",
            }
        )
        statistics = a.opt_bool("statistics")
        a.choice("shutdown-hook", ("DEFAULT", "REGISTER", "DONT_REGISTER"), "DEFAULT", upper=True)
        a.opt_bool("zero-capacity-node")
        allowed: dict[str, bool] = {"security": False, "metrics": False}
        allowed |= {name: False for name in _CONTAINER_OPAQUE}
        allowed |= {name: True for name in (*CACHE_KINDS, *TEMPLATE_KINDS)}
        caches: dict[str, ParsedCache] = {}
        templates: dict[str, ParsedCache] = {}
        authorization: GlobalAuthorizationConfig | None = None
        for child in el.ordered_children(allowed):
            if child.name in _CONTAINER_OPAQUE:
                self.feature(_CONTAINER_OPAQUE[child.name], child)
            elif child.name == "metrics":
                ma = child.attrs({"gauges", "histograms", "prefix", "names-as-tags", "accurate-size"})
                for flag in ("gauges", "histograms", "names-as-tags", "accurate-size"):
                    ma.opt_bool(flag)
                child.element_only()
                self.feature("metrics", child)
            elif child.name == "security":
                authorization = self.global_security(child)
            else:
                pc = read_cache(child)
                target = templates if child.name in TEMPLATE_KINDS else caches
                if pc.name in caches or pc.name in templates:
                    raise child.error(f"a cache or template named '{pc.name}' is already defined")
                target[pc.name] = pc
                self.features.extend(pc.features)
        cdefs, tdefs = resolve_caches(caches, templates, default_statistics=statistics)
        default = a.get("default-cache")
        if default is not None and default not in cdefs:
            raise el.error(f"default-cache '{default}' is not a defined cache")
        return CacheContainerConfig(
            name=a.string("name", "default"),
            default_cache=default,
            statistics=True if statistics is None else statistics,
            caches=cdefs,
            templates={n: d.settings for n, d in tdefs.items()},
            template_definitions=tdefs,
            authorization=authorization,
            line=el.line,
        )

    def global_security(self, el: Elem) -> GlobalAuthorizationConfig | None:
        a = el.attrs({"cache-size", "cache-timeout"})
        a.opt_int("cache-size", minimum=0)
        a.opt_duration_ms("cache-timeout")
        auth = first(el.children({"authorization": False}), "authorization")
        return self.authorization(auth) if auth is not None else None

    def authorization(self, el: Elem) -> GlobalAuthorizationConfig:
        a = el.attrs({"enabled", "audit-logger", "group-only-mapping"})
        mappers = {
            "identity-role-mapper": "identity",
            "common-name-role-mapper": "common-name",
            "cluster-role-mapper": "cluster",
            "custom-role-mapper": "custom",
        }
        allowed = dict.fromkeys(mappers, False) | {
            "cluster-permission-mapper": False,
            "custom-permission-mapper": False,
            "role": True,
            "roles": False,
        }
        role_mapper: str | None = None
        mapper_class: str | None = None
        permission_mapper = "cluster"
        permission_class: str | None = None
        role_elems: list[Elem] = []
        for child in el.ordered_children(allowed):
            if child.name in mappers:
                if role_mapper is not None:
                    raise child.error("only one role mapper may be configured")
                role_mapper = mappers[child.name]
                ca = child.attrs({"class"}, required=("class",) if role_mapper == "custom" else ())
                mapper_class = ca.get("class")
                if child.name == "cluster-role-mapper":
                    nr = first(child.children({"name-rewriter": False}), "name-rewriter")
                    if nr is not None:
                        self.name_rewriter(nr)
                else:
                    child.element_only()
                self.feature(child.name, child)
            elif child.name in ("cluster-permission-mapper", "custom-permission-mapper"):
                custom = child.name == "custom-permission-mapper"
                ca = child.attrs({"class"} if custom else (), required=("class",) if custom else ())
                child.element_only()
                permission_mapper = "custom" if custom else "cluster"
                permission_class = ca.get("class")
                if custom:
                    self.feature(child.name, child)
            elif child.name == "roles":
                child.attrs()
                role_elems.extend(child.children({"role": True}).get("role", []))
            else:
                role_elems.append(child)
        if role_mapper is None:
            # Infinispan's server default; recorded so the server can say it lacks it.
            role_mapper = "cluster"
            self.features.append(FeatureUse("cluster-role-mapper", el.name, el.file, el.line))
        roles: dict[str, frozenset[str]] = {}
        for r in role_elems:
            ra = r.attrs(
                {"name", "permissions", "permission", "description", "inheritable"}, required=("name",)
            )
            r.element_only()
            ra.opt_bool("inheritable")
            name = ra.string("name")
            if name in roles:
                raise r.error(f"role '{name}' is defined twice")
            # "permission" (singular) is the spelling of the spec's "Combining permissions" example.
            perms = ra.tokens("permissions") or ra.tokens("permission")
            roles[name] = self.permissions(r, perms)
        self.feature("authorization", el)
        return GlobalAuthorizationConfig(
            enabled=a.boolean("enabled", True),
            role_mapper=role_mapper,
            role_mapper_class=mapper_class,
            permission_mapper=permission_mapper,
            permission_mapper_class=permission_class,
            roles=roles or dict(DEFAULT_ROLES),
            roles_are_default=not roles,
            group_only_mapping=a.boolean("group-only-mapping", True),
            audit_logger=a.get("audit-logger"),
            line=el.line,
        )

    @staticmethod
    def permissions(el: Elem, names: tuple[str, ...]) -> frozenset[str]:
        out: set[str] = set()
        for raw in names:
            name = raw.upper()
            if name == "BULK":  # the spec's example shorthand for both bulk permissions
                out |= {"BULK_READ", "BULK_WRITE"}
            elif name in CACHE_PERMISSIONS:
                out.add(name)
            else:
                raise el.error(f"unknown permission '{raw}'")
        return frozenset(out)

    # ------------------------------------------------------------ interfaces, socket bindings

    def interfaces(self, el: Elem) -> dict[str, InterfaceConfig]:
        el.attrs()
        out: dict[str, InterfaceConfig] = {}
        selectors = {
            "inet-address": True,
            "loopback": False,
            "any-address": False,
            "non-loopback": False,
            "site-local": False,
            "global": False,
            "link-local": False,
            "match-interface": True,
            "match-address": True,
            "match-host": True,
        }  # value required?
        for iface in el.children({"interface": True}).get("interface", []):
            name = iface.attrs(required=("name",)).string("name")
            if name in out:
                raise iface.error(f"interface '{name}' is defined twice")
            chosen = iface.ordered_children(dict.fromkeys(selectors, False))
            if len(chosen) != 1:
                raise iface.error(
                    "an interface needs exactly one address selector such as <inet-address value=…>"
                )
            sel = chosen[0]
            needs_value = selectors[sel.name]
            sa = sel.attrs(required=("value",) if needs_value else ())
            sel.element_only()
            value = sa.get("value")
            if value is not None and not value.strip():
                raise sel.error("attribute 'value' must not be empty")
            if sel.name not in ("inet-address", "loopback", "any-address"):
                self.feature("interface-selector", sel)
            out[name] = InterfaceConfig(name, sel.name, value.strip() if value else None, iface.line)
        return out

    def socket_bindings(
        self, el: Elem, interfaces: Mapping[str, InterfaceConfig], port_offset: int | None
    ) -> SocketBindingsConfig:
        a = el.attrs({"default-interface", "port-offset"})
        offset = a.integer("port-offset", 0, minimum=0) if port_offset is None else port_offset
        default = a.get("default-interface")
        if default is not None and default not in interfaces:
            raise el.error(f"default-interface '{default}' is not a defined interface")
        bindings: dict[str, SocketBindingConfig] = {}
        for sb in el.children({"socket-binding": True}).get("socket-binding", []):
            sa = sb.attrs({"interface"}, required=("name", "port"))
            sb.text()  # simple content in the XSD, but it carries nothing
            name = sa.string("name")
            if name in bindings:
                raise sb.error(f"socket binding '{name}' is defined twice")
            port = sa.integer("port", 0, minimum=0)
            if port > 65535 or (port and port + offset > 65535):
                raise sb.error(f"attribute 'port': {port} (+ offset {offset}) is not a valid TCP port")
            iface = sa.get("interface")
            if iface is not None and iface not in interfaces:
                raise sb.error(f"interface '{iface}' is not a defined interface")
            if iface is None and default is None:
                raise sb.error("no interface given and socket-bindings has no default-interface")
            bindings[name] = SocketBindingConfig(name, port, iface, sb.line)
        return SocketBindingsConfig(default, offset, bindings, el.line)

    # ------------------------------------------------------------ paths

    def resolve_path(self, el: Elem, raw: str, relative_to: str | None, default: str | None) -> Path:
        p = Path(raw)
        if p.is_absolute():
            return p
        base_name = relative_to or default
        if base_name is None:
            return p
        named = self.paths.named()
        if base_name in named:
            return named[base_name] / p
        if base_name in self.source.properties:
            return Path(self.source.properties[base_name]) / p
        raise el.error(f"attribute 'relative-to': unknown path name '{base_name}'")

    # ------------------------------------------------------------ security realms

    def security(self, el: Elem) -> dict[str, SecurityRealmConfig]:
        el.attrs()
        groups = el.children({"security-realms": False, "credential-stores": False})
        if (cs := first(groups, "credential-stores")) is not None:
            self.feature("credential-store", cs)
        realms: dict[str, SecurityRealmConfig] = {}
        sr = first(groups, "security-realms")
        if sr is None:
            return realms
        sr.attrs()
        for realm in sr.children({"security-realm": True}).get("security-realm", []):
            cfg = self.security_realm(realm)
            if cfg.name in realms:
                raise realm.error(f"security realm '{cfg.name}' is defined twice")
            realms[cfg.name] = cfg
        return realms

    def security_realm(self, el: Elem) -> SecurityRealmConfig:
        a = el.attrs({"default-realm", "cache-max-size", "cache-lifespan"}, required=("name",))
        allowed = {
            "server-identities": False,
            "properties-realm": False,
            "ldap-realm": False,
            "truststore-realm": False,
            "token-realm": False,
        } | dict.fromkeys(_REALM_OPAQUE, False)
        g = el.children(allowed)
        for name, feature in _REALM_OPAQUE.items():
            if (opaque := first(g, name)) is not None:
                self.feature(feature, opaque)
        ids = first(g, "server-identities")
        props = first(g, "properties-realm")
        ldap = first(g, "ldap-realm")
        trust = first(g, "truststore-realm")
        token = first(g, "token-realm")
        return SecurityRealmConfig(
            name=a.string("name"),
            server_identities=self.server_identities(ids) if ids is not None else None,
            properties_realm=self.properties_realm(props) if props is not None else None,
            ldap_realm=self.ldap_realm(ldap) if ldap is not None else None,
            truststore_realm=self.truststore_realm(trust) if trust is not None else None,
            token_realm=self.token_realm(token) if token is not None else None,
            default_realm=a.get("default-realm"),
            cache_max_size=a.integer("cache-max-size", 256, minimum=0),
            cache_lifespan_ms=a.duration_ms("cache-lifespan", 60_000),
            line=el.line,
        )

    def properties_realm(self, el: Elem) -> PropertiesRealmConfig:
        a = el.attrs({"groups-attribute", "name"})
        g = el.children({"user-properties": False, "group-properties": False})
        up = first(g, "user-properties")
        if up is None:
            raise el.error("missing required element <user-properties>")
        ua = up.attrs({"relative-to", "digest-realm-name", "plain-text"}, required=("path",))
        up.element_only()
        users = UserPropertiesConfig(
            path=self.resolve_path(up, ua.string("path"), ua.get("relative-to"), CONFIG_PATH),
            relative_to=ua.get("relative-to"),
            plain_text=ua.boolean("plain-text", False),
            digest_realm_name=ua.get("digest-realm-name"),
            line=up.line,
        )
        groups: GroupPropertiesConfig | None = None
        if (gp := first(g, "group-properties")) is not None:
            ga = gp.attrs({"relative-to"}, required=("path",))
            gp.element_only()
            groups = GroupPropertiesConfig(
                self.resolve_path(gp, ga.string("path"), ga.get("relative-to"), CONFIG_PATH),
                ga.get("relative-to"),
                gp.line,
            )
        self.feature("properties-realm", el)
        return PropertiesRealmConfig(
            name=a.string("name", "properties"),
            groups_attribute=a.string("groups-attribute", "Roles"),
            user_properties=users,
            group_properties=groups,
            line=el.line,
        )

    def ldap_realm(self, el: Elem) -> LdapRealmConfig:
        a = el.attrs(
            {
                "name",
                "principal",
                "credential",
                "direct-verification",
                "page-size",
                "search-dn",
                "rdn-identifier",
                "connection-pooling",
                "enable-connection-pooling",
                "referral-mode",
                "connection-timeout",
                "read-timeout",
                "client-ssl-context",
            },
            required=("url",),
        )
        url = a.string("url")
        if not re.match(r"ldaps?://", url, re.IGNORECASE):
            raise el.error(f"attribute 'url': '{url}' is not an ldap:// or ldaps:// URL")
        g = el.children({"name-rewriter": False, "identity-mapping": True, "credential-reference": False})
        if (cr := first(g, "credential-reference")) is not None:
            self.feature("credential-reference", cr)
        nr = first(g, "name-rewriter")
        mappings = tuple(self.identity_mapping(m) for m in g.get("identity-mapping", []))
        self.feature("ldap-realm", el)
        # "enable-connection-pooling" is the 11.0 schema's name; later schemas (and the spec) say
        # "connection-pooling".
        pooling = a.boolean("connection-pooling", a.boolean("enable-connection-pooling", False))
        return LdapRealmConfig(
            name=a.string("name", "ldap"),
            url=url,
            principal=a.get("principal"),
            credential=a.get("credential"),
            direct_verification=a.boolean("direct-verification", False),
            page_size=a.integer("page-size", 50, minimum=1),
            search_dn=a.get("search-dn"),
            rdn_identifier=a.get("rdn-identifier"),
            connection_pooling=pooling,
            referral_mode=a.choice("referral-mode", ("ignore", "follow", "throw"), "ignore"),
            connection_timeout_ms=a.duration_ms("connection-timeout", 5000),
            read_timeout_ms=a.duration_ms("read-timeout", 60_000),
            client_ssl_context=a.get("client-ssl-context"),
            name_rewriter=self.name_rewriter(nr) if nr is not None else None,
            identity_mappings=mappings,
            line=el.line,
        )

    def name_rewriter(self, el: Elem) -> PrincipalTransformer:
        el.attrs()
        kids = el.ordered_children(
            {
                "regex-principal-transformer": False,
                "case-principal-transformer": False,
                "common-name-principal-transformer": False,
            }
        )
        if len(kids) != 1:
            raise el.error("a name rewriter needs exactly one principal transformer")
        t = kids[0]
        t.element_only()
        if t.name == "regex-principal-transformer":
            ta = t.attrs({"name", "replace-all"}, required=("pattern", "replacement"))
            try:
                re.compile(ta.string("pattern"))
            except re.error as exc:
                raise t.error(f"attribute 'pattern': invalid regular expression ({exc})") from None
            return RegexPrincipalTransformer(
                ta.get("name"),
                ta.string("pattern"),
                ta.string("replacement"),
                ta.boolean("replace-all", False),
                t.line,
            )
        if t.name == "case-principal-transformer":
            ta = t.attrs({"name", "uppercase"})
            return CasePrincipalTransformer(ta.get("name"), ta.boolean("uppercase", True), t.line)
        ta = t.attrs({"name"})
        return CommonNamePrincipalTransformer(ta.get("name"), t.line)

    def identity_mapping(self, el: Elem) -> LdapIdentityMappingConfig:
        a = el.attrs({"rdn-identifier", "search-dn", "search-recursive", "search-time-limit", "filter-name"})
        g = el.children({"attribute-mapping": False, "user-password-mapper": False})
        attributes: list[LdapAttributeConfig] = []
        if (am := first(g, "attribute-mapping")) is not None:
            am.attrs()
            for attr in am.ordered_children({"attribute": True, "attribute-reference": True}):
                attr.element_only()
                common = {
                    "filter-dn",
                    "from",
                    "to",
                    "search-recursive",
                    "role-recursion",
                    "role-recursion-name",
                    "extract-rdn",
                }
                is_ref = attr.name == "attribute-reference"
                aa = attr.attrs(
                    common | ({"reference"} if is_ref else {"filter"}),
                    required=("reference",) if is_ref else (),
                )
                attributes.append(
                    LdapAttributeConfig(
                        kind="reference" if is_ref else "filter",
                        filter=aa.get("filter"),
                        reference=aa.get("reference"),
                        filter_dn=aa.get("filter-dn"),
                        from_=aa.get("from"),
                        to=aa.get("to"),
                        search_recursive=aa.boolean("search-recursive", True),
                        role_recursion=aa.integer("role-recursion", 0, minimum=0),
                        role_recursion_name=aa.string("role-recursion-name", "cn"),
                        extract_rdn=aa.get("extract-rdn"),
                        line=attr.line,
                    )
                )
        mapper: LdapUserPasswordMapperConfig | None = None
        if (upm := first(g, "user-password-mapper")) is not None:
            ua = upm.attrs({"verifiable", "writable"}, required=("from",))
            upm.element_only()
            mapper = LdapUserPasswordMapperConfig(
                ua.string("from"), ua.boolean("verifiable", True), ua.boolean("writable", False), upm.line
            )
        return LdapIdentityMappingConfig(
            rdn_identifier=a.get("rdn-identifier"),
            search_dn=a.get("search-dn"),
            search_recursive=a.boolean("search-recursive", False),
            search_time_limit_ms=a.duration_ms("search-time-limit", 10_000),
            filter_name=a.get("filter-name"),
            attributes=tuple(attributes),
            user_password_mapper=mapper,
            line=el.line,
        )

    def truststore_realm(self, el: Elem) -> TrustStoreRealmConfig:
        a = el.attrs({"name", "path", "relative-to", "keystore-password", "provider"})
        el.element_only()
        raw = a.get("path")
        self.feature("truststore-realm", el)
        return TrustStoreRealmConfig(
            name=a.string("name", "trust"),
            path=self.resolve_path(el, raw, a.get("relative-to"), DATA_PATH) if raw else None,
            relative_to=a.get("relative-to"),
            password=a.get("keystore-password"),
            provider=a.get("provider"),
            line=el.line,
        )

    def token_realm(self, el: Elem) -> TokenRealmConfig:
        a = el.attrs({"name", "auth-server-url", "client-id", "principal-claim"})
        kids = el.ordered_children({"oauth2-introspection": False, "jwt": False})
        if len(kids) != 1:
            raise el.error("a token realm needs exactly one of <oauth2-introspection> or <jwt>")
        k = kids[0]
        intro: OAuth2IntrospectionConfig | None = None
        jwt: JwtConfig | None = None
        timeouts = {
            "connection-timeout",
            "read-timeout",
            "client-ssl-context",
            "host-name-verification-policy",
        }
        if k.name == "oauth2-introspection":
            ka = k.attrs(timeouts | {"client-secret"}, required=("client-id", "introspection-url"))
            if (cr := first(k.children({"credential-reference": False}), "credential-reference")) is not None:
                self.feature("credential-reference", cr)
            intro = OAuth2IntrospectionConfig(
                client_id=ka.string("client-id"),
                client_secret=ka.get("client-secret"),
                introspection_url=ka.string("introspection-url"),
                client_ssl_context=ka.get("client-ssl-context"),
                host_name_verification_policy=self.hostname_policy(
                    ka.get("host-name-verification-policy"), k
                ),
                connection_timeout_ms=ka.duration_ms("connection-timeout", 2000),
                read_timeout_ms=ka.duration_ms("read-timeout", 2000),
                line=k.line,
            )
        else:
            ka = k.attrs(timeouts | {"issuer", "audience", "public-key", "jku-timeout"})
            k.element_only()
            jwt = JwtConfig(
                issuers=ka.tokens("issuer"),
                audiences=ka.tokens("audience"),
                public_key=ka.get("public-key"),
                jku_timeout_ms=ka.opt_duration_ms("jku-timeout"),
                client_ssl_context=ka.get("client-ssl-context"),
                host_name_verification_policy=self.hostname_policy(
                    ka.get("host-name-verification-policy"), k
                ),
                connection_timeout_ms=ka.duration_ms("connection-timeout", 2000),
                read_timeout_ms=ka.duration_ms("read-timeout", 2000),
                line=k.line,
            )
        self.feature("token-realm", el)
        return TokenRealmConfig(
            name=a.string("name", "token"),
            auth_server_url=a.get("auth-server-url"),
            client_id=a.get("client-id"),
            principal_claim=a.string("principal-claim", "username"),
            introspection=intro,
            jwt=jwt,
            line=el.line,
        )

    @staticmethod
    def hostname_policy(value: str | None, el: Elem) -> str | None:
        if value is not None and value.upper() not in ("ANY", "DEFAULT"):
            raise el.error(f"attribute 'host-name-verification-policy': '{value}' is not one of ANY, DEFAULT")
        return value.upper() if value else None

    def server_identities(self, el: Elem) -> ServerIdentitiesConfig:
        el.attrs()
        g = el.children({"ssl": False, "kerberos": True})
        ssl = first(g, "ssl")
        return ServerIdentitiesConfig(
            ssl=self.ssl(ssl) if ssl is not None else None,
            kerberos=tuple(self.kerberos(k) for k in g.get("kerberos", [])),
            line=el.line,
        )

    def ssl(self, el: Elem) -> SslIdentityConfig:
        el.attrs()
        g = el.children({"keystore": False, "truststore": False, "engine": False})
        keystore: KeyStoreConfig | None = None
        truststore: TrustStoreConfig | None = None
        engine: SslEngineConfig | None = None
        if (ks := first(g, "keystore")) is not None:
            ka = ks.attrs(
                {
                    "path",
                    "relative-to",
                    "keystore-password",
                    "password",
                    "alias",
                    "key-password",
                    "provider",
                    "type",
                    "generate-self-signed-certificate-host",
                }
            )
            if (
                cr := first(ks.children({"credential-reference": False}), "credential-reference")
            ) is not None:
                self.feature("credential-reference", cr)
            raw = ka.get("path")
            if raw is None and ka.get("type") is None:
                raise ks.error("missing required attribute 'path'")
            if ka.get("generate-self-signed-certificate-host"):
                self.feature("self-signed-certificate", ks)
            keystore = KeyStoreConfig(
                path=self.resolve_path(ks, raw, ka.get("relative-to"), CONFIG_PATH) if raw else None,
                relative_to=ka.get("relative-to"),
                password=ka.get("password", ka.get("keystore-password")),
                alias=ka.get("alias"),
                key_password=ka.get("key-password"),
                provider=ka.get("provider"),
                type=ka.get("type"),
                generate_self_signed_certificate_host=ka.get("generate-self-signed-certificate-host"),
                line=ks.line,
            )
        if (ts := first(g, "truststore")) is not None:
            ta = ts.attrs({"path", "relative-to", "password", "keystore-password", "provider", "type"})
            if (
                cr := first(ts.children({"credential-reference": False}), "credential-reference")
            ) is not None:
                self.feature("credential-reference", cr)
            raw = ta.get("path")
            truststore = TrustStoreConfig(
                path=self.resolve_path(ts, raw, ta.get("relative-to"), CONFIG_PATH) if raw else None,
                relative_to=ta.get("relative-to"),
                password=ta.get("password", ta.get("keystore-password")),
                provider=ta.get("provider"),
                type=ta.get("type"),
                line=ts.line,
            )
        if (en := first(g, "engine")) is not None:
            ea = en.attrs(
                {
                    "enabled-protocols",
                    "enabled-ciphersuites",
                    "enabled-ciphersuites-tls13",
                    "enabled-named-groups",
                }
            )
            en.element_only()
            protocols = ea.tokens("enabled-protocols")
            for p in protocols:
                if p not in TLS_PROTOCOLS:
                    raise en.error(f"attribute 'enabled-protocols': unknown protocol '{p}'")
            engine = SslEngineConfig(
                protocols, ea.get("enabled-ciphersuites"), ea.get("enabled-ciphersuites-tls13"), en.line
            )
        self.feature("ssl-identity", el)
        return SslIdentityConfig(keystore, truststore, engine, el.line)

    def kerberos(self, el: Elem) -> KerberosIdentityConfig:
        a = el.attrs(
            {
                "relative-to",
                "required",
                "debug",
                "server",
                "obtain-kerberos-ticket",
                "wrap-gss-credential",
                "minimum-remaining-lifetime",
                "request-lifetime",
                "fail-cache",
                "mechanism-names",
                "mechanism-oids",
            },
            required=("principal", "keytab-path"),
        )
        el.children({"option": True})
        self.feature("kerberos-identity", el)
        return KerberosIdentityConfig(
            principal=a.string("principal"),
            keytab_path=self.resolve_path(el, a.string("keytab-path"), a.get("relative-to"), CONFIG_PATH),
            relative_to=a.get("relative-to"),
            required=a.boolean("required", False),
            debug=a.boolean("debug", False),
            server=a.boolean("server", True),
            obtain_kerberos_ticket=a.boolean("obtain-kerberos-ticket", False),
            wrap_gss_credential=a.boolean("wrap-gss-credential", False),
            minimum_remaining_lifetime_s=a.integer("minimum-remaining-lifetime", 0, minimum=0),
            request_lifetime_s=a.opt_int("request-lifetime"),
            fail_cache_s=a.opt_int("fail-cache"),
            mechanism_names=a.tokens("mechanism-names") or ("KRB5", "SPNEGO"),
            mechanism_oids=a.tokens("mechanism-oids"),
            line=el.line,
        )

    # ------------------------------------------------------------ endpoints

    def endpoints(
        self, el: Elem, bindings: SocketBindingsConfig, realms: Mapping[str, SecurityRealmConfig]
    ) -> tuple[EndpointConfig, ...]:
        attrs = _CONNECTOR_COMMON | {"security-realm", "admin", "metrics-auth", "implicit-connectors"}
        a = el.attrs(attrs)
        kids = el.ordered_children(
            {
                "endpoint": True,
                "hotrod-connector": False,
                "rest-connector": False,
                "memcached-connector": False,
                "resp-connector": False,
            }
        )
        nested = [k for k in kids if k.name == "endpoint"]
        if nested and len(nested) != len(kids):
            raise el.error("connectors go either directly in <endpoints> or in <endpoint> elements, not both")
        defaults = (a.get("socket-binding"), a.get("security-realm"))
        if nested:
            out = []
            for ep in nested:
                ea = ep.attrs(attrs)
                out.append(
                    self.endpoint(
                        ep,
                        ea.get("socket-binding") or defaults[0],
                        ea.get("security-realm") or defaults[1],
                        ea,
                        bindings,
                        realms,
                        ep.ordered_children(
                            {
                                "hotrod-connector": False,
                                "rest-connector": False,
                                "memcached-connector": False,
                                "resp-connector": False,
                            }
                        ),
                    )
                )
            return tuple(out)
        return (self.endpoint(el, defaults[0], defaults[1], a, bindings, realms, kids),)

    def check_realm(self, el: Elem, realm: str | None, realms: Mapping[str, SecurityRealmConfig]) -> None:
        if realm is not None and realm not in realms:
            raise el.error(f"security realm '{realm}' is not defined")

    def check_binding(self, el: Elem, binding: str | None, bindings: SocketBindingsConfig) -> None:
        if binding is not None and binding not in bindings.bindings:
            raise el.error(f"socket binding '{binding}' is not defined")

    def endpoint(
        self,
        el: Elem,
        binding: str | None,
        realm: str | None,
        a: Attrs,
        bindings: SocketBindingsConfig,
        realms: Mapping[str, SecurityRealmConfig],
        kids: list[Elem],
    ) -> EndpointConfig:
        if binding is None:
            raise el.error("missing required attribute 'socket-binding'")
        self.check_binding(el, binding, bindings)
        self.check_realm(el, realm, realms)
        for flag in ("tcp-nodelay", "tcp-keepalive", "admin", "metrics-auth", "implicit-connectors"):
            a.opt_bool(flag)
        for num in ("io-threads", "worker-threads", "send-buffer-size", "receive-buffer-size"):
            a.opt_int(num, minimum=0)
        require_client_auth = a.boolean("require-ssl-client-auth", False)
        if require_client_auth:
            r = realms.get(realm or "")
            if r is None or not r.has_tls:
                raise el.error("require-ssl-client-auth needs a security realm with an SSL identity")
        hotrod: HotRodConnectorConfig | None = None
        rest: RestConnectorConfig | None = None
        for k in kids:
            if k.name == "hotrod-connector":
                hotrod = self.hotrod_connector(k, realm, bindings, realms)
            elif k.name == "rest-connector":
                rest = self.rest_connector(k, realm, bindings, realms)
            else:
                self.feature(k.name.removesuffix("-connector"), k)
        if not kids:
            # Infinispan 12+: an empty <endpoints> enables every protocol on the binding.
            hotrod = HotRodConnectorConfig("hotrod", None, None, None, None, 0, True, False, el.line)
            rest = RestConnectorConfig("rest", None, "rest", None, "ON_DEMAND", None, None, el.line)
            if realm is not None:
                self.feature("hotrod-authentication", el)
                self.feature("rest-authentication", el)
        return EndpointConfig(
            socket_binding=binding,
            security_realm=realm,
            hotrod=hotrod,
            rest=rest,
            require_ssl_client_auth=require_client_auth,
            idle_timeout_s=a.integer("idle-timeout", 0, minimum=0),
            line=el.line,
        )

    def connector_binding(self, el: Elem, binding: str | None, bindings: SocketBindingsConfig) -> None:
        self.check_binding(el, binding, bindings)
        if binding is not None:
            self.feature("connector-socket-binding", el)

    def hotrod_connector(
        self,
        el: Elem,
        realm: str | None,
        bindings: SocketBindingsConfig,
        realms: Mapping[str, SecurityRealmConfig],
    ) -> HotRodConnectorConfig:
        a = el.attrs(_CONNECTOR_COMMON | {"name", "external-host", "external-port"})
        g = el.children({"topology-state-transfer": False, "authentication": False, "encryption": False})
        self.connector_binding(el, a.get("socket-binding"), bindings)
        if (tst := first(g, "topology-state-transfer")) is not None:
            ta = tst.attrs(
                {"lock-timeout", "replication-timeout", "lazy-retrieval", "await-initial-retrieval"}
            )
            tst.element_only()
            ta.opt_duration_ms("lock-timeout")
            ta.opt_duration_ms("replication-timeout")
            ta.opt_bool("lazy-retrieval")
            ta.opt_bool("await-initial-retrieval")
        if (enc := first(g, "encryption")) is not None:
            self.encryption(enc, realms)
        auth: HotRodAuthenticationConfig | None = None
        if (au := first(g, "authentication")) is not None:
            aa = au.attrs({"security-realm"})
            own_realm = aa.get("security-realm")
            self.check_realm(au, own_realm, realms)
            if own_realm is None and realm is None:
                raise au.error("authentication needs a security realm (on <endpoints> or here)")
            sasl_el = first(au.children({"sasl": False}), "sasl")
            auth = HotRodAuthenticationConfig(own_realm, self.sasl(sasl_el) if sasl_el else None, au.line)
        effective = (auth.security_realm if auth else None) or realm
        if effective is not None:
            self.feature("hotrod-authentication", au if auth is not None and au is not None else el)
        for num in ("io-threads", "worker-threads", "send-buffer-size", "receive-buffer-size"):
            a.opt_int(num, minimum=0)
        return HotRodConnectorConfig(
            name=a.string("name", "hotrod"),
            socket_binding=a.get("socket-binding"),
            authentication=auth,
            external_host=a.get("external-host"),
            external_port=a.opt_int("external-port", minimum=1),
            idle_timeout_s=a.integer("idle-timeout", 0, minimum=0),
            tcp_nodelay=a.boolean("tcp-nodelay", True),
            tcp_keepalive=a.boolean("tcp-keepalive", False),
            line=el.line,
        )

    def encryption(self, el: Elem, realms: Mapping[str, SecurityRealmConfig]) -> None:
        a = el.attrs({"require-ssl-client-auth"}, required=("security-realm",))
        a.opt_bool("require-ssl-client-auth")
        self.check_realm(el, a.get("security-realm"), realms)
        for sni in el.children({"sni": True}).get("sni", []):
            sa = sni.attrs({"security-realm"}, required=("host-name",))
            sni.element_only()
            self.check_realm(sni, sa.get("security-realm"), realms)
        self.feature("connector-encryption", el)

    def sasl(self, el: Elem) -> SaslConfig:
        a = el.attrs({"server-principal", "server-name", "mechanisms", "qop", "strength", "policy"})
        mechs = tuple(m.upper() for m in a.tokens("mechanisms"))
        for m in mechs:
            if m not in SASL_MECHANISMS:
                raise el.error(f"attribute 'mechanisms': unknown SASL mechanism '{m}'")
        qop = a.tokens("qop")
        for q in qop:
            if q not in ("auth", "auth-int", "auth-conf"):
                raise el.error(f"attribute 'qop': '{q}' is not one of auth, auth-int, auth-conf")
        strength = a.tokens("strength")
        for s in strength:
            if s not in ("low", "medium", "high"):
                raise el.error(f"attribute 'strength': '{s}' is not one of low, medium, high")
        policy: dict[str, bool] = {}
        for p in a.tokens("policy"):  # later schemas: policy="no-plain-text no-active"
            if p not in _POLICIES:
                raise el.error(f"attribute 'policy': unknown policy '{p}'")
            policy[p] = True
        g = el.children({"policy": False, "property": True})
        if (pol := first(g, "policy")) is not None:
            pol.attrs()
            for child in pol.ordered_children(dict.fromkeys(_POLICIES, False)):
                policy[child.name] = child.attrs(required=("value",)).boolean("value", False)
                child.element_only()
        props: dict[str, str] = {}
        for prop in g.get("property", []):
            props[prop.attrs(required=("name",)).string("name")] = prop.text()
        return SaslConfig(
            mechanisms=mechs,
            server_name=a.get("server-name"),
            server_principal=a.get("server-principal"),
            qop=qop,
            strength=strength,
            policy=SaslPolicyConfig(**{k.replace("-", "_"): v for k, v in policy.items()})
            if policy
            else None,
            properties=props,
            line=el.line,
        )

    def rest_connector(
        self,
        el: Elem,
        realm: str | None,
        bindings: SocketBindingsConfig,
        realms: Mapping[str, SecurityRealmConfig],
    ) -> RestConnectorConfig:
        a = el.attrs(
            _CONNECTOR_COMMON
            | {
                "name",
                "context-path",
                "extended-headers",
                "max-content-length",
                "compression-level",
                "compression-threshold",
            }
        )
        g = el.children({"authentication": False, "cors-rules": False, "encryption": False})
        self.connector_binding(el, a.get("socket-binding"), bindings)
        if (cors := first(g, "cors-rules")) is not None:
            self.feature("cors", cors)
        if (enc := first(g, "encryption")) is not None:
            self.encryption(enc, realms)
        auth: RestAuthenticationConfig | None = None
        au = first(g, "authentication")
        if au is not None:
            aa = au.attrs({"security-realm", "mechanisms", "server-principal", "metrics-auth"})
            au.element_only()
            aa.opt_bool("metrics-auth")
            own_realm = aa.get("security-realm")
            self.check_realm(au, own_realm, realms)
            mechs = tuple(m.upper() for m in aa.tokens("mechanisms") if m.upper() != "NONE")
            for m in mechs:
                if m not in HTTP_MECHANISMS:
                    raise au.error(f"attribute 'mechanisms': unknown HTTP mechanism '{m}'")
            if own_realm is None and realm is None:
                raise au.error("authentication needs a security realm (on <endpoints> or here)")
            auth = RestAuthenticationConfig(own_realm, mechs, aa.get("server-principal"), au.line)
        if ((auth.security_realm if auth else None) or realm) is not None:
            self.feature("rest-authentication", au if au is not None else el)
        context = a.string("context-path", "rest").strip("/") or "rest"
        a.opt_int("compression-threshold", minimum=0)
        for num in ("io-threads", "worker-threads", "send-buffer-size", "receive-buffer-size"):
            a.opt_int(num, minimum=0)
        a.opt_bool("tcp-nodelay")
        a.opt_bool("tcp-keepalive")
        a.opt_int("idle-timeout", minimum=0)
        return RestConnectorConfig(
            name=a.string("name", "rest"),
            socket_binding=a.get("socket-binding"),
            context_path=context,
            authentication=auth,
            extended_headers=a.choice("extended-headers", ("NEVER", "ON_DEMAND"), "ON_DEMAND", upper=True),
            max_content_length=a.opt_int("max-content-length", minimum=0),
            compression_level=a.opt_int("compression-level", minimum=0),
            line=el.line,
        )
