# shellcheck shell=bash
# Add-on multus (sourced by scripts/local-cluster/up.sh): Multus thick by
# its DaemonSet as scripts/multus-build.sh built it (`make cdi-images`;
# docs/notes/real-cdi-multus.md, "Multus thick"). Its init containers
# install multus-shim and the pinned CNI plugins into $CNI_BIN_DIR; the
# daemon writes 00-multus.conf into each node's /etc/cni/net.d, which
# containerd then takes as the node's network: the wukong-local conflist
# becomes Multus's cluster network and pods' k8s.v1.cni.cncf.io/networks
# add NetworkAttachmentDefinitions. LOCAL_CLUSTER_MULTUS: auto/0/1.
MULTUS_DIR=$BIN/multus
want_multus() { wanted "${LOCAL_CLUSTER_MULTUS:-}" "Multus $MULTUS_VERSION" "$MULTUS_DIR/manifests/multus.yaml" "$MULTUS_DIR/images/multus-thick.tar"; }
plan_multus() {
  echo "import ${MULTUS_DIR#"$ROOT"/}/images/*.tar on every node; apply multus.yaml; wait for DaemonSet kube-multus-ds;"
  echo "wait for 00-multus.conf in every node's /etc/cni/net.d"
}
step_multus() {
  local s n
  s=$(date +%s.%N)
  import_tars "$MULTUS_DIR/images" multus-
  kc get crd network-attachment-definitions.k8s.cni.cncf.io >/dev/null 2>&1 || mark_restart "Multus's CRD installed"
  kc apply --server-side --force-conflicts -f "$MULTUS_DIR/manifests/multus.yaml" >/dev/null
  if ! kc -n kube-system rollout status daemonset/kube-multus-ds --timeout 5m >/dev/null; then
    kc -n kube-system get pods -l app=multus -o wide >&2 || true
    die "Multus not Ready after 5m (kc -n kube-system logs ds/kube-multus-ds; logs in $LC/nodes/*/pod-logs)"
  fi
  for n in $(node_names); do
    node_env "$n"
    wait_for "Multus's 00-multus.conf on $n" 60 test -s "$NODE_DIR/host/etc/cni/net.d/00-multus.conf"
  done
  log "Multus Ready: $(since "$s") s"
}
