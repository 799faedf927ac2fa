"""Kerberos end to end: a real `gridactor run` with keytabs from a throwaway MIT KDC (k5test).

The server's configuration is the spec's own examples put together: the Kerberos
identities of 4.2.2.1 (``hotrod/datagrid@INFINISPAN.ORG``, ``HTTP/localhost@INFINISPAN.ORG``)
in the properties realm of 4.3.2.1's Kerberos Hot Rod connector (GSSAPI GS2-KRB5,
server-name datagrid), plus 4.3.3.1's SPNEGO REST connector. Clients: our own GSSAPI and
GS2-KRB5 mechanisms over our Hot Rod client, and curl / requests-gssapi for SPNEGO.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import gssapi
import pytest
import requests
import trio
from requests_gssapi import REQUIRED, HTTPSPNEGOAuth

from gridactor.client.hotrod import HotRodAuthenticationError, open_hotrod_client
from gridactor.client.kerberos import Gs2Krb5Client, GssapiClient
from tests.conftest import ROOT, RunningServer, make_server_root, start_server
from tests.fixtures.kerberos import HOTROD_PRINCIPAL, HTTP_PRINCIPAL, KerberosTestRealm
from tests.fixtures.kerberos import kerberos_realm as kerberos_realm  # the session fixture
from tests.integration.curl import curl

pytestmark = pytest.mark.integration

EXAMPLES = ROOT / "config" / "examples"


def kerberos_config(tmp: Path) -> Path:
    """hotrod-kerberos.xml + the identities of kerberos-identity.xml + rest-kerberos.xml's connector."""
    config = (EXAMPLES / "hotrod-kerberos.xml").read_text()
    identities = (EXAMPLES / "kerberos-identity.xml").read_text()
    block = re.search(r"<server-identities>.*?</server-identities>", identities, re.S)
    rest = (EXAMPLES / "rest-kerberos.xml").read_text()
    connector = re.search(r"<rest-connector.*?</rest-connector>", rest, re.S)
    assert block
    assert connector
    config = config.replace(
        '<security-realm name="default">', '<security-realm name="default">' + block.group(0)
    )
    config = config.replace("</hotrod-connector>", "</hotrod-connector>" + connector.group(0))
    # Offer every layer (the example leaves qop at auth) so clients can pick one.
    config = config.replace('server-name="datagrid"', 'server-name="datagrid" qop="auth-conf auth-int auth"')
    source = tmp / "source.xml"
    source.write_text(config)
    return source


def install_keytabs(root: Path, realm: KerberosTestRealm) -> None:
    shutil.copy(realm.hotrod_keytab, root / "hotrod.keytab")
    shutil.copy(realm.http_keytab, root / "http.keytab")


@pytest.fixture(scope="module")
def krb_server(
    tmp_path_factory: pytest.TempPathFactory, kerberos_realm: KerberosTestRealm
) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("kerberos")
    config = make_server_root(tmp, kerberos_config(tmp))
    install_keytabs(config.parent, kerberos_realm)
    running = start_server(tmp, config=config)
    yield running
    assert running.stop() == 0, running.log()


async def put_get(port: int, mechanism: object, key: bytes) -> bytes | None:
    async with open_hotrod_client("127.0.0.1", port, sasl=mechanism) as client:  # type: ignore[arg-type]
        await client.put(key, b"value-" + key)
        return await client.get(key)


@pytest.mark.parametrize("qop", ["auth-conf", "auth-int", "auth"])
async def test_gssapi_over_hot_rod(
    krb_server: RunningServer, kerberos_realm: KerberosTestRealm, qop: str
) -> None:
    mechanism = GssapiClient(HOTROD_PRINCIPAL, kerberos_realm.user_credentials("alice"), qop=(qop,))
    assert await put_get(krb_server.port, mechanism, qop.encode()) == b"value-" + qop.encode()
    assert mechanism.negotiated_qop == qop


async def test_gssapi_with_a_host_based_name(
    krb_server: RunningServer, kerberos_realm: KerberosTestRealm
) -> None:
    mechanism = GssapiClient("hotrod@datagrid", kerberos_realm.user_credentials("bob"))
    assert await put_get(krb_server.port, mechanism, b"hb") == b"value-hb"


async def test_gs2_krb5_over_hot_rod(krb_server: RunningServer, kerberos_realm: KerberosTestRealm) -> None:
    # carol is unknown to the properties realm: authenticated, with no groups.
    mechanism = Gs2Krb5Client(HOTROD_PRINCIPAL, kerberos_realm.user_credentials("carol"))
    assert await put_get(krb_server.port, mechanism, b"gs2") == b"value-gs2"


async def test_gs2_client_that_does_not_bind_is_refused(
    krb_server: RunningServer, kerberos_realm: KerberosTestRealm
) -> None:
    mechanism = Gs2Krb5Client(HOTROD_PRINCIPAL, kerberos_realm.user_credentials("alice"), bind=False)
    with pytest.raises(HotRodAuthenticationError, match="ISPN006024"):
        await put_get(krb_server.port, mechanism, b"x")
    assert "channel bindings are required" in krb_server.log()


@pytest.mark.parametrize("target", [HTTP_PRINCIPAL, "imap/localhost@INFINISPAN.ORG"])
async def test_wrong_service_principal_is_refused(
    krb_server: RunningServer, kerberos_realm: KerberosTestRealm, target: str
) -> None:
    mechanism = GssapiClient(target, kerberos_realm.user_credentials("alice"))
    with pytest.raises(HotRodAuthenticationError, match="ISPN006024"):
        await put_get(krb_server.port, mechanism, b"x")


