from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridactor.cache.api import INFINITE, CacheSettings
from gridactor.config import (
    cache_settings_to_json,
    cache_settings_to_xml,
    load_config,
    parse_cache_definition,
)
from gridactor.errors import ConfigError


def test_json_distributed() -> None:
    body = json.dumps(
        {
            "distributed-cache": {
                "mode": "SYNC",
                "owners": 2,
                "statistics": False,
                "expiration": {"lifespan": 60000, "max-idle": 1000},
                "memory": {"max-count": 100},
                "encoding": {
                    "key": {"media-type": "text/plain"},
                    "value": {"media-type": "application/json"},
                },
            }
        }
    ).encode()
    s = parse_cache_definition(body, "application/json; charset=utf-8", "c1")
    assert s == CacheSettings(
        name="c1",
        mode="distributed",
        lifespan_ms=60000,
        max_idle_ms=1000,
        max_count=100,
        statistics=False,
        key_media_type="text/plain",
        value_media_type="application/json",
    )


def test_json_local_and_name_wrapper() -> None:
    s = parse_cache_definition(
        b'{"local-cache": {"encoding": {"media-type": "text/plain"}}}', "application/json", "x"
    )
    assert (s.mode, s.key_media_type, s.value_media_type) == ("local", "text/plain", "text/plain")
    s = parse_cache_definition(b'{"x": {"replicated-cache": {"mode": "ASYNC"}}}', "application/json", "x")
    assert s.mode == "replicated"


def test_xml_forms() -> None:
    s = parse_cache_definition(
        b'<local-cache><expiration lifespan="5000"/><memory max-count="7"/></local-cache>',
        "application/xml",
        "a",
    )
    assert (s.name, s.lifespan_ms, s.max_count) == ("a", 5000, 7)
    wrapped = (
        b'<infinispan><cache-container><distributed-cache-configuration name="t"><expiration max-idle="9"/>'
        b'</distributed-cache-configuration><distributed-cache name="ignored" configuration="t" owners="3"/>'
        b"</cache-container></infinispan>"
    )
    s = parse_cache_definition(wrapped, "application/xml", "b")
    assert (s.name, s.mode, s.max_idle_ms) == ("b", "distributed", 9)


