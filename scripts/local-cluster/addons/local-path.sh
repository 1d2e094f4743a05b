# shellcheck shell=bash
# Add-on local-path (sourced by scripts/local-cluster/up.sh):
# local-path-provisioner as scripts/local-path-build.sh built it (`make
# cdi-images`), the default StorageClass local-path (WaitForFirstConsumer;
# data in /var/lib/wukong-local-path on the node), and, once CDI runs, the
# StorageProfile CDI cannot derive for rancher.io/local-path
# (docs/notes/real-cdi-multus.md). LOCAL_CLUSTER_LOCAL_PATH: auto/0/1.
LOCAL_PATH_DIR=$BIN/local-path
want_local_path() { wanted "${LOCAL_CLUSTER_LOCAL_PATH:-}" "local-path-provisioner $LOCAL_PATH_VERSION" "$LOCAL_PATH_DIR/manifests/local-path.yaml" "$LOCAL_PATH_DIR/images/local-path-provisioner.tar"; }
plan_local_path() {
  echo "import ${LOCAL_PATH_DIR#"$ROOT"/}/images/*.tar on every node; apply local-path.yaml; wait for the provisioner;"
  echo "no other default StorageClass allowed"
}
step_local_path() {
  local s others
  s=$(date +%s.%N)
  import_tars "$LOCAL_PATH_DIR/images" local-path-
  kc apply --server-side --force-conflicts -f "$LOCAL_PATH_DIR/manifests/local-path.yaml" >/dev/null
  kc -n local-path-storage rollout status deployment/local-path-provisioner --timeout 5m >/dev/null
  others=$(kc get storageclass -o jsonpath='{range .items[?(@.metadata.annotations.storageclass\.kubernetes\.io/is-default-class=="true")]}{.metadata.name}{"\n"}{end}' | grep -vx local-path || true)
  [ -z "$others" ] || die "StorageClasses other than local-path are default too: $others"
  log "local-path-provisioner Ready (default StorageClass local-path): $(since "$s") s"
}
