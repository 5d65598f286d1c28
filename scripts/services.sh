#!/usr/bin/env bash
# Local backing services for tracefold's integration tests: Kafka (KRaft, one node), HBase
# (standalone, with its Thrift2 and REST gateways) and a MySQL-compatible server (MariaDB).
#
#   scripts/services.sh up     [kafka|hbase|mysql]...   start (default: all); idempotent
#   scripts/services.sh down   [kafka|hbase|mysql]...   stop what this script started
#   scripts/services.sh status [kafka|hbase|mysql]...   one line per process (exit 3 if any is down)
#   scripts/services.sh env                             print the endpoints as `export K=V`
#   scripts/services.sh gateway up|down PORT            an extra Thrift2 gateway on PORT against the
#                                                       local HBase (tests stop it without
#                                                       disturbing the shared one)
#
# Everything listens on 127.0.0.1. State and logs live under <repo>/.state/ (with the private test
# CA and the server certificate of the TLS endpoints under .state/tls/), the downloaded jars under
# ${XDG_CACHE_HOME:-$HOME/.cache}/tracefold/. See docs/SERVICES.md.
set -euo pipefail
shopt -u patsub_replacement 2>/dev/null || true

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
HERE=$ROOT/scripts/services
STATE=${TRACEFOLD_STATE_DIR:-$ROOT/.state}
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/tracefold

KAFKA_VERSION=3.9.1
HBASE_VERSION=$(sed -n 's:.*<hbase.version>\(.*\)</hbase.version>.*:\1:p' "$HERE/hbase-pom.xml")
KAFKA_LIB=$CACHE/kafka-$KAFKA_VERSION/lib
HBASE_LIB=$CACHE/hbase-$HBASE_VERSION/lib

# ---- ports and settings (environment overrides) -------------------------------------------
KAFKA_PORT=${TRACEFOLD_KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${TRACEFOLD_KAFKA_CONTROLLER_PORT:-19093}
KAFKA_SASL_PORT=${TRACEFOLD_KAFKA_SASL_PORT:-19094}
KAFKA_TLS_PORT=${TRACEFOLD_KAFKA_TLS_PORT:-19095}
KAFKA_USER=${TRACEFOLD_KAFKA_SASL_USER:-tracefold}
KAFKA_PASSWORD=${TRACEFOLD_KAFKA_SASL_PASSWORD:-tracefold-secret}
HBASE_THRIFT_PORT=${TRACEFOLD_HBASE_THRIFT_PORT:-19090}
HBASE_REST_PORT=${TRACEFOLD_HBASE_REST_PORT:-18080}
HBASE_ZK_PORT=${TRACEFOLD_HBASE_ZK_PORT:-12181}
HBASE_MASTER_PORT=${TRACEFOLD_HBASE_MASTER_PORT:-16100}
HBASE_RS_PORT=${TRACEFOLD_HBASE_RS_PORT:-16120}
MYSQL_PORT=${TRACEFOLD_MYSQL_PORT:-13306}
MYSQL_DB=tracefold
MYSQL_USER=tracefold
MYSQL_PASSWORD=tracefold

KAFKA_HEAP=${TRACEFOLD_KAFKA_HEAP:-512m}
# how long a new consumer group waits for more members before its first assignment: 0 for the
# tests (many short-lived groups); the benchmark uses 1000 (Kafka's default is 3000), so the
# worker threads of one process join in one generation instead of the first taking every partition
KAFKA_GROUP_INITIAL_DELAY_MS=${TRACEFOLD_KAFKA_GROUP_INITIAL_DELAY_MS:-0}
HBASE_HEAP=${TRACEFOLD_HBASE_HEAP:-2g}
HBASE_GATEWAY_HEAP=${TRACEFOLD_HBASE_GATEWAY_HEAP:-256m}
KAFKA_TIMEOUT=${TRACEFOLD_KAFKA_START_TIMEOUT:-120}
HBASE_TIMEOUT=${TRACEFOLD_HBASE_START_TIMEOUT:-240}
MYSQL_TIMEOUT=${TRACEFOLD_MYSQL_START_TIMEOUT:-120}
STOP_TIMEOUT=${TRACEFOLD_STOP_TIMEOUT:-60}
DOWNLOAD_TIMEOUT=${TRACEFOLD_DOWNLOAD_TIMEOUT:-1800}

LOCAL_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
LOCAL_KAFKA_SASL_BROKERS=127.0.0.1:$KAFKA_SASL_PORT
LOCAL_KAFKA_TLS_BROKERS=127.0.0.1:$KAFKA_TLS_PORT
LOCAL_HBASE_THRIFT=127.0.0.1:$HBASE_THRIFT_PORT
LOCAL_HBASE_REST=http://127.0.0.1:$HBASE_REST_PORT
LOCAL_HBASE_ZK=127.0.0.1:$HBASE_ZK_PORT
LOCAL_MYSQL_URL=mysql://$MYSQL_USER:$MYSQL_PASSWORD@127.0.0.1:$MYSQL_PORT/$MYSQL_DB

# A service is external (not started, not stopped) when its endpoint variable is set to something
# other than what this script would provide itself; so sourcing .state/services.env into a shell
# does not turn the local services into "external" ones.
kafka_external() { [[ -n ${KAFKA_BROKERS:-} && ${KAFKA_BROKERS} != "$LOCAL_KAFKA_BROKERS" ]]; }
hbase_external() {
  [[ -n ${HBASE_THRIFT:-} && ${HBASE_THRIFT} != "$LOCAL_HBASE_THRIFT" ]] ||
    [[ -n ${HBASE_REST:-} && ${HBASE_REST} != "$LOCAL_HBASE_REST" ]]
}
mysql_external() { [[ -n ${MYSQL_URL:-} && ${MYSQL_URL} != "$LOCAL_MYSQL_URL" ]]; }

# ---- small helpers ---------------------------------------------------------------------------
log() { printf '[services %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }
now() { date +%s; }

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# has_arg PID ARG: the process PID was started with exactly ARG among its arguments
has_arg() { grep -qzxF -- "$2" "/proc/$1/cmdline" 2>/dev/null; }

# Each process this script starts carries a marker argument naming it and this state folder;
# that is how a pid file is told apart from a recycled pid, and how `down` finds a process whose
# pid file was lost.
marker() {
  case $1 in
    mysql) echo "--datadir=$STATE/mariadb/data" ;;
    *) echo "-Dtracefold.service=$1@$STATE" ;;
  esac
}
svc_dir() {
  case $1 in
    kafka) echo "$STATE/kafka" ;;
    hbase-*) echo "$STATE/hbase" ;;
    mysql) echo "$STATE/mariadb" ;;
  esac
}
pid_file() { echo "$(svc_dir "$1")/${1#hbase-}.pid"; }
log_file() {
  case $1 in
    mysql) echo "$STATE/mariadb/logs/mariadbd.log" ;;
    *) echo "$(svc_dir "$1")/logs/${1#hbase-}.log" ;;
  esac
}

