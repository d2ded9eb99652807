#!/usr/bin/env bash
# Runs end-to-end tests again and again, to show that they pass every time
# and not by luck: each run is a new test process with its own broker, as in
# the suite (README, "Run the tests").
#
#   scripts/repeat-tests.sh 10 static_membership group_protocol   # 10 runs of the tests whose names contain these
#
# Prints one line per run (passed, failed, seconds) and the names of the
# tests that failed in any run; exits non-zero when one did. Expects what
# scripts/test.sh installs (it builds, but does not install).
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
runs="${1:?usage: scripts/repeat-tests.sh RUNS FILTER...}"
shift
threads="${SWITCHYARD_TEST_THREADS:-3}"
cargo build --features test-probe --tests --bins -q || exit 2
log="$(mktemp -d)"
failed_any=0
for i in $(seq 1 "$runs"); do
  start=$(date +%s)
  cargo test -q --features test-probe --test e2e -- --test-threads="$threads" "$@" \
    > "$log/run-$i.log" 2>&1
  rc=$?
  took=$(( $(date +%s) - start ))
  summary=$(grep -E '^test result' "$log/run-$i.log" | tail -1)
  echo "run $i: exit $rc, ${took}s: ${summary:-no result line}"
  if [ "$rc" -ne 0 ]; then
    failed_any=1
    grep -E '^    e2e::' "$log/run-$i.log" | sed 's/^/  failed: /'
  fi
done
echo "logs: $log"
exit "$failed_any"
