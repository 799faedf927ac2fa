"""``${name}`` / ``${name:default}`` / ``${env.NAME}`` property expansion in attribute values.

Infinispan expands properties when it reads each attribute, so a value like
``${infinispan.bind.address:127.0.0.1}`` works anywhere. Lookup order follows the server:
explicit properties (``-Dname=value``) first, then the process environment, then the
default written after the first ``:``. ``${a,b:x}`` tries ``a`` then ``b``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["UnresolvedPropertyError", "expand"]


class UnresolvedPropertyError(ValueError):
    """``${name}`` without a value or a default; carries the name for the error message."""

    def __init__(self, name: str) -> None:
        super().__init__(f"cannot resolve property '${{{name}}}'")
        self.name = name


def _lookup(name: str, properties: Mapping[str, str], environ: Mapping[str, str]) -> str | None:
    if name.startswith("env."):
        return environ.get(name[4:])
    if name in properties:
        return properties[name]
    return environ.get(name)


def expand(value: str, properties: Mapping[str, str], environ: Mapping[str, str] | None = None) -> str:
    """Replace every ``${...}`` in ``value``. Raises UnresolvedPropertyError / ValueError."""
    if "${" not in value:
        return value
    env = os.environ if environ is None else environ
    out: list[str] = []
    pos = 0
    while True:
        start = value.find("${", pos)
        if start < 0:
            out.append(value[pos:])
            break
        end = value.find("}", start + 2)
        if end < 0:
            raise ValueError(f"unterminated property reference in '{value}'")
        out.append(value[pos:start])
        body = value[start + 2 : end]
        names, sep, default = body.partition(":")
        resolved: str | None = None
        for name in names.split(","):
            name = name.strip()
            if not name:
                raise ValueError(f"empty property name in '{value}'")
            resolved = _lookup(name, properties, env)
            if resolved is not None:
                break
        if resolved is None:
            if not sep:
                raise UnresolvedPropertyError(names)
            resolved = default
        out.append(resolved)
        pos = end + 1
    return "".join(out)
