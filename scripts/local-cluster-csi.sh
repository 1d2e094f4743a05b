# shellcheck shell=bash
# Sourced by scripts/local-cluster-up.sh (section "CSI storage", after CDI),
# in its shell: uses its kc, import_tars, wanted, wait_for, since, log, die
# and $BIN, $NODE_NAME. Installs the expandable CSI StorageClass that
# scripts/csi-build.sh (`make csi-images`) builds into bin/csi/: when built,
# or with LOCAL_CLUSTER_CSI=1 (=0 skips it).
#
#   the images imported; the manifest applied (namespace wukong-csi, the
#   sidecars' RBAC, CSIDriver hostpath.csi.wukong.novasphere.dev, the
#   DaemonSet of our driver + external-provisioner + external-resizer, the
#   non-default StorageClass wukong-csi-hostpath with allowVolumeExpansion);
#   the DaemonSet rolled out; the kubelet's registration of the driver seen
#   in the node's CSINode; and, when CDI runs, CDI's StorageProfile for
#   the class (docs/notes/real-cdi-multus.md, "An expandable CSI StorageClass").
CSI_DIR=$BIN/csi
if wanted "${LOCAL_CLUSTER_CSI:-}" "$CSI_DIR/manifests/csi-hostpath.yaml" "the CSI StorageClass (make csi-images)"; then
  s=$(date +%s.%N)
  import_tars "$CSI_DIR/images" csi-
  kc apply --server-side --force-conflicts -f "$CSI_DIR/manifests/csi-hostpath.yaml" >/dev/null
  kc -n wukong-csi rollout status daemonset/csi-hostpath --timeout 5m >/dev/null ||
    die "the CSI DaemonSet is not ready (kc -n wukong-csi get pods; logs in $LC/pod-logs)"
  # The driver's registration socket makes the kubelet call NodeGetInfo and
  # list the driver in its CSINode; a claim cannot be mounted before that.
  csi_registered() {
    kc get csinode "$NODE_NAME" -o jsonpath='{.spec.drivers[*].name}' | tr ' ' '\n' | grep -qx hostpath.csi.wukong.novasphere.dev
  }
  wait_for "the kubelet's registration of hostpath.csi.wukong.novasphere.dev" 120 csi_registered
  if kc get crd storageprofiles.cdi.kubevirt.io >/dev/null 2>&1; then
    # CDI creates the StorageProfile of every StorageClass; the manifest fills its spec.
    wait_for "StorageProfile wukong-csi-hostpath" 120 kc get storageprofile wukong-csi-hostpath
    kc apply --server-side --force-conflicts -f "$CSI_DIR/manifests/csi-hostpath-storageprofile.yaml" >/dev/null
  fi
  log "CSI StorageClass wukong-csi-hostpath Ready (expandable; driver registered on $NODE_NAME): $(since "$s") s"
fi
