"""Authorization: role mappers, roles, per-cache role lists, and the subject's access masks.

How a decision is made (Infinispan's ``Authorizer``, notes §2.4):

1. The role mapper turns the identity's principals into role names. With
   ``group-only-mapping`` (the default since Infinispan 15) only the realm's groups are
   mapped; otherwise the user name is mapped too.
2. For a cache whose configuration has ``<security><authorization/>``: if it lists
   ``roles``, only those of the mapped roles count; else every mapped role that exists
   globally. A cache without ``<authorization/>`` is not secured: any authenticated user
   may do anything with it (as in Infinispan — say ``<authorization/>`` on every cache
   that must be protected). Without container authorization nothing is checked.
3. The mask is the OR of the counted roles' permission masks.

Masks are computed by :class:`Authorizer` and cached per *(whole identity, cache)* —
never per user name alone (ISPN-13089): two identities with one name but other groups
or another certificate get their own entries. Every change of roles or mappings bumps
``generation``, which empties the cache, and connections compare it with the generation
of the masks they keep, so a change reaches them at their next request.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from gridactor.config.model import CacheContainerConfig, GlobalAuthorizationConfig
from gridactor.errors import AuthorizationError, ConfigError
from gridactor.security.identity import Identity
from gridactor.security.permissions import Permission, mask_of, permission_names

log = logging.getLogger("gridactor.authorization")

# Infinispan's predefined roles (GlobalAuthorizationConfiguration.DEFAULT_ROLES), used when
# the configuration declares none.
DEFAULT_ROLES: dict[str, int] = {
    "admin": int(Permission.ALL),
    "deployer": int(
        Permission.ALL_READ | Permission.ALL_WRITE | Permission.LISTEN | Permission.EXEC
        | Permission.CREATE | Permission.MONITOR
    ),
    "application": int(
        Permission.ALL_READ | Permission.ALL_WRITE | Permission.LISTEN | Permission.EXEC | Permission.MONITOR
    ),
    "observer": int(Permission.ALL_READ | Permission.MONITOR),
    "monitor": int(Permission.MONITOR),
}


@runtime_checkable
class RoleMapper(Protocol):
    """Turns principal names into role names (``custom-role-mapper`` classes implement this)."""

    def principal_to_roles(self, principal: str) -> Iterable[str]: ...


class IdentityRoleMapper:
    """``<identity-role-mapper/>``: the role is the principal's name."""

    def principal_to_roles(self, principal: str) -> Iterable[str]:
        return (principal,)


class CommonNameRoleMapper:
    """``<common-name-role-mapper/>``: ``CN=reader,OU=…`` → ``reader``; other names unchanged.

    Like Infinispan's (and so its users' certificates), the CN value is taken up to the
    first comma, without RFC 4514 unescaping.
    """

    def principal_to_roles(self, principal: str) -> Iterable[str]:
        if principal[:3].upper() == "CN=":
            return (principal[3:].split(",", 1)[0],)
        return (principal,)


class ClusterRoleMapper:
    """``<cluster-role-mapper/>`` (the default): an editable principal → roles table with
    the principal's own name as the fallback role. Edits are kept in memory (one node;
    Infinispan keeps them in a replicated internal cache)."""

    def __init__(self) -> None:
        self._grants: dict[str, frozenset[str]] = {}
        self._lock = threading.Lock()

    def principal_to_roles(self, principal: str) -> Iterable[str]:
        granted = self._grants.get(principal)
        return granted if granted is not None else (principal,)

    def grant(self, principal: str, roles: Iterable[str]) -> None:
        with self._lock:
            self._grants[principal] = self._grants.get(principal, frozenset()) | frozenset(roles)

    def deny(self, principal: str, roles: Iterable[str]) -> None:
        with self._lock:
            left = self._grants.get(principal, frozenset()) - frozenset(roles)
            self._grants[principal] = left

    def grants(self) -> Mapping[str, frozenset[str]]:
        return dict(self._grants)


def load_custom_mapper(class_path: str, *, source: str = "", line: int = 0) -> RoleMapper:
    """Import ``package.module.ClassName`` (or ``package.module:ClassName``) and instantiate it.

    Only importable Python classes with a ``principal_to_roles`` method are accepted; a
    Java class name from an Infinispan configuration gets an error that says so.
    """
    module_name, sep, class_name = class_path.partition(":")
    if not sep:
        module_name, _, class_name = class_path.rpartition(".")
    if not module_name or not class_name:
        raise ConfigError(
            f"custom-role-mapper class '{class_path}' is not a Python import path (package.module.Class)",
            file=source, line=line, element="custom-role-mapper",
        )
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, class_name)
        mapper = cls()
    except Exception as exc:
        raise ConfigError(
            f"cannot load custom-role-mapper class '{class_path}': {type(exc).__name__}: {exc} "
            "(it must be a Python class importable by the server, not a Java class)",
            file=source, line=line, element="custom-role-mapper",
        ) from None
    if not isinstance(mapper, RoleMapper):
        raise ConfigError(
            f"custom-role-mapper class '{class_path}' has no principal_to_roles(principal) method",
            file=source, line=line, element="custom-role-mapper",
        )
    return mapper


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """How one cache is secured: ``None`` roles = every global role; a tuple = only those."""

    secured: bool
    roles: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class AuthorizationPolicy:
    enabled: bool
    roles: Mapping[str, int] = field(default_factory=dict)
    group_only_mapping: bool = True
    caches: Mapping[str, CachePolicy] = field(default_factory=dict)


