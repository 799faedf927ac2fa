"""Errors are exact: ``FILE:LINE: element: what``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gridactor.config import load_config
from gridactor.errors import ConfigError

from .conftest import NETWORK, server_xml


def error_of(path: Path, properties: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, properties or {})
    return str(info.value)


def lines(*rows: str) -> str:
    return "\n".join(rows) + "\n"


def test_unknown_element(write: Callable[[str], Path]) -> None:
    p = write(
        lines(
            "<infinispan>",
            "  <cache-container>",
            '    <local-cache name="a">',
            '      <expirashun lifespan="1"/>',
            "    </local-cache>",
            "  </cache-container>",
            "</infinispan>",
        )
    )
    assert error_of(p) == f"{p}:4: expirashun: unknown element <expirashun> inside <local-cache>"


def test_unknown_attribute(write: Callable[[str], Path]) -> None:
    p = write(
        lines(
            "<infinispan>",
            '  <server xmlns="urn:infinispan:server:15.0">',
            "    <interfaces>",
            '      <interface name="public" colour="blue"><loopback/></interface>',
            "    </interfaces>",
            "  </server>",
            "</infinispan>",
        )
    )
    assert error_of(p) == f"{p}:4: interface: unknown attribute 'colour'"


def test_bad_number(write: Callable[[str], Path]) -> None:
    p = write(
        lines(
            "<infinispan>",
            '  <server xmlns="urn:infinispan:server:15.0">',
            '    <interfaces><interface name="public"><loopback/></interface></interfaces>',
            '    <socket-bindings default-interface="public">',
            '      <socket-binding name="default" port="eleven"/>',
            "    </socket-bindings>",
            "  </server>",
            "</infinispan>",
        )
    )
    assert error_of(p) == f"{p}:5: socket-binding: attribute 'port': 'eleven' is not a valid integer"


def test_missing_required_attribute(write: Callable[[str], Path]) -> None:
    p = write(
        server_xml(
            NETWORK
            + lines(
                "",
                "<security><security-realms><security-realm name='default'>",
                "  <properties-realm>",
                "    <user-properties relative-to='infinispan.server.config.path'/>",
                "  </properties-realm>",
                "</security-realm></security-realms></security>",
            )
        )
    )
    text = p.read_text().splitlines()
    line = next(i for i, t in enumerate(text, 1) if "<user-properties" in t)
    assert error_of(p) == f"{p}:{line}: user-properties: missing required attribute 'path'"


def test_unresolvable_property(write: Callable[[str], Path]) -> None:
    p = write(
        lines(
            "<infinispan>",
            '  <server xmlns="urn:infinispan:server:15.0">',
            "    <interfaces>",
            '      <interface name="public"><inet-address value="${gridactor.test.nope}"/></interface>',
            "    </interfaces>",
            "  </server>",
            "</infinispan>",
        )
    )
    assert (
        error_of(p)
        == f"{p}:4: inet-address: attribute 'value': cannot resolve property '${{gridactor.test.nope}}'"
    )


def test_entity_bomb_is_refused(write: Callable[[str], Path]) -> None:
    p = write(
        lines(
            '<?xml version="1.0"?>',
            "<!DOCTYPE lolz [",
            ' <!ENTITY lol "lol">',
            ' <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">',
            ' <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">',
            "]>",
            '<infinispan><cache-container name="&lol3;"/></infinispan>',
        )
    )
    assert error_of(p) == (
        f"{p}:2: !DOCTYPE: DOCTYPE and entity declarations are not allowed in configuration files"
    )


def test_external_entity_is_refused(write: Callable[[str], Path]) -> None:
    p = write('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n<infinispan>&e;</infinispan>\n')
    assert error_of(p).startswith(f"{p}:1: !DOCTYPE: ")


def test_malformed_xml(write: Callable[[str], Path]) -> None:
    p = write(
        lines(
            "<infinispan>",
            "  <cache-container>",
            '    <local-cache name="a">',
            "  </cache-container>",
            "</infinispan>",
        )
    )
    assert error_of(p) == (
        f"{p}:4: malformed XML: Opening and ending tag mismatch: local-cache line 3 and cache-container"
    )


def test_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "nope.xml"
    assert error_of(p) == f"{p}: cannot read configuration: No such file or directory"


def test_wrong_root(write: Callable[[str], Path]) -> None:
    p = write('<security xmlns="urn:infinispan:server:15.0"/>\n')
    assert error_of(p) == (
        f"{p}:1: security: the root element must be <infinispan> (namespace urn:infinispan:config:* or none)"
    )


@pytest.mark.parametrize(
    ("ns", "message"),
    [
        (
            "urn:infinispan:server:10.1",
            "unexpected namespace 'urn:infinispan:server:10.1' (expected urn:infinispan:server:*)",
        ),
        (
            "urn:infinispan:config:15.0",
            "unexpected namespace 'urn:infinispan:config:15.0' (expected urn:infinispan:server:*)",
        ),
    ],
)
def test_server_namespace(write: Callable[[str], Path], ns: str, message: str) -> None:
    p = write(f'<infinispan>\n<server xmlns="{ns}"/>\n</infinispan>\n')
    assert error_of(p) == f"{p}:2: server: {message}"


def test_bare_server_is_refused(write: Callable[[str], Path]) -> None:
    p = write("<infinispan>\n<server/>\n</infinispan>\n")
    assert error_of(p) == (f"{p}:2: server: unexpected namespace '' (expected urn:infinispan:server:*)")


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ('<endpoints socket-binding="nope"/>', "endpoints: socket binding 'nope' is not defined"),
        (
            '<endpoints socket-binding="default" security-realm="nope"/>',
            "endpoints: security realm 'nope' is not defined",
        ),
        ("<endpoints/>", "endpoints: missing required attribute 'socket-binding'"),
        (
            '<endpoints socket-binding="default"><rest-connector><authentication mechanisms="DIGEST"/>'
            "</rest-connector></endpoints>",
            "authentication: authentication needs a security realm (on <endpoints> or here)",
        ),
        (
            '<endpoints socket-binding="default" security-realm="default"><hotrod-connector><authentication>'
            '<sasl mechanisms="SCRAM-SHA-999"/></authentication></hotrod-connector></endpoints>',
            "sasl: attribute 'mechanisms': unknown SASL mechanism 'SCRAM-SHA-999'",
        ),
    ],
)
def test_endpoint_references(write: Callable[[str], Path], snippet: str, message: str) -> None:
    from .conftest import DEFAULT_REALM

    p = write(server_xml(NETWORK + DEFAULT_REALM + "\n" + snippet + "\n"))
    line = p.read_text().splitlines().index(snippet) + 1
    assert error_of(p) == f"{p}:{line}: {message}"


def test_duplicate_cache_and_unknown_template(write: Callable[[str], Path]) -> None:
    p = write(
        lines(
            "<infinispan><cache-container>",
            '<local-cache name="a"/>',
            '<local-cache name="a"/>',
            "</cache-container></infinispan>",
        )
    )
    assert error_of(p) == f"{p}:3: local-cache: a cache or template named 'a' is already defined"
    p = write(
        lines(
            "<infinispan><cache-container>",
            '<local-cache name="a" configuration="t"/>',
            "</cache-container></infinispan>",
        )
    )
    assert error_of(p) == f"{p}:2: local-cache: unknown cache template 't'"


def test_default_cache_must_exist(write: Callable[[str], Path]) -> None:
    p = write('<infinispan>\n<cache-container default-cache="x"/>\n</infinispan>\n')
    assert error_of(p) == f"{p}:2: cache-container: default-cache 'x' is not a defined cache"


def test_authorization_needs_authenticated_endpoint(write: Callable[[str], Path]) -> None:
    container = "<cache-container>\n<security><authorization/></security></cache-container>"
    p = write(server_xml(NETWORK + '<endpoints socket-binding="default"/>', container))
    assert error_of(p) == (
        f"{p}:4: authorization: authorization is enabled but no endpoint has authentication "
        "(set security-realm)"
    )


def test_text_where_none_belongs(write: Callable[[str], Path]) -> None:
    p = write("<infinispan>\n<cache-container>\nhello\n</cache-container>\n</infinispan>\n")
    assert error_of(p) == f"{p}:2: cache-container: unexpected text 'hello'"


def test_bad_permission(write: Callable[[str], Path]) -> None:
    p = write(
        lines(
            "<infinispan><cache-container><security><authorization>",
            '<role name="r" permissions="READ FLY"/>',
            "</authorization></security></cache-container></infinispan>",
        )
    )
    assert error_of(p) == f"{p}:2: role: unknown permission 'FLY'"
