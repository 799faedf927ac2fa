"""The LDAP realm against a real OpenLDAP (the session's ``slapd`` fixture, tests/data/ldap)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from tests.fixtures.slapd import SERVICE_DN, SERVICE_PASSWORD, SUFFIX, Slapd, free_port, start_slapd

from gridactor.config.model import (
    LdapAttributeConfig,
    LdapIdentityMappingConfig,
    LdapRealmConfig,
    LdapUserPasswordMapperConfig,
    PrincipalTransformer,
    RegexPrincipalTransformer,
    SecurityRealmConfig,
)
from gridactor.errors import ConfigError
from gridactor.security.credentials import ClearPassword
from gridactor.security.realms.ldap import (
    Directory,
    DirectoryError,
    DirectoryUnavailableError,
    LdapRealm,
    build_ldap_realm,
    parse_urls,
)
from gridactor.security.rewriters import MAX_NAME_LENGTH

PEOPLE = f"ou=People,{SUFFIX}"
ROLES = f"ou=Roles,{SUFFIX}"
GROUP_FILTER = "(&(objectClass=groupOfNames)(member={1}))"


def group_filter(recursion: int = 0) -> LdapAttributeConfig:
    return LdapAttributeConfig(
        "filter", GROUP_FILTER, None, ROLES, "cn", "Roles", True, recursion, "cn", None, 1
    )


MEMBER_OF = LdapAttributeConfig("reference", None, "memberOf", None, "cn", "Roles", True, 0, "cn", None, 1)
PASSWORD_MAPPER = LdapUserPasswordMapperConfig("userPassword", True, False, 1)


def realm_config(
    url: str,
    *,
    direct: bool = True,
    mapper: bool = False,
    attributes: tuple[LdapAttributeConfig, ...] = (group_filter(),),
    search_dn: str = SUFFIX,
    recursive: bool = True,
    referral_mode: str = "ignore",
    pooling: bool = False,
    rewriter: PrincipalTransformer | None = None,
    principal: str | None = SERVICE_DN,
    cache_max_size: int = 0,
    connect_timeout_ms: int = 2000,
    page_size: int = 50,
) -> SecurityRealmConfig:
    mapping = LdapIdentityMappingConfig(
        "uid", search_dn, recursive, 10_000, None, attributes, PASSWORD_MAPPER if mapper else None, 1
    )
    ldap = LdapRealmConfig(
        name="ldap",
        url=url,
        principal=principal,
        credential=SERVICE_PASSWORD if principal else None,
        direct_verification=direct,
        page_size=page_size,
        search_dn=None,
        rdn_identifier=None,
        connection_pooling=pooling,
        referral_mode=referral_mode,
        connection_timeout_ms=connect_timeout_ms,
        read_timeout_ms=5000,
        client_ssl_context=None,
        name_rewriter=rewriter,
        identity_mappings=(mapping,),
        line=3,
    )
    return SecurityRealmConfig("default", None, None, ldap, None, None, None, cache_max_size, 60_000, 2)


def realm(url: str, **options: object) -> LdapRealm:
    return build_ldap_realm(realm_config(url, **options), "test.xml")  # type: ignore[arg-type]


def dead_url() -> str:
    return f"ldap://127.0.0.1:{free_port()}"


# ---------------------------------------------------------------- passwords


@pytest.mark.parametrize("direct", [True, False])
@pytest.mark.parametrize(
    ("user", "password"),
    [
        ("admin", "strongPassword"),
        ("observer", "password"),
        ("writer", "writerPassword"),  # {SSHA} in the directory
        ("ключ", "pässwörd-Ω"),
        ("star*user", "starPassword"),
        ("paren(user)", "parenPassword"),
    ],
)
def test_password_checks(slapd: Slapd, direct: bool, user: str, password: str) -> None:
    r = realm(slapd.url, direct=direct, mapper=not direct)
    assert r.verify_password(user, password)
    assert not r.verify_password(user, password + "x")
    assert not r.verify_password(user, "")


@pytest.mark.parametrize("direct", [True, False])
@pytest.mark.parametrize(
    "name", ["*", "star*", "adm*", "admin)(uid=*", "*)(|(uid=*", "admin\\", "admin\x00", "dup", "ghost", ""]
)
def test_injected_ambiguous_or_unknown_names_never_authenticate(
    slapd: Slapd, direct: bool, name: str
) -> None:
    r = realm(slapd.url, direct=direct, mapper=not direct)
    for password in ("strongPassword", "starPassword", "dupPassword"):
        assert not r.verify_password(name, password)
    assert r.identity(name) is None
    assert r.credentials(name) is None


def test_empty_password_never_reaches_the_directory() -> None:
    # The URL answers nothing: a bind attempt would raise DirectoryUnavailableError.
    r = realm(dead_url(), connect_timeout_ms=200)
    assert not r.verify_password("admin", "")
    assert not r.directory.bind_as(SERVICE_DN, "")
    assert not r.directory.bind_as("", "")


def test_blank_and_wrong_passwords_and_entries_without_password(slapd: Slapd) -> None:
    r = realm(slapd.url)
    assert not r.verify_password("admin", "   ")
    assert not r.verify_password("nopass", "anything")
    assert r.identity("nopass") is not None  # the entry exists; it just cannot log in


def test_names_too_long_are_refused_without_a_search() -> None:
    r = realm(dead_url(), connect_timeout_ms=200)
    assert r.identity("a" * (MAX_NAME_LENGTH + 1)) is None


def test_credentials_give_clear_passwords_only(slapd: Slapd) -> None:
    r = realm(slapd.url, direct=False, mapper=True)
    assert r.credentials("observer") == (ClearPassword("password"),)
    assert r.credentials("writer") == ()  # {SSHA}: good for PLAIN/BASIC, not SCRAM/DIGEST
    assert r.credential_kinds() == frozenset({ClearPassword})
    assert realm(slapd.url).credential_kinds() == frozenset()


def test_the_service_account_is_needed_to_read_passwords(slapd: Slapd) -> None:
    anonymous = realm(slapd.url, direct=False, mapper=True, principal=None)
    assert anonymous.identity("observer") is not None  # anonymous search works
    assert not anonymous.verify_password("observer", "password")  # the ACL hides userPassword


def test_mechanisms_follow_the_password_source(slapd: Slapd) -> None:
    direct = realm(slapd.url)
    assert direct.supports_mechanism("PLAIN")
    assert direct.supports_mechanism("BASIC")
    assert not direct.supports_mechanism("SCRAM-SHA-256")
    assert not direct.supports_mechanism("DIGEST")
    mapped = realm(slapd.url, direct=False, mapper=True)
    for name in ("PLAIN", "BASIC", "SCRAM-SHA-512", "DIGEST-MD5", "DIGEST", "CRAM-MD5"):
        assert mapped.supports_mechanism(name), name
    assert not mapped.supports_mechanism("EXTERNAL")
    assert not mapped.supports_mechanism("OAUTHBEARER")


# ---------------------------------------------------------------- groups


def test_group_filter_gives_roles(slapd: Slapd) -> None:
    r = realm(slapd.url)
    identity = r.identity("observer")
    assert identity is not None
    assert (identity.name, identity.realm, identity.groups) == (
        "observer",
        "default",
        frozenset({"observer"}),
    )
    writer = r.identity("star*user")
    assert writer is not None
    assert writer.groups == {"writer"}
    unicode_user = r.identity("ключ")
    assert unicode_user is not None
    assert unicode_user.groups == {"unicode"}


def test_role_recursion_follows_nested_groups(slapd: Slapd) -> None:
    flat = realm(slapd.url).identity("admin")
    nested = realm(slapd.url, attributes=(group_filter(recursion=2),)).identity("admin")
    assert flat is not None
    assert flat.groups == {"admin"}
    assert nested is not None
    assert nested.groups == {"admin", "superusers"}


def test_member_of_reference(slapd: Slapd) -> None:
    r = realm(slapd.url, attributes=(MEMBER_OF,))
    for user, groups in (("admin", {"admin"}), ("star*user", {"writer"}), ("writer", {"writer"})):
        identity = r.identity(user)
        assert identity is not None, user
        assert identity.groups == groups, user


def test_extract_rdn_and_plain_attributes(slapd: Slapd) -> None:
    rdn_only = replace(MEMBER_OF, from_=None, extract_rdn="cn")
    own = LdapAttributeConfig("filter", None, None, None, "sn", "Roles", True, 0, "cn", None, 1)
    identity = realm(slapd.url, attributes=(rdn_only, own)).identity("observer")
    assert identity is not None
    assert identity.groups == {"observer"}


def test_group_search_is_paged(slapd: Slapd) -> None:
    every_group = LdapAttributeConfig(
        "filter", "(objectClass=groupOfNames)", None, ROLES, "cn", "Roles", True, 0, "cn", None, 1
    )
    identity = realm(slapd.url, attributes=(every_group,), page_size=2).identity("observer")
    assert identity is not None
    assert identity.groups == {"admin", "observer", "writer", "unicode", "superusers"}


# ---------------------------------------------------------------- rewriting, referrals


def test_name_rewriter_runs_before_the_search(slapd: Slapd) -> None:
    rewriter = RegexPrincipalTransformer("domain-remover", r"(.*)@INFINISPAN\.ORG", "$1", False, 4)
    r = realm(slapd.url, rewriter=rewriter)
    assert r.verify_password("admin@INFINISPAN.ORG", "strongPassword")
    identity = r.identity("admin@INFINISPAN.ORG")
    assert identity is not None
    assert identity.name == "admin"


def test_referral_modes(slapd: Slapd) -> None:
    partners = f"ou=Partners,{SUFFIX}"
    ignoring = realm(slapd.url, search_dn=partners, referral_mode="ignore")
    assert ignoring.verify_password("partner", "partnerPassword")
    throwing = realm(slapd.url, search_dn=partners, referral_mode="throw")
    with pytest.raises(DirectoryError, match="referral"):
        throwing.verify_password("partner", "partnerPassword")
    following = realm(slapd.url, search_dn=PEOPLE, recursive=False, referral_mode="follow")
    assert following.verify_password("observer", "password")


def test_one_level_search_does_not_see_deeper_entries(slapd: Slapd) -> None:
    r = realm(slapd.url, search_dn=SUFFIX, recursive=False)
    assert r.identity("admin") is None
    assert realm(slapd.url, search_dn=PEOPLE, recursive=False).identity("dup") is not None


# ---------------------------------------------------------------- cache, limits, outages


def test_realm_cache_spares_the_directory(slapd: Slapd) -> None:
    now = [0.0]
    config = realm_config(slapd.url, cache_max_size=2)
    r = build_ldap_realm(config, "test.xml")
    r.cache._clock = lambda: now[0]
    searches = []
    run = r.directory.run
    r.directory.run = lambda op: searches.append(1) or run(op)  # type: ignore[method-assign]
    for _ in range(5):
        assert r.verify_password("observer", "password")  # a bind each time: never cached
        assert r.identity("observer") is not None
    assert len(searches) == 1
    assert not r.verify_password("observer", "wrong")
    assert r.identity("ghost") is None
    assert r.identity("ghost") is None
    assert len(searches) == 3
    now[0] = 61.0  # past cache-lifespan (60 s)
    r.refresh()
    assert len(r.cache) == 0
    assert r.identity("observer") is not None
    for name in ("admin", "writer", "observer"):  # max 2 entries: observer was evicted first
        r.identity(name)
    assert len(r.cache) == 2
    assert len(searches) == 7


def test_per_realm_operation_limit() -> None:
    directory = Directory(
        parse_urls(dead_url()),
        realm="default",
        principal=None,
        credential=None,
        connect_timeout_s=0.1,
        read_timeout_s=0.1,
        pooling=False,
        referral_mode="ignore",
        max_operations=1,
    )
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with directory._slot():
            held.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(5)
        started = time.monotonic()
        with pytest.raises(DirectoryUnavailableError, match="slots stayed busy"):
            directory.bind_as(SERVICE_DN, "x")
        assert time.monotonic() - started < 2
    finally:
        release.set()
        holder.join()


def test_failover_to_the_next_url(slapd: Slapd) -> None:
    r = realm(f"{dead_url()} {slapd.url}", connect_timeout_ms=500)
    assert r.verify_password("observer", "password")
    assert r.directory._preferred == 1  # the working URL is tried first from now on


@pytest.fixture
def own_slapd(tmp_path: Path) -> Iterator[Slapd]:
    server = start_slapd(tmp_path)
    yield server
    server.stop()


@pytest.mark.parametrize("pooling", [False, True])
def test_outage_fails_fast_with_one_clear_log_line_then_recovers(
    own_slapd: Slapd, pooling: bool, caplog: pytest.LogCaptureFixture
) -> None:
    r = realm(own_slapd.url, pooling=pooling)
    assert r.verify_password("observer", "password")
    own_slapd.stop()
    caplog.set_level(logging.INFO, logger="gridactor.realm.ldap")
    for _ in range(3):
        started = time.monotonic()
        with pytest.raises(DirectoryUnavailableError):
            r.verify_password("admin", "strongPassword")
        assert time.monotonic() - started < 2.5  # within connection-timeout (2 s)
    down = [rec.getMessage() for rec in caplog.records if "unreachable" in rec.getMessage()]
    assert len(down) == 1, down
    assert "LDAP realm 'default': directory unreachable" in down[0]
    assert own_slapd.url in down[0]
    own_slapd.start()
    assert r.verify_password("admin", "strongPassword")
    assert any("answers again" in rec.getMessage() for rec in caplog.records)


def test_configuration_errors() -> None:
    config = realm_config("ldap://x")
    ldap = config.ldap_realm
    assert ldap is not None
    with pytest.raises(ConfigError, match=r"test.xml:3: ldap-realm: not supported yet: client-ssl-context"):
        build_ldap_realm(replace(config, ldap_realm=replace(ldap, client_ssl_context="other")), "test.xml")
    with pytest.raises(ConfigError, match="identity-mapping"):
        build_ldap_realm(replace(config, ldap_realm=replace(ldap, identity_mappings=())), "test.xml")
    with pytest.raises(ConfigError, match="needs a 'credential'"):
        build_ldap_realm(replace(config, ldap_realm=replace(ldap, credential=None)), "test.xml")
    with pytest.raises(ConfigError, match="url"):
        build_ldap_realm(replace(config, ldap_realm=replace(ldap, url="ldap://x/dc=o")), "test.xml")
    assert "strongPassword" not in repr(build_ldap_realm(config, "t").directory)
