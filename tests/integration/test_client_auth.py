"""Our Hot Rod client against a real server process with a property realm.

PLAIN and SCRAM-* use ``gridactor.client.sasl_client``; DIGEST-* and CRAM-MD5 use the
``respond``/``complete`` mechanisms of ``gridactor.client.sasl`` through the client's
adapter. A DIGEST variant with ``qop=auth-conf`` checks the security layer framing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gridactor.client import HotRodAuthenticationError, HotRodError, open_hotrod_client
from gridactor.client.sasl import create_client_mechanism
from gridactor.client.sasl_client import client_mechanism
from tests.conftest import ROOT, USERS, RunningServer, make_server_root, start_server

pytestmark = pytest.mark.integration

ALICE = USERS[0]
UNICODE_USER = USERS[2]
EXAMPLE = ROOT / "config" / "examples" / "hotrod-scram-digest-plain.xml"


@pytest.fixture(scope="module")
def realm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("client-auth")
    running = start_server(tmp, config=make_server_root(tmp, EXAMPLE))
    yield running
    assert running.stop() == 0, running.log()


@pytest.fixture(scope="module")
def conf_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("client-auth-conf")
    source = tmp / "source.xml"
    text = EXAMPLE.read_text()
    assert 'qop="auth"' in text
    source.write_text(text.replace('qop="auth"', 'qop="auth-conf auth-int auth"'))
    running = start_server(tmp, config=make_server_root(tmp, source))
    yield running
    assert running.stop() == 0, running.log()


@pytest.mark.parametrize(
    "mechanism", ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-384", "SCRAM-SHA-512"]
)
async def test_own_mechanisms(realm_server: RunningServer, mechanism: str) -> None:
    sasl = client_mechanism(mechanism, ALICE.name, ALICE.password)
    async with open_hotrod_client(realm_server.host, realm_server.port, sasl=sasl) as client:
        await client.put(b"k-" + mechanism.encode(), b"v")
        assert await client.get(b"k-" + mechanism.encode()) == b"v"


async def test_scram_with_a_non_ascii_user(realm_server: RunningServer) -> None:
    sasl = client_mechanism("SCRAM-SHA-256", UNICODE_USER.name, UNICODE_USER.password)
    async with open_hotrod_client(realm_server.host, realm_server.port, sasl=sasl) as client:
        await client.ping()


async def test_cram_md5_is_left_out_for_hashed_users(realm_server: RunningServer) -> None:
    # CRAM-MD5 needs clear passwords; tests/integration/test_cyrus_sasl.py uses it with them.
    async with open_hotrod_client(realm_server.host, realm_server.port) as probe:
        offered = await probe.auth_mech_list()
    assert "CRAM-MD5" not in offered
    assert "DIGEST-SHA-512" in offered


@pytest.mark.parametrize(
    "mechanism", ["DIGEST-MD5", "DIGEST-SHA", "DIGEST-SHA-256", "DIGEST-SHA-384", "DIGEST-SHA-512"]
)
async def test_respond_style_mechanisms(realm_server: RunningServer, mechanism: str) -> None:
    sasl = create_client_mechanism(mechanism, ALICE.name, ALICE.password)
    async with open_hotrod_client(realm_server.host, realm_server.port, sasl=sasl) as client:
        await client.put(b"k", b"v")
        assert await client.get(b"k") == b"v"


async def test_digest_auth_conf_security_layer(conf_server: RunningServer) -> None:
    sasl = create_client_mechanism("DIGEST-MD5", ALICE.name, ALICE.password, qop=("auth-conf",))
    async with open_hotrod_client(conf_server.host, conf_server.port, sasl=sasl) as client:
        assert sasl.negotiated_qop == "auth-conf"
        value = bytes(range(256)) * 100  # spans several wrapped buffers
        await client.put(b"big", value)
        assert await client.get(b"big") == value


async def test_wrong_password(realm_server: RunningServer) -> None:
    sasl = client_mechanism("SCRAM-SHA-256", ALICE.name, "not-the-password")
    with pytest.raises(HotRodAuthenticationError) as info:
        async with open_hotrod_client(realm_server.host, realm_server.port, sasl=sasl):
            raise AssertionError("authenticated with a wrong password")
    assert info.value.status == 0x85


async def test_unauthenticated_operations_are_refused(realm_server: RunningServer) -> None:
    async with open_hotrod_client(realm_server.host, realm_server.port) as client:
        await client.ping()
        with pytest.raises(HotRodError, match="requires authentication"):
            await client.get(b"k")
