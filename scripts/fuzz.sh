#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a bounded time (docs/fuzzing.md).
#
#   scripts/fuzz.sh                  # every target, 60 s each
#   FUZZ_SECONDS=30 scripts/fuzz.sh  # 30 s each
#   scripts/fuzz.sh status_record    # only the targets named
#
# Installs cargo-fuzz when missing and needs the nightly toolchain. Each
# target starts from its working corpus (fuzz/corpus/<target>, not in git)
# with the committed seeds (fuzz/seeds/<target>) copied in. Builds with
# debug assertions and overflow checks (`-a`), so an arithmetic overflow is
# a crash too, and without a sanitizer (`-s none`): the code under test is
# safe Rust, and under AddressSanitizer the vendored C libraries of
# rdkafka-sys (zstd, librdkafka) do not configure and link. libFuzzer's
# output goes to fuzz/logs/<target>.log.
#
# Exits non-zero when any target crashed (a panic, an overflow, a timeout
# or out of memory), after printing the input libFuzzer saved under
# fuzz/artifacts/<target>/. Replay one with
#   cargo +nightly fuzz run -a -s none <target> <artifact>
#
# Environment: FUZZ_SECONDS (default 60) per target; CARGO_BUILD_JOBS
# (default 2); FUZZ_TOOLCHAIN (default nightly); FUZZ_SANITIZER (default
# none; cargo-fuzz's `-s`); extra libFuzzer options in
# FUZZ_ARGS (e.g. "-max_len=8192").
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz="$root/fuzz"
seconds="${FUZZ_SECONDS:-60}"
toolchain="${FUZZ_TOOLCHAIN:-nightly}"
sanitizer="${FUZZ_SANITIZER:-none}"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
all_targets=(control_record status_record run_config http_body)

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    targets=("${all_targets[@]}")
fi

if ! cargo "+$toolchain" fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

cd "$root"
mkdir -p "$fuzz/logs"
crashed=()
summary=()
for target in "${targets[@]}"; do
    corpus="$fuzz/corpus/$target"
    seeds="$fuzz/seeds/$target"
    artifacts="$fuzz/artifacts/$target"
    log="$fuzz/logs/$target.log"
    mkdir -p "$corpus" "$artifacts"
    if [[ -d "$seeds" ]]; then
        cp -n "$seeds"/* "$corpus"/ 2>/dev/null || true
    else
        seeds="$corpus"
    fi
    before=$(find "$artifacts" -type f | sort)
    echo "fuzz.sh: $target for ${seconds}s (log: ${log#"$root"/})" >&2
    rc=0
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of options
    cargo "+$toolchain" fuzz run --fuzz-dir "$fuzz" -a -s "$sanitizer" "$target" "$corpus" "$seeds" -- \
        -max_total_time="$seconds" -print_final_stats=1 ${FUZZ_ARGS:-} \
        >"$log" 2>&1 || rc=$?
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
    files=$(find "$corpus" -type f | wc -l)
    summary+=("$target: exit $rc; ${done_line:-no DONE line}; corpus $files files")
    if [[ $rc -ne 0 ]]; then
        crashed+=("$target")
        echo "fuzz.sh: $target FAILED (exit $rc); last lines of its log:" >&2
        tail -n 40 "$log" >&2
        new=$(comm -13 <(echo "$before") <(find "$artifacts" -type f | sort) || true)
        if [[ -n "$new" ]]; then
            echo "fuzz.sh: $target: input(s) saved:" >&2
            echo "$new" >&2
        fi
    fi
done

echo "fuzz.sh: summary (${seconds}s per target)"
printf '  %s\n' "${summary[@]}"
if [[ ${#crashed[@]} -gt 0 ]]; then
    echo "fuzz.sh: crashes in: ${crashed[*]} (inputs under fuzz/artifacts/)" >&2
    exit 1
fi
