#!/usr/bin/env bash
# Runs loop, restic and borg side by side on the same tree, in the same run, and prints a
# Markdown table of wall time, peak RSS and repository size, with loop/restic ratios.
#
#   bench/compare.sh [CORPUS_DIR]
#
# CORPUS_DIR defaults to the Linux 6.1 source tree, extracted from Debian's linux-source-6.1
# package (apt-get install linux-source-6.1 restic borgbackup) into $WORK.
# WORK holds the copy of the corpus, the repositories and the restores (about 3x the corpus).
# By default it is a fresh tmpfs at /tmp/loop-bench (when run as root), so that the numbers
# measure the programs and not the history of the disk (ext4 slows inode allocation right
# after mass deletions, which skews restores by several seconds). Set WORK to a directory to
# measure on a disk instead. Phases: first backup, no-change backup, backup after modifying 1%
# of the files, full restore, check --read-data. Every tool sees the same tree at each phase.
# PHASES=backup stops after the three backups (for the many-small-files tree, whose restores
# would not fit a tmpfs next to three repositories).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${WORK:-}" ]; then
  WORK=/tmp/loop-bench
  mkdir -p "$WORK"
  if [ "$(id -u)" = 0 ] && ! mountpoint -q "$WORK"; then
    mount -t tmpfs -o size=12g tmpfs "$WORK"
  fi
fi
mkdir -p "$WORK"
corpus=${1:-}
if [ -z "$corpus" ]; then
  tarball=/usr/src/linux-source-6.1.tar.xz
  [ -f "$tarball" ] || { echo "install linux-source-6.1 or pass a corpus directory" >&2; exit 1; }
  cache=/var/tmp/loop-bench-corpus
  if [ ! -d "$cache/linux-source-6.1" ]; then
    mkdir -p "$cache" && tar -C "$cache" -xf "$tarball"
  fi
  corpus=$cache/linux-source-6.1
fi
for t in restic borg /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "missing $t (apt-get install restic borgbackup time)" >&2; exit 1; }
done

(cd "$here" && cargo build --release -p loop-cli >/dev/null 2>&1) || (cd "$here" && cargo build --release -p loop-cli)
LOOP=$here/target/release/loop

src=$WORK/src
rm -rf "$src" "$WORK"/repo-* "$WORK"/restore-* "$WORK"/times
mkdir -p "$WORK/times"
cp -a "$corpus" "$src"

export LOOP_PASSWORD=bench RESTIC_PASSWORD=bench BORG_PASSPHRASE=bench
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
export LOOP_REPOSITORY=$WORK/repo-loop RESTIC_REPOSITORY=$WORK/repo-restic
BORG_REPO=$WORK/repo-borg

# measure NAME PHASE COMMAND...: records "seconds maxrss_kib" in $WORK/times/NAME.PHASE
measure() {
  local name=$1 phase=$2; shift 2
  sync
  /usr/bin/time -f "%e %M" -o "$WORK/times/$name.$phase" "$@" >/dev/null 2>"$WORK/times/$name.$phase.log" || {
    echo "$name $phase failed:" >&2; tail -5 "$WORK/times/$name.$phase.log" >&2; exit 1; }
}

# best NAME PHASE RUNS PREP COMMAND...: runs PREP then measures COMMAND, RUNS times, and keeps
# the fastest run (the machine is shared; the minimum is the least disturbed number).
best() {
  local name=$1 phase=$2 runs=$3 prep=$4 i
  shift 4
  for i in $(seq 1 "$runs"); do
    eval "$prep"
    measure "$name" "$phase.$i" "$@"
  done
  keep_best "$name" "$phase" "$runs"
}
keep_best() {
  local name=$1 phase=$2 runs=$3 i
  for i in $(seq 1 "$runs"); do echo "$(cat "$WORK/times/$name.$phase.$i") $i"; done |
    sort -n | head -1 | cut -d' ' -f1-2 > "$WORK/times/$name.$phase"
}

# The `tar | zstd -1 -T2` limit is measured right before each of loop's first backups (run $i
# of `best`), so that both see the machine in the same state even when its speed drifts.
init_loop() {
  measure tar-zstd "first.$i" bash -c "tar -C '$src' -cf - . | zstd -1 -T2 -q -o '$WORK/baseline.tar.zst' -f"
  rm -rf "$LOOP_REPOSITORY"; "$LOOP" init >/dev/null
}
init_restic() { rm -rf "$RESTIC_REPOSITORY"; restic init >/dev/null 2>&1; }
init_borg() { rm -rf "$BORG_REPO"; borg init -e repokey-blake2 "$BORG_REPO" >/dev/null 2>&1; }
RUNS=${RUNS:-3}

