from __future__ import annotations

from pathlib import Path

import pytest

from gridactor.config.loader import load_config
from gridactor.errors import AuthorizationError, ConfigError
from gridactor.protocols.hotrod import operations as op
from gridactor.protocols.rest.routes import INVOCATIONS
from gridactor.security import access
from gridactor.security.authorization import (
    DEFAULT_ROLES,
    AuthorizationPolicy,
    Authorizer,
    CachePolicy,
    ClusterRoleMapper,
    CommonNameRoleMapper,
    IdentityRoleMapper,
    load_custom_mapper,
    policy_from_config,
)
from gridactor.security.identity import Identity
from gridactor.security.permissions import Permission, mask_of, parse_permission, permission_names

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "config" / "examples"


class UpperCaseMapper:
    """A custom role mapper for the tests: roles are the upper-cased group names."""

    def principal_to_roles(self, principal: str) -> list[str]:
        return [principal.upper()]


def test_permission_values_are_infinispans() -> None:
    assert [int(p) for p in (Permission.LIFECYCLE, Permission.READ, Permission.WRITE, Permission.EXEC)] == [
        1,
        2,
        4,
        8,
    ]
    assert int(Permission.BULK_READ) == 32
    assert int(Permission.BULK_WRITE) == 64
    assert int(Permission.ADMIN) == 128
    assert int(Permission.CREATE) == 256
    assert int(Permission.MONITOR) == 512
    assert int(Permission.ALL) == 0x7FFFFFFF
    assert mask_of(["ALL_READ"]) == 2 | 32
    assert parse_permission("configuration") is Permission.ADMIN
    with pytest.raises(ValueError, match="unknown permission 'FLY'"):
        parse_permission("FLY")


def test_permission_names_include_implied_composites() -> None:
    assert permission_names(mask_of(["READ", "BULK_READ"])) == ["READ", "BULK_READ", "ALL_READ"]
    assert "ALL" in permission_names(int(Permission.ALL))
    assert permission_names(0) == []


def test_role_mappers() -> None:
    assert list(IdentityRoleMapper().principal_to_roles("admin")) == ["admin"]
    cn = CommonNameRoleMapper()
    assert list(cn.principal_to_roles("CN=reader,OU=Infinispan,O=JBoss")) == ["reader"]
    assert list(cn.principal_to_roles("cn=writer")) == ["writer"]
    assert list(cn.principal_to_roles("plain")) == ["plain"]
    cluster = ClusterRoleMapper()
    assert list(cluster.principal_to_roles("bob")) == ["bob"]
    cluster.grant("bob", ["reader", "writer"])
    assert set(cluster.principal_to_roles("bob")) == {"reader", "writer"}
    cluster.deny("bob", ["writer"])
    assert set(cluster.principal_to_roles("bob")) == {"reader"}


def test_custom_mapper_loading() -> None:
    mapper = load_custom_mapper(f"{__name__}:UpperCaseMapper")
    assert list(mapper.principal_to_roles("x")) == ["X"]
    with pytest.raises(ConfigError, match="not a Java class"):
        load_custom_mapper("org.infinispan.example.MyRoleMapper", source="f.xml", line=7)
    with pytest.raises(ConfigError, match="has no principal_to_roles"):
        load_custom_mapper("collections:OrderedDict")
    with pytest.raises(ConfigError, match="not a Python import path"):
        load_custom_mapper("NoModule")


def identity(name: str, *groups: str, subject: str | None = None) -> Identity:
    return Identity(name=name, realm="default", groups=frozenset(groups), certificate_subject=subject)


def test_spec_example_policy_and_masks() -> None:
    config = load_config(EXAMPLES / "authorization.xml")
    policy, mapper = policy_from_config(config.cache_container, str(config.source))
    assert policy.enabled
    assert policy.roles == {"admin": int(Permission.ALL), "reader": 2, "writer": 4, "supervisor": 2 | 4 | 8}
    authorizer = Authorizer(policy, mapper)
    supervisor = identity("sam", "supervisor")
    assert authorizer.mask(supervisor, "secured") == 2 | 4 | 8
    authorizer.check(supervisor, "secured", Permission.EXEC)
    with pytest.raises(AuthorizationError) as denied:
        authorizer.check(supervisor, "secured", Permission.BULK_READ)
    assert denied.value.message == (
        "ISPN000287: Unauthorized access: subject 'Subject with principal(s): "
        "[sam, RolePrincipal{name='supervisor'}]' lacks 'BULK_READ' permission"
    )
    assert denied.value.http_status == 403
    assert denied.value.hotrod_status == 0x85


def test_cache_roles_restrict_and_hide() -> None:
    config = load_config(EXAMPLES / "authorization-cache-roles.xml")
    policy, mapper = policy_from_config(config.cache_container, str(config.source))
    authorizer = Authorizer(policy, mapper)
    writer, reader = identity("w", "writer"), identity("r", "reader")
    assert authorizer.mask(writer, "secured") == 0  # writer is not among the cache's roles
    assert authorizer.mask(writer, None) == int(Permission.WRITE)  # but holds WRITE globally
    assert not authorizer.visible(writer, "secured")
    assert authorizer.visible(reader, "secured")


