#!/usr/bin/env bash
# Builds, on THIS machine, an expandable CSI StorageClass for the local
# cluster (issue 21: "a disk grown after creation"), as docker-archive tars
# that `ctr -n k8s.io images import` reads, with their manifests. The
# local-path provisioner (scripts/cdi-build.sh) cannot expand a volume, and
# no expandable node-local CSI driver is served by the Go module proxy, so
# the driver is our own (hack/csi-hostpath, a directory per volume); the
# sidecars and the snapshot controller are the real ones, built from their
# released modules (issue 31: snapshots and clones on real storage):
#
#   csi-hostpath           hack/csi-hostpath/cmd/csi-hostpath (ours): CSI
#                          Identity/Controller/Node and the kubelet plugin
#                          registration (node-driver-registrar is not served)
#   csi-provisioner        github.com/kubernetes-csi/external-provisioner/v5 v5.3.0
#   csi-resizer            github.com/kubernetes-csi/external-resizer v1.14.0
#   csi-snapshotter        github.com/kubernetes-csi/external-snapshotter/v8 v8.7.0
#   snapshot-controller    the same module (hack/csi-snapshotter: it needs
#                          k8s.io v0.37, the provisioner pins v0.33)
#
#   bin/csi/bin/           the static binaries
#   bin/csi/images/        csi-hostpath.tar, csi-provisioner.tar, csi-resizer.tar,
#                          csi-snapshotter.tar, snapshot-controller.tar
#   bin/csi/manifests/     csi-hostpath.yaml (namespace, RBAC, CSIDriver,
#                          DaemonSet, StorageClass wukong-csi-hostpath),
#                          csi-hostpath-storageprofile.yaml (CDI's profile),
#                          snapshot-crds.yaml (the VolumeSnapshot CRDs of
#                          external-snapshotter's client/v8 module),
#                          snapshot-controller.yaml (its RBAC, Deployment),
#                          csi-hostpath-snapshotclass.yaml (VolumeSnapshotClass
#                          wukong-csi-hostpath; needs the CRDs applied first)
#   bin/csi/build.txt      every run's times and sizes (appended)
#
# Steps (each runnable alone; `all` by default): test (the driver's unit
# tests and csi-test's sanity suite; hack/ modules are outside make test),
# bin, images, manifests.
# Needs no root (no chroot); idempotent; Go's build cache makes rebuilds
# cheap. See docs/notes/real-cdi-multus.md ("An expandable CSI StorageClass").
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/versions.sh
. "$ROOT/scripts/versions.sh"
PROVISIONER_VERSION=$CSI_PROVISIONER_VERSION
RESIZER_VERSION=$CSI_RESIZER_VERSION
SNAPSHOTTER_VERSION=$CSI_SNAPSHOTTER_VERSION
DRIVER=hostpath.csi.wukong.novasphere.dev
# The driver's version: the last commit of hack/csi-hostpath. Its image tag
# is the binary's digest (driver_tag), so a rebuilt driver is a new image
# and the DaemonSet rolls.
DRIVER_VERSION=$(git -C "$ROOT" log -1 --format=%h -- hack/csi-hostpath 2>/dev/null || echo dev)
REGISTRY=${CSI_REGISTRY:-localhost/wukong}
NAMESPACE=${CSI_NAMESPACE:-wukong-csi}
STORAGE_CLASS=${CSI_STORAGE_CLASS:-wukong-csi-hostpath}
SHARED_CLASS=${CSI_SHARED_STORAGE_CLASS:-wukong-csi-shared}
# The node's paths: the volumes (the same directory of the machine on
# every local-cluster node), and the kubelet's root (the local cluster's
# kubelets use the default /var/lib/kubelet, each its own).
DATA_DIR=${CSI_DATA_DIR:-/var/lib/wukong-csi}
KUBELET_DIR=${CSI_KUBELET_DIR:-/var/lib/kubelet}
NICE=${CSI_NICE:-10}
MOD=$ROOT/hack/csi-hostpath
SNAP_MOD=$ROOT/hack/csi-snapshotter
SNAPSHOT_CLASS=${CSI_SNAPSHOT_CLASS:-wukong-csi-hostpath}
# shellcheck source=scripts/image-build-lib.sh
source "$ROOT/scripts/image-build-lib.sh"
image_build_layout csi

