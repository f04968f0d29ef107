# shellcheck shell=bash disable=SC2034 # (the variables are used by the scripts that source this file)
# Shared helpers for scripts/services/*.sh. Sourced, never run.
#
# Pinned versions and the cache layout live here so that install.sh and start.sh agree.

# Versions (see README.md before changing any of them).
S3S_FS_VERSION=0.14.1
RUSTBERG_VERSION=0.3.0
PYSPARK_SDIST_VERSION=4.3.0 # the 37 Hive Metastore 2.3.10 jars come from its sdist

BCN_SERVICES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BCN_SCRIPTS_DIR="$(cd "$BCN_SERVICES_DIR/.." && pwd)"

cache_root="${BCN_CACHE_DIR:-$HOME/.cache/bcn}"
svc_cache="$cache_root/services"
venv_dir="$cache_root/venv"          # owned by scripts/test-env.sh
cargo_root="$svc_cache/cargo-root"   # cargo install --root
hms_home="$svc_cache/hms"            # jars/ classes/ .stamp
log_dir="$svc_cache/logs"            # install logs
lock_dir="$svc_cache/locks"          # one flock file per install step

ALL_SERVICES=(moto s3s hms rest pg)

log() { printf '%s: %s\n' "${LOG_TAG:-services}" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

now() { date +%s.%N; }
# elapsed START -> "12.3"
elapsed() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f", e - s }'; }

# parse_only "moto,hms" -> fills the global array `selected` (validated, in canonical order).
parse_only() {
    local list="$1" s want
    selected=()
    [[ -n "$list" ]] || die "--only needs a comma-separated list of: ${ALL_SERVICES[*]}"
    IFS=',' read -r -a want <<<"$list"
    for s in "${want[@]}"; do
        [[ " ${ALL_SERVICES[*]} " == *" $s "* ]] || die "unknown service '$s' (known: ${ALL_SERVICES[*]})"
    done
    for s in "${ALL_SERVICES[@]}"; do
        [[ ",$list," == *",$s,"* ]] && selected+=("$s")
    done
    return 0
}

is_selected() {
    local s
    for s in "${selected[@]}"; do [[ "$s" == "$1" ]] && return 0; done
    return 1
}

# The binary a service needs, and whether it is the pinned version.
s3s_bin() { echo "$cargo_root/bin/s3s-fs"; }
rustberg_bin() { echo "$cargo_root/bin/rustberg"; }
bin_has_version() { # BIN "name x.y.z"
    [[ -x "$1" ]] && [[ "$("$1" --version 2>/dev/null | head -n1)" == "$2" ]]
}
hms_ready() { [[ -f "$hms_home/.stamp" ]] && [[ "$(cat "$hms_home/.stamp")" == "$(hms_stamp)" ]]; }
# What the HMS install depends on: the jar list, the java sources and the pyspark version.
hms_stamp() {
    {
        echo "pyspark $PYSPARK_SDIST_VERSION"
        cat "$BCN_SERVICES_DIR/hms/jars.txt" "$BCN_SERVICES_DIR"/hms/*.java
    } | sha256_stdin
}
sha256_stdin() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum | cut -d' ' -f1
    else
        shasum -a 256 | cut -d' ' -f1
    fi
}
hms_jar_names() { grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$BCN_SERVICES_DIR/hms/jars.txt"; }
venv_python() { echo "$venv_dir/bin/python"; }
# The PostgreSQL server binaries (the distribution's package), newest version first.
pg_bin() { find /usr/lib/postgresql -maxdepth 3 -path '*/bin/postgres' 2>/dev/null | sort -rV | head -n1 | xargs -r dirname; }
