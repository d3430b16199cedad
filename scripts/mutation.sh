#!/usr/bin/env bash
# Mutation testing with mutmut of the token lifecycle (broker/grants, the token endpoint and
# the Authlib bridge), SITHS revocation checking and the login flow's CSRF checks, against
# the tests that guard them ([tool.mutmut] in pyproject.toml). Not part of CI: a full run
# takes hours on two cores. Results accumulate in mutants/ (a rerun resumes).
#
#   bash scripts/mutation.sh              # run, then list the surviving mutants
#   bash scripts/mutation.sh results      # list them again
#   python3 -m mutmut show <name>         # the diff of one mutant
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --disable-pip-version-check "mutmut==3.8.1"
if [ "${1:-run}" = "results" ]; then
    exec python3 -m mutmut results
fi
# One Redis for every mutant's test run (a fork cannot share a server thread).
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
dir=$(mktemp -d)
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
    --daemonize yes --pidfile "$dir/redis.pid" >/dev/null
trap 'kill "$(cat "$dir/redis.pid")" 2>/dev/null || true; rm -rf "$dir"' EXIT
export REDIS_URL="redis://127.0.0.1:$port/0"
python3 -m mutmut run --max-children "${MUTMUT_CHILDREN:-1}"
python3 -m mutmut results