# ------------------------------------------------------------------- test
# The driver's tests: table tests, and csi-test v5.3.1's sanity suite over a
# unix socket with real bind mounts (as root; skipped otherwise).
test_driver() {
  timed "go test csi-hostpath" env -C "$MOD" GOWORK=off go test -count=1 ./...
}

# ---------------------------------------------------------------- binaries
# The sidecars from hack/csi-hostpath's go.mod (tools.go pins them; their
# own go.mod files carry replace lines, so `go install pkg@version` refuses
# them, and the module copies those pins), with the version their Makefiles
# stamp (release-tools/build.make: -X main.version=...).
build_bin() {
  mkdir -p "$OUT"
  timed "go build csi-provisioner" env -C "$MOD" GOWORK=off CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X main.version=$PROVISIONER_VERSION" -o "$OUT/csi-provisioner" \
    github.com/kubernetes-csi/external-provisioner/v5/cmd/csi-provisioner
  timed "go build csi-resizer" env -C "$MOD" GOWORK=off CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X main.version=$RESIZER_VERSION" -o "$OUT/csi-resizer" \
    github.com/kubernetes-csi/external-resizer/cmd/csi-resizer
  timed "go build csi-hostpath" env -C "$MOD" GOWORK=off CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X main.version=$DRIVER_VERSION" -o "$OUT/csi-hostpath" ./cmd/csi-hostpath
  # hack/csi-snapshotter's go.mod (tools.go) pins external-snapshotter.
  local c
  for c in csi-snapshotter snapshot-controller; do
    timed "go build $c" env -C "$SNAP_MOD" GOWORK=off CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=$SNAPSHOTTER_VERSION" -o "$OUT/$c" \
      "github.com/kubernetes-csi/external-snapshotter/v8/cmd/$c"
  done
}

# ------------------------------------------------------------------ images
# driver_tag: the driver image's tag, <version>-<first 12 of the binary's sha256>.
driver_tag() {
  [ -x "$OUT/csi-hostpath" ] || die "$OUT/csi-hostpath is missing: run '$0 bin' first"
  echo "$DRIVER_VERSION-$(sha256sum "$OUT/csi-hostpath" | cut -c1-12)"
}


build_images() {
  local c
  for c in csi-hostpath csi-provisioner csi-resizer csi-snapshotter snapshot-controller; do
    [ -x "$OUT/$c" ] || die "$OUT/$c is missing: run '$0 bin' first"
  done
  mkdir -p "$IMAGES"
  ensure_imagetool
  local stage=$B/stage
  rm -rf "$stage"
  # Each image: its static binary in /usr/bin as the entrypoint; the
  # sidecars run as 65532:65532 (they reach the driver's socket by its
  # group: -socket-gid), the driver as root (mount(2) in the kubelet's pod
  # directories).
  for c in csi-hostpath csi-provisioner csi-resizer csi-snapshotter snapshot-controller; do
    install -D -m 0755 "$OUT/$c" "$stage/$c/usr/bin/$c"
    mkdir -p "$stage/$c/etc"
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$stage/$c/etc/passwd"
    printf 'root:x:0:\nnonroot:x:65532:\n' >"$stage/$c/etc/group"
  done
  image "$REGISTRY/csi-hostpath:$(driver_tag)" csi-hostpath -layer "$stage/csi-hostpath:0:0" -entrypoint /usr/bin/csi-hostpath
  image "$REGISTRY/csi-provisioner:$PROVISIONER_VERSION" csi-provisioner -layer "$stage/csi-provisioner:0:0" \
    -entrypoint /usr/bin/csi-provisioner -user 65532:65532
  image "$REGISTRY/csi-resizer:$RESIZER_VERSION" csi-resizer -layer "$stage/csi-resizer:0:0" \
    -entrypoint /usr/bin/csi-resizer -user 65532:65532
  image "$REGISTRY/csi-snapshotter:$SNAPSHOTTER_VERSION" csi-snapshotter -layer "$stage/csi-snapshotter:0:0" \
    -entrypoint /usr/bin/csi-snapshotter -user 65532:65532
  image "$REGISTRY/snapshot-controller:$SNAPSHOTTER_VERSION" snapshot-controller -layer "$stage/snapshot-controller:0:0" \
    -entrypoint /usr/bin/snapshot-controller -user 65532:65532
  rm -rf "$stage"
}

