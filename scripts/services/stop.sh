#!/usr/bin/env bash
# Stop the services that start.sh started in RUN_DIR: exactly the PIDs listed in
# RUN_DIR/pids ("name pid" per line), never anything found by name.
#
# Usage: stop.sh RUN_DIR
#
# Each PID gets SIGTERM, then SIGKILL if it is still there after the grace period.
# On Linux a PID is only signalled while its working directory is still RUN_DIR/NAME
# (start.sh runs every service there), so a stale pids file whose PIDs were reused by
# unrelated processes kills nothing. Removes RUN_DIR/pids and RUN_DIR/services.env;
# the services' data and logs stay in RUN_DIR for inspection. A RUN_DIR without a
# pids file is not an error.
#
# Env: BCN_SERVICES_STOP_GRACE (seconds between TERM and KILL, default 5).
set -euo pipefail
LOG_TAG=stop
# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

(($# == 1)) || die "usage: stop.sh RUN_DIR"
[[ -d "$1" ]] || {
    log "$1: no such directory; nothing to stop"
    exit 0
}
run_dir="$(cd "$1" && pwd)"
pids_file="$run_dir/pids"
if [[ ! -f "$pids_file" ]]; then
    log "no $pids_file; nothing to stop"
    rm -f "$run_dir/services.env"
    exit 0
fi
grace="${BCN_SERVICES_STOP_GRACE:-5}"

# ours PID NAME: the PID is alive and (where /proc tells) still runs in RUN_DIR/NAME.
ours() {
    kill -0 "$1" 2>/dev/null || return 1
    if [[ -d /proc/$1 ]]; then
        local cwd
        cwd="$(readlink "/proc/$1/cwd" 2>/dev/null || true)"
        # An unreadable cwd (another user's process) or another directory: not ours.
        [[ "$cwd" == "$run_dir/$2" ]] || return 1
    fi
    return 0
}

names=()
pids=()
while read -r name pid _; do
    [[ -n "${name:-}" && "${pid:-}" =~ ^[0-9]+$ ]] || continue
    if ours "$pid" "$name"; then
        names+=("$name")
        pids+=("$pid")
    fi
done <"$pids_file"

for i in "${!pids[@]}"; do
    log "${names[$i]}: SIGTERM to pid ${pids[$i]}"
    kill -TERM "${pids[$i]}" 2>/dev/null || true
done

t0="$(now)"
deadline=$(($(date +%s) + grace))
while :; do
    left=()
    for i in "${!pids[@]}"; do
        if ours "${pids[$i]}" "${names[$i]}"; then left+=("$i"); fi
    done
    ((${#left[@]})) || break
    if (($(date +%s) >= deadline)); then
        for i in "${left[@]}"; do
            log "${names[$i]}: still running after ${grace} s; SIGKILL to pid ${pids[$i]}"
            kill -KILL "${pids[$i]}" 2>/dev/null || true
        done
        sleep 0.2
        for i in "${left[@]}"; do
            if ours "${pids[$i]}" "${names[$i]}"; then log "warning: ${names[$i]} pid ${pids[$i]} survived SIGKILL"; fi
        done
        break
    fi
    sleep 0.1
done

rm -f "$pids_file" "$run_dir/services.env"
log "stopped ${names[*]:-nothing} in $(elapsed "$t0") s"
