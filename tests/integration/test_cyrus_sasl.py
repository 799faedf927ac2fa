"""Cyrus SASL (Debian's sasl2-bin and libsasl2-modules) as an independent SASL client.

`sasl-sample-client` runs the client side of a mechanism from Cyrus's own plugins and
speaks a line protocol on stdin/stdout ("S: base64" in, "C: base64" out, the password at
its "Password: " prompt). :class:`CyrusMechanism` relays those lines to our server over
Hot Rod AUTH with our client, so the exchange is checked by code we did not write.

Limit: the sample client never *sends* protected data after negotiation, so the
auth-int/auth-conf security layer is checked here only as far as Cyrus negotiates it and
verifies the server's ``rspauth``; wrapping itself is exercised end to end by
tests/integration/test_client_auth.py and against vectors in tests/unit/sasl.
"""

from __future__ import annotations

import base64
import os
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gridactor.client.hotrod import HotRodAuthenticationError, open_hotrod_client
from tests.conftest import ROOT, GridUser, RunningServer, make_server_root, start_server

pytestmark = pytest.mark.integration

USER = GridUser("cyrus-user", "Cyrus-Pass-42", ("admin",))
SAMPLE_CLIENT = shutil.which("sasl-sample-client")


class CyrusMechanism:
    """Our client's SASL interface, answered by a sasl-sample-client process."""

    def __init__(
        self, mechanism: str, user: str, password: str, *, min_ssf: int = 0, max_ssf: int = 0
    ) -> None:
        assert SAMPLE_CLIENT, "sasl2-bin is not installed: run `make install-test`"
        self.name = mechanism
        self._password = password
        cmd = ["setsid", "stdbuf", "-o0", SAMPLE_CLIENT, "-s", "hotrod", "-n", "infinispan", "-m", mechanism]
        cmd += ["-a", user, "-u", user, "-b", f"min={min_ssf},max={max_ssf}"]
        self.process = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self.transcript = b""
        self.complete_seen = False
        self.ssf: int | None = None

    def _send(self, line: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + b"\n")
        self.process.stdin.flush()

    def _read_until(self, *markers: bytes, timeout: float = 10.0) -> bytes:
        """Read output (answering the password prompt) until one of ``markers`` shows."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        start = len(self.transcript)
        deadline = time.monotonic() + timeout
        while not any(m in self.transcript[start:] for m in markers):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise AssertionError(f"sasl-sample-client is silent; transcript:\n{self.transcript.decode()}")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"sasl-sample-client exited; transcript:\n{self.transcript.decode()}")
            self.transcript += chunk
            if self.transcript.endswith(b"Password: "):
                self._send(self._password.encode())
        return self.transcript[start:]

    def _last_client_line(self, output: bytes) -> bytes:
        lines = [line for line in output.splitlines() if line.startswith(b"C: ")]
        return base64.b64decode(lines[-1][3:]) if lines else b""

    def _note_completion(self, output: bytes) -> bool:
        if b"Negotiation complete" not in output:
            return False
        self.complete_seen = True
        tail = output[output.index(b"Negotiation complete") :]
        while b"SSF: " not in tail or not tail[tail.index(b"SSF: ") :].count(b"\n"):
            tail += self._read_until(b"\n")  # the SSF line may come in a later read
        for line in tail.splitlines():
            if line.startswith(b"SSF: "):
                self.ssf = int(line[5:])
        return True

    def initial_response(self) -> bytes | None:
        self._send(b"S: " + base64.b64encode(self.name.encode()))
        output = self._read_until(b"Waiting for server reply")
        first = self._last_client_line(output)
        # The sample client sends "MECH" or "MECH\0initial-response".
        _, sep, initial = first.partition(b"\0")
        return initial if sep else None

    def evaluate(self, challenge: bytes) -> bytes | None:
        self._send(b"S: " + base64.b64encode(challenge))
        output = self._read_until(
            b"Waiting for server reply", b"Negotiation complete", b"authentication failed"
        )
        answer = self._last_client_line(output)
        completed = self._note_completion(output)
        if answer:
            # CRAM-MD5's response also completes the client side: it must still be sent.
            return answer
        if completed:
            return None
        if b"Waiting for server reply" not in output:
            raise AssertionError(f"Cyrus refused the server's data:\n{output.decode(errors='replace')}")
        return answer

    def complete(self, final: bytes) -> None:
        if self.complete_seen:
            return  # CRAM-MD5: Cyrus finished when it produced its response
        self._send(b"S: " + base64.b64encode(final))
        self._note_completion(self._read_until(b"Negotiation complete", b"authentication failed"))

    def close(self) -> None:
        self.process.kill()
        self.process.wait(5)


@pytest.fixture(scope="module")
def clear_text_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The default offer with clear-text users, so that CRAM-MD5 is offered too."""
    tmp = tmp_path_factory.mktemp("cyrus-clear")
    config = make_server_root(tmp, ROOT / "config" / "infinispan.xml", [USER], plain_text=True)
    running = start_server(tmp, config=config)
    yield running
    assert running.stop() == 0, running.log()


