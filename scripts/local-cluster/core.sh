# shellcheck shell=bash
# The control plane's steps of scripts/local-cluster/up.sh (sourced by it):
# packages, snapshot, binaries, images, pki, control-plane. Each step is
# step_<name> (does it; idempotent, reads what earlier steps left in $LC,
# so it runs alone once they ran) and plan_<name> (what --dry-run prints).

# ---------------------------------------------------------------- packages
plan_packages() {
  echo "apt-get install --no-install-recommends, when missing: containerd runc containernetworking-plugins iptables openssl"
}
step_packages() {
  local need=()
  command -v containerd >/dev/null || need+=(containerd)
  command -v runc >/dev/null || need+=(runc)
  [ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
  command -v iptables >/dev/null || need+=(iptables)
  command -v openssl >/dev/null || need+=(openssl)
  if [ ${#need[@]} -gt 0 ]; then
    log "apt-get install ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >"$LOGS/apt.log" 2>&1 ||
      die "apt-get install failed, see $LOGS/apt.log"
  fi
}

# ---------------------------------------------------------------- snapshot
# Before anything of ours runs, record what down must restore. Kept until
# down has restored it, so a second up does not snapshot our own changes.
plan_snapshot() {
  echo "record into ${SNAP#"$ROOT"/}, once, what down restores: sysctls ${SYSCTLS[*]}; bridges; iptables and ip6tables rules;"
  echo "host paths ${HOST_PATHS[*]}; kubepods and wukong-local* cgroups; mounts"
}
step_snapshot() {
  local s p c
  [ -f "$SNAP/done" ] && return
  if compgen -G "$PIDS/*.pid" >/dev/null; then
    die "$PIDS has PID files but no snapshot: run scripts/local-cluster/down.sh first"
  fi
  log "snapshot of the machine into $SNAP"
  rm -rf "$SNAP" && mkdir -p "$SNAP"
  for s in "${SYSCTLS[@]}"; do
    v=$(sysctl -n "$s" 2>/dev/null) && printf '%s=%s\n' "$s" "$v"
  done >"$SNAP/sysctl"
  ip -o link show type bridge | awk -F': ' '{print $2}' | sort >"$SNAP/bridges"
  ip -o link show type veth | awk -F': ' '{print $2}' | cut -d@ -f1 | sort >"$SNAP/veths"
  iptables-save 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]/[0:0]/' >"$SNAP/iptables" || true
  ip6tables-save 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]/[0:0]/' >"$SNAP/ip6tables" || true
  for p in "${HOST_PATHS[@]}"; do
    if [ -e "$p" ]; then echo "$p"; find "$p" -mindepth 1 -maxdepth 1 | sed 's/^/  /'; fi
  done >"$SNAP/paths"
  for c in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/*/kubepods.slice /sys/fs/cgroup/*/wukong-local*; do
    if [ -d "$c" ]; then echo "$c"; fi
  done >"$SNAP/cgroups"
  awk '{print $5}' /proc/self/mountinfo | sort >"$SNAP/mounts"
  touch "$SNAP/done"
}

# ---------------------------------------------------------------- binaries
plan_binaries() {
  echo "${K8S_BIN#"$ROOT"/}/{etcd,kube-apiserver,kube-controller-manager,kube-scheduler} by scripts/envtest-assets.sh when missing"
  echo "${K8S_BIN#"$ROOT"/}/kubelet $K8S_VERSION from hack/k8s-binaries when missing (about 10 minutes on 2 cores)"
  echo "${HELM#"$ROOT"/} from helm.sh/helm/v3@$HELM_VERSION when missing"
}
step_binaries() {
  local b s minor k8s_ldflags tmp hv
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
      -ldflags="-s -w -X $hv/internal/version.version=$HELM_VERSION -X $hv/internal/version.gitTreeState=clean -X $hv/pkg/chartutil.k8sVersionMajor=1 -X $hv/pkg/chartutil.k8sVersionMinor=$minor -X $hv/pkg/lint/rules.k8sVersionMajor=1 -X $hv/pkg/lint/rules.k8sVersionMinor=$minor" \
      "$hv/cmd/helm@$HELM_VERSION")
    mv "$tmp/helm" "$HELM" && rm -rf "$tmp"
    log "helm built in $(since "$s") s"
  fi
}

