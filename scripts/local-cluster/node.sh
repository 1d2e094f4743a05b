#!/usr/bin/env bash
# Plays a lost node of the local cluster (issue 30: node loss).
#
#   partition NODE  cuts the node off the network (the machine's end of its
#                   veth goes down; two or more nodes only): its kubelet,
#                   KubeVirt's virt-handler and its pods, which keep
#                   running, no longer reach the control plane, as a node
#                   cut off by a switch or a hung machine. The kubelet's
#                   status stops (kube-controller-manager marks the node
#                   NotReady after its node-monitor-grace-period and taints
#                   it unreachable) and so does virt-handler's heartbeat
#                   (KubeVirt fails the node's instances whose pods are gone
#                   once it is 5 minutes old: virt-controller's node
#                   controller).
#   heal NODE       brings the link up again.
#   stop-kubelet NODE / start-kubelet NODE
#                   only the kubelet: virt-handler keeps heartbeating, so
#                   KubeVirt keeps the node's instances Running (measured:
#                   a force-deleted launcher pod's VMI stayed Running).
#   status NODE
#
# Needs root and a cluster started by scripts/local-cluster/up.sh.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/local-cluster/lib.sh
source "$HERE/lib.sh"
# shellcheck source=scripts/local-cluster/nodes.sh
source "$HERE/nodes.sh"

verb=${1:?usage: node.sh partition|heal|stop-kubelet|start-kubelet|status NODE}
n=${2:?usage: node.sh partition|heal|stop-kubelet|start-kubelet|status NODE}
node_names | grep -xF "$n" >/dev/null || die "no node $n in this cluster (nodes: $(node_names | xargs))"
pidfile=$PIDS/$n.kubelet.pid
case $verb in
  stop-kubelet)
    if alive "$pidfile"; then
      pid=$(cat "$pidfile")
      kill "$pid"
      for ((i = 0; i < 100; i++)); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
      [ -d "/proc/$pid" ] && kill -9 "$pid"
      log "stopped the kubelet of $n (PID $pid); its containerd and pods keep running"
    else
      log "the kubelet of $n is not running"
    fi
    ;;
  start-kubelet)
    [ "$(id -u)" = 0 ] || die "must run as root"
    start_kubelet "$n"
    ;;
  partition | heal)
    node_env "$n"
    [ "$NODE_OWN_NET" = 1 ] || die "node $n shares the machine's network (one node): nothing to cut"
    if [ "$verb" = partition ]; then
      ip link set "wkn$NODE_I" down
      log "node $n cut off the network (wkn$NODE_I down): kubelet, virt-handler and pods keep running there"
    else
      ip link set "wkn$NODE_I" up
      log "node $n back on the network (wkn$NODE_I up)"
    fi
    ;;
  status)
    if alive "$pidfile"; then echo "kubelet running $(cat "$pidfile")"; else echo "kubelet stopped"; fi
    node_env "$n"
    [ "$NODE_OWN_NET" = 1 ] && ip -br link show "wkn$NODE_I"
    ;;
  *) die "unknown verb $verb (partition, heal, stop-kubelet, start-kubelet, status)" ;;
esac
