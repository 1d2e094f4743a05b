# shellcheck shell=bash
# The nodes' steps of scripts/local-cluster/up.sh (sourced by it):
# node-network, nodes, service, nodes-ready. Each node is a PID and mount
# namespace (and with two or more nodes a network and UTS namespace too),
# the way kind's nodes are containers, holding its containerd, its kubelet
# and its pods:
#
#   PID 1 is our pause (it reaps orphans). KubeVirt's virt-handler (hostPID)
#   works through /proc/1/root and /proc/1/ns/mnt, the "host's" PID 1; on
#   this machine PID 1 is the VM's init, whose /proc entries even root may
#   not open ("open /proc/1/ns/mnt: permission denied").
#   The mount namespace starts private (nothing propagates back to the
#   machine); the paths a kubelet and containerd write whatever their
#   configuration ($NODE_PRIVATE_PATHS: /var/lib/kubelet, /var/lib/cni,
#   /run/containerd, /run/netns, /var/log/containers, /var/log/pods,
#   /etc/cni/net.d, and the add-ons' node state: KubeVirt's /run/kubevirt*,
#   Multus's /run/multus) are bind mounts of the node's own directories under
#   $LC/nodes/<node>/host, so two nodes never share them; then / is made
#   shared, as on systemd hosts (virt-handler's Bidirectional mount of
#   /var/run/kubevirt needs it). Every mount goes with the namespace when
#   down stops its processes.
#   Own network namespace (two or more nodes): a veth into the machine's
#   bridge $NODES_BRIDGE, the node's IP, a default route via the machine,
#   and a route to every other node's pod CIDR via that node; the machine
#   routes each pod CIDR to its node.

# ---------------------------------------------------------------- node network
plan_node_network() {
  if [ "$NODE_COUNT" = 1 ]; then
    echo "one node: it uses the machine's network namespace and IP $HOST_IP; nothing to do"
    return
  fi
  echo "bridge $NODES_BRIDGE with $NODES_NET.1/24 on the machine; net.ipv4.ip_forward=1 (restored by down)"
}
step_node_network() {
  [ "$NODE_COUNT" = 1 ] && return
  if ! ip link show "$NODES_BRIDGE" >/dev/null 2>&1; then
    ip link add "$NODES_BRIDGE" type bridge
    ip addr add "$NODES_NET.1/24" dev "$NODES_BRIDGE"
    ip link set "$NODES_BRIDGE" up
    log "bridge $NODES_BRIDGE ($NODES_NET.1/24) for the nodes"
  fi
  sysctl -q -w net.ipv4.ip_forward=1
}

# ---------------------------------------------------------------- nodes
plan_nodes() {
  local n
  for n in $(node_names); do
    node_env "$n"
    echo "node $n: IP $NODE_ADDR, pod CIDR $NODE_POD_CIDR, cgroup root $NODE_CGROUP_ROOT, dir ${NODE_DIR#"$ROOT"/}"
    if [ "$NODE_OWN_NET" = 1 ]; then
      echo "  unshare --pid --mount --net --uts (pause as PID 1); veth wkn$NODE_I -> eth0 in the node, $NODE_ADDR/24 via $NODES_NET.1;"
      echo "  routes to the other nodes' pod CIDRs; ip route $NODE_POD_CIDR via $NODE_ADDR on the machine; cgroup $NODE_CGROUP_ROOT in every hierarchy"
    else
      echo "  unshare --pid --mount (pause as PID 1), the machine's network namespace"
    fi
    echo "  private binds in the node: ${NODE_PRIVATE_PATHS[*]} <- ${NODE_DIR#"$ROOT"/}/host/...; mount --make-rshared /"
    echo "  containerd (socket ${NODE_SOCK#"$ROOT"/}, CNI bridge $CNI_BRIDGE, bin $CNI_BIN_DIR); import pause and manager;"
    echo "  kubelet $K8S_VERSION on $NODE_ADDR:$KUBELET_PORT (failCgroupV1: false, cgroupfs, root /var/lib/kubelet in the node)"
  done
}

