# shellcheck shell=bash
# Add-on csi (sourced by scripts/local-cluster/up.sh): our CSI driver
# (hack/csi-hostpath) as scripts/csi-build.sh (`make csi-images`) built it
# into bin/csi/, LOCAL_CLUSTER_CSI: auto/0/1:
#
#   the images imported on every node; the manifest applied (namespace
#   wukong-csi, the sidecars' RBAC, CSIDriver hostpath.csi.wukong.novasphere.dev,
#   the DaemonSet of our driver + external-provisioner + external-resizer
#   on every node, the sidecars with leader election so one node
#   provisions; StorageClasses wukong-csi-hostpath, non-default and
#   expandable, a directory on the node that holds the pod, and
#   wukong-csi-shared, ReadWriteMany (parameter shared "true": no node
#   affinity; the driver's store is the machine's one /var/lib/wukong-csi,
#   which every node sees), so a claim is mounted on both nodes and a VM
#   on it can live-migrate); the DaemonSet rolled
#   out; the kubelet's registration of the driver seen in every node's
#   CSINode; and, when CDI runs, CDI's StorageProfiles for the classes
#   (cloneStrategy csi-clone: the driver clones volumes)
#   (docs/notes/real-cdi-multus.md, "An expandable CSI StorageClass").
#   Snapshots (issue 31), when csi-build.sh wrote their manifests: the
#   VolumeSnapshot CRDs (external-snapshotter's client/v8), the
#   snapshot-controller in kube-system, before the DaemonSet (whose
#   csi-snapshotter sidecar cuts the snapshots), and after it the
#   VolumeSnapshotClass wukong-csi-hostpath (the driver's default,
#   deletionPolicy Delete).
CSI_DIR=$BIN/csi
CSI_DRIVER=hostpath.csi.wukong.novasphere.dev
want_csi() { wanted "${LOCAL_CLUSTER_CSI:-}" "the CSI StorageClasses (make csi-images)" "$CSI_DIR/manifests/csi-hostpath.yaml" "$CSI_DIR/images/csi-hostpath.tar"; }
plan_csi() {
  echo "import ${CSI_DIR#"$ROOT"/}/images/*.tar on every node; apply csi-hostpath.yaml; wait for DaemonSet wukong-csi/csi-hostpath;"
  echo "wait for $CSI_DRIVER in the CSINode of $(node_names | xargs); StorageClasses wukong-csi-hostpath (RWO, expandable) and"
  echo "wukong-csi-shared (RWX, no node affinity; both in the machine's one /var/lib/wukong-csi); their CDI StorageProfiles when CDI runs"
  if [ -f "$CSI_DIR/manifests/snapshot-crds.yaml" ]; then
    echo "snapshots: apply snapshot-crds.yaml (VolumeSnapshot CRDs) and snapshot-controller.yaml (kube-system) first, wait for"
    echo "Deployment kube-system/snapshot-controller; then VolumeSnapshotClass wukong-csi-hostpath (csi-hostpath-snapshotclass.yaml)"
  else
    echo "snapshots: none (${CSI_DIR#"$ROOT"/}/manifests/snapshot-crds.yaml is not built: make csi-images)"
  fi
}
csi_registered() { # NODE
  kc get csinode "$1" -o jsonpath='{.spec.drivers[*].name}' | tr ' ' '\n' | grep -x "$CSI_DRIVER" >/dev/null
}
step_csi() {
  local s n
  s=$(date +%s.%N)
  import_tars "$CSI_DIR/images" csi-
  local snapshots=0
  if [ -f "$CSI_DIR/manifests/snapshot-crds.yaml" ]; then
    snapshots=1
    kc apply --server-side --force-conflicts -f "$CSI_DIR/manifests/snapshot-crds.yaml" >/dev/null
    kc wait --for condition=established --timeout 60s crd/volumesnapshotclasses.snapshot.storage.k8s.io \
      crd/volumesnapshotcontents.snapshot.storage.k8s.io crd/volumesnapshots.snapshot.storage.k8s.io >/dev/null
    kc apply --server-side --force-conflicts -f "$CSI_DIR/manifests/snapshot-controller.yaml" >/dev/null
  fi
  kc apply --server-side --force-conflicts -f "$CSI_DIR/manifests/csi-hostpath.yaml" >/dev/null
  kc -n wukong-csi rollout status daemonset/csi-hostpath --timeout 5m >/dev/null ||
    die "the CSI DaemonSet is not ready (kc -n wukong-csi get pods; logs in $LC/nodes/*/pod-logs)"
  # The driver's registration socket makes the kubelet call NodeGetInfo and
  # list the driver in its CSINode; a claim cannot be mounted before that.
  for n in $(node_names); do
    wait_for "the kubelet's registration of $CSI_DRIVER on $n" 120 csi_registered "$n"
  done
  if [ "$snapshots" = 1 ]; then
    kc -n kube-system rollout status deployment/snapshot-controller --timeout 3m >/dev/null ||
      die "the snapshot-controller is not ready (kc -n kube-system get pods -l app.kubernetes.io/name=snapshot-controller)"
    kc apply --server-side --force-conflicts -f "$CSI_DIR/manifests/csi-hostpath-snapshotclass.yaml" >/dev/null
  fi
  if kc get crd storageprofiles.cdi.kubevirt.io >/dev/null 2>&1; then
    # CDI creates the StorageProfile of every StorageClass; the manifest fills their specs.
    wait_for "StorageProfile wukong-csi-hostpath" 120 kc get storageprofile wukong-csi-hostpath
    wait_for "StorageProfile wukong-csi-shared" 120 kc get storageprofile wukong-csi-shared
    kc apply --server-side --force-conflicts -f "$CSI_DIR/manifests/csi-hostpath-storageprofile.yaml" >/dev/null
  fi
  log "CSI StorageClasses wukong-csi-hostpath and wukong-csi-shared Ready (driver registered on $(node_names | xargs)$([ "$snapshots" = 1 ] && echo "; snapshot-controller and VolumeSnapshotClass wukong-csi-hostpath")): $(since "$s") s"
}