@pytest.mark.parametrize(
    ("body", "media", "message"),
    [
        (
            b"{",
            "application/json",
            "malformed JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        ),
        (
            b'{"local-cache": {"memory": {"max-count": "lots"}}}',
            "application/json",
            "memory: attribute 'max-count': 'lots' is not a valid integer",
        ),
        (
            b'{"local-cache": {"colour": "red"}}',
            "application/json",
            "local-cache: unknown attribute 'colour'",
        ),
        (
            b'{"weird-cache": {}}',
            "application/json",
            "unknown cache type 'weird-cache' (expected one of local-cache, distributed-cache, "
            "replicated-cache, "
            "invalidation-cache)",
        ),
        (b'{"local-cache": {"mode": "SYNC"}}', "application/json", "local-cache: unknown attribute 'mode'"),
        (
            b"<local-cache><nope/></local-cache>",
            "application/xml",
            "<body>:1: nope: unknown element <nope> inside <local-cache>",
        ),
        (
            b"<local-cache>",
            "application/xml",
            "<body>:1: malformed XML: Premature end of data in tag local-cache line 1",
        ),
        (
            b"x: 1",
            "application/yaml",
            "unsupported media type 'application/yaml' for a cache configuration (use JSON or XML)",
        ),
        (
            b'{"local-cache": {"expiration": {"lifespan": "${env.HOME}"}}}',
            "application/json",
            "expiration: attribute 'lifespan': cannot resolve property '${env.HOME}'",
        ),
    ],
)
def test_bad_bodies(body: bytes, media: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_cache_definition(body, media, "c")
    assert str(info.value) == message


def test_json_output_shape() -> None:
    s = CacheSettings(name="c", mode="distributed", lifespan_ms=60000, max_count=100)
    assert cache_settings_to_json(s) == {
        "distributed-cache": {
            "mode": "SYNC",
            "statistics": True,
            "expiration": {"lifespan": 60000},
            "memory": {"max-count": 100},
        }
    }
    assert cache_settings_to_json(CacheSettings(name="l"), with_name=True) == {
        "l": {"local-cache": {"statistics": True}}
    }
    assert cache_settings_to_xml(CacheSettings(name="l", max_idle_ms=5)) == (
        '<local-cache name="l" statistics="true"><expiration max-idle="5"/></local-cache>'
    )


media = st.sampled_from(
    ["application/unknown", "text/plain", "application/json", "application/x-protostream"]
)
durations = st.one_of(st.just(INFINITE), st.integers(min_value=0, max_value=10**12))
settings = st.builds(
    CacheSettings,
    name=st.just("c"),
    mode=st.sampled_from(["local", "distributed", "replicated", "invalidation"]),
    lifespan_ms=durations,
    max_idle_ms=durations,
    max_count=st.one_of(st.just(-1), st.integers(min_value=0, max_value=10**9)),
    statistics=st.booleans(),
    key_media_type=media,
    value_media_type=media,
)


@given(settings)
def test_json_round_trip(s: CacheSettings) -> None:
    body = json.dumps(cache_settings_to_json(s)).encode()
    assert parse_cache_definition(body, "application/json", "c") == s


@given(settings)
def test_xml_round_trip(s: CacheSettings) -> None:
    assert parse_cache_definition(cache_settings_to_xml(s).encode(), "application/xml", "c") == s


def test_templates_and_legacy_memory(write: Callable[[str], Path]) -> None:
    p = write(
        """<infinispan xmlns="urn:infinispan:config:13.0">
  <cache-container statistics="false">
    <local-cache-configuration name="base">
      <expiration lifespan="10s" max-idle="1000"/>
      <encoding><key media-type="text/plain"/><value media-type="application/json"/></encoding>
    </local-cache-configuration>
    <local-cache-configuration name="child" configuration="base" statistics="true">
      <memory><object size="50"/></memory>
    </local-cache-configuration>
    <local-cache name="a" configuration="child"><expiration max-idle="-1"/></local-cache>
    <local-cache name="b"><memory storage="HEAP" max-count="3"/></local-cache>
    <distributed-cache name="d" mode="ASYNC" owners="2" segments="64"><locking isolation="READ_COMMITTED"/>
      <transaction mode="NON_XA" locking="PESSIMISTIC"/><persistence><file-store/></persistence>
    </distributed-cache>
  </cache-container>
</infinispan>
"""
    )
    cfg = load_config(p)
    cc = cfg.cache_container
    a = cc.caches["a"].settings
    assert (a.lifespan_ms, a.max_idle_ms, a.max_count, a.statistics) == (10000, INFINITE, 50, True)
    assert (a.key_media_type, a.value_media_type) == ("text/plain", "application/json")
    assert cc.caches["a"].template == "child"
    assert cc.caches["b"].settings.statistics is False
    assert cc.caches["b"].settings.max_count == 3
    d = cc.caches["d"]
    assert (d.settings.mode, d.sync_mode, d.owners, d.segments) == ("distributed", "ASYNC", 2, 64)
    assert set(cc.templates) == {"base", "child"}
    assert cc.templates["child"].max_count == 50
    feats = {(f.feature, f.element, f.line) for f in cfg.features}
    assert {
        ("distributed-cache", "distributed-cache", 12),
        ("async-replication", "distributed-cache", 12),
        ("locking", "locking", 12),
        ("transaction", "transaction", 13),
        ("persistence", "persistence", 13),
    } <= feats


def test_template_mode_mismatch(write: Callable[[str], Path]) -> None:
    p = write(
        '<infinispan><cache-container>\n<distributed-cache-configuration name="t"/>\n'
        '<local-cache name="a" configuration="t"/>\n</cache-container></infinispan>\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config(p)
    assert str(info.value) == (
        f"{p}:3: local-cache: configuration 't' is a distributed-cache-configuration, "
        "which a local-cache cannot use"
    )
