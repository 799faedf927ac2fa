"""Every XML example of the spec, wrapped into a full server configuration, loads as expected."""

from __future__ import annotations

from pathlib import Path

from gridactor.config import check_config, offered_mechanisms
from gridactor.config.check import endpoint_mechanisms
from gridactor.config.model import CommonNamePrincipalTransformer, RegexPrincipalTransformer

from .conftest import (
    AUTH_ENDPOINTS,
    DEFAULT_REALM,
    NETWORK,
    SPEC_EXAMPLES,
    Loader,
    server_xml,
    spec_example,
)


def with_security(name: str) -> str:
    return server_xml(NETWORK + spec_example(name) + AUTH_ENDPOINTS)


def with_endpoints(fragment: str) -> str:
    return server_xml(NETWORK + DEFAULT_REALM + fragment)


def features(cfg: object) -> set[str]:
    return {f.feature for f in cfg.features}  # type: ignore[attr-defined]


def test_every_example_file_is_used() -> None:
    used = set(Path(__file__).read_text().split('"'))
    files = {p.name for p in SPEC_EXAMPLES.glob("*.xml")}
    assert files
    assert files <= used


def test_properties_realm(load: Loader, tmp_path: Path) -> None:
    cfg = load(with_security("4.1.1-properties-realm.xml"))
    realm = cfg.security_realms["default"]
    pr = realm.properties_realm
    assert pr is not None
    assert pr.groups_attribute == "Roles"
    assert pr.user_properties.path == tmp_path / "users.properties"
    assert pr.user_properties.plain_text is True
    assert pr.user_properties.relative_to == "infinispan.server.config.path"
    assert pr.group_properties is not None
    assert pr.group_properties.path == tmp_path / "groups.properties"
    assert "properties-realm" in features(cfg)
    ep = cfg.endpoints[0]
    assert endpoint_mechanisms(cfg, ep) == {
        "hotrod": (
            "SCRAM-SHA-512",
            "SCRAM-SHA-384",
            "SCRAM-SHA-256",
            "SCRAM-SHA-1",
            "DIGEST-SHA-512",
            "DIGEST-SHA-384",
            "DIGEST-SHA-256",
            "DIGEST-SHA",
            "CRAM-MD5",
            "DIGEST-MD5",
        ),
        "rest": ("DIGEST",),
    }


def test_ldap_realm(load: Loader) -> None:
    cfg = load(with_security("4.1.2-ldap-realm.xml"))
    ldap = cfg.security_realms["default"].ldap_realm
    assert ldap is not None
    assert ldap.name == "ldap"
    assert ldap.url == "ldap://my-ldap-server:10389"
    assert ldap.principal == "uid=admin,ou=People,dc=infinispan,dc=org"
    assert ldap.credential == "strongPassword"
    assert "strongPassword" not in repr(ldap)
    assert (ldap.connection_timeout_ms, ldap.read_timeout_ms) == (3000, 30000)
    assert ldap.connection_pooling is True
    assert ldap.referral_mode == "ignore"
    assert ldap.page_size == 30
    assert ldap.direct_verification is True
    (mapping,) = ldap.identity_mappings
    assert mapping.rdn_identifier == "uid"
    assert mapping.search_dn == "ou=People,dc=infinispan,dc=org"
    (attr,) = mapping.attributes
    assert attr.kind == "filter"
    assert (attr.from_, attr.to) == ("cn", "Roles")
    assert attr.filter == "(&(objectClass=groupOfNames)(member={1}))"
    assert attr.filter_dn == "ou=Roles,dc=infinispan,dc=org"
    assert "ldap-realm" in features(cfg)
    # Direct verification alone gives no challenge-response mechanism (no password to read).
    assert endpoint_mechanisms(cfg, cfg.endpoints[0]) == {"hotrod": (), "rest": ()}


def test_ldap_attribute_reference(load: Loader) -> None:
    text = spec_example("4.1.2-ldap-realm.xml").replace(
        "</attribute-mapping>", spec_example("4.1.2-ldap-attribute-reference.xml") + "</attribute-mapping>"
    )
    cfg = load(server_xml(NETWORK + text + AUTH_ENDPOINTS))
    ldap = cfg.security_realms["default"].ldap_realm
    assert ldap is not None
    ref = ldap.identity_mappings[0].attributes[1]
    assert (ref.kind, ref.reference, ref.from_, ref.to) == ("reference", "memberOf", "cn", "Roles")


