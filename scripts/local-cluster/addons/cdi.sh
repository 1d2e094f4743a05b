# shellcheck shell=bash
# Add-on cdi (sourced by scripts/local-cluster/up.sh): CDI as `make
# cdi-images` built it (scripts/cdi-build.sh), by its operator and CR (wait
# Available), then the StorageProfiles CDI cannot derive: local-path's
# (when that add-on runs; the csi add-on fills its own).
# docs/notes/real-cdi-multus.md's install half. LOCAL_CLUSTER_CDI: auto/0/1.
CDI_DIR=$BIN/cdi
want_cdi() { wanted "${LOCAL_CLUSTER_CDI:-}" "CDI $CDI_VERSION" "$CDI_DIR/manifests/cdi-operator.yaml" "$CDI_DIR/images/cdi-operator.tar"; }
plan_cdi() {
  echo "import ${CDI_DIR#"$ROOT"/}/images/*.tar on every node; apply cdi-operator.yaml (server-side); wait for cdi-operator;"
  echo "apply cdi-cr.yaml; wait Available (10m); apply the local-path StorageProfile when local-path runs"
}
step_cdi() {
  local s
  s=$(date +%s.%N)
  import_tars "$CDI_DIR/images" cdi-
  # A manager started before CDI's CRDs existed does not watch DataVolumes
  # (it checks the CRDs at start): restarted by the wukong step.
  kc get crd datavolumes.cdi.kubevirt.io >/dev/null 2>&1 || mark_restart "CDI's CRDs installed"
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
    die "CDI not Available after 10m (kc -n cdi get events; logs in $LC/nodes/*/pod-logs)"
  fi
  log "CDI Available: $(since "$s") s"
  if kc get storageclass local-path >/dev/null 2>&1 && [ -f "$BIN/local-path/manifests/local-path-storageprofile.yaml" ]; then
    # CDI creates the StorageProfile of every StorageClass; the manifest fills its spec.
    wait_for "StorageProfile local-path" 120 kc get storageprofile local-path
    kc apply --server-side --force-conflicts -f "$BIN/local-path/manifests/local-path-storageprofile.yaml" >/dev/null
  fi
}
