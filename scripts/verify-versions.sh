#!/usr/bin/env bash
# Checks that the Go modules under hack/ that build a cluster component pin
# the version scripts/versions.env names for it (make lint). Reads go.mod
# files only: no network, no module cache.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck disable=SC1091 # a data file of NAME=value lines
. "$ROOT/scripts/versions.env"
fail=0
# pin DIR MODULE VERSION: hack/DIR/go.mod requires MODULE at VERSION.
pin() {
  local got
  got=$(awk -v m="$2" '($1 == m && $2 ~ /^v/) {print $2; exit} ($1 == "require" && $2 == m) {print $3; exit}' "$ROOT/hack/$1/go.mod")
  if [ "$got" != "$3" ]; then
    echo "verify-versions: hack/$1/go.mod pins $2 ${got:-nowhere}, scripts/versions.env says $3" >&2
    fail=1
  fi
}
pin k8s-binaries k8s.io/kubernetes "$KUBERNETES_VERSION"
pin kubevirt-components kubevirt.io/kubevirt "$KUBEVIRT_VERSION"
pin kubevirt-admission kubevirt.io/kubevirt "$KUBEVIRT_VERSION"
pin cdi-components kubevirt.io/containerized-data-importer "$CDI_VERSION"
pin cdi-admission kubevirt.io/containerized-data-importer "$CDI_VERSION"
pin multus-components gopkg.in/k8snetworkplumbingwg/multus-cni.v4 "$MULTUS_VERSION"
pin csi-hostpath github.com/kubernetes-csi/external-provisioner/v5 "$CSI_PROVISIONER_VERSION"
pin csi-hostpath github.com/kubernetes-csi/external-resizer "$CSI_RESIZER_VERSION"
pin csi-snapshotter github.com/kubernetes-csi/external-snapshotter/v8 "$CSI_SNAPSHOTTER_VERSION"
pin csi-snapshotter github.com/kubernetes-csi/external-snapshotter/client/v8 "$CSI_SNAPSHOTTER_VERSION"
# No script may pin a version of its own: every one comes from versions.env,
# neither set (NAME=v1.2.3, NAME=${NAME:-v1.2.3}) nor as a fallback of a
# use (${NAME:-v1.2.3}, ${NAME-v1.2.3}, ${NAME:=v1.2.3}). names are the NAMEs
# of versions.env.
names=$(sed -n 's/^\([A-Z][A-Z0-9_]*\)=.*/\1/p' "$ROOT/scripts/versions.env" | paste -sd '|' -)
scripts=("$ROOT"/scripts/*.sh "$ROOT"/scripts/local-cluster/*.sh "$ROOT"/scripts/local-cluster/*/*.sh)
if grep -nE "^[[:space:]]*($names)=[\"\$]*\\{?[A-Z_]*:?-?v[0-9]" "${scripts[@]}" 2>/dev/null; then
  echo "verify-versions: the lines above pin a version outside scripts/versions.env" >&2
  fail=1
fi
if grep -nE "\\$\\{($names):?[-=][\"']?v?[0-9]" "${scripts[@]}" "$ROOT/Makefile" 2>/dev/null; then
  echo "verify-versions: the lines above fall back to a version of their own: source scripts/versions.sh (scripts) or include scripts/versions.env (Makefile) instead" >&2
  fail=1
fi
if grep -nE "^($names)[[:space:]]*:?=" "$ROOT/Makefile"; then
  echo "verify-versions: the Makefile lines above pin a version outside scripts/versions.env" >&2
  fail=1
fi
[ "$fail" = 0 ] && echo "verify-versions: hack/ modules agree with scripts/versions.env"
exit "$fail"
