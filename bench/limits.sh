#!/usr/bin/env bash
# Bandwidth limits (`--limit-upload`, `--limit-download`): a backup and a restore of 32 MiB of
# incompressible data at a limit of 4 MiB/s, into a local repository and through
# `loop server` over HTTPS on loopback. Prints a Markdown table: wall time, the bytes that
# moved (the stored packs, or the restored file) over that time, and that rate over the limit.
#
#   bench/limits.sh [LIMIT_KIB_PER_SEC]
#
# WORK (default /tmp/loop-bench-limits) holds the server's data directory and repositories.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/loop-bench-limits}
limit=${1:-4096}
(cd "$here" && cargo build --release -p loop-cli >/dev/null 2>&1) || (cd "$here" && cargo build --release -p loop-cli)
LOOP=$here/target/release/loop

rm -rf "$WORK" && mkdir -p "$WORK/src"
head -c $((32 << 20)) /dev/urandom >"$WORK/src/data.bin"
export LOOP_CONFIG_DIR=$WORK/cli LOOP_PASSWORD=bench
unset LOOP_REPOSITORY LOOP_TOKEN

. "$here/bench/serve.sh"
serve
vault=$("$LOOP" vault create --tenant "$customer" --name limits --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
token=$("$LOOP" token create --tenant "$customer" --name limits --kind api --vault "$vault" \
  --permission backup --permission restore --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')

# row NAME BYTES COMMAND...: runs COMMAND and prints its row
row() {
  local name=$1 bytes=$2 t0 t1
  shift 2
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>"$WORK/last.err" || { tail -5 "$WORK/last.err" >&2; exit 1; }
  t1=$(date +%s.%N)
  python3 - "$name" "$bytes" "$t0" "$t1" "$limit" <<'PY'
import sys
name, moved, t0, t1, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
secs = t1 - t0
rate = moved / 1024 / secs
print(f"| {name} | {secs:.2f} | {moved / 2**20:.1f} | {rate:,.0f} | {rate / limit:.2f} |")
PY
}
# The packs a repository holds: the bytes a backup uploaded, give or take the small objects.
packs() { du -sb --apparent-size "$1/data" | cut -f1; }

echo "| at --limit-upload/--limit-download $limit KiB/s | s | MiB moved | KiB/s | of the limit |"
echo "|---|---|---|---|---|"
repo=$WORK/repo
"$LOOP" -q -r "$repo" init --kdf-memory 65536 >/dev/null
up=$(du -sb --apparent-size "$WORK/src/data.bin" | cut -f1)
row "local backup" "$up" "$LOOP" -q -r "$repo" --limit-upload "$limit" backup "$WORK/src"
row "local restore" "$up" "$LOOP" -q -r "$repo" --limit-download "$limit" restore latest --target "$WORK/restore-local"
remote=(env LOOP_TOKEN="$token" LOOP_NO_CACHE=true "$LOOP" -q -r "$url/vaults/$vault")
row "server backup" "$(packs "$repo")" "${remote[@]}" --limit-upload "$limit" backup --init "$WORK/src"
row "server restore" "$up" "${remote[@]}" --limit-download "$limit" restore latest --target "$WORK/restore-server"
cmp "$WORK/src/data.bin" "$WORK/restore-local/src/data.bin"
cmp "$WORK/src/data.bin" "$WORK/restore-server/src/data.bin"
