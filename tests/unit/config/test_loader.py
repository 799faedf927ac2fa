from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from gridactor.config import check_config, load_config, unsupported_features
from gridactor.config.expand import UnresolvedPropertyError, expand

from .conftest import DEFAULT_REALM, NETWORK, Loader, server_xml

REPO = Path(__file__).resolve().parents[3]


def test_expand() -> None:
    props = {"a": "1", "b": "2"}
    env = {"HOME": "/h", "b": "env-b", "c": "env-c"}
    assert expand("x${a}y${b}", props, env) == "x1y2"
    assert expand("${c}", props, env) == "env-c"
    assert expand("${env.HOME}/x", props, env) == "/h/x"
    assert expand("${nope:dflt}", props, env) == "dflt"
    assert expand("${nope:}", props, env) == ""
    assert expand("${nope,a:z}", props, env) == "1"
    assert expand("${x:a:b}", props, env) == "a:b"
    assert expand("$1 and $", props, env) == "$1 and $"
    with pytest.raises(UnresolvedPropertyError):
        expand("${nope}", props, env)
    with pytest.raises(ValueError, match="unterminated"):
        expand("${a", props, env)


def test_default_config() -> None:
    cfg = load_config(REPO / "config" / "infinispan.xml")
    cc = cfg.cache_container
    assert (cc.name, cc.default_cache, cc.statistics) == ("default", "default", True)
    assert cc.caches["default"].settings.mode == "local"
    (ep,) = cfg.endpoints
    # The spec's default (4.3.1): a property realm named "default" next to the config.
    assert ep.security_realm == "default"
    assert ep.hotrod is not None
    assert ep.rest is not None
    assert cfg.endpoint_address(ep) == ("127.0.0.1", 11222)
    realm = cfg.security_realms["default"].properties_realm
    assert realm is not None
    assert realm.user_properties.path == REPO / "config" / "users.properties"
    features = {f.feature for f in cfg.features}
    assert features == {"properties-realm", "hotrod-authentication", "rest-authentication"}
    assert cfg.paths.config == (REPO / "config").absolute()
    report = check_config(cfg, strict=True)
    assert report.ok
    assert (
        "endpoint 'default' at 127.0.0.1:11222, realm default: hotrod [SCRAM-SHA-512 SCRAM-SHA-384 "
        "SCRAM-SHA-256 SCRAM-SHA-1 DIGEST-SHA-512 DIGEST-SHA-384 DIGEST-SHA-256 DIGEST-SHA CRAM-MD5 "
        "DIGEST-MD5], rest [DIGEST]" in report.summary
    )


def test_default_config_properties_and_offset(monkeypatch: pytest.MonkeyPatch) -> None:
    path = REPO / "config" / "infinispan.xml"
    cfg = load_config(path, {"infinispan.bind.address": "0.0.0.0", "infinispan.bind.port": "12000"})
    assert cfg.endpoint_address(cfg.endpoints[0]) == ("0.0.0.0", 12000)
    cfg = load_config(path, {"infinispan.socket.binding.port-offset": "100"})
    assert cfg.effective_port("default") == 11322
    cfg = load_config(path, {"infinispan.socket.binding.port-offset": "100"}, port_offset=2)
    assert cfg.effective_port("default") == 11224
    # Environment variables resolve ${name} too (after -D properties).
    monkeypatch.setenv("infinispan.bind.port", "13000")
    assert os.environ["infinispan.bind.port"] == "13000"  # noqa: SIM112
    assert load_config(path).effective_port("default") == 13000


def test_examples_load() -> None:
    examples = sorted((REPO / "config" / "examples").glob("*.xml"))
    assert len(examples) >= 10
    for path in examples:
        cfg = load_config(path, {"org.infinispan.test.host.address": "localhost"})
        assert cfg.endpoints, path


def test_nested_endpoints_and_interfaces(load: Loader) -> None:
    network = NETWORK.replace(
        "</interfaces>",
        '<interface name="any"><any-address/></interface><interface name="lo"><loopback/></interface>'
        '<interface name="nic"><match-interface value="eth.*"/></interface></interfaces>',
    ).replace(
        '<socket-binding name="hotrod" port="11223"/>',
        '<socket-binding name="hotrod" port="11223" interface="any"/>'
        '<socket-binding name="lo" port="0" interface="lo"/>'
        '<socket-binding name="nic" port="1" interface="nic"/>',
    )
    endpoints = (
        '<endpoints security-realm="default">'
        '<endpoint socket-binding="default"><hotrod-connector/></endpoint>'
        '<endpoint socket-binding="hotrod" security-realm="default"><rest-connector context-path="/api/"/>'
        "</endpoint></endpoints>"
    )
    cfg = load(server_xml(network + DEFAULT_REALM + endpoints))
    a, b = cfg.endpoints
    assert a.hotrod is not None
    assert a.rest is None
    assert a.security_realm == "default"
    assert b.rest is not None
    assert b.rest.context_path == "api"
    assert cfg.endpoint_address(b) == ("0.0.0.0", 11223)
    assert cfg.bind_address("lo") == "127.0.0.1"
    assert cfg.effective_port("lo") == 0
    assert ("interface-selector", "match-interface") in {(f.feature, f.element) for f in cfg.features}
    with pytest.raises(Exception, match="not supported yet"):
        cfg.bind_address("nic")


def test_unsupported_features(load: Loader) -> None:
    text = server_xml(
        NETWORK + DEFAULT_REALM + '<endpoints socket-binding="default" security-realm="default"/>',
        '<cache-container default-cache="d">\n<local-cache name="d">\n<persistence/>\n</local-cache>\n'
        "</cache-container>",
    )
    cfg = load(text)
    missing = unsupported_features(cfg, {"properties-realm", "hotrod-authentication", "rest-authentication"})
    assert [f.feature for f in missing] == ["persistence"]
    assert missing[0].describe() == f"not supported yet: <persistence> ({cfg.source}:5)"


def test_check_missing_files(load: Loader, write: Callable[[str], Path], tmp_path: Path) -> None:
    cfg = load(
        server_xml(NETWORK + DEFAULT_REALM + '<endpoints socket-binding="default" security-realm="default"/>')
    )
    report = check_config(cfg, strict=False)
    assert report.ok
    assert len(report.warnings) == 2
    assert report.warnings[0].endswith(f"users file {tmp_path / 'users.properties'} does not exist")
    assert len(check_config(cfg, strict=True).errors) == 2
    (tmp_path / "users.properties").write_text("")
    (tmp_path / "groups.properties").write_text("")
    assert check_config(cfg, strict=True).warnings == []
    assert any(
        line.startswith("realm 'default': properties-realm")
        for line in check_config(cfg, strict=True).summary
    )


def test_relative_to_unknown_and_absolute(load: Loader, tmp_path: Path) -> None:
    realm = DEFAULT_REALM.replace('path="users.properties"', f'path="{tmp_path}/abs.properties"').replace(
        'path="groups.properties" relative-to="infinispan.server.config.path"',
        'path="g" relative-to="my.dir"',
    )
    cfg = load(server_xml(NETWORK + realm), {"my.dir": "/srv/x"})
    pr = cfg.security_realms["default"].properties_realm
    assert pr is not None
    assert pr.user_properties.path == tmp_path / "abs.properties"
    assert pr.group_properties is not None
    assert pr.group_properties.path == Path("/srv/x/g")
