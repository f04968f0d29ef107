#!/usr/bin/env bash
# Install (idempotently) everything the test services need, into the cache
# ${BCN_CACHE_DIR:-$HOME/.cache/bcn}:
#
#   venv/                         Python venv (scripts/test-env.sh): pyiceberg, moto[server], boto3, ...
#   services/hms/{jars,classes}/  Hive Metastore 2.3.10: 37 jars from the PyPI pyspark sdist + our launcher
#   services/cargo-root/bin/      s3s-fs and rustberg (cargo install --locked, pinned versions)
#   services/logs/                install logs (cargo builds, pip download)
#   services/locks/               one flock file per step
#
# Usage: install.sh [--only moto,s3s,hms,rest]     (default: all four)
#
#   moto -> the venv;  hms -> the venv + HMS jars/classes;  s3s -> s3s-fs;  rest -> rustberg.
#
# Every step is skipped when its result is already there, and takes a lock, so
# a slow build can run in the background while something else installs:
#
#   scripts/services/install.sh --only rest &        # rustberg: ~20 min cold
#   scripts/services/install.sh --only moto,hms,s3s  # meanwhile
#   ...
#   scripts/services/install.sh --only rest          # waits for the background build, then returns
#
# Step durations go to stderr. Nothing is printed on stdout.
# Env: BCN_CACHE_DIR, BCN_SERVICES_CARGO_JOBS (cargo -j for the service builds; default cargo's).
set -euo pipefail
LOG_TAG=install
# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; }

