"""TLS server identities and the trust-store realm against real clients.

Certificates come from trustme (tests/unit/tls/helpers.py). Clients: the official Node
Hot Rod client (EXTERNAL, SCRAM, PLAIN over TLS), curl (HTTP/2 and HTTP/1.1 over TLS, client
certificates), openssl s_client (protocols, cipher suites) and sslscan.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from gridactor.client import open_hotrod_client
from gridactor.client.sasl_client import client_mechanism
from tests.conftest import ROOT, USERS, RunningServer, make_server_root, start_server
from tests.integration.curl import curl
from tests.integration.node_client import results, run_node_ops
from tests.integration.processes import accepted_per_process
from tests.unit.tls.helpers import Leaf, Pki, make_pki, write_pkcs12, write_pkcs12_truststore

pytestmark = pytest.mark.integration

ALICE = USERS[0]
EXAMPLES = ROOT / "config" / "examples"
FAST = ("--shards", "0")

COMBINED = """<?xml version="1.0" encoding="UTF-8"?>
<infinispan xmlns="urn:infinispan:config:15.0">
   <cache-container name="default" default-cache="default"><local-cache name="default"/></cache-container>
   <server xmlns="urn:infinispan:server:15.0">
      <interfaces><interface name="public"><inet-address value="127.0.0.1"/></interface></interfaces>
      <socket-bindings default-interface="public" port-offset="0">
         <socket-binding name="default" port="11222"/>
      </socket-bindings>
      <security>
         <security-realms>
            <security-realm name="default">
               <server-identities>
                  <ssl>
                     <keystore path="server.p12" relative-to="infinispan.server.config.path"
                               keystore-password="secret" alias="server"/>
                  </ssl>
               </server-identities>
               <properties-realm groups-attribute="Roles">
                  <user-properties path="users.properties" relative-to="infinispan.server.config.path"/>
                  <group-properties path="groups.properties" relative-to="infinispan.server.config.path"/>
               </properties-realm>
               <truststore-realm path="trust.p12" relative-to="infinispan.server.config.path"
                                 keystore-password="secret"/>
            </security-realm>
         </security-realms>
      </security>
      <endpoints socket-binding="default" security-realm="default"/>
   </server>
