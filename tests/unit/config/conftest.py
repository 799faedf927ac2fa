from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from gridactor.config import load_config
from gridactor.config.model import ServerConfig

SPEC_EXAMPLES = Path(__file__).resolve().parents[2] / "data" / "spec_examples"

NETWORK = """
      <interfaces>
         <interface name="public"><inet-address value="127.0.0.1"/></interface>
      </interfaces>
      <socket-bindings default-interface="public" port-offset="0">
         <socket-binding name="default" port="11222"/>
         <socket-binding name="hotrod" port="11223"/>
      </socket-bindings>
"""

DEFAULT_REALM = """
      <security>
         <security-realms>
            <security-realm name="default">
               <properties-realm groups-attribute="Roles">
                  <user-properties path="users.properties" relative-to="infinispan.server.config.path"
                                   plain-text="true"/>
                  <group-properties path="groups.properties" relative-to="infinispan.server.config.path"/>
               </properties-realm>
            </security-realm>
         </security-realms>
      </security>
"""

AUTH_ENDPOINTS = '<endpoints socket-binding="default" security-realm="default"/>'
CONTAINER = (
    '<cache-container name="default" default-cache="default"><local-cache name="default"/></cache-container>'
)


def spec_example(name: str) -> str:
    return (SPEC_EXAMPLES / name).read_text()


def server_xml(server_inner: str, container: str = CONTAINER, ns: str = "urn:infinispan:server:15.0") -> str:
    return (
        '<?xml version="1.0"?>\n<infinispan xmlns="urn:infinispan:config:15.0">\n'
        f'{container}\n<server xmlns="{ns}">{server_inner}</server>\n</infinispan>\n'
    )


Loader = Callable[..., ServerConfig]


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str], Path]:
    def _write(text: str, name: str = "infinispan.xml") -> Path:
        p = tmp_path / name
        p.write_text(text)
        return p

    return _write


@pytest.fixture
def load(write: Callable[[str], Path]) -> Loader:
    def _load(text: str, properties: Mapping[str, str] = {}, **kw: object) -> ServerConfig:
        return load_config(write(text), properties, **kw)  # type: ignore[arg-type]

    return _load
