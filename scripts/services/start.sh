#!/usr/bin/env bash
# Start the test services on free ports of 127.0.0.1, with all their state under RUN_DIR.
#
# Usage: start.sh RUN_DIR [--only moto,s3s,hms,rest,pg]     (default: all five)
#
#   moto  moto server 5.2.5: S3 + Glue (any credentials), in memory     -> RUN_DIR/moto/
#   s3s   s3s-fs 0.14.1: S3 on a directory, checks SigV4               -> RUN_DIR/s3s/
#   hms   Hive Metastore 2.3.10 (Thrift), embedded Derby               -> RUN_DIR/hms/
#   rest  rustberg 0.3.0 Iceberg REST catalog, no auth, local warehouse -> RUN_DIR/rest/
#   pg    PostgreSQL (the distribution's server), trust auth, database bcn -> RUN_DIR/pg/
#
# Writes RUN_DIR/pids ("name pid" per line, for stop.sh) and RUN_DIR/services.env
# (export lines; see README.md), and prints the path of services.env as its only
# stdout line. Progress, timings and RSS go to stderr.
#
# A start always begins from empty state: services of an earlier start in the same
# RUN_DIR are stopped (stop.sh) and their directories removed first.
# The binaries must be installed first: install.sh --only <same list>.
#
# Env: BCN_CACHE_DIR, BCN_SERVICES_START_TIMEOUT (seconds, default 180),
#      BCN_HMS_HEAP (default 512m), BCN_REST_LOG_LEVEL (default warn).
set -euo pipefail
LOG_TAG=start
# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; }

run_dir=""
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
    -*) die "unknown option: $1 (try --help)" ;;
    *)
        [[ -z "$run_dir" ]] || die "only one RUN_DIR, got '$run_dir' and '$1'"
        run_dir="$1"
        shift
        ;;
    esac
done
[[ -n "$run_dir" ]] || {
    usage
    die "RUN_DIR missing"
}
parse_only "$only"
mkdir -p "$run_dir"
run_dir="$(cd "$run_dir" && pwd)"
timeout="${BCN_SERVICES_START_TIMEOUT:-180}"

command -v curl >/dev/null 2>&1 || die "curl is needed"
py="$(command -v python3 || true)"
[[ -n "$py" ]] || py="$(venv_python)"
[[ -x "$py" ]] || die "python3 is needed"

# --- prerequisites -------------------------------------------------------------------------
missing=()
if is_selected moto && [[ ! -x "$venv_dir/bin/moto_server" ]]; then missing+=(moto); fi
if is_selected s3s && ! bin_has_version "$(s3s_bin)" "s3s-fs $S3S_FS_VERSION"; then missing+=(s3s); fi
if is_selected hms; then
    command -v java >/dev/null 2>&1 || die "java not found (the Hive Metastore needs Java 11+)"
    hms_ready || missing+=(hms)
