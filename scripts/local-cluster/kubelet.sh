#!/usr/bin/env bash
# Stops or starts one local-cluster node's kubelet, to play a node that is
# lost (issue 30: node loss): the kubelet stops posting the node's status, so
# kube-controller-manager marks the node NotReady after its
# node-monitor-grace-period and taints it unreachable, while the node's
# containerd and pods keep running, as on a machine cut from the control
# plane. `start` runs the kubelet again with the configuration up.sh wrote
# (the same command, in the node's namespaces).
#
# Usage: scripts/local-cluster/kubelet.sh stop|start|status NODE
# Needs root and a cluster started by scripts/local-cluster/up.sh.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/local-cluster/lib.sh
source "$HERE/lib.sh"
# shellcheck source=scripts/local-cluster/nodes.sh
source "$HERE/nodes.sh"

verb=${1:?usage: kubelet.sh stop|start|status NODE}
n=${2:?usage: kubelet.sh stop|start|status NODE}
node_names | grep -xF "$n" >/dev/null || die "no node $n in this cluster (nodes: $(node_names | xargs))"
pidfile=$PIDS/$n.kubelet.pid
case $verb in
  stop)
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
  start)
    [ "$(id -u)" = 0 ] || die "must run as root"
    start_kubelet "$n"
    ;;
  status)
    if alive "$pidfile"; then echo "running $(cat "$pidfile")"; else echo stopped; fi
    ;;
  *) die "unknown verb $verb (stop, start, status)" ;;
esac
