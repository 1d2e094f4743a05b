# shellcheck shell=bash
# Add-on wukong (sourced by scripts/local-cluster/up.sh): the chart
# installed with helm into $RELEASE_NAMESPACE (Pod Security restricted),
# the manager image built by the images step; the manager restarted when an
# earlier add-on installed CRDs it watches only when they exist at its
# start. Always runs.
plan_wukong() {
  echo "namespace $RELEASE_NAMESPACE (Pod Security restricted); helm upgrade --install $RELEASE charts/wukong (image $MANAGER_REPO:<tag>,"
  echo "pullPolicy Never, imageSources.allowed {*,localhost,<node IPs>}, imageCatalog.namespace wukong-images: the golden copies' importer"
  echo "pods outside the release namespace's restricted Pod Security) --wait; restart the manager when an add-on installed CRDs"
}
step_wukong() {
  local s manager_tag allowed
  manager_tag=$(cat "$LC/manager-tag")
  # A manager the images step rebuilt after the nodes started (`up.sh
  # images wukong`) is not on the nodes yet: import it (the pull policy is
  # Never).
  local n have
  for n in $(node_names); do
    node_env "$n"
    have=$(ctr -a "$NODE_SOCK" -n k8s.io images ls -q)
    if ! grep -qxF "$MANAGER_REPO:$manager_tag" <<<"$have"; then
      ctr -a "$NODE_SOCK" -n k8s.io images import "$IMG_DIR/manager-$manager_tag.tar" >/dev/null
      log "imported $MANAGER_REPO:$manager_tag on $n"
    fi
  done
  # Image sources: the default refuses loopback and private hosts; the
  # nodes' own image server (http://<node IP>:18080) and the local registry
  # images (localhost/wukong/...) are allowed by name.
  allowed="*,localhost,$(for n in $(node_names); do node_env "$n"; echo "$NODE_ADDR"; done | paste -sd,)"
  kc apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata:
  name: $RELEASE_NAMESPACE
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/enforce-version: latest
    pod-security.kubernetes.io/warn: restricted
    pod-security.kubernetes.io/audit: restricted
---
# The image catalog's namespace (the image server's too): the chart binds
# the operator's catalog rights there.
apiVersion: v1
kind: Namespace
metadata:
  name: wukong-images
YAML
  s=$(date +%s.%N)
  "$HELM" --kubeconfig "$KUBECONFIG_ADMIN" upgrade --install "$RELEASE" "$ROOT/charts/wukong" \
    --namespace "$RELEASE_NAMESPACE" --set image.repository="$MANAGER_REPO" --set image.tag="$manager_tag" \
    --set image.pullPolicy=Never \
    --set "imageSources.allowed={$allowed}" \
    --set imageCatalog.namespace=wukong-images \
    --wait --timeout 5m >"$LOGS/helm.log" 2>&1 || {
    cat "$LOGS/helm.log" >&2
    kc -n "$RELEASE_NAMESPACE" get events --sort-by=.lastTimestamp >&2 || true
    die "helm upgrade --install failed"
  }
  log "chart installed, manager Ready: helm took $(since "$s") s, $(since "$T1") s after the first start"
  if [ -s "$LC/restart-manager" ]; then
    kc -n "$RELEASE_NAMESPACE" rollout restart deployment/"$RELEASE" >/dev/null
    kc -n "$RELEASE_NAMESPACE" rollout status deployment/"$RELEASE" --timeout 5m >/dev/null
    log "manager restarted: $(paste -sd';' "$LC/restart-manager") in this run (the manager watches their kinds only when the CRDs exist at its start; it would restart itself within 30 s)"
    rm -f "$LC/restart-manager"
  fi
  echo "$MANAGER_REPO:$manager_tag" >"$LC/manager-image"
}