fi
if is_selected rest && ! bin_has_version "$(rustberg_bin)" "rustberg $RUSTBERG_VERSION"; then missing+=(rest); fi
if is_selected pg && [[ -z "$(pg_bin)" ]]; then missing+=(pg); fi
if ((${#missing[@]})); then
    die "not installed: ${missing[*]} -- run: $BCN_SERVICES_DIR/install.sh --only $(
        IFS=,
        echo "${missing[*]}"
    )"
fi

# --- clean slate ---------------------------------------------------------------------------
if [[ -f "$run_dir/pids" ]]; then
    log "stopping the services of an earlier start in $run_dir"
    "$BCN_SERVICES_DIR/stop.sh" "$run_dir"
fi
rm -f "$run_dir/pids" "$run_dir/services.env"
for s in "${selected[@]}"; do rm -rf "${run_dir:?}/$s"; done
: >"$run_dir/pids"

# --- helpers -------------------------------------------------------------------------------
declare -A port pid started attempts
used_ports=" "

pick_port() {
    local p
    while :; do
        p="$("$py" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()')"
        [[ "$used_ports" == *" $p "* ]] || break
    done
    used_ports+="$p "
    echo "$p"
}

# launch NAME CMD...: run CMD in RUN_DIR/NAME (its cwd: stop.sh checks it), log to NAME.log.
launch() {
    local name="$1"
    shift
    local dir="$run_dir/$name"
    mkdir -p "$dir"
    (cd "$dir" && exec "$@") </dev/null >>"$dir/$name.log" 2>&1 &
    pid[$name]=$!
    started[$name]="$(now)"
    echo "$name ${pid[$name]}" >>"$run_dir/pids"
}

alive() { kill -0 "$1" 2>/dev/null; }
tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
http_code() { curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" || true; }
toml_str() { # a TOML basic string
    local s="${1//\\/\\\\}"
    printf '"%s"' "${s//\"/\\\"}"
}

# --- the services --------------------------------------------------------------------------
moto_access_key=testing
moto_secret_key=testing
region=us-east-1
s3s_access_key=bcn-test-access
s3s_secret_key=bcn-test-secret
hms_bucket=bcn-hms
hms_warehouse="s3://$hms_bucket/warehouse"

launch_moto() {
    port[moto]="$(pick_port)"
    launch moto "$venv_dir/bin/moto_server" -H 127.0.0.1 -p "${port[moto]}"
}
ready_moto() { [[ "$(http_code "http://127.0.0.1:${port[moto]}/moto-api/")" == 200 ]]; }

launch_s3s() {
    port[s3s]="$(pick_port)"
    mkdir -p "$run_dir/s3s/data"
    launch s3s "$(s3s_bin)" --host 127.0.0.1 --port "${port[s3s]}" \
        --access-key "$s3s_access_key" --secret-key "$s3s_secret_key" "$run_dir/s3s/data"
}
ready_s3s() { [[ "$(http_code "http://127.0.0.1:${port[s3s]}/")" != 000 ]]; }

launch_hms() {
    port[hms]="$(pick_port)"
    local d="$run_dir/hms"
    rm -rf "$d/metastore_db" # a retry after a port clash starts from an empty Derby too
    mkdir -p "$d/conf" "$d/tmp"
    cat >"$d/conf/hive-site.xml" <<XML
<?xml version="1.0"?>
<configuration>
  <property><name>javax.jdo.option.ConnectionURL</name><value>jdbc:derby:;databaseName=$d/metastore_db;create=true</value></property>
  <property><name>javax.jdo.option.ConnectionDriverName</name><value>org.apache.derby.jdbc.EmbeddedDriver</value></property>
  <property><name>javax.jdo.option.ConnectionUserName</name><value>APP</value></property>
  <property><name>javax.jdo.option.ConnectionPassword</name><value>mine</value></property>
  <property><name>datanucleus.schema.autoCreateAll</name><value>true</value></property>
  <property><name>datanucleus.connectionPoolingType</name><value>HikariCP</value></property>
  <property><name>hive.metastore.schema.verification</name><value>false</value></property>
  <property><name>hive.metastore.warehouse.dir</name><value>$hms_warehouse</value></property>
  <property><name>hive.metastore.disallow.incompatible.col.type.changes</name><value>false</value></property>
  <!-- s3/s3a/s3n locations: directory bookkeeping inside the metastore only (NoopDirFileSystem.java);
       clients write the Iceberg files to the S3 server themselves. -->
  <property><name>fs.s3.impl</name><value>NoopDirFileSystem</value></property>
  <property><name>fs.s3a.impl</name><value>NoopDirFileSystem</value></property>
  <property><name>fs.s3n.impl</name><value>NoopDirFileSystem</value></property>
  <property><name>fs.s3.impl.disable.cache</name><value>true</value></property>
  <property><name>fs.s3a.impl.disable.cache</name><value>true</value></property>
  <property><name>fs.s3n.impl.disable.cache</name><value>true</value></property>
  <property><name>hive.stats.autogather</name><value>false</value></property>
  <property><name>hive.exec.scratchdir</name><value>$d/tmp</value></property>
</configuration>
XML
    cat >"$d/conf/log4j2.properties" <<'L4J'
rootLogger.level = warn
rootLogger.appenderRef.stdout.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss.SSS} %p %c{1}: %m%n
L4J
    launch hms java -Xmx"${BCN_HMS_HEAP:-512m}" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
        -Djava.net.preferIPv4Stack=true \
        -Dderby.system.home="$d" -Dderby.stream.error.file="$d/derby.log" \
        -Dlog4j2.configurationFile="$d/conf/log4j2.properties" -Djava.io.tmpdir="$d/tmp" \
        --add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.net=ALL-UNNAMED \
        --add-opens=java.base/java.util=ALL-UNNAMED --add-opens=java.base/java.nio=ALL-UNNAMED \
        --add-opens=java.base/java.lang.reflect=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED \
        -cp "$d/conf:$hms_home/classes:$hms_home/jars/*" \
        LoopbackHiveMetaStore 127.0.0.1 "${port[hms]}"
}
ready_hms() { grep -q HMS_READY "$run_dir/hms/hms.log" 2>/dev/null && tcp_open "${port[hms]}"; }

launch_rest() {
    port[rest]="$(pick_port)"
    local d="$run_dir/rest"
    rm -rf "$d/catalog"
    mkdir -p "$d/catalog" "$d/warehouse"
    # location_scope = "warehouse": register_table (and a create with an explicit location)
    # may name any location inside the warehouse, not only <warehouse>/<ns>/<table>.
    # A config file switches rate limiting on by default: off here, tests are bursty.
    cat >"$d/rustberg.toml" <<TOML
[storage]
catalog_url = $(toml_str "file://$d/catalog")
warehouse_location = $(toml_str "file://$d/warehouse")
location_scope = "warehouse"

[rate_limit]
enabled = false

[logging]
with_span_events = false

[audit]
sink = "file"
path = $(toml_str "$d/audit.jsonl")
fail_closed = false
TOML
    # rustberg also reads RUSTBERG_* variables; none of the caller's may leak in.
    # --no-auth is refused without --dev ("production mode").
    launch rest env -u RUSTBERG_WAREHOUSE -u RUSTBERG_CATALOG_URL -u RUSTBERG_TENANT_ID -u RUSTBERG_DEV \
        -u RUSTBERG_TLS_CERT -u RUSTBERG_TLS_KEY -u RUSTBERG_SHUTDOWN_DELAY NO_COLOR=1 \
        "$(rustberg_bin)" --config "$d/rustberg.toml" --host 127.0.0.1 --port "${port[rest]}" \
        --insecure-http --no-auth --dev --log-level "${BCN_REST_LOG_LEVEL:-warn}"
}
ready_rest() { [[ "$(http_code "http://127.0.0.1:${port[rest]}/v1/config")" == 200 ]]; }

# PostgreSQL refuses to run as root: as root, it runs as the package's `postgres` user
# (setpriv execs in place, so the recorded pid is the server's own).
as_pg() {
    if [[ "$(id -u)" == 0 ]]; then
        setpriv --reuid=postgres --regid=postgres --clear-groups -- "$@"
    else
        "$@"
    fi
}

launch_pg() {
    port[pg]="$(pick_port)"
    local d="$run_dir/pg" bin
    bin="$(pg_bin)"
    rm -rf "$d"
    # The data directory is RUN_DIR/pg itself (postgres chdirs there; stop.sh checks the cwd).
    if [[ "$(id -u)" == 0 ]]; then
        chmod o+x "$run_dir"
        mkdir -p "$d" && chown postgres: "$d" && chmod 700 "$d"
    fi
    as_pg "$bin/initdb" -D "$d" -U bcn --auth=trust -E UTF8 --no-sync >"$run_dir/pg-initdb.log" 2>&1 ||
        fail pg "initdb failed: $(tail -n 5 "$run_dir/pg-initdb.log")"
    local cmd=("$bin/postgres" -D "$d" -h 127.0.0.1 -p "${port[pg]}" -k "$d"
        -c fsync=off -c synchronous_commit=off -c full_page_writes=off)
    if [[ "$(id -u)" == 0 ]]; then
        cmd=(setpriv --reuid=postgres --regid=postgres --clear-groups -- "${cmd[@]}")
    fi
    launch pg "${cmd[@]}"
}
ready_pg() { "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "${port[pg]}" 2>/dev/null; }

rss_of() { # "123 MB" from /proc, or "?" elsewhere
    local kb
    kb="$(awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true)"
    if [[ -n "$kb" ]]; then echo "$((kb / 1024)) MB"; else echo "?"; fi
}

fail() {
    local name="$1" msg="$2"
    log "error: $name: $msg; last lines of $run_dir/$name/$name.log:"
    tail -n 40 "$run_dir/$name/$name.log" >&2 || true
    log "stopping what was started"
    "$BCN_SERVICES_DIR/stop.sh" "$run_dir" || true
    exit 1
}

# --- start all, then wait for all (the slow HMS overlaps with the rest) ----------------------
t0="$(now)"
for s in "${selected[@]}"; do
    attempts[$s]=1
    "launch_$s"
done

pending=("${selected[@]}")
deadline=$(($(date +%s) + timeout))
while ((${#pending[@]})); do
    still=()
    for s in "${pending[@]}"; do
        if "ready_$s"; then
            log "$s: ready on 127.0.0.1:${port[$s]} (pid ${pid[$s]}) after $(elapsed "${started[$s]}") s"
        elif ! alive "${pid[$s]}"; then
            if grep -qiE 'address already in use|AddrInUse|BindException' "$run_dir/$s/$s.log" &&
                ((attempts[$s] < 3)); then
                log "$s: port ${port[$s]} was taken meanwhile; retrying on another port"
                attempts[$s]=$((attempts[$s] + 1))
                "launch_$s"
                still+=("$s")
            else
                fail "$s" "exited during startup"
            fi
        else
            still+=("$s")
        fi
    done
    pending=("${still[@]}")
    if ((${#pending[@]})); then
        (($(date +%s) < deadline)) || fail "${pending[0]}" "not ready after ${timeout} s"
        sleep 0.1
    fi
done

# --- post-start setup ----------------------------------------------------------------------
if is_selected pg; then
    "$(pg_bin)/psql" -q -h 127.0.0.1 -p "${port[pg]}" -U bcn -d postgres \
        -c 'CREATE DATABASE bcn' >/dev/null || fail pg "creating database bcn failed"
fi
if is_selected moto && is_selected hms; then
    # The HMS default warehouse is on moto's S3: make its bucket exist (moto takes unsigned requests).
    code="$(curl -s -o /dev/null -w '%{http_code}' -X PUT "http://127.0.0.1:${port[moto]}/$hms_bucket")"
    [[ "$code" == 200 ]] || fail moto "creating bucket $hms_bucket answered HTTP $code"
fi

# --- services.env --------------------------------------------------------------------------
env_file="$run_dir/services.env"
{
    echo "# Written by scripts/services/start.sh; source it (bash) or parse its KEY=VALUE lines."
    kv() { printf 'export %s=%q\n' "$1" "$2"; }
    kv BCN_TEST_SERVICES_RUN_DIR "$run_dir"
    kv BCN_TEST_SERVICES "${selected[*]}"
    kv BCN_TEST_AWS_REGION "$region"
    if is_selected moto; then
        kv BCN_TEST_MOTO_ENDPOINT "http://127.0.0.1:${port[moto]}"
        kv BCN_TEST_MOTO_REGION "$region"
        kv BCN_TEST_MOTO_ACCESS_KEY "$moto_access_key"
        kv BCN_TEST_MOTO_SECRET_KEY "$moto_secret_key"
    fi
    if is_selected s3s; then
        kv BCN_TEST_S3S_ENDPOINT "http://127.0.0.1:${port[s3s]}"
        kv BCN_TEST_S3S_REGION "$region"
        kv BCN_TEST_S3S_ACCESS_KEY "$s3s_access_key"
        kv BCN_TEST_S3S_SECRET_KEY "$s3s_secret_key"
        kv BCN_TEST_S3S_ROOT "$run_dir/s3s/data"
    fi
    if is_selected hms; then
        kv BCN_TEST_HMS_URI "thrift://127.0.0.1:${port[hms]}"
        kv BCN_TEST_HMS_WAREHOUSE "$hms_warehouse"
        if is_selected moto; then kv BCN_TEST_HMS_S3_ENDPOINT "http://127.0.0.1:${port[moto]}"; fi
    fi
    if is_selected pg; then
        kv BCN_TEST_PG_URI "postgresql://bcn@127.0.0.1:${port[pg]}/bcn"
    fi
    if is_selected rest; then
        kv BCN_TEST_REST_URI "http://127.0.0.1:${port[rest]}"
        kv BCN_TEST_REST_WAREHOUSE "file://$run_dir/rest/warehouse"
    fi
} >"$env_file.tmp"
mv "$env_file.tmp" "$env_file"

for s in "${selected[@]}"; do
    log "$(printf '%-5s 127.0.0.1:%-5s pid %-7s RSS %s' "$s" "${port[$s]}" "${pid[$s]}" "$(rss_of "${pid[$s]}")")"
done
log "started ${selected[*]} in $(elapsed "$t0") s; env in $env_file"
echo "$env_file"
