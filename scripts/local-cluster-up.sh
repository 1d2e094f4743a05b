#!/usr/bin/env bash
# Starts a real single-node Kubernetes on THIS machine, without Docker or
# systemd, and installs Wukong into it with its Helm chart:
#
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler and the
#   kubelet (all built from hack/k8s-binaries), Debian's containerd, runc
#   and CNI plugins, a pause image and the manager image built here from
#   this checkout (static binary, user 65532, nothing else, as the
#   Dockerfile), helm built from its Go module, the chart installed into
#   namespace wukong-system which enforces Pod Security "restricted";
#   and KubeVirt when `make kubevirt-images` has built it (see below).
#
# Writes bin/local-cluster/kubeconfig (cluster-admin). Idempotent: what
# runs keeps running, what is built stays built (bin/), the images are
# imported and the release upgraded only when they changed. Needs root
# (containerd, the kubelet, iptables). Undo with scripts/local-cluster-down.sh.
#
# Not here: kube-proxy and DNS. The one Service pods need, kubernetes.default
# (the manager's API server), is a DNAT rule in our own nat chain
# (WUKONG-LOCAL-SVC).
set -euo pipefail
# shellcheck source=scripts/local-cluster-lib.sh
source "$(dirname "$0")/local-cluster-lib.sh"

[ "$(id -u)" = 0 ] || die "must run as root (containerd, kubelet, iptables, mounts)"
[ -n "$NODE_IP" ] || die "no global IPv4 address found; set LOCAL_CLUSTER_NODE_IP"
t0=$(date +%s.%N)
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}'; }
mkdir -p "$LC" "$PIDS" "$LOGS" "$PKI"

# ---------------------------------------------------------------- packages
need_pkgs=()
command -v containerd >/dev/null || need_pkgs+=(containerd)
command -v runc >/dev/null || need_pkgs+=(runc)
[ -x /usr/lib/cni/bridge ] || need_pkgs+=(containernetworking-plugins)
command -v iptables >/dev/null || need_pkgs+=(iptables)
command -v openssl >/dev/null || need_pkgs+=(openssl)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "apt-get install ${need_pkgs[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_pkgs[@]}" >"$LOGS/apt.log" 2>&1 ||
    die "apt-get install failed, see $LOGS/apt.log"
fi