# --------------------------------------------------------------- manifests
# sidecar NAME IMAGE [--node-name] ARG...: one CSI sidecar's container in
# the driver's DaemonSet (build_manifests): the driver's socket only,
# nonroot; --node-name gives it NODE_NAME (the provisioner's
# --node-deployment reads it).
sidecar() {
  local name=$1 image=$2 node_name="" a
  shift 2
  if [ "${1:-}" = --node-name ]; then node_name=1; shift; fi
  cat <<EOF
      - name: $name
        image: $image
        imagePullPolicy: IfNotPresent
        args:
EOF
  for a in "$@"; do echo "        - $a"; done
  if [ -n "$node_name" ]; then
    cat <<EOF
        env:
        - name: NODE_NAME
          valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
EOF
  fi
  nonroot
  cat <<EOF
        volumeMounts:
        - {name: socket-dir, mountPath: /csi}
        resources:
          requests: {cpu: 5m, memory: 32Mi}
EOF
}

# nonroot: a container's securityContext (build_manifests): non-root
# (65532) on a read-only root without capabilities.
nonroot() {
  cat <<EOF
        securityContext:
          runAsNonRoot: true
          runAsUser: 65532
          runAsGroup: 65532
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {drop: [ALL]}
        terminationMessagePolicy: FallbackToLogsOnError
EOF
}

# storage_class NAME [PARAMETER]: one of the driver's StorageClasses
# (build_manifests), expandable and WaitForFirstConsumer; PARAMETER is one
# "key: value" line of its parameters.
storage_class() {
  cat <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: $1
provisioner: $DRIVER
EOF
  if [ -n "${2:-}" ]; then printf 'parameters:\n  %s\n' "$2"; fi
  cat <<EOF
reclaimPolicy: Delete
volumeBindingMode: WaitForFirstConsumer
allowVolumeExpansion: true
EOF
}

# storage_profile CLASS ACCESS_MODE: CDI's StorageProfile for one of the
# driver's classes (build_manifests): Filesystem, cloned by csi-clone.
storage_profile() {
  cat <<EOF
apiVersion: cdi.kubevirt.io/v1beta1
kind: StorageProfile
metadata:
  name: $1
spec:
  claimPropertySets:
  - accessModes: [$2]
    volumeMode: Filesystem
  cloneStrategy: csi-clone
EOF
}

