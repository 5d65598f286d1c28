#!/usr/bin/env bash
# Prints the path of a kustomize binary of the pinned version, building it first if this user's
# cache does not have it yet:
#
#   ${XDG_CACHE_HOME:-$HOME/.cache}/tracefold/kustomize-<version>/kustomize
#
# Built from source with `go install` through the Go module proxy (the only way to get it here:
# kustomize's release binaries live on a host the machines cannot reach). The first run takes
# about a minute and a half on 2 cores; later runs only check the binary and print its path.
# Used by test/k8s.test.ts and `npm run k8s:render`.
#
#   KUSTOMIZE_VERSION   override the pinned version (a v5 tag)
#   KUSTOMIZE_BIN       use this binary instead (nothing is built; it must report the version)
set -euo pipefail

version="${KUSTOMIZE_VERSION:-v5.8.1}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/tracefold/kustomize-${version}"
bin="$cache/kustomize"

reports_version() { "$1" version 2>/dev/null | grep -q -- "${version}"; }

if [[ -n "${KUSTOMIZE_BIN:-}" ]]; then
  if ! reports_version "$KUSTOMIZE_BIN"; then
    echo "ensure-kustomize: KUSTOMIZE_BIN=$KUSTOMIZE_BIN does not report ${version}" >&2
    exit 1
  fi
  echo "$KUSTOMIZE_BIN"
  exit 0
fi

if [[ -x "$bin" ]] && reports_version "$bin"; then
  echo "$bin"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "ensure-kustomize: Go is needed to build kustomize ${version} (apt-get install golang-go, or set KUSTOMIZE_BIN)" >&2
  exit 1
fi

mkdir -p "$cache"
# Two builds at once (parallel test workers, two shells) must not leave a half-written binary:
# build into a private directory, then rename, which is atomic on one file system.
tmp="$(mktemp -d "$cache/build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "ensure-kustomize: building kustomize ${version} with $(go version | cut -d' ' -f3) (once per user and version)" >&2
# -p 1: the machines have 2 cores shared with other work; the build is not worth starving them
GOBIN="$tmp" GOFLAGS="${GOFLAGS:-} -p=1" go install "sigs.k8s.io/kustomize/kustomize/v5@${version}" >&2
mv -f "$tmp/kustomize" "$bin"
if ! reports_version "$bin"; then
  echo "ensure-kustomize: the built binary does not report ${version}: $("$bin" version 2>&1)" >&2
  exit 1
fi
echo "$bin"
