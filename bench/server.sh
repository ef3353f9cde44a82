#!/usr/bin/env bash
# Backup through `loop server` over HTTPS on loopback against the same backup into a local
# repository, in the same run. Prints a Markdown table: first backup, no-change backup (with
# the cache the first backup left, then with none), a backup after 1% of the files changed,
# and restore, wall
# time (best of 3, each on a fresh vault, repository and client cache) and the ratio
# server/local; then the HTTPS requests each server phase made (from the access log).
#
#   bench/server.sh [CORPUS_DIR]
#
# CORPUS_DIR defaults to the Linux 6.1 source tree (see bench/compare.sh). WORK (default a
# fresh tmpfs at /tmp/loop-bench-server when run as root) holds the server's data directory,
# the repositories and a copy of the corpus. The token has backup and restore permission, so
# the no-change backup can use its parent snapshot as a local one does.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${WORK:-}" ]; then
  WORK=/tmp/loop-bench-server
  mkdir -p "$WORK"
  if [ "$(id -u)" = 0 ] && ! mountpoint -q "$WORK"; then
    mount -t tmpfs -o size=8g tmpfs "$WORK"
  fi
fi
corpus=${1:-}
if [ -z "$corpus" ]; then
  tarball=/usr/src/linux-source-6.1.tar.xz
  [ -f "$tarball" ] || { echo "install linux-source-6.1 or pass a corpus directory" >&2; exit 1; }
  cache=/var/tmp/loop-bench-corpus
  [ -d "$cache/linux-source-6.1" ] || { mkdir -p "$cache" && tar -C "$cache" -xf "$tarball"; }
  corpus=$cache/linux-source-6.1
fi
(cd "$here" && cargo build --release -p loop-cli >/dev/null 2>&1) || (cd "$here" && cargo build --release -p loop-cli)
LOOP=$here/target/release/loop

rm -rf "${WORK:?}"/*
src=$WORK/src
cp -a "$corpus" "$src"
export LOOP_CONFIG_DIR=$WORK/cli LOOP_PASSWORD=bench
unset LOOP_REPOSITORY LOOP_TOKEN

. "$here/bench/serve.sh"
LOOP_LOG=warn,loop_server::access_log=info serve

best() { sort -n | head -1; }
# secs COMMAND...: wall seconds of one run
secs() {
  local t0 t1
  sync
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>"$WORK/last.err" || { tail -5 "$WORK/last.err" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
requests() { grep -c answered "$WORK/server.err" || true; }
# server PHASE COMMAND...: times a server phase and counts its requests
server() {
  local phase=$1 before
  shift
  before=$(requests)
  secs "$@" >>"$WORK/server.$phase"
  echo $(($(requests) - before)) >>"$WORK/requests.$phase"
}
# Appends a line to every 100th file (sorted by path): 1% of the files change.
change_one_percent() {
  find "$src" -type f | sort | awk 'NR % 100 == 0' | while IFS= read -r f; do
    echo "changed $1" >>"$f"
  done
}

for i in 1 2 3; do
  vault=$("$LOOP" vault create --tenant "$customer" --name "bench-$i" --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  token=$("$LOOP" token create --tenant "$customer" --name "bench-$i" --kind api --vault "$vault" \
    --permission backup --permission restore --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
  remote=(env LOOP_TOKEN="$token" LOOP_CACHE_DIR="$WORK/cache-$i" "$LOOP" -q -r "$url/vaults/$vault" backup "$src")
  local_repo=(env LOOP_REPOSITORY="$WORK/repo-$i" "$LOOP" -q backup --init --kdf-memory 65536 "$src")
  secs "${local_repo[@]}" >>"$WORK/local.first"
  server first "${remote[@]}"
  secs "${local_repo[@]}" >>"$WORK/local.nochange"
  server nochange "${remote[@]}"
  secs "${local_repo[@]}" >>"$WORK/local.nochange-cold"
  rm -rf "$WORK/cache-$i"
  server nochange-cold "${remote[@]}"
  change_one_percent "$i"
  secs "${local_repo[@]}" >>"$WORK/local.changed-1pct"
  server changed-1pct "${remote[@]}"
  rm -rf "$WORK/restore-local" "$WORK/restore-server"
  secs env LOOP_REPOSITORY="$WORK/repo-$i" "$LOOP" -q restore latest --target "$WORK/restore-local" >>"$WORK/local.restore"
  server restore env LOOP_TOKEN="$token" LOOP_CACHE_DIR="$WORK/cache-$i" "$LOOP" -q -r "$url/vaults/$vault" restore latest --target "$WORK/restore-server"
  rm -rf "$WORK/repo-$i" "$WORK/restore-local" "$WORK/restore-server" "$WORK/cache-$i"
  "$LOOP" vault delete "$vault" >/dev/null
done

echo "| phase | local s | server (HTTPS) s | server/local | requests |"
echo "|---|---|---|---|---|"
for phase in first nochange nochange-cold changed-1pct restore; do
  l=$(best <"$WORK/local.$phase"); s=$(best <"$WORK/server.$phase")
  r=$(sort -n "$WORK/requests.$phase" | head -1)
  printf "| %s | %.2f | %.2f | %.2f | %s |\n" "$phase" "$l" "$s" "$(echo "$s / $l" | bc -l)" "$r"
done
