#!/usr/bin/env bash
# Builds, on THIS machine, what the local cluster needs for real disk imports
# and secondary NICs (issue 21), as docker-archive tars that
# `ctr -n k8s.io images import` reads, with their manifests: no Docker, no
# registry. The shape follows scripts/kubevirt-build.sh.
#
#   bin/cdi/bin/          the binaries (static unless said)
#   bin/cdi/images/       one .tar per image (names below)
#   bin/cdi/manifests/    cdi-operator.yaml, cdi-cr.yaml, local-path.yaml,
#                         local-path-storageprofile.yaml, multus.yaml,
#                         image-server.yaml
#   bin/cdi/rootfs/       Debian trixie minbase + qemu-utils + nbdkit: the
#                         base layer of cdi-importer, cdi-cloner and
#                         cdi-uploadserver
#   bin/cdi/build.txt     every run's times and sizes (appended)
#
# Steps (each runnable alone; `all` by default):
#   cdi           CDI v1.65.0 (hack/cdi-components): cdi-operator,
#                 cdi-controller, cdi-apiserver, cdi-uploadproxy,
#                 cdi-importer (+ the helpers CDI's importer image carries),
#                 cdi-cloner, cdi-uploadserver, manifest-generator
#   cdi-manifests cdi-operator.yaml and cdi-cr.yaml from CDI's own
#                 manifest-generator and release templates
#   rootfs        the Debian rootfs for the data-moving images
#   addons        local-path-provisioner v0.0.30, Multus thick v4.2.3
#                 (hack/multus-components: multus-daemon, multus-shim,
#                 install_multus), the reference
#                 CNI plugins v1.10.0, the image server (hack/image-server)
#   images        every image tar
#   addon-manifests local-path, Multus and image-server manifests
#   check         (not in all) every image imported into a throwaway
#                 containerd and its binaries run with `ctr run`
#
# Images (registry $CDI_REGISTRY, default localhost/cdi, and tag):
#   cdi-operator, cdi-controller, cdi-apiserver, cdi-uploadproxy :v1.65.0
#       static binary in /usr/bin, /etc/passwd with user 1001 (CDI's images)
#   cdi-importer, cdi-cloner, cdi-uploadserver :v1.65.0
#       the Debian rootfs + the binaries (CDI's importer/uploadserver bases
#       carry qemu-img and nbdkit, cloner_startup.sh needs bash, du, blockdev)
#   localhost/wukong/local-path-provisioner:v0.0.30
#   localhost/wukong/multus-thick:v4.2.3 (+ reference plugins v1.10.0)
#   localhost/wukong/image-server:latest (serves bin/guest/disk.qcow2 as
#       /guest.qcow2; taken when the image is written)
#
# Needs root (debootstrap, chroot, mounts). Idempotent: a finished rootfs is
# kept (delete bin/cdi/rootfs to remake it); Go's build cache makes rebuilds
# cheap. See docs/notes/real-cdi-multus.md for times, sizes and the install steps.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CDI_VERSION=v1.65.0
REGISTRY=${CDI_REGISTRY:-localhost/cdi}
TAG=${CDI_TAG:-$CDI_VERSION}
NAMESPACE=${CDI_NAMESPACE:-cdi}
SUITE=${CDI_ROOTFS_SUITE:-trixie}
NICE=${CDI_NICE:-15}
LOCAL_PATH_VERSION=v0.0.30
MULTUS_VERSION=v4.2.3
CNI_PLUGINS_VERSION=v1.10.0
ADDONS=${CDI_ADDONS_REGISTRY:-localhost/wukong}
# Host paths of the local cluster (scripts/local-cluster-up.sh) that the
# Multus DaemonSet mounts: the CNI config directory containerd reads, the
# directory Multus installs multus-shim and the reference plugins into (it
# must be containerd's CNI bin_dir), and the local-path provisioner's data.
CNI_CONF_DIR=${CDI_CNI_CONF_DIR:-$ROOT/bin/local-cluster/cni/net.d}
CNI_BIN_DIR=${CDI_CNI_BIN_DIR:-/opt/cni/bin}
LOCAL_PATH_DIR=${CDI_LOCAL_PATH_DIR:-/var/lib/wukong-local-path}
MOD=$ROOT/hack/cdi-components
B=$ROOT/bin/cdi
OUT=$B/bin
IMAGES=$B/images
MANIFESTS=$B/manifests
ROOTFS=$B/rootfs
STAGE=$B/stage
REPORT=$B/build.txt
IMAGETOOL=$B/imagetool
# CDI's images run as 1001 (cmd/*/BUILD.bazel: user = "1001").
NONROOT=1001

