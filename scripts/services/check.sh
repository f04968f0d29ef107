#!/usr/bin/env bash
# Smoke-test the services that start.sh started in RUN_DIR: sources RUN_DIR/services.env
# and runs check_services.py with the cached venv's python (pyiceberg + boto3).
#
# Usage: check.sh RUN_DIR [--only moto,s3s,hms,rest]   (default: every service in services.env)
#
# Exit status 0 when every check passed. See check_services.py for what is checked.
# Env: BCN_CACHE_DIR (where the venv is; install.sh --only moto creates it).
set -euo pipefail
LOG_TAG=check
# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

(($# >= 1)) || die "usage: check.sh RUN_DIR [--only moto,s3s,hms,rest]"
run_dir="$1"
shift
env_file="$run_dir/services.env"
[[ -f "$env_file" ]] || die "$env_file not found: run start.sh $run_dir first"
python="$(venv_python)"
[[ -x "$python" ]] || die "no venv at $venv_dir: run $BCN_SERVICES_DIR/install.sh --only moto"

# shellcheck source=/dev/null
. "$env_file"
exec "$python" "$BCN_SERVICES_DIR/check_services.py" "$@"
