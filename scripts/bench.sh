#!/usr/bin/env bash
# bcn against the tools a user would otherwise reach for, on the same bytes, interleaved, with
# medians: one Markdown table of wall times, ratios and peak RSS (GNU time), the table the
# README shows. Targets live here and in the README, never in timed tests.
#
#   scripts/bench.sh [RUNS]                       (default 3)
#
# Environment (defaults are the issue's scale; smaller values make a quick run):
#   BENCH_FILES=1000 BENCH_FILE_MIB=1   the large table: ~1 GiB in ~1,000 Parquet files
#   BENCH_TABLES=1000                   a catalog of small tables (no-change backup)
#   BENCH_SMALL_FILES=100000            one table of that many small files
#   BENCH_HUGE_FILES=1000000            one table of that many hard-linked one-row files, run
#                                       once (memory at a million files); 0 leaves it out
#   BENCH_SERVICES=DIR                  a running scripts/services/start.sh DIR: adds S3 rows
#                                       (server-side copies on moto, streaming to s3s-fs)
#   BENCH_S3_FILES=2000                 small files copied server-side on moto
#
# Fixtures are written once by pyiceberg into $BCN_CACHE_DIR/bench (slow to make, kept); the
# last run's raw times stay in $BCN_CACHE_DIR/bench/last-run (a file per row, and one per
# warm-up run: seconds, KiB).
# Peers: `cp -r`, `cp -r` then `sync` (the durable-copy limit bcn is held to: bcn also makes
# everything durable before its commit point), `cp -r` + `sha256sum`, and `rclone copy
# --checksum` when installed. Uses a release build in the cache.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs=${1:-3}
files=${BENCH_FILES:-1000}; file_mib=${BENCH_FILE_MIB:-1}
tables=${BENCH_TABLES:-1000}; small_files=${BENCH_SMALL_FILES:-100000}
export BCN_CACHE_DIR="${BCN_CACHE_DIR:-$HOME/.cache/bcn}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BCN_CACHE_DIR/target}"
cargo build --release --locked --manifest-path "$root/Cargo.toml" >&2
bcn="$CARGO_TARGET_DIR/release/bcn"
python="$(bash "$root/scripts/test-env.sh")"
fixtures=("$python" "$root/tests/py/bcn_fixtures.py")
work="$(mktemp -d "${TMPDIR:-/tmp}/bcn-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT
results="$work/results"; mkdir -p "$results"

# --- fixtures -------------------------------------------------------------------------------
fixture() { # NAME MAKE-ARGS...: a SQLite catalog + warehouse made once by pyiceberg
  local name=$1; shift
  local dir="$BCN_CACHE_DIR/bench/$name"
  if [[ ! -f $dir/ready ]]; then
    echo "making fixture $name (once)..." >&2
    rm -rf "$dir"; mkdir -p "$dir/warehouse"
    "${fixtures[@]}" "$@" --catalog-name lake --prop "uri=sqlite:///$dir/catalog.db" \
      --prop "warehouse=file://$dir/warehouse" >&2
    touch "$dir/ready"
  fi
  echo "$dir"
}
per_snapshot=$(( files < 100 ? files : 100 ))
big=$(fixture "big-$files-$file_mib" make-bench --table bench.data \
  --snapshots $(( files / per_snapshot )) --files-per-snapshot "$per_snapshot" --file-mib "$file_mib")
many=$(fixture "tables-$tables" make-many-tables --namespace many --tables "$tables")
small_per=$(( small_files < 1000 ? small_files : 1000 ))
small=$(fixture "small-$small_files" make-bench --table bench.small \
  --snapshots $(( small_files / small_per )) --files-per-snapshot "$small_per" --file-mib 0.001)

plan() { # DIR: a plan with the fixture as catalog `lake` and a scratch target catalog
  cat >"$work/plan-$(basename "$1").yaml" <<PLAN
catalogs:
  lake: { type: sql, uri: "sqlite://$1/catalog.db", warehouse: "file://$1/warehouse" }
  scratch: { type: sql, uri: "sqlite://$work/scratch/catalog.db", warehouse: "file://$work/scratch/warehouse" }
PLAN
  echo "$work/plan-$(basename "$1").yaml"
}