# Warm the page cache so no tool pays for the first read from disk.
tar -C "$src" -cf - . | cat >/dev/null

backup_all() {
  local phase=$1 runs=$2 prep=$3
  best loop "$phase" "$runs" "${prep:+${prep}_loop}" "$LOOP" backup "$src" --host bench
  best restic "$phase" "$runs" "${prep:+${prep}_restic}" restic backup "$src" --host bench
  best borg "$phase" "$runs" "${prep:+${prep}_borg}" bash -c "borg create --compression zstd,3 '$BORG_REPO::$phase-{now:%H%M%S.%f}' '$src'"
}

backup_all first "$RUNS" init
keep_best tar-zstd first "$RUNS"
du -sb "$WORK/repo-loop" | cut -f1 > "$WORK/times/loop.size"
du -sb "$WORK/repo-restic" | cut -f1 > "$WORK/times/restic.size"
du -sb "$WORK/repo-borg" | cut -f1 > "$WORK/times/borg.size"
stat -c %s "$WORK/baseline.tar.zst" > "$WORK/times/tar-zstd.size"

backup_all nochange "$RUNS" ""

# Modify 1% of the files: append a line to every 100th regular file (sorted order).
find "$src" -type f | LC_ALL=C sort | awk 'NR % 100 == 0' | while read -r f; do
  printf '/* changed for the benchmark */\n' >> "$f"
done
backup_all changed 1 ""

PHASES=${PHASES:-all}
clean_restores() { rm -rf "$WORK"/restore-*; mkdir -p "$WORK/restore-borg"; }
if [ "$PHASES" = all ]; then
last_borg=$(borg list --short --last 1 "$BORG_REPO")
best loop restore "$RUNS" clean_restores "$LOOP" restore latest --target "$WORK/restore-loop"
best restic restore "$RUNS" clean_restores restic restore latest --target "$WORK/restore-restic"
best borg restore "$RUNS" clean_restores bash -c "cd '$WORK/restore-borg' && borg extract '$BORG_REPO::$last_borg'"
clean_restores

best loop check "$RUNS" : "$LOOP" check --read-data
best restic check "$RUNS" : restic check --read-data
best borg check "$RUNS" : borg check --verify-data "$BORG_REPO"
fi

val() { cut -d' ' -f"$2" "$WORK/times/$1" 2>/dev/null || echo "-"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

echo "each number is the fastest of $RUNS runs (changed: 1 run)"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r); corpus: $corpus ($(find "$src" -type f | wc -l) files)"
echo "versions: $("$LOOP" --version), $(restic version | cut -d' ' -f1-2), $(borg --version)"
echo
echo "| phase | loop s | restic s | borg s | loop/restic time | loop MiB | restic MiB | borg MiB | loop/restic RSS |"
echo "|---|---|---|---|---|---|---|---|---|"
phases="first nochange changed"
[ "$PHASES" = all ] && phases="$phases restore check"
for phase in $phases; do
  lt=$(val loop.$phase 1); rt=$(val restic.$phase 1); bt=$(val borg.$phase 1)
  lm=$(val loop.$phase 2); rm_=$(val restic.$phase 2); bm=$(val borg.$phase 2)
  printf '| %s | %s | %s | %s | %s | %d | %d | %d | %s |\n' "$phase" "$lt" "$rt" "$bt" "$(ratio "$lt" "$rt")" \
    $((lm / 1024)) $((rm_ / 1024)) $((bm / 1024)) "$(ratio "$lm" "$rm_")"
done
ls=$(cat "$WORK/times/loop.size"); rs=$(cat "$WORK/times/restic.size"); bs=$(cat "$WORK/times/borg.size")
echo
echo "| repository after first backup | loop | restic | borg | tar+zstd -1 | loop/restic |"
echo "|---|---|---|---|---|---|"
printf '| MiB | %d | %d | %d | %d | %s |\n' $((ls / 1048576)) $((rs / 1048576)) $((bs / 1048576)) \
  $(( $(cat "$WORK/times/tar-zstd.size") / 1048576 )) "$(ratio "$ls" "$rs")"
echo
tz=$(val tar-zstd.first 1)
echo "tar | zstd -1 -T2 of the same tree: $tz s; loop's first backup takes $(ratio "$(val loop.first 1)" "$tz")x that (goal on the Linux tree: at most 1.15)"
