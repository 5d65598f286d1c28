#!/usr/bin/env bash
# Installs node-rdkafka (the native Kafka client behind source.kafka.client=node-rdkafka) into a
# per-user cache keyed by its version, never into the project's node_modules: a plain
# `npm install` of tracefold compiles nothing.
#
#   ${XDG_CACHE_HOME:-$HOME/.cache}/tracefold/native/node-rdkafka-<version>/node_modules
#
# node-rdkafka has no prebuilt binary: its install script compiles the bundled librdkafka against
# the system's OpenSSL, SASL, zstd, lz4 and curl (2.5-3.5 minutes on 2 cores). As root, missing
# Debian build packages are installed first. The last line on stdout is the node_modules dir
# (what sources/kafka/native.ts loads from; TRACEFOLD_NODE_RDKAFKA_DIR overrides it at run time).
# A second run only checks the compiled binding and prints the dir.
#
#   --print   print the dir without installing anything
set -euo pipefail

version="3.6.1"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/tracefold/native/node-rdkafka-${version}"
modules="$cache/node_modules"
binding="$modules/node-rdkafka/build/Release/node-librdkafka.node"

if [[ ${1:-} == --print ]]; then
  echo "$modules"
  exit 0
fi

installed() {
  [[ -f "$binding" && -f "$modules/node-rdkafka/package.json" ]] &&
    node -e 'process.exit(require(process.argv[1]).version.replace(/^v/, "") === process.argv[2] ? 0 : 1)' "$modules/node-rdkafka/package.json" "$version" 2>/dev/null
}

if installed; then
  echo "$modules"
  exit 0
fi

fail() {
  echo "ensure-native-kafka: $*" >&2
  exit 1
}

command -v npm >/dev/null 2>&1 || fail "npm is needed to install node-rdkafka@${version}"

# build packages: the compiler, python3 for node-gyp, and the -dev packages librdkafka links
packages=(build-essential python3 libssl-dev zlib1g-dev libsasl2-dev liblz4-dev libzstd-dev libcurl4-openssl-dev)
if command -v dpkg-query >/dev/null 2>&1; then
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
      echo "ensure-native-kafka: installing build packages: ${missing[*]}" >&2
      export DEBIAN_FRONTEND=noninteractive
      { apt-get update -qq && apt-get install -y -qq "${missing[@]}"; } >&2 || fail "apt-get could not install ${missing[*]}"
    else
      echo "ensure-native-kafka: missing build packages (not root, not installing them): ${missing[*]}; the build may fail" >&2
    fi
  fi
fi

mkdir -p "$(dirname "$cache")"
# Two installs at once (two shells, two test runs) must not leave a half-built tree in place:
# build in a private directory beside the cache, then rename it over, atomic on one file system.
tmp="$(mktemp -d "$cache.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "ensure-native-kafka: compiling node-rdkafka@${version} into $cache (once per user and version; about 3 minutes)" >&2
t0=$SECONDS
(
  cd "$tmp"
  printf '{ "name": "tracefold-native-kafka", "private": true }\n' >package.json
  # --foreground-scripts: the node-gyp output goes to stderr, so a failure shows why. No parallel
  # make (JOBS): node-rdkafka's gyp targets race on librdkafka's generated config.h
  env -u JOBS npm install --no-audit --no-fund --no-package-lock --save-exact --foreground-scripts "node-rdkafka@${version}" >&2
) || fail "npm install node-rdkafka@${version} failed (see above; it needs ${packages[*]})"
[[ -f "$tmp/node_modules/node-rdkafka/build/Release/node-librdkafka.node" ]] ||
  fail "npm install finished but build/Release/node-librdkafka.node is missing"
# replace a stale or half-built cache; the cache dir itself only holds node_modules and package.json
rm -rf "$cache.old"
[[ -e "$cache" ]] && mv "$cache" "$cache.old"
mv "$tmp" "$cache"
rm -rf "$cache.old"
trap - EXIT
installed || fail "the installed tree at $cache fails the check"
# loaded from where it stays (the binding must not depend on the build directory's path)
if ! node -e 'const k = require(process.argv[1]); if (!k.KafkaConsumer) process.exit(1)' "$modules/node-rdkafka" >&2; then
  rm -rf "$cache"
  fail "the compiled node-rdkafka does not load (see above)"
fi
echo "ensure-native-kafka: node-rdkafka@${version} ready in $((SECONDS - t0)) s" >&2
echo "$modules"