only="$(
    IFS=,
    echo "${ALL_SERVICES[*]}"
)"
while (($#)); do
    case "$1" in
    --only)
        (($# >= 2)) || die "--only needs a value"
        only="$2"
        shift 2
        ;;
    --only=*)
        only="${1#--only=}"
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) die "unknown argument: $1 (try --help)" ;;
    esac
done
parse_only "$only"

mkdir -p "$svc_cache" "$log_dir" "$lock_dir"

# locked NAME CMD...: run CMD holding $lock_dir/NAME.lock (waits for a concurrent holder).
locked() {
    local name="$1"
    shift
    if command -v flock >/dev/null 2>&1; then
        (
            exec 9>"$lock_dir/$name.lock"
            if ! flock -n 9; then
                log "$name: another install is running (lock $lock_dir/$name.lock); waiting for it"
                flock 9
            fi
            "$@"
        )
    else
        local d="$lock_dir/$name.lock.d" waited=0
        until mkdir "$d" 2>/dev/null; do
            ((waited % 60 == 0)) && log "$name: waiting for lock $d (remove it if stale)"
            sleep 1
            waited=$((waited + 1))
            ((waited < 3600)) || die "$name: timed out waiting for $d"
        done
        local rc=0
        ("$@") || rc=$?
        rmdir "$d"
        return "$rc"
    fi
}

# step NAME CMD...: run a step and report its duration.
step() {
    local name="$1" t0
    shift
    t0="$(now)"
    "$@"
    log "$name: done in $(elapsed "$t0") s"
}

python_path=""
install_venv() {
    # test-env.sh has its own lock and stamp; its last stdout line is the interpreter.
    python_path="$("$BCN_SCRIPTS_DIR/test-env.sh" | tail -n1)"
    [[ -x "$python_path" ]] || die "test-env.sh did not print a python path"
    "$python_path" -c 'import moto.server, pyiceberg.catalog.hive, pyiceberg.catalog.glue, boto3' \
        || die "venv at $venv_dir lacks moto[server] or pyiceberg's hive/glue extras"
}

install_hms() {
    if hms_ready; then
        log "hms: already installed at $hms_home"
        return 0
    fi
    command -v java >/dev/null 2>&1 || die "hms: java not found (Java 11+ JDK needed)"
    command -v javac >/dev/null 2>&1 || die "hms: javac not found (a JDK, not only a JRE, is needed)"
    local tmp="$svc_cache/hms.tmp" sdist name n
    rm -rf "$tmp"
    mkdir -p "$tmp/dl" "$tmp/jars" "$tmp/classes" "$tmp/src"
    log "hms: downloading the pyspark==$PYSPARK_SDIST_VERSION sdist (jars only are kept)"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$python_path" -m pip download --quiet --no-deps --no-cache-dir \
        -d "$tmp/dl" "pyspark==$PYSPARK_SDIST_VERSION" >"$log_dir/hms-pip.log" 2>&1 || {
        tail -n 30 "$log_dir/hms-pip.log" >&2
        die "hms: pip download pyspark==$PYSPARK_SDIST_VERSION failed (log $log_dir/hms-pip.log)"
    }
    sdist="$tmp/dl/pyspark-$PYSPARK_SDIST_VERSION.tar.gz"
    [[ -f "$sdist" ]] || die "hms: $sdist not found after pip download"
    local members=()
    while IFS= read -r name; do
        members+=("pyspark-$PYSPARK_SDIST_VERSION/deps/jars/$name")
    done < <(hms_jar_names)
    tar -xzf "$sdist" -C "$tmp/jars" --strip-components=3 "${members[@]}" \
        || die "hms: a jar listed in hms/jars.txt is missing from the pyspark sdist"
    n="$(find "$tmp/jars" -name '*.jar' | wc -l)"
    ((n == ${#members[@]})) || die "hms: extracted $n jars, expected ${#members[@]}"
    rm -rf "$tmp/dl"
    cp "$BCN_SERVICES_DIR"/hms/*.java "$tmp/src/"
    javac -nowarn -encoding UTF-8 -cp "$tmp/jars/*" -d "$tmp/classes" "$tmp"/src/*.java
    hms_stamp >"$tmp/.stamp"
    rm -rf "$hms_home"
    mv "$tmp" "$hms_home"
    log "hms: $n jars + launcher in $hms_home ($(du -sh "$hms_home" | cut -f1))"
}

# install_crate NAME CRATE VERSION BIN CARGO-ARGS...
install_crate() {
    local name="$1" crate="$2" version="$3" bin="$4"
    shift 4
    if bin_has_version "$bin" "$crate $version"; then
        log "$name: $crate $version already installed at $bin"
        return 0
    fi
    command -v cargo >/dev/null 2>&1 || die "$name: cargo not found"
    local logf="$log_dir/$name-cargo-install.log" jobs=()
    [[ -n "${BCN_SERVICES_CARGO_JOBS:-}" ]] && jobs=(-j "$BCN_SERVICES_CARGO_JOBS")
    log "$name: cargo install $crate@$version (log $logf; a partial build resumes from $svc_cache/cargo-target/$name)"
    # Own target dir: never share (and lock) the project's CARGO_TARGET_DIR, and an
    # interrupted build resumes where it stopped.
    # --debug with no debuginfo: a test service needs no optimiser, and rustberg's release
    # profile (lto = true, codegen-units = 1) made its cold build the long pole of a CI run
    # (85 min on a shared 2-core machine). The dev profile builds it several times faster.
    if ! CARGO_TARGET_DIR="$svc_cache/cargo-target/$name" CARGO_PROFILE_DEV_DEBUG=0 \
        CARGO_PROFILE_DEV_INCREMENTAL=false \
        cargo install "$crate@$version" --debug --locked "${jobs[@]}" "$@" --root "$cargo_root" >"$logf" 2>&1; then
        tail -n 40 "$logf" >&2
        die "$name: cargo install $crate@$version failed (log $logf)"
    fi
    bin_has_version "$bin" "$crate $version" || die "$name: $bin does not report '$crate $version'"
    rm -rf "$svc_cache/cargo-target/$name"
    rmdir "$svc_cache/cargo-target" 2>/dev/null || true
}

install_pg() {
    if [[ -n "$(pg_bin)" ]]; then
        log "pg: PostgreSQL server found in $(pg_bin)"
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 || die "pg: no PostgreSQL server and no apt-get to install one (install the postgresql package)"
    [[ "$(id -u)" == 0 ]] || die "pg: no PostgreSQL server; install the postgresql package (as root: apt-get install postgresql)"
    log "pg: installing the distribution's postgresql package"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >"$log_dir/pg-apt.log" 2>&1 || {
        apt-get update -q >>"$log_dir/pg-apt.log" 2>&1 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >>"$log_dir/pg-apt.log" 2>&1
    } || {
        tail -n 30 "$log_dir/pg-apt.log" >&2
        die "pg: apt-get install postgresql failed (log $log_dir/pg-apt.log)"
    }
    [[ -n "$(pg_bin)" ]] || die "pg: postgresql installed but no server binary under /usr/lib/postgresql"
}

t_all="$(now)"
if is_selected moto || is_selected hms; then
    step venv locked venv install_venv
    # The subshell of `locked` cannot set python_path for later steps.
    python_path="$(venv_python)"
fi
if is_selected hms; then
    step hms locked hms install_hms
fi
if is_selected s3s; then
    step s3s locked s3s install_crate s3s s3s-fs "$S3S_FS_VERSION" "$(s3s_bin)" --features binary
fi
if is_selected pg; then
    step pg locked pg install_pg
fi
if is_selected rest; then
    step rest locked rest install_crate rest rustberg "$RUSTBERG_VERSION" "$(rustberg_bin)" \
        --no-default-features --features cli,storage-s3
fi
log "all selected (${selected[*]}) installed in $(elapsed "$t_all") s"
