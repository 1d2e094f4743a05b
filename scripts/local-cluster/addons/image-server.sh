# shellcheck shell=bash
# Add-on image-server (sourced by scripts/local-cluster/up.sh): the guest
# disk over HTTP for CDI imports, as scripts/image-server-build.sh built it
# (`make cdi-images`): http://<node IP>:18080/guest.qcow2 (host network: no
# kube-proxy, no DNS). LOCAL_CLUSTER_IMAGE_SERVER: auto/0/1.
IMAGE_SERVER_DIR=$BIN/image-server
want_image_server() { wanted "${LOCAL_CLUSTER_IMAGE_SERVER:-}" "the image server" "$IMAGE_SERVER_DIR/manifests/image-server.yaml" "$IMAGE_SERVER_DIR/images/image-server.tar"; }
plan_image_server() {
  echo "import ${IMAGE_SERVER_DIR#"$ROOT"/}/images/*.tar on every node; apply image-server.yaml; wait for the Deployment;"
  echo "serves http://<its node's IP>:18080/guest.qcow2"
}
step_image_server() {
  local s
  s=$(date +%s.%N)
  import_tars "$IMAGE_SERVER_DIR/images" image-server-
  kc apply --server-side --force-conflicts -f "$IMAGE_SERVER_DIR/manifests/image-server.yaml" >/dev/null
  kc -n wukong-images rollout status deployment/image-server --timeout 5m >/dev/null
  log "image server Ready on http://$(kc -n wukong-images get pods -l app=image-server -o jsonpath='{.items[0].status.hostIP}'):18080/guest.qcow2: $(since "$s") s"
}