# ours_alive PID NAME: PID is alive and is our process NAME (a zombie has no arguments)
ours_alive() { kill -0 "$1" 2>/dev/null && has_arg "$1" "$(marker "$2")"; }

# running_pid NAME: prints the pid of our live process NAME, or fails (removing a stale pid file)
running_pid() {
  local f pid m
  f=$(pid_file "$1")
  m=$(marker "$1")
  if [[ -s $f ]]; then
    pid=$(<"$f")
    if [[ $pid =~ ^[0-9]+$ ]] && ours_alive "$pid" "$1"; then
      echo "$pid"
      return 0
    fi
    rm -f "$f"
  fi
  # pid file lost (or stale): look for a process carrying our marker
  for pid in $(find_marked "$m"); do
    echo "$pid" >"$f" 2>/dev/null || true
    echo "$pid"
    return 0
  done
  return 1
}

find_marked() { # pids of the processes with exactly ARG among their arguments
  local f p
  for f in $(grep -lzxF -- "$1" /proc/[0-9]*/cmdline 2>/dev/null); do
    p=${f#/proc/}
    p=${p%/cmdline}
    [[ $p == "$$" || $p == "$BASHPID" ]] && continue
    # not the grep above (its own arguments hold the marker), and still alive
    [[ $(cat "/proc/$p/comm" 2>/dev/null) == grep ]] && continue
    kill -0 "$p" 2>/dev/null && echo "$p"
  done
  return 0
}

tail_log() {
  local f=$1
  if [[ -s $f ]]; then
    printf -- '----- last 40 lines of %s -----\n' "$f" >&2
    tail -n 40 "$f" >&2
    printf -- '----- end of %s -----\n' "$f" >&2
  else
    printf '(log %s is empty or missing)\n' "$f" >&2
  fi
}

# fail_service NAME WHAT [nolog]: report that NAME did not come up, with the end of its log
FAILED=()
fail_service() {
  local f
  f=$(log_file "$1")
  printf '\n[services] ERROR: %s did not come up: %s\n' "$1" "$2" >&2
  if [[ ${3:-} != nolog ]]; then
    printf '[services] log: %s\n' "$f" >&2
    tail_log "$f"
  fi
  FAILED+=("$1")
}

# check_port_free NAME PORT VAR: the port must not be held by someone else
check_port_free() {
  if port_open "$2"; then
    fail_service "$1" "port 127.0.0.1:$2 is already in use by another process (choose another with $3=...)" nolog
    return 1
  fi
}

# rotate LOG: keep the previous run's log as LOG.1
rotate() {
  mkdir -p "$(dirname "$1")"
  if [[ -s $1 ]]; then mv -f "$1" "$1.1"; fi
  : >"$1"
}

# launch NAME CMD...: start CMD detached in its own session, logging to NAME's log
launch() {
  local name=$1 f lf pid
  shift
  f=$(pid_file "$name")
  lf=$(log_file "$name")
  rotate "$lf"
  printf '=== %s: %s\n' "$(date -Is)" "$*" >>"$lf"
  # fds 8 and 9 hold this script's locks: the daemon must not inherit them
  setsid "$@" </dev/null >>"$lf" 2>&1 8>&- 9>&- &
  pid=$!
  echo "$pid" >"$f"
  LAUNCHED[$name]=$(now)
  log "started $name (pid $pid), log: $lf"
}
declare -A LAUNCHED=()

# alive_or_fail NAME: false (with the failure reported) when NAME's process has died
alive_or_fail() {
  if ! running_pid "$1" >/dev/null; then
    fail_service "$1" "the process exited during start-up"
    return 1
  fi
}

# ---- prerequisites --------------------------------------------------------------------------
APT_UPDATED=0
apt_install() {
  [[ $(id -u) == 0 ]] || return 1
  command -v apt-get >/dev/null || return 1
  if [[ $APT_UPDATED == 0 ]]; then
    log "apt-get update"
    mkdir -p "$(dirname "$APT_LOG")"
    apt-get update -q >>"$APT_LOG" 2>&1 || { tail -n 30 "$APT_LOG" >&2; return 1; }
    APT_UPDATED=1
  fi
  log "apt-get install $* (output: $APT_LOG)"
  mkdir -p "$(dirname "$APT_LOG")"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >>"$APT_LOG" 2>&1; then
    tail -n 30 "$APT_LOG" >&2
    return 1
  fi
}
APT_LOG=$STATE/apt-install.log

JAVA=java
need_java() {
  if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then JAVA=$JAVA_HOME/bin/java; fi
  if ! command -v "$JAVA" >/dev/null; then
    apt_install openjdk-17-jre-headless || die "java (17+) is missing: install a JDK 17 or set JAVA_HOME"
  fi
}
need_mvn() {
  command -v mvn >/dev/null && return 0
  apt_install maven || die "mvn (Maven 3) is missing: install Maven, e.g. apt-get install maven"
}

# fetch_jars NAME POM LIBDIR: copy POM's runtime dependencies into LIBDIR (once; a marker file
# holding the POM's checksum, written last, says the folder is complete)
fetch_jars() {
  local name=$1 pom=$2 lib=$3 sum marker tmp t0
  marker=$(dirname "$lib")/.complete
  sum=$(sha256sum "$pom" | cut -d' ' -f1)
  if [[ -f $marker && $(<"$marker") == "$sum" && -d $lib ]]; then return 0; fi
  need_java
  need_mvn
  mkdir -p "$(dirname "$lib")"
  exec 8>"$(dirname "$lib")/.lock"
  flock 8
  if [[ -f $marker && $(<"$marker") == "$sum" && -d $lib ]]; then exec 8>&-; return 0; fi
  t0=$(now)
  log "downloading $name jars into $lib (first run only; Maven cache: ~/.m2)"
  rm -f "$marker"
  tmp=$(dirname "$lib")/lib.tmp.$$
  rm -rf "$tmp"
  if ! (cd "$(dirname "$lib")" && timeout "$DOWNLOAD_TIMEOUT" mvn -B -q -Dmaven.artifact.threads=8 \
    -f "$pom" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp") \
    >"$(dirname "$lib")/mvn.log" 2>&1; then
    cat "$(dirname "$lib")/mvn.log" >&2
    rm -rf "$tmp"
    exec 8>&-
    die "could not resolve the $name jars with Maven (log above: $(dirname "$lib")/mvn.log)"
  fi
  rm -rf "$lib"
  mv "$tmp" "$lib"
  echo "$sum" >"$marker"
  exec 8>&-
  log "$name jars ready: $(find "$lib" -name '*.jar' | wc -l) jars, $(du -sh "$lib" | cut -f1), $(($(now) - t0)) s"
}

# ---- TLS: a private CA and one server certificate (127.0.0.1, localhost) ------------------
# Used by Kafka's SSL listener and by MariaDB. Made once under $STATE/tls/ and kept; made again
# when a file is missing, the server certificate no longer verifies against the CA, or it expires
# within a day. A running server keeps the certificate it started with (restart it after that).
TLS_DIR=$STATE/tls
TLS_CA=$TLS_DIR/ca.pem
TLS_DAYS=3650
TLS_READY=''

need_openssl() {
  command -v openssl >/dev/null && return 0
  apt_install openssl || die "openssl is missing: install it, e.g. apt-get install openssl"
}

tls_valid() {
  local d=$TLS_DIR f
  for f in ca.key ca.pem server.key server.pem server-keystore.pem; do [[ -s $d/$f ]] || return 1; done
  openssl verify -CAfile "$d/ca.pem" "$d/server.pem" >/dev/null 2>&1 &&
    openssl x509 -in "$d/server.pem" -noout -checkend 86400 >/dev/null 2>&1
}

# tls_ensure: the CA and the server certificate exist and are usable (made here if not)
tls_ensure() {
  [[ -n ${TLS_READY:-} ]] && return 0
  need_openssl
  local d=$TLS_DIR
  if tls_valid; then TLS_READY=1; return 0; fi
  mkdir -p "$d"
  # (each step checked: `set -e` does not apply inside a subshell followed by ||)
  (
    umask 077
    cd "$d" || exit 1
    exec >"$d/openssl.log" 2>&1
    # the CA is kept when it is still good: clients that trust it keep working
    if ! { [[ -s ca.key && -s ca.pem ]] && openssl x509 -in ca.pem -noout -checkend 86400; }; then
      rm -f ca.key ca.pem ca.srl
      openssl req -x509 -new -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days "$TLS_DAYS" \
        -subj "/O=tracefold/CN=tracefold local test CA" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign || exit 1
    fi
    rm -f server.key server.csr server.pem server-keystore.pem
    openssl req -new -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
      -subj "/O=tracefold/CN=localhost" || exit 1
    printf '%s\n' basicConstraints=CA:FALSE keyUsage=critical,digitalSignature,keyEncipherment \
      extendedKeyUsage=serverAuth subjectAltName=IP:127.0.0.1,DNS:localhost >server.ext || exit 1
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
      -days "$TLS_DAYS" -sha256 -extfile server.ext || exit 1
    # Kafka's PEM keystore: the (unencrypted PKCS#8) key, then the certificate chain
    cat server.key server.pem ca.pem >server-keystore.pem || exit 1
    rm -f server.csr server.ext
    # the certificates (not the keys) readable by anyone: the CA is what clients are given
    chmod 644 ca.pem server.pem
  ) || { cat "$d/openssl.log" >&2; die "could not make the TLS certificates in $d with openssl (log above: $d/openssl.log)"; }
  tls_valid || die "the TLS certificates made in $d do not verify (see $d/openssl.log)"
  log "tls: made the server certificate for 127.0.0.1 and localhost in $d (CA: $TLS_CA)"
  TLS_READY=1
}

# render TEMPLATE OUT KEY=VALUE...: copy TEMPLATE to OUT, replacing each @KEY@ by VALUE
render() {
  local tpl=$1 out=$2 text kv
  shift 2
  text=$(<"$tpl")
  for kv in "$@"; do text=${text//"@${kv%%=*}@"/"${kv#*=}"}; done
  printf '%s\n' "$text" >"$out"
}

# ---- Kafka ----------------------------------------------------------------------------------
KAFKA_TOOL_OPTS=(-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1
  "-Dlog4j.configuration=file:$HERE/kafka-tools-log4j.properties")

kafka_tool() { # kafka_tool MAINCLASS ARGS...
  "$JAVA" "${KAFKA_TOOL_OPTS[@]}" -cp "$KAFKA_LIB/*" "$@"
}

kafka_write_conf() {
  local d=$STATE/kafka
  mkdir -p "$d/conf" "$d/data" "$d/logs"
  render "$HERE/kafka-server.properties" "$d/conf/server.properties" \
    PORT="$KAFKA_PORT" SASL_PORT="$KAFKA_SASL_PORT" CONTROLLER_PORT="$KAFKA_CONTROLLER_PORT" \
    TLS_PORT="$KAFKA_TLS_PORT" TLS_KEYSTORE="$TLS_DIR/server-keystore.pem" \
    SASL_USER="$KAFKA_USER" SASL_PASSWORD="$KAFKA_PASSWORD" DATA_DIR="$d/data" \
    GROUP_INITIAL_DELAY_MS="$KAFKA_GROUP_INITIAL_DELAY_MS"
  # client settings for the SASL listener, handy for the console tools and for tests
  local mech module
  for mech in PLAIN SCRAM-SHA-256 SCRAM-SHA-512; do
    module=org.apache.kafka.common.security.scram.ScramLoginModule
    [[ $mech == PLAIN ]] && module=org.apache.kafka.common.security.plain.PlainLoginModule
    cat >"$d/conf/client-${mech,,}.properties" <<EOF
# client settings for the SASL_PLAINTEXT listener $LOCAL_KAFKA_SASL_BROKERS ($mech)
security.protocol=SASL_PLAINTEXT
sasl.mechanism=$mech
sasl.jaas.config=$module required username="$KAFKA_USER" password="$KAFKA_PASSWORD";
EOF
  done
  cat >"$d/conf/client-ssl.properties" <<EOF
# client settings for the SSL listener $LOCAL_KAFKA_TLS_BROKERS (server verified with the test CA)
security.protocol=SSL
ssl.truststore.type=PEM
ssl.truststore.location=$TLS_CA
EOF
}

kafka_start() {
  if kafka_external; then log "kafka: using KAFKA_BROKERS=$KAFKA_BROKERS (not started)"; return 0; fi
  tls_ensure
  local pid
  if pid=$(running_pid kafka); then log "kafka already running (pid $pid)"; return 0; fi
  check_port_free kafka "$KAFKA_PORT" TRACEFOLD_KAFKA_PORT || return 0
  check_port_free kafka "$KAFKA_SASL_PORT" TRACEFOLD_KAFKA_SASL_PORT || return 0
  check_port_free kafka "$KAFKA_TLS_PORT" TRACEFOLD_KAFKA_TLS_PORT || return 0
  check_port_free kafka "$KAFKA_CONTROLLER_PORT" TRACEFOLD_KAFKA_CONTROLLER_PORT || return 0
  fetch_jars Kafka "$HERE/kafka-pom.xml" "$KAFKA_LIB"
  need_java
  kafka_write_conf
  local d=$STATE/kafka cid
  if [[ ! -s $d/cluster.id ]]; then
    # a random 16-byte id, base64url without padding: 22 characters; not starting with "-", which
    # kafka-storage's argument parser would take for an option (1 start in 64 failed)
    local id=-
    while [[ $id == -* ]]; do id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-22); done
    printf '%s\n' "$id" >"$d/cluster.id"
  fi
  cid=$(<"$d/cluster.id")
  if [[ ! -f $d/data/meta.properties ]]; then
    log "kafka: formatting storage (cluster id $cid, SCRAM user $KAFKA_USER)"
    echo "$KAFKA_USER:$KAFKA_PASSWORD" >"$d/scram.user"
  fi
  if ! kafka_tool kafka.tools.StorageTool format -t "$cid" -c "$d/conf/server.properties" \
    --ignore-formatted \
    --add-scram "SCRAM-SHA-256=[name=$KAFKA_USER,password=$KAFKA_PASSWORD]" \
    --add-scram "SCRAM-SHA-512=[name=$KAFKA_USER,password=$KAFKA_PASSWORD]" \
    >"$d/logs/format.log" 2>&1; then
    cp "$d/logs/format.log" "$(log_file kafka)"
    fail_service kafka "kafka.tools.StorageTool format failed"
    return 0
  fi
  launch kafka "$JAVA" -Xms256m "-Xmx$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
    -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true \
    "-Dkafka.logs.dir=$d/logs" "-Dlog4j.configuration=file:$HERE/kafka-log4j.properties" \
    "$(marker kafka)" -cp "$KAFKA_LIB/*" kafka.Kafka "$d/conf/server.properties"
}

kafka_wait() {
  kafka_external && return 0
  [[ -n ${LAUNCHED[kafka]:-} ]] || { running_pid kafka >/dev/null || return 0; }
  local t0=${LAUNCHED[kafka]:-$(now)} deadline d=$STATE/kafka
  deadline=$((t0 + KAFKA_TIMEOUT))
  # a broker left running by an earlier `up` keeps its listeners: it must have the TLS one
  if [[ -z ${LAUNCHED[kafka]:-} ]] &&
    ! grep -qF "TLS://127.0.0.1:$KAFKA_TLS_PORT," "$d/conf/server.properties" 2>/dev/null; then
    fail_service kafka "the running broker has no TLS listener on 127.0.0.1:$KAFKA_TLS_PORT (started by an older services.sh or with another TRACEFOLD_KAFKA_TLS_PORT): restart it with \`scripts/services.sh down kafka\` then \`up kafka\`" nolog
    return 0
  fi
  while ! { port_open "$KAFKA_PORT" && port_open "$KAFKA_SASL_PORT" && port_open "$KAFKA_TLS_PORT"; }; do
    alive_or_fail kafka || return 0
    if (($(now) >= deadline)); then
      fail_service kafka "no listener on 127.0.0.1:$KAFKA_PORT / :$KAFKA_SASL_PORT / :$KAFKA_TLS_PORT (TLS) within ${KAFKA_TIMEOUT} s"
      return 0
    fi
    sleep 0.5
  done
  # the listener is open; the broker is usable once the admin API answers
  until timeout 60 "$JAVA" "${KAFKA_TOOL_OPTS[@]}" -cp "$KAFKA_LIB/*" \
    org.apache.kafka.tools.TopicCommand --bootstrap-server "$LOCAL_KAFKA_BROKERS" --list \
    >"$d/logs/probe.log" 2>&1; do
    alive_or_fail kafka || return 0
    if (($(now) >= deadline)); then
      cat "$d/logs/probe.log" >&2
      fail_service kafka "the broker on $LOCAL_KAFKA_BROKERS did not answer TopicCommand --list within ${KAFKA_TIMEOUT} s"
      return 0
    fi
    sleep 1
  done
  # SCRAM credentials are set at format time; if the user or password was changed since, upsert
  if [[ $(cat "$d/scram.user" 2>/dev/null) != "$KAFKA_USER:$KAFKA_PASSWORD" ]]; then
    log "kafka: setting SCRAM credentials for $KAFKA_USER"
    if kafka_tool kafka.admin.ConfigCommand --bootstrap-server "$LOCAL_KAFKA_BROKERS" --alter \
      --entity-type users --entity-name "$KAFKA_USER" \
      --add-config "SCRAM-SHA-256=[password=$KAFKA_PASSWORD],SCRAM-SHA-512=[password=$KAFKA_PASSWORD]" \
      >>"$d/logs/probe.log" 2>&1; then
      echo "$KAFKA_USER:$KAFKA_PASSWORD" >"$d/scram.user"
    else
      cat "$d/logs/probe.log" >&2
      fail_service kafka "could not set the SCRAM credentials of $KAFKA_USER"
      return 0
    fi
  fi
  # the TLS listener serves a certificate for 127.0.0.1 that the test CA verifies
  need_openssl
  if ! timeout 20 openssl s_client -connect "$LOCAL_KAFKA_TLS_BROKERS" -CAfile "$TLS_CA" \
    -verify_return_error -verify_ip 127.0.0.1 </dev/null >"$d/logs/tls-probe.log" 2>&1; then
    tail -n 20 "$d/logs/tls-probe.log" >&2
    fail_service kafka "the TLS listener $LOCAL_KAFKA_TLS_BROKERS did not verify with $TLS_CA (a broker started before .state/tls was made again has another certificate: restart it with \`scripts/services.sh down kafka\` then \`up kafka\`)" nolog
    return 0
  fi
  log "kafka ready on $LOCAL_KAFKA_BROKERS (SASL $LOCAL_KAFKA_SASL_BROKERS, TLS $LOCAL_KAFKA_TLS_BROKERS) after $(($(now) - t0)) s"
}

# ---- HBase ----------------------------------------------------------------------------------
HBASE_JDK17_OPTS=(--add-modules jdk.unsupported
  --add-opens java.base/java.io=ALL-UNNAMED
  --add-opens java.base/java.nio=ALL-UNNAMED
  --add-opens java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens java.base/java.lang=ALL-UNNAMED
  --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
  --add-opens java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens java.base/java.util=ALL-UNNAMED
  --add-opens java.base/java.util.concurrent=ALL-UNNAMED
  --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
  --add-exports java.security.jgss/sun.security.krb5=ALL-UNNAMED
  --add-exports java.base/sun.net.dns=ALL-UNNAMED
  --add-exports java.base/sun.net.util=ALL-UNNAMED
  -Dorg.apache.hbase.thirdparty.io.netty.tryReflectionSetAccessible=true)

hbase_write_conf() {
  local d=$STATE/hbase
  mkdir -p "$d/conf" "$d/data" "$d/tmp" "$d/zookeeper" "$d/logs"
  render "$HERE/hbase-site.xml" "$d/conf/hbase-site.xml" STATE="$STATE" ZK_PORT="$HBASE_ZK_PORT" \
    MASTER_PORT="$HBASE_MASTER_PORT" RS_PORT="$HBASE_RS_PORT"
  cp "$HERE/log4j2.properties" "$d/conf/log4j2.properties"
}

hbase_launch() { # hbase_launch NAME HEAP MAINCLASS ARGS...
  local name=$1 heap=$2 d=$STATE/hbase
  shift 2
  launch "$name" "$JAVA" "-Xmx$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=50 \
    -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true \
    -Dzookeeper.admin.enableServer=false \
    "-Dhbase.log.dir=$d/logs" "-Dhbase.tmp.dir=$d/tmp" \
    "-Dlog4j2.configurationFile=file:$d/conf/log4j2.properties" \
    "${HBASE_JDK17_OPTS[@]}" "$(marker "$name")" -cp "$d/conf:$HBASE_LIB/*" "$@"
}

hbase_start() {
  if hbase_external; then
    log "hbase: using HBASE_THRIFT=${HBASE_THRIFT:-} HBASE_REST=${HBASE_REST:-} (not started)"
    return 0
  fi
  local pid
  local m_run=0 t_run=0 r_run=0
  if pid=$(running_pid hbase-master); then log "hbase-master already running (pid $pid)"; m_run=1; fi
  if pid=$(running_pid hbase-thrift); then log "hbase-thrift already running (pid $pid)"; t_run=1; fi
  if pid=$(running_pid hbase-rest); then log "hbase-rest already running (pid $pid)"; r_run=1; fi
  ((m_run && t_run && r_run)) && return 0
  if ((!m_run)); then
    check_port_free hbase-master "$HBASE_ZK_PORT" TRACEFOLD_HBASE_ZK_PORT || return 0
    check_port_free hbase-master "$HBASE_MASTER_PORT" TRACEFOLD_HBASE_MASTER_PORT || return 0
    check_port_free hbase-master "$HBASE_RS_PORT" TRACEFOLD_HBASE_RS_PORT || return 0
  fi
  if ((!t_run)); then check_port_free hbase-thrift "$HBASE_THRIFT_PORT" TRACEFOLD_HBASE_THRIFT_PORT || return 0; fi
  if ((!r_run)); then check_port_free hbase-rest "$HBASE_REST_PORT" TRACEFOLD_HBASE_REST_PORT || return 0; fi
  fetch_jars HBase "$HERE/hbase-pom.xml" "$HBASE_LIB"
  need_java
  hbase_write_conf
  if ((!m_run)); then
    hbase_launch hbase-master "$HBASE_HEAP" org.apache.hadoop.hbase.master.HMaster start
  fi
  # the gateways are plain clients: they start listening at once and reach the master lazily
  if ((!t_run)); then
    hbase_launch hbase-thrift "$HBASE_GATEWAY_HEAP" org.apache.hadoop.hbase.thrift2.ThriftServer \
      -b 127.0.0.1 -p "$HBASE_THRIFT_PORT" start
  fi
  if ((!r_run)); then
    hbase_launch hbase-rest "$HBASE_GATEWAY_HEAP" org.apache.hadoop.hbase.rest.RESTServer \
      -p "$HBASE_REST_PORT" start
  fi
}

rest_get() { # rest_get PATH: GET from the local REST gateway as JSON
  curl -fsS -m 10 -H 'Accept: application/json' "$LOCAL_HBASE_REST$1" 2>/dev/null
}

hbase_wait() {
  hbase_external && return 0
  local t0 n deadline why
  t0=$(now)
  for n in hbase-master hbase-thrift hbase-rest; do
    [[ -n ${LAUNCHED[$n]:-} ]] && ((LAUNCHED[$n] < t0)) && t0=${LAUNCHED[$n]}
  done
  running_pid hbase-master >/dev/null || [[ -n ${LAUNCHED[hbase-master]:-} ]] || return 0
  deadline=$((t0 + HBASE_TIMEOUT))
  # 1) the Thrift2 port accepts connections
  while ! port_open "$HBASE_THRIFT_PORT"; do
    alive_or_fail hbase-thrift || return 0
    if (($(now) >= deadline)); then
      fail_service hbase-thrift "nothing listens on $LOCAL_HBASE_THRIFT after ${HBASE_TIMEOUT} s"
      return 0
    fi
    sleep 0.5
  done
  # 2) the REST gateway answers /version/cluster, /status/cluster lists a live region server,
  #    and /namespaces answers (the master has finished initializing)
  why="the REST gateway did not answer on $LOCAL_HBASE_REST"
  while :; do
    alive_or_fail hbase-master || return 0
    alive_or_fail hbase-rest || return 0
    if port_open "$HBASE_REST_PORT"; then
      why="REST $LOCAL_HBASE_REST/version/cluster did not answer (master not reachable through ZooKeeper $LOCAL_HBASE_ZK)"
      if rest_get /version/cluster >/dev/null; then
        why="no live region server in $LOCAL_HBASE_REST/status/cluster"
        if rest_get /status/cluster | grep -q '"LiveNodes":\[{'; then
          why="the master has not finished initializing ($LOCAL_HBASE_REST/namespaces)"
          if rest_get /namespaces | grep -q '"default"'; then break; fi
        fi
      fi
    fi
    if (($(now) >= deadline)); then
      fail_service hbase-master "$why within ${HBASE_TIMEOUT} s"
      tail_log "$(log_file hbase-rest)"
      return 0
    fi
    sleep 1
  done
  log "hbase ready: thrift2 $LOCAL_HBASE_THRIFT, rest $LOCAL_HBASE_REST, zk $LOCAL_HBASE_ZK ($(rest_get /version/cluster | tr -d '"')) after $(($(now) - t0)) s"
}

# ---- MariaDB --------------------------------------------------------------------------------
MARIADBD='' INSTALL_DB='' MYSQL_CLIENT='' MYSQL_ADMIN=''
find_bin() { # find_bin NAME...: first of NAMEs found on PATH or in /usr/sbin, /usr/bin
  local n
  for n in "$@"; do
    if command -v "$n" >/dev/null 2>&1; then command -v "$n"; return 0; fi
    for d in /usr/sbin /usr/bin /usr/local/sbin /usr/local/bin; do
      if [[ -x $d/$n ]]; then echo "$d/$n"; return 0; fi
    done
  done
  return 1
}
mysql_find() {
  MARIADBD=$(find_bin mariadbd mysqld) && INSTALL_DB=$(find_bin mariadb-install-db mysql_install_db) &&
    MYSQL_CLIENT=$(find_bin mariadb mysql) && MYSQL_ADMIN=$(find_bin mariadb-admin mysqladmin)
}
mysql_install() {
  mysql_find && return 0
  if [[ $(id -u) != 0 ]]; then
    die "mariadbd/mysqld is not installed and this is not root: install mariadb-server, or set MYSQL_URL"
  fi
  # install the package without starting the system's own service
  local made_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  local rc=0 t0
  t0=$(now)
  apt_install mariadb-server || rc=$?
  ((made_policy)) && rm -f /usr/sbin/policy-rc.d
  ((rc == 0)) || die "apt-get install mariadb-server failed (exit $rc)"
  log "mariadb-server installed in $(($(now) - t0)) s"
  mysql_find || die "mariadb-server is installed but mariadbd/mariadb-install-db were not found"
}

mysql_socket() {
  local s=$STATE/mariadb/mysqld.sock
  # a unix socket path is limited to 107 bytes: use a short one for deep checkouts
  if ((${#s} > 100)); then
    s=${TMPDIR:-/tmp}/tracefold-mysql-$(printf '%s' "$STATE" | sha256sum | cut -c1-12).sock
  fi
  echo "$s"
}

mysql_start() {
  if mysql_external; then log "mysql: using MYSQL_URL (not started)"; return 0; fi
  tls_ensure
  local pid d=$STATE/mariadb
  if pid=$(running_pid mysql); then log "mysql already running (pid $pid)"; return 0; fi
  check_port_free mysql "$MYSQL_PORT" TRACEFOLD_MYSQL_PORT || return 0
  mysql_install
  mkdir -p "$d/logs" "$d/tmp"
  if [[ ! -f $d/.initialized ]]; then
    log "mysql: initializing $d/data"
    rm -rf "$d/data"
    mkdir -p "$d/data"
    if ! "$INSTALL_DB" --no-defaults --datadir="$d/data" --user="$(id -un)" \
      --auth-root-authentication-method=normal --skip-test-db >"$d/logs/install-db.log" 2>&1; then
      cp "$d/logs/install-db.log" "$(log_file mysql)"
      fail_service mysql "mariadb-install-db failed"
      return 0
    fi
    touch "$d/.initialized"
  fi
  local sock
  sock=$(mysql_socket)
  launch mysql "$MARIADBD" --no-defaults "$(marker mysql)" --user="$(id -un)" \
    --port="$MYSQL_PORT" --bind-address=127.0.0.1 --socket="$sock" \
    --pid-file="$d/mariadbd.server.pid" --tmpdir="$d/tmp" --skip-name-resolve \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
    --innodb-buffer-pool-size=256M --max-connections=300 --skip-log-bin \
    --ssl-ca="$TLS_CA" --ssl-cert="$TLS_DIR/server.pem" --ssl-key="$TLS_DIR/server.key"
}

mysql_wait() {
  mysql_external && return 0
  [[ -n ${LAUNCHED[mysql]:-} ]] || { running_pid mysql >/dev/null || return 0; }
  mysql_find || return 0
  local t0=${LAUNCHED[mysql]:-$(now)} deadline sock
  deadline=$((t0 + MYSQL_TIMEOUT))
  sock=$(mysql_socket)
  until "$MYSQL_ADMIN" --no-defaults --socket="$sock" -uroot --connect-timeout=2 ping >/dev/null 2>&1; do
    alive_or_fail mysql || return 0
    if (($(now) >= deadline)); then
      fail_service mysql "mariadbd did not answer a ping on $sock within ${MYSQL_TIMEOUT} s"
      return 0
    fi
    sleep 0.5
  done
  # the database and user (idempotent); tracefold% lets tests create their own databases
  if ! "$MYSQL_CLIENT" --no-defaults --socket="$sock" -uroot >>"$(log_file mysql)" 2>&1 <<SQL; then
CREATE DATABASE IF NOT EXISTS \`$MYSQL_DB\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS '$MYSQL_USER'@'127.0.0.1' IDENTIFIED BY '$MYSQL_PASSWORD';
CREATE USER IF NOT EXISTS '$MYSQL_USER'@'localhost' IDENTIFIED BY '$MYSQL_PASSWORD';
GRANT ALL PRIVILEGES ON \`$MYSQL_DB%\`.* TO '$MYSQL_USER'@'127.0.0.1';
GRANT ALL PRIVILEGES ON \`$MYSQL_DB%\`.* TO '$MYSQL_USER'@'localhost';
FLUSH PRIVILEGES;
SQL
    fail_service mysql "could not create the database $MYSQL_DB and user $MYSQL_USER"
    return 0
  fi
  if ! "$MYSQL_CLIENT" --no-defaults --protocol=TCP -h127.0.0.1 -P"$MYSQL_PORT" -u"$MYSQL_USER" \
    -p"$MYSQL_PASSWORD" "$MYSQL_DB" -N -e 'SELECT 1' >/dev/null 2>>"$(log_file mysql)"; then
    fail_service mysql "SELECT 1 over TCP 127.0.0.1:$MYSQL_PORT as $MYSQL_USER failed"
    return 0
  fi
  # TLS is offered (not required) on the same port: a session verified with the test CA is encrypted
  local cipher
  cipher=$("$MYSQL_CLIENT" --no-defaults --protocol=TCP -h127.0.0.1 -P"$MYSQL_PORT" -u"$MYSQL_USER" \
    -p"$MYSQL_PASSWORD" --ssl --ssl-ca="$TLS_CA" --ssl-verify-server-cert "$MYSQL_DB" -N \
    -e "SHOW SESSION STATUS LIKE 'Ssl_cipher'" 2>>"$(log_file mysql)" | cut -f2) || cipher=''
  if [[ -z $cipher ]]; then
    fail_service mysql "no TLS session on 127.0.0.1:$MYSQL_PORT verified with $TLS_CA (a server started by an older services.sh has no TLS, one started before .state/tls was made again has another certificate: restart it with \`scripts/services.sh down mysql\` then \`up mysql\`)"
    return 0
  fi
  log "mysql ready on 127.0.0.1:$MYSQL_PORT ($("$MYSQL_CLIENT" --no-defaults --socket="$sock" -uroot -N -e 'SELECT VERSION()' 2>/dev/null), TLS $cipher) after $(($(now) - t0)) s"
}

# ---- stop -----------------------------------------------------------------------------------
stop_one() { # stop_one NAME
  local name=$1 pid f t0
  f=$(pid_file "$name")
  if ! pid=$(running_pid "$name"); then
    rm -f "$f"
    log "$name: not running"
    return 0
  fi
  t0=$(now)
  log "$name: stopping pid $pid (SIGTERM)"
  kill -TERM "$pid" 2>/dev/null || true
  while ours_alive "$pid" "$name"; do
    if (($(now) - t0 >= STOP_TIMEOUT)); then
      log "$name: still running after ${STOP_TIMEOUT} s, SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 1
      break
    fi
    sleep 0.5
  done
  rm -f "$f"
  log "$name: stopped after $(($(now) - t0)) s"
}

# The standalone master stops slowly on SIGTERM (its in-JVM ZooKeeper goes first and the region
# server then retries ZooKeeper calls for ~20 s): ask the cluster to shut down cleanly first
# (what stop-hbase.sh does), then fall back to signals.
# A master still initializing ignores that request, so it is made only when the REST gateway
# (stopped after this check) showed an initialized master.
stop_hbase_master() { # stop_hbase_master GRACEFUL(0|1)
  local pid t0 d=$STATE/hbase
  if ! pid=$(running_pid hbase-master); then stop_one hbase-master; return 0; fi
  if (($1)) && [[ -d $HBASE_LIB && -f $d/conf/hbase-site.xml ]] && port_open "$HBASE_ZK_PORT"; then
    need_java
    t0=$(now)
    log "hbase-master: asking the cluster to shut down (pid $pid)"
    timeout 45 "$JAVA" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
      "-Dlog4j2.configurationFile=file:$d/conf/log4j2.properties" "${HBASE_JDK17_OPTS[@]}" \
      -cp "$d/conf:$HBASE_LIB/*" org.apache.hadoop.hbase.master.HMaster stop --shutDownCluster \
      >>"$d/logs/stop.log" 2>&1 || log "hbase-master: the shutdown request failed (see $d/logs/stop.log)"
    while ours_alive "$pid" hbase-master; do
      (($(now) - t0 >= STOP_TIMEOUT)) && break
      sleep 0.5
    done
    if ! ours_alive "$pid" hbase-master; then
      rm -f "$(pid_file hbase-master)"
      log "hbase-master: stopped after $(($(now) - t0)) s"
      return 0
    fi
  fi
  stop_one hbase-master
}

# ---- status and env -------------------------------------------------------------------------
STATUS_DOWN=0
status_line() { # status_line NAME PORT ENDPOINT
  local name=$1 port=$2 ep=$3 pid state
  if pid=$(running_pid "$name"); then
    if port_open "$port"; then state=up; else state=starting; STATUS_DOWN=1; fi
  else
    pid=-
    state=down
    STATUS_DOWN=1
    if port_open "$port"; then state="down (port $port held by another process)"; fi
  fi
  printf '%-14s %-8s %-8s %s\n' "$name" "$state" "$pid" "$ep"
}

show_status() {
  local s
  printf '%-14s %-8s %-8s %s\n' SERVICE STATE PID ENDPOINT
  for s in "$@"; do
    case $s in
      kafka)
        if kafka_external; then printf '%-14s %-8s %-8s %s\n' kafka external - "$KAFKA_BROKERS"
        else status_line kafka "$KAFKA_PORT" "$LOCAL_KAFKA_BROKERS (sasl $LOCAL_KAFKA_SASL_BROKERS, tls $LOCAL_KAFKA_TLS_BROKERS, controller 127.0.0.1:$KAFKA_CONTROLLER_PORT)"; fi ;;
      hbase)
        if hbase_external; then printf '%-14s %-8s %-8s %s\n' hbase external - "thrift ${HBASE_THRIFT:-?} rest ${HBASE_REST:-?}"
        else
          status_line hbase-master "$HBASE_ZK_PORT" "zk $LOCAL_HBASE_ZK, master 127.0.0.1:$HBASE_MASTER_PORT, regionserver 127.0.0.1:$HBASE_RS_PORT"
          status_line hbase-thrift "$HBASE_THRIFT_PORT" "$LOCAL_HBASE_THRIFT (thrift2, binary protocol, unframed)"
          status_line hbase-rest "$HBASE_REST_PORT" "$LOCAL_HBASE_REST"
        fi ;;
      mysql)
        if mysql_external; then printf '%-14s %-8s %-8s %s\n' mysql external - "${MYSQL_URL%%@*}@...";
        else status_line mysql "$MYSQL_PORT" "127.0.0.1:$MYSQL_PORT (tls offered, socket $(mysql_socket))"; fi ;;
    esac
  done
}

env_lines() {
  emit() { printf 'export %s=%q\n' "$1" "$2"; }
  if kafka_external; then
    emit KAFKA_BROKERS "$KAFKA_BROKERS"
    [[ -n ${KAFKA_SASL_BROKERS:-} ]] && emit KAFKA_SASL_BROKERS "$KAFKA_SASL_BROKERS"
    [[ -n ${KAFKA_SASL_USER:-} ]] && emit KAFKA_SASL_USER "$KAFKA_SASL_USER"
    [[ -n ${KAFKA_SASL_PASSWORD:-} ]] && emit KAFKA_SASL_PASSWORD "$KAFKA_SASL_PASSWORD"
    [[ -n ${KAFKA_TLS_BROKERS:-} ]] && emit KAFKA_TLS_BROKERS "$KAFKA_TLS_BROKERS"
  else
    emit KAFKA_BROKERS "$LOCAL_KAFKA_BROKERS"
    emit KAFKA_SASL_BROKERS "$LOCAL_KAFKA_SASL_BROKERS"
    emit KAFKA_SASL_USER "$KAFKA_USER"
    emit KAFKA_SASL_PASSWORD "$KAFKA_PASSWORD"
    emit KAFKA_TLS_BROKERS "$LOCAL_KAFKA_TLS_BROKERS"
  fi
  if hbase_external; then
    [[ -n ${HBASE_THRIFT:-} ]] && emit HBASE_THRIFT "$HBASE_THRIFT"
    [[ -n ${HBASE_REST:-} ]] && emit HBASE_REST "$HBASE_REST"
    [[ -n ${HBASE_ZK:-} ]] && emit HBASE_ZK "$HBASE_ZK"
  else
    emit HBASE_THRIFT "$LOCAL_HBASE_THRIFT"
    emit HBASE_REST "$LOCAL_HBASE_REST"
    emit HBASE_ZK "$LOCAL_HBASE_ZK"
  fi
  if mysql_external; then emit MYSQL_URL "$MYSQL_URL"; else emit MYSQL_URL "$LOCAL_MYSQL_URL"; fi
  # the CA that signed the TLS endpoints: ours when Kafka or MySQL is local, else passed through
  if kafka_external && mysql_external; then
    [[ -n ${TRACEFOLD_TEST_CA_FILE:-} ]] && emit TRACEFOLD_TEST_CA_FILE "$TRACEFOLD_TEST_CA_FILE"
  else
    emit TRACEFOLD_TEST_CA_FILE "$TLS_CA"
  fi
  return 0
}

write_env_file() {
  mkdir -p "$STATE"
  env_lines >"$STATE/services.env.tmp"
  mv -f "$STATE/services.env.tmp" "$STATE/services.env"
}

# ---- main -----------------------------------------------------------------------------------
gateway() { # gateway up|down PORT: an extra Thrift2 gateway of the local HBase
  local action=${1:-} port=${2:-} t0
  [[ ($action == up || $action == down) && $port =~ ^[0-9]+$ ]] || usage
  local name=hbase-thrift-$port
  lock_state
  if [[ $action == down ]]; then
    stop_one "$name"
    return 0
  fi
  hbase_external && die "gateway: needs the local HBase (HBASE_THRIFT/HBASE_REST point elsewhere)"
  running_pid hbase-master >/dev/null || die "gateway: the local HBase is not running (scripts/services.sh up hbase)"
  if running_pid "$name" >/dev/null; then
    log "$name: already running"
  else
    check_port_free "$name" "$port" PORT || exit 1
    hbase_launch "$name" "$HBASE_GATEWAY_HEAP" org.apache.hadoop.hbase.thrift2.ThriftServer -b 127.0.0.1 -p "$port" start
  fi
  t0=$(now)
  until port_open "$port"; do
    if (($(now) - t0 >= 60)) || ! running_pid "$name" >/dev/null; then
      fail_service "$name" "no listener on 127.0.0.1:$port within 60 s"
      exit 1
    fi
    sleep 0.5
  done
  log "$name ready on 127.0.0.1:$port after $(($(now) - t0)) s"
}

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" >&2
  exit 2
}

SVCS=()
select_services() { # select_services NAME...: the services named on the command line, into SVCS
  local s
  (($# == 0)) && set -- kafka hbase mysql
  for s in "$@"; do
    case $s in
      kafka | hbase | mysql) ;;
      mariadb) s=mysql ;;
      all) select_services kafka hbase mysql; continue ;;
      *) die "unknown service '$s' (expected kafka, hbase, mysql)" ;;
    esac
    [[ " ${SVCS[*]} " == *" $s "* ]] || SVCS+=("$s")
  done
}

lock_state() {
  mkdir -p "$STATE"
  exec 9>"$STATE/.services.lock"
  if ! flock -w 900 9; then die "another services.sh holds $STATE/.services.lock"; fi
}

main() {
  local cmd=${1:-}
  (($# > 0)) && shift
  local s
  case $cmd in
    up)
      select_services "$@"
      lock_state
      local t0
      t0=$(now)
      # start everything first (downloads happen here), then wait: the start-ups overlap
      for s in "${SVCS[@]}"; do "${s}_start"; done
      # quickest first, so that each "ready after" is close to the truth
      for s in mysql kafka hbase; do
        [[ " ${SVCS[*]} " == *" $s "* ]] && "${s}_wait"
      done
      write_env_file
      if ((${#FAILED[@]} > 0)); then
        printf '\n[services] FAILED: %s (the others were left as they are; `%s down` stops them)\n' \
          "${FAILED[*]}" "scripts/services.sh" >&2
        exit 1
      fi
      log "up: ${SVCS[*]} ready in $(($(now) - t0)) s; endpoints in $STATE/services.env"
      ;;
    down)
      select_services "$@"
      lock_state
      for s in "${SVCS[@]}"; do
        case $s in
          kafka) if kafka_external; then log "kafka is external: nothing to stop"; else stop_one kafka; fi ;;
          hbase)
            if hbase_external; then log "hbase is external: nothing to stop"; else
              local graceful=0
              if running_pid hbase-master >/dev/null && running_pid hbase-rest >/dev/null &&
                rest_get /namespaces | grep -q '"default"'; then graceful=1; fi
              stop_one hbase-thrift
              stop_one hbase-rest
              local extra
              for extra in "$STATE"/hbase/thrift-*.pid; do
                [[ -e $extra ]] && stop_one "hbase-thrift-$(basename "$extra" .pid | sed 's/^thrift-//')"
              done
              stop_hbase_master "$graceful"
            fi ;;
          mysql) if mysql_external; then log "mysql is external: nothing to stop"; else stop_one mysql; fi ;;
        esac
      done
      ;;
    status)
      select_services "$@"
      show_status "${SVCS[@]}"
      ((STATUS_DOWN == 0)) || exit 3
      ;;
    env)
      (($# == 0)) || usage
      env_lines
      write_env_file
      ;;
    gateway) gateway "$@" ;;
    -h | --help | help) usage ;;
    *) usage ;;
  esac
}

main "$@"
