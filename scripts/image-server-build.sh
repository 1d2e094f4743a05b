#!/usr/bin/env bash
# Builds, on THIS machine, the image server of the local cluster: the guest
# disk (make guest-image) over HTTP for CDI imports (hack/image-server), as
# a docker-archive tar `ctr -n k8s.io images import` reads, with its
# manifest:
#
#   bin/image-server/bin/image-server     static
#   bin/image-server/images/image-server.tar   localhost/wukong/image-server:latest,
#                                         bin/guest/disk.qcow2 as /srv/guest.qcow2
#   bin/image-server/manifests/image-server.yaml   hostNetwork on port 18080
#   bin/image-server/build.txt            every run's times and sizes (appended)
#
# Steps: bin, images, manifests (all three by default), check (the image
# run in a throwaway containerd and asked for the disk). Needs root for
# check only; idempotent.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ADDONS=${IMAGE_SERVER_REGISTRY:-localhost/wukong}
NICE=${IMAGE_SERVER_NICE:-15}
TIMED_WIDTH=34
# shellcheck source=scripts/image-build-lib.sh
source "$ROOT/scripts/image-build-lib.sh"
image_build_layout image-server

build_bin() {
  mkdir -p "$OUT"
  timed "go build image-server" env -C "$ROOT/hack/image-server" GOWORK=off CGO_ENABLED=0 \
    go build -trimpath -ldflags "-s -w" -o "$OUT/image-server" .
}

# The image server with the guest disk as it is now (scripts/guest-image.sh).
build_images() {
  local g=$ROOT/bin/guest/disk.qcow2 s=$STAGE/image-server
  [ -x "$OUT/image-server" ] || die "$OUT/image-server is missing: run '$0 bin' first"
  [ -f "$g" ] || die "no $g: run 'make guest-image' first"
  mkdir -p "$IMAGES"
  ensure_imagetool
  rm -rf "$STAGE"
  passwd_nonroot "$s" nonroot 65532
  install -D -m 0755 "$OUT/image-server" "$s/usr/bin/image-server"
  mkdir -p "$s/srv"
  cp --reflink=auto "$g" "$s/srv/guest.qcow2"
  chmod 0644 "$s/srv/guest.qcow2"
  image "$ADDONS/image-server:latest" image-server -layer "$s:0:0" -entrypoint /usr/bin/image-server,-dir,/srv -user 65532
  report "  image-server serves guest.qcow2 $(stat -c %s "$s/srv/guest.qcow2") B, sha256 $(sha256sum "$s/srv/guest.qcow2" | cut -c1-16)"
  rm -rf "$STAGE"
}

# hostNetwork on the node's port 18080 (the local cluster has no kube-proxy
# and no DNS, so a pod reaches it at http://<node IP>:18080/guest.qcow2),
# and a Service for clusters that route Services.
build_manifests() {
  mkdir -p "$MANIFESTS"
  cat >"$MANIFESTS/image-server.yaml" <<YAML
# The guest disk over HTTP for CDI imports (hack/image-server,
# scripts/image-server-build.sh). URL: http://<node IP>:18080/guest.qcow2, or
# http://image-server.wukong-images.svc:18080/guest.qcow2 where Services
# and DNS work.
apiVersion: v1
kind: Namespace
metadata:
  name: wukong-images
  labels:
    pod-security.kubernetes.io/enforce: privileged
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: image-server
  namespace: wukong-images
  labels: {app: image-server}
spec:
  replicas: 1
  selector:
    matchLabels: {app: image-server}
  template:
    metadata:
      labels: {app: image-server}
    spec:
      hostNetwork: true
      containers:
      - name: image-server
        image: $ADDONS/image-server:latest
        imagePullPolicy: IfNotPresent
        args: ["-addr", ":18080"]
        ports:
        - {name: http, containerPort: 18080, protocol: TCP}
        readinessProbe:
          httpGet: {path: /healthz, port: 18080}
          periodSeconds: 2
        securityContext:
          runAsNonRoot: true
          runAsUser: 65532
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {drop: [ALL]}
        resources:
          requests: {cpu: 10m, memory: 16Mi}
---
apiVersion: v1
kind: Service
metadata:
  name: image-server
  namespace: wukong-images
spec:
  selector: {app: image-server}
  ports:
  - {name: http, port: 18080, targetPort: 18080, protocol: TCP}
YAML
  report "manifests: image-server.yaml $(wc -c <"$MANIFESTS/image-server.yaml") B"
}

# The image server, serving on the host's loopback for two requests.
build_check() {
  local port=${IMAGE_SERVER_CHECK_PORT:-18089} size i
  check_start "$IMAGES/image-server.tar"
  ctr -a "$CHECK_SOCK" -n wukong-check run -d --net-host --runc-root "$CHECK_DIR/runc" "$ADDONS/image-server:latest" check-image-server \
    /usr/bin/image-server -dir /srv -addr "127.0.0.1:$port" >/dev/null
  for i in $(seq 1 50); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    [ "$i" = 50 ] && die "image-server did not answer on 127.0.0.1:$port"
    sleep 0.2
  done
  size=$(curl -fsSI "http://127.0.0.1:$port/guest.qcow2" | awk 'tolower($1) == "content-length:" {print $2}' | tr -d '\r')
  report "    [image-server] HEAD /guest.qcow2: Content-Length $size; first 4 bytes (range 0-3): $(curl -fsS -r 0-3 "http://127.0.0.1:$port/guest.qcow2" | od -An -c | tr -s ' ')"
  if [ -z "$size" ] || [ "$size" -le 0 ]; then die "image-server: no Content-Length for /guest.qcow2"; fi
  ctr -a "$CHECK_SOCK" -n wukong-check tasks kill -s SIGTERM check-image-server >/dev/null 2>&1 || true
  sleep 1
  ctr -a "$CHECK_SOCK" -n wukong-check tasks delete -f check-image-server >/dev/null 2>&1 || true
  ctr -a "$CHECK_SOCK" -n wukong-check containers delete check-image-server >/dev/null 2>&1 || true
  report "check: the image server ran"
  check_cleanup
}

mkdir -p "$B"
run_steps image-server-build "bin images manifests" -- "$@"
