#!/usr/bin/env bash
# Reproducible benchmark of bcn's main paths on the embedded default (SQLite catalog, local
# warehouse, local repository). Prints a Markdown table; the README keeps the latest results.
#
#   scripts/bench.sh [SNAPSHOTS] [FILES_PER_SNAPSHOT] [FILE_MIB]     (default 10 10 1: 100 MiB)
#
# Measures wall time and peak RSS (GNU time) of: a first backup, a no-change backup, an
# incremental backup after one append, a restore to another location (every manifest,
# manifest list and metadata file rewritten), a first backup into and a restore from an
# encrypted repository, and `verify --read-data` against sha256sum over the same stored
# files. Uses a release build in the cache.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
snapshots=${1:-10}; per_snapshot=${2:-10}; file_mib=${3:-1}
export BCN_CACHE_DIR="${BCN_CACHE_DIR:-$HOME/.cache/bcn}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BCN_CACHE_DIR/target}"
cargo build --release --locked --manifest-path "$root/Cargo.toml" >&2
bcn="$CARGO_TARGET_DIR/release/bcn"
python="$(bash "$root/scripts/test-env.sh")"
work="$(mktemp -d "${TMPDIR:-/tmp}/bcn-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lake/warehouse"
fixtures=("$python" "$root/tests/py/bcn_fixtures.py")
cat_args=(--catalog-name lake --prop "uri=sqlite:///$work/lake/catalog.db" --prop "warehouse=file://$work/lake/warehouse")
echo "creating $((snapshots * per_snapshot)) files of ${file_mib} MiB in $snapshots snapshots..." >&2
"${fixtures[@]}" make-bench "${cat_args[@]}" --table bench.data --snapshots "$snapshots" \
  --files-per-snapshot "$per_snapshot" --file-mib "$file_mib" >&2
cat >"$work/plan.yaml" <<PLAN
catalogs:
  lake: { type: sql, uri: "sqlite://$work/lake/catalog.db", warehouse: "file://$work/lake/warehouse" }
  scratch: { type: sql, uri: "sqlite://$work/scratch/catalog.db", warehouse: "file://$work/scratch/warehouse" }
PLAN
data_mib=$(du -sm "$work/lake/warehouse" | cut -f1)

measure() { # NAME RATE CMD...: runs CMD under GNU time, prints a table row (RATE=yes: MiB/s)
  local name=$1 with_rate=$2; shift 2
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  read -r secs kib <"$work/time"
  local rate=-
  [[ $with_rate == yes ]] && rate=$(awk -v m="$data_mib" -v s="$secs" 'BEGIN { if (s > 0) printf "%.0f MiB/s", m / s; else print "-" }')
  printf '| %s | %s s | %s | %s MiB |\n' "$name" "$secs" "$rate" "$((kib / 1024))"
}

echo "| step (${data_mib} MiB, $((snapshots * per_snapshot)) data files, $snapshots snapshots) | wall | throughput | peak RSS |"
echo "|---|---:|---:|---:|"
backup=("$bcn" -q backup --config "$work/plan.yaml" --catalog lake --repo "$work/repo")
measure "first backup (copy + SHA-256 of every file)" yes "${backup[@]}"
plain_backup=$(cut -d' ' -f1 "$work/time")
# The same into an encrypted repository (XChaCha20-Poly1305 of every byte, sealed names).
key=(env "BCN_REPOSITORY_KEY=bench passphrase, not a secret")
measure "first backup into an encrypted repository" yes "${key[@]}" "$bcn" -q backup \
  --config "$work/plan.yaml" --catalog lake --repo "$work/repo-enc"
encrypted_backup=$(cut -d' ' -f1 "$work/time")
# Into a catalog of its own, so that the steps below back up the same lake.
measure "restore from the encrypted repository" yes "${key[@]}" "$bcn" -q restore --config "$work/plan.yaml" \
  --repo "$work/repo-enc" --target-catalog scratch --target-location "$work/restored-enc"
rm -rf "$work/restored-enc" "$work/repo-enc" "$work/scratch"
measure "no-change backup (catalog entries only)" no "${backup[@]}"
"${fixtures[@]}" make-bench "${cat_args[@]}" --table bench.small --snapshots 1 --files-per-snapshot 1 --file-mib 0.1 >/dev/null
"${fixtures[@]}" mutate "${cat_args[@]}" --table bench.data --op append >/dev/null
measure "incremental backup after one append" no "${backup[@]}"
measure "restore to another location (paths rewritten)" yes "$bcn" -q restore --config "$work/plan.yaml" \
  --repo "$work/repo" --target-catalog lake --target-database restored --target-location "$work/restored"
# Verification reads every stored file once and checks its SHA-256: its peer is sha256sum over
# the same files, run in parallel on every core (the fastest sha256sum can be).
stored_mib=$(find "$work/repo/tables" -path '*/files/*' -type f -print0 | du -cm --files0-from=- | tail -n1 | cut -f1)
data_mib=$stored_mib
measure "sha256sum of every stored file (peer, $(nproc) processes)" yes \
  bash -c "find '$work/repo/tables' -path '*/files/*' -type f -print0 | xargs -0 -P $(nproc) -n 8 sha256sum"
peer=$(cut -d' ' -f1 "$work/time")
measure "verify --read-data (structure + SHA-256 of every stored file)" yes \
  "$bcn" -q verify --repo "$work/repo" --read-data
ours=$(cut -d' ' -f1 "$work/time")
echo >&2 "verify --read-data / sha256sum throughput: $(awk -v a="$peer" -v b="$ours" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')"
echo >&2 "encrypted / plain first backup time: $(awk -v a="$encrypted_backup" -v b="$plain_backup" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')"
echo >&2 "machine: $(nproc) cores; $(uname -sr)"
