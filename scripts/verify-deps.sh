#!/usr/bin/env bash
# Fails when two modules require different versions of a k8s.io/* module or
# controller-runtime: one Kubernetes minor across the repository.
# Usage: scripts/verify-deps.sh MODULE_DIR...
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
declare -A seen
status=0
for m in "$@"; do
  while read -r path version; do
    key=$path
    if [ -n "${seen[$key]:-}" ] && [ "${seen[$key]%% *}" != "$version" ]; then
      echo "version skew: $path is ${seen[$key]} but $version in $m" >&2
      status=1
    else
      seen[$key]="$version ($m)"
    fi
  done < <(cd "$root/$m" && GOWORK=off go list -m -f '{{if not .Main}}{{.Path}} {{.Version}}{{end}}' all 2>/dev/null |
    grep -E '^(k8s\.io/(api|apimachinery|client-go|apiextensions-apiserver|apiserver|component-base|kubectl|cli-runtime) |sigs\.k8s\.io/controller-runtime )' || true)
done
if [ "$status" -eq 0 ]; then echo "verify-deps: every module agrees on k8s.io/* and controller-runtime"; fi
exit "$status"
