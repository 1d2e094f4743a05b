#!/usr/bin/env bash
# Deletes the kind cluster made by scripts/kind-up.sh and the files it wrote
# (bin/kind-<name>.kubeconfig, .yaml, .env). kind runs from its Go module at
# the pinned version, like in kind-up.sh. Deleting a cluster that does not
# exist succeeds (kind's own behaviour), so re-running is safe.
set -euo pipefail

# KIND_VERSION: scripts/versions.env (the environment or --kind-version override it).
# shellcheck source=scripts/versions.sh disable=SC1091 # (followed when shellcheck gets scripts/*.sh)
. "${BASH_SOURCE[0]%/*}/versions.sh"
CLUSTER_NAME="${KIND_CLUSTER_NAME:-wukong}"
DRY_RUN=0

ROOT="$(cd "${BASH_SOURCE[0]%/*}/.." && pwd)"
OUT_DIR="${KIND_UP_OUT_DIR:-$ROOT/bin}"

usage() {
  cat <<EOF
Usage: scripts/kind-down.sh [--name NAME] [--kind-version V] [--dry-run]

Deletes the kind cluster NAME (KIND_CLUSTER_NAME, default wukong) and its
kubeconfig/config/env files under bin/.
  --name NAME          cluster name
  --kind-version V     sigs.k8s.io/kind version (KIND_VERSION, $KIND_VERSION)
  --dry-run            print what would be done; run nothing
  -h, --help           this help
EOF
}

die() { echo "kind-down: $*" >&2; exit 1; }

while [ "$#" -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --dry-run) DRY_RUN=1; shift ;;
    --name=*) CLUSTER_NAME="${1#*=}"; shift ;;
    --kind-version=*) KIND_VERSION="${1#*=}"; shift ;;
    --name|--kind-version)
      if [ "$#" -lt 2 ] || [ -z "$2" ]; then die "flag $1 needs a value (see --help)"; fi
      if [ "$1" = --name ]; then CLUSTER_NAME="$2"; else KIND_VERSION="$2"; fi
      shift 2 ;;
    *) die "unknown flag $1 (see --help)" ;;
  esac
done
[ -n "$CLUSTER_NAME" ] || die "--name must not be empty"

KIND=(go run "sigs.k8s.io/kind@${KIND_VERSION}")
FILES=("$OUT_DIR/kind-${CLUSTER_NAME}.kubeconfig" "$OUT_DIR/kind-${CLUSTER_NAME}.yaml" "$OUT_DIR/kind-${CLUSTER_NAME}.env")

if [ "$DRY_RUN" -eq 1 ]; then
  echo "kind-down: DRY RUN: nothing is executed; this is the plan."
  echo "==> delete-cluster"
  echo "    \$ ${KIND[*]} delete cluster --name $CLUSTER_NAME"
  echo "==> remove-files"
  echo "    \$ rm -f ${FILES[*]}"
  exit 0
fi

missing=()
for c in docker go; do
  command -v "$c" >/dev/null 2>&1 || missing+=("$c")
done
[ "${#missing[@]}" -eq 0 ] || die "missing prerequisites: ${missing[*]}"

echo "==> delete-cluster"
"${KIND[@]}" delete cluster --name "$CLUSTER_NAME" || die "step delete-cluster failed: cannot delete kind cluster '$CLUSTER_NAME'"
echo "==> remove-files"
rm -f "${FILES[@]}"
echo "kind-down: cluster '$CLUSTER_NAME' deleted"
