#!/usr/bin/env bash
# Brings up a real local cluster for Wukong: kind (1 control-plane + 2
# workers, kindnet as primary CNI) + reference CNI plugins + Multus (thick) +
# kubernetes-nmstate + KubeVirt (software emulation when the host has no
# /dev/kvm) + CDI + a default StorageClass, then builds the manager image,
# loads it into the nodes and installs charts/wukong with Helm.
#
# Every version is pinned in scripts/versions.env and can be overridden by the environment
# variable of the same name or by a flag (see --help). kind and helm come from
# their Go modules (`go run module@version`), so only docker, kubectl and go
# must be installed. Re-running converges: the cluster is reused, manifests
# are applied with `kubectl apply`, the chart with `helm upgrade --install`.
#
# --dry-run prints every step, command and pinned manifest URL in order and
# runs nothing at all (not even the prerequisite checks).
#
# Limitation, said plainly: kind nodes are containers without NetworkManager,
# so node bridges requested by NodeNetworkConfigurationPolicies are NOT really
# configured there (NNCPs may stay Progressing/Degraded, the nmstate handler
# may be unready). The script prints E2E_SKIP_NODE_BRIDGES=1 so the e2e suite
# skips exactly the node-bridge checks.
set -euo pipefail

# ---- Pinned versions (env or flags override) --------------------------------
# KIND_VERSION, HELM_VERSION, CNI_PLUGINS_VERSION, MULTUS_VERSION,
# NMSTATE_VERSION, KUBEVIRT_VERSION, CDI_VERSION, LOCAL_PATH_VERSION: from
# scripts/versions.env, the one table the local cluster and the Makefile read.
# shellcheck source=scripts/versions.sh disable=SC1091 # (followed when shellcheck gets scripts/*.sh)
. "${BASH_SOURCE[0]%/*}/versions.sh"

# ---- Other knobs --------------------------------------------------------------
CLUSTER_NAME="${KIND_CLUSTER_NAME:-wukong}"
KIND_NODE_IMAGE="${KIND_NODE_IMAGE:-}"       # empty: kind's default for KIND_VERSION
IMAGE_REPO="${IMAGE_REPO:-wukong.local/wukong-manager}"
IMAGE_TAG="${IMAGE_TAG:-dev}"
EMULATION="${EMULATION:-auto}"               # auto (on when no /dev/kvm) | on | off
WAIT_TIMEOUT="${WAIT_TIMEOUT:-10m}"
CHART_NAMESPACE="wukong-system"
DRY_RUN=0
SKIP_BUILD=0

