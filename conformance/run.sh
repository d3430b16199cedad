#!/usr/bin/env bash
# Runs OpenID Foundation conformance-suite plans against this project's broker.
#
#   SUITE_SRC=/path/to/conformance-suite bash conformance/run.sh [PLAN ...]
#
# PLAN: a plan name below (or its short name), optionally with the suite's own
# [variant=value] / :module,module syntax. Default: the four certification plans and the
# private_key_jwt variant of the Basic plan. See conformance/README.md.
set -euo pipefail

KIT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROJECT=$(cd "$KIT/.." && pwd)
cd "$PROJECT"
CACHE=${OIDF_KIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/oidf-kit}
SUITE_TAG=release-v5.1.43
SUITE_HOST=localhost.emobix.co.uk
SUITE_URL=https://$SUITE_HOST:8443
PYTHON=${PYTHON:-python3.11}

say() { printf '%s\n' "$*" >&2; }
die() { say "conformance: $*"; exit 2; }

# ---- plans: name -> "suite plan spec|config template" ------------------------------
# The Basic certification plan fixes client_secret_basic; its private_key_jwt variant is the
# general OP plan with private_key_jwt, limited to the Basic plan's modules (plus the
# client-assertion one). Not in it: oidcc-server-rotate-keys (needs someone to rotate the
# OP's keys between its two steps; the suite's own runner says it always fails unattended),
# the request_uri, redirect_uri-variation and dynamic-registration modules.
PKJ_BASIC_MODULES=oidcc-discovery-endpoint-verification,oidcc-server,oidcc-response-type-missing,\
oidcc-userinfo-get,oidcc-userinfo-post-header,oidcc-userinfo-post-body,\
oidcc-ensure-request-without-nonce-succeeds-for-code-flow,oidcc-scope-profile,oidcc-scope-email,\
oidcc-scope-address,oidcc-scope-phone,oidcc-scope-all,oidcc-alternate-happy-flow,oidcc-display-page,\
oidcc-display-popup,oidcc-prompt-login,oidcc-prompt-none-not-logged-in,oidcc-prompt-none-logged-in,\
oidcc-max-age-1,oidcc-max-age-10000,oidcc-ensure-request-with-unknown-parameter-succeeds,\
oidcc-id-token-hint,oidcc-login-hint,oidcc-ui-locales,oidcc-claims-locales,\
oidcc-ensure-request-with-acr-values-succeeds,oidcc-codereuse,oidcc-codereuse-30seconds,\
oidcc-ensure-registered-redirect-uri,oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported,\
oidcc-claims-essential,oidcc-ensure-request-object-with-redirect-uri,oidcc-refresh-token,\
oidcc-ensure-request-with-valid-pkce-succeeds,oidcc-ensure-client-assertion-with-iss-aud-succeeds
declare -A PLAN_SPEC=(
  [oidcc-basic-certification-test-plan]='oidcc-basic-certification-test-plan[server_metadata=discovery][client_registration=static_client]|suite-basic.json.in'
  [oidcc-config-certification-test-plan]='oidcc-config-certification-test-plan|suite-basic.json.in'
  [oidcc-rp-initiated-logout-certification-test-plan]='oidcc-rp-initiated-logout-certification-test-plan[response_type=code][client_registration=static_client]|suite-rp-logout.json.in'
  [oidcc-backchannel-rp-initiated-logout-certification-test-plan]='oidcc-backchannel-rp-initiated-logout-certification-test-plan[response_type=code][client_registration=static_client]|suite-backchannel-logout.json.in'
  [oidcc-test-plan]="oidcc-test-plan[response_type=code][client_auth_type=private_key_jwt][response_mode=default][client_registration=static_client]:$PKJ_BASIC_MODULES|suite-pkj.json.in"
)
declare -A PLAN_ALIAS=(
  [basic]=oidcc-basic-certification-test-plan
  [config]=oidcc-config-certification-test-plan
  [rp-logout]=oidcc-rp-initiated-logout-certification-test-plan
  [backchannel-logout]=oidcc-backchannel-rp-initiated-logout-certification-test-plan
  [pkj]=oidcc-test-plan
)
DEFAULT_PLANS=(oidcc-basic-certification-test-plan oidcc-config-certification-test-plan
  oidcc-rp-initiated-logout-certification-test-plan oidcc-backchannel-rp-initiated-logout-certification-test-plan
  oidcc-test-plan)