def test_ldap_principal_rewriting(load: Loader) -> None:
    cfg = load(
        server_xml(NETWORK + spec_example("4.1.2.1-ldap-principal-rewriting.xml") + AUTH_ENDPOINTS),
        {"org.infinispan.test.host.address": "10.0.0.7"},
    )
    ldap = cfg.security_realms["default"].ldap_realm
    assert ldap is not None
    assert ldap.url == "ldap://10.0.0.7:10389"
    rw = ldap.name_rewriter
    assert isinstance(rw, RegexPrincipalTransformer)
    assert (rw.name, rw.pattern, rw.replacement, rw.replace_all) == (
        "domain-remover",
        r"(.*)@INFINISPAN\.ORG",
        "$1",
        False,
    )
    mapper = ldap.identity_mappings[0].user_password_mapper
    assert mapper is not None
    assert mapper.from_ == "userPassword"
    assert mapper.verifiable
    assert ldap.has_password_mapper
    assert offered_mechanisms(cfg.security_realms["default"], "rest") == ("DIGEST",)


def test_common_name_rewriter(load: Loader) -> None:
    text = spec_example("4.1.2.1-ldap-principal-rewriting.xml")
    start, end = text.index("<regex-principal-transformer"), text.index("</name-rewriter>")
    text = text[:start] + "<common-name-principal-transformer/>" + text[end:]
    cfg = load(server_xml(NETWORK + text + AUTH_ENDPOINTS), {"org.infinispan.test.host.address": "h"})
    ldap = cfg.security_realms["default"].ldap_realm
    assert ldap is not None
    assert isinstance(ldap.name_rewriter, CommonNamePrincipalTransformer)


def test_truststore_realm(load: Loader, tmp_path: Path) -> None:
    cfg = load(with_security("4.1.3-truststore-realm.xml"))
    realm = cfg.security_realms["default"]
    tr = realm.truststore_realm
    assert tr is not None
    assert tr.path == tmp_path / "trust.p12"
    assert tr.password == "secret"
    assert realm.has_tls
    assert {"truststore-realm", "ssl-identity"} <= features(cfg)
    assert endpoint_mechanisms(cfg, cfg.endpoints[0]) == {"hotrod": ("EXTERNAL",), "rest": ("CLIENT_CERT",)}


def test_token_realm(load: Loader) -> None:
    cfg = load(with_security("4.1.4-token-realm.xml"))
    tok = cfg.security_realms["default"].token_realm
    assert tok is not None
    assert (tok.name, tok.auth_server_url, tok.principal_claim) == (
        "token",
        "https://oauth-server/auth/",
        "username",
    )
    intro = tok.introspection
    assert intro is not None
    assert tok.jwt is None
    assert intro.introspection_url.endswith("/openid-connect/token/introspect")  # type: ignore[union-attr]
    assert intro.client_id == "infinispan-server"
    assert intro.client_secret == "1fdca4ec-c416-47e0-867a-3d471af7050f"
    assert "1fdca4ec" not in repr(tok)
    assert endpoint_mechanisms(cfg, cfg.endpoints[0]) == {
        "hotrod": ("OAUTHBEARER",),
        "rest": ("BEARER_TOKEN",),
    }


def test_ssl_identity(load: Loader, tmp_path: Path) -> None:
    cfg = load(with_security("4.2.1.1-ssl-identity.xml"))
    ssl = cfg.security_realms["default"].server_identities.ssl  # type: ignore[union-attr]
    assert ssl is not None
    assert ssl.keystore is not None
    ks = ssl.keystore
    assert (ks.path, ks.password, ks.alias) == (tmp_path / "server.p12", "secret", "server")
    assert ks.generate_self_signed_certificate_host is None
    assert "ssl-identity" in features(cfg)


