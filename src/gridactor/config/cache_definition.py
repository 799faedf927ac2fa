"""Cache definitions: the ``<local-cache>``-style elements, their templates, and the REST forms.

The server loader and the REST API (``POST /rest/v2/caches/{name}``) share one reader, so
a cache body is held to exactly the rules of the configuration file. JSON bodies are turned
into the equivalent element tree first (Infinispan's JSON is a mechanical mapping of its
XML: objects are elements, scalars are attributes), then read by the same code.

A REST body is client input: ``${...}`` in it never sees the server's properties or
environment (only a written default can fill it), so a body cannot read server secrets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from lxml import etree

from gridactor.cache.api import INFINITE, CacheSettings
from gridactor.config.model import CacheAuthorizationConfig, CacheDefinition, FeatureUse
from gridactor.config.xml import CONFIG, Elem, Source, parse_document
from gridactor.errors import ConfigError

__all__ = [
    "CACHE_KINDS",
    "TEMPLATE_KINDS",
    "ParsedCache",
    "cache_settings_to_json",
    "cache_settings_to_xml",
    "parse_cache_definition",
    "read_cache",
    "resolve_caches",
]

# element name -> CacheSettings.mode
CACHE_KINDS = {
    "local-cache": "local",
    "distributed-cache": "distributed",
    "replicated-cache": "replicated",
    "invalidation-cache": "invalidation",
}
TEMPLATE_KINDS = {f"{k}-configuration": v for k, v in CACHE_KINDS.items()}
_KIND_OF_MODE = {v: k for k, v in CACHE_KINDS.items()}

_COMMON_ATTRS = {
    "name",
    "configuration",
    "statistics",
    "statistics-available",
    "start",
    "simple-cache",
    "unreliable-return-values",
    "aliases",
}
_CLUSTERED_ATTRS = _COMMON_ATTRS | {"mode", "remote-timeout", "segments", "key-partitioner"}
_ATTRS = {
    "local": _COMMON_ATTRS,
    "distributed": _CLUSTERED_ATTRS
    | {"owners", "l1-lifespan", "l1-cleanup-interval", "invalidation-batch-size", "capacity-factor"},
    "replicated": _CLUSTERED_ATTRS,
    "invalidation": _CLUSTERED_ATTRS,
}
_LOCAL_CHILDREN = {
    "locking": False,
    "transaction": False,
    "expiration": False,
    "memory": False,
    "encoding": False,
    "persistence": False,
    "indexing": False,
    "security": False,
    "custom-interceptors": False,
    "query": False,
    "tracing": False,
}
_CLUSTERED_CHILDREN = _LOCAL_CHILDREN | {
    "partition-handling": False,
    "state-transfer": False,
    "backups": False,
    "backup-for": False,
    "groups": False,
}
# Subtrees we record as a feature without reading: their schemas (cache stores, indexing,
# cross-site) are large and we implement none of them, so the server refuses them anyway.
_OPAQUE = {
    "persistence": "persistence",
    "indexing": "indexing",
    "custom-interceptors": "custom-interceptors",
    "query": "query",
    "tracing": "tracing",
    "backups": "cross-site",
    "backup-for": "cross-site",
    "groups": "grouping",
}


@dataclass(slots=True)
class ParsedCache:
    """A cache or template as written, before template inheritance is applied."""

    element: str
    mode: str
    name: str
    template: str | None
    fields: dict[str, Any]  # CacheSettings fields set explicitly
    authorization: CacheAuthorizationConfig | None
    sync_mode: str | None
    owners: int | None
    segments: int | None
    aliases: tuple[str, ...]
    line: int
    file: str
    features: list[FeatureUse] = field(default_factory=list)


def _feature(out: list[FeatureUse], name: str, elem: Elem) -> None:
    out.append(FeatureUse(name, elem.name, elem.file, elem.line))


def read_cache(elem: Elem, *, require_name: bool = True) -> ParsedCache:
    """Read one ``<*-cache>`` or ``<*-cache-configuration>`` element."""
    mode = CACHE_KINDS.get(elem.name) or TEMPLATE_KINDS[elem.name]
    a = elem.attrs(_ATTRS[mode], required=("name",) if require_name else ())
    feats: list[FeatureUse] = []
    fields: dict[str, Any] = {}
    if mode != "local":
        _feature(feats, elem.name.removesuffix("-configuration"), elem)
    if "statistics" in a:
        fields["statistics"] = a.boolean("statistics", True)
    a.boolean("statistics-available", True)
    a.boolean("simple-cache", False)
    a.boolean("unreliable-return-values", False)
    a.choice("start", ("EAGER", "LAZY"), "EAGER", upper=True)
    aliases = a.tokens("aliases")
    if aliases:
        _feature(feats, "cache-aliases", elem)
    sync_mode = a.choice("mode", ("SYNC", "ASYNC"), "SYNC", upper=True) if mode != "local" else None
    if sync_mode == "ASYNC":
        _feature(feats, "async-replication", elem)
    a.opt_duration_ms("remote-timeout")
    segments = a.opt_int("segments", minimum=1)
    if "key-partitioner" in a:
        _feature(feats, "key-partitioner", elem)
    owners = a.opt_int("owners", minimum=1)
    a.opt_duration_ms("l1-lifespan")
    a.opt_duration_ms("l1-cleanup-interval")
    if "l1-lifespan" in a:
        _feature(feats, "l1-cache", elem)
    a.opt_int("invalidation-batch-size", minimum=1)
    if "capacity-factor" in a:
        try:
            float(a.string("capacity-factor"))
        except ValueError:
            raise elem.error(
                f"attribute 'capacity-factor': '{a.string('capacity-factor')}' is not a number"
            ) from None

    authorization: CacheAuthorizationConfig | None = None
    allowed = _LOCAL_CHILDREN if mode == "local" else _CLUSTERED_CHILDREN
    for child in elem.ordered_children(allowed):
        if child.name in _OPAQUE:
            _feature(feats, _OPAQUE[child.name], child)
        elif child.name == "expiration":
            _read_expiration(child, fields)
        elif child.name == "memory":
            _read_memory(child, fields, feats)
        elif child.name == "encoding":
            _read_encoding(child, fields)
        elif child.name == "locking":
            _read_locking(child, feats)
        elif child.name == "transaction":
            _read_transaction(child, feats)
        elif child.name == "security":
            authorization = _read_cache_security(child, feats)
        elif child.name == "state-transfer":
            sa = child.attrs({"enabled", "timeout", "chunk-size", "await-initial-transfer"})
            sa.boolean("enabled", True)
            sa.opt_duration_ms("timeout")
            sa.opt_int("chunk-size", minimum=1)
            sa.boolean("await-initial-transfer", True)
            child.element_only()
            _feature(feats, "state-transfer", child)
        elif child.name == "partition-handling":
            pa = child.attrs({"when-split", "merge-policy", "enabled"})
            pa.choice(
                "when-split",
                ("ALLOW_READ_WRITES", "DENY_READ_WRITES", "ALLOW_READS"),
                "ALLOW_READ_WRITES",
                upper=True,
            )
            pa.opt_bool("enabled")
            child.element_only()
            _feature(feats, "partition-handling", child)
    return ParsedCache(
        element=elem.name,
        mode=mode,
        name=a.string("name"),
        template=a.get("configuration"),
        fields=fields,
        authorization=authorization,
        sync_mode=sync_mode,
        owners=owners,
        segments=segments,
        aliases=aliases,
        line=elem.line,
        file=elem.file,
        features=feats,
    )


def _read_expiration(elem: Elem, fields: dict[str, Any]) -> None:
    a = elem.attrs({"lifespan", "max-idle", "interval", "touch"})
    elem.element_only()
    if "lifespan" in a:
        fields["lifespan_ms"] = _infinite(a.duration_ms("lifespan", INFINITE))
    if "max-idle" in a:
        fields["max_idle_ms"] = _infinite(a.duration_ms("max-idle", INFINITE))
    a.opt_duration_ms("interval")
    a.choice("touch", ("SYNC", "ASYNC"), "SYNC", upper=True)


def _infinite(ms: int) -> int:
    # Infinispan: any negative value means "never"; 0 for max-idle also disables it.
    return INFINITE if ms < 0 else ms


def _read_memory(elem: Elem, fields: dict[str, Any], feats: list[FeatureUse]) -> None:
    a = elem.attrs({"storage", "max-size", "max-count", "when-full"})
    storage = a.choice("storage", ("HEAP", "OFF_HEAP", "OBJECT", "BINARY"), "HEAP", upper=True)
    if storage == "OFF_HEAP":
        _feature(feats, "off-heap", elem)
    if "max-count" in a:
        fields["max_count"] = max(-1, a.integer("max-count", -1))
    if "max-size" in a:
        _feature(feats, "memory-max-size", elem)
    if a.choice("when-full", ("REMOVE", "MANUAL", "EXCEPTION"), "REMOVE", upper=True) != "REMOVE":
        _feature(feats, "memory-when-full", elem)
    # The pre-11 forms: <object size>, <binary size eviction>, <off-heap size eviction>.
    for child in elem.ordered_children({"object": False, "binary": False, "off-heap": False}):
        ca = child.attrs(
            {"size", "strategy", "eviction", "address-count"}
            - ({"eviction"} if child.name == "object" else set())
        )
        child.element_only()
        strategy = ca.choice("strategy", ("NONE", "REMOVE", "MANUAL", "EXCEPTION"), "REMOVE", upper=True)
        if strategy in ("MANUAL", "EXCEPTION"):
            _feature(feats, "memory-when-full", child)
        if child.name == "off-heap":
            _feature(feats, "off-heap", child)
        if ca.choice("eviction", ("COUNT", "MEMORY"), "COUNT", upper=True) == "MEMORY":
            _feature(feats, "memory-max-size", child)
        elif "size" in ca and strategy != "NONE":
            fields["max_count"] = max(-1, ca.integer("size", -1))


def _read_encoding(elem: Elem, fields: dict[str, Any]) -> None:
    a = elem.attrs({"media-type"})
    both = a.get("media-type")
    if both is not None:
        fields["key_media_type"] = fields["value_media_type"] = both.strip()
    for child in elem.ordered_children({"key": False, "value": False}):
        ca = child.attrs(required=("media-type",))
        child.element_only()
        fields[f"{child.name}_media_type"] = ca.string("media-type").strip()


def _read_locking(elem: Elem, feats: list[FeatureUse]) -> None:
    a = elem.attrs({"isolation", "striping", "acquire-timeout", "concurrency-level", "write-skew"})
    elem.element_only()
    a.choice(
        "isolation",
        ("NONE", "READ_UNCOMMITTED", "READ_COMMITTED", "REPEATABLE_READ", "SERIALIZABLE"),
        "REPEATABLE_READ",
        upper=True,
    )
    a.boolean("striping", False)
    a.opt_duration_ms("acquire-timeout")
    a.opt_int("concurrency-level", minimum=1)
    a.opt_bool("write-skew")
    _feature(feats, "locking", elem)


def _read_transaction(elem: Elem, feats: list[FeatureUse]) -> None:
    a = elem.attrs(
        {
            "mode",
            "locking",
            "stop-timeout",
            "complete-timeout",
            "reaper-interval",
            "transaction-manager-lookup",
            "auto-commit",
            "recovery-cache",
            "notifications",
            "protocol",
        }
    )
    elem.element_only()
    mode = a.choice("mode", ("NONE", "BATCH", "NON_XA", "NON_DURABLE_XA", "FULL_XA"), "NONE", upper=True)
    a.choice("locking", ("OPTIMISTIC", "PESSIMISTIC"), "OPTIMISTIC", upper=True)
    for name in ("stop-timeout", "complete-timeout", "reaper-interval"):
        a.opt_duration_ms(name)
    a.opt_bool("auto-commit")
    a.opt_bool("notifications")
    if mode != "NONE":
        _feature(feats, "transaction", elem)


def _read_cache_security(elem: Elem, feats: list[FeatureUse]) -> CacheAuthorizationConfig | None:
    elem.attrs()
    auth = elem.children({"authorization": False}).get("authorization")
    if not auth:
        return None
    au = auth[0]
    a = au.attrs({"enabled", "roles"})
    au.element_only()
    _feature(feats, "cache-authorization", au)
    return CacheAuthorizationConfig(enabled=a.boolean("enabled", True), roles=a.tokens("roles"), line=au.line)


# ---------------------------------------------------------------- template inheritance


def resolve_caches(
    caches: Mapping[str, ParsedCache],
    templates: Mapping[str, ParsedCache],
    *,
    default_statistics: bool | None,
) -> tuple[dict[str, CacheDefinition], dict[str, CacheDefinition]]:
    """Apply ``configuration="template"`` inheritance; return (caches, templates) definitions."""
    resolved: dict[str, ParsedCache] = {}

    def merged(pc: ParsedCache, chain: tuple[str, ...]) -> ParsedCache:
        if pc.template is None:
            return pc
        base_raw = templates.get(pc.template)
        if base_raw is None:
            raise ConfigError(
                f"unknown cache template '{pc.template}'", file=pc.file, line=pc.line, element=pc.element
            )
        if pc.template in chain:
            raise ConfigError(
                f"template '{pc.template}' inherits from itself",
                file=pc.file,
                line=pc.line,
                element=pc.element,
            )
        if base_raw.mode != pc.mode:
            raise ConfigError(
                f"configuration '{pc.template}' is a {base_raw.element}, which a {pc.element} cannot use",
                file=pc.file,
                line=pc.line,
                element=pc.element,
            )
        if pc.template not in resolved:
            resolved[pc.template] = merged(base_raw, (*chain, pc.template))
        base = resolved[pc.template]
        return replace(
            pc,
            fields={**base.fields, **pc.fields},
            authorization=pc.authorization or base.authorization,
            owners=pc.owners if pc.owners is not None else base.owners,
            segments=pc.segments if pc.segments is not None else base.segments,
        )

    def definition(pc: ParsedCache, chain: tuple[str, ...]) -> CacheDefinition:
        m = merged(pc, chain)
        fields = dict(m.fields)
        if "statistics" not in fields and default_statistics is not None:
            fields["statistics"] = default_statistics
        return CacheDefinition(
            name=pc.name,
            kind=pc.element.removesuffix("-configuration"),
            settings=CacheSettings(name=pc.name, mode=pc.mode, **fields),
            authorization=m.authorization,
            template=pc.template,
            sync_mode=pc.sync_mode,
            owners=m.owners,
            segments=m.segments,
            aliases=pc.aliases,
            line=pc.line,
        )

    tdefs = {name: definition(t, (name,)) for name, t in templates.items()}
    cdefs = {name: definition(c, ()) for name, c in caches.items()}
    return cdefs, tdefs


# ---------------------------------------------------------------- REST: parse a body


def _media(media_type: str) -> str:
    return media_type.split(";", 1)[0].strip().lower()


def parse_cache_definition(body: bytes, media_type: str, name: str) -> CacheSettings:
    """Parse a REST cache-creation body (XML or JSON) into settings for cache ``name``.

    Raises ConfigError (HTTP 400) with the reason; an unsupported media type also raises
    ConfigError, whose message starts with ``unsupported media type``.
    """
    mt = _media(media_type)
    source = Source(file="", properties={}, environ={})
    if mt in ("application/xml", "text/xml"):
        root = parse_document(body, Source(file="<body>", properties={}, environ={}))
    elif mt in ("application/json", "text/json"):
        root = _json_root(body, source)
    else:
        raise ConfigError(
            f"unsupported media type '{media_type}' for a cache configuration (use JSON or XML)"
        )
    return _settings_from_root(root, name)


def _settings_from_root(root: Elem, name: str) -> CacheSettings:
    if root.family != CONFIG:
        raise root.error(f"unexpected namespace '{root.ns}'")
    templates: dict[str, ParsedCache] = {}
    cache_elems: list[Elem] = []
    if root.name in CACHE_KINDS:
        cache_elems = [root]
    elif root.name == "infinispan":
        root.attrs()
        allowed = {"cache-container": False}
        container = root.children(allowed).get("cache-container")
        if not container:
            raise root.error("no <cache-container> with a cache definition")
        cont = container[0]
        cont.attrs({"name", "default-cache", "statistics"})
        kinds = {k: True for k in (*CACHE_KINDS, *TEMPLATE_KINDS)}
        for child in cont.ordered_children(kinds):
            if child.name in TEMPLATE_KINDS:
                t = read_cache(child)
                templates[t.name] = t
            else:
                cache_elems.append(child)
        if len(cache_elems) != 1:
            raise cont.error(f"expected exactly one cache definition, found {len(cache_elems)}")
    else:
        raise root.error("expected a cache definition such as <local-cache> or <distributed-cache>")
    pc = read_cache(cache_elems[0], require_name=False)
    pc.name = name
    caches, _ = resolve_caches({name: pc}, templates, default_statistics=None)
    return caches[name].settings


def _json_root(body: bytes, source: Source) -> Elem:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"malformed JSON: {exc}") from None
    if not isinstance(doc, dict) or len(doc) != 1:
        raise ConfigError('a JSON cache configuration is one object such as {"local-cache": {...}}')
    ((key, value),) = doc.items()
    # Infinispan also writes {"<cache name>": {"distributed-cache": {...}}}.
    if key not in CACHE_KINDS and isinstance(value, dict) and len(value) == 1:
        ((inner, inner_value),) = value.items()
        if inner in CACHE_KINDS:
            key, value = inner, inner_value
    if key not in CACHE_KINDS:
        raise ConfigError(f"unknown cache type '{key}' (expected one of {', '.join(CACHE_KINDS)})")
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a JSON object")
    el = etree.Element(key)
    _json_fill(el, value, key)
    return Elem(el, source)


def _json_scalar(value: object, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise ConfigError(f"{where}: unsupported JSON value {json.dumps(value)[:40]}")


def _json_fill(el: etree._Element, obj: Mapping[str, object], where: str) -> None:
    for key, value in obj.items():
        try:
            if isinstance(value, dict):
                _json_fill(etree.SubElement(el, key), value, key)
            elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                for item in value:
                    _json_fill(etree.SubElement(el, key), item, key)
            elif isinstance(value, list):
                el.set(key, " ".join(_json_scalar(v, f"{where}.{key}") for v in value))
            else:
                el.set(key, _json_scalar(value, f"{where}.{key}"))
        except ValueError:
            raise ConfigError(f"{where}: invalid key {key!r}") from None


# ---------------------------------------------------------------- REST: render settings


def _explicit(settings: CacheSettings) -> dict[str, dict[str, object]]:
    """Settings as Infinispan's element -> attributes mapping, defaults left out."""
    out: dict[str, dict[str, object]] = {}
    if settings.key_media_type != "application/unknown" or settings.value_media_type != "application/unknown":
        out["encoding"] = {}
    exp: dict[str, object] = {}
    if settings.lifespan_ms != INFINITE:
        exp["lifespan"] = settings.lifespan_ms
    if settings.max_idle_ms != INFINITE:
        exp["max-idle"] = settings.max_idle_ms
    if exp:
        out["expiration"] = exp
    if settings.max_count != -1:
        out["memory"] = {"max-count": settings.max_count}
    return out


