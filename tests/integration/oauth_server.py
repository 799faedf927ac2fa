"""A real OAuth 2.0 authorization server for the token-realm tests: oidc-provider on loopback.

``tests/interop/oauth/server.mjs`` (installed by scripts/install-test-deps.sh with
``npm ci``) prints one JSON line once it listens, so starting it needs no port guessing
and no sleeps. Its default configuration has one client per test identity
(``admin-client`` / ``admin-secret`` …, see the script) and the introspecting resource
server ``infinispan-server`` / ``infinispan-secret``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx

OAUTH_DIR = Path(__file__).resolve().parent.parent / "interop" / "oauth"
RESOURCE_SERVER = ("infinispan-server", "infinispan-secret")


def oauth_server_available() -> bool:
    return shutil.which("node") is not None and (OAUTH_DIR / "node_modules" / "oidc-provider").is_dir()


@dataclass
class AuthServer:
    process: subprocess.Popen[bytes]
    issuer: str
    port: int
    token_endpoint: str
    introspection_endpoint: str
    revocation_endpoint: str

    def token(self, client: str) -> str:
        """An access token from the client-credentials grant of ``<client>-client``."""
        secret = client.removesuffix("-client") + "-secret"
        got = httpx.post(
            self.token_endpoint,
            data={"grant_type": "client_credentials"},
            auth=(client, secret),
            timeout=10,
        )
        assert got.status_code == 200, got.text
        token: str = got.json()["access_token"]
        return token

    def introspect(self, token: str) -> dict[str, object]:
        got = httpx.post(self.introspection_endpoint, data={"token": token}, auth=RESOURCE_SERVER, timeout=10)
        assert got.status_code == 200, got.text
        body: dict[str, object] = got.json()
        return body

    def revoke(self, token: str) -> None:
        got = httpx.post(self.revocation_endpoint, data={"token": token}, auth=RESOURCE_SERVER, timeout=10)
        assert got.status_code == 200, got.text

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def start_auth_server(*, port: int = 0) -> AuthServer:
    """Start the provider (on ``port``, or a free one) and wait for its ready line."""
    assert oauth_server_available(), "run scripts/install-test-deps.sh (npm ci in tests/interop/oauth)"
    cmd = ["node", str(OAUTH_DIR / "server.mjs"), *(["--port", str(port)] if port else [])]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=OAUTH_DIR)
    assert process.stdout is not None
    line = process.stdout.readline()  # bounded: the process prints it or exits
    if not line:
        process.wait(5)
        raise AssertionError(f"the OAuth server exited with {process.returncode} before it was ready")
    ready = json.loads(line)
    return AuthServer(
        process,
        ready["issuer"],
        int(ready["port"]),
        ready["token_endpoint"],
        ready["introspection_endpoint"],
        ready["revocation_endpoint"],
    )
