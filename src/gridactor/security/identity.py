"""Who a connection is, once authenticated."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated principal: name (after rewriting), its realm, and its roles.

    ``roles`` are the realm's groups (groups.properties, LDAP attribute mapping, token
    claims…) before the role mapper of the authorization layer turns them into roles.
    Hashable: the authorization cache keys on the whole identity (never the name alone).
    """

    name: str
    realm: str
    groups: frozenset[str] = field(default_factory=frozenset)
    mechanism: str = ""
    certificate_subject: str | None = None


ANONYMOUS = Identity(name="anonymous", realm="")