# The sidecars' RBAC is their own deploy/kubernetes/rbac.yaml, put in our
# namespace and bound to the one ServiceAccount of the DaemonSet (the
# driver and both sidecars share a pod); the rest is written here.
build_manifests() {
  mkdir -p "$MANIFESTS"
  local prov res snap tag f=$MANIFESTS/csi-hostpath.yaml
  tag=$(driver_tag)
  prov=$(module_dir "$MOD" "github.com/kubernetes-csi/external-provisioner/v5@$PROVISIONER_VERSION")
  res=$(module_dir "$MOD" "github.com/kubernetes-csi/external-resizer@$RESIZER_VERSION")
  snap=$(module_dir "$SNAP_MOD" "github.com/kubernetes-csi/external-snapshotter/v8@$SNAPSHOTTER_VERSION")
  {
    cat <<EOF
# Wukong's expandable CSI StorageClass for the local cluster, written by
# scripts/csi-build.sh: the driver $DRIVER (ours, hack/csi-hostpath,
# $DRIVER_VERSION; volumes are directories in $DATA_DIR on the node), with
# external-provisioner $PROVISIONER_VERSION (--node-deployment: each node's
# provisioner makes the volumes of the claims scheduled there, from a
# snapshot or a claim too), external-resizer $RESIZER_VERSION and
# csi-snapshotter $SNAPSHOTTER_VERSION (leader-elected: one node's cuts
# every snapshot; the store is the machine's one directory) in one
# DaemonSet on every node. The VolumeSnapshot CRDs and the
# snapshot-controller are snapshot-crds.yaml and snapshot-controller.yaml. Every
# node's driver uses the machine's one $DATA_DIR (the local cluster does
# not make it private to a node), so each resizer's driver knows every
# volume (an expansion recorded twice is the same).
# Two classes: $STORAGE_CLASS (ReadWriteOnce, a volume pinned to the node
# that made it) and $SHARED_CLASS (parameters.shared "true": ReadWriteMany,
# no node affinity, published on any node: what a live-migrating VM's disk
# needs; shared only because the nodes are one machine, nothing fences).
apiVersion: v1
kind: Namespace
metadata:
  name: $NAMESPACE
  labels:
    # hostPath, privileged, Bidirectional mount propagation
    pod-security.kubernetes.io/enforce: privileged
---
EOF
    echo "# external-provisioner $PROVISIONER_VERSION deploy/kubernetes/rbac.yaml, adapted"
    sed -e "s/namespace: default\$/namespace: $NAMESPACE/" -e 's/name: csi-provisioner$/name: csi-hostpath/' \
      "$prov/deploy/kubernetes/rbac.yaml"
    echo "---"
    echo "# external-resizer $RESIZER_VERSION deploy/kubernetes/rbac.yaml, adapted"
    sed -e "s/namespace: default\$/namespace: $NAMESPACE/" -e 's/name: csi-resizer$/name: csi-hostpath/' \
      "$res/deploy/kubernetes/rbac.yaml"
    echo "---"
    echo "# external-snapshotter $SNAPSHOTTER_VERSION deploy/kubernetes/csi-snapshotter/rbac-csi-snapshotter.yaml, adapted"
    # (its ServiceAccount names no namespace: given ours)
    sed -e "/^kind: ServiceAccount\$/,/^---\$/ s/^  name: csi-snapshotter\$/  name: csi-hostpath\n  namespace: $NAMESPACE/" \
      -e "s/namespace: default\( *#.*\)\{0,1\}\$/namespace: $NAMESPACE/" -e 's/name: csi-snapshotter$/name: csi-hostpath/' \
      "$snap/deploy/kubernetes/csi-snapshotter/rbac-csi-snapshotter.yaml"
    cat <<EOF
---
# attachRequired false: no ControllerPublish (no attacher sidecar).
# fsGroupPolicy File: the kubelet gives the volume to the pod's fsGroup
# (KubeVirt's launcher and CDI's importer run as non-root users).
apiVersion: storage.k8s.io/v1
kind: CSIDriver
metadata:
  name: $DRIVER
spec:
  attachRequired: false
  podInfoOnMount: false
  fsGroupPolicy: File
  volumeLifecycleModes: [Persistent]
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: csi-hostpath
  namespace: $NAMESPACE
  labels: {app: csi-hostpath}
spec:
  selector:
    matchLabels: {app: csi-hostpath}
  template:
    metadata:
      labels: {app: csi-hostpath}
    spec:
      serviceAccountName: csi-hostpath
      # Unix sockets and the API server only: no pod network, so the driver
      # does not wait for (or depend on) the node's CNI and Multus.
      hostNetwork: true
      priorityClassName: system-node-critical
      containers:
      - name: driver
        image: $REGISTRY/csi-hostpath:$tag
        imagePullPolicy: IfNotPresent
        args:
        - -driver-name=$DRIVER
        - -endpoint=unix:///csi/csi.sock
        - -root=$DATA_DIR
        - -registration-socket=/registration/$DRIVER-reg.sock
        - -kubelet-endpoint=$KUBELET_DIR/plugins/$DRIVER/csi.sock
        - -socket-gid=65532
        env:
        - name: NODE_NAME
          valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
        securityContext:
          privileged: true
        terminationMessagePolicy: FallbackToLogsOnError
        volumeMounts:
        - {name: socket-dir, mountPath: /csi}
        - {name: registration-dir, mountPath: /registration}
        - {name: pods-dir, mountPath: $KUBELET_DIR/pods, mountPropagation: Bidirectional}
        - {name: data-dir, mountPath: $DATA_DIR}
        resources:
          requests: {cpu: 5m, memory: 16Mi}
EOF
    sidecar csi-provisioner "$REGISTRY/csi-provisioner:$PROVISIONER_VERSION" --node-name \
      --csi-address=/csi/csi.sock --node-deployment=true --feature-gates=Topology=true --leader-election=false --v=2
    sidecar csi-resizer "$REGISTRY/csi-resizer:$RESIZER_VERSION" \
      --csi-address=/csi/csi.sock --leader-election=false --v=2
    cat <<EOF
      # Every node's driver sees every volume (one store directory), so
      # one snapshotter is enough and more would race for the same
      # VolumeSnapshotContent: a Lease in $NAMESPACE picks it.
EOF
    sidecar csi-snapshotter "$REGISTRY/csi-snapshotter:$SNAPSHOTTER_VERSION" \
      --csi-address=/csi/csi.sock --leader-election=true --leader-election-namespace="$NAMESPACE" --timeout=5m --v=2
    cat <<EOF
      volumes:
      - name: socket-dir
        hostPath: {path: $KUBELET_DIR/plugins/$DRIVER, type: DirectoryOrCreate}
      - name: registration-dir
        hostPath: {path: $KUBELET_DIR/plugins_registry, type: DirectoryOrCreate}
      - name: pods-dir
        hostPath: {path: $KUBELET_DIR/pods, type: DirectoryOrCreate}
      - name: data-dir
        hostPath: {path: $DATA_DIR, type: DirectoryOrCreate}
---
# Not the default class (local-path is). WaitForFirstConsumer: the claim's
# node is picked by the scheduler, and that node's provisioner makes it.
EOF
    storage_class "$STORAGE_CLASS"
    cat <<EOF
---
# ReadWriteMany: a volume on no one node (no node affinity), mounted by
# every node that runs a pod of the claim, e.g. both ends of a VM's live
# migration. WaitForFirstConsumer: the first pod's node makes it.
EOF
    storage_class "$SHARED_CLASS" 'shared: "true"'
  } >"$f.tmp"
  # Every upstream name we adapt must have been there.
  local want
  for want in "namespace: default" "name: csi-provisioner" "name: csi-resizer" "name: csi-snapshotter"; do
    if grep -qE "^ *$want( *#.*)?\$" "$f.tmp"; then die "$f: '$want' left after adapting the sidecars' rbac.yaml"; fi
  done
  [ "$(grep -c "^  name: csi-hostpath\$\|^    name: csi-hostpath\$" "$f.tmp")" -ge 7 ] || die "$f: the sidecars' RBAC does not name ServiceAccount csi-hostpath"
  mv "$f.tmp" "$f"
  {
    cat <<EOF
# CDI's StorageProfile for $STORAGE_CLASS (apply after CDI made the object:
# this fills its spec). CDI v1.65.0's pkg/storagecapabilities does not know
# $DRIVER, so without this a DataVolume that names no access mode or
# volume mode stays Pending. Filesystem only: a volume is a directory.
# cloneStrategy csi-clone: the driver has CLONE_VOLUME (CreateVolume from a
# volume: a reflink or plain copy of the directory on the node, no
# importer/cloner pods), so CDI clones a DataVolume's PVC source with a PVC
# whose dataSource is the source claim. CDI's doc/storageprofile.md
# ("csi-clone - clones the volume using a CSI clone ... If the storage
# class (and its provider) is capable of doing CSI Volume Clone then the
# user may choose csi-clone") and doc/csi-cloning.md (the StorageProfile's
# cloneStrategy decides; host-assisted cloning when the prerequisites fail,
# e.g. another volume mode or storage class).
EOF
    storage_profile "$STORAGE_CLASS" ReadWriteOnce
    echo "---"
    echo "# The shared class: ReadWriteMany, so KubeVirt finds its VMs live-migratable."
    storage_profile "$SHARED_CLASS" ReadWriteMany
  } >"$MANIFESTS/csi-hostpath-storageprofile.yaml"
  build_snapshot_manifests "$snap"
  report "manifests: $(cd "$MANIFESTS" && wc -c csi-hostpath.yaml csi-hostpath-storageprofile.yaml snapshot-crds.yaml snapshot-controller.yaml csi-hostpath-snapshotclass.yaml | awk '$2 != "total" {printf "%s %d B; ", $2, $1}')"
}

