"""Fixtures for the Python client tests: a real cloudmux over HTTPS.

One server is started for the whole session:
  * a throw-away CA and a server certificate for 127.0.0.1/localhost are made
    with the openssl CLI (or the `cryptography` package when openssl is absent),
  * a config with TLS, a sled metadata dir and an fs location in a temp dir is
    written, and `$CLOUDMUX_BIN serve --config FILE` is started
    (default binary: target/debug/cloudmux of this repository),
  * the fixture waits for the `endpoint: https://127.0.0.1:PORT` line.

The aws CLI and boto3 are pointed at it with an isolated AWS config
(path-style addressing, the test CA bundle, static credentials), so the
machine's own ~/.aws files and AWS_* variables never interfere.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCESS_KEY = "AKIAADMIN0000000001"
SECRET_KEY = "admin-secret-000000000000000000000001"
# The [server] metrics_token of the test server: the bearer token of /metrics.
METRICS_TOKEN = "py-metrics-token-0123456789"
ENDPOINT_RE = re.compile(r"endpoint:\s*(https?://[^\s]+)")
STARTUP_TIMEOUT = float(os.environ.get("CLOUDMUX_STARTUP_TIMEOUT", "60"))


# --------------------------------------------------------------------------
# TLS material
# --------------------------------------------------------------------------


def _run(cmd: list[str], cwd: Path) -> None:
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{cmd!r} failed: {res.stderr}")


def _certs_openssl(d: Path) -> None:
    ext = d / "leaf.ext"
    ext.write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n"
    )
    _run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "3",
            "-subj", "/CN=cloudmux test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ],
        d,
    )
    _run(
        [
            "openssl", "req", "-newkey", "rsa:2048", "-nodes",
            "-keyout", "key.pem", "-out", "leaf.csr", "-subj", "/CN=127.0.0.1",
        ],
        d,
    )
    _run(
        [
            "openssl", "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem",
            "-CAkey", "ca.key", "-CAcreateserial", "-out", "cert.pem",
            "-days", "3", "-extfile", "leaf.ext",
        ],
        d,
    )


def _certs_cryptography(d: Path) -> None:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cloudmux test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (d / "cert.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def make_certs(d: Path) -> tuple[Path, Path, Path]:
    """Returns (ca bundle, server cert, server key)."""
    d.mkdir(parents=True, exist_ok=True)
    if shutil.which("openssl"):
        _certs_openssl(d)
    else:
        _certs_cryptography(d)
    return d / "ca.pem", d / "cert.pem", d / "key.pem"


# --------------------------------------------------------------------------
# Server process
# --------------------------------------------------------------------------


@dataclass
class Server:
    endpoint: str
    ca: Path
    log: Path
    proc: subprocess.Popen
    env: dict = field(default_factory=dict)  # environment for aws CLI runs
    aws_config: Path | None = None
    workdir: Path | None = None

    hung: bool = False

    def alive(self) -> bool:
        return self.proc.poll() is None

    def responsive(self, timeout: float = 15.0) -> bool:
        """True if an (unauthenticated) GET / gets any HTTP answer in time."""
        u = urlsplit(self.endpoint)
        if u.scheme == "https":
            ctx = ssl.create_default_context(cafile=str(self.ca))
            conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=timeout,
                                               context=ctx)
        else:
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        try:
            conn.request("GET", "/")
            conn.getresponse().read()
            return True
        except OSError:
            return False
        finally:
            conn.close()

    def log_tail(self, start: int = 0, lines: int = 80) -> str:
        try:
            with open(self.log, "rb") as f:
                f.seek(start)
                data = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(data.splitlines()[-lines:])

    def log_size(self) -> int:
        try:
            return self.log.stat().st_size
        except OSError:
            return 0


def _binary() -> Path:
    b = os.environ.get("CLOUDMUX_BIN")
    p = Path(b) if b else REPO / "target" / "debug" / "cloudmux"
    if not p.is_absolute():
        p = (Path.cwd() / p).resolve()
    return p


def write_config(path: Path, data: Path, cert: Path | None, key: Path | None) -> None:
    tls = ""
    if cert is not None and key is not None:
        tls = f'tls_cert = "{cert}"\ntls_key = "{key}"\n'
    path.write_text(
        f"""[server]
