#!/usr/bin/env bash
# Installs the test peers when missing:
# - Apache Kafka (broker, tools and Java client) from Maven Central, as jars in $SWITCHYARD_KAFKA_HOME
#   (default ~/.cache/switchyard/kafka): the broker every end-to-end test and benchmark runs on;
# - redis-server (Debian): the Redis store of the control plane is tested against a real one;
# - kafka-python for Debian's /usr/bin/python3 (python3-kafka): an independent client;
# - OpenJDK 17 and Maven (Debian), when missing.
# A second run finds everything in place and returns at once.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

command -v java >/dev/null || apt_install openjdk-17-jre-headless
command -v javac >/dev/null || apt_install openjdk-17-jdk-headless
command -v mvn >/dev/null || apt_install maven

# Apache Kafka: every jar of scripts/kafka/pom.xml in one folder; a stamp of the pom makes a second run instant and
# a changed pom (another version) install again.
kafka_home="${SWITCHYARD_KAFKA_HOME:-$HOME/.cache/switchyard/kafka}"
stamp="$(sha256sum "$here/kafka/pom.xml" "$here/kafka/log4j2.properties" | sha256sum | cut -c1-16)"
if [ "$(cat "$kafka_home/.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "installing Apache Kafka into $kafka_home (Maven Central)..."
  rm -rf "$kafka_home"
  mkdir -p "$kafka_home/libs" "$kafka_home/config"
  mvn -q -B -f "$here/kafka/pom.xml" dependency:copy-dependencies -DoutputDirectory="$kafka_home/libs"
  cp "$here/kafka/log4j2.properties" "$kafka_home/config/"
  echo "$stamp" > "$kafka_home/.stamp"
fi
ls "$kafka_home/libs" | grep -E '^kafka_2\.13-.*\.jar$'

command -v redis-server >/dev/null || apt_install redis-server
/usr/bin/python3 -c "import kafka" 2>/dev/null || apt_install python3-kafka

# nisshi (a Kafka-compatible broker) is an optional second broker: SWITCHYARD_TEST_BROKER=nisshi runs the suite on
# it, when `nisshi` is installed (`cargo install nisshi --version 0.8.1 --no-default-features --features dynostore`).