# build_snapshot_manifests SNAPSHOTTER_DIR: the VolumeSnapshot CRDs, the
# snapshot-controller, and our driver's VolumeSnapshotClass.
build_snapshot_manifests() {
  local snap=$1 client crd f
  client=$(module_dir "$SNAP_MOD" "github.com/kubernetes-csi/external-snapshotter/client/v8@$SNAPSHOTTER_VERSION")
  # The v1 VolumeSnapshot CRDs as client/v8 ships them (config/crd; the
  # group-snapshot CRDs are left out: their API is beta and off by
  # default in the snapshot-controller).
  f=$MANIFESTS/snapshot-crds.yaml
  {
    echo "# The VolumeSnapshot CRDs of github.com/kubernetes-csi/external-snapshotter/client/v8 $SNAPSHOTTER_VERSION (config/crd), as released."
    for crd in volumesnapshotclasses volumesnapshotcontents volumesnapshots; do
      [ -f "$client/config/crd/snapshot.storage.k8s.io_$crd.yaml" ] || die "$client/config/crd has no snapshot.storage.k8s.io_$crd.yaml"
      echo "---"
      sed '/^---$/d' "$client/config/crd/snapshot.storage.k8s.io_$crd.yaml"
    done
  } >"$f.tmp"
  mv "$f.tmp" "$f"
  f=$MANIFESTS/snapshot-controller.yaml
  {
    cat <<EOF
# The snapshot-controller of external-snapshotter $SNAPSHOTTER_VERSION: binds
# VolumeSnapshots to VolumeSnapshotContents, which the driver's
# csi-snapshotter sidecar cuts. Its RBAC as released
# (deploy/kubernetes/snapshot-controller/rbac-snapshot-controller.yaml, in
# kube-system); the Deployment is upstream's setup-snapshot-controller.yaml
# with our image, one replica (leader election kept, so a second is safe)
# and the host's network (the API server only; no wait for the pod network).
EOF
    echo "---"
    cat "$snap/deploy/kubernetes/snapshot-controller/rbac-snapshot-controller.yaml"
    cat <<EOF
---
kind: Deployment
apiVersion: apps/v1
metadata:
  name: snapshot-controller
  namespace: kube-system
spec:
  replicas: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: snapshot-controller
  template:
    metadata:
      labels:
        app.kubernetes.io/name: snapshot-controller
    spec:
      serviceAccountName: snapshot-controller
      hostNetwork: true
      priorityClassName: system-cluster-critical
      containers:
      - name: snapshot-controller
        image: $REGISTRY/snapshot-controller:$SNAPSHOTTER_VERSION
        imagePullPolicy: IfNotPresent
        args:
        - --v=2
        - --leader-election=true
        - --leader-election-namespace=kube-system
EOF
    nonroot
    cat <<EOF
        resources:
          requests: {cpu: 5m, memory: 32Mi}
EOF
  } >"$f.tmp"
  grep -q "^  namespace: kube-system\$" "$f.tmp" || die "$f: the snapshot-controller's RBAC is not in kube-system any more"
  mv "$f.tmp" "$f"
  cat >"$MANIFESTS/csi-hostpath-snapshotclass.yaml" <<EOF
# The VolumeSnapshotClass of $DRIVER (apply after snapshot-crds.yaml): the
# driver's default class, so a VolumeSnapshot of a wukong-csi-* claim that
# names no class, KubeVirt's VirtualMachineSnapshot and CDI's snapshot
# clones find it (the snapshot-controller picks the class annotated
# snapshot.storage.kubernetes.io/is-default-class for the claim's driver).
# deletionPolicy Delete: deleting a VolumeSnapshot deletes its copy on the
# node (DeleteSnapshot). A snapshot is a copy of the volume's directory,
# reflinked where the file system can.
apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshotClass
metadata:
  name: $SNAPSHOT_CLASS
  annotations:
    snapshot.storage.kubernetes.io/is-default-class: "true"
driver: $DRIVER
deletionPolicy: Delete
EOF
}

mkdir -p "$B"
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(all)
report "== $(date -u +%FT%TZ) csi-build ${steps[*]} (driver $DRIVER $DRIVER_VERSION, provisioner $PROVISIONER_VERSION, resizer $RESIZER_VERSION, snapshotter $SNAPSHOTTER_VERSION)"
for s in "${steps[@]}"; do
  case $s in
  all) test_driver && build_bin && build_images && build_manifests ;;
  test) test_driver ;;
  bin) build_bin ;;
  images) build_images ;;
  manifests) build_manifests ;;
  *) die "unknown step '$s': want all, test, bin, images or manifests" ;;
  esac
done
