#!/usr/bin/env bash
# Stops the local cluster of scripts/local-cluster/up.sh (one node or
# several) and puts the machine back as up's snapshot
# (bin/local-cluster/snapshot) found it:
#
#  - the processes it started, by their recorded PID: every node's kubelet,
#    every pod process and containerd shim of that node's containerd (found
#    by its socket in their command line), the containerd, the node's
#    namespaces' PID 1 (whatever is left in them dies with it, their mounts
#    go, and with two or more nodes their network namespaces, iptables
#    rules and bridges too), then the simulator, scheduler,
#    controller-manager, apiserver, etcd;
#  - mounts under bin/local-cluster and the /run/netns entries made since;
#  - the CNI bridge and its veths, the nodes' bridge, every other new
#    bridge (the CNI bridge plugin's for Multus), our nat chain and the
#    KUBE-* chains the kubelet made on the machine (iptables and ip6tables:
#    KUBE-FIREWALL, KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT, ...);
#  - the kubepods cgroups and the nodes' cgroup roots, the sysctls that changed;
#  - the host paths the nodes' mount points, the kubelet, containerd and CNI
#    leave regardless of their configured directories (/var/lib/kubelet,
#    /var/lib/cni, /run/containerd, /var/log/containers, /etc/cni, KubeVirt's
#    /run/kubevirt*, ...): removed when they did not exist before, else
#    only the entries that are new.
#
# Then it compares the machine with the snapshot and fails on a difference.
# bin/local-cluster keeps the built images, PKI and etcd data (an up after
# this starts from the same cluster state); LOCAL_CLUSTER_PURGE=1 removes
# the state too (the images and binaries in bin/ stay). Safe to run twice.
set -euo pipefail
# shellcheck source=scripts/local-cluster/lib.sh
source "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || die "must run as root"

# stop NAME: SIGTERM the recorded PID, wait up to 15 s, then SIGKILL.
stop() {
  local f=$PIDS/$1.pid pid i
  if alive "$f"; then
    pid=$(cat "$f")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 75; i++)); do
      alive "$f" || break
      sleep 0.2
    done
    if alive "$f"; then kill -KILL "$pid" 2>/dev/null || true; sleep 0.2; fi
    log "stopped $1 (PID $pid)"
  fi
  rm -f "$f"
}

