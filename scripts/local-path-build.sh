#!/usr/bin/env bash
# Builds, on THIS machine, rancher's local-path-provisioner
# (LOCAL_PATH_VERSION of scripts/versions.env) for the local cluster's
# default StorageClass, as docker-archive tars `ctr -n k8s.io images import`
# reads, with its manifests:
#
#   bin/local-path/bin/local-path-provisioner   static, `go install <pkg>@<version>`
#                                     (its go.mod has no replace lines)
#   bin/local-path/images/   local-path-provisioner.tar (localhost/wukong/local-path-provisioner),
#                            busybox.tar (localhost/wukong/busybox:1.35, its helper pods:
#                            sh with mkdir and rm)
#   bin/local-path/manifests/  local-path.yaml (upstream's deploy/local-path-storage.yaml:
#                            local images, data in /var/lib/wukong-local-path, default class),
#                            local-path-storageprofile.yaml (CDI's profile for it)
#   bin/local-path/build.txt every run's times and sizes (appended)
#
# Steps: bin, images, manifests (all three by default), check (each image
# run in a throwaway containerd; root). Idempotent.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ADDONS=${LOCAL_PATH_REGISTRY:-localhost/wukong}
DATA_DIR=${LOCAL_PATH_DATA_DIR:-/var/lib/wukong-local-path}
NICE=${LOCAL_PATH_NICE:-15}
TIMED_WIDTH=34
# shellcheck source=scripts/image-build-lib.sh
source "$ROOT/scripts/image-build-lib.sh"
image_build_layout local-path

build_bin() {
  mkdir -p "$OUT"
  timed "go install local-path-provisioner" env GOWORK=off GOBIN="$OUT" CGO_ENABLED=0 \
    go install -trimpath -ldflags "-s -w -X main.VERSION=$LOCAL_PATH_VERSION" "github.com/rancher/local-path-provisioner@$LOCAL_PATH_VERSION"
}

# The binary on PATH (its Deployment runs `local-path-provisioner start`),
# and busybox for its helper pods.
build_images() {
  [ -x "$OUT/local-path-provisioner" ] || die "$OUT/local-path-provisioner is missing: run '$0 bin' first"
  mkdir -p "$IMAGES"
  ensure_imagetool
  rm -rf "$STAGE"
  local lp=$STAGE/local-path bb=$STAGE/busybox
  passwd_nonroot "$lp" nonroot 65532
  install -D -m 0755 "$OUT/local-path-provisioner" "$lp/usr/bin/local-path-provisioner"
  image "$ADDONS/local-path-provisioner:$LOCAL_PATH_VERSION" local-path-provisioner -layer "$lp:0:0" \
    -entrypoint /usr/bin/local-path-provisioner -env PATH=/usr/bin:/bin
  busybox_dir "$bb"
  image "$ADDONS/busybox:1.35" busybox -layer "$bb:0:0" -env PATH=/bin
  rm -rf "$STAGE"
}

# local-path-provisioner's deploy/local-path-storage.yaml: local images,
# the data directory, the default StorageClass (WaitForFirstConsumer is
# upstream's), and Pod Security privileged for its hostPath helper pods.
build_manifests() {
  mkdir -p "$MANIFESTS"
  local lp f
  lp=$(module_dir "$ROOT" "github.com/rancher/local-path-provisioner@$LOCAL_PATH_VERSION")
  f=$MANIFESTS/local-path.yaml
  {
    echo "# local-path-provisioner $LOCAL_PATH_VERSION (deploy/local-path-storage.yaml), adapted by scripts/local-path-build.sh"
    cat "$lp/deploy/local-path-storage.yaml"
  } >"$f.tmp"
  sub "$f.tmp" "image: rancher/local-path-provisioner:$LOCAL_PATH_VERSION" "image: $ADDONS/local-path-provisioner:$LOCAL_PATH_VERSION"
  sub "$f.tmp" 'image: busybox' "image: $ADDONS/busybox:1.35"
  sub "$f.tmp" '"paths":["/opt/local-path-provisioner"]' "\"paths\":[\"$DATA_DIR\"]"
  sub "$f.tmp" 'name: local-path' "$(printf 'name: local-path\nannotations:\n  storageclass.kubernetes.io/is-default-class: "true"')"
  sub "$f.tmp" 'name: local-path-storage' "$(printf 'name: local-path-storage\nlabels:\n  pod-security.kubernetes.io/enforce: privileged')"
  grep -q 'volumeBindingMode: WaitForFirstConsumer' "$f.tmp" || die "$f: the StorageClass is not WaitForFirstConsumer"
  mv "$f.tmp" "$f"
  # CDI does not know rancher.io/local-path (pkg/storagecapabilities), so
  # its StorageProfile for the class gets the claim properties by hand:
  # ReadWriteOnce Filesystem, host-assisted copy for clones.
  cat >"$MANIFESTS/local-path-storageprofile.yaml" <<YAML
# CDI's StorageProfile for the local-path StorageClass (apply after CDI is
# Available: CDI creates the object, this fills its spec). CDI's
# pkg/storagecapabilities has no entry for rancher.io/local-path, so without
# this a DataVolume that names no access mode or volume mode stays Pending.
apiVersion: cdi.kubevirt.io/v1beta1
kind: StorageProfile
metadata:
  name: local-path
spec:
  claimPropertySets:
  - accessModes: [ReadWriteOnce]
    volumeMode: Filesystem
  cloneStrategy: copy
YAML
  report "manifests: $(cd "$MANIFESTS" && wc -c local-path.yaml local-path-storageprofile.yaml | awk '$2 != "total" {printf "%s %d B; ", $2, $1}')"
}

build_check() {
  check_start "$IMAGES"/*.tar
  crun local-path "$ADDONS/local-path-provisioner:$LOCAL_PATH_VERSION" local-path-provisioner --version
  crun busybox "$ADDONS/busybox:1.35" sh -c 'mkdir -p /tmp/x/y && rm -rf /tmp/x && echo setup/teardown ok'
  report "check: every image ran"
  check_cleanup
}

mkdir -p "$B"
run_steps local-path-build "bin images manifests" -- "$@"
