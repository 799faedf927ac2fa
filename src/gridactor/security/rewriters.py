"""Name rewriters (``<name-rewriter>``): clean up a login name before a realm looks it up.

The three principal transformers of Infinispan's schema:

* ``<regex-principal-transformer pattern replacement replace-all>`` — Elytron's
  ``RegexNameRewriter``: ``Matcher.replaceFirst`` (or ``replaceAll``) with Java's replacement
  syntax (``$1``, ``${name}``, ``\\$`` for a literal dollar). A pattern that does not match
  leaves the name as it is.
* ``<case-principal-transformer uppercase>`` — upper- or lower-cases the name.
* ``<common-name-principal-transformer>`` — the first ``CN`` of a name written as an
  RFC 4514 DN; a name that is not such a DN has no identity (None).

Why a rewriter's regex cannot hang a login
------------------------------------------
Python's ``re`` backtracks and has no time limit, and the pattern comes from the operator
while the input comes from anyone who opens a connection. Two bounds together keep the
work per login small (about 0.15 s at worst, measured for ``.*.*.*x`` on the longest name):

1. the input: names longer than :data:`MAX_NAME_LENGTH` characters are refused before any
   pattern runs (no real login name is that long);
2. the pattern, checked when the configuration loads: no repeat inside a repeat (``(a+)+``),
   no alternation inside a repeat (``(a|aa)+``) — the two shapes whose backtracking grows
   exponentially — and at most :data:`MAX_REPEATS` repeats in all, which caps the polynomial
   growth of patterns like ``.*.*.*``. Possessive repeats and atomic groups never backtrack
   into, so whatever they hold is allowed. Spec patterns such as ``(.*)@INFINISPAN\\.ORG``
   pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gridactor.config.model import (
    CasePrincipalTransformer,
    CommonNamePrincipalTransformer,
    PrincipalTransformer,
    RegexPrincipalTransformer,
)
from gridactor.errors import ConfigError

MAX_NAME_LENGTH = 256
MAX_REPEATS = 3

NameRewriter = Callable[[str], "str | None"]


class UnsafePatternError(ValueError):
    """A pattern whose backtracking could make a login hang (see the module notes)."""


# ---------------------------------------------------------------- pattern safety

try:  # Python 3.11+: the regex parser lives in re._parser (sre_parse before, deprecated)
    from re import _constants as _sre_constants  # type: ignore[attr-defined]
    from re import _parser as _sre_parser  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - older interpreters
    import sre_constants as _sre_constants  # type: ignore[no-redef]
    import sre_parse as _sre_parser  # type: ignore[no-redef]

_REPEATS = {_sre_constants.MAX_REPEAT, _sre_constants.MIN_REPEAT}
_NO_BACKTRACK = {
    getattr(_sre_constants, "POSSESSIVE_REPEAT", None),
    getattr(_sre_constants, "ATOMIC_GROUP", None),
} - {None}


def _children(op: Any, arg: Any) -> list[Any]:
    """The sub-patterns below one parsed node."""
    if op is _sre_constants.SUBPATTERN:
        return [arg[-1]]
    if op is _sre_constants.BRANCH:
        return list(arg[1])
    if op is _sre_constants.ASSERT or op is _sre_constants.ASSERT_NOT:
        return [arg[1]]
    if op is _sre_constants.GROUPREF_EXISTS:
        return [p for p in arg[1:] if p is not None]
    return []


def check_pattern_safety(pattern: str) -> None:
    """Raise :class:`UnsafePatternError` for a pattern that may backtrack without bound."""
    parsed = _sre_parser.parse(pattern)
    repeats = 0

    def walk(nodes: Any, inside_repeat: bool) -> None:
        nonlocal repeats
        for op, arg in nodes:
            if op in _NO_BACKTRACK:
                continue
            if op in _REPEATS:
                _low, high, body = arg
                if high > 1:
                    if inside_repeat:
                        raise UnsafePatternError(
                            "a repeat inside a repeat (like '(a+)+') can backtrack forever"
                        )
                    repeats += 1
                    if repeats > MAX_REPEATS:
                        raise UnsafePatternError(f"more than {MAX_REPEATS} repeats ('*', '+', '{{m,n}}')")
                    walk(body, True)
                else:
                    walk(body, inside_repeat)
                continue
            if op is _sre_constants.BRANCH and inside_repeat:
                raise UnsafePatternError(
                    "an alternation inside a repeat (like '(a|aa)+') can backtrack forever"
                )
            for child in _children(op, arg):
                walk(child, inside_repeat)

    walk(parsed, False)


# ---------------------------------------------------------------- Java regex dialect

_JAVA_NAMED_GROUP = re.compile(r"(?<!\\)\(\?<(?=[A-Za-z])")


def python_pattern(java_pattern: str) -> str:
    """Java's ``(?<name>…)`` is Python's ``(?P<name>…)``; the rest of the common syntax agrees."""
    return _JAVA_NAMED_GROUP.sub("(?P<", java_pattern)


@dataclass(frozen=True, slots=True)
class _GroupName:
    name: str


def parse_java_replacement(replacement: str, pattern: re.Pattern[str]) -> tuple[str | int | _GroupName, ...]:
    """Java ``Matcher.appendReplacement`` syntax: ``$n`` (longest group number that exists),
    ``${name}``, and ``\\x`` for a literal ``x``. Raises ValueError as Java would at run time."""
    parts: list[str | int | _GroupName] = []
    literal: list[str] = []
    i, n = 0, len(replacement)
    while i < n:
        char = replacement[i]
        if char == "\\":
            if i + 1 >= n:
                raise ValueError("character to be escaped is missing")
            literal.append(replacement[i + 1])
            i += 2
            continue
        if char != "$":
            literal.append(char)
            i += 1
            continue
        i += 1
        if i >= n:
            raise ValueError("illegal group reference: group index is missing")
        if literal:
            parts.append("".join(literal))
            literal = []
        if replacement[i] == "{":
            end = replacement.find("}", i)
            name = replacement[i + 1 : end] if end > 0 else ""
            if end < 0 or not name or name not in pattern.groupindex:
                raise ValueError(f"no group named '{name}'")
            parts.append(_GroupName(name))
            i = end + 1
            continue
        if not replacement[i].isdigit():
            raise ValueError("illegal group reference")
        number = int(replacement[i])
        if number > pattern.groups:
            raise ValueError(f"no group {number}")
        i += 1
        # Java takes further digits only while the group number still exists.
        while i < n and replacement[i].isdigit() and number * 10 + int(replacement[i]) <= pattern.groups:
            number = number * 10 + int(replacement[i])
            i += 1
        parts.append(number)
    if literal:
        parts.append("".join(literal))
    return tuple(parts)


class RegexNameRewriter:
    """``<regex-principal-transformer>``; the pattern must pass :func:`check_pattern_safety`."""

    def __init__(self, pattern: str, replacement: str, *, replace_all: bool = False) -> None:
        check_pattern_safety(python_pattern(pattern))
        self.pattern = re.compile(python_pattern(pattern))
        self.replace_all = replace_all
        self._parts = parse_java_replacement(replacement, self.pattern)

    def _expand(self, match: re.Match[str]) -> str:
        out: list[str] = []
        for part in self._parts:
            if isinstance(part, str):
                out.append(part)
            else:
                value = match.group(part.name if isinstance(part, _GroupName) else part)
                out.append(value or "")  # a group that took no part adds nothing (as Java)
        return "".join(out)

    def __call__(self, name: str) -> str | None:
        if len(name) > MAX_NAME_LENGTH:
            return None
        return self.pattern.sub(self._expand, name, count=0 if self.replace_all else 1)


class CaseNameRewriter:
    def __init__(self, *, uppercase: bool = True) -> None:
        self.uppercase = uppercase

    def __call__(self, name: str) -> str | None:
        if len(name) > MAX_NAME_LENGTH:
            return None
        return name.upper() if self.uppercase else name.lower()


def common_name(name: str) -> str | None:
    """The first ``CN`` value of an RFC 4514 DN (``CN=alice,OU=x`` → ``alice``), else None."""
    if len(name) > MAX_NAME_LENGTH or "=" not in name:
        return None
    for rdn in split_dn(name):
        for attribute_type, value in rdn:
            if attribute_type.strip().lower() in ("cn", "2.5.4.3"):
                return value
    return None


def split_dn(dn: str) -> list[list[tuple[str, str]]]:
    """An RFC 4514 DN string as RDNs of (type, unescaped value); ValueError when malformed."""
    rdns: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    i, n = 0, len(dn)
    while i < n:
        equals = dn.find("=", i)
        if equals < 0:
            raise ValueError("an attribute without '='")
        attribute_type = dn[i:equals].strip()
        if not attribute_type:
            raise ValueError("an empty attribute type")
        i = equals + 1
        value: list[str] = []
        while i < n and dn[i] not in ",+":
            char = dn[i]
            if char == "\\":
                if re.fullmatch(r"[0-9A-Fa-f]{2}", dn[i + 1 : i + 3]):
                    # A run of \XX pairs is UTF-8 bytes.
                    raw = bytearray()
                    while i < n and dn[i] == "\\" and re.fullmatch(r"[0-9A-Fa-f]{2}", dn[i + 1 : i + 3]):
                        raw.append(int(dn[i + 1 : i + 3], 16))
                        i += 3
                    value.append(raw.decode("utf-8", errors="replace"))
                    continue
                if i + 1 >= n:
                    raise ValueError("a dangling escape")
                value.append(dn[i + 1])
                i += 2
                continue
            value.append(char)
            i += 1
        current.append((attribute_type, "".join(value).strip()))
        if i < n and dn[i] == "+":
            i += 1
            continue
        rdns.append(current)
        current = []
        i += 1
    if current:
        rdns.append(current)
    return rdns


class CommonNameRewriter:
    def __call__(self, name: str) -> str | None:
        try:
            return common_name(name)
        except ValueError:
            return None


def build_name_rewriter(config: PrincipalTransformer, source: str = "") -> NameRewriter:
    """The rewriter a ``<name-rewriter>`` describes; a bad or unsafe pattern is a ConfigError."""
    if isinstance(config, RegexPrincipalTransformer):
        try:
            return RegexNameRewriter(config.pattern, config.replacement, replace_all=config.replace_all)
        except (ValueError, re.error) as exc:
            raise ConfigError(
                f"regex-principal-transformer: {exc}", file=source, line=config.line, element="name-rewriter"
            ) from None
    if isinstance(config, CasePrincipalTransformer):
        return CaseNameRewriter(uppercase=config.uppercase)
    if isinstance(config, CommonNamePrincipalTransformer):
        return CommonNameRewriter()
    raise ConfigError(f"unknown principal transformer {type(config).__name__}", file=source)