# ---------------------------------------------------------------- snapshot
# Before anything of ours runs, record what down must restore. Kept until
# down has restored it, so a second up does not snapshot our own changes.
if [ ! -f "$SNAP/done" ]; then
  if compgen -G "$PIDS/*.pid" >/dev/null; then
    die "$PIDS has PID files but no snapshot: run scripts/local-cluster-down.sh first"
  fi
  log "snapshot of the machine into $SNAP"
  rm -rf "$SNAP" && mkdir -p "$SNAP"
  for s in "${SYSCTLS[@]}"; do
    v=$(sysctl -n "$s" 2>/dev/null) && printf '%s=%s\n' "$s" "$v"
  done >"$SNAP/sysctl"
  ip -o link show type bridge | awk -F': ' '{print $2}' | sort >"$SNAP/bridges"
  iptables-save 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]/[0:0]/' >"$SNAP/iptables" || true
  ip6tables-save 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]/[0:0]/' >"$SNAP/ip6tables" || true
  for p in "${HOST_PATHS[@]}"; do
    if [ -e "$p" ]; then echo "$p"; find "$p" -mindepth 1 -maxdepth 1 | sed 's/^/  /'; fi
  done >"$SNAP/paths"
  for c in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/*/kubepods.slice; do
    if [ -d "$c" ]; then echo "$c"; fi
  done >"$SNAP/cgroups"
  awk '{print $5}' /proc/self/mountinfo | sort >"$SNAP/mounts"
  touch "$SNAP/done"
fi

# ---------------------------------------------------------------- binaries
for b in etcd kube-apiserver kube-controller-manager kube-scheduler; do
  [ -x "$K8S_BIN/$b" ] || { log "building the control plane (scripts/envtest-assets.sh)"; "$ROOT/scripts/envtest-assets.sh" >/dev/null; break; }
done
minor=${K8S_VERSION#v*.}
minor=${minor%%.*}
k8s_ldflags="-s -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
if [ ! -x "$K8S_BIN/kubelet" ]; then
  log "building kubelet $K8S_VERSION into $K8S_BIN (about 10 minutes on 2 cores the first time)"
  s=$(date +%s.%N)
  (cd "$ROOT/hack/k8s-binaries" && GOWORK=off CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags="$k8s_ldflags" -o "$K8S_BIN/kubelet.tmp" k8s.io/kubernetes/cmd/kubelet)
  mv "$K8S_BIN/kubelet.tmp" "$K8S_BIN/kubelet"
  log "kubelet built in $(since "$s") s"
fi
if [ ! -x "$HELM" ]; then
  log "building helm $HELM_VERSION into $HELM"
  s=$(date +%s.%N)
  tmp=$BIN/.tmp-helm
  # The ldflags of helm's Makefile: its version, and the Kubernetes version
  # `helm template` and `helm lint` assume without a cluster (1.37: helm
  # v3.22.0 is built with client-go v0.37).
  hv=helm.sh/helm/v3
  (cd / && GOWORK=off CGO_ENABLED=0 GOBIN=$tmp nice -n 10 go install -trimpath \
    -ldflags="-s -w -X $hv/internal/version.version=$HELM_VERSION -X $hv/internal/version.gitTreeState=clean -X $hv/pkg/chartutil.k8sVersionMajor=1 -X $hv/pkg/chartutil.k8sVersionMinor=37 -X $hv/pkg/lint/rules.k8sVersionMajor=1 -X $hv/pkg/lint/rules.k8sVersionMinor=37" \
    "$hv/cmd/helm@$HELM_VERSION")
  mv "$tmp/helm" "$HELM" && rm -rf "$tmp"
  log "helm built in $(since "$s") s"
fi

# ---------------------------------------------------------------- images
# pause and manager, as docker-archive tars written by hack/local-images.
img=$LC/images
mkdir -p "$img"
s=$(date +%s.%N)
(cd "$ROOT/hack/local-images" && GOWORK=off CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags="-s -w" -o "$img/mkimage" ./cmd/mkimage &&
  GOWORK=off CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags="-s -w" -o "$img/pause" ./cmd/pause)
# The manager exactly as the Dockerfile builds it (GOWORK=off: the operator
# module resolves lib/* by its replace directives), from the working tree,
# or with LOCAL_CLUSTER_REF=<git ref> from that commit (e.g. HEAD while the
# working tree is mid-edit).
src=$ROOT
if [ -n "${LOCAL_CLUSTER_REF:-}" ]; then
  src=$LC/src
  rm -rf "$src" && mkdir -p "$src"
  git -C "$ROOT" archive "$LOCAL_CLUSTER_REF" operator lib | tar -x -C "$src"
  log "building the manager from $LOCAL_CLUSTER_REF ($(git -C "$ROOT" rev-parse --short "$LOCAL_CLUSTER_REF"))"
fi
(cd "$src/operator" && GOWORK=off CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags="-s -w" -o "$img/manager" ./cmd/manager) ||
  die "building the manager from $src/operator failed (LOCAL_CLUSTER_REF=HEAD builds the last commit instead)"
PAUSE_IMAGE=localhost/wukong/pause:local
# The tag names the binary's content, so a changed manager is a new image
# and `helm upgrade` rolls the Deployment; an unchanged one changes nothing.
manager_tag=$(awk '/^appVersion:/ {gsub(/"/, "", $2); print $2}' "$ROOT/charts/wukong/Chart.yaml")-$(sha256sum "$img/manager" | cut -c1-12)
MANAGER_REPO=localhost/wukong/manager
MANAGER_IMAGE=$MANAGER_REPO:$manager_tag
[ -f "$img/pause.tar" ] || "$img/mkimage" -ref "$PAUSE_IMAGE" -out "$img/pause.tar" -file "$img/pause=/pause:0755" -entrypoint /pause -user 65535:65535
[ -f "$img/manager-$manager_tag.tar" ] || {
  rm -f "$img"/manager-*.tar
  "$img/mkimage" -ref "$MANAGER_IMAGE" -out "$img/manager-$manager_tag.tar" -file "$img/manager=/manager:0755" -entrypoint /manager -user 65532:65532
}
log "images built in $(since "$s") s: $PAUSE_IMAGE, $MANAGER_IMAGE"

# ---------------------------------------------------------------- PKI
# A CA, serving certs for the apiserver and kubelet, one client cert (and
# kubeconfig) per component, the ServiceAccount signing key. Valid 30 days;
# kept across runs (delete bin/local-cluster to start over).
mkcert() { # name CN O SANs(empty: client only); signed by $PKI/${CA:-ca}
  local n=$1 cn=$2 o=$3 san=$4 ca=${CA:-ca} subj
  [ -f "$PKI/$n.crt" ] && return
  subj="/CN=$cn"
  if [ -n "$o" ]; then subj="$subj/O=$o"; fi
  openssl req -newkey rsa:2048 -nodes -keyout "$PKI/$n.key" -out "$PKI/$n.csr" -subj "$subj" 2>/dev/null
  if [ -n "$san" ]; then
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$san" >"$PKI/$n.ext"
  else
    echo 'extendedKeyUsage=clientAuth' >"$PKI/$n.ext"
  fi
  openssl x509 -req -in "$PKI/$n.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial -out "$PKI/$n.crt" -days 30 -extfile "$PKI/$n.ext" 2>/dev/null
}
kubeconfig() { # file cert-name
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://$NODE_IP:$APISERVER_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: $2
  user:
    client-certificate: $PKI/$2.crt
    client-key: $PKI/$2.key
contexts:
- name: local
  context: {cluster: local, user: $2}
current-context: local
EOF
}
if [ ! -f "$PKI/ca.crt" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -days 30 -subj "/CN=wukong-local-ca" 2>/dev/null
  openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
  openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
fi
# The aggregation layer's own CA and the client cert the apiserver proxies
# aggregated APIs (KubeVirt's subresources.kubevirt.io) with, as kubeadm
# makes them: the extension server trusts X-Remote-User only from this CA.
if [ ! -f "$PKI/front-proxy-ca.crt" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$PKI/front-proxy-ca.key" -out "$PKI/front-proxy-ca.crt" -days 30 -subj "/CN=wukong-local-front-proxy-ca" 2>/dev/null
fi
CA=front-proxy-ca mkcert front-proxy-client front-proxy-client "" ""
mkcert apiserver kube-apiserver "" "IP:127.0.0.1,IP:$SERVICE_IP,IP:$NODE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
mkcert admin local-admin system:masters ""
mkcert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters ""
mkcert kcm system:kube-controller-manager "" ""
mkcert scheduler system:kube-scheduler "" ""
mkcert kubelet-client "system:node:$NODE_NAME" system:nodes ""
mkcert kubelet-serving "$NODE_NAME" "" "IP:127.0.0.1,IP:$NODE_IP,DNS:$NODE_NAME"
kubeconfig "$KUBECONFIG_ADMIN" admin
kubeconfig "$LC/kcm.kubeconfig" kcm
kubeconfig "$LC/scheduler.kubeconfig" scheduler
kubeconfig "$LC/kubelet.kubeconfig" kubelet-client
kc() { kubectl --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

# ---------------------------------------------------------------- processes
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
wait_for() { # what seconds command...
  local what=$1 secs=$2 i
  shift 2
  for ((i = 0; i < secs * 5; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  die "$what not ready after ${secs}s (logs in $LOGS)"
}

mkdir -p "$LC/etcd"
t1=$(date +%s.%N) # the start of the processes (t0 includes the builds)
start etcd "$K8S_BIN/etcd" --name local --data-dir "$LC/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "local=http://127.0.0.1:$ETCD_PEER_PORT" --listen-metrics-urls "http://127.0.0.1:$ETCD_METRICS_PORT"
# --allow-privileged: virt-handler is a privileged DaemonSet (kube-apiserver's
# default refuses privileged containers; kubeadm sets it too).
# --enable-aggregator-routing: without kube-proxy no Service IP works, so the
# apiserver reaches aggregated APIs and admission webhooks (KubeVirt's
# virt-api, virt-operator) at their endpoints' pod IPs instead.
start kube-apiserver "$K8S_BIN/kube-apiserver" --etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --bind-address "$NODE_IP" --advertise-address "$NODE_IP" --secure-port "$APISERVER_PORT" \
  --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" --client-ca-file "$PKI/ca.crt" \
  --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority "$PKI/ca.crt" --kubelet-preferred-address-types InternalIP \
  --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$PKI/sa.pub" \
  --service-account-signing-key-file "$PKI/sa.key" --service-cluster-ip-range "$SERVICE_CIDR" \
  --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction --allow-privileged=true \
  --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
  --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
  --requestheader-extra-headers-prefix X-Remote-Extra- \
  --proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key" \
  --enable-aggregator-routing=true

# containerd: its own root, state, socket and runc root under $LC. Needs
# restrict_oom_score_adj (no CAP_SYS_RESOURCE here: runc cannot set the
# sandbox's oom_score_adj of -998) and cgroupfs (no systemd).
mkdir -p "$LC/containerd" "$LC/cni/net.d" "$LC/cni/ipam"
# CNI plugins in $CNI_BIN_DIR (/opt/cni/bin, containerd's one bin_dir), where
# Multus's DaemonSet puts multus-shim and the plugins v1.10.0 it ships
# (install_multus, docs/notes/real-cdi-multus.md). Pods scheduled before Multus
# need the default network's plugins there already: the same v1.10.0 ones
# when `make cdi-images` built them, else Debian's.
plugins_src=/usr/lib/cni
[ -x "$BIN/cdi/bin/cni/bridge" ] && plugins_src=$BIN/cdi/bin/cni
for p in bridge host-local loopback portmap; do
  [ -x "$CNI_BIN_DIR/$p" ] || install -D -m 0755 "$plugins_src/$p" "$CNI_BIN_DIR/$p"
done
cat >"$LC/containerd/config.toml" <<EOF
version = 2
root = "$LC/containerd/root"
state = "$LC/containerd/state"
[grpc]
  address = "$CONTAINERD_SOCK"
[plugins."io.containerd.internal.v1.opt"]
  path = "$LC/containerd/opt"
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
        Root = "$LC/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN_DIR"
    conf_dir = "$LC/cni/net.d"
EOF
cat >"$LC/cni/net.d/10-wukong-local.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "wukong-local", "plugins": [
  {"type": "bridge", "bridge": "$CNI_BRIDGE", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "dataDir": "$LC/cni/ipam",
            "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "loopback"}]}
EOF
# The node's own PID and mount namespaces, as kind's nodes have theirs:
# containerd, the kubelet and every pod run in them (the network namespace
# stays the machine's). KubeVirt's virt-handler (hostPID) works through
# /proc/1/root and /proc/1/ns/mnt, the "host's" PID 1; on this machine PID 1
# is the VM's init, whose /proc entries even root may not open ("open
# /proc/1/ns/mnt: permission denied"), while PID 1 of this namespace is our
# pause (it reaps orphans). In the namespace / is made shared, as on systemd
# hosts: virt-handler's Bidirectional mount of /var/run/kubevirt needs it,
# and nothing propagates back to the machine. Every mount made in it goes
# with it when down stops its processes.
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
if ! alive "$PIDS/node.pid"; then
  setsid unshare --pid --fork --mount --propagation private --mount-proc "$img/pause" >>"$LOGS/node.log" 2>&1 </dev/null &
  child_of $! "the node namespaces' PID 1" "$LOGS/node.log" >"$PIDS/node.pid"
  nsenter -t "$(cat "$PIDS/node.pid")" --mount -- mount --make-rshared /
  log "node namespaces: PID 1 is $(cat "$PIDS/node.pid") on the machine"
fi
# start_in_node NAME CMD...: start, in the node's namespaces; records the
# process's PID on the machine (nsenter forks it and waits).
start_in_node() {
  local name=$1
  shift
  if alive "$PIDS/$name.pid"; then return; fi
  setsid nsenter -t "$(cat "$PIDS/node.pid")" --pid --mount -- "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  child_of $! "$name" "$LOGS/$name.log" >"$PIDS/$name.pid"
  log "started $name (PID $(cat "$PIDS/$name.pid"), in the node namespaces)"
}
start_in_node containerd containerd --config "$LC/containerd/config.toml"

wait_for kube-apiserver 60 kc get --raw /readyz
wait_for containerd 30 ctr -a "$CONTAINERD_SOCK" version
log "apiserver and containerd ready $(since "$t1") s after the first start"

start kube-controller-manager "$K8S_BIN/kube-controller-manager" --kubeconfig "$LC/kcm.kubeconfig" \
  --authentication-kubeconfig "$LC/kcm.kubeconfig" --authorization-kubeconfig "$LC/kcm.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --leader-elect=false --use-service-account-credentials \
  --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
  --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" --service-cluster-ip-range "$SERVICE_CIDR"
start kube-scheduler "$K8S_BIN/kube-scheduler" --kubeconfig "$LC/scheduler.kubeconfig" \
  --authentication-kubeconfig "$LC/scheduler.kubeconfig" --authorization-kubeconfig "$LC/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" --leader-elect=false

# Images: imported (and unpacked into overlayfs) unless containerd has them.
have=$(ctr -a "$CONTAINERD_SOCK" -n k8s.io images ls -q)
for ref_tar in "$PAUSE_IMAGE=$img/pause.tar" "$MANAGER_IMAGE=$img/manager-$manager_tag.tar"; do
  if ! grep -qxF "${ref_tar%%=*}" <<<"$have"; then
    ctr -a "$CONTAINERD_SOCK" -n k8s.io images import "${ref_tar#*=}" >/dev/null
    log "imported ${ref_tar%%=*}"
  fi
done

# kubelet. failCgroupV1: false (this host is cgroup v1; 1.37 refuses it
# otherwise), cgroupfs (no systemd), serving on the node IP so the apiserver
# reaches it for logs, exec and port-forward. Its root directory is the
# default /var/lib/kubelet: virt-handler finds pods' volumes and the
# device-plugin sockets there (KubeVirt's util.KubeletRoot is a constant).
mkdir -p "$LC/kubelet" "$LC/pod-logs"
cat >"$LC/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: AlwaysAllow}
clusterDNS: [10.0.0.10]
clusterDomain: cluster.local
podLogsDir: $LC/pod-logs
failSwapOn: false
resolvConf: /etc/resolv.conf
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
rotateCertificates: false
serverTLSBootstrap: false
EOF
start_in_node kubelet "$K8S_BIN/kubelet" --config "$LC/kubelet-config.yaml" --kubeconfig "$LC/kubelet.kubeconfig" \
  --cert-dir "$LC/kubelet/pki" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP"

# kubernetes.default for pods: SERVICE_IP:443 -> the apiserver, in our own
# nat chain hooked into PREROUTING (pod traffic) and OUTPUT (host).
if ! iptables -t nat -S "$SVC_CHAIN" >/dev/null 2>&1; then
  iptables -t nat -N "$SVC_CHAIN"
  iptables -t nat -A "$SVC_CHAIN" -d "$SERVICE_IP/32" -p tcp --dport 443 -j DNAT --to-destination "$NODE_IP:$APISERVER_PORT"
  iptables -t nat -A PREROUTING -j "$SVC_CHAIN"
  iptables -t nat -A OUTPUT -j "$SVC_CHAIN"
fi

node_ready() { [ "$(kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]; }
wait_for "node $NODE_NAME" 120 node_ready
# This node runs the control plane, and says so as kubeadm's nodes do
# (virt-operator's Deployment requires such a node); a kubelet may not set
# node-role labels itself (NodeRestriction).
kc label node "$NODE_NAME" node-role.kubernetes.io/control-plane= --overwrite >/dev/null
log "node $NODE_NAME Ready $(since "$t1") s after the first start"
wait_for "ServiceAccount default" 60 kc -n default get serviceaccount default

# ---------------------------------------------------------------- KubeVirt
# import_tars DIR PREFIX: imports every DIR/*.tar into the node's containerd
# (namespace k8s.io) whose manifest (its layers' digests) changed since the
# last import, or whose image is gone: the tags (v1.9.0, v1.65.0, latest)
# stay the same across rebuilds. The stamps are $LC/imported/PREFIX<name>.
import_tars() {
  local tar manifest ref stamp have
  mkdir -p "$LC/imported"
  # Listed once, grepped as a string: `ctr ... | grep -q` under pipefail
  # fails when grep stops reading early (ctr gets SIGPIPE), which looked
  # like a missing image and imported it again.
  have=$(ctr -a "$CONTAINERD_SOCK" -n k8s.io images ls -q)
  for tar in "$1"/*.tar; do
    manifest=$(tar -xOf "$tar" manifest.json)
    ref=$(grep -o '"RepoTags":\["[^"]*"' <<<"$manifest" | cut -d'"' -f4)
    stamp=$LC/imported/$2$(basename "$tar" .tar)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$manifest" ] ||
      ! grep -qxF "$ref" <<<"$have"; then
      ctr -a "$CONTAINERD_SOCK" -n k8s.io images import "$tar" >/dev/null
      printf '%s' "$manifest" >"$stamp"
      log "imported $ref"
    fi
  done
}

# When `make kubevirt-images` has built it (or LOCAL_CLUSTER_KUBEVIRT=1;
# =0 skips it): the images imported, then installed as KubeVirt's user guide
# says: the operator manifest, the KubeVirt CR, software emulation switched
# on with the documented merge patch (this machine's /dev/kvm cannot run
# stock kernels), and wait for the CR to be Available.
KV_DIR=$BIN/kubevirt/$KUBEVIRT_VERSION
# wanted SETTING MANIFEST WHAT: whether to install WHAT, by SETTING (0/no/
# false: no; auto or unset: when MANIFEST was built; else yes, and it must be).
wanted() {
  case ${1:-auto} in
    0 | no | false) return 1 ;;
    auto) [ -f "$2" ] ;;
    *) [ -f "$2" ] || die "$3 is not built (see the Makefile's kubevirt-images, cdi-images and csi-images)" ;;
  esac
}
if wanted "${LOCAL_CLUSTER_KUBEVIRT:-}" "$KV_DIR/manifests/kubevirt-operator.yaml" "KubeVirt $KUBEVIRT_VERSION"; then
  s=$(date +%s.%N)
  # A tar is imported again when its manifest (its layers' digests) changed
  # since the last import: KubeVirt's tags stay v1.9.0 across rebuilds.
  import_tars "$KV_DIR/images" ""
  # Server-side: the KubeVirt CRD is too big for apply's last-applied annotation.
  kc apply --server-side --force-conflicts -f "$KV_DIR/manifests/kubevirt-operator.yaml" >/dev/null
  kc wait crd/kubevirts.kubevirt.io --for condition=Established --timeout 60s >/dev/null
  # virt-operator validates the CR by webhook: wait for it to serve.
  kc -n kubevirt rollout status deployment/virt-operator --timeout 5m >/dev/null
  kc apply --server-side --force-conflicts -f "$KV_DIR/manifests/kubevirt-cr.yaml" >/dev/null
  # ImageVolume off (a beta gate, on by default in v1.9.0): KubeVirt then
  # mounts containerDisks as Kubernetes image volumes, which Debian's
  # containerd 1.6 cannot make (the container fails with 'failed to mkdir
  # "": mkdir : no such file or directory'); without it KubeVirt uses its
  # classic containerDisk containers.
  # virtTemplateDeployment off: virt-operator v1.9.0 also deploys
  # virt-template's apiserver and controller (feature gate Template, beta,
  # on by default), which come from the kubevirt.io/virt-template-* modules
  # the Go proxy here does not serve (docs/notes/real-kubevirt.md).
  kc -n kubevirt patch kubevirt kubevirt --type merge \
    -p '{"spec":{"configuration":{"developerConfiguration":{"useEmulation":true,"disabledFeatureGates":["ImageVolume"]},"virtTemplateDeployment":{"enabled":false}}}}' >/dev/null
  if ! kc -n kubevirt wait kubevirt kubevirt --for condition=Available --timeout 15m >/dev/null; then
    kc -n kubevirt get kubevirt,pods -o wide >&2 || true
    die "KubeVirt not Available after 15m (kc -n kubevirt get events; logs in $LC/pod-logs)"
  fi
  log "KubeVirt $KUBEVIRT_VERSION Available: $(since "$s") s"
fi

# ---------------------------------------------------------------- CDI
# When `make cdi-images` has built it (bin/cdi/manifests; or
# LOCAL_CLUSTER_CDI=1; =0 skips it), docs/notes/real-cdi-multus.md's install half:
# the images imported, local-path-provisioner as the default StorageClass
# (WaitForFirstConsumer, data in /var/lib/wukong-local-path), CDI v1.65.0 by
# its operator and CR (wait Available), the StorageProfile CDI cannot derive
# for rancher.io/local-path, and the image server serving the guest disk on
# http://$NODE_IP:18080/guest.qcow2 (host network: no kube-proxy, no DNS).
CDI_DIR=$BIN/cdi
if wanted "${LOCAL_CLUSTER_CDI:-}" "$CDI_DIR/manifests/cdi-operator.yaml" CDI; then
  s=$(date +%s.%N)
  import_tars "$CDI_DIR/images" cdi-
  kc apply --server-side --force-conflicts -f "$CDI_DIR/manifests/local-path.yaml" >/dev/null
  kc -n local-path-storage rollout status deployment/local-path-provisioner --timeout 5m >/dev/null
  others=$(kc get storageclass -o jsonpath='{range .items[?(@.metadata.annotations.storageclass\.kubernetes\.io/is-default-class=="true")]}{.metadata.name}{"\n"}{end}' | grep -vx local-path || true)
  [ -z "$others" ] || die "StorageClasses other than local-path are default too: $others"
  log "local-path-provisioner Ready (default StorageClass local-path): $(since "$s") s"
  s=$(date +%s.%N)
  # A manager started before CDI's CRDs existed does not watch DataVolumes
  # (it checks the CRDs at start): restarted after the chart below.
  cdi_new=0
  kc get crd datavolumes.cdi.kubevirt.io >/dev/null 2>&1 || cdi_new=1
  # Server-side: CDI's CRDs are too big for apply's last-applied annotation.
  kc apply --server-side --force-conflicts -f "$CDI_DIR/manifests/cdi-operator.yaml" >/dev/null
  kc wait crd/cdis.cdi.kubevirt.io --for condition=Established --timeout 60s >/dev/null
  kc -n cdi rollout status deployment/cdi-operator --timeout 5m >/dev/null
  kc apply --server-side --force-conflicts -f "$CDI_DIR/manifests/cdi-cr.yaml" >/dev/null
  # Earlier ups dropped cdi-deployment's readiness probe (`cat /tmp/ready`)
  # through the CR's customizeComponents, while the controller image had no
  # cat; it has busybox's now (scripts/cdi-build.sh): the probe is restored.
  if [ "$(kc get cdi cdi -o jsonpath='{.spec.customizeComponents.patches[*].resourceName}')" = cdi-deployment ]; then
    kc patch cdi cdi --type json -p '[{"op":"remove","path":"/spec/customizeComponents"}]' >/dev/null
    log "CDI: cdi-deployment's readiness probe restored (the controller image has cat now)"
  fi
  if ! kc wait cdi/cdi --for condition=Available --timeout 10m >/dev/null; then
    kc -n cdi get cdi,pods -o wide >&2 || true
    die "CDI not Available after 10m (kc -n cdi get events; logs in $LC/pod-logs)"
  fi
  log "CDI Available: $(since "$s") s"
  # CDI creates the StorageProfile of every StorageClass; the manifest fills its spec.
  wait_for "StorageProfile local-path" 120 kc get storageprofile local-path
  kc apply --server-side --force-conflicts -f "$CDI_DIR/manifests/local-path-storageprofile.yaml" >/dev/null
  s=$(date +%s.%N)
  kc apply --server-side --force-conflicts -f "$CDI_DIR/manifests/image-server.yaml" >/dev/null
  kc -n wukong-images rollout status deployment/image-server --timeout 5m >/dev/null
  log "image server Ready on http://$NODE_IP:18080/guest.qcow2: $(since "$s") s"
fi

# ---------------------------------------------------------------- Multus
# When `make cdi-images` has built it (bin/cdi/manifests/multus.yaml; or
# LOCAL_CLUSTER_MULTUS=1; =0 skips it): Multus thick v4.2.3 by its DaemonSet
# (docs/notes/real-cdi-multus.md, "Multus thick"). Its init containers install
# multus-shim and the CNI plugins v1.10.0 into $CNI_BIN_DIR; the daemon
# writes $LC/cni/net.d/00-multus.conf, which containerd then takes as the
# node's network: the wukong-local conflist becomes Multus's cluster network
# and pods' k8s.v1.cni.cncf.io/networks add NetworkAttachmentDefinitions.
if wanted "${LOCAL_CLUSTER_MULTUS:-}" "$CDI_DIR/manifests/multus.yaml" Multus; then
  s=$(date +%s.%N)
  import_tars "$CDI_DIR/images" cdi-
  nad_new=0
  kc get crd network-attachment-definitions.k8s.cni.cncf.io >/dev/null 2>&1 || nad_new=1
  kc apply --server-side --force-conflicts -f "$CDI_DIR/manifests/multus.yaml" >/dev/null
  if ! kc -n kube-system rollout status daemonset/kube-multus-ds --timeout 5m >/dev/null; then
    kc -n kube-system get pods -l app=multus -o wide >&2 || true
    die "Multus not Ready after 5m (kc -n kube-system logs ds/kube-multus-ds; logs in $LC/pod-logs)"
  fi
  wait_for "Multus's 00-multus.conf in $LC/cni/net.d" 60 test -s "$LC/cni/net.d/00-multus.conf"
  log "Multus Ready: $(since "$s") s"
fi

# ---------------------------------------------------------------- NMState (simulated)
# nmstate is packaged and served nowhere here: test/sandbox/cmd/nmstate-sim
# plays kubernetes-nmstate as the sandbox does (answers
# NodeNetworkConfigurationPolicies, changes nothing on the node), so that a
# NodeBridge becomes Ready and Wukong writes the bridge's
# NetworkAttachmentDefinition; the CNI bridge plugin makes the bridge on the
# node when a pod first attaches. LOCAL_CLUSTER_NMSTATE=0 skips it.
if [ "${LOCAL_CLUSTER_NMSTATE:-1}" != 0 ] && wanted "${LOCAL_CLUSTER_MULTUS:-}" "$CDI_DIR/manifests/multus.yaml" Multus; then
  s=$(date +%s.%N)
  (cd "$ROOT/test" && go build -o "$BIN/nmstate-sim" ./sandbox/cmd/nmstate-sim)
  nncp_new=0
  kc get crd nodenetworkconfigurationpolicies.nmstate.io >/dev/null 2>&1 || nncp_new=1
  for k in nodenetworkconfigurationpolicies nodenetworkconfigurationenactments nodenetworkstates; do
    kc apply --server-side --force-conflicts -f "$ROOT/test/crds/nmstate.io_$k.yaml" >/dev/null
    kc wait "crd/$k.nmstate.io" --for condition=Established --timeout 60s >/dev/null
  done
  start nmstate-sim "$BIN/nmstate-sim" --kubeconfig "$KUBECONFIG_ADMIN"
  wait_for "the simulated NodeNetworkState of $NODE_NAME" 60 kc get nodenetworkstate "$NODE_NAME"
  log "NMState (SIMULATED) answering policies: $(since "$s") s"
fi

# ---------------------------------------------------------------- CSI storage
# A second, expandable StorageClass (scripts/local-cluster-csi.sh, when
# present): local-path cannot grow a volume.
if [ -f "$ROOT/scripts/local-cluster-csi.sh" ]; then
  # shellcheck source=/dev/null
  . "$ROOT/scripts/local-cluster-csi.sh"
fi

# ---------------------------------------------------------------- Wukong
# Image sources: the default refuses loopback and private hosts; this node's
# own image server (http://$NODE_IP:18080, bin/cdi/manifests/image-server.yaml)
# and its local registry images (localhost/wukong/...) are allowed by name.
kc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: $RELEASE_NAMESPACE
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/enforce-version: latest
    pod-security.kubernetes.io/warn: restricted
    pod-security.kubernetes.io/audit: restricted
EOF
s=$(date +%s.%N)
"$HELM" --kubeconfig "$KUBECONFIG_ADMIN" upgrade --install "$RELEASE" "$ROOT/charts/wukong" \
  --namespace "$RELEASE_NAMESPACE" --set image.repository="$MANAGER_REPO" --set image.tag="$manager_tag" \
  --set image.pullPolicy=Never \
  --set "imageSources.allowed={*,localhost,$NODE_IP}" \
  --wait --timeout 5m >"$LOGS/helm.log" 2>&1 || {
  cat "$LOGS/helm.log" >&2
  kc -n "$RELEASE_NAMESPACE" get events --sort-by=.lastTimestamp >&2 || true
  die "helm upgrade --install failed"
}
log "chart installed, manager Ready: helm took $(since "$s") s, $(since "$t1") s after the first start, $(since "$t0") s in all"
if [ "${cdi_new:-0}" = 1 ] || [ "${nad_new:-0}" = 1 ] || [ "${nncp_new:-0}" = 1 ]; then
  kc -n "$RELEASE_NAMESPACE" rollout restart deployment/"$RELEASE" >/dev/null
  kc -n "$RELEASE_NAMESPACE" rollout status deployment/"$RELEASE" --timeout 5m >/dev/null
  log "manager restarted: CDI, Multus or NMState's CRDs were installed in this run (the manager watches their kinds only when the CRDs exist at its start; it would restart itself within 30 s)"
fi
# Shims (one per pod) are containerd's children; record them too.
shim_pids >"$PIDS/shims"
echo "$MANAGER_IMAGE" >"$LC/manager-image"
log "kubeconfig: $KUBECONFIG_ADMIN"
