#!/usr/bin/env bash
# Quick memory smoke for scripts/test.sh: the memory acceptance run of
# run.sh with a 256 MiB object on the debug binary (no release build).
# A server that buffers whole bodies goes over the 200 MiB limit here too.
#   benches/memory/smoke.sh      (CLOUDMUX_BIN defaults to target/debug/cloudmux)
set -euo pipefail
cd "$(dirname "$0")/../.."
export CLOUDMUX_BIN="${CLOUDMUX_BIN:-$(pwd)/target/debug/cloudmux}"
export SIZE_MIB="${SMOKE_SIZE_MIB:-256}"
exec benches/memory/run.sh