# What CDI's data-moving images run (pkg/image: qemu-img, nbdkit with the
# curl plugin and the readahead/retry/xz/gzip/tar filters;
# cmd/cdi-cloner/cloner_startup.sh: bash, blockdev, du, cut; the importer's
# file source: /usr/bin/ln).
ROOTFS_PKGS=(qemu-utils nbdkit ca-certificates)

LOG_PREFIX=cdi-build
TIMED_WIDTH=34
# shellcheck source=scripts/image-build-lib.sh
source "$ROOT/scripts/image-build-lib.sh"

# -------------------------------------------------------------------- CDI
# CDI's commands, static. cdi-importer's image also carries the helpers the
# controller runs from IMPORTER_IMAGE (cmd/cdi-importer/BUILD.bazel):
# cdi-containerimage-server and cdi-image-size-detection (registry imports
# pulled on the node), cdi-source-update-poller (DataImportCron), and the
# ovirt and openstack populators (OVIRT_POPULATOR_IMAGE is the importer's,
# hack/build/config.sh).
CDI_CMDS=(cmd/cdi-operator cmd/cdi-controller cmd/cdi-apiserver cmd/cdi-uploadproxy cmd/cdi-importer cmd/cdi-cloner
  cmd/cdi-uploadserver cmd/ovirt-populator cmd/openstack-populator tools/cdi-containerimage-server
  tools/cdi-image-size-detection tools/cdi-source-update-poller tools/manifest-generator)
build_cdi() {
  mkdir -p "$OUT"
  local c
  for c in "${CDI_CMDS[@]}"; do
    timed "go build ${c##*/}" env -C "$MOD" GOWORK=off CGO_ENABLED=0 \
      go build -trimpath -ldflags "-s -w" -o "$OUT/${c##*/}" "kubevirt.io/containerized-data-importer/$c"
  done
}

# ----------------------------------------------------------- CDI manifests
# As CDI's hack/build/build-manifests.sh: manifest-generator renders the
# operator's resources from code (pkg/operator/resources: CRDs, RBAC, the
# cdi-operator Deployment with its *_IMAGE env) into generated/, then fills
# manifests/templates/release/{cdi-operator,cdi-cr}.yaml.in with them.
build_cdi_manifests() {
  [ -x "$OUT/manifest-generator" ] || die "$OUT/manifest-generator is missing: run '$0 cdi' first"
  local src gen t args
  src=$(cd "$MOD" && GOWORK=off go list -m -f '{{.Dir}}' kubevirt.io/containerized-data-importer)
  gen=$B/generated
  rm -rf "$gen"
  mkdir -p "$gen" "$MANIFESTS"
  args=(-docker-repo="$REGISTRY" -docker-tag="$TAG" -operator-version="$TAG" -deploy-cluster-resources=true
    -operator-image="$REGISTRY/cdi-operator:$TAG" -controller-image="$REGISTRY/cdi-controller:$TAG"
    -importer-image="$REGISTRY/cdi-importer:$TAG" -cloner-image="$REGISTRY/cdi-cloner:$TAG"
    -apiserver-image="$REGISTRY/cdi-apiserver:$TAG" -uploadproxy-image="$REGISTRY/cdi-uploadproxy:$TAG"
    -uploadserver-image="$REGISTRY/cdi-uploadserver:$TAG" -ovirt-populator-image="$REGISTRY/cdi-importer:$TAG"
    -verbosity=1 -pull-policy=IfNotPresent -namespace="$NAMESPACE")
  "$OUT/manifest-generator" -resource-type=operator -resource-group=everything "${args[@]}" >"$gen/operator-everything.yaml.in"
  "$OUT/manifest-generator" -resource-type=namespaced -resource-group=networkpolicies "${args[@]}" >"$gen/network-policies.yaml.in"
  for t in cdi-operator cdi-cr; do
    "$OUT/manifest-generator" -template="$src/manifests/templates/release/$t.yaml.in" -cr-name=cdi \
      -generated-manifests-path="$gen" "${args[@]}" >"$MANIFESTS/$t.yaml.tmp"
    sed -i -e '${/^$/d;}' "$MANIFESTS/$t.yaml.tmp"
    mv "$MANIFESTS/$t.yaml.tmp" "$MANIFESTS/$t.yaml"
  done
  rm -rf "$gen"
  grep -q "image: $REGISTRY/cdi-operator:$TAG" "$MANIFESTS/cdi-operator.yaml" ||
    die "cdi-operator.yaml does not name $REGISTRY/cdi-operator:$TAG"
  report "cdi manifests: $(cd "$MANIFESTS" && wc -c cdi-operator.yaml cdi-cr.yaml | awk '$2 != "total" {printf "%s %d B; ", $2, $1}')"
}

