# shellcheck shell=bash
# shellcheck disable=SC2034 # the settings are used by the files that source this one
# Settings and helpers of the local cluster (scripts/local-cluster/): a real
# Kubernetes run directly on this machine (no Docker, no systemd), one node
# by default, LOCAL_CLUSTER_NODES=2 for two. Sourced by up.sh, down.sh and
# through up.sh by every step file; not run.
#
# Every process and file lives under bin/local-cluster ($LC) where the
# binaries allow it; what they write elsewhere (see down.sh) is recorded in
# $LC/snapshot before the first start and undone by down.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/versions.sh
. "$ROOT/scripts/versions.sh"
BIN=$ROOT/bin
LC=$BIN/local-cluster
PIDS=$LC/pids
LOGS=$LC/logs
PKI=$LC/pki
SNAP=$LC/snapshot

K8S_VERSION=$KUBERNETES_VERSION
K8S_BIN=$BIN/k8s/$K8S_VERSION
HELM=$BIN/helm-$HELM_VERSION

# Fixed ports, all below the ephemeral range (32768-60999) where envtest's
# etcd and apiservers of other jobs pick theirs. The kubelet's and
# containerd's are per node: with two nodes each has its own network
# namespace, so both use the same numbers.
ETCD_CLIENT_PORT=22379
ETCD_PEER_PORT=22380
ETCD_METRICS_PORT=22381
APISERVER_PORT=16443
KCM_PORT=20257
SCHEDULER_PORT=20259
KUBELET_PORT=20250
KUBELET_HEALTHZ_PORT=20248
CONTAINERD_STREAM_PORT=20252

# The machine's first global IPv4 address (eth0 here), unless
# LOCAL_CLUSTER_NODE_IP says otherwise: the apiserver listens there, and
# the single node (the default) uses it as its InternalIP.
HOST_IP=${LOCAL_CLUSTER_NODE_IP:-$(ip -4 -o addr show scope global | awk '{split($4, a, "/"); print a[1]; exit}')}
APISERVER_IP=$HOST_IP
# Kept for the add-on files: the first node's IP (see node_env).
NODE_IP=$HOST_IP
SERVICE_CIDR=10.0.0.0/24
SERVICE_IP=10.0.0.1
CNI_BRIDGE=wukongcni0
# containerd's CNI bin_dir on every node (the machine's; Multus installs its
# shim and plugins there). The CNI config dir is /etc/cni/net.d inside each
# node, a private bind of the node's own directory.
CNI_BIN_DIR=/opt/cni/bin
# Our own iptables chain (nat) standing in for kube-proxy for the one
# Service pods here need: kubernetes.default (SERVICE_IP:443).
SVC_CHAIN=WUKONG-LOCAL-SVC

# Nodes. One (the default): wukong-local, in the machine's network
# namespace with the machine's IP, pod CIDR 10.244.0.0/24, the default
# cgroup root. Two or more (LOCAL_CLUSTER_NODES): wukong-local,
# wukong-local-2, ..., each in its own network namespace (as kind's node
# containers), joined by the bridge $NODES_BRIDGE on the machine
# ($NODES_NET.1), node i at $NODES_NET.(10+i) with pod CIDR 10.244.i.0/24
# and cgroup root /<node>; routes between the pod CIDRs on the
# machine and in every node.
NODES_COUNT_FILE=$LC/nodes/count
if [ -n "${LOCAL_CLUSTER_NODES:-}" ]; then
  NODE_COUNT=$LOCAL_CLUSTER_NODES
elif [ -s "$NODES_COUNT_FILE" ]; then
  NODE_COUNT=$(cat "$NODES_COUNT_FILE")
else
  NODE_COUNT=1