</infinispan>
"""


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _trusted(pki: Pki) -> list:  # type: ignore[type-arg]
    # The CA (so carol's handshake succeeds) and the listed clients.
    import cryptography.x509 as x509

    ca = x509.load_pem_x509_certificate(pki.ca.cert_pem.bytes())
    return [ca, pki.alice.certificate, pki.expired.certificate]


def _server(
    tmp: Path, pki: Pki, config: Path | str, *, users: bool = True, args: tuple[str, ...] = FAST
) -> RunningServer:
    source = tmp / "source.xml"
    source.write_text(config.read_text() if isinstance(config, Path) else config)
    target = make_server_root(tmp, source, USERS[:1] if users else ())
    write_pkcs12(target.parent / "server.p12", pki.server)
    write_pkcs12_truststore(target.parent / "trust.p12", _trusted(pki))
    return start_server(tmp, args, config=target)


@pytest.fixture(scope="module")
def combined(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[RunningServer]:
    """Trust store + properties realm: certificates requested, passwords accepted too."""
    running = _server(tmp_path_factory.mktemp("combined"), pki, COMBINED)
    yield running
    assert running.stop() == 0, running.log()


@pytest.fixture(scope="module")
def cert_only(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[RunningServer]:
    """Spec 4.1.3 as printed: a trust-store realm alone, client certificates required."""
    running = _server(
        tmp_path_factory.mktemp("certonly"), pki, EXAMPLES / "truststore-realm.xml", users=False
    )
    yield running
    assert running.stop() == 0, running.log()


def node_ssl(pki: Pki, client: Leaf | None = None) -> str:
    settings: dict[str, object] = {
        "enabled": True,
        "trustCerts": [str(pki.ca_pem)],
        "sniHostName": "localhost",
    }
    if client is not None:
        settings["clientAuth"] = {"key": str(client.key_pem), "cert": str(client.cert_pem)}
    return json.dumps(settings)


def curl_tls(
    pki: Pki, url: str, *args: str, client: Leaf | None = None
) -> subprocess.CompletedProcess[bytes]:
    cmd = ["curl", "-sS", "--max-time", "10", "--cacert", str(pki.ca_pem), "-o", "/dev/null"]
    cmd += ["-w", "%{http_code} %{http_version}", *args]
    if client is not None:
        cmd += ["--cert", str(client.cert_pem), "--key", str(client.key_pem)]
    return subprocess.run([*cmd, url], capture_output=True, timeout=20, check=False)


def https(server: RunningServer, path: str = "/rest/v2/caches") -> str:
    return f"https://localhost:{server.port}{path}"


async def test_every_listener_process_terminates_tls_and_authenticates(tmp_path: Path, pki: Pki) -> None:
    """``--listeners 2``: the worker is a whole front-end (TLS, SASL, realm), not only the main process."""
    running = _server(tmp_path, pki, COMBINED, args=("--listeners", "2", "--shards", "1"))
    try:
        context = ssl.create_default_context(cafile=str(pki.ca_pem))
        context.check_hostname = False
        async with AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(
                    open_hotrod_client(
                        "localhost",
                        running.port,
                        ssl_context=context,
                        sasl=client_mechanism("SCRAM-SHA-256", ALICE.name, ALICE.password),
                    )
                )
                for _ in range(12)
            ]
            for i, client in enumerate(clients):
                await client.put(f"tls-{i}", b"v")
            for client in clients:
                assert await client.get(f"tls-{len(clients) - 1}") == b"v"
            counts = accepted_per_process(running, len(clients))
            assert len(counts) == 2, counts
            assert all(n > 0 for n in counts.values()), counts
    finally:
        code = running.stop()
    assert code == 0, running.log()


# ---------------------------------------------------------------- Hot Rod (Node client)


def test_node_external_with_a_listed_certificate(combined: RunningServer, pki: Pki) -> None:
    report = run_node_ops(
        combined.port,
        only="seed,read-shared",
        auth=json.dumps({"enabled": True, "saslMechanism": "EXTERNAL"}),
        ssl=node_ssl(pki, pki.alice),
    )
    assert report.get("connect_error") is None, report
    assert results(report) == {"seed": None, "read-shared": "from-node"}


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "PLAIN"])
def test_node_password_mechanisms_over_tls_without_a_certificate(
    combined: RunningServer, pki: Pki, mechanism: str
) -> None:
    auth = {"enabled": True, "saslMechanism": mechanism, "userName": ALICE.name, "password": ALICE.password}
    report = run_node_ops(combined.port, only="seed", auth=json.dumps(auth), ssl=node_ssl(pki))
    assert report.get("connect_error") is None, report
    assert results(report) == {"seed": None}


def test_node_external_refuses_a_ca_signed_but_unlisted_certificate(
    combined: RunningServer, pki: Pki
) -> None:
    report = run_node_ops(
        combined.port,
        only="seed",
        auth=json.dumps({"enabled": True, "saslMechanism": "EXTERNAL"}),
        ssl=node_ssl(pki, pki.carol),
    )
    assert "ISPN006024" in (report.get("connect_error") or ""), report
    assert "is not in the trust store of realm 'default'" in combined.log()


# ---------------------------------------------------------------- REST (curl)


def test_curl_http2_with_a_client_certificate(combined: RunningServer, pki: Pki) -> None:
    done = curl_tls(pki, https(combined), "--http2", "-v", client=pki.alice)
    assert done.stdout.decode() == "200 2", done.stderr.decode()
    assert "ALPN: server accepted h2" in done.stderr.decode()


def test_curl_http11_basic_over_tls(combined: RunningServer, pki: Pki) -> None:
    done = curl_tls(pki, https(combined), "--http1.1", "-u", f"{ALICE.name}:{ALICE.password}")
    assert done.stdout.decode() == "200 1.1", done.stderr.decode()
    anonymous = curl(https(combined), "--cacert", str(pki.ca_pem), "--http1.1")
    assert anonymous.status == 401
    schemes = anonymous.headers.get("www-authenticate", "")
    assert "Basic" in schemes or "Digest" in schemes


@pytest.mark.parametrize(
    ("who", "reason"), [("stranger", "unable to get local issuer"), ("expired", "certificate has expired")]
)
def test_untrusted_and_expired_certificates_are_refused_at_the_handshake(
    combined: RunningServer, pki: Pki, who: str, reason: str
) -> None:
    done = curl_tls(pki, https(combined), client=getattr(pki, who))
    assert done.returncode != 0
    assert done.stdout.decode().startswith("000")
    deadline = time.monotonic() + 5
    while reason not in combined.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert f"client certificate: {reason}" in combined.log()


def test_plaintext_client_on_the_tls_port_is_closed_promptly(combined: RunningServer) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", combined.port), timeout=5) as sock:
        # A Hot Rod 4.1 PING in the clear.
        sock.sendall(bytes.fromhex("a0012917000000000000"))
        # Whatever comes back (nothing, or a TLS alert), the server closes the connection.
        while sock.recv(4096):
            pass
    assert time.monotonic() - started < 2.0
    plain = subprocess.run(
        ["curl", "-sS", "--max-time", "5", f"http://127.0.0.1:{combined.port}/rest/v2/caches"],
        capture_output=True,
        timeout=10,
        check=False,
    )
    assert plain.returncode != 0


def test_client_certificate_required_without_a_password_realm(cert_only: RunningServer, pki: Pki) -> None:
    done = curl_tls(pki, https(cert_only), "--http2", client=pki.alice)
    assert done.stdout.decode() == "200 2", done.stderr.decode()
    refused = curl_tls(pki, https(cert_only), "--http2")
    assert refused.returncode != 0
    report = run_node_ops(
        cert_only.port,
        only="seed",
        auth=json.dumps({"enabled": True, "saslMechanism": "EXTERNAL"}),
        ssl=node_ssl(pki, pki.alice),
    )
    assert results(report) == {"seed": None}, report


# ---------------------------------------------------------------- protocols and ciphers (spec 4.2.1.3)


def s_client(port: int, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost", *args],
        input=b"",
        capture_output=True,
        timeout=15,
        check=False,
    )


@pytest.fixture(scope="module")
def engine_server(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[RunningServer]:
    running = _server(tmp_path_factory.mktemp("engine"), pki, EXAMPLES / "ssl-engine.xml", users=False)
    yield running
    assert running.stop() == 0, running.log()


def test_engine_protocols_and_java_cipher_names(engine_server: RunningServer) -> None:
    assert "protocol TLSv1.1 is not enabled" in engine_server.log()
    port = engine_server.port
    ok = s_client(port, "-tls1_2", "-cipher", "AES128-GCM-SHA256")
    assert b"Cipher is AES128-GCM-SHA256" in ok.stdout, ok.stdout.decode()
    assert s_client(port, "-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384").returncode != 0
    assert s_client(port, "-tls1_3").returncode != 0
    assert s_client(port, "-tls1_1", "-cipher", "ALL:@SECLEVEL=0").returncode != 0


@pytest.mark.skipif(shutil.which("sslscan") is None, reason="sslscan is not installed")
def test_sslscan_sees_nothing_below_tls12(combined: RunningServer) -> None:
    done = subprocess.run(
        [
            "sslscan",
            "--no-colour",
            "--no-heartbleed",
            "--no-renegotiation",
            "--no-compression",
            "--no-fallback",
            "--no-groups",
            "--no-check-certificate",
            f"127.0.0.1:{combined.port}",
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    out = done.stdout.decode()
    protocols = dict(re.findall(r"^(SSLv[23]|TLSv1\.[0-3])\s+(enabled|disabled)", out, re.M))
    assert protocols.get("TLSv1.2") == "enabled", out
    for old in ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1"):
        assert protocols.get(old, "disabled") == "disabled", out
    accepted = re.findall(r"^(?:Preferred|Accepted)\s+(\S+)", out, re.M)
    assert accepted, out
    assert all(version in ("TLSv1.2", "TLSv1.3") for version in accepted), out


# ---------------------------------------------------------------- the spec's examples


@pytest.mark.parametrize("example", ["ssl-identity.xml", "ssl-generated-keystore.xml"])
def test_spec_examples_serve_tls(tmp_path: Path, pki: Pki, example: str) -> None:
    tmp = tmp_path
    source = tmp / "source.xml"
    source.write_text((EXAMPLES / example).read_text())
    target = make_server_root(tmp, source, ())
    if example == "ssl-identity.xml":
        write_pkcs12(target.parent / "server.p12", pki.server)
    running = start_server(tmp, FAST, config=target)
    try:
        cmd = ["curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code} %{http_version}"]
        if example == "ssl-identity.xml":
            cmd += ["--cacert", str(pki.ca_pem)]
        else:
            assert "NOT for production" in running.log()
            cmd += ["--cacert", "/dev/null", "-k"]
        done = subprocess.run([*cmd, "--http2", https(running)], capture_output=True, timeout=20, check=False)
        # TLS and HTTP/2 work; the realm knows nobody, so authentication is refused.
        assert done.stdout.decode() == "401 2", done.stderr.decode()
        if example == "ssl-generated-keystore.xml":
            first = (target.parent / "server.p12").read_bytes()
            assert running.stop() == 0
            running = start_server(tmp, FAST, config=target)
            assert (target.parent / "server.p12").read_bytes() == first
            assert "generated a self-signed" not in running.log()
    finally:
        assert running.stop() == 0, running.log()


def test_wrong_keystore_password_stops_the_start_and_config_check_says_so(tmp_path: Path, pki: Pki) -> None:
    source = tmp_path / "source.xml"
    source.write_text(
        (EXAMPLES / "ssl-identity.xml")
        .read_text()
        .replace('keystore-password="secret"', 'keystore-password="wrong"')
    )
    target = make_server_root(tmp_path, source, ())
    write_pkcs12(target.parent / "server.p12", pki.server)
    with pytest.raises(AssertionError, match=r"server.p12: wrong password"):
        start_server(tmp_path, FAST, config=target, timeout=20)
    import sys

    check = subprocess.run(
        [sys.executable, "-m", "gridactor", "config", "check", str(target)],
        capture_output=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert check.returncode != 0
    assert "server.p12: wrong password" in check.stdout.decode() + check.stderr.decode()
