# shellcheck shell=bash
# Add-on kubevirt (sourced by scripts/local-cluster/up.sh): KubeVirt as
# `make kubevirt-images` built it (scripts/kubevirt-build.sh), installed as
# KubeVirt's user guide says: the images imported on every node, the
# operator manifest, the KubeVirt CR, software emulation switched on with
# the documented merge patch (this machine's /dev/kvm cannot run stock
# kernels), and wait for the CR to be Available.
# LOCAL_CLUSTER_KUBEVIRT: unset/auto installs it when built, 0 skips it,
# 1 requires it.
KV_DIR=$BIN/kubevirt/$KUBEVIRT_VERSION
want_kubevirt() { wanted "${LOCAL_CLUSTER_KUBEVIRT:-}" "KubeVirt $KUBEVIRT_VERSION" "$KV_DIR/manifests/kubevirt-operator.yaml" "$KV_DIR/images/virt-operator.tar"; }
plan_kubevirt() {
  echo "import ${KV_DIR#"$ROOT"/}/images/*.tar on every node; apply kubevirt-operator.yaml (server-side); wait for virt-operator;"
  echo "apply kubevirt-cr.yaml; patch useEmulation=true, ImageVolume off, virtTemplateDeployment off, workloadUpdateMethods [LiveMigrate]; wait Available (15m)"
}
step_kubevirt() {
  local s
  s=$(date +%s.%N)
  # A tar is imported again when its manifest (its layers' digests) changed
  # since the last import: KubeVirt's tags stay the same across rebuilds.
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
  # workloadUpdateMethods [LiveMigrate]: kubevirt-cr.yaml leaves the
  # strategy empty, and then virt-controller's workload updater migrates
  # nothing (workload-updater.go getUpdateData), so a cpu or memory grow
  # under the LiveUpdate rollout strategy would wait for a restart; HCO
  # and Harvester ship LiveMigrate. It also lets KubeVirt move VMs off an
  # outdated virt-launcher after a KubeVirt upgrade.
  kc -n kubevirt patch kubevirt kubevirt --type merge \
    -p '{"spec":{"workloadUpdateStrategy":{"workloadUpdateMethods":["LiveMigrate"]},"configuration":{"developerConfiguration":{"useEmulation":true,"disabledFeatureGates":["ImageVolume"]},"virtTemplateDeployment":{"enabled":false}}}}' >/dev/null
  if ! kc -n kubevirt wait kubevirt kubevirt --for condition=Available --timeout 15m >/dev/null; then
    kc -n kubevirt get kubevirt,pods -o wide >&2 || true
    die "KubeVirt not Available after 15m (kc -n kubevirt get events; logs in $LC/nodes/*/pod-logs)"
  fi
  log "KubeVirt $KUBEVIRT_VERSION Available: $(since "$s") s"
}
