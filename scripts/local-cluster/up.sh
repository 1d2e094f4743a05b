#!/usr/bin/env bash
# Starts a real Kubernetes on THIS machine, without Docker or systemd, and
# installs Wukong into it with its Helm chart, as a list of named steps:
#
#   packages       apt-get install containerd, runc, CNI plugins, iptables, openssl when missing   core.sh
#   snapshot       what down restores, recorded once                                              core.sh
#   binaries       control plane, kubelet (hack/k8s-binaries), helm, built when missing           core.sh
#   images         pause and the manager image from this checkout (hack/local-images)             core.sh
#   pki            CA, certs and kubeconfigs                                                      core.sh
#   control-plane  etcd, kube-apiserver, kube-controller-manager, kube-scheduler                  core.sh
#   node-network   with 2+ nodes: the machine's bridge the nodes hang on                          nodes.sh
#   nodes          per node: namespaces, private mounts, network, containerd, kubelet             nodes.sh
#   service        kubernetes.default as a DNAT rule (no kube-proxy)                              nodes.sh
#   nodes-ready    every node Ready, the first labelled control-plane                             nodes.sh
#   kubevirt       add-on, when `make kubevirt-images` built it                                   addons/kubevirt.sh
#   local-path     add-on, the default StorageClass (make cdi-images)                             addons/local-path.sh
#   cdi            add-on (make cdi-images)                                                       addons/cdi.sh
#   image-server   add-on, the guest disk over HTTP (make cdi-images)                             addons/image-server.sh
#   multus         add-on (make cdi-images)                                                       addons/multus.sh
#   nmstate        add-on, SIMULATED, with Multus                                                 addons/nmstate.sh
#   csi            add-on, our CSI driver: expandable and ReadWriteMany classes (make csi-images) addons/csi.sh
#   wukong         the chart                                                                      addons/wukong.sh
#
# Usage: scripts/local-cluster/up.sh [--dry-run] [--nodes N] [--skip STEP]... [STEP...]
#   STEP...     run only these steps (each runs alone once the steps before
#               it ran: they read what those left in bin/local-cluster)
#   --skip S    leave step S out
#   --nodes N   N nodes (LOCAL_CLUSTER_NODES; default 1, or what runs)
#   --dry-run   print the plan: every step, what it does with this
#               machine's values, and whether it runs or is skipped and why;
#               runs nothing, needs no root
#   --list      the step names, one per line
#
# An add-on whose images were not built is skipped, saying so (the
# LOCAL_CLUSTER_<ADDON> switches: unset or auto = when built, 0 = never,
# 1 = required). Writes bin/local-cluster/kubeconfig (cluster-admin).
# Idempotent: what runs keeps running, what is built stays built (bin/),
# the images are imported and the release upgraded only when they changed.
# Needs root (containerd, the kubelet, iptables, namespaces). Undo with
# scripts/local-cluster/down.sh. Not here: kube-proxy and DNS.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)

DRY_RUN=0
ONLY=()
SKIP=()
while [ $# -gt 0 ]; do
  case $1 in
    --dry-run) DRY_RUN=1 ;;
    --list) LIST=1 ;;
    --nodes) LOCAL_CLUSTER_NODES=${2:?--nodes needs a number}; export LOCAL_CLUSTER_NODES; shift ;;
    --nodes=*) LOCAL_CLUSTER_NODES=${1#*=}; export LOCAL_CLUSTER_NODES ;;
    --skip) SKIP+=("${2:?--skip needs a step}"); shift ;;
    --skip=*) SKIP+=("${1#*=}") ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "up.sh: unknown flag $1 (see --help)" >&2; exit 2 ;;
    *) ONLY+=("$1") ;;
  esac
  shift
done

# shellcheck source=scripts/local-cluster/lib.sh
source "$HERE/lib.sh"
# shellcheck source=scripts/local-cluster/core.sh
source "$HERE/core.sh"
# shellcheck source=scripts/local-cluster/nodes.sh
source "$HERE/nodes.sh"
for f in "$HERE"/addons/*.sh; do
  # shellcheck source=/dev/null
  source "$f"
done

# The step list: NAME FILE. step_<name> does it, plan_<name> says what it
# does, want_<name> (add-ons) says whether it runs and else SKIP_REASON why.
STEPS=(
  packages core.sh
  snapshot core.sh
  binaries core.sh
  images core.sh
  pki core.sh
  control-plane core.sh
  node-network nodes.sh
  nodes nodes.sh
  service nodes.sh
  nodes-ready nodes.sh
  kubevirt addons/kubevirt.sh
  local-path addons/local-path.sh
  cdi addons/cdi.sh
  image-server addons/image-server.sh
  multus addons/multus.sh
  nmstate addons/nmstate.sh
  csi addons/csi.sh
  wukong addons/wukong.sh
)
names=()
for ((i = 0; i < ${#STEPS[@]}; i += 2)); do names+=("${STEPS[i]}"); done
if [ "${LIST:-0}" = 1 ]; then printf '%s\n' "${names[@]}"; exit 0; fi
for s in "${ONLY[@]}" "${SKIP[@]}"; do
  printf '%s\n' "${names[@]}" | grep -qxF -- "$s" || die "unknown step '$s' (steps: ${names[*]})"
done

# selected NAME: the command line asks for NAME.
selected() {
  local s
  for s in "${SKIP[@]}"; do [ "$s" = "$1" ] && return 1; done
  [ ${#ONLY[@]} = 0 ] && return 0
  for s in "${ONLY[@]}"; do [ "$s" = "$1" ] && return 0; done
  return 1
}

if [ "$DRY_RUN" = 1 ]; then
  echo "local-cluster: DRY RUN: nothing is executed; this is the plan."
else
  [ "$(id -u)" = 0 ] || die "must run as root (containerd, kubelet, iptables, namespaces, mounts)"
fi
[ -n "$HOST_IP" ] || die "no global IPv4 address found; set LOCAL_CLUSTER_NODE_IP"
echo "local-cluster: $NODE_COUNT node(s): $(node_names | xargs); apiserver https://$APISERVER_IP:$APISERVER_PORT;" \
  "versions (scripts/versions.env): kubernetes $K8S_VERSION, helm $HELM_VERSION, kubevirt $KUBEVIRT_VERSION, cdi $CDI_VERSION," \
  "multus $MULTUS_VERSION, cni-plugins $CNI_PLUGINS_VERSION, local-path $LOCAL_PATH_VERSION"
[ "$DRY_RUN" = 1 ] || mkdir -p "$LC" "$PIDS" "$LOGS"
T0=$(date +%s.%N)
# T1: the start of the processes (T0 includes the builds); the steps' logs use it.
# shellcheck disable=SC2034
T1=$T0
for ((i = 0; i < ${#STEPS[@]}; i += 2)); do
  name=${STEPS[i]} file=${STEPS[i + 1]} fn=${STEPS[i]//-/_}
  selected "$name" || continue
  SKIP_REASON=
  if declare -F "want_$fn" >/dev/null && ! "want_$fn"; then
    echo "==> $name ($file): skipped: $SKIP_REASON"
    continue
  fi
  if [ "$DRY_RUN" = 1 ]; then
    echo "==> $name ($file)"
    "plan_$fn" | sed 's/^/    /'
    continue
  fi
  echo "==> $name ($file)"
  if [ "$name" = control-plane ]; then T1=$(date +%s.%N); fi
  s=$(date +%s.%N)
  "step_$fn"
  log "step $name done in $(since "$s") s"
done
[ "$DRY_RUN" = 1 ] || log "up: done in $(since "$T0") s; kubeconfig: $KUBECONFIG_ADMIN"