@pytest.fixture(scope="module")
def qop_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Spec 4.3.2.1 with every QoP offered (strongest first)."""
    tmp = tmp_path_factory.mktemp("cyrus-qop")
    text = (ROOT / "config" / "examples" / "hotrod-scram-digest-plain.xml").read_text()
    assert 'qop="auth"' in text
    source = tmp / "source.xml"
    source.write_text(text.replace('qop="auth"', 'qop="auth-conf auth-int auth"'))
    running = start_server(tmp, config=make_server_root(tmp, Path(source), [USER]))
    yield running
    assert running.stop() == 0, running.log()


async def authenticate_with_cyrus(server: RunningServer, mechanism: CyrusMechanism) -> None:
    try:
        async with open_hotrod_client(server.host, server.port) as client:
            await client.authenticate(mechanism)
            assert mechanism.complete_seen, mechanism.transcript.decode()
            if mechanism.ssf in (None, 0):
                # No security layer: the connection now serves data operations in the clear.
                await client.put("cyrus-key", "cyrus-value")
                assert await client.get("cyrus-key") == b"cyrus-value"
    finally:
        mechanism.close()


@pytest.mark.parametrize("name", ["CRAM-MD5", "DIGEST-MD5", "SCRAM-SHA-384", "SCRAM-SHA-256"])
async def test_cyrus_mechanisms_against_clear_text_users(clear_text_server: RunningServer, name: str) -> None:
    await authenticate_with_cyrus(clear_text_server, CyrusMechanism(name, USER.name, USER.password))


async def test_cyrus_wrong_password_fails(clear_text_server: RunningServer) -> None:
    mechanism = CyrusMechanism("CRAM-MD5", USER.name, "not-the-password")
    with pytest.raises(HotRodAuthenticationError, match="ISPN006024"):
        await authenticate_with_cyrus(clear_text_server, mechanism)


@pytest.mark.parametrize(("min_ssf", "max_ssf", "expected"), [(1, 1, 1), (56, 256, 128), (0, 0, 0)])
async def test_cyrus_digest_md5_negotiates_the_security_layer(
    qop_server: RunningServer, min_ssf: int, max_ssf: int, expected: int
) -> None:
    # ssf 1 = auth-int; > 1 = auth-conf with that cipher strength (Cyrus picks the strongest
    # offered cipher within max: 3des/rc4 = 128 here).
    mechanism = CyrusMechanism("DIGEST-MD5", USER.name, USER.password, min_ssf=min_ssf, max_ssf=max_ssf)
    await authenticate_with_cyrus(qop_server, mechanism)
    assert mechanism.ssf == expected, mechanism.transcript.decode()