def test_unsecured_cache_and_disabled_authorization_allow_everything() -> None:
    policy = AuthorizationPolicy(
        enabled=True, roles={"reader": 2}, caches={"open": CachePolicy(secured=False)}
    )
    authorizer = Authorizer(policy, IdentityRoleMapper())
    assert authorizer.mask(identity("x"), "open") == int(Permission.ALL)
    assert authorizer.mask(identity("x"), "unknown-cache") == int(Permission.ALL)
    off = Authorizer(AuthorizationPolicy(enabled=False), IdentityRoleMapper())
    assert off.mask(identity("x"), "anything") == int(Permission.ALL)


def test_masks_are_keyed_by_the_whole_identity_and_invalidated() -> None:
    # ISPN-13089: same name, other groups or certificate, must not share an ACL entry.
    mapper = ClusterRoleMapper()
    policy = AuthorizationPolicy(
        enabled=True, roles=dict(DEFAULT_ROLES), caches={"c": CachePolicy(secured=True)}
    )
    authorizer = Authorizer(policy, mapper)
    assert authorizer.mask(identity("bob", "observer"), "c") == DEFAULT_ROLES["observer"]
    assert authorizer.mask(identity("bob", "admin"), "c") == DEFAULT_ROLES["admin"]
    assert authorizer.mask(identity("bob", "monitor", subject="CN=bob"), "c") == DEFAULT_ROLES["monitor"]
    generation = authorizer.generation
    mapper.grant("observer", ["deployer"])
    assert authorizer.mask(identity("bob", "observer"), "c") == DEFAULT_ROLES["observer"]  # cached
    authorizer.invalidate()
    assert authorizer.generation == generation + 1
    assert authorizer.mask(identity("bob", "observer"), "c") == DEFAULT_ROLES["deployer"]


def test_group_only_mapping_ignores_the_user_name_unless_disabled() -> None:
    roles = {"admin": int(Permission.ALL)}
    caches = {"c": CachePolicy(secured=True)}
    grouped = Authorizer(AuthorizationPolicy(True, roles, True, caches), IdentityRoleMapper())
    assert grouped.mask(identity("admin"), "c") == 0
    named = Authorizer(AuthorizationPolicy(True, roles, False, caches), IdentityRoleMapper())
    assert named.mask(identity("admin"), "c") == int(Permission.ALL)


def test_common_name_mapper_with_certificate_subjects() -> None:
    roles = {"reader": int(Permission.READ)}
    policy = AuthorizationPolicy(True, roles, False, {"c": CachePolicy(secured=True)})
    authorizer = Authorizer(policy, CommonNameRoleMapper())
    cert_user = identity("CN=reader,O=Example", subject="CN=reader,O=Example")
    assert authorizer.mask(cert_user, "c") == int(Permission.READ)


def test_predefined_roles_when_none_are_declared() -> None:
    assert DEFAULT_ROLES["observer"] == int(Permission.ALL_READ | Permission.MONITOR)
    assert DEFAULT_ROLES["deployer"] & int(Permission.CREATE)
    assert not DEFAULT_ROLES["application"] & int(Permission.CREATE)


# ------------------------------------------------- generated from THE access table


@pytest.mark.parametrize("opcode", sorted(access.HOTROD), ids=lambda o: op.OPERATION_NAMES.get(o, hex(o)))
def test_every_hotrod_rule_denies_without_and_allows_with_its_permission(opcode: int) -> None:
    rule = access.HOTROD[opcode]
    if rule.scope is not access.Scope.CACHE:
        assert opcode in op.ALLOWED_BEFORE_AUTH
        return
    policy = AuthorizationPolicy(
        enabled=True,
        roles={"has": int(rule.permission), "lacks": int(Permission.ALL) & ~int(rule.permission)},
        caches={"c": CachePolicy(secured=True)},
    )
    authorizer = Authorizer(policy, IdentityRoleMapper())
    authorizer.check(identity("a", "has"), "c", rule.permission)
    with pytest.raises(AuthorizationError, match=f"lacks '{rule.permission.name}'"):
        authorizer.check(identity("b", "lacks"), "c", rule.permission)


def test_every_rest_route_has_exactly_one_rule() -> None:
    declared = {(" ".join(sorted(inv.methods, key=["GET", "HEAD", "POST", "PUT", "DELETE"].index)),
                 "/".join(inv.path), inv.action) for inv in INVOCATIONS}  # fmt: skip
    assert declared == set(access.REST)


def test_the_cve_routes_need_their_permissions() -> None:
    assert access.REST[("GET", "caches/{cache}", "keys")].permission is Permission.BULK_READ  # CVE-2023-3628
    assert access.REST[("GET", "caches/{cache}", "entries")].permission is Permission.BULK_READ
    assert access.REST[("GET", "caches/{cache}", "config")].permission is Permission.ADMIN  # CVE-2023-3629
    assert access.REST[("POST", "caches/{cache}", "clear")].permission is Permission.BULK_WRITE
    assert access.HOTROD[op.CLEAR].permission is Permission.BULK_WRITE
