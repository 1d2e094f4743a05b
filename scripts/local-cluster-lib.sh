# shellcheck shell=bash
# shellcheck disable=SC2034 # the settings are used by the scripts that source this file
# Shared settings of scripts/local-cluster-up.sh and local-cluster-down.sh:
# a single-node Kubernetes run directly on this machine (no Docker, no
# systemd), measured in ../shared notes "local-node". Sourced, not run.
#
# Every process and file lives under bin/local-cluster ($LC) where the
# binaries allow it; what they write elsewhere (see local-cluster-down.sh) is
# recorded in $LC/snapshot before the first start and undone by down.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/bin
LC=$BIN/local-cluster
PIDS=$LC/pids
LOGS=$LC/logs
PKI=$LC/pki
SNAP=$LC/snapshot

K8S_VERSION=$(cd "$ROOT/hack/k8s-binaries" && GOWORK=off go list -m -f '{{.Version}}' k8s.io/kubernetes)
K8S_BIN=$BIN/k8s/$K8S_VERSION
HELM_VERSION=v3.22.0
# What scripts/kubevirt-build.sh builds into bin/kubevirt/<version>.
KUBEVIRT_VERSION=v1.9.0
HELM=$BIN/helm-$HELM_VERSION

# Fixed ports, all below the ephemeral range (32768-60999) where envtest's
# etcd and apiservers of other jobs pick theirs.
ETCD_CLIENT_PORT=22379
ETCD_PEER_PORT=22380
ETCD_METRICS_PORT=22381
APISERVER_PORT=16443
KCM_PORT=20257
SCHEDULER_PORT=20259
KUBELET_PORT=20250
KUBELET_HEALTHZ_PORT=20248
CONTAINERD_STREAM_PORT=20252

NODE_NAME=wukong-local
# The node's InternalIP: the first global IPv4 address (eth0 here), unless
# LOCAL_CLUSTER_NODE_IP says otherwise. The apiserver listens there too, so
# pods reach it (through the kubernetes Service's DNAT, see up).
NODE_IP=${LOCAL_CLUSTER_NODE_IP:-$(ip -4 -o addr show scope global | awk '{split($4, a, "/"); print a[1]; exit}')}
SERVICE_CIDR=10.0.0.0/24
SERVICE_IP=10.0.0.1
POD_CIDR=10.244.0.0/24
CNI_BRIDGE=wukongcni0
# containerd's CNI bin_dir; Multus installs its shim and plugins there.
CNI_BIN_DIR=/opt/cni/bin
# Our own iptables chain (nat) standing in for kube-proxy for the one
# Service pods here need: kubernetes.default (SERVICE_IP:443).
SVC_CHAIN=WUKONG-LOCAL-SVC

CONTAINERD_SOCK=$LC/containerd/containerd.sock
RELEASE_NAMESPACE=wukong-system
RELEASE=wukong
KUBECONFIG_ADMIN=$LC/kubeconfig

# The sysctls kubelet (setupKernelTunables) and the CNI bridge plugin
# (isGateway) may change; their values are snapshotted and restored.
SYSCTLS=(net.ipv4.ip_forward net.ipv6.conf.all.forwarding vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
# Host paths the kubelet, containerd and the CNI plugins write whatever
# their configured directories are.
# KubeVirt's virt-handler writes its host paths (hostPath volumes of
# virt-operator's DaemonSet, components/daemonsets.go).
# local-path-provisioner's volumes (bin/cdi/manifests/local-path.yaml), the
# CSI driver's (scripts/local-cluster-csi.sh), Multus's and its CNI plugins'
# (bin/cdi/manifests/multus.yaml: /opt/cni/bin and Multus's run and state dirs).
HOST_PATHS=(/var/lib/kubelet /var/lib/cni /run/containerd /run/netns /var/log/containers /var/log/pods /opt/containerd
  /run/kubevirt /run/kubevirt-private /run/kubevirt-libvirt-runtimes /var/lib/kubevirt-node-labeller
  /var/lib/wukong-local-path
  /var/lib/wukong-csi
  /opt/cni /run/multus /run/k8s.cni.cncf.io /etc/cni/multus)

log() { printf '%s local-cluster: %s\n' "$(date -u +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# alive PIDFILE: the process recorded there runs (and is not a zombie).
alive() {
  local pid
  [ -s "$1" ] || return 1
  pid=$(cat "$1")
  [ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null
}

# shim_pids: the containerd-shim-runc-v2 processes of OUR containerd (their
# command line names our socket), one per pod.
shim_pids() {
  local f
  # grep exits 2 when a process vanishes while it reads; the matches count.
  { grep -l -a -F -- "$CONTAINERD_SOCK" /proc/[0-9]*/cmdline 2>/dev/null || true; } | while read -r f; do
    if tr '\0' ' ' 2>/dev/null <"$f" | grep -q -- "containerd-shim.* -address $CONTAINERD_SOCK"; then
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
