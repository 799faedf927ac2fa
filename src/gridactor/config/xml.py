"""Safe XML reading with file:line errors, and a strict element/attribute reader.

Security: configuration files are trusted more than network input, but not blindly (they
may come from a shared volume, a ConfigMap, a REST body). The parser never loads DTDs,
never touches the network, never expands entities and keeps libxml2's size limits; a
document that declares a DOCTYPE is refused outright, because an internal subset is the
only way to smuggle entity bombs or external references into XML.

Strictness: every element is read through :class:`Elem`, which knows the attributes and
children its caller accepts. Anything else is an error, never silently ignored, so a typo
in a security setting cannot quietly turn security off.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from gridactor.config.expand import UnresolvedPropertyError, expand
from gridactor.errors import ConfigError

__all__ = ["Attrs", "Elem", "Source", "first", "parse_document", "read_file"]

XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
_XSI_ATTRS = {"schemaLocation", "noNamespaceSchemaLocation"}

_CONFIG_NS = re.compile(r"urn:infinispan:config:(\d+)\.(\d+)")
_SERVER_NS = re.compile(r"urn:infinispan:server:(\d+)\.(\d+)")
# Namespace "families": which namespaces a subtree's elements may use.
CONFIG = "config"
SERVER = "server"

_DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY")


def namespace_family(ns: str) -> str | None:
    """``config``/``server`` for a namespace we accept, else None."""
    if ns == "":
        return CONFIG
    m = _CONFIG_NS.fullmatch(ns)
    if m and 9 <= int(m.group(1)) <= 16:
        return CONFIG
    m = _SERVER_NS.fullmatch(ns)
    if m and 11 <= int(m.group(1)) <= 16:
        return SERVER
    return None


@dataclass(frozen=True, slots=True)
class Source:
    """Where a document came from, and what its ``${...}`` references resolve against."""

    file: str
    properties: Mapping[str, str]
    environ: Mapping[str, str] | None = None


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
        remove_pis=False,
    )


def parse_document(data: bytes, source: Source) -> Elem:
    """Parse ``data`` safely and return its root as an :class:`Elem`. Raises ConfigError."""
    m = _DOCTYPE.search(data)
    if m is not None:
        # Refuse before libxml2 sees the internal subset at all.
        line = data.count(b"\n", 0, m.start()) + 1
        raise ConfigError(
            "DOCTYPE and entity declarations are not allowed in configuration files",
            file=source.file,
            line=line,
            element="!DOCTYPE",
        )
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno or 1
        msg = exc.msg or str(exc)
        # lxml appends "(line N, column M)"; we already print the line in front.
        msg = re.sub(r",? line \d+, column \d+$", "", msg)
        raise ConfigError(f"malformed XML: {msg}", file=source.file, line=line) from None
    return Elem(root, source)


def first(groups: Mapping[str, list[Elem]], name: str) -> Elem | None:
    """The only element named ``name`` in a :meth:`Elem.children` result, if any."""
    found = groups.get(name)
    return found[0] if found else None


def _local(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        return ns, name
    return "", tag


_DURATION = re.compile(r"(-?\d+)\s*(ms|s|m|h|d)?")
_DURATION_MS = {None: 1, "ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_TRUE = {"true"}
_FALSE = {"false"}


class Attrs:
    """The validated, property-expanded attributes of one element, with typed getters."""

    __slots__ = ("_elem", "_values")

    def __init__(self, elem: Elem, values: dict[str, str]) -> None:
        self._elem = elem
        self._values = values

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._values.get(name, default)

    def string(self, name: str, default: str = "") -> str:
        return self._values.get(name, default)

    def _bad(self, name: str, value: str, what: str) -> ConfigError:
        return self._elem.error(f"attribute '{name}': '{value}' is not {what}")

    def integer(self, name: str, default: int, *, minimum: int | None = None) -> int:
        raw = self._values.get(name)
        if raw is None:
            return default
        try:
            value = int(raw.strip(), 10)
        except ValueError:
            raise self._bad(name, raw, "a valid integer") from None
        if minimum is not None and value < minimum:
            raise self._bad(name, raw, f"an integer >= {minimum}")
        return value

    def opt_int(self, name: str, *, minimum: int | None = None) -> int | None:
        if name not in self._values:
            return None
        return self.integer(name, 0, minimum=minimum)

    def boolean(self, name: str, default: bool) -> bool:
        raw = self._values.get(name)
        if raw is None:
            return default
        v = raw.strip().lower()
        if v in _TRUE:
            return True
        if v in _FALSE:
            return False
        raise self._bad(name, raw, "a boolean (true or false)")

    def opt_bool(self, name: str) -> bool | None:
        if name not in self._values:
            return None
        return self.boolean(name, False)

    def duration_ms(self, name: str, default: int) -> int:
        """Milliseconds; accepts Infinispan's plain numbers and ``5s``/``1m``-style quantities."""
        raw = self._values.get(name)
        if raw is None:
            return default
        m = _DURATION.fullmatch(raw.strip())
        if m is None:
            raise self._bad(name, raw, "a valid duration (milliseconds, or a number with ms/s/m/h/d)")
        value = int(m.group(1))
        return value if value < 0 else value * _DURATION_MS[m.group(2)]

    def opt_duration_ms(self, name: str) -> int | None:
        if name not in self._values:
            return None
        return self.duration_ms(name, 0)

    def tokens(self, name: str) -> tuple[str, ...]:
        """A whitespace-separated list (XSD ``xs:list``); commas tolerated as separators too."""
        raw = self._values.get(name)
        if raw is None:
            return ()
        return tuple(t for t in re.split(r"[\s,]+", raw) if t)

    def choice(self, name: str, choices: Iterable[str], default: str, *, upper: bool = False) -> str:
        raw = self._values.get(name)
        if raw is None:
            return default
        v = raw.strip().upper() if upper else raw.strip()
        allowed = tuple(choices)
        if v not in allowed:
            raise self._bad(name, raw, "one of " + ", ".join(allowed))
        return v