listen = "127.0.0.1:0"
region = "{REGION}"
metrics_token = "{METRICS_TOKEN}"
{tls}
[metadata]
engine = "sled"
path = "{data / 'meta'}"

[[accounts]]
name = "admin"
access_key = "{ACCESS_KEY}"
secret_key = "{SECRET_KEY}"

[locations.local]
type = "fs"
path = "{data / 'objects'}"
default = true
"""
    )


def start_server(config: Path, log: Path) -> tuple[subprocess.Popen, str]:
    binary = _binary()
    if not binary.exists():
        pytest.exit(
            f"cloudmux binary not found at {binary}; build it with "
            "`cargo build --bin cloudmux` or set CLOUDMUX_BIN",
            returncode=3,
        )
    logf = open(log, "ab", buffering=0)
    env = dict(os.environ)
    env.setdefault("CLOUDMUX_LOG", "info")  # one log line per request
    env.setdefault("NO_COLOR", "1")  # plain text in the log attached to failures
    proc = subprocess.Popen(
        [str(binary), "serve", "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=logf,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    found: dict[str, str] = {}
    ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            logf.write(raw)
            if not ready.is_set():
                m = ENDPOINT_RE.search(raw.decode("utf-8", "replace"))
                if m:
                    found["endpoint"] = m.group(1).rstrip("/")
                    ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True, name="cloudmux-stdout").start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not ready.wait(0.1):
        if proc.poll() is not None or time.monotonic() > deadline:
            break
    if "endpoint" not in found:
        code = proc.poll()
        stop_server(proc)
        tail = log.read_text(errors="replace")[-4000:]
        why = (
            f"exited with code {code} before printing an `endpoint:` line"
            if code is not None
            else f"printed no `endpoint:` line within {STARTUP_TIMEOUT}s"
        )
        pytest.exit(f"cloudmux {why}. Log:\n{tail}", returncode=3)
    return proc, found["endpoint"]


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def _isolated_aws_env(work: Path, ca: Path) -> tuple[dict, Path]:
    cfg = work / "aws-config"
    cfg.write_text(
        f"[default]\nregion = {REGION}\ns3 =\n    addressing_style = path\n"
    )
    creds = work / "aws-credentials"
    creds.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=str(cfg),
        AWS_SHARED_CREDENTIALS_FILE=str(creds),
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_DEFAULT_REGION=REGION,
        AWS_CA_BUNDLE=str(ca),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_PAGER="",
        PYTHONIOENCODING="utf-8",
        # No retries: a server error must fail the test, not be papered over.
        AWS_RETRY_MODE="standard",
        AWS_MAX_ATTEMPTS="1",
    )
    return env, cfg


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("cloudmux")
    ca, cert, key = make_certs(work / "tls")
    data = work / "data"
    data.mkdir()
    config = work / "cloudmux.toml"
    write_config(config, data, cert, key)
    log = work / "server.log"
    proc, endpoint = start_server(config, log)
    env, cfg = _isolated_aws_env(work, ca)

    # boto3 runs in this process: give it the same isolated environment.
    saved = dict(os.environ)
    for k in [k for k in os.environ if k.startswith("AWS_")]:
        del os.environ[k]
    os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})

    srv = Server(endpoint=endpoint, ca=ca, log=log, proc=proc, env=env,
                 aws_config=cfg, workdir=work)
    try:
        yield srv
    finally:
        os.environ.clear()
        os.environ.update(saved)
        crashed = proc.poll()
        stop_server(proc)
        shutil.rmtree(data, ignore_errors=True)
        if crashed is not None:
            print(f"\ncloudmux exited early with code {crashed}; log tail:\n"
                  f"{srv.log_tail()}", file=sys.stderr)


@pytest.fixture(autouse=True)
def _server_health(request):
    """Fail clearly if the server died; attach its log to failing tests."""
    if "server" not in request.fixturenames:
        yield
        return
    srv: Server = request.getfixturevalue("server")
    if not srv.alive():
        pytest.fail(
            f"cloudmux is not running (exit code {srv.proc.returncode}); log tail:\n"
            f"{srv.log_tail()}"
        )
    # A hung server would make every later test wait for client timeouts.
    if srv.hung or not srv.responsive():
        srv.hung = True
        pytest.fail("cloudmux is alive but does not answer GET / within 15 s "
                    "(hung since an earlier test)")
    request.node._cloudmux_log = (srv, srv.log_size())
    yield


def pytest_collection_modifyitems(items):
    """Run tests marked `last` (heavy concurrency) after all the others."""
    items.sort(key=lambda it: it.get_closest_marker("last") is not None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed and hasattr(item, "_cloudmux_log"):
        srv, start = item._cloudmux_log
        rep.sections.append(
            ("cloudmux server log during this test", srv.log_tail(start) or "(empty)")
        )
        if not srv.alive():
            rep.sections.append(
                ("cloudmux", f"server died with exit code {srv.proc.returncode}")
            )


# --------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------


def aws_bin() -> str:
    sib = Path(sys.executable).parent / "aws"
    if sib.exists():
        return str(sib)
    found = shutil.which("aws")
    if not found:
        pytest.exit("aws CLI not found; run scripts/install-test-deps.sh", returncode=3)
    return found


class AwsCli:
    def __init__(self, srv: Server):
        self.srv = srv
        self.bin = aws_bin()

    def __call__(self, *args: str, check: bool = True, timeout: float = 600,
                 env: dict | None = None) -> subprocess.CompletedProcess:
        cmd = [self.bin, *args, "--endpoint-url", self.srv.endpoint]
        e = dict(self.srv.env)
        if env:
            e.update(env)
        res = subprocess.run(cmd, env=e, capture_output=True, encoding="utf-8",
                             errors="replace", timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(
                f"`aws {' '.join(args)}` exited {res.returncode}\n"
                f"stdout:\n{res.stdout[-4000:]}\nstderr:\n{res.stderr[-4000:]}"
            )
        return res


@pytest.fixture(scope="session")
def aws(server: Server) -> AwsCli:
    return AwsCli(server)


def make_client(server: Server, **config) -> "boto3.client":
    base = dict(
        region_name=REGION,
        s3={"addressing_style": "path"},
        retries={"mode": "standard", "total_max_attempts": 1},
    )
    base.update(config)
    return boto3.session.Session().client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
        verify=str(server.ca),
        config=Config(**base),
    )


@pytest.fixture(scope="session")
def s3(server: Server):
    """boto3 S3 client with all defaults (checksums when_supported etc.)."""
    return make_client(server, max_pool_connections=32)


def new_bucket_name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def bucket(s3) -> str:
    name = new_bucket_name()
    s3.create_bucket(Bucket=name)
    return name


# --------------------------------------------------------------------------
# Helpers shared by the tests
# --------------------------------------------------------------------------


def write_random_file(path: Path, size: int, chunk: int = 1 << 20) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(chunk, left)
            f.write(os.urandom(n))
            left -= n


def curl(url: str, ca: Path, out: Path, *extra: str) -> tuple[int, bytes]:
    """GETs url with curl; returns (status, body)."""
    res = subprocess.run(
        ["curl", "-sS", "--cacert", str(ca), "-o", str(out), "-w", "%{http_code}",
         *extra, url],
        capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 0, f"curl failed: {res.stderr}"
    body = out.read_bytes() if out.exists() else b""
    return int(res.stdout.strip()), body