# ------------------------------------------------------------------- rootfs
make_rootfs() {
  local want="$SUITE ${ROOTFS_PKGS[*]}"
  if [ -f "$ROOTFS/.wukong-rootfs" ] && [ "$(cat "$ROOTFS/.wukong-rootfs")" = "$want" ]; then
    log "rootfs: reusing $ROOTFS"
    return
  fi
  debian_rootfs "$ROOTFS.tmp" "$SUITE" "$B" "${ROOTFS_PKGS[@]}"
  # CDI's user 1001 (its images: user = "1001").
  chroot "$ROOTFS.tmp" getent passwd "$NONROOT" >/dev/null ||
    chroot "$ROOTFS.tmp" useradd -u "$NONROOT" -U -d /home/cdi -m -s /bin/bash cdi
  rm -rf "$ROOTFS.tmp"/var/lib/apt/lists/* "$ROOTFS.tmp"/usr/share/doc "$ROOTFS.tmp"/usr/share/man \
    "$ROOTFS.tmp"/usr/share/info "$ROOTFS.tmp"/usr/share/locale "$ROOTFS.tmp/.debootstrapped"
  rm -f "$ROOTFS.tmp/etc/resolv.conf"
  echo "$want" >"$ROOTFS.tmp/.wukong-rootfs"
  rm -rf "$ROOTFS"
  mv "$ROOTFS.tmp" "$ROOTFS"
  # shellcheck disable=SC2016 # dpkg-query's own ${Version}
  report "rootfs $SUITE: $(human "$ROOTFS"); qemu-utils $(chroot "$ROOTFS" dpkg-query -W -f '${Version}' qemu-utils), nbdkit $(chroot "$ROOTFS" dpkg-query -W -f '${Version}' nbdkit)"
}

# ------------------------------------------------------------------ addons
# local-path-provisioner and the CNI plugins from their own modules at their
# released versions with `go install <pkg>@<version>` (their go.mod and
# go.sum; neither has replace lines); Multus from hack/multus-components;
# the image server from hack/image-server. All static. busybox-static (Debian's .deb, unpacked, not installed
# on the host) gives the Multus image the sh/cp its plugin installer runs and
# is local-path-provisioner's helper-pod image (its setup/teardown scripts
# are sh with mkdir and rm).
# The reference plugins a Wukong NIC uses (bridge, vlan, macvlan, host-local,
# static, tuning...), as the plugins' build_linux.sh builds them (all of
# plugins/{main,ipam,meta} but windows).
CNI_PLUGINS=(main/bridge main/dummy main/host-device main/ipvlan main/loopback main/macvlan main/ptp main/tap main/vlan
  ipam/dhcp ipam/host-local ipam/static meta/bandwidth meta/firewall meta/portmap meta/sbr meta/tuning meta/vrf)
build_addons() {
  mkdir -p "$OUT/cni"
  local mv="-X gopkg.in/k8snetworkplumbingwg/multus-cni.v4/pkg/multus.version=$MULTUS_VERSION -X gopkg.in/k8snetworkplumbingwg/multus-cni.v4/pkg/multus.gitTreeState=clean -X gopkg.in/k8snetworkplumbingwg/multus-cni.v4/pkg/multus.releaseStatus=,released"
  timed "go install local-path-provisioner" env GOWORK=off GOBIN="$OUT" CGO_ENABLED=0 \
    go install -trimpath -ldflags "-s -w -X main.VERSION=$LOCAL_PATH_VERSION" "github.com/rancher/local-path-provisioner@$LOCAL_PATH_VERSION"
  # Multus from hack/multus-components: `go install <pkg>@v4.2.3` is refused
  # (it reads the module's version list, which the proxy does not serve).
  local c
  # passthru: install_multus -t thick copies it next to multus-shim
  # (cmd/install_multus; hack/build-go.sh builds it from cmd/passthru-cni).
  for c in multus-daemon multus-shim install_multus passthru-cni; do
    timed "go build $c" env -C "$ROOT/hack/multus-components" GOWORK=off CGO_ENABLED=0 \
      go build -trimpath -ldflags "-s -w $mv" -o "$OUT/${c%-cni}" "gopkg.in/k8snetworkplumbingwg/multus-cni.v4/cmd/$c"
  done
  local p pkgs=()
  for p in "${CNI_PLUGINS[@]}"; do pkgs+=("github.com/containernetworking/plugins/plugins/$p@$CNI_PLUGINS_VERSION"); done
  timed "go install cni plugins (${#pkgs[@]})" env GOWORK=off GOBIN="$OUT/cni" CGO_ENABLED=0 \
    go install -trimpath -ldflags "-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$CNI_PLUGINS_VERSION" "${pkgs[@]}"
  timed "go build image-server" env -C "$ROOT/hack/image-server" GOWORK=off CGO_ENABLED=0 \
    go build -trimpath -ldflags "-s -w" -o "$OUT/image-server" .
  if [ ! -x "$B/busybox/bin/busybox" ]; then
    local d
    d=$(mktemp -d)
    chmod 0755 "$d" # apt's _apt user downloads into it
    (cd "$d" && apt-get download busybox-static >/dev/null) || die "apt-get download busybox-static failed (run apt-get update?)"
    rm -rf "$B/busybox"
    dpkg-deb -x "$d"/busybox-static_*.deb "$B/busybox.tmp"
    mkdir -p "$B/busybox/bin"
    cp "$B/busybox.tmp/bin/busybox" "$B/busybox/bin/busybox"
    rm -rf "$d" "$B/busybox.tmp"
  fi
}

# ------------------------------------------------------------------- images

# passwd_dir DIR: /etc/passwd and /etc/group with root and CDI's user 1001.
passwd_dir() {
  mkdir -p "$1/etc"
  printf 'root:x:0:0:root:/root:/sbin/nologin\ncdi:x:%s:%s:cdi:/home/cdi:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' \
    "$NONROOT" "$NONROOT" >"$1/etc/passwd"
  printf 'root:x:0:\ncdi:x:%s:\nnonroot:x:65532:\n' "$NONROOT" >"$1/etc/group"
  chmod 0644 "$1/etc/passwd" "$1/etc/group"
}

# busybox_dir DIR: a static busybox with the applets the images' scripts use.
busybox_dir() {
  install -D -m 0755 "$B/busybox/bin/busybox" "$1/bin/busybox"
  local a
  for a in sh cp mv rm ls mkdir cat chmod sleep echo test; do ln -sf busybox "$1/bin/$a"; done
}

build_images() {
  local c
  for c in "${CDI_CMDS[@]}" image-server local-path-provisioner multus-daemon multus-shim install_multus passthru; do
    [ "${c##*/}" = manifest-generator ] || [ -x "$OUT/${c##*/}" ] || die "$OUT/${c##*/} is missing: run '$0 cdi addons' first"
  done
  [ -f "$ROOTFS/.wukong-rootfs" ] || die "no rootfs: run '$0 rootfs' first"
  mkdir -p "$IMAGES"
  ensure_imagetool
  rm -rf "$STAGE"
  # CDI control plane (cmd/*/BUILD.bazel): /usr/bin/<name>, user 1001,
  # entrypoint [<name>, -alsologtostderr] (the operator without the flag),
  # workdir /home/<name> owned by 1001.
  for c in cdi-operator cdi-controller cdi-apiserver cdi-uploadproxy; do
    local d=$STAGE/$c h=$STAGE/$c-home ep="/usr/bin/$c,-alsologtostderr"
    [ "$c" = cdi-operator ] && ep=/usr/bin/$c
    passwd_dir "$d"
    install -D -m 0755 "$OUT/$c" "$d/usr/bin/$c"
    # cdi-deployment's readiness probe runs `cat /tmp/ready`
    # (pkg/operator/resources/namespaced/controller.go): a static busybox
    # as /bin/cat, the one applet it needs.
    if [ "$c" = cdi-controller ]; then
      install -D -m 0755 "$B/busybox/bin/busybox" "$d/bin/busybox"
      ln -sf busybox "$d/bin/cat"
    fi
    mkdir -p "$d/tmp" "$h/home/$c"
    chmod 1777 "$d/tmp"
    image "$REGISTRY/$c:$TAG" "$c" -layer "$d:0:0" -layer "$h:$NONROOT:$NONROOT" -entrypoint "$ep" \
      -user "$NONROOT" -workdir "/home/$c" -env PATH=/usr/bin:/bin
  done
  # Data movers: the Debian rootfs + CDI's binaries, user 1001.
  local i=$STAGE/cdi-importer
  for c in cdi-importer ovirt-populator openstack-populator cdi-containerimage-server cdi-image-size-detection cdi-source-update-poller; do
    install -D -m 0755 "$OUT/$c" "$i/usr/bin/$c"
  done
  image "$REGISTRY/cdi-importer:$TAG" cdi-importer -layer "$ROOTFS" -exclude .wukong-rootfs -layer "$i:0:0" \
    -entrypoint /usr/bin/cdi-importer,-alsologtostderr -user "$NONROOT"
  local src
  src=$(cd "$MOD" && GOWORK=off go list -m -f '{{.Dir}}' kubevirt.io/containerized-data-importer)
  local l=$STAGE/cdi-cloner
  install -D -m 0755 "$OUT/cdi-cloner" "$l/usr/bin/cdi-cloner"
  install -D -m 0755 "$src/cmd/cdi-cloner/cloner_startup.sh" "$l/usr/bin/cloner_startup.sh"
  mkdir -p "$STAGE/cloner-home/home/cdi-cloner"
  image "$REGISTRY/cdi-cloner:$TAG" cdi-cloner -layer "$ROOTFS" -exclude .wukong-rootfs -layer "$l:0:0" \
    -layer "$STAGE/cloner-home:$NONROOT:$NONROOT" -entrypoint /usr/bin/cloner_startup.sh -user "$NONROOT" -workdir /home/cdi-cloner
  local u=$STAGE/cdi-uploadserver
  install -D -m 0755 "$OUT/cdi-uploadserver" "$u/usr/bin/cdi-uploadserver"
  image "$REGISTRY/cdi-uploadserver:$TAG" cdi-uploadserver -layer "$ROOTFS" -exclude .wukong-rootfs -layer "$u:0:0" \
    -entrypoint /usr/bin/cdi-uploadserver,-alsologtostderr -user "$NONROOT"
  # local-path-provisioner: the binary on PATH (its Deployment runs
  # `local-path-provisioner start`), and busybox for its helper pods.
  local lp=$STAGE/local-path
  passwd_dir "$lp"
  install -D -m 0755 "$OUT/local-path-provisioner" "$lp/usr/bin/local-path-provisioner"
  image "$ADDONS/local-path-provisioner:$LOCAL_PATH_VERSION" local-path-provisioner -layer "$lp:0:0" \
    -entrypoint /usr/bin/local-path-provisioner -env PATH=/usr/bin:/bin
  local bb=$STAGE/busybox
  busybox_dir "$bb"
  image "$ADDONS/busybox:1.35" busybox -layer "$bb:0:0" -env PATH=/bin
  # Multus thick (images/Dockerfile.thick): /usr/src/multus-cni/bin/, plus
  # the reference plugins in /usr/src/cni-plugins/bin/ for the DaemonSet's
  # second init container to install, and busybox for that copy.
  local m=$STAGE/multus
  for c in multus-daemon multus-shim install_multus passthru; do install -D -m 0755 "$OUT/$c" "$m/usr/src/multus-cni/bin/$c"; done
  mkdir -p "$m/usr/src/cni-plugins/bin"
  install -m 0755 "$OUT"/cni/* "$m/usr/src/cni-plugins/bin/"
  busybox_dir "$m"
  # multus-daemon checks it runs as root with os/user, which reads
  # /etc/passwd (CGO off); without one it panics on a nil user
  # (cmd/multus-daemon/main.go startMultusDaemon).
  passwd_dir "$m"
  # containerd names pod network namespaces /var/run/netns/cni-*, and the
  # daemon opens them by that path (its DaemonSet mounts the host's
  # /run/netns): /var/run is the usual link to /run, as in Multus's own
  # (distribution-based) image.
  mkdir -p "$m/var" "$m/run"
  ln -sfn ../run "$m/var/run"
  image "$ADDONS/multus-thick:$MULTUS_VERSION" multus-thick -layer "$m:0:0" \
    -entrypoint /usr/src/multus-cni/bin/multus-daemon -env PATH=/usr/src/multus-cni/bin:/bin
  # The image server with the guest disk as it is now (scripts/guest-image.sh).
  local g=$ROOT/bin/guest/disk.qcow2 s=$STAGE/image-server
  [ -f "$g" ] || die "no $g: run 'make guest-image' first"
  passwd_dir "$s"
  install -D -m 0755 "$OUT/image-server" "$s/usr/bin/image-server"
  mkdir -p "$s/srv"
  cp --reflink=auto "$g" "$s/srv/guest.qcow2"
  chmod 0644 "$s/srv/guest.qcow2"
  image "$ADDONS/image-server:latest" image-server -layer "$s:0:0" -entrypoint /usr/bin/image-server,-dir,/srv -user 65532
  report "  image-server serves guest.qcow2 $(stat -c %s "$s/srv/guest.qcow2") B, sha256 $(sha256sum "$s/srv/guest.qcow2" | cut -c1-16)"
  rm -rf "$STAGE"
}

# -------------------------------------------------------- addon manifests
# sub FILE OLD NEW: replaces every line equal to OLD after its leading
# spaces by NEW (which may have several lines), each line of NEW indented as
# OLD was; dies when OLD is not there, so an upstream change cannot slip
# through unadapted.
sub() {
  OLD=$2 NEW=$3 awk '
    { line = $0; ind = line; sub(/[^ ].*$/, "", ind) }
    substr(line, length(ind) + 1) == ENVIRON["OLD"] {
      n = split(ENVIRON["NEW"], parts, "\n"); for (i = 1; i <= n; i++) print ind parts[i]; found = 1; next
    }
    { print }
    END { exit !found }' "$1" >"$1.sub" || { rm -f "$1.sub"; die "$1: no line '$2' to adapt"; }
  mv "$1.sub" "$1"
}

build_addon_manifests() {
  mkdir -p "$MANIFESTS"
  local lp mu f
  lp=$(GOWORK=off go list -m -f '{{.Dir}}' "github.com/rancher/local-path-provisioner@$LOCAL_PATH_VERSION")
  mu=$(cd "$ROOT/hack/multus-components" && GOWORK=off go list -m -f '{{.Dir}}' gopkg.in/k8snetworkplumbingwg/multus-cni.v4)
  # local-path-provisioner's deploy/local-path-storage.yaml: local images,
  # the data directory, the default StorageClass (WaitForFirstConsumer is
  # upstream's), and Pod Security privileged for its hostPath helper pods.
  f=$MANIFESTS/local-path.yaml
  {
    echo "# local-path-provisioner $LOCAL_PATH_VERSION (deploy/local-path-storage.yaml), adapted by scripts/cdi-build.sh"
    cat "$lp/deploy/local-path-storage.yaml"
  } >"$f.tmp"
  sub "$f.tmp" "image: rancher/local-path-provisioner:$LOCAL_PATH_VERSION" "image: $ADDONS/local-path-provisioner:$LOCAL_PATH_VERSION"
  sub "$f.tmp" 'image: busybox' "image: $ADDONS/busybox:1.35"
  sub "$f.tmp" '"paths":["/opt/local-path-provisioner"]' "\"paths\":[\"$LOCAL_PATH_DIR\"]"
  sub "$f.tmp" 'name: local-path' "$(printf 'name: local-path\nannotations:\n  storageclass.kubernetes.io/is-default-class: "true"')"
  sub "$f.tmp" 'name: local-path-storage' "$(printf 'name: local-path-storage\nlabels:\n  pod-security.kubernetes.io/enforce: privileged')"
  grep -q 'volumeBindingMode: WaitForFirstConsumer' "$f.tmp" || die "$f: the StorageClass is not WaitForFirstConsumer"
  mv "$f.tmp" "$f"
  # CDI does not know rancher.io/local-path (pkg/storagecapabilities), so
  # its StorageProfile for the class gets the claim properties by hand:
  # ReadWriteOnce Filesystem, host-assisted copy for clones.
  cat >"$MANIFESTS/local-path-storageprofile.yaml" <<EOF
# CDI's StorageProfile for the local-path StorageClass (apply after CDI is
# Available: CDI creates the object, this fills its spec). CDI v1.65.0's
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
EOF
  # Multus thick (deployments/multus-daemonset-thick.yml): local image,
  # this cluster's CNI directories, plugins run in the host (chrootDir) from
  # $CNI_BIN_DIR, and a second init container installing the reference
  # plugins there.
  f=$MANIFESTS/multus.yaml
  {
    echo "# Multus thick $MULTUS_VERSION (deployments/multus-daemonset-thick.yml), adapted by scripts/cdi-build.sh:"
    echo "# CNI config dir $CNI_CONF_DIR, CNI bin dir $CNI_BIN_DIR (containerd's bin_dir must be this)"
    cat "$mu/deployments/multus-daemonset-thick.yml"
  } >"$f.tmp"
  sub "$f.tmp" 'image: ghcr.io/k8snetworkplumbingwg/multus-cni:snapshot-thick' \
    "$(printf 'image: %s\nimagePullPolicy: IfNotPresent' "$ADDONS/multus-thick:$MULTUS_VERSION")"
  sub "$f.tmp" '"chrootDir": "/hostroot",' "$(printf '"chrootDir": "/hostroot",\n"binDir": "%s",' "$CNI_BIN_DIR")"
  sub "$f.tmp" 'mountPath: /opt/cni/bin' "mountPath: $CNI_BIN_DIR"
  sub "$f.tmp" 'path: /etc/cni/net.d' "path: $CNI_CONF_DIR"
  sub "$f.tmp" 'path: /opt/cni/bin' "path: $CNI_BIN_DIR"
  sub "$f.tmp" 'terminationGracePeriodSeconds: 10' "$(cat <<EOF
  - name: install-cni-plugins
    image: $ADDONS/multus-thick:$MULTUS_VERSION
    imagePullPolicy: IfNotPresent
    # The reference plugins $CNI_PLUGINS_VERSION, replaced atomically (a
    # running plugin's file is renamed over, never written).
    command: ["/bin/sh", "-c", "for f in /usr/src/cni-plugins/bin/*; do n=\${f##*/}; cp \$f /host/opt/cni/bin/.\$n.new && mv -f /host/opt/cni/bin/.\$n.new /host/opt/cni/bin/\$n || exit 1; done; ls /host/opt/cni/bin"]
    securityContext:
      privileged: true
    terminationMessagePolicy: FallbackToLogsOnError
    volumeMounts:
      - name: cnibin
        mountPath: /host/opt/cni/bin