fi
case $NODE_COUNT in [1-9]) ;; *) echo "LOCAL_CLUSTER_NODES must be 1 to 9, not '$NODE_COUNT'" >&2; exit 1 ;; esac
NODES_BRIDGE=wukongnodes0
NODES_NET=${LOCAL_CLUSTER_NODES_NET:-10.250.0}
NODE_NAME=wukong-local
node_names() {
  local i
  echo "$NODE_NAME"
  for ((i = 2; i <= NODE_COUNT; i++)); do echo "$NODE_NAME-$i"; done
}
# node_env NAME: sets, for node NAME: NODE_I (its index from 1), NODE_DIR,
# NODE_ADDR (its InternalIP), NODE_POD_CIDR, NODE_CGROUP_ROOT,
# NODE_SOCK (containerd's socket), NODE_OWN_NET (1 when it has its own
# network namespace).
node_env() {
  local n=$1
  if [ "$n" = "$NODE_NAME" ]; then NODE_I=1; else NODE_I=${n##*-}; fi
  NODE_DIR=$LC/nodes/$n
  NODE_SOCK=$NODE_DIR/containerd/containerd.sock
  if [ "$NODE_COUNT" = 1 ]; then
    NODE_OWN_NET=0
    NODE_ADDR=$HOST_IP
    NODE_POD_CIDR=10.244.0.0/24
    NODE_CGROUP_ROOT=/
  else
    NODE_OWN_NET=1
    NODE_ADDR=$NODES_NET.$((10 + NODE_I))
    NODE_POD_CIDR=10.244.$NODE_I.0/24
    NODE_CGROUP_ROOT=/$n
  fi
}
# Paths a kubelet, its containerd and the CNI plugins write whatever their
# configured directories are (docs/notes/real-kubevirt.md, "local node"):
# inside each node they are private bind mounts of the node's own
# directories ($NODE_DIR/host/<path>), so two nodes do not collide. On the
# machine only the empty mount points are left (removed by down). Also the
# node-local state of the add-ons' DaemonSets (their hostPath volumes):
# KubeVirt's virt-handler (/var/run/kubevirt*, the node labeller's) and
# Multus's (/run/multus, /run/k8s.cni.cncf.io). Not private: /opt/cni/bin
# (the same plugins everywhere), the CSI driver's /var/lib/wukong-csi (one
# store every node sees: the shared class) and local-path's data.
NODE_PRIVATE_PATHS=(/var/lib/kubelet /var/lib/cni /run/containerd /run/netns /var/log/containers /var/log/pods /etc/cni/net.d
  /run/kubevirt /run/kubevirt-private /run/kubevirt-libvirt-runtimes /var/lib/kubevirt-node-labeller /run/multus /run/k8s.cni.cncf.io)

RELEASE_NAMESPACE=wukong-system
RELEASE=wukong
KUBECONFIG_ADMIN=$LC/kubeconfig

# The sysctls kubelet (setupKernelTunables) and the CNI bridge plugin
# (isGateway) may change; their values are snapshotted and restored.
SYSCTLS=(net.ipv4.ip_forward net.ipv6.conf.all.forwarding vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
# Host paths the nodes' mount points, the kubelet, containerd and the CNI
# plugins may leave on the machine.
# KubeVirt's virt-handler writes its host paths (hostPath volumes of
# virt-operator's DaemonSet, components/daemonsets.go).
# local-path-provisioner's volumes (bin/local-path/manifests/local-path.yaml),
# the CSI driver's (addons/csi.sh), Multus's and its CNI plugins'
# (bin/multus/manifests/multus.yaml: /opt/cni/bin and Multus's run and state dirs).
HOST_PATHS=(/var/lib/kubelet /var/lib/cni /run/containerd /run/netns /var/log/containers /var/log/pods /opt/containerd
  /run/kubevirt /run/kubevirt-private /run/kubevirt-libvirt-runtimes /var/lib/kubevirt-node-labeller
  /var/lib/wukong-local-path
  /var/lib/wukong-csi
  /opt/cni /run/multus /run/k8s.cni.cncf.io /etc/cni)

log() { printf '%s local-cluster: %s\n' "$(date -u +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# since T0: seconds since T0 (date +%s.%N), one decimal.
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}'; }

# alive PIDFILE: the process recorded there runs (and is not a zombie).
alive() {
  local pid
  [ -s "$1" ] || return 1
  pid=$(cat "$1")
  [ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null
}

# shim_pids SOCKET: the containerd-shim-runc-v2 processes of the containerd
# at SOCKET (their command line names it), one per pod.
shim_pids() {
  local f
  # grep exits 2 when a process vanishes while it reads; the matches count.
  { grep -l -a -F -- "$1" /proc/[0-9]*/cmdline 2>/dev/null || true; } | while read -r f; do
    if tr '\0' ' ' 2>/dev/null <"$f" | grep -q -- "containerd-shim.* -address $1"; then
      f=${f#/proc/}
      echo "${f%/cmdline}"
    fi
  done
}

# descendants PID: every process below PID, depth first.
descendants() {
  local child
  for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
    echo "$child"
    descendants "$child"
  done
}

# The images step's output (hack/local-images): mkimage, pause, the manager.
IMG_DIR=$LC/images
PAUSE_IMAGE=localhost/wukong/pause:local
MANAGER_REPO=localhost/wukong/manager

kc() { kubectl --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }
# node_ready NODE: its Ready condition is True.
node_ready() { [ "$(kc get node "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]; }

# start NAME CMD...: runs CMD in its own session, logs to $LOGS/NAME.log,
# records its PID in $PIDS/NAME.pid; nothing if that PID still runs.
start() {
  local name=$1 pid
  shift
  if alive "$PIDS/$name.pid"; then return; fi
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$PIDS/$name.pid"
  log "started $name (PID $pid)"
}

# wait_for WHAT SECONDS CMD...: until CMD succeeds; dies naming WHAT.
wait_for() {
  local what=$1 secs=$2 i
  shift 2
  for ((i = 0; i < secs * 5; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  die "$what not ready after ${secs}s (logs in $LOGS)"
}

# child_of PID WHAT LOG: the PID of PID's child (unshare and nsenter fork
# the process they run), waiting up to 10 s; dies naming WHAT and LOG when
# there is none. pgrep -P has been seen to find nothing once right after it
# found the child (which still ran), hence the loop.
child_of() {
  local child i
  for ((i = 0; i < 50; i++)); do
    if child=$(pgrep -P "$1"); then
      echo "$child"
      return
    fi
    sleep 0.2
  done
  die "$2 did not start or exited at once (see $3)"
}

# in_node NAME CMD...: runs CMD in node NAME's namespaces (PID, mount, and
# network and UTS when it has its own), as a child of this shell.
in_node() {
  local n=$1 pid
  shift
  pid=$(cat "$PIDS/$n.ns.pid")
  nsenter -t "$pid" --pid --mount --net --uts -- "$@"
}

# start_in_node NODE NAME CMD...: start, in NODE's namespaces, logging to
# $LOGS/NODE.NAME.log; records the process's PID on the machine in
# $PIDS/NODE.NAME.pid (nsenter forks it and waits).
start_in_node() {
  local n=$1 name=$2
  shift 2
  if alive "$PIDS/$n.$name.pid"; then return; fi
  setsid nsenter -t "$(cat "$PIDS/$n.ns.pid")" --pid --mount --net --uts -- "$@" >>"$LOGS/$n.$name.log" 2>&1 </dev/null &
  child_of $! "$n $name" "$LOGS/$n.$name.log" >"$PIDS/$n.$name.pid"
  log "started $name on $n (PID $(cat "$PIDS/$n.$name.pid"), in the node's namespaces)"
}

# node_ctr NODE ARGS...: ctr against NODE's containerd, namespace k8s.io.
node_ctr() {
  node_env "$1"
  shift
  ctr -a "$NODE_SOCK" -n k8s.io "$@"
}

# import_tars DIR PREFIX: imports every DIR/*.tar into every node's
# containerd (namespace k8s.io) whose manifest (its layers' digests)
# changed since the last import there, or whose image is gone: the tags
# (v1.9.0, v1.65.0, latest) stay the same across rebuilds. The stamps are
# $NODE_DIR/imported/PREFIX<name>.
import_tars() {
  local tar manifest ref stamp have n
  for n in $(node_names); do
    node_env "$n"
    mkdir -p "$NODE_DIR/imported"
    # Listed once, grepped as a string: `ctr ... | grep -q` under pipefail
    # fails when grep stops reading early (ctr gets SIGPIPE), which looked
    # like a missing image and imported it again.
    have=$(ctr -a "$NODE_SOCK" -n k8s.io images ls -q)
    for tar in "$1"/*.tar; do
      [ -e "$tar" ] || continue
      manifest=$(tar -xOf "$tar" manifest.json)
      ref=$(grep -o '"RepoTags":\["[^"]*"' <<<"$manifest" | cut -d'"' -f4)
      stamp=$NODE_DIR/imported/$2$(basename "$tar" .tar)
      if [ "$(cat "$stamp" 2>/dev/null)" != "$manifest" ] ||
        ! grep -qxF "$ref" <<<"$have"; then
        ctr -a "$NODE_SOCK" -n k8s.io images import "$tar" >/dev/null
        printf '%s' "$manifest" >"$stamp"
        log "imported $ref on $n"
      fi
    done
  done
}

# wanted SETTING WHAT FILE...: whether to install WHAT, by SETTING (0/no/
# false: no; auto or unset: when every FILE was built; else yes, and they
# must be). Sets SKIP_REASON when it answers no.
wanted() {
  local setting=${1:-auto} what=$2 f
  shift 2
  [ "$setting" = auto ] || case $setting in 0 | no | false)
    SKIP_REASON="switched off"
    return 1
    ;;
  esac
  for f in "$@"; do
    if [ ! -f "$f" ]; then
      [ "$setting" = auto ] || die "$what is not built (${f#"$ROOT"/}; see the Makefile's *-images targets)"
      SKIP_REASON="${f#"$ROOT"/} is not built"
      return 1
    fi
  done
}

# mark_restart WHY: the manager, started before a CRD it watches existed,
# is restarted by the wukong step (it checks the CRDs at start).
mark_restart() { echo "$1" >>"$LC/restart-manager"; }
