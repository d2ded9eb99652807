#!/usr/bin/env bash
# The test command: installs what the tests need when it is missing (Apache
# Kafka's jars from Maven Central, redis-server and kafka-python from Debian),
# then runs the whole suite: unit tests, doc tests, and the end-to-end tests
# against a real Apache Kafka broker that the test harness starts on free ports
# (SWITCHYARD_TEST_BROKER=nisshi runs them on nisshi instead).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

bash scripts/install-test-deps.sh

# e2e tests share one broker per test binary and run in parallel; several
# consumer processes share the machine's cores, so keep the thread count sane.
# The end-to-end tests and their consumer process (`switchyard-probe`) are
# behind the `test-probe` feature: without it the shipped binary does not
# depend on the testkit, and the e2e test binary is not built.
threads="${SWITCHYARD_TEST_THREADS:-3}"
cargo build --workspace --all-targets --features test-probe
cargo test --workspace --features test-probe -- --test-threads="$threads"