# ---------------------------------------------------------------- images
# pause and manager, as docker-archive tars written by hack/local-images
# into $IMG_DIR.
plan_images() {
  echo "hack/local-images: mkimage and pause; the manager from ${LOCAL_CLUSTER_REF:-the working tree} (operator/cmd/manager, static)"
  echo "$PAUSE_IMAGE and $MANAGER_REPO:<appVersion>-<sha256 of the binary> as tars in ${IMG_DIR#"$ROOT"/}"
}
step_images() {
  local s src manager_tag
  mkdir -p "$IMG_DIR"
  s=$(date +%s.%N)
  (cd "$ROOT/hack/local-images" && GOWORK=off CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags="-s -w" -o "$IMG_DIR/mkimage" ./cmd/mkimage &&
    GOWORK=off CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags="-s -w" -o "$IMG_DIR/pause" ./cmd/pause)
  [ -f "$IMG_DIR/pause.tar" ] || "$IMG_DIR/mkimage" -ref "$PAUSE_IMAGE" -out "$IMG_DIR/pause.tar" -file "$IMG_DIR/pause=/pause:0755" -entrypoint /pause -user 65535:65535
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
  (cd "$src/operator" && GOWORK=off CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags="-s -w" -o "$IMG_DIR/manager" ./cmd/manager) ||
    die "building the manager from $src/operator failed (LOCAL_CLUSTER_REF=HEAD builds the last commit instead)"
  # The tag names the binary's content, so a changed manager is a new image
  # and `helm upgrade` rolls the Deployment; an unchanged one changes nothing.
  manager_tag=$(awk '/^appVersion:/ {gsub(/"/, "", $2); print $2}' "$ROOT/charts/wukong/Chart.yaml")-$(sha256sum "$IMG_DIR/manager" | cut -c1-12)
  [ -f "$IMG_DIR/manager-$manager_tag.tar" ] || {
    rm -f "$IMG_DIR"/manager-*.tar
    "$IMG_DIR/mkimage" -ref "$MANAGER_REPO:$manager_tag" -out "$IMG_DIR/manager-$manager_tag.tar" -file "$IMG_DIR/manager=/manager:0755" -entrypoint /manager -user 65532:65532
  }
  echo "$manager_tag" >"$LC/manager-tag"
  log "images built in $(since "$s") s: $PAUSE_IMAGE, $MANAGER_REPO:$manager_tag"
}

# ---------------------------------------------------------------- pki
# A CA, serving certs for the apiserver and every kubelet, one client cert
# (and kubeconfig) per component and node, the ServiceAccount signing key.
# Valid 30 days; kept across runs (delete bin/local-cluster to start over).
plan_pki() {
  echo "openssl in ${PKI#"$ROOT"/}: CA, front-proxy CA and client, apiserver serving (IP $APISERVER_IP, $SERVICE_IP, kubernetes.default...),"
  echo "admin, apiserver-kubelet-client, kcm, scheduler; per node: kubelet client (system:node:NAME) and serving (its IP);"
  echo "kubeconfigs ${KUBECONFIG_ADMIN#"$ROOT"/}, kcm, scheduler, one per node"
}
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
    server: https://$APISERVER_IP:$APISERVER_PORT
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
step_pki() {
  local n
  mkdir -p "$PKI"
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
  mkcert apiserver kube-apiserver "" "IP:127.0.0.1,IP:$SERVICE_IP,IP:$APISERVER_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
  mkcert admin local-admin system:masters ""
  mkcert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters ""
  mkcert kcm system:kube-controller-manager "" ""
  mkcert scheduler system:kube-scheduler "" ""
  kubeconfig "$KUBECONFIG_ADMIN" admin
  kubeconfig "$LC/kcm.kubeconfig" kcm
  kubeconfig "$LC/scheduler.kubeconfig" scheduler
  for n in $(node_names); do
    node_env "$n"
    mkdir -p "$NODE_DIR"
    # A node's IP is part of its serving cert: a cert for another IP (the
    # node count changed) is made again.
    if [ -f "$PKI/$n-serving.crt" ] && ! openssl x509 -in "$PKI/$n-serving.crt" -noout -ext subjectAltName 2>/dev/null | grep -q "IP Address:$NODE_ADDR\b"; then
      rm -f "$PKI/$n-serving".*
    fi
    mkcert "$n-client" "system:node:$n" system:nodes ""
    mkcert "$n-serving" "$n" "" "IP:127.0.0.1,IP:$NODE_ADDR,DNS:$n"
    kubeconfig "$NODE_DIR/kubelet.kubeconfig" "$n-client"
  done
}

# ---------------------------------------------------------------- control plane
plan_control_plane() {
  echo "etcd on 127.0.0.1:$ETCD_CLIENT_PORT (data ${LC#"$ROOT"/}/etcd); kube-apiserver on $APISERVER_IP:$APISERVER_PORT (Node,RBAC, NodeRestriction,"
  echo "privileged pods, the aggregation layer); kube-controller-manager (:$KCM_PORT) and kube-scheduler (:$SCHEDULER_PORT), no leader election;"
  echo "wait for /readyz"
}
step_control_plane() {
  mkdir -p "$LC/etcd"
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
    --bind-address "$APISERVER_IP" --advertise-address "$APISERVER_IP" --secure-port "$APISERVER_PORT" \
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
  wait_for kube-apiserver 60 kc get --raw /readyz
  start kube-controller-manager "$K8S_BIN/kube-controller-manager" --kubeconfig "$LC/kcm.kubeconfig" \
    --authentication-kubeconfig "$LC/kcm.kubeconfig" --authorization-kubeconfig "$LC/kcm.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --leader-elect=false --use-service-account-credentials \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" --service-cluster-ip-range "$SERVICE_CIDR"
  start kube-scheduler "$K8S_BIN/kube-scheduler" --kubeconfig "$LC/scheduler.kubeconfig" \
    --authentication-kubeconfig "$LC/scheduler.kubeconfig" --authorization-kubeconfig "$LC/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" --leader-elect=false
  log "apiserver ready $(since "$T1") s after the first start"
}
