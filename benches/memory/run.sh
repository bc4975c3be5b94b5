#!/usr/bin/env bash
# Memory acceptance: cloudmux must stream object bodies, not hold them.
#
# Usage:
#   benches/memory/run.sh                 # 2 GiB, release build, limit 200 MiB
#   SIZE_MIB=256 benches/memory/run.sh    # smaller object
#   CLOUDMUX_BIN=target/debug/cloudmux benches/memory/run.sh   # no release build
#
# What it does:
#   1. cargo build --release --bin cloudmux (skipped when CLOUDMUX_BIN is set)
#   2. starts `cloudmux serve` (plain HTTP, 127.0.0.1:0) on a temp data dir
#   3. writes a SIZE_MIB file from /dev/urandom (streamed to disk, never in
#      memory) and its sha256
#   4. uploads it with one streaming `curl -T` to a presigned SigV4 PUT URL
#      (made by boto3), then downloads it with curl through sha256sum
#   5. samples the server's RSS from /proc/PID/status (VmRSS every 50 ms, and
#      VmHWM, the kernel's peak, reset between phases via clear_refs)
#   6. prints
#        peak RSS during 2 GiB upload: N MiB
#        peak RSS during 2 GiB download: N MiB
#      and PASS or FAIL against LIMIT_MIB (default 200); removes all its data.
#
# Environment: SIZE_MIB (2048), LIMIT_MIB (200), CLOUDMUX_BIN, PYTHON
# (python3 with boto3), KEEP=1 keeps the temp dir, TMPDIR (where data goes;
# needs 2 x SIZE_MIB free).
# Exit status: 0 on PASS, 1 on FAIL (memory over limit, hash mismatch or an
# HTTP error), 2 on setup errors.
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
# shellcheck source=../lib.sh
. "$ROOT/benches/lib.sh"
SIZE_MIB=${SIZE_MIB:-2048}
LIMIT_MIB=${LIMIT_MIB:-200}
PYTHON=${PYTHON:-python3}
if [ -x "$ROOT/.venv/bin/python" ] && [ "$PYTHON" = python3 ]; then PYTHON="$ROOT/.venv/bin/python"; fi

if [ $((SIZE_MIB % 1024)) -eq 0 ]; then LABEL="$((SIZE_MIB / 1024)) GiB"; else LABEL="$SIZE_MIB MiB"; fi

die() { echo "memory bench: $*" >&2; exit 2; }

if [ -n "${CLOUDMUX_BIN:-}" ]; then
    BIN=$CLOUDMUX_BIN
else
    echo "==> cargo build --release --bin cloudmux"
    cargo build --release --bin cloudmux
    BIN="$ROOT/target/release/cloudmux"
fi
[ -x "$BIN" ] || die "server binary $BIN not found"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cloudmux-mem.XXXXXX")
PID=""
SAMPLER=""
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    if [ -n "$SAMPLER" ]; then kill "$SAMPLER" 2>/dev/null || true; fi
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill "$PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$PID" 2>/dev/null || true
    fi
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

ACCESS=AKIAMEMBENCH00000001
SECRET=membench-secret-0000000000000000000001
write_cloudmux_config "$WORK" "$ACCESS" "$SECRET" us-east-1

"$BIN" serve --config "$WORK/cloudmux.toml" >"$WORK/server.out" 2>"$WORK/server.err" &
PID=$!
ENDPOINT=$(endpoint_from "$WORK/server.out" "$PID" 60) || {
    cat "$WORK/server.err" >&2
    die "no endpoint line from the server (it exited, or 60 s passed)"
}
echo "server pid $PID at $ENDPOINT ($BIN)"

kib() { awk -v k="$1" '$1 == k":" { print $2 }' "/proc/$PID/status" 2>/dev/null; }
mib() { echo $(( ($1 + 1023) / 1024 )); }

# Background sampler: writes the max VmRSS (KiB) seen so far to $1.
start_sampler() {
    local out=$1
    (
        max=0
        while kill -0 "$PID" 2>/dev/null; do
            cur=$(kib VmRSS || echo 0)
            if [ "${cur:-0}" -gt "$max" ]; then max=$cur; echo "$max" >"$out"; fi
            sleep 0.05
        done
    ) &
    SAMPLER=$!
}
stop_sampler() { kill "$SAMPLER" 2>/dev/null || true; wait "$SAMPLER" 2>/dev/null || true; SAMPLER=""; }
reset_hwm() { echo 5 >"/proc/$PID/clear_refs" 2>/dev/null && echo yes || echo no; }

