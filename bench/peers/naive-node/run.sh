#!/usr/bin/env bash
# The naive Node peer (peer.cjs): its two libraries are installed once into the per-user cache,
# keyed by their versions, so it runs without the project's devDependencies.
#   bench/peers/naive-node/run.sh --brokers B --topic T [--group G]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
KAFKAJS=2.2.4
OTLP_TRANSFORMER=0.212.0
DIR=${XDG_CACHE_HOME:-$HOME/.cache}/tracefold/peers/naive-node-kafkajs$KAFKAJS-otlp$OTLP_TRANSFORMER
if [[ ! -f $DIR/.installed ]]; then
  echo "[naive-node] installing kafkajs@$KAFKAJS @opentelemetry/otlp-transformer@$OTLP_TRANSFORMER into $DIR" >&2
  mkdir -p "$DIR"
  [[ -f $DIR/package.json ]] || echo '{"name":"naive-node-peer","private":true}' >"$DIR/package.json"
  npm install --prefix "$DIR" --no-audit --no-fund --save-exact "kafkajs@$KAFKAJS" "@opentelemetry/otlp-transformer@$OTLP_TRANSFORMER" >&2
  touch "$DIR/.installed"
fi
# the harness installs every peer before it times any (the install must not count in a run)
if [[ ${1:-} == --build-only ]]; then exit 0; fi
NODE_PATH=$DIR/node_modules exec node "$HERE/peer.cjs" "$@"
