"""Infinispan's authorization permissions as bitmasks.

Values are Infinispan's (``AuthorizationPermission``): a subject's access control list is
the OR of its roles' masks, and a permission is granted when all its bits are present
(``mask & p == p``), so ALL_READ needs both READ and BULK_READ.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class Permission(enum.IntFlag):
    NONE = 0
    LIFECYCLE = 1
    READ = 2
    WRITE = 4
    EXEC = 8
    LISTEN = 16
    BULK_READ = 32
    BULK_WRITE = 64
    ADMIN = 128
    CREATE = 256
    MONITOR = 512
    ALL_READ = READ | BULK_READ
    ALL_WRITE = WRITE | BULK_WRITE
    ALL = 0x7FFFFFFF


# The names a subject's ACL is reported with (REST `security/user/acl`), Infinispan's order.
REPORTED = (
    Permission.LIFECYCLE,
    Permission.READ,
    Permission.WRITE,
    Permission.EXEC,
    Permission.LISTEN,
    Permission.BULK_READ,
    Permission.BULK_WRITE,
    Permission.ADMIN,
    Permission.CREATE,
    Permission.MONITOR,
    Permission.ALL,
    Permission.ALL_READ,
    Permission.ALL_WRITE,
)

# Names accepted in configuration besides the enum's own. The docs list a cache-manager
# CONFIGURATION permission that Infinispan's code has never had: what it guards
# (defining configurations) is checked as ADMIN, so it means ADMIN here too.
ALIASES: dict[str, Permission] = {"CONFIGURATION": Permission.ADMIN}


class UnknownPermissionError(ValueError):
    pass


def parse_permission(name: str) -> Permission:
    text = name.strip().upper()
    if text in ALIASES:
        return ALIASES[text]
    try:
        return Permission[text]
    except KeyError:
        raise UnknownPermissionError(f"unknown permission '{name}'") from None


def mask_of(names: Iterable[str]) -> int:
    mask = 0
    for name in names:
        mask |= int(parse_permission(name))
    return mask


def implies(mask: int, permission: Permission) -> bool:
    return mask & int(permission) == int(permission)


def permission_names(mask: int) -> list[str]:
    """Every reported permission the mask grants, including the composite ones it implies."""
    return [p.name or "" for p in REPORTED if p and implies(mask, p)]