# --- measuring ------------------------------------------------------------------------------
measure() { # KEY CMD...: one timed run, appended to results/KEY as "seconds KiB"
  local key=$1; shift
  sync
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  cat "$work/time" >>"$results/$key"
}
# The median of numbers on stdin, then their range in brackets when there are several.
spread() { sort -g | awk -v f="$1" '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit }
  printf f, v[int((NR + 1) / 2)]; if (NR > 1) printf " (" f "–" f ")", v[1], v[NR] }'; }
median() { cut -d' ' -f1 "$results/$1" | spread %.2f | cut -d' ' -f1; }
peak() { cut -d' ' -f2 "$results/$1" | sort -n | tail -n1 | awk '{ printf "%d", $1 / 1024 }'; }
fresh() { rm -rf "$work/out" "$work/scratch"; }
settle() { rm -rf "$work/aside"; sync; sleep 35; } # deletes what was set aside, waits
# Compared commands run once as a warm-up right before their measured run (timed apart, not
# in the table), into outputs then set aside (as `hyperfine --warmup` does). Without it, the
# first command of a pair was the slower, bcn or its peer (session 24: a pair's ratio differed up to 2× between the two
# orders for the large files, 6× for the small ones). By hand, bcn's large-file backup first
# after the pause took 1.58 and 1.29 s, right after that 1.00 and 0.97 s; after an unmeasured
# copy of ~100 MiB first, 1.27 and 1.11 s; of the whole 1 GiB, 1.04 and 1.03 s; after three
# seconds of busy CPU, 1.50 and 2.14 s. What the first writer of a gigabyte pays for comes
# with writing (here, a virtual machine), not with an idle CPU.
warmed() { # KEY [PATH...] -- CMD...: CMD once as KEY.warmup (kept out of the table), then as
  local key=$1 also=(); shift # KEY; out, scratch and each PATH set aside before each run
  while [[ $1 != -- ]]; do also+=("$1"); shift; done; shift
  aside "${also[@]}"; measure "$key.warmup" "$@"
  aside "${also[@]}"; measure "$key" "$@"
}
# Outputs are set aside instead of deleted, and deleted together between runs, followed by a
# pause: ext4 allocating an inode looks at the inodes deleted in the last 30 s beside it
# (`recently_deleted`, in `perf`), so a copy right after another's output was deleted measures
# that deletion too, and more for parallel writers than for `cp`. A restore in an emergency
# writes into space that was not just emptied. What is set aside also leaves the page cache
# (written back, then POSIX_FADV_DONTNEED): on a virtual machine, page cache that grows into
# memory the guest has not used lately costs a fault in the host per page, and the same
# `cp -r && sync` of 1 GiB went from 1.0 s to 3.5 s (system CPU 0.6 to 3.0 s) over six runs
# whose outputs stayed cached. Every command then starts with as much free memory as the last.
aside() { local path moved=(); for path in "$work/out" "$work/scratch" "$@"; do
  if [[ -e $path ]]; then
    mkdir -p "$work/aside"; moved+=("$(mktemp -d "$work/aside/XXXXXX")")
    mv "$path" "${moved[-1]}/"
  fi
done
(( ${#moved[@]} )) || return 0
sync; "$python" - "${moved[@]}" <<'PY'
import os, sys
for top in sys.argv[1:]:
    for folder, _, names in os.walk(top):
        for name in names:
            if os.path.islink(path := os.path.join(folder, name)):
                continue
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
PY
}
# Commands (GNU time runs programs, not shell functions): each takes SOURCE TARGET.
cp_sync=(bash -c 'cp -r "$1" "$2" && sync' _)
cp_sha=(bash -c 'cp -r "$1" "$2" && find "$2" -type f -print0 | xargs -0 sha256sum >/dev/null' _)
has_rclone=$(command -v rclone >/dev/null && echo yes || echo no)

big_plan=$(plan "$big"); many_plan=$(plan "$many"); small_plan=$(plan "$small")
# Each takes --config PLAN --repo REPO.
backup=("$bcn" -q backup --catalog lake)
restore=("$bcn" -q restore --target-catalog scratch --target-location "$work/out")
enc=(env "BCN_REPOSITORY_KEY=bench passphrase, not a secret")

# The 1,000-table catalog's first backup and its restore, once each, at the default `--jobs`
# and at 64 (peak RSS must stay flat as --jobs grows); the runs measure backups that find no
# change.
measure many.backup "${backup[@]}" --config "$many_plan" --repo "$work/repo-many"
measure many.backup_wide "${backup[@]}" --config "$many_plan" --repo "$work/repo-many-wide" --jobs 64
rm -rf "$work/repo-many-wide"
aside; measure many.restore "${restore[@]}" --config "$many_plan" --repo "$work/repo-many"
aside; measure many.restore_wide "${restore[@]}" --config "$many_plan" --repo "$work/repo-many" --jobs 64
aside; settle

# bcn and its peer change places from one run to the next (the peers first in odd runs, bcn
# first in even ones), so that neither is always the one measured later in a run, when the
# machine has done more.
big_peers() { # ~1 GiB in ~1,000 files
  warmed big.cp -- cp -r "$big/warehouse" "$work/out"
  warmed big.cp_sync -- "${cp_sync[@]}" "$big/warehouse" "$work/out"
  warmed big.cp_sha -- "${cp_sha[@]}" "$big/warehouse" "$work/out"
  if [[ $has_rclone == yes ]]; then
    warmed big.rclone -- rclone copy --checksum --transfers 8 "$big/warehouse" "$work/out"
  fi
}
big_restore_peer() { warmed big.restore_peer -- "${cp_sync[@]}" "$work/repo-big/tables" "$work/out"; }
small_peer() { warmed small.cp_sync -- "${cp_sync[@]}" "$small/warehouse" "$work/out"; }
small_bcn() {
  warmed small.backup "$work/repo-small" -- "${backup[@]}" --config "$small_plan" --repo "$work/repo-small"
  warmed small.restore -- "${restore[@]}" --config "$small_plan" --repo "$work/repo-small"
}

echo "measuring $runs interleaved runs..." >&2
for run in $(seq "$runs"); do
  echo "run $run" >&2
  (( run % 2 )) && big_peers
  warmed big.backup "$work/repo-big" -- "${backup[@]}" --config "$big_plan" --repo "$work/repo-big"
  (( run % 2 )) || big_restore_peer
  warmed big.restore -- "${restore[@]}" --config "$big_plan" --repo "$work/repo-big"
  (( run % 2 )) && big_restore_peer
  (( run % 2 )) || big_peers
  stored=$(find "$work/repo-big/tables" -path '*/files/*' -type f | wc -l)
  measure big.sha256sum bash -c "find '$work/repo-big/tables' -path '*/files/*' -type f -print0 | xargs -0 -P $(nproc) -n $(( stored / $(nproc) + 1 )) sha256sum"
  measure big.verify "$bcn" -q verify --repo "$work/repo-big" --read-data
  warmed big.backup_enc "$work/repo-enc" -- "${enc[@]}" "${backup[@]}" --config "$big_plan" --repo "$work/repo-enc"
  warmed big.restore_enc -- "${enc[@]}" "${restore[@]}" --config "$big_plan" --repo "$work/repo-enc"
  aside "$work/repo-enc"
  # Many small tables, nothing changed.
  measure many.nochange "${backup[@]}" --config "$many_plan" --repo "$work/repo-many"
  # One table of many small files.
  if (( run % 2 )); then small_peer; small_bcn; else small_bcn; small_peer; fi
  measure small.nochange "${backup[@]}" --config "$small_plan" --repo "$work/repo-small"
  aside; settle
done
# Incremental after one appended file, on the table of many small files: restored into the
# scratch catalog (the fixture stays as it is), backed up once, then one file appended and
# backed up per run.
fresh
"$bcn" -q restore --config "$small_plan" --repo "$work/repo-small" --target-catalog scratch --target-location "$work/out" >/dev/null
scratch_backup=("$bcn" -q backup --catalog scratch --config "$small_plan" --repo "$work/repo-inc")
"${scratch_backup[@]}" >/dev/null
for run in $(seq "$runs"); do
  "${fixtures[@]}" mutate --table bench.small --op append --catalog-name scratch \
    --prop "uri=sqlite:///$work/scratch/catalog.db" --prop "warehouse=file://$work/scratch/warehouse" >/dev/null
  measure small.incremental "${scratch_backup[@]}"
done
fresh

# S3 (optional): server-side copies on moto (warehouse and repository on one service), and
# streaming into s3s-fs.
s3_rows=""
if [[ -n ${BENCH_SERVICES:-} ]]; then
  set -a; source "$BENCH_SERVICES/services.env"; set +a
  bucket="bench-$RANDOM$RANDOM"
  "$python" - "$bucket" <<'PY'
import os, sys, boto3
for prefix in ("BCN_TEST_MOTO", "BCN_TEST_S3S"):
    s3 = boto3.client("s3", endpoint_url=os.environ[prefix + "_ENDPOINT"], region_name=os.environ[prefix + "_REGION"],
                      aws_access_key_id=os.environ[prefix + "_ACCESS_KEY"], aws_secret_access_key=os.environ[prefix + "_SECRET_KEY"])
    s3.create_bucket(Bucket=sys.argv[1])
PY
  s3plan="$work/plan-s3.yaml"
  moto_s3="{ endpoint: \"$BCN_TEST_MOTO_ENDPOINT\", region: $BCN_TEST_MOTO_REGION, path_style: true, access_key_id: $BCN_TEST_MOTO_ACCESS_KEY, secret_access_key: $BCN_TEST_MOTO_SECRET_KEY }"
  cat >"$s3plan" <<PLAN
catalogs:
  lake: { type: sql, uri: "sqlite://$big/catalog.db", warehouse: "file://$big/warehouse" }
  onmoto:
    type: sql
    uri: "sqlite://$work/onmoto.db"
    warehouse: "s3://$bucket/warehouse"
    s3: $moto_s3
repositories:
  moto: { location: "s3://$bucket/repo", s3: $moto_s3 }
  s3s:
    location: "s3://$bucket/repo"
    s3: { endpoint: "$BCN_TEST_S3S_ENDPOINT", region: $BCN_TEST_S3S_REGION, path_style: true, access_key_id: $BCN_TEST_S3S_ACCESS_KEY, secret_access_key: $BCN_TEST_S3S_SECRET_KEY }
PLAN
  # Streaming: the large table into s3s-fs.
  measure s3.stream "${backup[@]}" --config "$s3plan" --repo s3s
  # Server-side: a table of small files restored onto moto, then backed up into moto.
  s3_files=${BENCH_S3_FILES:-2000}
  s3small=$(fixture "small-$s3_files" make-bench --table bench.small \
    --snapshots $(( s3_files < 1000 ? 1 : s3_files / 1000 )) --files-per-snapshot $(( s3_files < 1000 ? s3_files : 1000 )) --file-mib 0.001)
  "${backup[@]}" --config "$(plan "$s3small")" --repo "$work/repo-small2" >/dev/null
  "$bcn" -q restore --config "$s3plan" --repo "$work/repo-small2" --target-catalog onmoto >/dev/null
  measure s3.server_side "$bcn" -q backup --config "$s3plan" --catalog onmoto --repo moto
  s3_mib=$(du -sm "$big/warehouse" | cut -f1)
  s3_rows="| streamed into s3s-fs (${s3_mib} MiB) | $(median s3.stream) s | $(awk -v m="$s3_mib" -v s="$(median s3.stream)" 'BEGIN { printf "%.0f MiB/s", m / s }') | | | $(peak s3.stream) MiB |
| server-side copies on moto ($s3_files small files) | $(median s3.server_side) s | $(awk -v n="$s3_files" -v s="$(median s3.server_side)" 'BEGIN { printf "%.0f objects/s", n / s }') | | | $(peak s3.server_side) MiB |"
fi

# A million files, once each (the memory goals; a run takes minutes): backup, restore, verify
# of the structure and of every byte, gc (of a repository with nothing to delete: its walk).
# Last, as deleting them slows what is written next.
huge_files=${BENCH_HUGE_FILES:-1000000}
if (( huge_files > 0 )); then
  huge_per=$(( huge_files < 10000 ? huge_files : 10000 ))
  huge_files=$(( huge_files / huge_per * huge_per ))
  huge=$(fixture "linked-$huge_files" make-linked --table bench.huge \
    --snapshots $(( huge_files / huge_per )) --files-per-snapshot "$huge_per")
  huge_plan=$(plan "$huge")
  echo "measuring the table of $huge_files files once..." >&2
  aside; rm -rf "$work/repo-huge"
  measure huge.backup "${backup[@]}" --config "$huge_plan" --repo "$work/repo-huge"
  measure huge.restore "${restore[@]}" --config "$huge_plan" --repo "$work/repo-huge"
  measure huge.verify "$bcn" -q verify --repo "$work/repo-huge"
  measure huge.verify_data "$bcn" -q verify --repo "$work/repo-huge" --read-data
  measure huge.gc "$bcn" -q gc --repo "$work/repo-huge" --yes
  rm -rf "$work/repo-huge"; fresh
fi

# --- the table ------------------------------------------------------------------------------
rm -rf "$BCN_CACHE_DIR/bench/last-run"; cp -r "$results" "$BCN_CACHE_DIR/bench/last-run"
# Paired: each run's bcn time over the same run's peer time (runs are interleaved, so a pair
# shares the hour's speed), then the median of those ratios and their range. This machine's
# speed drifts 2–3× within minutes; a ratio of two medians mixes different minutes.
ratio() { paste -d' ' <(cut -d' ' -f1 "$results/$1") <(cut -d' ' -f1 "$results/$2") \
  | awk '$2 > 0 { print $1 / $2 }' | spread %.2f; }
big_mib=$(du -sm "$big/warehouse" | cut -f1); big_n=$(find "$big/warehouse" -type f | wc -l)
small_n=$(find "$small/warehouse" -type f | wc -l)
row() { # LABEL KEY PEER_LABEL PEER_KEY
  local peer_time="" r=""
  if [[ -n ${4:-} ]]; then
    peer_time="$(cut -d' ' -f1 "$results/$4" | spread %.2f) s"
    r=$(ratio "$2" "$4"); r="**${r%% *}**${r#"${r%% *}"}"
  fi
  printf '| %s | %s s | %s | %s | %s | %s MiB |\n' "$1" "$(cut -d' ' -f1 "$results/$2" | spread %.2f)" \
    "${3:-}" "$peer_time" "$r" "$(peak "$2")"
}
echo
echo "| bcn ($runs runs: median (range)) | bcn | peer | peer | bcn / peer, run by run | bcn peak RSS |"
echo "|---|---:|---|---:|---:|---:|"
row "backup, $big_mib MiB in $big_n files" big.backup "\`cp -r && sync\`" big.cp_sync
row "restore of it (paths rewritten)" big.restore "\`cp -r && sync\` of the stored files" big.restore_peer
row "backup into an encrypted repository" big.backup_enc "plain backup" big.backup
row "restore from the encrypted repository" big.restore_enc "plain restore" big.restore
row "\`verify --read-data\`" big.verify "\`sha256sum\` on $(nproc) cores" big.sha256sum
row "first backup of $tables tables (once)" many.backup
row "the same at \`--jobs 64\`" many.backup_wide "default \`--jobs\` (4)" many.backup
row "restore of them (once)" many.restore
row "the same at \`--jobs 64\`" many.restore_wide "default \`--jobs\` (2)" many.restore
row "no-change backup of $tables tables" many.nochange
row "backup, one table of $small_n small files" small.backup "\`cp -r && sync\`" small.cp_sync
row "restore of it" small.restore "\`cp -r && sync\`" small.cp_sync
row "no-change backup of it" small.nochange
row "incremental backup of it after one appended file" small.incremental
if (( huge_files > 0 )); then
  row "backup, one table of $huge_files files (once)" huge.backup
  row "restore of it" huge.restore
  row "\`verify\` of it" huge.verify
  row "\`verify --read-data\`" huge.verify_data
  row "\`gc --yes\` (nothing to delete)" huge.gc
fi
[[ -n $s3_rows ]] && echo "$s3_rows"
echo
by_run() { paste -d' ' <(cut -d' ' -f1 "$results/$1") <(cut -d' ' -f1 "$results/$2") \
  | awk '$2 > 0 { printf "%s%.2f", (NR > 1 ? " " : ""), $1 / $2 }'; }
echo "Ratios run by run (the peers first in odd runs, bcn first in even ones): large files, backup $(by_run big.backup big.cp_sync), restore $(by_run big.restore big.restore_peer); small files, backup $(by_run small.backup small.cp_sync), restore $(by_run small.restore small.cp_sync)."
echo
echo "Peers on the $big_mib MiB table: \`cp -r\` $(median big.cp) s, \`cp -r && sync\` $(median big.cp_sync) s, \`cp -r\` + \`sha256sum\` $(median big.cp_sha) s$([[ $has_rclone == yes ]] && echo ", \`rclone copy --checksum\` $(median big.rclone) s"). Machine: $(nproc) cores, $(uname -sr)."
