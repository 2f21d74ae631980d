#!/usr/bin/env bash
# schemathesis against netmaster's OpenAPI document (/api/v1/openapi.json): starts a netmaster
# on a free loopback port with a temporary embedded store, generates requests for every
# operation from the document (valid and invalid bodies, paths, queries) and checks that no
# answer is a server error (5xx) and that every answer matches the document (status code,
# content type, body schema). Bounded: MAX_EXAMPLES per operation (default 25) and a time
# budget (default 120 s). Fails on any finding; the netmaster log is printed then.
# Usage: scripts/schemathesis.sh [MAX_EXAMPLES]; SCHEMATHESIS_SEED (default 1: CI runs are
# reproducible; set another to explore), SCHEMATHESIS_MAX_TIME.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=4.32.5 # keep in step with scripts/install-deps.sh
VENV=${XDG_CACHE_HOME:-$HOME/.cache}/contiv-schemathesis-$VERSION
[[ -x $VENV/bin/schemathesis ]] || { echo "schemathesis.sh: no $VENV: bash scripts/install-deps.sh" >&2; exit 1; }
examples=${1:-25}
[[ $examples =~ ^[0-9]+$ && $examples -gt 0 ]] || { echo "usage: $0 [MAX_EXAMPLES per operation]" >&2; exit 2; }

cargo build --quiet --bin netmaster
netmaster=${CARGO_TARGET_DIR:-target}/debug/netmaster
work=$(mktemp -d)
nm_pid=
cleanup() {
  [[ -n $nm_pid ]] && kill "$nm_pid" 2>/dev/null && wait "$nm_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
"$netmaster" --external-address "127.0.0.1:$port" --data-dir "$work/state" --log-level warn \
  >"$work/netmaster.log" 2>&1 &
nm_pid=$!
for _ in $(seq 100); do
  curl -sf "$base/version" >/dev/null && break
  kill -0 "$nm_pid" 2>/dev/null || { cat "$work/netmaster.log" >&2; exit 1; }
  sleep 0.1
done

# True when the JUnit report holds no failed check and only runtime errors of hypothesis itself.
tool_fault_only() {
  /usr/bin/python3 - "$1" <<'PY'
import pathlib, sys, xml.etree.ElementTree as ET
failures, errors = 0, []
for f in pathlib.Path(sys.argv[1]).glob("*.xml"):
    for case in ET.parse(f).getroot().iter("testcase"):
        failures += len(case.findall("failure"))
        errors += [(e.get("message", "") + (e.text or "")) for e in case.findall("error")]
ok = failures == 0 and errors and all("AST constructor recursion depth mismatch" in e for e in errors)
sys.exit(0 if ok else 1)
PY
}

rc=0
# From the temp dir: schemathesis keeps a cache in the working directory.
(cd "$work" && "$VENV/bin/schemathesis" run "$base/api/v1/openapi.json" --url "$base" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples "$examples" --max-time "${SCHEMATHESIS_MAX_TIME:-120}" --seed "${SCHEMATHESIS_SEED:-1}" \
  -H "Accept: application/problem+json" --workers 2 --request-timeout 10 --generation-database none --no-color \
  --report junit --report-dir "$work/report") || rc=$?
if ((rc)) && tool_fault_only "$work/report"; then
  # hypothesis (schemathesis' generator) on CPython 3.11 sometimes trips over its own source
  # parsing ("SystemError: AST constructor recursion depth mismatch") while describing a
  # strategy: a runtime error of the tool, not an answer of ours. Every check passed.
  echo "schemathesis.sh: every check passed; ignoring the tool's own runtime error (hypothesis AST bug)" >&2
  rc=0
fi
if ((rc)); then
  echo "--- netmaster log (last 80 lines)" >&2
  tail -n 80 "$work/netmaster.log" >&2
fi
kill -0 "$nm_pid" 2>/dev/null || { echo "schemathesis.sh: netmaster died" >&2; rc=1; }
exit "$rc"
