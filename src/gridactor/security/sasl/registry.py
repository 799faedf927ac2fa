"""Mechanism names → classes, and which stored credentials each mechanism can use.

Names are matched exactly (SASL names are upper-case, RFC 4422 §3.1): a lower-case or
unknown name is refused rather than guessed, as Infinispan only creates listed mechanisms.
Other packages (EXTERNAL, OAUTHBEARER, GSSAPI …) add theirs with :func:`register_mechanism`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from gridactor.security.credentials import ClearPassword, Credential, DigestHash, ScramSaltedPassword
from gridactor.security.sasl.base import SaslMechanism, SaslSettings
from gridactor.security.sasl.cram_md5 import CramMd5Mechanism
from gridactor.security.sasl.digest import DIGEST_MECHANISMS
from gridactor.security.sasl.plain import PlainMechanism
from gridactor.security.sasl.scram import SCRAM_MECHANISMS


class UnsupportedMechanismError(ValueError):
    """The name is not a mechanism this server implements."""


MECHANISMS: dict[str, type[SaslMechanism]] = {
    PlainMechanism.name: PlainMechanism,
    CramMd5Mechanism.name: CramMd5Mechanism,
    **DIGEST_MECHANISMS,
    **SCRAM_MECHANISMS,
}

_PASSWORD_KINDS: tuple[type, ...] = (ClearPassword, DigestHash, ScramSaltedPassword)
_KINDS: dict[str, tuple[type, ...]] = {
    # PLAIN hands the guess to the realm, which can check it against any stored form.
    PlainMechanism.name: _PASSWORD_KINDS,
    CramMd5Mechanism.name: (ClearPassword,),
    **{name: (DigestHash, ClearPassword) for name in DIGEST_MECHANISMS},
    **{name: (ScramSaltedPassword, ClearPassword) for name in SCRAM_MECHANISMS},
}
# The credential algorithm a DigestHash / ScramSaltedPassword must carry for a mechanism.
_ALGORITHMS: dict[str, str] = {
    **{name: cls.algorithm for name, cls in DIGEST_MECHANISMS.items()},
    **{name: cls.algorithm for name, cls in SCRAM_MECHANISMS.items()},
}


def register_mechanism(
    name: str, cls: type[SaslMechanism], kinds: tuple[type, ...], algorithm: str | None = None
) -> None:
    """Add a mechanism implemented elsewhere; ``kinds`` as for :func:`credential_kinds`."""
    MECHANISMS[name] = cls
    _KINDS[name] = kinds
    if algorithm is not None:
        _ALGORITHMS[name] = algorithm


def _lookup(name: str) -> type[SaslMechanism]:
    try:
        return MECHANISMS[name]
    except KeyError:
        raise UnsupportedMechanismError(f"unsupported SASL mechanism {name!r}") from None


def create_mechanism(name: str, settings: SaslSettings, **options: Any) -> SaslMechanism:
    """A fresh server mechanism; ``options`` go to its constructor (tests inject
    ``nonce_factory`` / ``random_bytes`` / ``server_secret``)."""
    return _lookup(name)(settings, **options)


def credential_kinds(name: str) -> tuple[type, ...]:
    """The stored credential types ``name`` can work with (empty: needs none, e.g. EXTERNAL)."""
    _lookup(name)
    return _KINDS.get(name, ())


def credential_algorithm(name: str) -> str | None:
    """The DigestHash/ScramSaltedPassword algorithm ``name`` needs, if it uses one."""
    _lookup(name)
    return _ALGORITHMS.get(name)


def can_serve(name: str, credentials: Sequence[Credential]) -> bool:
    """Can ``name`` authenticate a user who has exactly these stored credentials?"""
    kinds = credential_kinds(name)
    algorithm = _ALGORITHMS.get(name)
    for credential in credentials:
        if not isinstance(credential, kinds):
            continue
        if (
            isinstance(credential, DigestHash | ScramSaltedPassword)
            and name != PlainMechanism.name
            and credential.algorithm != algorithm
        ):
            continue
        return True
    return False


def servable_mechanisms(names: Iterable[str], stored_kinds: Iterable[type]) -> list[str]:
    """Keep (in order) the known mechanisms some realm credential type can serve.

    Coarse by design: it looks at credential *types* a realm stores; :func:`can_serve`
    refines per user, including the hash algorithm.
    """
    available = tuple(stored_kinds)
    return [
        name
        for name in names
        if name in MECHANISMS and (not _KINDS.get(name) or any(k in available for k in _KINDS[name]))
    ]
