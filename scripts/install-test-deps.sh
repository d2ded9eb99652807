#!/usr/bin/env bash
# Installs the test peers when missing: redis-server (Debian) and nisshi (the Kafka-compatible test
# broker, from crates.io; about 11 minutes to build the first time).
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
NISSHI_VERSION=0.8.1

if ! nisshi --version 2>/dev/null | grep -qF "$NISSHI_VERSION"; then
  echo "installing nisshi $NISSHI_VERSION (test broker)..."
  cargo install nisshi --version "$NISSHI_VERSION" --locked --ignore-rust-version \
    --no-default-features --features dynostore
fi
nisshi --version

# redis-server (the Redis store of the control plane is tested against a real one)
command -v redis-server || (apt-get update && apt-get install -y redis-server)

# kafka-python for /usr/bin/python3 (Debian's python3-kafka): an independent
# client that checks what Switchyard commits and consumes what it produces.
/usr/bin/python3 -c "import kafka" 2>/dev/null || (apt-get update && apt-get install -y python3-kafka)