# 1. Every node: the kubelet first, so it restarts nothing; then the pods:
#    every process below each shim of its containerd, then the shim; the
#    containerd; last the namespaces' PID 1: whatever still runs in them
#    dies with it, and their mounts (and network) go with the last process.
nodes=$(
  for f in "$PIDS"/*.ns.pid; do if [ -e "$f" ]; then basename "$f" .ns.pid; fi; done
  if [ -d "$LC/nodes" ]; then find "$LC/nodes" -mindepth 1 -maxdepth 1 -type d -printf '%f\n'; fi
)
nodes=$(printf '%s\n' "$nodes" | sed '/^$/d' | sort -u)
for n in $nodes; do
  stop "$n.kubelet"
done
for n in $nodes; do
  sock=$LC/nodes/$n/containerd/containerd.sock
  for shim in $(shim_pids "$sock"); do
    [ -d "/proc/$shim" ] || continue
    pods=$(descendants "$shim")
    if [ -n "$pods" ]; then
      # shellcheck disable=SC2086 # one PID per word
      kill -KILL $pods 2>/dev/null || true
    fi
    kill -KILL "$shim" 2>/dev/null || true
    log "killed shim $shim of $n and its pod processes: ${pods//$'\n'/ }"
  done
  stop "$n.containerd"
  stop "$n.ns"
done
stop nmstate-sim
for p in kube-scheduler kube-controller-manager kube-apiserver etcd; do stop "$p"; done

# 2. Mounts: everything mounted under $LC (kubelet's self bind-mount of its
#    root dir, pod tmpfs volumes, container rootfs, sandbox shm), and the
#    network namespaces in /run/netns that were not there before. Deepest first.
snap_paths=$SNAP/paths
if [ -f "$SNAP/mounts" ]; then
  awk '{print $5}' /proc/self/mountinfo | sort -u | comm -13 "$SNAP/mounts" - |
    { grep -E "^($LC|/run/netns|/run/containerd|/run/kubevirt|/var/lib/kubelet)/" || true; } | awk '{print length, $0}' | sort -rn | cut -d' ' -f2- |
    while read -r m; do if umount -l "$m" 2>/dev/null; then log "unmounted $m"; fi; done
fi
# The kubelet's bind-mount of its root dir on itself (under $LC before the
# root dir moved to the default /var/lib/kubelet for KubeVirt).
for m in "$LC/kubelet" /var/lib/kubelet; do
  while grep -q " $m " /proc/self/mountinfo; do umount -l "$m"; log "unmounted $m"; done
done


# 3. Network: veths on our bridge, the bridge, our chain and the kubelet's.
if ip link show "$CNI_BRIDGE" >/dev/null 2>&1; then
  for v in $(ip -o link show master "$CNI_BRIDGE" | awk -F': ' '{print $2}' | cut -d@ -f1); do
    ip link del "$v" 2>/dev/null || true
  done
  ip link del "$CNI_BRIDGE" && log "deleted bridge $CNI_BRIDGE"
fi
# Bridges the CNI bridge plugin made for NetworkAttachmentDefinitions
# (Multus): every bridge not in the snapshot, with the VLAN links on it.
if [ -f "$SNAP/bridges" ]; then
  for b in $(ip -o link show type bridge | awk -F': ' '{print $2}'); do
    grep -qxF "$b" "$SNAP/bridges" && continue
    for v in $(ip -o link show master "$b" | awk -F': ' '{print $2}' | cut -d@ -f1); do
      ip link del "$v" 2>/dev/null || true
    done
    ip link del "$b" && log "deleted bridge $b"
  done
fi
# Host routes to the nodes' pod CIDRs went with the nodes' bridge.
# Multus's configuration in the nodes' CNI dirs: without its daemon,
# containerd must not call multus-shim at the next up.
rm -rf "$LC"/nodes/*/host/etc/cni/net.d/00-multus.conf "$LC"/nodes/*/host/etc/cni/net.d/multus.d
# remove_new_chains TOOL SNAPSHOT: for each table, the chains that are not
# in SNAPSHOT lose the rules that jump to them, then are flushed and deleted.
remove_new_chains() {
  local tool=$1 snap=$2 t chain rule
  command -v "$tool" >/dev/null || return 0
  for t in filter nat mangle raw; do
    "$tool" -t "$t" -S >/dev/null 2>&1 || continue
    for chain in $("$tool" -t "$t" -S | awk '$1 == "-N" {print $2}'); do
      # grep reads a process substitution: `sed | grep -q` under pipefail
      # fails when sed gets SIGPIPE after grep's early exit.
      if [ -f "$snap" ] && grep -q "^:$chain " <(sed -n "/^\*$t\$/,/^COMMIT/p" "$snap"); then
        continue
      fi
      case $chain in KUBE-* | "$SVC_CHAIN") ;; *) continue ;; esac
      { "$tool" -t "$t" -S | grep -E -- "-j $chain( |\$)" || true; } | while read -r rule; do
        eval "\"$tool\" -t $t -D ${rule#-A }" || true
      done
      "$tool" -t "$t" -F "$chain"
      "$tool" -t "$t" -X "$chain"
      log "$tool -t $t: removed chain $chain"
    done
  done
}
remove_new_chains iptables "$SNAP/iptables"
remove_new_chains ip6tables "$SNAP/ip6tables"

# 4. cgroups: the kubepods trees and the nodes' cgroup roots wukong-<node>
#    (in every v1 hierarchy and in unified), deepest first, unless they
#    were there before.
for c in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/*/kubepods.slice /sys/fs/cgroup/*/wukong-local*; do
  [ -d "$c" ] || continue
  if [ -f "$SNAP/cgroups" ] && grep -qxF "$c" "$SNAP/cgroups"; then continue; fi
  find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  if [ -d "$c" ]; then log "WARNING: $c is not empty"; else log "removed cgroup $c"; fi
done

# 5. sysctls back to their snapshot values.
if [ -f "$SNAP/sysctl" ]; then
  while IFS='=' read -r k v; do
    if [ "$(sysctl -n "$k" 2>/dev/null)" != "$v" ]; then
      sysctl -q -w "$k=$v" && log "sysctl $k restored to $v"
    fi
  done <"$SNAP/sysctl"
fi

# 6. Host paths: gone if they were not there, else only their new entries.
for p in "${HOST_PATHS[@]}"; do
  [ -e "$p" ] || continue
  if [ -f "$snap_paths" ] && grep -qxF "$p" "$snap_paths"; then
    find "$p" -mindepth 1 -maxdepth 1 | while read -r e; do
      grep -qxF "  $e" "$snap_paths" || { rm -rf "$e" && log "removed $e"; }
    done
  elif [ -f "$snap_paths" ]; then
    rm -rf "$p" && log "removed $p"
  fi
done
# With every pod gone, the containers' runtime state and the pod IPs
# host-local had handed out are stale.
rm -rf "$LC"/nodes/*/containerd/state "$LC"/nodes/*/containerd/runc "$LC"/nodes/*/cni/ipam

# 7. The machine against the snapshot.
diff_found=0
if [ -f "$SNAP/done" ]; then
  check() { # what expected-file actual-command...
    local what=$1 want=$2
    shift 2
    if ! diff <("$@") "$want" >"$LC/down-diff-$what" 2>&1; then
      log "DIFFERS from the snapshot: $what:"
      cat "$LC/down-diff-$what" >&2
      diff_found=1
    else
      rm -f "$LC/down-diff-$what"
    fi
  }
  cur_sysctl() { for s in "${SYSCTLS[@]}"; do v=$(sysctl -n "$s" 2>/dev/null) && printf '%s=%s\n' "$s" "$v"; done; }
  cur_bridges() { ip -o link show type bridge | awk -F': ' '{print $2}' | sort; }
  # User chains and rules; tables and built-in chains the nft backend of
  # iptables keeps once created (empty, policy ACCEPT) are not compared.
  rules() { grep -E '^(:[^ ]+ - |-A )' || true; }
  cur_chains() { "$1" 2>/dev/null | sed 's/\[[0-9]*:[0-9]*\]/[0:0]/' | rules; }
  snap_chains() { rules <"$1"; }
  check sysctl "$SNAP/sysctl" cur_sysctl
  check bridges "$SNAP/bridges" cur_bridges
  cur_veths() { ip -o link show type veth | awk -F': ' '{print $2}' | cut -d@ -f1 | sort; }
  if [ -f "$SNAP/veths" ]; then check veths "$SNAP/veths" cur_veths; fi
  # Mounts on the machine under the paths the cluster uses (the nodes' own
  # are in their mount namespaces; other jobs' mounts elsewhere are theirs).
  ours() { grep -E "^($LC|/var/lib/kubelet|/var/lib/cni|/run/containerd|/run/netns|/run/kubevirt|/var/log/containers|/var/log/pods|/etc/cni|/opt/cni|/var/lib/wukong-)" || true; }
  cur_mounts() { awk '{print $5}' /proc/self/mountinfo | sort | ours; }
  check mounts <(ours <"$SNAP/mounts") cur_mounts
  check iptables-chains <(snap_chains "$SNAP/iptables") cur_chains iptables-save
  check ip6tables-chains <(snap_chains "$SNAP/ip6tables") cur_chains ip6tables-save
  for p in "${HOST_PATHS[@]}"; do
    if [ -e "$p" ] && ! grep -qxF "$p" "$snap_paths"; then log "DIFFERS: $p exists"; diff_found=1; fi
  done
fi
for p in "$PIDS"/*.pid; do
  [ -e "$p" ] || continue
  log "DIFFERS: $p still there"
  diff_found=1
done
if [ ! -f "$SNAP/done" ]; then
  log "down: no snapshot (the cluster was not up): nothing to compare"
elif [ "$diff_found" = 0 ]; then
  # The node count is what runs; with nothing running the next up has
  # one node unless LOCAL_CLUSTER_NODES says otherwise.
  rm -rf "$SNAP" "$NODES_COUNT_FILE"
  if [ "${LOCAL_CLUSTER_PURGE:-0}" = 1 ]; then
    rm -rf "$LC/etcd" "$LC/pki" "$LC/nodes" "$LC"/*.kubeconfig "$LC/kubeconfig" "$LC/restart-manager"
  fi
  log "down: the machine matches the snapshot taken before up"
else
  die "down: the machine differs from the snapshot (kept in $SNAP)"
fi