terminationGracePeriodSeconds: 10
EOF
)"
  grep -q 'image: ghcr.io' "$f.tmp" && die "$f: an upstream image is left"
  mv "$f.tmp" "$f"
  # The image server: hostNetwork on the node's port 18080 (the local
  # cluster has no kube-proxy and no DNS, so a pod reaches it at
  # http://<node IP>:18080/guest.qcow2), and a Service for clusters that
  # route Services.
  cat >"$MANIFESTS/image-server.yaml" <<EOF
# The guest disk over HTTP for CDI imports (hack/image-server,
# scripts/cdi-build.sh). URL: http://<node IP>:18080/guest.qcow2, or
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
EOF
  report "addon manifests: $(cd "$MANIFESTS" && wc -c local-path.yaml local-path-storageprofile.yaml multus.yaml image-server.yaml | awk '$2 != "total" {printf "%s %d B; ", $2, $1}')"
}

# -------------------------------------------------------------------- check
# Every image imported into a THROWAWAY containerd (its own root, state and
# socket under a temporary directory, CRI off, runc state there too; never
# the local cluster's) and its binaries run with `ctr run`. The image server
# is started with host networking and asked for the disk (HEAD and a range).
# The containerd and its directory are removed at the end.
CHECK_PID=
check_cleanup() {
  if [ -n "$CHECK_PID" ]; then
    kill "$CHECK_PID" 2>/dev/null || true
    wait "$CHECK_PID" 2>/dev/null || true
    CHECK_PID=
  fi
  if [ -n "${CHECK_DIR:-}" ] && [ -d "$CHECK_DIR" ]; then
    # overlay mounts of running or dead containers under its root
    { grep -o " ${CHECK_DIR}[^ ]*" /proc/self/mounts || true; } | sort -r | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" || true; done
    rm -rf "$CHECK_DIR" 2>/dev/null || { sleep 1; rm -rf "$CHECK_DIR"; } || log "could not remove $CHECK_DIR"
  fi
  # the namespace's (empty) cgroups that runc made for `ctr run`
  local c
  for c in /sys/fs/cgroup/*/wukong-check /sys/fs/cgroup/wukong-check; do
    [ -d "$c" ] && { find "$c" -depth -type d -exec rmdir {} + 2>/dev/null || log "could not remove the cgroup $c"; }
  done
  return 0
}

# crun NAME REF CMD...: runs CMD in a container of REF, prints its output
# indented; fails when the command fails.
crun() {
  local name=$1 ref=$2 out rc=0
  shift 2
  out=$(ctr -a "$CHECK_SOCK" -n wukong-check run --rm --runc-root "$CHECK_DIR/runc" "$ref" "check-$name" "$@" 2>&1) || rc=$?
  printf '%s\n' "$out" | head -n 4 | sed "s/^/    [$name] /" | tee -a "$REPORT" >&2
  [ "$rc" = 0 ] || die "check $name ($ref: $*) exited $rc"
}

# crun_usage NAME REF CMD...: as crun for a Go command asked for --help,
# which prints its flags and exits 0, 2 (the flag package) or 1 (pflag in
# install_multus): accepts those when the output is a usage text.
crun_usage() {
  local name=$1 ref=$2 out rc=0
  shift 2
  out=$(ctr -a "$CHECK_SOCK" -n wukong-check run --rm --runc-root "$CHECK_DIR/runc" "$ref" "check-$name" "$@" 2>&1) || rc=$?
  printf '%s\n' "$out" | head -n 3 | sed "s/^/    [$name rc=$rc] /" | tee -a "$REPORT" >&2
  if [ "$rc" -gt 2 ] || ! printf '%s' "$out" | grep -qiE -- '^ *-.*|usage'; then
    die "check $name ($ref: $*) exited $rc without a usage text"
  fi
}

check_images() {
  command -v containerd >/dev/null || die "no containerd (apt-get install containerd)"
  CHECK_DIR=$(mktemp -d /tmp/cdi-check.XXXXXX)
  CHECK_SOCK=$CHECK_DIR/containerd.sock
  trap 'check_cleanup; cleanup' EXIT
  cat >"$CHECK_DIR/config.toml" <<EOF
version = 2
root = "$CHECK_DIR/root"
state = "$CHECK_DIR/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CHECK_SOCK"
[ttrpc]
  address = "$CHECK_DIR/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
EOF
  containerd --config "$CHECK_DIR/config.toml" >"$CHECK_DIR/containerd.log" 2>&1 &
  CHECK_PID=$!
  local i
  for i in $(seq 1 100); do
    ctr -a "$CHECK_SOCK" version >/dev/null 2>&1 && break
    [ "$i" = 100 ] && die "the throwaway containerd did not start: $(tail -5 "$CHECK_DIR/containerd.log")"
    sleep 0.2
  done
  report "check: throwaway containerd $(containerd --version | awk '{print $3}') at $CHECK_SOCK (CRI off)"
  local t
  for t in "$IMAGES"/*.tar; do
    timed "import ${t##*/}" ctr -a "$CHECK_SOCK" -n wukong-check images import "$t" >/dev/null
  done
  local c r=$REGISTRY a=$ADDONS
  for c in cdi-operator cdi-controller cdi-apiserver cdi-uploadproxy; do
    crun_usage "$c" "$r/$c:$TAG" "/usr/bin/$c" --help
  done
  crun_usage cdi-importer "$r/cdi-importer:$TAG" /usr/bin/cdi-importer --help
  crun id-importer "$r/cdi-importer:$TAG" id
  crun qemu-img "$r/cdi-importer:$TAG" qemu-img --version
  crun nbdkit "$r/cdi-importer:$TAG" nbdkit --version
  # the plugin and filters CDI's importer asks for (pkg/image/nbdkit.go)
  crun nbdkit-curl "$r/cdi-importer:$TAG" nbdkit --filter=readahead --filter=retry --filter=xz --filter=gzip --filter=tar \
    --filter=cacheextents curl --version
  for c in ovirt-populator openstack-populator cdi-containerimage-server cdi-image-size-detection cdi-source-update-poller; do
    crun_usage "$c" "$r/cdi-importer:$TAG" "/usr/bin/$c" --help
  done
  crun_usage cdi-cloner "$r/cdi-cloner:$TAG" /usr/bin/cdi-cloner --help
  # shellcheck disable=SC2016 # expanded by the container's sh
  crun cloner-tools "$r/cdi-cloner:$TAG" sh -c 'for c in bash blockdev du cut; do command -v $c || exit 1; done; pwd'
  crun_usage cdi-uploadserver "$r/cdi-uploadserver:$TAG" /usr/bin/cdi-uploadserver --help
  crun qemu-img-upload "$r/cdi-uploadserver:$TAG" qemu-img --version
  crun local-path "$a/local-path-provisioner:$LOCAL_PATH_VERSION" local-path-provisioner --version
  crun busybox "$a/busybox:1.35" sh -c 'mkdir -p /tmp/x/y && rm -rf /tmp/x && echo setup/teardown ok'
  crun_usage multus-daemon "$a/multus-thick:$MULTUS_VERSION" /usr/src/multus-cni/bin/multus-daemon --help
  crun_usage install_multus "$a/multus-thick:$MULTUS_VERSION" /usr/src/multus-cni/bin/install_multus --help
  crun multus-shim "$a/multus-thick:$MULTUS_VERSION" /usr/src/multus-cni/bin/multus-shim -version
  crun cni-bridge "$a/multus-thick:$MULTUS_VERSION" /usr/src/cni-plugins/bin/bridge
  crun cni-version "$a/multus-thick:$MULTUS_VERSION" sh -c 'CNI_COMMAND=VERSION /usr/src/cni-plugins/bin/vlan </dev/null; echo; ls /usr/src/cni-plugins/bin | xargs'
  # The image server, serving on the host's loopback for two requests.
  local port=${CDI_CHECK_PORT:-18089} size
  ctr -a "$CHECK_SOCK" -n wukong-check run -d --net-host --runc-root "$CHECK_DIR/runc" "$a/image-server:latest" check-image-server \
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
  report "check: every image ran"
  check_cleanup
}

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot, mounts)"
mkdir -p "$B"
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(all)
report "== $(date -u +%FT%TZ) cdi-build ${steps[*]} (CDI $CDI_VERSION, images $REGISTRY/*:$TAG)"
for s in "${steps[@]}"; do
  case $s in
  all) build_cdi && build_cdi_manifests && make_rootfs && build_addons && build_images && build_addon_manifests ;;
  cdi) build_cdi ;;
  cdi-manifests) build_cdi_manifests ;;
  rootfs) make_rootfs ;;
  addons) build_addons ;;
  images) build_images ;;
  addon-manifests) build_addon_manifests ;;
  check) check_images ;;
  *) die "unknown step '$s': want all, cdi, cdi-manifests, rootfs, addons, images, addon-manifests or check" ;;
  esac
done
