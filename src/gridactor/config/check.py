"""``gridactor config check``: what a configuration would do, and what is wrong with it.

``offered_mechanisms`` is the single place that turns a realm into the authentication
mechanisms an endpoint offers (spec 4.3.1 tables, in Infinispan's order), so the check
report, the Hot Rod ``AUTH_MECH_LIST`` answer and the REST challenges cannot disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gridactor.config.model import (
    EndpointConfig,
    SaslPolicyConfig,
    SecurityRealmConfig,
    ServerConfig,
)
from gridactor.errors import ConfigError
from gridactor.security.sasl.policy import filter_mechanisms

__all__ = ["CheckReport", "check_config", "offered_mechanisms"]

# Infinispan ≤16.0 (we present as 15.1) offers the legacy hashes too; 16.1 dropped them.
_SASL_HASHED_LEGACY = (
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
)
_SASL_HASHED = (
    "SCRAM-SHA-512",
    "SCRAM-SHA-384",
    "SCRAM-SHA-256",
    "DIGEST-SHA-512",
    "DIGEST-SHA-384",
    "DIGEST-SHA-256",
)

def _password_realm(realm: SecurityRealmConfig) -> bool:
    """Can the realm hand out password credentials (needed by SCRAM/DIGEST)?"""
    if realm.properties_realm is not None:
        return True
    ldap = realm.ldap_realm
    # LDAP only with a readable password attribute: direct verification (bind as the user)
    # cannot serve challenge-response mechanisms.
    return ldap is not None and any(
        m.user_password_mapper is not None and m.user_password_mapper.verifiable
        for m in ldap.identity_mappings
    )


def offered_mechanisms(
    realm: SecurityRealmConfig | None,
    protocol: str,
    explicit: Sequence[str] = (),
    policy: SaslPolicyConfig | None = None,
    *,
    legacy: bool = True,
) -> tuple[str, ...]:
    """The mechanisms an endpoint offers, in preference order.

    ``protocol`` is ``"hotrod"`` (SASL) or ``"rest"`` (HTTP). No realm: none (authentication
    disabled, spec 4.4). ``explicit`` (``mechanisms=`` on the connector) replaces the
    realm-derived list. SASL policies that are set to true remove the mechanisms they forbid.
    ``legacy`` keeps the MD5/SHA-1 mechanisms Infinispan offered before 16.1.
    """
    if realm is None:
        return ()
    if protocol not in ("hotrod", "rest"):
        raise ValueError(f"unknown protocol {protocol!r}")
    mechs: list[str] = []
    if explicit:
        mechs = [m.upper() for m in explicit]
    else:
        kerberos_prefix = "hotrod/" if protocol == "hotrod" else "HTTP/"
        if any(k.principal.startswith(kerberos_prefix) for k in realm.kerberos):
            mechs += ["GS2-KRB5", "GSSAPI"] if protocol == "hotrod" else ["SPNEGO"]
        if realm.token_realm is not None:
            mechs.append("OAUTHBEARER" if protocol == "hotrod" else "BEARER_TOKEN")
        if realm.truststore_realm is not None:
            mechs.append("EXTERNAL" if protocol == "hotrod" else "CLIENT_CERT")
        if _password_realm(realm):
            if protocol == "hotrod":
                mechs += _SASL_HASHED_LEGACY if legacy else _SASL_HASHED
            else:
                mechs.append("DIGEST" if legacy else "DIGEST-SHA-256")
            # Clear-text passwords only over TLS (spec: SSL/TLS identities -> PLAIN / BASIC).
            if realm.has_tls:
                mechs.append("PLAIN" if protocol == "hotrod" else "BASIC")
    if protocol == "hotrod" and policy is not None:
        mechs = filter_mechanisms(mechs, policy.enabled())
    return tuple(dict.fromkeys(mechs))


@dataclass(slots=True)
class CheckReport:
    summary: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def lines(self) -> list[str]:
        return [
            *self.summary,
            *(f"warning: {w}" for w in self.warnings),
            *(f"error: {e}" for e in self.errors),
        ]


def endpoint_mechanisms(config: ServerConfig, ep: EndpointConfig) -> dict[str, tuple[str, ...]]:
    """Per connector of ``ep`` ("hotrod"/"rest"), the mechanisms it would offer."""
    out: dict[str, tuple[str, ...]] = {}
    if ep.hotrod is not None:
        auth = ep.hotrod.authentication
        sasl = auth.sasl if auth else None
        out["hotrod"] = offered_mechanisms(
            config.realm(ep.hotrod_realm),
            "hotrod",
            sasl.mechanisms if sasl else (),
            sasl.policy if sasl else None,
        )
    if ep.rest is not None:
        rauth = ep.rest.authentication
        out["rest"] = offered_mechanisms(
            config.realm(ep.rest_realm), "rest", rauth.mechanisms if rauth else ()
        )
    return out


def _realm_kinds(realm: SecurityRealmConfig) -> list[str]:
    kinds = []
    for attr, label in (
        ("properties_realm", "properties-realm"),
        ("ldap_realm", "ldap-realm"),
        ("truststore_realm", "truststore-realm"),
        ("token_realm", "token-realm"),
    ):
        if getattr(realm, attr) is not None:
            kinds.append(label)
    if realm.has_tls:
        kinds.append("ssl-identity")
    kinds += [f"kerberos {k.principal}" for k in realm.kerberos]
    return kinds


def check_config(config: ServerConfig, *, strict: bool) -> CheckReport:
    """Summarise ``config`` and look for problems a load cannot see (missing files).

    Missing referenced files are warnings, or errors with ``strict``. A keystore that the
    server generates (``generate-self-signed-certificate-host``) may be missing.
    """
    report = CheckReport()
    cc = config.cache_container
    report.summary.append(
        f"cache-container '{cc.name}': {len(cc.caches)} cache(s), default cache "
        f"{cc.default_cache or '(none)'}{', authorization' if cc.authorization else ''}"
    )
    for c in cc.caches.values():
        s = c.settings
        extra = f", roles {' '.join(c.authorization.roles) or '(all)'}" if c.authorization else ""
        report.summary.append(
            f"cache '{c.name}': {s.mode}, lifespan {s.lifespan_ms} ms, max-idle {s.max_idle_ms} ms, "
            f"max-count {s.max_count}{extra}"
        )
    for name in cc.templates:
        report.summary.append(f"template '{name}'")
    for realm in config.security_realms.values():
        report.summary.append(f"realm '{realm.name}': {', '.join(_realm_kinds(realm)) or '(empty)'}")

    def missing(what: str, path: Path | None, line: int, *, needed_to_start: bool = False) -> None:
        # A missing file is a warning (the configuration itself is valid: the file may be
        # deployed later) unless --strict; one the server cannot start without says so.
        if path is None or path.exists():
            return
        text = f"{config.source}:{line}: {what} {path} does not exist"
        if needed_to_start:
            text += " (required: `run` will refuse to start without it)"
        (report.errors if strict else report.warnings).append(text)

    for realm in config.security_realms.values():
        if (pr := realm.properties_realm) is not None:
            missing("users file", pr.user_properties.path, pr.user_properties.line)
            if pr.group_properties is not None:
                missing("groups file", pr.group_properties.path, pr.group_properties.line)
        if (tr := realm.truststore_realm) is not None:
            missing("truststore", tr.path, tr.line)
        ids = realm.server_identities
        if ids is not None and ids.ssl is not None:
            ks = ids.ssl.keystore
            if ks is not None and not ks.generate_self_signed_certificate_host:
                missing("keystore", ks.path, ks.line)
            if ids.ssl.truststore is not None:
                missing("truststore", ids.ssl.truststore.path, ids.ssl.truststore.line)
        for k in realm.kerberos:
            missing("keytab", k.keytab_path, k.line, needed_to_start=k.required)
        if (
            (ldap := realm.ldap_realm) is not None
            and not _password_realm(realm)
            and not ldap.direct_verification
        ):
            report.warnings.append(
                f"{config.source}:{ldap.line}: realm '{realm.name}': LDAP realm without "
                "<user-password-mapper> or direct-verification cannot verify passwords"
            )

    for ep in config.endpoints:
        try:
            host, port = config.endpoint_address(ep)
            where = f"{host}:{port}"
        except ConfigError as exc:
            where = f"(unresolved: {exc.message})"
        ep_realm = config.realm(ep.security_realm)
        tls = " TLS" if ep_realm is not None and ep_realm.has_tls else ""
        mechs = endpoint_mechanisms(config, ep)
        parts = [f"{proto} [{' '.join(m) if m else 'no authentication'}]" for proto, m in mechs.items()]
        report.summary.append(
            f"endpoint '{ep.socket_binding}' at {where}{tls}, realm {ep.security_realm or '(none)'}: "
            + ", ".join(parts)
        )
        for proto, m in mechs.items():
            realm_name = ep.hotrod_realm if proto == "hotrod" else ep.rest_realm
            if realm_name is not None and not m:
                report.warnings.append(
                    f"{config.source}:{ep.line}: {proto} on '{ep.socket_binding}': realm '{realm_name}' "
                    "offers no authentication mechanism, so no client can log in"
                )
    from gridactor.server.tls import check_tls_material  # keystores: wrong password, alias, BCFKS

    report.errors += check_tls_material(config)
    return report
