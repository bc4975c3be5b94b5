#!/usr/bin/env bash
# Builds the last release before versioning (main at 9b2f3da: object,
# intent and bucket records at format version 4), for the upgrade test
# (tests/upgrade.rs), and prints the binary's path on its last line.
#
# The commit is checked out in a detached worktree under target/ and built
# there with its own target directory (target/old-release), so it never
# touches the current build's artifacts. Idempotent: a built binary is
# reused.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
COMMIT=9b2f3da
SRC="$ROOT/target/old-src-$COMMIT"
OUT="$ROOT/target/old-release"
BIN="$OUT/debug/cloudmux"
if [ -x "$BIN" ] && [ -f "$OUT/.commit" ] && [ "$(cat "$OUT/.commit")" = "$COMMIT" ]; then
    echo "$BIN"
    exit 0
fi
if ! git -C "$ROOT" cat-file -e "$COMMIT^{commit}" 2>/dev/null; then
    echo "commit $COMMIT is not in this clone (a shallow clone?): git fetch --unshallow" >&2
    exit 1
fi
if [ ! -e "$SRC/.git" ]; then
    git -C "$ROOT" worktree prune
    git -C "$ROOT" worktree add --detach "$SRC" "$COMMIT" >&2
fi
(cd "$SRC" && CARGO_TARGET_DIR="$OUT" cargo build --bin cloudmux >&2)
echo "$COMMIT" > "$OUT/.commit"
echo "$BIN"