# node_namespaces NODE: its PID 1 and namespaces, private binds, network.
node_namespaces() {
  local n=$1 pid p peer other
  node_env "$n"
  mkdir -p "$NODE_DIR"
  if ! alive "$PIDS/$n.ns.pid"; then
    local flags=(--pid --fork --mount --propagation private --mount-proc)
    [ "$NODE_OWN_NET" = 1 ] && flags+=(--net --uts)
    setsid unshare "${flags[@]}" "$IMG_DIR/pause" >>"$LOGS/$n.ns.log" 2>&1 </dev/null &
    child_of $! "the namespaces' PID 1 of $n" "$LOGS/$n.ns.log" >"$PIDS/$n.ns.pid"
    pid=$(cat "$PIDS/$n.ns.pid")
    for p in "${NODE_PRIVATE_PATHS[@]}"; do
      mkdir -p "$p" "$NODE_DIR/host$p"
      nsenter -t "$pid" --mount -- mount --bind "$NODE_DIR/host$p" "$p"
    done
    nsenter -t "$pid" --mount -- mount --make-rshared /
    if [ "$NODE_OWN_NET" = 1 ]; then
      nsenter -t "$pid" --uts -- hostname "$n"
      peer=wkn$NODE_I
      ip link add "$peer" type veth peer name eth0 netns "$pid"
      ip link set "$peer" master "$NODES_BRIDGE" up
      nsenter -t "$pid" --net -- sh -c "ip link set lo up && ip link set eth0 up && ip addr add $NODE_ADDR/24 dev eth0 && ip route add default via $NODES_NET.1"
    fi
    log "node $n: namespaces' PID 1 is $pid on the machine"
  fi
  pid=$(cat "$PIDS/$n.ns.pid")
  if [ "$NODE_OWN_NET" = 1 ]; then
    # Pod CIDRs: on the machine to each node, in each node to the others.
    ip route replace "$NODE_POD_CIDR" via "$NODE_ADDR"
    for other in $(node_names); do
      [ "$other" = "$n" ] && continue
      node_env "$other"
      local o_cidr=$NODE_POD_CIDR o_addr=$NODE_ADDR
      node_env "$n"
      nsenter -t "$pid" --net -- ip route replace "$o_cidr" via "$o_addr"
    done
    # The node's own cgroup root in every hierarchy (kubelet refuses a
    # cgroupRoot that does not exist); cpuset's cpus and mems copied from
    # the parent, as a v1 cpuset cgroup starts empty.
    local h
    for h in /sys/fs/cgroup/*/; do
      if [ ! -d "$h" ] || [ ! -w "$h" ]; then continue; fi
      mkdir -p "$h${NODE_CGROUP_ROOT#/}"
      if [ -f "${h}cpuset.cpus" ]; then
        cat "${h}cpuset.cpus" >"$h${NODE_CGROUP_ROOT#/}/cpuset.cpus"
        cat "${h}cpuset.mems" >"$h${NODE_CGROUP_ROOT#/}/cpuset.mems"
      fi
    done
  fi
}

# node_containerd NODE: its config (own root, state, socket and runc root
# under the node's directory), its CNI config, and containerd started in
# the node. Needs restrict_oom_score_adj (no CAP_SYS_RESOURCE here: runc
# cannot set the sandbox's oom_score_adj of -998) and cgroupfs (no systemd).
node_containerd() {
  local n=$1 plugins_src p
  node_env "$n"
  mkdir -p "$NODE_DIR/containerd" "$NODE_DIR/host/etc/cni/net.d" "$NODE_DIR/cni/ipam"
  # CNI plugins in $CNI_BIN_DIR (/opt/cni/bin, containerd's one bin_dir),
  # where Multus's DaemonSet puts multus-shim and the plugins it ships.
  # Pods scheduled before Multus need the default network's plugins there
  # already: the pinned ones when `make cdi-images` built them
  # (bin/cni-plugins), else Debian's.
  for p in bridge host-local loopback portmap; do
    plugins_src=/usr/lib/cni
    [ -x "$BIN/cni-plugins/bin/$p" ] && plugins_src=$BIN/cni-plugins/bin
    [ -x "$CNI_BIN_DIR/$p" ] || install -D -m 0755 "$plugins_src/$p" "$CNI_BIN_DIR/$p"
  done
  cat >"$NODE_DIR/containerd/config.toml" <<EOF
version = 2
root = "$NODE_DIR/containerd/root"
state = "$NODE_DIR/containerd/state"
[grpc]
  address = "$NODE_SOCK"
[ttrpc]
  address = "$NODE_SOCK.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$NODE_DIR/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "$CONTAINERD_STREAM_PORT"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "$(command -v runc)"
        Root = "$NODE_DIR/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN_DIR"
    conf_dir = "/etc/cni/net.d"
EOF
  # /etc/cni/net.d in the node is $NODE_DIR/host/etc/cni/net.d.
  cat >"$NODE_DIR/host/etc/cni/net.d/10-wukong-local.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "wukong-local", "plugins": [
  {"type": "bridge", "bridge": "$CNI_BRIDGE", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "dataDir": "$NODE_DIR/cni/ipam",
            "ranges": [[{"subnet": "$NODE_POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "loopback"}]}
EOF
  start_in_node "$n" containerd containerd --config "$NODE_DIR/containerd/config.toml"
  wait_for "containerd of $n" 30 ctr -a "$NODE_SOCK" version
}

# node_kubelet NODE: the base images imported, the kubelet's config, the
# kubelet started in the node. failCgroupV1: false (this host is cgroup v1;
# 1.37 refuses it otherwise), cgroupfs (no systemd), serving on the node IP
# so the apiserver reaches it for logs, exec and port-forward. Its root
# directory is the default /var/lib/kubelet (the node's own): virt-handler
# finds pods' volumes and the device-plugin sockets there (KubeVirt's
# util.KubeletRoot is a constant).
node_kubelet() {
  local n=$1 have ref_tar tars
  node_env "$n"
  tars=("$PAUSE_IMAGE=$IMG_DIR/pause.tar")
  # The manager's image when the images step built it (the wukong step needs it).
  if [ -s "$LC/manager-tag" ]; then tars+=("$MANAGER_REPO:$(cat "$LC/manager-tag")=$IMG_DIR/manager-$(cat "$LC/manager-tag").tar"); fi
  have=$(ctr -a "$NODE_SOCK" -n k8s.io images ls -q)
  for ref_tar in "${tars[@]}"; do
    if ! grep -qxF "${ref_tar%%=*}" <<<"$have"; then
      ctr -a "$NODE_SOCK" -n k8s.io images import "${ref_tar#*=}" >/dev/null
      log "imported ${ref_tar%%=*} on $n"
    fi
  done
  mkdir -p "$NODE_DIR/pod-logs"
  cat >"$NODE_DIR/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: $NODE_CGROUP_ROOT
containerRuntimeEndpoint: unix://$NODE_SOCK
address: $NODE_ADDR
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: $PKI/$n-serving.crt
tlsPrivateKeyFile: $PKI/$n-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: AlwaysAllow}
clusterDNS: [10.0.0.10]
clusterDomain: cluster.local
podLogsDir: $NODE_DIR/pod-logs
failSwapOn: false
resolvConf: /etc/resolv.conf
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
rotateCertificates: false
serverTLSBootstrap: false
EOF
  start_kubelet "$n"
}

# start_kubelet NODE: the kubelet in NODE's namespaces with the
# configuration node_kubelet wrote (also scripts/local-cluster/node.sh
# start-kubelet).
start_kubelet() {
  local n=$1
  node_env "$n"
  start_in_node "$n" kubelet "$K8S_BIN/kubelet" --config "$NODE_DIR/kubelet-config.yaml" --kubeconfig "$NODE_DIR/kubelet.kubeconfig" \
    --cert-dir "$NODE_DIR/kubelet-pki" --hostname-override "$n" --node-ip "$NODE_ADDR"
}

step_nodes() {
  local n running
  mkdir -p "$LC/nodes"
  running=$(cat "$NODES_COUNT_FILE" 2>/dev/null || true)
  if [ -n "$running" ] && [ "$running" != "$NODE_COUNT" ] && compgen -G "$PIDS/*.ns.pid" >/dev/null; then
    die "the cluster runs $running node(s), LOCAL_CLUSTER_NODES asks for $NODE_COUNT: run scripts/local-cluster/down.sh first"
  fi
  echo "$NODE_COUNT" >"$NODES_COUNT_FILE"
  for n in $(node_names); do
    node_namespaces "$n"
  done
  for n in $(node_names); do
    node_containerd "$n"
    node_kubelet "$n"
  done
}

# ---------------------------------------------------------------- service
# kubernetes.default for pods: SERVICE_IP:443 -> the apiserver, in our own
# nat chain hooked into PREROUTING (pod traffic) and OUTPUT (host-network
# pods and the machine), on the machine and in every node with its own
# network namespace.
plan_service() {
  echo "iptables -t nat: chain $SVC_CHAIN, $SERVICE_IP:443 -> DNAT $APISERVER_IP:$APISERVER_PORT, hooked into PREROUTING and OUTPUT"
  [ "$NODE_COUNT" = 1 ] || echo "  on the machine and in each node's network namespace"
}
svc_chain() { # iptables-command-prefix...
  if ! "$@" -t nat -S "$SVC_CHAIN" >/dev/null 2>&1; then
    "$@" -t nat -N "$SVC_CHAIN"
    "$@" -t nat -A "$SVC_CHAIN" -d "$SERVICE_IP/32" -p tcp --dport 443 -j DNAT --to-destination "$APISERVER_IP:$APISERVER_PORT"
    "$@" -t nat -A PREROUTING -j "$SVC_CHAIN"
    "$@" -t nat -A OUTPUT -j "$SVC_CHAIN"
  fi
}
step_service() {
  local n
  svc_chain iptables
  for n in $(node_names); do
    node_env "$n"
    [ "$NODE_OWN_NET" = 1 ] || continue
    svc_chain nsenter -t "$(cat "$PIDS/$n.ns.pid")" --net -- iptables
  done
}

# ---------------------------------------------------------------- nodes ready
plan_nodes_ready() {
  echo "delete Node objects of an earlier run's other nodes; wait until every node is Ready;"
  echo "label $NODE_NAME node-role.kubernetes.io/control-plane (virt-operator needs such a node);"
  echo "wait for ServiceAccount default"
}
step_nodes_ready() {
  local n
  # Nodes of an earlier run with more nodes (etcd keeps them) are gone.
  for n in $(kc get nodes -o name | sed 's#^node/##'); do
    # (not grep -q: it exits at the first match, node_names then dies of
    # SIGPIPE, and pipefail makes the pipeline fail: a running node was
    # deleted as an earlier run's)
    if ! node_names | grep -xF "$n" >/dev/null; then
      kc delete node "$n" --wait=false >/dev/null
      log "deleted node $n (an earlier run's; this one has $(node_names | xargs))"
    fi
  done
  for n in $(node_names); do
    wait_for "node $n" 120 node_ready "$n"
  done
  # This node runs the control plane, and says so as kubeadm's nodes do
  # (virt-operator's Deployment requires such a node); a kubelet may not set
  # node-role labels itself (NodeRestriction).
  kc label node "$NODE_NAME" node-role.kubernetes.io/control-plane= --overwrite >/dev/null
  log "node(s) $(node_names | xargs) Ready $(since "$T1") s after the first start"
  wait_for "ServiceAccount default" 60 kc -n default get serviceaccount default
}