class Elem:
    """One XML element read strictly: attributes and children must be declared by the reader."""

    __slots__ = ("_el", "family", "line", "name", "ns", "source")

    def __init__(self, el: etree._Element, source: Source, family: str | None = None) -> None:
        self._el = el
        self.source = source
        self.ns, self.name = _local(str(el.tag))
        line = el.sourceline
        self.line: int = line if isinstance(line, int) else 0
        self.family = family if family is not None else namespace_family(self.ns)

    @property
    def file(self) -> str:
        return self.source.file

    def error(self, message: str) -> ConfigError:
        return ConfigError(message, file=self.source.file, line=self.line, element=self.name)

    def _expand(self, value: str, what: str) -> str:
        try:
            return expand(value, self.source.properties, self.source.environ)
        except UnresolvedPropertyError as exc:
            raise self.error(f"{what}: cannot resolve property '${{{exc.name}}}'") from None
        except ValueError as exc:
            raise self.error(f"{what}: {exc}") from None

    def attrs(self, allowed: Iterable[str] = (), required: Iterable[str] = ()) -> Attrs:
        allowed_set = set(allowed) | set(required)
        values: dict[str, str] = {}
        for key, raw in self._el.attrib.items():
            ns, name = _local(str(key))
            if ns == XSI_NS and name in _XSI_ATTRS:
                continue
            if ns or name not in allowed_set:
                shown = f"{{{ns}}}{name}" if ns else name
                raise self.error(f"unknown attribute '{shown}'")
            values[name] = self._expand(str(raw), f"attribute '{name}'")
        for name in required:
            if name not in values:
                raise self.error(f"missing required attribute '{name}'")
        return Attrs(self, values)

    def text(self) -> str:
        """The element's own text (expanded); for simple-content elements."""
        for child in self._el:
            if isinstance(child.tag, str):
                raise Elem(child, self.source).error(f"unexpected element inside <{self.name}>")
        return self._expand("".join(str(t) for t in self._el.itertext()).strip(), "text")

    def ordered_children(
        self, allowed: Mapping[str, bool], families: Mapping[str, str] | None = None
    ) -> list[Elem]:
        """Child elements in document order. ``allowed`` maps name → may repeat.

        Unknown names, repeated singletons, text between elements and namespaces outside
        this subtree's family are errors. ``families`` names children that switch to
        another namespace family (``<server>`` inside ``<infinispan>``).
        """
        self._no_text(self._el.text, self.line)
        seen: set[str] = set()
        out: list[Elem] = []
        for child in self._el:
            tail_line = child.sourceline
            self._no_text(child.tail, tail_line if isinstance(tail_line, int) else self.line)
            if not isinstance(child.tag, str):
                continue  # comments and processing instructions
            elem = Elem(child, self.source)
            family = (families or {}).get(elem.name, self.family)
            if elem.family is None or elem.family != family:
                want = "urn:infinispan:server:*" if family == SERVER else "urn:infinispan:config:* or none"
                raise elem.error(f"unexpected namespace '{elem.ns}' (expected {want})")
            if elem.name not in allowed:
                raise elem.error(f"unknown element <{elem.name}> inside <{self.name}>")
            if elem.name in seen and not allowed[elem.name]:
                raise elem.error(f"<{elem.name}> may appear only once inside <{self.name}>")
            seen.add(elem.name)
            out.append(elem)
        return out

    def children(
        self, allowed: Mapping[str, bool], families: Mapping[str, str] | None = None
    ) -> dict[str, list[Elem]]:
        """Like :meth:`ordered_children`, grouped by local name."""
        groups: dict[str, list[Elem]] = {}
        for elem in self.ordered_children(allowed, families):
            groups.setdefault(elem.name, []).append(elem)
        return groups

    def all_children(self) -> list[Elem]:
        """Every child element in order, any name (for subtrees kept opaque)."""
        return [Elem(c, self.source) for c in self._el if isinstance(c.tag, str)]

    def _no_text(self, text: str | None, line: int) -> None:
        if text is not None and text.strip():
            raise ConfigError(
                f"unexpected text {text.strip()[:30]!r}", file=self.file, line=line, element=self.name
            )

    def element_only(self) -> None:
        """Assert the element has no children at all (an empty element)."""
        self.children({})


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        # No line to point at, so the file name goes into the message instead of FILE:LINE.
        raise ConfigError(f"{path}: cannot read configuration: {exc.strerror}") from None
