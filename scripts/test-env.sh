#!/usr/bin/env bash
# Create (idempotently) the Python venv used by the integration tests as an
# independent Iceberg client, and print the path of its interpreter.
#
#   venv:   ${BCN_CACHE_DIR:-$HOME/.cache/bcn}/venv
#   stamp:  <venv>/.bcn-requirements.sha256  (sha256 of tests/py/requirements.txt)
#
# When the stamp matches, nothing is installed and the script returns at once.
# A changed requirements.txt rebuilds the venv from scratch.
#
# Stdout: ONLY the venv's python path, as the last (and only) line.
# Stderr: progress and errors.
#
# Env: BCN_CACHE_DIR  cache root (default ~/.cache/bcn)
#      BCN_PYTHON     base interpreter to build the venv from (default python3, >= 3.10)
set -euo pipefail

log() { printf 'test-env: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
req="$script_dir/../tests/py/requirements.txt"
[[ -f "$req" ]] || die "requirements file not found: $req"

cache_dir="${BCN_CACHE_DIR:-$HOME/.cache/bcn}"
venv="$cache_dir/venv"
stamp="$venv/.bcn-requirements.sha256"
base_python="${BCN_PYTHON:-python3}"

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | cut -d' ' -f1
    else
        "$base_python" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1"
    fi
}

want="$(sha256_of "$req")"

venv_ok() {
    [[ -f "$stamp" ]] && [[ "$(cat "$stamp")" == "$want" ]] \
        && [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c '' 2>/dev/null
}

# Fast path: stamp matches and the interpreter still runs.
if venv_ok; then
    echo "$venv/bin/python"
    exit 0
fi

mkdir -p "$cache_dir"

# Serialise concurrent callers (parallel test processes). flock where available,
# otherwise a mkdir lock.
lock="$cache_dir/venv.lock"
if command -v flock >/dev/null 2>&1; then
    exec 9>"$lock"
    flock 9
else
    waited=0
    until mkdir "$lock.d" 2>/dev/null; do
        sleep 1
        waited=$((waited + 1))
        ((waited < 900)) || die "timed out waiting for $lock.d (remove it if stale)"
    done
    trap 'rmdir "$lock.d" 2>/dev/null || true' EXIT
fi

# Another process may have finished the install while we waited.
if venv_ok; then
    echo "$venv/bin/python"
    exit 0
fi

command -v "$base_python" >/dev/null 2>&1 || die "$base_python not found (set BCN_PYTHON)"
"$base_python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
    || die "$base_python is $("$base_python" -V 2>&1); Python >= 3.10 is required (set BCN_PYTHON)"

start=$(date +%s)
log "building venv at $venv (requirements sha256 $want)"
rm -rf "$venv"

if ! "$base_python" -m venv "$venv" >&2; then
    # Some distributions ship python3 without the venv/ensurepip module: fall back to
    # virtualenv, installed with pip into a private directory of the cache.
    log "$base_python -m venv failed; falling back to virtualenv"
    rm -rf "$venv"
    ve_dir="$cache_dir/virtualenv-pkg"
    export PIP_ROOT_USER_ACTION=ignore # no "running pip as root" warning in CI logs
    if [[ ! -d "$ve_dir/virtualenv" ]]; then
        "$base_python" -m pip install --quiet --disable-pip-version-check \
            --target "$ve_dir" virtualenv >&2 \
            || die "cannot install virtualenv with $base_python -m pip"
    fi
    PYTHONPATH="$ve_dir" "$base_python" -m virtualenv --quiet "$venv" >&2 \
        || die "virtualenv failed to create $venv"
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_ROOT_USER_ACTION=ignore
"$venv/bin/python" -m pip install --quiet --requirement "$req" >&2 \
    || die "pip install -r $req failed (venv left without stamp; rerun to retry)"

# Smoke check: the modules the fixture script imports.
"$venv/bin/python" -c 'import pyiceberg, pyarrow, sqlalchemy, boto3' >&2 \
    || die "installed venv cannot import pyiceberg/pyarrow/sqlalchemy/boto3"

printf '%s\n' "$want" >"$stamp.tmp"
mv "$stamp.tmp" "$stamp"
log "venv ready in $(($(date +%s) - start)) s"
echo "$venv/bin/python"
