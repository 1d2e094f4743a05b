#!/usr/bin/env bash
# Prints the directory holding kube-apiserver, etcd, kube-controller-manager,
# kube-scheduler, kubevirt-admission and cdi-admission
# for the integration tests (KUBEBUILDER_ASSETS), building them first from
# their Go modules (pinned in hack/k8s-binaries/go.mod) if they are not there.
#
# A KUBEBUILDER_ASSETS already set wins, so `setup-envtest` users keep their
# habit. Builds nothing that is already built. Progress goes to stderr; stdout
# carries only the directory.
set -euo pipefail
if [ -n "${KUBEBUILDER_ASSETS:-}" ]; then
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi
root=$(cd "$(dirname "$0")/.." && pwd)
mod=$root/hack/k8s-binaries
k8s_version=$(cd "$mod" && GOWORK=off go list -m -f '{{.Version}}' k8s.io/kubernetes)
dir=$root/bin/k8s/$k8s_version
mkdir -p "$dir"
# Stamp the Kubernetes version so the API server reports it (Helm checks a
# chart's kubeVersion against it); without it the binaries say v0.0.0.
minor=${k8s_version#v*.}
minor=${minor%%.*}
ldflags="-s -X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
build() { # name package
  if [ -x "$dir/$1" ]; then return; fi
  echo "building $1 ($2) into $dir ..." >&2
  (cd "$mod" && GOWORK=off CGO_ENABLED=0 go build -trimpath -ldflags="$ldflags" -o "$dir/$1.tmp" "$2")
  mv "$dir/$1.tmp" "$dir/$1"
}
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
build kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler
build etcd ./cmd/etcd
# KubeVirt's and CDI's own admission servers for the sandbox (and their
# CRDs for scripts/gen-test-crds.sh), from the modules hack/kubevirt-admission
# (kubevirt.io/kubevirt) and hack/cdi-admission
# (kubevirt.io/containerized-data-importer); rebuilt when a file there is
# newer than the binary. A failed build leaves <name>.unavailable holding
# why: the sandbox then runs without that server and says so (it fails when
# a binary is neither there nor marked unavailable). On 2 cores each takes
# several minutes the first time (see test/crds/README.md).
build_admission() { # name
  local src=$root/hack/$1 bin=$dir/$1
  if [ -x "$bin" ] && [ -z "$(find "$src" -newer "$bin" -print -quit)" ]; then return; fi
  echo "building $1 (hack/$1) into $dir ..." >&2
  rm -f "$bin.unavailable"
  if (cd "$src" && GOWORK=off CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$bin.tmp.$$" .) >"$bin.build.log" 2>&1; then
    mv "$bin.tmp.$$" "$bin"
    rm -f "$bin.build.log"
  else
    rm -f "$bin" "$bin.tmp.$$"
    tail -20 "$bin.build.log" >"$bin.unavailable"
    echo "WARNING: $1 could not be built (see $bin.build.log); the sandbox will run without it" >&2
  fi
}
build_admission kubevirt-admission
build_admission cdi-admission
echo "$dir"