case "${1:-}" in -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0;; esac
[ $# -gt 0 ] || set -- "${DEFAULT_PLANS[@]}"
PLANS=() SPECS=() CONFIGS=()
for arg in "$@"; do
  base=${arg%%[\[:]*}; rest=${arg#"$base"}
  base=${PLAN_ALIAS[$base]:-$base}
  entry=${PLAN_SPEC[$base]:-} || true
  [ -n "$entry" ] || die "unknown plan '$arg' (known: ${!PLAN_SPEC[*]}; short: ${!PLAN_ALIAS[*]})"
  spec=${entry%%|*}
  case "$rest" in
    "") ;;
    :*) spec=${spec%%:*}$rest ;;         # module selection, default variants
    *)  spec=$base$rest ;;               # caller's own variants (and modules)
  esac
  PLANS+=("$base") SPECS+=("$spec") CONFIGS+=("${entry#*|}")
done

# ---- prerequisites -------------------------------------------------------------------
[ -f pyproject.toml ] || [ -f setup.py ] || die "run this from the project root (no pyproject.toml in $PROJECT)"
[ -n "${SUITE_SRC:-}" ] || die "set SUITE_SRC to a clone of github.com/openid-certification/conformance-suite at $SUITE_TAG"
SUITE_SRC=$(cd "$SUITE_SRC" && pwd) || die "SUITE_SRC: no such directory"
[ -f "$SUITE_SRC/scripts/run-test-plan.py" ] || die "SUITE_SRC=$SUITE_SRC has no scripts/run-test-plan.py"
command -v java >/dev/null || die "java (17) not found"
JAVA_MAJOR=$(java -version 2>&1 | sed -n '1s/.*version "\([0-9]*\).*/\1/p')
[ "${JAVA_MAJOR:-0}" -ge 17 ] 2>/dev/null || die "Java 17 or newer needed (java -version says ${JAVA_MAJOR:-?})"
command -v "$PYTHON" >/dev/null || PYTHON=python3
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "Python 3.11+ needed (set PYTHON=...)"
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
[ -x "$NGINX" ] || die "nginx not found (apt-get install nginx)"
KITPY() { "$PYTHON" "$KIT/lib/kit.py" "$@"; }