echo "==> writing $LABEL of random data"
SRC="$WORK/source.bin"
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom >"$SRC"
SRC_SHA=$(sha256sum "$SRC" | cut -d' ' -f1)

read -r PUT_URL GET_URL < <(
    ENDPOINT=$ENDPOINT ACCESS=$ACCESS SECRET=$SECRET "$PYTHON" - <<'PY'
import os
import boto3
from botocore.config import Config

c = boto3.session.Session().client(
    "s3", endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1",
    aws_access_key_id=os.environ["ACCESS"], aws_secret_access_key=os.environ["SECRET"],
    config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
)
c.create_bucket(Bucket="membench")
p = {"Bucket": "membench", "Key": "big/object.bin"}
print(c.generate_presigned_url("put_object", Params=p, ExpiresIn=7200),
      c.generate_presigned_url("get_object", Params=p, ExpiresIn=7200))
PY
)
BASE=$(kib VmRSS)
echo "server RSS before transfers: $(mib "$BASE") MiB"

# ---- upload ----
echo "==> upload ($LABEL, one streaming PUT)"
HWM_RESET=$(reset_hwm)
start_sampler "$WORK/rss-up"
t0=$(date +%s.%N)
CODE=$(curl -sS -o "$WORK/put.resp" -w '%{http_code}' -T "$SRC" "$PUT_URL" || echo 000)
t1=$(date +%s.%N)
stop_sampler
UP_HWM=$(kib VmHWM)
UP_SAMPLED=$(cat "$WORK/rss-up" 2>/dev/null || echo 0)
UP_PEAK=$UP_SAMPLED
if [ "$HWM_RESET" = yes ] && [ "$UP_HWM" -gt "$UP_PEAK" ]; then UP_PEAK=$UP_HWM; fi
STATUS=0
if [ "$CODE" != 200 ]; then
    echo "upload failed: HTTP $CODE: $(head -c 500 "$WORK/put.resp")"
    STATUS=1
fi
echo "upload: HTTP $CODE in $(awk -v a="$t0" -v b="$t1" -v s="$SIZE_MIB" 'BEGIN { printf "%.1f s (%.0f MiB/s)", b-a, s/(b-a) }')"

# ---- download ----
echo "==> download ($LABEL, one streaming GET)"
HWM_RESET=$(reset_hwm)
start_sampler "$WORK/rss-down"
t0=$(date +%s.%N)
set +e
DL_SHA=$(curl -sS -f "$GET_URL" | sha256sum | cut -d' ' -f1)
set -e
t1=$(date +%s.%N)
stop_sampler
DOWN_HWM=$(kib VmHWM)
DOWN_SAMPLED=$(cat "$WORK/rss-down" 2>/dev/null || echo 0)
DOWN_PEAK=$DOWN_SAMPLED
if [ "$HWM_RESET" = yes ] && [ "$DOWN_HWM" -gt "$DOWN_PEAK" ]; then DOWN_PEAK=$DOWN_HWM; fi
if [ "$HWM_RESET" = no ] && [ "$DOWN_HWM" -gt "$DOWN_PEAK" ]; then
    # No clear_refs: VmHWM is the peak over the whole life, upload included.
    echo "note: VmHWM could not be reset; using sampled VmRSS for the download"
fi
echo "download: in $(awk -v a="$t0" -v b="$t1" -v s="$SIZE_MIB" 'BEGIN { printf "%.1f s (%.0f MiB/s)", b-a, s/(b-a) }')"
if [ "$DL_SHA" != "$SRC_SHA" ]; then
    echo "sha256 mismatch: uploaded $SRC_SHA, downloaded $DL_SHA"
    STATUS=1
else
    echo "sha256 ok: $SRC_SHA"
fi

echo "peak RSS during $LABEL upload: $(mib "$UP_PEAK") MiB"
echo "peak RSS during $LABEL download: $(mib "$DOWN_PEAK") MiB"
if [ "$(mib "$UP_PEAK")" -gt "$LIMIT_MIB" ] || [ "$(mib "$DOWN_PEAK")" -gt "$LIMIT_MIB" ]; then
    echo "FAIL: peak RSS over $LIMIT_MIB MiB"
    STATUS=1
elif [ "$STATUS" -ne 0 ]; then
    echo "FAIL: transfer error (memory within $LIMIT_MIB MiB)"
else
    echo "PASS: peak RSS within $LIMIT_MIB MiB"
fi
exit "$STATUS"
