#!/usr/bin/env bash
# The OpenTelemetry Collector peer: kafka receiver (otlp_proto) -> servicegraph connector, built
# once from the Go module proxy into the per-user cache, then run bounded on a topic.
#   bench/peers/otelcol/run.sh --brokers B --topic T [--group G] [other flags of main.go]
# One JSON line on stdout; progress on stderr.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
COLLECTOR_VERSION=v0.139.0   # contrib and core release; core stable modules are v1.45.0
SRC_HASH=$(cat "$HERE/go.mod" "$HERE/go.sum" "$HERE"/*.go | sha256sum | cut -c1-12)
DIR=${XDG_CACHE_HOME:-$HOME/.cache}/tracefold/peers/otelcol-$COLLECTOR_VERSION-$SRC_HASH
BIN=$DIR/otelcol-peer
if [[ ! -x $BIN ]]; then
  echo "[otelcol] building $BIN (go $(go env GOVERSION))" >&2
  mkdir -p "$DIR"
  # the proxy's checksum database does not know these contrib modules: go.sum (kept next to
  # the code) pins every hash instead
  (cd "$HERE" && GOSUMDB=off GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "$BIN.tmp" .)
  mv "$BIN.tmp" "$BIN"
  # older builds of this peer (other versions or sources) are no longer used
  find "$(dirname "$DIR")" -mindepth 1 -maxdepth 1 -name 'otelcol-*' ! -path "$DIR" -exec rm -rf {} +
fi
# the harness builds every peer before it times any (the build must not count in a run)
if [[ ${1:-} == --build-only ]]; then exit 0; fi
ARGS=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --brokers|--topic|--group) ARGS+=("-${1#--}" "$2"); shift 2 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
exec "$BIN" "${ARGS[@]}"
