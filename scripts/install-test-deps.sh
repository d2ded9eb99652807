#!/usr/bin/env bash
# Installs the test peers when missing:
# - Apache Kafka (broker, tools and Java client) from Maven Central, as jars in $SWITCHYARD_KAFKA_HOME
#   (default ~/.cache/switchyard/kafka): the broker every end-to-end test and benchmark runs on;
# - redis-server (Debian): the Redis store of the control plane is tested against a real one;
# - kafka-python for Debian's /usr/bin/python3 (python3-kafka): an independent client;
# - Apicurio Registry from Maven Central (a Schema Registry with the Confluent API), openssl, and Confluent's Python
#   client with its schema serializers from PyPI (a venv of /usr/bin/python3): the schema tests;
# - kubernetes-validate from PyPI (a venv of /usr/bin/python3): the Kubernetes manifests of examples/;
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

# Apicurio Registry, the Schema Registry of the schema tests (its Confluent-compatible API is at /apis/ccompat/v7): the
# runnable assembly of io.apicurio:apicurio-registry-app from Maven Central (classifier `all`, a tar.gz of a Quarkus
# fast-jar tree started with `java -jar quarkus-run.jar`, in-memory storage) in $SWITCHYARD_APICURIO_HOME (default
# ~/.cache/switchyard/apicurio); the stamp holds the version, so a second run is instant and another version installs
# again. Apicurio 3 needs Java 21 or newer: the testkit takes $SWITCHYARD_REGISTRY_JAVA, else the newest JDK in
# /usr/lib/jvm (the machine's Temurin 25 beside OpenJDK 17).
apicurio_version=3.3.3
apicurio_home="${SWITCHYARD_APICURIO_HOME:-$HOME/.cache/switchyard/apicurio}"
if [ "$(cat "$apicurio_home/.stamp" 2>/dev/null)" != "$apicurio_version" ]; then
  echo "installing Apicurio Registry $apicurio_version into $apicurio_home (Maven Central)..."
  rm -rf "$apicurio_home"
  mkdir -p "$apicurio_home"
  # run outside the work tree: without a pom the plugin leaves its markers in ./${project.basedir}/target
  work="$(mktemp -d)"
  (cd "$work" && mvn -q -B org.apache.maven.plugins:maven-dependency-plugin:3.8.1:unpack \
    -Dartifact="io.apicurio:apicurio-registry-app:$apicurio_version:tar.gz:all" -DoutputDirectory="$apicurio_home")
  rm -rf "$work"
  echo "$apicurio_version" > "$apicurio_home/.stamp"
fi
test -f "$apicurio_home/quarkus-run.jar"
if [ -z "${SWITCHYARD_REGISTRY_JAVA:-}" ] && ! ls /usr/lib/jvm/*/bin/java 2>/dev/null | while read -r j; do
    v="$("$j" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
    [ "${v%%.*}" -ge 21 ] 2>/dev/null && echo "$j"
  done | grep -q .; then
  echo "Apicurio Registry $apicurio_version needs Java 21 or newer: none in /usr/lib/jvm; set SWITCHYARD_REGISTRY_JAVA" >&2
  exit 1
fi

# openssl makes the test CA and server certificate of the registry-over-TLS test.
command -v openssl >/dev/null || apt_install openssl

# The independent producer of the schema tests: Confluent's Python client (confluent-kafka from PyPI, with its
# SchemaRegistryClient and Avro, Protobuf and JSON Schema serializers) in a venv of Debian's /usr/bin/python3 at
# ~/.cache/switchyard/python-serdes; the stamp holds the requirement.
serdes_venv="$HOME/.cache/switchyard/python-serdes"
serdes_req="confluent-kafka[avro,protobuf,json,schemaregistry]==2.16.1"
if [ "$(cat "$serdes_venv/.stamp" 2>/dev/null)" != "$serdes_req" ]; then
  echo "installing $serdes_req into $serdes_venv (PyPI)..."
  /usr/bin/python3 -m venv --help >/dev/null 2>&1 || apt_install python3-venv
  rm -rf "$serdes_venv"
  /usr/bin/python3 -m venv "$serdes_venv" || { apt_install python3-venv; /usr/bin/python3 -m venv "$serdes_venv"; }
  "$serdes_venv/bin/pip" install -q --disable-pip-version-check "$serdes_req"
  echo "$serdes_req" > "$serdes_venv/.stamp"
fi

# The Kubernetes manifests of examples/ are validated against the Kubernetes API's schemas by kubernetes-validate
# (PyPI; the schemas of every Kubernetes version ship inside the package, so it works offline) in a venv of Debian's
# /usr/bin/python3 at ~/.cache/switchyard/k8s-validate; the stamp holds the requirement.
k8s_venv="$HOME/.cache/switchyard/k8s-validate"
k8s_req="kubernetes-validate==1.37.0"
if [ "$(cat "$k8s_venv/.stamp" 2>/dev/null)" != "$k8s_req" ]; then
  echo "installing $k8s_req into $k8s_venv (PyPI)..."
  /usr/bin/python3 -m venv --help >/dev/null 2>&1 || apt_install python3-venv
  rm -rf "$k8s_venv"
  /usr/bin/python3 -m venv "$k8s_venv" || { apt_install python3-venv; /usr/bin/python3 -m venv "$k8s_venv"; }
  "$k8s_venv/bin/pip" install -q --disable-pip-version-check "$k8s_req"
  echo "$k8s_req" > "$k8s_venv/.stamp"
fi
