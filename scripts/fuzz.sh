#!/usr/bin/env bash
# Fuzzing: runs every cargo-fuzz target in fuzz/ for SECONDS each (default 20) from its
# committed seeds (fuzz/seeds/<target>) plus what earlier runs found (fuzz/corpus/<target>,
# not committed), and fails if any target crashes; the crashing input is left in
# fuzz/artifacts/<target>/ (replay: cargo +nightly fuzz run <target> <file>). Needs the nightly
# toolchain and cargo-fuzz (scripts/install-deps.sh installs it). Called by scripts/test.sh as
# root; docs/FUZZING.md says what each target holds and how a crash becomes a regression test.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-20}
[[ $secs =~ ^[0-9]+$ && $secs -gt 0 ]] || { echo "usage: $0 [SECONDS per target]" >&2; exit 2; }
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz.sh: the nightly toolchain is missing (rustup toolchain list)" >&2
  exit 1
fi
command -v cargo-fuzz >/dev/null || { echo "fuzz.sh: cargo-fuzz is missing: bash scripts/install-deps.sh" >&2; exit 1; }

start=$(date +%s)
# One build of every target (release, debug assertions on, AddressSanitizer: cargo-fuzz's defaults).
cargo +nightly fuzz build
built=$(date +%s)
echo "fuzz.sh: built in $((built - start)) s; ${secs} s per target"

failed=()
for t in $(cargo +nightly fuzz list); do
  mkdir -p "corpus/$t"
  # -timeout: one input taking over 10 s is a hang, reported like a crash.
  if ! cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>"corpus/$t.log"; then
    tail -n 60 "corpus/$t.log" >&2
    failed+=("$t")
  fi
  echo "fuzz.sh: $t: $(grep -E '^Done' "corpus/$t.log" || echo 'no summary')"
done
echo "fuzz.sh: done in $(( $(date +%s) - start )) s"
if ((${#failed[@]})); then
  echo "fuzz.sh: CRASHED: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