if [ "$(getent ahostsv4 "$SUITE_HOST" 2>/dev/null | awk 'NR==1{print $1}')" != 127.0.0.1 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "127.0.0.1 $SUITE_HOST" >> /etc/hosts; say "added '127.0.0.1 $SUITE_HOST' to /etc/hosts"
  else
    die "$SUITE_HOST must resolve to 127.0.0.1: add '127.0.0.1 $SUITE_HOST' to /etc/hosts (needs root)"
  fi
fi
KITPY port-free 8443 || die "port 8443 is in use; the suite's https front must listen there (see: ss -ltnp 'sport = :8443')"

mkdir -p "$CACHE"
T0=$(date +%s)

# ---- build (cached): suite jar, Mongo stand-in, project venv ---------------------------
build_suite() {
  if [ -n "${SUITE_JAR:-}" ]; then
    [ -f "$SUITE_JAR" ] || die "SUITE_JAR=$SUITE_JAR does not exist"
    JAR=$SUITE_JAR; return
  fi
  git -C "$SUITE_SRC" rev-parse HEAD >/dev/null 2>&1 || die "SUITE_SRC must be a git clone (the build reads its git metadata)"
  local commit tag key dir log
  commit=$(git -C "$SUITE_SRC" rev-parse HEAD)
  tag=$(git -C "$SUITE_SRC" describe --tags --exact-match HEAD 2>/dev/null || echo "not a tag")
  [ "$tag" = "$SUITE_TAG" ] || say "warning: SUITE_SRC is at $commit ($tag), the kit is made for $SUITE_TAG"
  key=$(cat <(echo "$commit") "$KIT/build.patch" | sha256sum | cut -c1-16)
  dir=$CACHE/suite/$key; JAR=$dir/fapi-test-suite.jar
  [ -f "$JAR" ] && return
  command -v mvn >/dev/null || die "mvn not found (needed once to build the suite)"
  log=$CACHE/suite/$key.build.log
  say "building the conformance suite $tag (once; 10-20 min on 2 cores), log: $log"
  rm -rf "$dir.src"; mkdir -p "$CACHE/suite"
  git clone -q --no-checkout "$SUITE_SRC" "$dir.src"
  git -C "$dir.src" -c advice.detachedHead=false checkout -q "$commit"
  git -C "$dir.src" apply "$KIT/build.patch" || die "build.patch does not apply to $commit"
  (cd "$dir.src" && mvn -B -DskipTests package) > "$log" 2>&1 || die "suite build failed, see $log"
  mkdir -p "$dir"; mv "$dir.src/target/fapi-test-suite.jar" "$JAR"; rm -rf "$dir.src"
}

build_mongo() {
  local key log
  key=$(cat "$KIT/mongo-sub/pom.xml" "$KIT/mongo-sub/src/main/java/oidf/MongoSub.java" | sha256sum | cut -c1-16)
  MONGO_DIR=$CACHE/mongo/$key
  [ -f "$MONGO_DIR/classes/oidf/MongoSub.class" ] && return
  command -v mvn >/dev/null || die "mvn not found (needed once to fetch the Mongo stand-in)"
  log=$CACHE/mongo/$key.build.log
  say "building the MongoDB stand-in (once), log: $log"
  rm -rf "$MONGO_DIR"; mkdir -p "$MONGO_DIR"; cp -r "$KIT/mongo-sub/." "$MONGO_DIR/src-tree"
  { (cd "$MONGO_DIR/src-tree" && mvn -B dependency:copy-dependencies -DoutputDirectory="$MONGO_DIR/lib") &&
    javac --release 17 -d "$MONGO_DIR/classes" -cp "$MONGO_DIR/lib/*" "$MONGO_DIR/src-tree/src/main/java/oidf/MongoSub.java"
  } > "$log" 2>&1 || { rm -rf "$MONGO_DIR/classes"; die "Mongo stand-in build failed, see $log"; }
}

build_venv() {
  local key stamp
  key=$(echo "$PROJECT" | sha256sum | cut -c1-12)
  VENV=$CACHE/venv/$(basename "$PROJECT")-$key
  stamp=$({ cat pyproject.toml setup.py setup.cfg 2>/dev/null || true; } | sha256sum | cut -c1-16)
  [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.kit-stamp" 2>/dev/null)" = "$stamp" ] && return
  say "installing the project into $VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q -e . httpx pyparsing > "$VENV.log" 2>&1 || die "pip install failed, see $VENV.log"
  echo "$stamp" > "$VENV/.kit-stamp"
}

build_suite; build_mongo; build_venv
say "suite jar: $JAR"
# Throwaway TLS certificate and private_key_jwt client keys, made once (never in git).
KEYS=$CACHE/keys
"$VENV/bin/python" "$KIT/lib/keys.py" "$KEYS" || die "could not make the test keys in $KEYS"

# ---- run directory, ports, configs -------------------------------------------------------
RESULTS=${OIDF_RESULTS_DIR:-$CACHE/results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$RESULTS"; RESULTS=$(cd "$RESULTS" && pwd)
RUN=$RESULTS/run
mkdir -p "$RUN/nginx" "$RUN/config" "$RESULTS/logs" "$RESULTS/export"
: > "$RESULTS/summary.txt"
read -r MONGO_PORT BROKER_PORT BROKER_TLS_PORT SUITE_PORT METRICS_PORT < <(KITPY free-ports 5) \
  || die "no free ports in 27000-27999"
VARS=(RUN="$RUN" KEYS="$KEYS" BROKER_PORT="$BROKER_PORT" BROKER_TLS_PORT="$BROKER_TLS_PORT"
      SUITE_PORT="$SUITE_PORT" METRICS_PORT="$METRICS_PORT")
cp "$KIT/templates/authz.yaml" "$RUN/authz.yaml"
KITPY render "$KIT/templates/broker.yaml.in" "$RUN/broker.yaml" "$KEYS" "${VARS[@]}"
KITPY render "$KIT/templates/nginx.conf.in" "$RUN/nginx.conf" "$KEYS" "${VARS[@]}"
for t in "$KIT"/templates/suite-*.json.in; do
  n=$(basename "$t" .in); KITPY render "$t" "$RUN/config/$n" "$KEYS" "${VARS[@]}"
done
# the broker POSTs back-channel logout tokens to the suite over https: trust the kit's cert
{ cat /etc/ssl/certs/ca-certificates.crt 2>/dev/null || true; cat "$KEYS/tls.crt"; } > "$RUN/ca-bundle.pem"
"$VENV/bin/broker" check-config --config "$RUN/broker.yaml" > "$RESULTS/logs/broker-check.log" 2>&1 \
  || { cat "$RESULTS/logs/broker-check.log" >&2; die "the broker rejected the kit's config"; }

# ---- start everything, stop it by PID on exit -------------------------------------------
PIDS=()
stop_all() {
  local rc=$? pid i
  trap - EXIT INT TERM
  for ((i=${#PIDS[@]}-1; i>=0; i--)); do kill -TERM "${PIDS[i]}" 2>/dev/null || true; done
  for i in $(seq 1 30); do
    local alive=0
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break; sleep 0.5
  done
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  [ ${#PIDS[@]} = 0 ] || say "stopped ${#PIDS[@]} processes (${PIDS[*]}); results: $RESULTS"
  exit $rc
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start() {  # start NAME CMD...: background, log to logs/NAME.log, remember PID
  local name=$1; shift
  "$@" > "$RESULTS/logs/$name.log" 2>&1 &
  PIDS+=($!); echo $! > "$RUN/$name.pid"
}
ready() {  # ready NAME URL SECONDS
  KITPY wait-url "$2" "$3" "$(cat "$RUN/$1.pid")" || { tail -n 30 "$RESULTS/logs/$1.log" >&2; die "$1 did not start (log: $RESULTS/logs/$1.log)"; }
}

say "starting: mongo :$MONGO_PORT, broker :$BROKER_PORT (https :$BROKER_TLS_PORT), suite :$SUITE_PORT (https :8443)"
start mongo java -Xmx1g -cp "$MONGO_DIR/lib/*:$MONGO_DIR/classes" oidf.MongoSub "$MONGO_PORT"
(cd "$RUN" && SSL_CERT_FILE="$RUN/ca-bundle.pem" exec "$VENV/bin/broker" serve --config "$RUN/broker.yaml" \
   --host 127.0.0.1 --port "$BROKER_PORT") > "$RESULTS/logs/broker.log" 2>&1 &
PIDS+=($!); echo $! > "$RUN/broker.pid"
start nginx "$NGINX" -e "$RUN/nginx/error.log" -c "$RUN/nginx.conf" -p "$RUN/nginx/"
(cd "$RUN" && exec java ${SUITE_JAVA_OPTS:--Xmx3g} -jar "$JAR" \
   --server.port="$SUITE_PORT" --server.address=127.0.0.1 \
   --fintechlabs.devmode=true --fintechlabs.startredir=false \
   --fintechlabs.base_url="$SUITE_URL" --fintechlabs.base_mtls_url="$SUITE_URL" \
   --spring.data.mongodb.uri="mongodb://127.0.0.1:$MONGO_PORT/test_suite") > "$RESULTS/logs/suite.log" 2>&1 &
PIDS+=($!); echo $! > "$RUN/suite.pid"

ready broker "http://127.0.0.1:$BROKER_PORT/.well-known/openid-configuration" 60
ready nginx "https://localhost:$BROKER_TLS_PORT/.well-known/openid-configuration" 30
ready suite "$SUITE_URL/api/runner/available" 300
say "ready after $(( $(date +%s) - T0 )) s"

# ---- run the plans -----------------------------------------------------------------------
export CONFORMANCE_SERVER=$SUITE_URL/ CONFORMANCE_SERVER_MTLS=$SUITE_URL/ CONFORMANCE_DEV_MODE=1
FAILED=0
for i in "${!PLANS[@]}"; do
  plan=${PLANS[i]} spec=${SPECS[i]} conf=$RUN/config/$(basename "${CONFIGS[i]}" .in)
  log=$RESULTS/logs/$plan.run-test-plan.log
  say "== $plan (suite output: $log)"
  (cd "$SUITE_SRC/scripts" && "$VENV/bin/python" -u run-test-plan.py --export-dir "$RESULTS/export" "$spec" "$conf") \
    2>&1 | tee "$log" | sed -un 's/.*Running test module: \([^[]*\).*/   running \1/p' >&2 || true
  plan_id=$(sed -n 's/.*Created test plan, new id: \([A-Za-z0-9]*\).*/\1/p' "$log" | sed -n 1p)
  if [ -z "$plan_id" ]; then
    echo "$plan: did not run (see $log)" | tee -a "$RESULTS/summary.txt"; FAILED=1; continue
  fi
  selected=""; case "$spec" in *:*) selected=${spec##*:} ;; esac
  KITPY results "$SUITE_URL" "$RESULTS" "$plan" "$plan_id" "$selected" || FAILED=1
done
say "results: $RESULTS (summary.txt, one .txt/.json per plan, export/*.zip, logs/) after $(( $(date +%s) - T0 )) s"
exit $FAILED
