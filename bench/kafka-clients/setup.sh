#!/usr/bin/env bash
# Installs the Kafka clients the comparison measures into a per-user cache (never into the
# project: a plain `npm install` of tracefold compiles nothing). Then run the scripts with
#   NODE_PATH=$(bash setup.sh --print) node kafkajs.cjs TOPIC N
set -euo pipefail
DIR=${XDG_CACHE_HOME:-$HOME/.cache}/tracefold/kafka-clients
if [[ ${1:-} == --print ]]; then echo "$DIR/node_modules"; exit 0; fi
mkdir -p "$DIR"
cd "$DIR"
[[ -f package.json ]] || npm init -y >/dev/null
if [[ $(id -u) == 0 ]]; then
  apt-get update -qq && apt-get install -y -qq build-essential python3 libssl-dev zlib1g-dev libsasl2-dev liblz4-dev libzstd-dev libcurl4-openssl-dev >/dev/null
fi
npm install --no-audit --no-fund kafkajs@2.2.4 --save-exact
npm install --no-audit --no-fund --foreground-scripts node-rdkafka@3.6.1 --save-exact
# the prebuilt binary is on a host this machine cannot reach, and the default source build
# downloads zlib/OpenSSL/zstd/curl sources: link the bundled librdkafka against the system's
CKJS_LINKING=dynamic npm install --no-audit --no-fund --build-from-source @confluentinc/kafka-javascript@1.10.1 --save-exact
echo "$DIR/node_modules"