def cache_settings_to_json(settings: CacheSettings, *, with_name: bool = False) -> dict[str, Any]:
    """Infinispan's JSON form, e.g. ``{"local-cache": {"statistics": true, ...}}``."""
    kind = _KIND_OF_MODE.get(settings.mode, "local-cache")
    body: dict[str, Any] = {}
    if settings.mode != "local":
        body["mode"] = "SYNC"
    body["statistics"] = settings.statistics
    for element, attrs in _explicit(settings).items():
        if element == "encoding":
            body["encoding"] = {
                "key": {"media-type": settings.key_media_type},
                "value": {"media-type": settings.value_media_type},
            }
        else:
            body[element] = dict(attrs)
    doc = {kind: body}
    return {settings.name: doc} if with_name else doc


def cache_settings_to_xml(settings: CacheSettings) -> str:
    """Infinispan's XML form: one ``<local-cache name=…>`` (etc.) element."""
    kind = _KIND_OF_MODE.get(settings.mode, "local-cache")
    el = etree.Element(kind)
    el.set("name", settings.name)
    if settings.mode != "local":
        el.set("mode", "SYNC")
    el.set("statistics", "true" if settings.statistics else "false")
    for element, attrs in _explicit(settings).items():
        child = etree.SubElement(el, element)
        if element == "encoding":
            etree.SubElement(child, "key").set("media-type", settings.key_media_type)
            etree.SubElement(child, "value").set("media-type", settings.value_media_type)
        for k, v in attrs.items():
            child.set(k, str(v))
    return etree.tostring(el, encoding="unicode")