def test_ssl_generated_keystore(load: Loader) -> None:
    cfg = load(with_security("4.2.1.2-ssl-generated-keystore.xml"))
    ks = cfg.security_realms["default"].server_identities.ssl.keystore  # type: ignore[union-attr]
    assert ks is not None
    assert ks.generate_self_signed_certificate_host == "localhost"
    assert "self-signed-certificate" in features(cfg)
    # A keystore the server generates may be missing.
    assert check_config(cfg, strict=True).errors == []


def test_ssl_engine(load: Loader) -> None:
    cfg = load(with_security("4.2.1.3-ssl-engine.xml"))
    engine = cfg.security_realms["default"].server_identities.ssl.engine  # type: ignore[union-attr]
    assert engine is not None
    assert engine.enabled_protocols == ("TLSv1.2", "TLSv1.1")
    assert engine.enabled_ciphersuites == "SSL_RSA_WITH_AES_128_GCM_SHA256 SSL_RSA_WITH_AES_128_CBC_SHA256"


def test_kerberos_identities(load: Loader, tmp_path: Path) -> None:
    cfg = load(with_security("4.2.2.1-kerberos-identity.xml"))
    realm = cfg.security_realms["default"]
    hotrod, http = realm.kerberos
    assert (hotrod.principal, hotrod.keytab_path, hotrod.required) == (
        "hotrod/datagrid@INFINISPAN.ORG",
        tmp_path / "hotrod.keytab",
        True,
    )
    assert http.principal == "HTTP/localhost@INFINISPAN.ORG"
    assert "kerberos-identity" in features(cfg)
    assert endpoint_mechanisms(cfg, cfg.endpoints[0]) == {
        "hotrod": ("GS2-KRB5", "GSSAPI"),
        "rest": ("SPNEGO",),
    }
    # A missing file is a warning without --strict (even a required keytab, which `run`
    # refuses to start without, as the warning says) and an error with it.
    report = check_config(cfg, strict=False)
    assert report.errors == []
    required = "hotrod.keytab does not exist (required: `run` will refuse to start without it)"
    assert required in report.warnings[0]
    assert len(check_config(cfg, strict=True).errors) == 2


def test_default_security_realm_and_endpoints(load: Loader) -> None:
    security = (
        "<security><security-realms>"
        + spec_example("4.3.1-default-security-realm.xml")
        + "</security-realms></security>"
    )
    cfg = load(server_xml(NETWORK + security + spec_example("4.3.1-default-endpoints.xml")))
    (ep,) = cfg.endpoints
    assert (ep.socket_binding, ep.security_realm) == ("default", "default")
    assert ep.hotrod is not None
    assert ep.hotrod.name == "hotrod"
    assert ep.rest is not None
    assert ep.rest.name == "rest"
    assert (ep.hotrod_realm, ep.rest_realm) == ("default", "default")
    assert cfg.endpoint_address(ep) == ("127.0.0.1", 11222)
    assert {"hotrod-authentication", "rest-authentication"} <= features(cfg)


def test_hotrod_scram_digest_plain(load: Loader) -> None:
    cfg = load(with_endpoints(spec_example("4.3.2.1-hotrod-scram-digest-plain.xml")))
    (ep,) = cfg.endpoints
    assert ep.hotrod is not None
    assert ep.rest is None
    sasl = ep.hotrod.authentication.sasl  # type: ignore[union-attr]
    assert sasl is not None
    assert sasl.mechanisms == (
        "SCRAM-SHA-512",
        "SCRAM-SHA-384",
        "SCRAM-SHA-256",
        "SCRAM-SHA-1",
        "DIGEST-SHA-512",
        "DIGEST-SHA-384",
        "DIGEST-SHA-256",
        "DIGEST-SHA",
        "DIGEST-MD5",
        "PLAIN",
    )
    assert (sasl.server_name, sasl.qop) == ("infinispan", ("auth",))
    # Explicit mechanisms are offered as configured, PLAIN included even without TLS.
    assert endpoint_mechanisms(cfg, ep)["hotrod"] == sasl.mechanisms