def policy_from_config(
    container: CacheContainerConfig, source: str
) -> tuple[AuthorizationPolicy, RoleMapper]:
    authz: GlobalAuthorizationConfig | None = container.authorization
    if authz is None or not authz.enabled:
        return AuthorizationPolicy(enabled=False), IdentityRoleMapper()
    if authz.roles_are_default or not authz.roles:
        roles = dict(DEFAULT_ROLES)
    else:
        try:
            roles = {name: mask_of(perms) for name, perms in authz.roles.items()}
        except ValueError as exc:
            raise ConfigError(str(exc), file=source, line=authz.line, element="role") from None
    mapper: RoleMapper
    if authz.role_mapper == "identity":
        mapper = IdentityRoleMapper()
    elif authz.role_mapper == "common-name":
        mapper = CommonNameRoleMapper()
    elif authz.role_mapper == "custom":
        mapper = load_custom_mapper(authz.role_mapper_class or "", source=source, line=authz.line)
    else:
        mapper = ClusterRoleMapper()
    caches: dict[str, CachePolicy] = {}
    for name, definition in container.caches.items():
        cache_authz = definition.authorization
        if cache_authz is None or not cache_authz.enabled:
            caches[name] = CachePolicy(secured=False)
        else:
            listed = frozenset(cache_authz.roles) if cache_authz.roles else None
            unknown = sorted((listed or frozenset()) - roles.keys())
            if unknown:
                raise ConfigError(
                    f"cache '{name}' lists roles that are not defined: {', '.join(unknown)}",
                    file=source, line=cache_authz.line, element="authorization",
                )
            caches[name] = CachePolicy(secured=True, roles=listed)
    return (
        AuthorizationPolicy(
            enabled=True, roles=roles, group_only_mapping=authz.group_only_mapping, caches=caches
        ),
        mapper,
    )


def subject_text(identity: Identity, roles: Iterable[str]) -> str:
    principals = [identity.name, *(f"RolePrincipal{{name='{r}'}}" for r in sorted(roles))]
    return f"Subject with principal(s): [{', '.join(principals)}]"


class Authorizer:
    """Answers "what may this identity do on this cache" as a permission mask."""

    def __init__(self, policy: AuthorizationPolicy, mapper: RoleMapper, *, cache_size: int = 4096) -> None:
        self.policy = policy
        self.mapper = mapper
        self.generation = 0
        self._cache: OrderedDict[tuple[Identity, str | None], int] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.policy.enabled

    def invalidate(self) -> None:
        """Forget every computed mask (roles, mappings or users changed)."""
        with self._lock:
            self._cache.clear()
            self.generation += 1

    def mapped_roles(self, identity: Identity) -> frozenset[str]:
        principals = list(identity.groups)
        if not self.policy.group_only_mapping:
            principals.append(identity.name)
            if identity.certificate_subject:
                principals.append(identity.certificate_subject)
        roles: set[str] = set()
        for principal in principals:
            roles.update(self.mapper.principal_to_roles(principal))
        return frozenset(roles)

    def cache_is_secured(self, cache: str) -> bool:
        found = self.policy.caches.get(cache)
        return found is not None and found.secured

    def mask(self, identity: Identity, cache: str | None) -> int:
        """Mask for ``cache`` (None: the cache manager). ALL when nothing is checked."""
        if not self.policy.enabled:
            return int(Permission.ALL)
        key = (identity, cache)
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
                return found
        computed = self._compute(identity, cache)
        with self._lock:
            self._cache[key] = computed
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return computed

    def _compute(self, identity: Identity, cache: str | None) -> int:
        roles = self.mapped_roles(identity)
        if cache is not None:
            cache_policy = self.policy.caches.get(cache)
            if cache_policy is None or not cache_policy.secured:
                return int(Permission.ALL)
            if cache_policy.roles is not None:
                roles = roles & cache_policy.roles
        mask = 0
        for role in roles:
            mask |= self.policy.roles.get(role, 0)
        return mask

    def check(self, identity: Identity, cache: str | None, permission: Permission) -> None:
        """Raise AuthorizationError (Infinispan's ISPN000287 text) unless permitted."""
        if not self.policy.enabled or permission == Permission.NONE:
            return
        if self.mask(identity, cache) & int(permission) != int(permission):
            raise AuthorizationError(self.denial(identity, permission))

    def denial(self, identity: Identity, permission: Permission) -> str:
        subject = subject_text(identity, self.mapped_roles(identity))
        return f"ISPN000287: Unauthorized access: subject '{subject}' lacks '{permission.name}' permission"

    def acl(self, identity: Identity, caches: Iterable[str]) -> dict[str, object]:
        """The caller's permissions, as `GET /rest/v2/security/user/acl` reports them."""
        subject: list[dict[str, str]] = [{"name": identity.name, "type": "NamePrincipal"}]
        subject += [{"name": role, "type": "RolePrincipal"} for role in sorted(self.mapped_roles(identity))]
        return {
            "subject": subject,
            "global": permission_names(self.mask(identity, None)),
            "caches": {name: permission_names(self.mask(identity, name)) for name in sorted(caches)},
        }

    def visible(self, identity: Identity | None, cache: str) -> bool:
        """Whether ``cache`` shows in the caller's cache list: caches restricted to some
        roles are hidden from subjects holding none of them."""
        if not self.policy.enabled or identity is None:
            return True
        cache_policy = self.policy.caches.get(cache)
        if cache_policy is None or not cache_policy.secured or cache_policy.roles is None:
            return True
        return bool(self.mapped_roles(identity) & cache_policy.roles)