ROOT="$(cd "${BASH_SOURCE[0]%/*}/.." && pwd)"
OUT_DIR="${KIND_UP_OUT_DIR:-$ROOT/bin}"

usage() {
  cat <<EOF
Usage: scripts/kind-up.sh [flags]

Creates (or reuses) the kind cluster NAME with kindnet, CNI plugins, Multus,
kubernetes-nmstate, KubeVirt, CDI and a default StorageClass, then builds and
installs Wukong with Helm. Idempotent: re-running converges.

Flags (each also settable by the environment variable shown):
  --name NAME                 cluster name (KIND_CLUSTER_NAME, default wukong)
  --kind-version V            sigs.k8s.io/kind version (KIND_VERSION, $KIND_VERSION)
  --helm-version V            helm.sh/helm/v3 version (HELM_VERSION, $HELM_VERSION)
  --cni-plugins-version V     containernetworking/plugins (CNI_PLUGINS_VERSION, $CNI_PLUGINS_VERSION)
  --multus-version V          Multus thick plugin (MULTUS_VERSION, $MULTUS_VERSION)
  --nmstate-version V         kubernetes-nmstate (NMSTATE_VERSION, $NMSTATE_VERSION)
  --kubevirt-version V        KubeVirt (KUBEVIRT_VERSION, $KUBEVIRT_VERSION)
  --cdi-version V             CDI (CDI_VERSION, $CDI_VERSION)
  --local-path-version V      local-path-provisioner, used only when no default
                              StorageClass exists (LOCAL_PATH_VERSION, $LOCAL_PATH_VERSION)
  --node-image IMAGE          kind node image (KIND_NODE_IMAGE, default: kind's own)
  --image-repo REPO           manager image repository (IMAGE_REPO, $IMAGE_REPO)
  --image-tag TAG             manager image tag (IMAGE_TAG, $IMAGE_TAG)
  --emulation auto|on|off     KubeVirt software emulation (EMULATION, auto = on when
                              the host has no /dev/kvm)
  --timeout DURATION          each wait (WAIT_TIMEOUT, $WAIT_TIMEOUT)
  --skip-build                do not build the manager image; use an existing one
  --dry-run                   print every step, command and manifest URL; run nothing
  -h, --help                  this help
EOF
}

die() { echo "kind-up: $*" >&2; exit 1; }

need_value() {
  case "$2" in
    "" | -*) die "flag $1 needs a value (see --help)" ;;
  esac
}

while [ "$#" -gt 0 ]; do
  flag="$1" value="" inline=0
  case "$flag" in
    --*=*) value="${flag#*=}" flag="${flag%%=*}" inline=1 ;;
  esac
  case "$flag" in
    -h|--help) usage; exit 0 ;;
    --dry-run) DRY_RUN=1; shift; continue ;;
    --skip-build) SKIP_BUILD=1; shift; continue ;;
    --name|--kind-version|--helm-version|--cni-plugins-version|--multus-version|--nmstate-version) ;;
    --kubevirt-version|--cdi-version|--local-path-version|--node-image|--image-repo|--image-tag) ;;
    --emulation|--timeout) ;;
    *) die "unknown flag $flag (see --help)" ;;
  esac
  if [ "$inline" -eq 0 ]; then
    need_value "$flag" "${2:-}"
    value="$2"
    shift 2
  else
    need_value "$flag" "$value"
    shift
  fi
  case "$flag" in
    --name) CLUSTER_NAME="$value" ;;
    --kind-version) KIND_VERSION="$value" ;;
    --helm-version) HELM_VERSION="$value" ;;
    --cni-plugins-version) CNI_PLUGINS_VERSION="$value" ;;
    --multus-version) MULTUS_VERSION="$value" ;;
    --nmstate-version) NMSTATE_VERSION="$value" ;;
    --kubevirt-version) KUBEVIRT_VERSION="$value" ;;
    --cdi-version) CDI_VERSION="$value" ;;
    --local-path-version) LOCAL_PATH_VERSION="$value" ;;
    --node-image) KIND_NODE_IMAGE="$value" ;;
    --image-repo) IMAGE_REPO="$value" ;;
    --image-tag) IMAGE_TAG="$value" ;;
    --emulation) EMULATION="$value" ;;
    --timeout) WAIT_TIMEOUT="$value" ;;
  esac
done

case "$EMULATION" in
  auto) if [ -e /dev/kvm ]; then USE_EMULATION=false; else USE_EMULATION=true; fi ;;
  on|true) USE_EMULATION=true ;;
  off|false) USE_EMULATION=false ;;
  *) die "--emulation must be auto, on or off, not '$EMULATION'" ;;
esac

case "${HOSTTYPE:-x86_64}" in   # bash's own view of the machine, no uname needed
  x86_64|amd64) ARCH=amd64 ;;
  aarch64|arm64) ARCH=arm64 ;;
  *) ARCH="$HOSTTYPE" ;;
esac

# kind and helm run from their Go modules at the pinned versions.
KIND=(go run "sigs.k8s.io/kind@${KIND_VERSION}")
HELM=(go run "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}")

IMG="${IMAGE_REPO}:${IMAGE_TAG}"
KUBECONFIG_FILE="$OUT_DIR/kind-${CLUSTER_NAME}.kubeconfig"
KIND_CONFIG_FILE="$OUT_DIR/kind-${CLUSTER_NAME}.yaml"
ENV_FILE="$OUT_DIR/kind-${CLUSTER_NAME}.env"

# ---- Pinned manifest URLs ----------------------------------------------------
CNI_PLUGINS_URL="https://github.com/containernetworking/plugins/releases/download/${CNI_PLUGINS_VERSION}/cni-plugins-linux-${ARCH}-${CNI_PLUGINS_VERSION}.tgz"
MULTUS_URL="https://raw.githubusercontent.com/k8snetworkplumbingwg/multus-cni/${MULTUS_VERSION}/deployments/multus-daemonset-thick.yml"
MULTUS_IMAGE="ghcr.io/k8snetworkplumbingwg/multus-cni:${MULTUS_VERSION}-thick"
NMSTATE_BASE="https://github.com/nmstate/kubernetes-nmstate/releases/download/${NMSTATE_VERSION}"
NMSTATE_FILES=(nmstate.io_nmstates.yaml namespace.yaml service_account.yaml role.yaml role_binding.yaml operator.yaml)
KUBEVIRT_BASE="https://github.com/kubevirt/kubevirt/releases/download/${KUBEVIRT_VERSION}"
CDI_BASE="https://github.com/kubevirt/containerized-data-importer/releases/download/${CDI_VERSION}"
LOCAL_PATH_URL="https://raw.githubusercontent.com/rancher/local-path-provisioner/${LOCAL_PATH_VERSION}/deploy/local-path-storage.yaml"
# CNI plugins Multus delegates to for secondary networks; kindnet's own
# (ptp, host-local, loopback, portmap) are left untouched.
CNI_PLUGINS_NEEDED=(bridge macvlan ipvlan vlan host-device tuning static dhcp)

# ---- Helpers -----------------------------------------------------------------
CURRENT_STEP=""
on_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ -n "$CURRENT_STEP" ]; then
    echo "kind-up: step $CURRENT_STEP failed (exit $rc)" >&2
  fi
}
trap on_exit EXIT

# step NAME FUNC [ARGS...]: prints "==> NAME" and runs FUNC; any failing
# command inside ends the script with "kind-up: step NAME failed" (set -e
# stays effective because FUNC is not called in a condition).
step() {
  local name="$1"; shift
  CURRENT_STEP="$name"
  echo
  echo "==> $name"
  "$@"
  CURRENT_STEP=""
}

note() { echo "    $*"; }

# show CMD...: prints CMD as a copy-pasteable shell line.
show() {
  local out="" a safe='^[A-Za-z0-9_./:=@,+%-]+$'
  for a in "$@"; do
    if [[ "$a" =~ $safe ]]; then
      out+="$a "
    elif [[ "$a" != *"'"* ]]; then
      out+="'$a' "
    else
      out+="$(printf '%q' "$a") "
    fi
  done
  echo "    \$ ${out% }"
}

# run CMD...: runs CMD, or prints it under --dry-run.
run() {
  if [ "$DRY_RUN" -eq 1 ]; then
    show "$@"
    return 0
  fi
  "$@" || {
    local rc=$?
    echo "kind-up: command failed (exit $rc): $*" >&2
    return "$rc"
  }
}

# apply_url URL: kubectl apply a pinned manifest.
apply_url() { run kubectl apply -f "$1"; }

# apply_yaml DESCRIPTION < yaml: kubectl apply stdin, or print it.
apply_yaml() {
  local line
  if [ "$DRY_RUN" -eq 1 ]; then
    echo "    \$ kubectl apply -f - <<EOF   # $1"
    while IFS= read -r line; do echo "      $line"; done
    echo "      EOF"
    return 0
  fi
  kubectl apply -f - || { echo "kind-up: kubectl apply of $1 failed" >&2; return 1; }
}

# retry TRIES DELAY CMD...: for objects created asynchronously by operators
# (kubectl wait fails at once on an object that does not exist yet).
retry() {
  local tries="$1" delay="$2" i; shift 2
  if [ "$DRY_RUN" -eq 1 ]; then
    echo "    \$ $*   # retried until it succeeds (${tries}x${delay}s)"
    return 0
  fi
  for ((i = 1; i <= tries; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep "$delay"
  done
  echo "kind-up: gave up after ${tries} tries: $*" >&2
  return 1
}

# soft CMD...: a wait whose failure is expected on kind; warns, never fails.
soft() {
  if [ "$DRY_RUN" -eq 1 ]; then
    echo "    \$ $*   # failure only warns (expected on kind)"
    return 0
  fi
  "$@" || echo "kind-up: WARNING: '$*' did not succeed; expected on kind nodes (no NetworkManager), continuing" >&2
}

kind_nodes() {
  if [ "$DRY_RUN" -eq 1 ]; then echo 'NODE'; return 0; fi
  "${KIND[@]}" get nodes --name "$CLUSTER_NAME"
}

# ---- Steps -------------------------------------------------------------------
step_prerequisites() {
  if [ "$DRY_RUN" -eq 1 ]; then
    note "would check that these commands exist: docker kubectl go$([ "$SKIP_BUILD" -eq 1 ] || echo ' make')"
    note "and that the docker daemon answers (docker info)"
    return 0
  fi
  local missing=() c
  local needed=(docker kubectl go)
  [ "$SKIP_BUILD" -eq 1 ] || needed+=(make)
  for c in "${needed[@]}"; do
    command -v "$c" >/dev/null 2>&1 || missing+=("$c")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    die "missing prerequisites: ${missing[*]} (install them and re-run; kind and helm need only go)"
  fi
  docker info >/dev/null 2>&1 || die "docker is installed but its daemon does not answer (docker info failed)"
  note "docker, kubectl, go found; kind ${KIND_VERSION} and helm ${HELM_VERSION} run via go run"
}

kind_config() {
  cat <<EOF
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
name: ${CLUSTER_NAME}
networking:
  disableDefaultCNI: false   # kindnet stays the primary CNI; Multus adds secondary networks
nodes:
  - role: control-plane
  - role: worker
  - role: worker
EOF
}

step_cluster() {
  local image_flag=()
  [ -z "$KIND_NODE_IMAGE" ] || image_flag=(--image "$KIND_NODE_IMAGE")
  if [ "$DRY_RUN" -eq 1 ]; then
    note "reuse cluster '$CLUSTER_NAME' if 'kind get clusters' lists it, else create it with $KIND_CONFIG_FILE:"
    kind_config | while IFS= read -r line; do echo "      $line"; done
    run "${KIND[@]}" get clusters
    run "${KIND[@]}" create cluster --name "$CLUSTER_NAME" --config "$KIND_CONFIG_FILE" "${image_flag[@]}" --kubeconfig "$KUBECONFIG_FILE" --wait 5m
  else
    mkdir -p "$OUT_DIR"
    local clusters
    clusters="$("${KIND[@]}" get clusters 2>/dev/null)" || die "'kind get clusters' failed (is docker running?)"
    if grep -qx -- "$CLUSTER_NAME" <<<"$clusters"; then
      note "reusing existing kind cluster '$CLUSTER_NAME'"
    else
      kind_config >"$KIND_CONFIG_FILE"
      run "${KIND[@]}" create cluster --name "$CLUSTER_NAME" --config "$KIND_CONFIG_FILE" "${image_flag[@]}" --kubeconfig "$KUBECONFIG_FILE" --wait 5m
    fi
  fi
  if [ "$DRY_RUN" -eq 1 ]; then
    echo "    \$ ${KIND[*]} get kubeconfig --name $CLUSTER_NAME > $KUBECONFIG_FILE"
  else
    "${KIND[@]}" get kubeconfig --name "$CLUSTER_NAME" >"$KUBECONFIG_FILE" ||
      die "cannot write the kubeconfig of '$CLUSTER_NAME' to $KUBECONFIG_FILE"
    chmod 600 "$KUBECONFIG_FILE"
  fi
  note "KUBECONFIG=$KUBECONFIG_FILE for every following step"
  export KUBECONFIG="$KUBECONFIG_FILE"
  run kubectl wait --for=condition=Ready nodes --all --timeout="$WAIT_TIMEOUT"
}

step_cni_plugins() {
  note "reference CNI plugins ${CNI_PLUGINS_VERSION} (${CNI_PLUGINS_NEEDED[*]}) into /opt/cni/bin of every node, from"
  note "$CNI_PLUGINS_URL"
  local node nodes script check
  # Extract to a scratch dir, then copy the plugins kindnet does not ship (an
  # existing binary is kept, so kindnet's own plugins are never replaced).
  script="set -e; d=/tmp/cni-plugins-${CNI_PLUGINS_VERSION}; mkdir -p \$d;"
  script+=" [ -x \$d/bridge ] || curl -fsSL ${CNI_PLUGINS_URL} | tar -xz -C \$d;"
  script+=" for p in ${CNI_PLUGINS_NEEDED[*]}; do [ -e /opt/cni/bin/\$p ] || cp \$d/\$p /opt/cni/bin/\$p; done"
  check="for p in ${CNI_PLUGINS_NEEDED[*]}; do test -x /opt/cni/bin/\$p || { echo missing /opt/cni/bin/\$p; exit 1; }; done"
  [ "$DRY_RUN" -eq 0 ] || note "for each NODE of: ${KIND[*]} get nodes --name $CLUSTER_NAME"
  nodes="$(kind_nodes)"
  [ -n "$nodes" ] || die "kind reports no nodes for cluster '$CLUSTER_NAME'"
  while IFS= read -r node; do
    [ -n "$node" ] || continue
    run docker exec "$node" sh -c "$script"
    run docker exec "$node" sh -c "$check"
  done <<<"$nodes"
}

step_multus() {
  note "Multus thick plugin ${MULTUS_VERSION}: $MULTUS_URL"
  note "image pinned to $MULTUS_IMAGE (the release manifest may say :snapshot-thick);"
  note "daemon memory raised from 50Mi to 300Mi (the upstream limit gets OOM-killed)"
  if [ "$DRY_RUN" -eq 1 ]; then
    echo "    \$ kubectl create --dry-run=client -o yaml -f $MULTUS_URL | sed <pin image, raise memory> | kubectl apply -f -"
  else
    kubectl create --dry-run=client -o yaml -f "$MULTUS_URL" |
      sed -e "s#ghcr.io/k8snetworkplumbingwg/multus-cni:snapshot-thick#${MULTUS_IMAGE}#" \
        -e 's#memory: "\{0,1\}50Mi"\{0,1\}#memory: 300Mi#' |
      kubectl apply -f - || die "cannot apply Multus from $MULTUS_URL"
  fi
  run kubectl -n kube-system rollout status daemonset/kube-multus-ds --timeout="$WAIT_TIMEOUT"
}

step_nmstate() {
  local f
  for f in "${NMSTATE_FILES[@]}"; do
    apply_url "$NMSTATE_BASE/$f"
  done
  run kubectl -n nmstate rollout status deployment/nmstate-operator --timeout="$WAIT_TIMEOUT"
  apply_yaml "NMState CR" <<EOF
apiVersion: nmstate.io/v1
kind: NMState
metadata:
  name: nmstate
EOF
  # The NNCP CRD is what Wukong needs; the operator creates it from the CR.
  retry 60 5 kubectl get crd nodenetworkconfigurationpolicies.nmstate.io
  run kubectl wait --for=condition=Established crd/nodenetworkconfigurationpolicies.nmstate.io --timeout="$WAIT_TIMEOUT"
  note "NOTE: kind nodes are containers without NetworkManager: node bridges from"
  note "NodeNetworkConfigurationPolicies are NOT really configured there (NNCPs may stay"
  note "Progressing/Degraded, the handler may be unready). Use E2E_SKIP_NODE_BRIDGES=1 so"
  note "the e2e suite skips exactly the node-bridge checks."
  retry 60 5 kubectl -n nmstate get daemonset/nmstate-handler
  soft kubectl -n nmstate rollout status daemonset/nmstate-handler --timeout=3m
  soft kubectl wait nmstate/nmstate --for=condition=Available --timeout=3m
  export E2E_SKIP_NODE_BRIDGES=1
  note "export E2E_SKIP_NODE_BRIDGES=1"
}

step_kubevirt() {
  if [ "$USE_EMULATION" = true ]; then
    note "software emulation ON (--emulation=$EMULATION; /dev/kvm $([ -e /dev/kvm ] && echo present || echo absent) on this host): VMs run slowly under TCG"
  else
    note "software emulation OFF (--emulation=$EMULATION; /dev/kvm present): VMs use KVM"
  fi
  apply_url "$KUBEVIRT_BASE/kubevirt-operator.yaml"
  run kubectl -n kubevirt rollout status deployment/virt-operator --timeout="$WAIT_TIMEOUT"
  apply_url "$KUBEVIRT_BASE/kubevirt-cr.yaml"
  run kubectl -n kubevirt patch kubevirt kubevirt --type=merge \
    -p "{\"spec\":{\"configuration\":{\"developerConfiguration\":{\"useEmulation\":${USE_EMULATION}}}}}"
  # type: macvlan NICs are bound with KubeVirt's macvtap binding plugin,
  # which the KubeVirt CR must register
  # (https://kubevirt.io/user-guide/network/net_binding_plugins/macvtap/).
  # Its CNI and device plugin (kubevirt/macvtap-cni) are not deployed here:
  # on kind they need the host's /dev mounted into the nodes.
  run kubectl -n kubevirt patch kubevirt kubevirt --type=merge \
    -p '{"spec":{"configuration":{"network":{"binding":{"macvtap":{"domainAttachmentType":"tap"}}}}}}'
  run kubectl -n kubevirt wait kubevirt/kubevirt --for=condition=Available --timeout="$WAIT_TIMEOUT"
}

step_cdi() {
  apply_url "$CDI_BASE/cdi-operator.yaml"
  run kubectl -n cdi rollout status deployment/cdi-operator --timeout="$WAIT_TIMEOUT"
  apply_url "$CDI_BASE/cdi-cr.yaml"
  run kubectl wait cdi/cdi --for=condition=Available --timeout="$WAIT_TIMEOUT"
}

default_storageclasses() {
  kubectl get storageclass -o jsonpath='{range .items[?(@.metadata.annotations.storageclass\.kubernetes\.io/is-default-class=="true")]}{.metadata.name}{"\n"}{end}'
}

mark_default() {
  run kubectl annotate --overwrite storageclass "$1" storageclass.kubernetes.io/is-default-class=true
}

step_storageclass() {
  if [ "$DRY_RUN" -eq 1 ]; then
    note "kind ships local-path-provisioner as StorageClass 'standard' (default, WaitForFirstConsumer):"
    note "keep the default StorageClass if there is one; else mark 'standard' default if it exists;"
    note "else install rancher local-path-provisioner ${LOCAL_PATH_VERSION} and mark 'local-path' default:"
    run kubectl get storageclass
    apply_url "$LOCAL_PATH_URL"
    mark_default local-path
    run kubectl -n local-path-storage rollout status deployment/local-path-provisioner --timeout="$WAIT_TIMEOUT"
    return 0
  fi
  local defaults
  defaults="$(default_storageclasses)" || die "cannot list StorageClasses"
  if [ -n "$defaults" ]; then
    note "default StorageClass: $(echo "$defaults" | tr '\n' ' ')"
  elif kubectl get storageclass standard >/dev/null 2>&1; then
    note "StorageClass 'standard' exists but is not default: marking it default"
    mark_default standard
  else
    note "no StorageClass: installing local-path-provisioner ${LOCAL_PATH_VERSION} from $LOCAL_PATH_URL"
    apply_url "$LOCAL_PATH_URL"
    mark_default local-path
  fi
  run kubectl -n local-path-storage rollout status deployment/local-path-provisioner --timeout="$WAIT_TIMEOUT"
  defaults="$(default_storageclasses)"
  [ -n "$defaults" ] || die "still no default StorageClass"
}

has_make_target() { grep -q "^$1:" "$ROOT/Makefile" 2>/dev/null; }

step_image_build() {
  if [ "$SKIP_BUILD" -eq 1 ]; then
    note "skipped (--skip-build): using the existing image $IMG"
    return 0
  fi
  if [ "$DRY_RUN" -eq 1 ] || has_make_target docker-build; then
    run make -C "$ROOT" docker-build IMG="$IMG"
  else
    note "Makefile has no docker-build target: building the root Dockerfile directly"
    run docker build -t "$IMG" -f "$ROOT/Dockerfile" "$ROOT"
  fi
}

step_image_load() {
  if [ "$SKIP_BUILD" -eq 1 ] && [ "$DRY_RUN" -eq 0 ] && ! docker image inspect "$IMG" >/dev/null 2>&1; then
    note "image $IMG is not in the local docker: not loading it; the nodes will pull it"
    return 0
  fi
  run "${KIND[@]}" load docker-image "$IMG" --name "$CLUSTER_NAME"
}

step_chart() {
  run "${HELM[@]}" upgrade --install wukong "$ROOT/charts/wukong" \
    -n "$CHART_NAMESPACE" --create-namespace \
    --set "image.repository=${IMAGE_REPO},image.tag=${IMAGE_TAG},image.pullPolicy=IfNotPresent" \
    --wait --timeout "$WAIT_TIMEOUT"
}

step_summary() {
  if [ "$DRY_RUN" -eq 0 ]; then
    {
      echo "export KUBECONFIG=$KUBECONFIG_FILE"
      echo "export E2E_KUBECONFIG=$KUBECONFIG_FILE"
      echo "export E2E_SKIP_NODE_BRIDGES=1"
    } >"$ENV_FILE"
  fi
  echo "Cluster '$CLUSTER_NAME' $([ "$DRY_RUN" -eq 1 ] && echo 'would be' || echo 'is') ready."
  echo "  kubeconfig: $KUBECONFIG_FILE   (env: $ENV_FILE)"
  echo "  export KUBECONFIG=$KUBECONFIG_FILE"
  echo "Node bridges are not really configured on kind nodes, so the e2e suite skips them:"
  echo "  E2E_SKIP_NODE_BRIDGES=1"
  echo "Run the e2e suite against this cluster:"
  echo "  E2E_KUBECONFIG=$KUBECONFIG_FILE E2E_SKIP_NODE_BRIDGES=1 make e2e-run"
  echo "Delete it: scripts/kind-down.sh --name $CLUSTER_NAME"
}

# ---- Plan --------------------------------------------------------------------
if [ "$DRY_RUN" -eq 1 ]; then
  echo "kind-up: DRY RUN: nothing is executed; this is the plan."
fi
echo "kind-up: cluster '$CLUSTER_NAME'; pinned versions: kind ${KIND_VERSION}, helm ${HELM_VERSION}," \
  "cni-plugins ${CNI_PLUGINS_VERSION}, multus ${MULTUS_VERSION}, nmstate ${NMSTATE_VERSION}," \
  "kubevirt ${KUBEVIRT_VERSION}, cdi ${CDI_VERSION}, local-path ${LOCAL_PATH_VERSION}; image ${IMG};" \
  "emulation ${USE_EMULATION}"

step prerequisites step_prerequisites
step cluster step_cluster
step cni-plugins step_cni_plugins
step multus step_multus
step nmstate step_nmstate
step kubevirt step_kubevirt
step cdi step_cdi
step storageclass step_storageclass
step image-build step_image_build
step image-load step_image_load
step chart step_chart
step summary step_summary
