#!/usr/bin/env bash
# Fails when two modules require different versions of a k8s.io/* module or
# controller-runtime: one Kubernetes minor across the repository.
# Usage: scripts/verify-deps.sh MODULE_DIR...
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
pattern='^(k8s\.io/(api|apimachinery|client-go|apiextensions-apiserver|apiserver|component-base|kubectl|cli-runtime) |sigs\.k8s\.io/controller-runtime )'
declare -A seen
status=0
for m in "$@"; do
  # Modules that provide packages to the build (with tests), as this module
  # resolves alone: the versions it really compiles with.
  deps=$(cd "$root/$m" && GOWORK=off go list -deps -test -f '{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}}{{end}}{{end}}' ./... | sort -u)
  while read -r path version; do
    [ -n "$path" ] || continue
    if [ -n "${seen[$path]:-}" ] && [ "${seen[$path]%% *}" != "$version" ]; then
      echo "version skew: $path is ${seen[$path]} but $version in $m" >&2
      status=1
    elif [ -z "${seen[$path]:-}" ]; then
      seen[$path]="$version ($m)"
    fi
  done < <(grep -E "$pattern" <<<"$deps" || true)
done
if [ "$status" -eq 0 ]; then echo "verify-deps: every module agrees on k8s.io/* and controller-runtime"; fi
exit "$status"