def test_hotrod_kerberos(load: Loader) -> None:
    cfg = load(with_endpoints(spec_example("4.3.2.1-hotrod-kerberos.xml")))
    sasl = cfg.endpoints[0].hotrod.authentication.sasl  # type: ignore[union-attr]
    assert sasl is not None
    assert sasl.mechanisms == ("GSSAPI", "GS2-KRB5")
    assert (sasl.server_name, sasl.server_principal) == ("datagrid", "hotrod/datagrid@INFINISPAN.ORG")


def test_hotrod_sasl_policy(load: Loader) -> None:
    security = DEFAULT_REALM.replace('name="default"', 'name="ApplicationRealm"')
    endpoints = (
        f'<endpoints socket-binding="default">{spec_example("4.3.2.4-hotrod-sasl-policy.xml")}</endpoints>'
    )
    cfg = load(server_xml(NETWORK + security + endpoints))
    (ep,) = cfg.endpoints
    assert ep.security_realm is None
    hr = ep.hotrod
    assert hr is not None
    assert hr.socket_binding == "hotrod"
    assert cfg.effective_port("hotrod") == 11223
    auth = hr.authentication
    assert auth is not None
    assert auth.security_realm == "ApplicationRealm"
    assert ep.hotrod_realm == "ApplicationRealm"
    assert auth.sasl is not None
    assert auth.sasl.policy is not None
    pol = auth.sasl.policy
    assert (pol.no_active, pol.no_anonymous, pol.no_plain_text, pol.no_dictionary) == (True, True, True, None)
    # The spec: "the Hot Rod connector uses the GSSAPI mechanism because it is the only
    # mechanism that complies with all policies."
    assert endpoint_mechanisms(cfg, ep)["hotrod"] == ("GSSAPI",)
    assert "connector-socket-binding" in features(cfg)


def test_sasl_policy_no_anonymous_false(load: Loader) -> None:
    fragment = spec_example("4.3.2.4-sasl-no-anonymous.xml")
    policy = f"<policy>{fragment}</policy>"
    endpoints = (
        '<endpoints socket-binding="default" security-realm="default"><hotrod-connector><authentication>'
        f'<sasl mechanisms="SCRAM-SHA-256">{policy}</sasl></authentication></hotrod-connector></endpoints>'
    )
    cfg = load(with_endpoints(endpoints))
    pol = cfg.endpoints[0].hotrod.authentication.sasl.policy  # type: ignore[union-attr]
    assert pol is not None
    assert pol.no_anonymous is False
    assert pol.anonymous_allowed


def test_rest_basic_digest(load: Loader) -> None:
    cfg = load(with_endpoints(spec_example("4.3.3.1-rest-basic-digest.xml")))
    (ep,) = cfg.endpoints
    assert ep.hotrod is None
    assert ep.rest is not None
    assert ep.rest.authentication is not None
    assert ep.rest.authentication.mechanisms == ("DIGEST", "BASIC")
    assert endpoint_mechanisms(cfg, ep) == {"rest": ("DIGEST", "BASIC")}
    assert "rest-authentication" in features(cfg)


def test_rest_kerberos(load: Loader) -> None:
    cfg = load(with_endpoints(spec_example("4.3.3.1-rest-kerberos.xml")))
    auth = cfg.endpoints[0].rest.authentication  # type: ignore[union-attr]
    assert auth is not None
    assert (auth.mechanisms, auth.server_principal) == (("SPNEGO",), "HTTP/localhost@INFINISPAN.ORG")


def test_endpoints_without_authentication(load: Loader) -> None:
    cfg = load(with_endpoints(spec_example("4.4-endpoints-no-authentication.xml")))
    (ep,) = cfg.endpoints
    assert ep.security_realm is None
    assert ep.hotrod_realm is None
    assert ep.rest_realm is None
    assert endpoint_mechanisms(cfg, ep) == {"hotrod": (), "rest": ()}
    assert not {"hotrod-authentication", "rest-authentication"} & features(cfg)


def _authz_container(roles_xml: str, mapper: str = "<identity-role-mapper/>") -> str:
    return (
        '<cache-container name="default" default-cache="default"><security><authorization>'
        f"{mapper}{roles_xml}</authorization></security>"
        '<local-cache name="default"><security><authorization/></security></local-cache></cache-container>'
    )