class _Replay:
    """Sends a recorded GSSAPI initial token (an eavesdropper's replay)."""

    name = "GSSAPI"

    def __init__(self, token: bytes) -> None:
        self.token = token

    def initial_response(self) -> bytes:
        return self.token

    def evaluate(self, challenge: bytes) -> bytes | None:
        return b""

    def complete(self, final: bytes) -> None:
        pass


async def test_replayed_token_is_refused(
    krb_server: RunningServer, kerberos_realm: KerberosTestRealm
) -> None:
    real = GssapiClient(HOTROD_PRINCIPAL, kerberos_realm.user_credentials("alice"), qop=("auth",))
    token = real.initial_response()
    real.initial_response = lambda: token  # type: ignore[method-assign]
    assert await put_get(krb_server.port, real, b"first") == b"value-first"
    with pytest.raises(HotRodAuthenticationError, match="ISPN006024"):
        await put_get(krb_server.port, _Replay(token), b"again")
    assert "replay" in krb_server.log().lower()


async def test_kdc_outage_spares_authenticated_connections(
    krb_server: RunningServer, kerberos_realm: KerberosTestRealm
) -> None:
    credentials = kerberos_realm.user_credentials("alice")
    mechanism = GssapiClient(HOTROD_PRINCIPAL, credentials, qop=("auth-conf",))
    async with open_hotrod_client("127.0.0.1", krb_server.port, sasl=mechanism) as client:
        kerberos_realm.stop_kdc()
        try:
            for i in range(5):
                await client.put(b"outage", str(i).encode())
            assert await client.get(b"outage") == b"4"
            # A client still holding its service ticket can even log in anew.
            again = GssapiClient(HOTROD_PRINCIPAL, credentials)
            assert await put_get(krb_server.port, again, b"cached") == b"value-cached"
            # One that needs the KDC cannot, and that is a client-side failure.
            with pytest.raises(gssapi.exceptions.GSSError):
                kerberos_realm.user_credentials("bob")
        finally:
            kerberos_realm.start_kdc()
        assert await client.get(b"outage") == b"4"


# ---------------------------------------------------------------- SPNEGO (REST)


def test_spnego_with_curl_http1_and_http2(
    krb_server: RunningServer,
    kerberos_realm: KerberosTestRealm,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"http://localhost:{krb_server.port}/rest/v2/caches"
    no_ticket = curl(url, "--negotiate", "-u", ":")
    assert no_ticket.status == 401
    assert no_ticket.headers["www-authenticate"] == "Negotiate"
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{kerberos_realm.write_ccache('alice', tmp_path / 'cc')}")
    for extra in ((), ("--http2-prior-knowledge",)):
        got = curl(url, "--negotiate", "-u", ":", *extra)
        assert got.status == 200, got
        assert got.headers["www-authenticate"].startswith("Negotiate ")  # mutual authentication
        assert got.http_version == ("HTTP/2" if extra else "HTTP/1.1")


def test_spnego_with_requests_gssapi(krb_server: RunningServer, kerberos_realm: KerberosTestRealm) -> None:
    creds = kerberos_realm.user_credentials("bob", spnego=True)
    auth = HTTPSPNEGOAuth(creds=creds, mutual_authentication=REQUIRED)  # asks for HTTP/localhost
    url = f"http://localhost:{krb_server.port}/rest/v2/caches/default/spnego"
    put = requests.put(url, data=b"hello", auth=auth, timeout=10)
    assert put.status_code in (200, 204), put.text
    got = requests.get(url, auth=HTTPSPNEGOAuth(creds=creds, mutual_authentication=REQUIRED), timeout=10)
    assert got.status_code == 200
    assert got.content == b"hello"


def test_spnego_refuses_ntlm_cleanly(krb_server: RunningServer) -> None:
    url = f"http://localhost:{krb_server.port}/rest/v2/caches"
    ntlm = curl(
        url, "-H", "Authorization: Negotiate TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAKAGFKAAAADw=="
    )
    assert ntlm.status == 401
    assert ntlm.headers["www-authenticate"] == "Negotiate"


# ---------------------------------------------------------------- start-up


def test_spec_identity_example_runs_with_implicit_mechanisms(
    tmp_path: Path, kerberos_realm: KerberosTestRealm
) -> None:
    """kerberos-identity.xml as shipped: no properties realm, implicit GS2-KRB5 GSSAPI / SPNEGO."""
    root = tmp_path / "conf"
    root.mkdir()
    shutil.copy(EXAMPLES / "kerberos-identity.xml", root / "infinispan.xml")
    install_keytabs(root, kerberos_realm)
    running = start_server(tmp_path, config=root / "infinispan.xml")
    try:

        async def check() -> None:
            async with open_hotrod_client("127.0.0.1", running.port) as client:
                assert await client.auth_mech_list() == ["GS2-KRB5", "GSSAPI"]
            mechanism = Gs2Krb5Client(HOTROD_PRINCIPAL, kerberos_realm.user_credentials("carol"))
            assert await put_get(running.port, mechanism, b"implicit") == b"value-implicit"

        trio.run(check)
    finally:
        assert running.stop() == 0, running.log()


def test_missing_required_keytab_stops_the_server(tmp_path: Path) -> None:
    root = tmp_path / "conf"
    root.mkdir()
    shutil.copy(EXAMPLES / "kerberos-identity.xml", root / "infinispan.xml")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gridactor",
            "run",
            "-b",
            "127.0.0.1",
            "-p",
            "0",
            "-c",
            str(root / "infinispan.xml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert f"keytab {root / 'hotrod.keytab'} does not exist" in output, output
