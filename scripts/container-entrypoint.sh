#!/bin/sh
# The container image's entrypoint: caps the V8 heaps from the container's memory limit, then
# replaces itself with `node bin/tracefold.mjs "$@"` (exec: node is PID 1 and gets SIGTERM itself,
# which starts the drain).
#
#   TRACEFOLD_MEMORY_LIMIT_MIB  the memory limit in MiB (the Deployment sets it from limits.memory
#                               through the downward API); unset or empty: no cap is set
#   TRACEFOLD_HEAP_PERCENT      share of the limit for all V8 heaps together (default 70)
#   TRACEFOLD_RUNTIME_WORKERS   worker threads (a number or auto), as tracefold reads it
#   TRACEFOLD_HOME              where bin/tracefold.mjs is (default: this script's ../)
#
# Why split: --max-old-space-size applies to every isolate, and every worker thread is one. With
# N workers the process has N + 1 heaps, so each gets limit x percent / (N + 1) and together they
# stay within the percentage. The rest of the limit is for memory outside the heaps: the fold's
# state is typed arrays (ArrayBuffers, not counted in any heap), Buffers, native code.
# An explicit --max-old-space-size in NODE_OPTIONS wins: nothing is added then.
#
#   container-entrypoint.sh --print-node-options   prints what it would set, and exits
set -eu

home="${TRACEFOLD_HOME:-$(cd "$(dirname "$0")/.." && pwd)}"

heap_flag() {
  limit="${TRACEFOLD_MEMORY_LIMIT_MIB:-}"
  [ -n "$limit" ] || return 0
  percent="${TRACEFOLD_HEAP_PERCENT:-70}"
  workers="${TRACEFOLD_RUNTIME_WORKERS:-auto}"
  case "$limit" in *[!0-9]*) echo "container-entrypoint: TRACEFOLD_MEMORY_LIMIT_MIB must be a number of MiB, got '$limit'" >&2; exit 2 ;; esac
  case "$percent" in '' | *[!0-9]*) echo "container-entrypoint: TRACEFOLD_HEAP_PERCENT must be a whole number, got '$percent'" >&2; exit 2 ;; esac
  if [ "$percent" -lt 10 ] || [ "$percent" -gt 90 ]; then
    echo "container-entrypoint: TRACEFOLD_HEAP_PERCENT must be between 10 and 90, got $percent" >&2
    exit 2
  fi
  case "$workers" in
    auto | '') workers="$(nproc 2>/dev/null || echo 1)" ;;
    *[!0-9]*) echo "container-entrypoint: TRACEFOLD_RUNTIME_WORKERS must be auto or a number, got '$workers'" >&2; exit 2 ;;
  esac
  [ "$workers" -ge 1 ] || workers=1
  per_isolate=$((limit * percent / 100 / (workers + 1)))
  # below this V8 spends its time collecting; better to fail at start than to crawl
  if [ "$per_isolate" -lt 128 ]; then
    echo "container-entrypoint: ${limit} MiB for ${workers} workers leaves ${per_isolate} MiB of heap per thread (< 128): raise limits.memory or lower limits.cpu" >&2
    exit 2
  fi
  echo "--max-old-space-size=${per_isolate}"
}

case " ${NODE_OPTIONS:-} " in
  *" --max-old-space-size="*) flag="" ;;
  *) flag="$(heap_flag)" ;;
esac
if [ -n "$flag" ]; then
  NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }$flag"
  export NODE_OPTIONS
fi

if [ "${1:-}" = "--print-node-options" ]; then
  echo "${NODE_OPTIONS:-}"
  exit 0
fi
exec node "$home/bin/tracefold.mjs" "$@"