def test_combining_permissions(load: Loader) -> None:
    container = _authz_container(spec_example("4.5.1.1-combining-permissions.xml"))
    cfg = load(server_xml(NETWORK + DEFAULT_REALM + AUTH_ENDPOINTS, container))
    auth = cfg.cache_container.authorization
    assert auth is not None
    assert not auth.roles_are_default
    assert auth.roles == {
        "standard": frozenset({"READ", "WRITE"}),
        "supervisors": frozenset({"READ", "WRITE", "EXEC", "BULK_READ", "BULK_WRITE"}),
    }


def test_role_mappers(load: Loader) -> None:
    for file, kind, cls in (
        ("4.5.1.2-identity-role-mapper.xml", "identity", None),
        ("4.5.1.2-common-name-role-mapper.xml", "common-name", None),
        ("4.5.1.2-custom-role-mapper.xml", "custom", "my.custom.RoleMapper"),
    ):
        container = _authz_container('<role name="admin" permissions="ALL"/>', spec_example(file))
        cfg = load(server_xml(NETWORK + DEFAULT_REALM + AUTH_ENDPOINTS, container))
        auth = cfg.cache_container.authorization
        assert auth is not None
        assert (auth.role_mapper, auth.role_mapper_class) == (kind, cls)
        assert f"{kind}-role-mapper" in features(cfg)


def _with_server(infinispan_doc: str) -> str:
    server = f'<server xmlns="urn:infinispan:server:15.0">{NETWORK}{DEFAULT_REALM}{AUTH_ENDPOINTS}</server>'
    return infinispan_doc.replace("</infinispan>", server + "</infinispan>")


def test_declarative_authorization(load: Loader) -> None:
    cfg = load(_with_server(spec_example("4.5.2-authorization.xml")))
    cc = cfg.cache_container
    assert (cc.name, cc.default_cache) == ("secured", "secured")
    auth = cc.authorization
    assert auth is not None
    assert auth.enabled
    assert auth.role_mapper == "identity"
    assert auth.roles == {
        "admin": frozenset({"ALL"}),
        "reader": frozenset({"READ"}),
        "writer": frozenset({"WRITE"}),
        "supervisor": frozenset({"READ", "WRITE", "EXEC"}),
    }
    cache = cc.caches["secured"]
    assert cache.authorization is not None
    assert cache.authorization.enabled
    assert cache.authorization.roles == ()
    assert {"authorization", "cache-authorization"} <= features(cfg)


def test_declarative_authorization_cache_roles(load: Loader) -> None:
    cfg = load(_with_server(spec_example("4.5.2-authorization-cache-roles.xml")))
    cache = cfg.cache_container.caches["secured"]
    assert cache.authorization is not None
    assert cache.authorization.roles == ("admin", "supervisor", "reader")


def test_spec_examples_without_server_section(load: Loader) -> None:
    # The spec's own documents have no <server>; they load as a container-only config.
    cfg = load(spec_example("4.5.2-authorization.xml"))
    assert cfg.endpoints == ()
    assert cfg.cache_container.default_cache == "secured"


def test_tls_enables_plain_and_basic(load: Loader) -> None:
    ssl = spec_example("4.2.1.1-ssl-identity.xml")
    realm = spec_example("4.3.1-default-security-realm.xml")
    props = realm[realm.index("<properties-realm") : realm.index("</security-realm>")]
    cfg = load(
        server_xml(
            NETWORK + ssl.replace("</server-identities>", "</server-identities>" + props) + AUTH_ENDPOINTS
        )
    )
    r = cfg.security_realms["default"]
    assert offered_mechanisms(r, "rest") == ("DIGEST", "BASIC")
    assert offered_mechanisms(r, "hotrod")[-1] == "PLAIN"
    assert offered_mechanisms(r, "hotrod", legacy=False) == (
        "SCRAM-SHA-512",
        "SCRAM-SHA-384",
        "SCRAM-SHA-256",
        "DIGEST-SHA-512",
        "DIGEST-SHA-384",
        "DIGEST-SHA-256",
        "PLAIN",
    )
    assert offered_mechanisms(r, "rest", legacy=False) == ("DIGEST-SHA-256", "BASIC")
    assert offered_mechanisms(None, "hotrod") == ()
