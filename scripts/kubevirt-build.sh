#!/usr/bin/env bash
# Builds KubeVirt (KUBEVIRT_VERSION of scripts/versions.env) on THIS machine, from the kubevirt.io/kubevirt Go
# module (hack/kubevirt-components), and writes its images as docker-archive
# tars that `ctr -n k8s.io images import` reads: no Docker, no registry.
#
#   bin/kubevirt/<version>/          the binaries
#   bin/kubevirt/<version>/manifests/ kubevirt-operator.yaml, kubevirt-cr.yaml
#   bin/kubevirt/<version>/images/   virt-operator, virt-api, virt-controller,
#                                    virt-handler, virt-launcher .tar and the
#                                    guest's containerDisk (wukong-guest.tar)
#   bin/kubevirt/rootfs/             Debian trixie made with debootstrap, with
#                                    libvirt and qemu: virt-launcher and
#                                    virt-handler are built inside it (cgo)
#   bin/kubevirt/build.txt           what was built, sizes and times
#
# Control plane (virt-operator, virt-api, virt-controller) and the pure-Go
# helpers: static (CGO_ENABLED=0) on this machine. Their images hold the
# binary in /usr/bin (virt-operator's Deployments run them by name), an
# /etc/passwd and the non-root user 1001, as KubeVirt's own images.
# virt-launcher (libvirt and libnbd by cgo) and virt-handler (kvm headers by
# cgo): built in the rootfs with this machine's Go toolchain, module cache
# and build cache bind-mounted at the same paths; every mount is undone by
# the EXIT trap. Their images are the rootfs (less the build-only packages)
# plus a layer with the binaries and KubeVirt's libvirt files.
#
# Image names are those virt-operator derives from its own image
# (pkg/virt-operator/util/config.go): <registry>/virt-<name>:<tag>, so a
# virt-operator started from $KUBEVIRT_REGISTRY/virt-operator:$KUBEVIRT_TAG,
# or a KubeVirt CR with spec.imageRegistry/spec.imageTag set to them, finds
# the others.
#
# Usage: scripts/kubevirt-build.sh [all|control-plane|manifests|rootfs|download|node|images|containerdisk]...
# (download: the modules the offline cgo builds of `node` need, into the
# module cache; `node` runs it first.)
# Needs root (debootstrap, chroot, mounts). Idempotent: a finished rootfs is
# kept (delete bin/kubevirt/rootfs to remake it); Go's build cache makes
# rebuilds cheap. See docs/notes/real-kubevirt.md for times and sizes.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/versions.sh
. "$ROOT/scripts/versions.sh"
VERSION=$KUBEVIRT_VERSION
REGISTRY=${KUBEVIRT_REGISTRY:-localhost/kubevirt}
TAG=${KUBEVIRT_TAG:-$VERSION}
SUITE=${KUBEVIRT_ROOTFS_SUITE:-trixie}
# Not :latest: KubeVirt pulls a :latest containerDisk Always (ContainerDiskSource.imagePullPolicy),
# which fails without a registry; any other tag is IfNotPresent.
GUEST_REF=${KUBEVIRT_GUEST_IMAGE:-localhost/wukong/guest-disk:bookworm}
NICE=${KUBEVIRT_NICE:-15}
MOD=$ROOT/hack/kubevirt-components
KV=$ROOT/bin/kubevirt
OUT=$KV/$VERSION
IMAGES=$OUT/images
ROOTFS=$KV/rootfs
RUNTIME=$KV/rootfs-runtime
STAGE=$KV/stage
REPORT=$KV/build.txt
IMAGETOOL=$KV/imagetool
# uid/gid of KubeVirt's non-root control-plane user and of its qemu user
# (virt-launcher's image: user "107"; containerDisk: --chown=107:107).
NONROOT=1001
QEMU_ID=107

# Build-only packages in the rootfs (cgo against libvirt, libnbd, kvm.h);
# purged from the copy that becomes the node images.
BUILD_PKGS=(gcc libc6-dev pkg-config libvirt-dev libnbd-dev)
# What virt-launcher and virt-handler run: virtqemud/virtlogd
# (libvirt-daemon, libvirt-daemon-driver-qemu), qemu-system-x86_64 and
# qemu-img, xorrisofs (cloud-init ISOs), findmnt/mount (util-linux), nft,
# tar, sync, sysctl (procps), ip (iproute2), libnbd0 (nbdclient), virsh
# (libvirt-clients: node-labeller.sh, run by virt-handler's init container).
RUN_PKGS=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils
  xorriso util-linux mount nftables iproute2 procps tar ca-certificates libnbd0)

LOG_PREFIX=kubevirt-build
# shellcheck source=scripts/image-build-lib.sh
source "$ROOT/scripts/image-build-lib.sh"

GOROOT_DIR=$(go env GOROOT)
GOMODCACHE_DIR=$(go env GOMODCACHE)
GOCACHE_DIR=$(go env GOCACHE)
LDFLAGS="-s -w -X kubevirt.io/client-go/version.gitVersion=$VERSION -X kubevirt.io/client-go/version.gitTreeState=clean -X kubevirt.io/client-go/version.buildDate=1970-01-01T00:00:00Z"

# ------------------------------------------------------------- control plane
# Pure Go, static: the control plane and virt-launcher's/virt-handler's
# helpers (container-disk is C: built in the rootfs, see node).
build_control_plane() {
  mkdir -p "$OUT"
  local c
  for c in cmd/virt-operator cmd/virt-api cmd/virt-controller cmd/virt-exportproxy cmd/virt-launcher-monitor cmd/virt-tail cmd/virt-probe \
    cmd/virt-freezer cmd/virt-chroot cmd/virt-launcher/libvirt-hook-client tools/manifest-templator; do
    timed "go build ${c##*/}" env -C "$MOD" GOWORK=off CGO_ENABLED=0 \
      go build -trimpath -ldflags "$LDFLAGS" -o "$OUT/${c##*/}" "kubevirt.io/kubevirt/$c"
  done
}

# --------------------------------------------------------------- manifests
# KubeVirt's release manifests rendered by its own manifest-templator from
# the module's manifests/release/*.yaml.in and manifests/generated/ (as
# hack/build-manifests.sh does), with this build's registry and tag:
# kubevirt-operator.yaml (namespace, CRD, RBAC, virt-operator Deployment)
# and kubevirt-cr.yaml (a KubeVirt CR to edit: useEmulation is set by the
# installer, not here).
build_manifests() {
  [ -x "$OUT/manifest-templator" ] || die "$OUT/manifest-templator is missing: run '$0 control-plane' first"
  local kvsrc f
  kvsrc=$(module_dir "$MOD" "kubevirt.io/kubevirt@$KUBEVIRT_VERSION")
  mkdir -p "$OUT/manifests"
  for f in kubevirt-operator kubevirt-cr; do
    # Two passes, as hack/build-manifests.sh: the generated parts are
    # templates themselves.
    "$OUT/manifest-templator" --process-files --generated-manifests-dir="$kvsrc/manifests/generated" \
      --input-file="$kvsrc/manifests/release/$f.yaml.in" >"$OUT/manifests/$f.yaml.in"
    "$OUT/manifest-templator" --process-vars --input-file="$OUT/manifests/$f.yaml.in" \
      --namespace="${KUBEVIRT_NAMESPACE:-kubevirt}" --container-prefix="$REGISTRY" --container-tag="$TAG" \
      --image-pull-policy=IfNotPresent --kubevirt-logo-path=/dev/null --infra-replicas=1 \
      >"$OUT/manifests/$f.yaml.tmp"
    rm -f "$OUT/manifests/$f.yaml.in"
    mv "$OUT/manifests/$f.yaml.tmp" "$OUT/manifests/$f.yaml"
  done
  report "manifests: $(cd "$OUT/manifests" && wc -c ./*.yaml | awk '$2 != "total" {printf "%s %d B; ", $2, $1}')"
}

# ------------------------------------------------------------------- rootfs
make_rootfs() {
  local want="$SUITE ${BUILD_PKGS[*]} ${RUN_PKGS[*]} qemu:$QEMU_ID"
  if [ -f "$ROOTFS/.wukong-rootfs" ] && [ "$(cat "$ROOTFS/.wukong-rootfs")" = "$want" ]; then
    log "rootfs: reusing $ROOTFS"
    return
  fi
  debian_rootfs "$ROOTFS.tmp" "$SUITE" "$KV" "${BUILD_PKGS[@]}" "${RUN_PKGS[@]}"
  # KubeVirt's qemu user and group (uid/gid 107, as in its images).
  if chroot "$ROOTFS.tmp" getent passwd "$QEMU_ID" >/dev/null || chroot "$ROOTFS.tmp" getent group "$QEMU_ID" >/dev/null; then
    die "uid or gid $QEMU_ID is taken in the rootfs: $(chroot "$ROOTFS.tmp" getent passwd "$QEMU_ID")"
  fi
  chroot "$ROOTFS.tmp" groupadd -g "$QEMU_ID" qemu
  chroot "$ROOTFS.tmp" useradd -u "$QEMU_ID" -g "$QEMU_ID" -d /home/qemu -m -s /bin/bash qemu
  echo "$want" >"$ROOTFS.tmp/.wukong-rootfs"
  rm -rf "$ROOTFS"
  mv "$ROOTFS.tmp" "$ROOTFS"
  # shellcheck disable=SC2016 # dpkg-query's own ${Version}
  report "rootfs $SUITE: $(human "$ROOTFS"); libvirt $(chroot "$ROOTFS" dpkg-query -W -f '${Version}' libvirt-daemon), qemu $(chroot "$ROOTFS" dpkg-query -W -f '${Version}' qemu-system-x86)"
}

# --------------------------------------------------------------------- node
# NODE_CMDS are built with cgo in the rootfs, offline (GOPROXY=off: the
# chroot has no proxy settings and must not depend on them). Everything they
# import is downloaded first, on this machine, with the same CGO_ENABLED,
# GOOS and GOARCH: libvirt.org/go/libvirt is imported only under cgo, so a
# module cache filled by the static builds lacks it (a fresh machine failed
# with "module lookup disabled by GOPROXY=off").
NODE_CMDS=(virt-launcher virt-handler)
build_download() {
  local c pkgs=()
  for c in "${NODE_CMDS[@]}"; do pkgs+=("kubevirt.io/kubevirt/cmd/$c"); done
  CGO_ENABLED=1 go_download "$MOD" "${pkgs[@]}"
}

# virt-launcher and virt-handler with cgo inside the rootfs, and the C
# container-disk binary (static, as KubeVirt builds it: virt-launcher's
# init container copies it into containerDisk pods, whose images have no libc).
build_node() {
  [ -f "$ROOTFS/.wukong-rootfs" ] || die "no rootfs: run '$0 rootfs' first"
  build_download
  mkdir -p "$OUT"
  chroot_mounts "$ROOTFS"
  bind "$GOROOT_DIR" "$ROOTFS$GOROOT_DIR" ro
  bind "$GOMODCACHE_DIR" "$ROOTFS$GOMODCACHE_DIR"
  bind "$GOCACHE_DIR" "$ROOTFS$GOCACHE_DIR"
  bind "$ROOT" "$ROOTFS$ROOT"
  local env=(env -i "PATH=$GOROOT_DIR/bin:/usr/sbin:/usr/bin:/sbin:/bin" HOME=/root GOWORK=off GOFLAGS=-mod=readonly
    GOPROXY=off GOTOOLCHAIN=local "GOMODCACHE=$GOMODCACHE_DIR" "GOCACHE=$GOCACHE_DIR" CGO_ENABLED=1)
  local c
  for c in "${NODE_CMDS[@]}"; do
    timed "go build $c (cgo, $SUITE)" chroot "$ROOTFS" "${env[@]}" \
      go -C "$MOD" build -trimpath -ldflags "$LDFLAGS" -o "$OUT/$c" "kubevirt.io/kubevirt/cmd/$c"
  done
  local src
  src=$(module_dir "$MOD" "kubevirt.io/kubevirt@$KUBEVIRT_VERSION")/cmd/container-disk-v2alpha/main.c
  timed "gcc container-disk" chroot "$ROOTFS" gcc -static -O2 -Wall -o "$OUT/container-disk" "$src"
  report "virt-launcher links $(chroot "$ROOTFS" ldd "$OUT/virt-launcher" | awk '/libvirt|libnbd/ {print $1}' | xargs)"
  cleanup
}

# ------------------------------------------------------------------- images
# passwd_dir DIR: /etc/passwd and /etc/group with root, the non-root user
# and qemu, as KubeVirt's images carry them.
passwd_dir() {
  mkdir -p "$1/etc"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot-user:x:%s:%s:nonroot-user:/home/nonroot-user:/sbin/nologin\nqemu:x:%s:%s:qemu user:/home/qemu:/sbin/nologin\n' \
    "$NONROOT" "$NONROOT" "$QEMU_ID" "$QEMU_ID" >"$1/etc/passwd"
  printf 'root:x:0:\nnonroot-user:x:%s:\nqemu:x:%s:\n' "$NONROOT" "$QEMU_ID" >"$1/etc/group"
  chmod 0644 "$1/etc/passwd" "$1/etc/group"
}

image() { # NAME ARGS...: writes $IMAGES/NAME.tar and reports its size
  local name=$1
  shift
  timed "image $name" "$IMAGETOOL" -ref "$REGISTRY/$name:$TAG" -out "$IMAGES/$name.tar" "$@"
  report "$(printf '%-26s %s (%s)' "  $REGISTRY/$name:$TAG" "$(human "$IMAGES/$name.tar")" "$IMAGES/$name.tar")"
}

# The node images' base: the rootfs without the build-only packages, the
# apt lists, docs and locales.
runtime_rootfs() {
  if [ -f "$RUNTIME/.wukong-rootfs" ] && [ "$RUNTIME/.wukong-rootfs" -nt "$ROOTFS/.wukong-rootfs" ]; then
    return
  fi
  rm -rf "$RUNTIME"
  cp -a "$ROOTFS" "$RUNTIME"
  chroot_mounts "$RUNTIME"
  chroot "$RUNTIME" env DEBIAN_FRONTEND=noninteractive apt-get purge -y --auto-remove "${BUILD_PKGS[@]}" >"$KV/purge.log" 2>&1 ||
    die "purging the build-only packages failed: see $KV/purge.log"
  chroot "$RUNTIME" apt-get clean
  cleanup
  rm -rf "$RUNTIME"/var/lib/apt/lists/* "$RUNTIME"/usr/share/doc "$RUNTIME"/usr/share/man "$RUNTIME"/usr/share/info
  rm -f "$RUNTIME/etc/resolv.conf"
  touch "$RUNTIME/.wukong-rootfs"
  report "runtime rootfs (less ${BUILD_PKGS[*]}, docs): $(human "$RUNTIME")"
}

build_images() {
  local c
  for c in virt-operator virt-api virt-controller virt-exportproxy virt-launcher virt-handler virt-launcher-monitor virt-tail virt-probe \
    virt-freezer virt-chroot libvirt-hook-client container-disk; do
    [ -x "$OUT/$c" ] || die "$OUT/$c is missing: run '$0 control-plane node' first"
  done
  mkdir -p "$IMAGES"
  ensure_imagetool
  rm -rf "$STAGE"
  # Control plane: the binary in /usr/bin, passwd, user 1001, and /tmp
  # (1777, as in the distroless base KubeVirt's images start from: virt-api
  # writes its certificates there and panics "stat /tmp" without it).
  for c in virt-operator virt-api virt-controller virt-exportproxy; do
    local d=$STAGE/$c
    passwd_dir "$d"
    install -d -m 1777 "$d/tmp"
    install -D -m 0755 "$OUT/$c" "$d/usr/bin/$c"
    image "$c" -layer "$d:0:0" -entrypoint "/usr/bin/$c" -user "$NONROOT" \
      -env PATH=/usr/bin:/bin -env "KUBEVIRT_VERSION=$TAG"
  done
  runtime_rootfs
  # virt-launcher: KubeVirt's layout (cmd/virt-launcher/BUILD.bazel): the
  # binaries and node-labeller.sh in /usr/bin, its qemu.conf and
  # virtqemud.conf in /etc/libvirt, the qemu hook, /usr/libexec/qemu-kvm
  # (the name virt-launcher-monitor looks for after qemu-system-*).
  local kvsrc
  kvsrc=$(module_dir "$MOD" "kubevirt.io/kubevirt@$KUBEVIRT_VERSION")
  local l=$STAGE/virt-launcher
  mkdir -p "$l/usr/sbin"
  for c in virt-launcher virt-launcher-monitor virt-freezer virt-probe virt-tail container-disk libvirt-hook-client; do
    install -D -m 0755 "$OUT/$c" "$l/usr/bin/$c"
  done
  install -D -m 0755 "$kvsrc/cmd/virt-launcher/node-labeller/node-labeller.sh" "$l/usr/bin/node-labeller.sh"
  # Here /dev/kvm exists but is kvm_pvm, which this qemu cannot use:
  # `virsh domcapabilities --virttype kvm` fails with "invalid argument: the
  # accel 'kvm' is not supported by '/usr/bin/qemu-system-x86_64' on this
  # host", and node-labeller.sh (set -e) would fail virt-handler's init
  # container. Fall back to qemu (TCG) when libvirt refuses the preferred type.
  # shellcheck disable=SC2016 # the inserted line is shell for node-labeller.sh
  sed -i 's|^virtqemud -d$|&\n\n# wukong (scripts/kubevirt-build.sh): fall back to software emulation when libvirt refuses the preferred type\nif [ "$VIRTTYPE" != qemu ] \&\& ! virsh domcapabilities --machine $MACHINE --arch $ARCH --virttype $VIRTTYPE >/dev/null 2>\&1; then VIRTTYPE=qemu; fi|' \
    "$l/usr/bin/node-labeller.sh"
  grep -q '^# wukong' "$l/usr/bin/node-labeller.sh" || die "node-labeller.sh: the emulation fallback did not apply (no 'virtqemud -d' line)"
  install -D -m 0644 "$kvsrc/cmd/virt-launcher/qemu.conf" "$l/etc/libvirt/qemu.conf"
  install -D -m 0644 "$kvsrc/cmd/virt-launcher/virtqemud.conf" "$l/etc/libvirt/virtqemud.conf"
  install -D -m 0755 "$kvsrc/cmd/virt-launcher/qemu" "$l/etc/libvirt/hooks/qemu"
  # Owned by qemu (107) as in KubeVirt's image (qemu-hook-tar, owner
  # 107.107): virt-launcher, running as 107, replaces the script with
  # libvirt-hook-client at start (replaceQemuHookWithCustomClient; else
  # "remove /etc/libvirt/hooks/qemu: permission denied").
  chown -R "$QEMU_ID:$QEMU_ID" "$l/etc/libvirt/hooks"
  # /var/run -> ../run, relative, as KubeVirt's image (var-run-symlink-tar):
  # virt-handler reaches the launcher's sockets through
  # /proc/<pid>/root/var/run, where Debian's absolute /run would resolve in
  # virt-handler's own root.
  mkdir -p "$l/var"
  ln -sfn ../run "$l/var/run"
  install -D -m 0644 "$kvsrc/cmd/virt-launcher/nsswitch.conf" "$l/etc/nsswitch.conf"
  mkdir -p "$l/usr/libexec" "$l/usr/lib64/qemu-kvm"
  ln -sf /usr/bin/qemu-system-x86_64 "$l/usr/libexec/qemu-kvm"
  # Debian ships only the monolithic libvirtd, no modular virtqemud, which
  # virt-launcher starts as `/usr/sbin/virtqemud -f /var/run/libvirt/virtqemud.conf`
  # and reaches at <runtime dir>/libvirt/virtqemud-sock (node-labeller.sh:
  # `virtqemud -d`). libvirtd takes the same options and loads the same QEMU
  # driver; its socket is libvirt-sock in the same directory.
  [ -x "$RUNTIME/usr/sbin/virtqemud" ] || {
    cat >"$l/usr/sbin/virtqemud" <<'WRAP'
#!/bin/sh
# virtqemud for Debian's libvirt (scripts/kubevirt-build.sh): the monolithic
# libvirtd, with virtqemud's socket name linked to libvirtd's.
dir=/var/run/libvirt
if [ "$(id -u)" != 0 ] && [ -n "${XDG_RUNTIME_DIR:-}" ]; then dir=$XDG_RUNTIME_DIR/libvirt; fi
mkdir -p "$dir" && ln -sfn libvirt-sock "$dir/virtqemud-sock"
exec /usr/sbin/libvirtd "$@"
WRAP
    chmod 0755 "$l/usr/sbin/virtqemud"
  }
  setcap cap_net_bind_service=+ep "$l/usr/bin/virt-launcher-monitor" 2>/dev/null ||
    log "setcap missing (libcap2-bin): virt-launcher-monitor has no cap_net_bind_service"
  # Owners as staged: root, but the hooks directory (qemu).
  image virt-launcher -layer "$RUNTIME" -exclude .wukong-rootfs -layer "$l" \
    -entrypoint /usr/bin/virt-launcher -user "$QEMU_ID"
  local h=$STAGE/virt-handler
  install -D -m 0755 "$OUT/virt-handler" "$h/usr/bin/virt-handler"
  install -D -m 0755 "$OUT/virt-chroot" "$h/usr/bin/virt-chroot"
  install -D -m 0644 "$kvsrc/cmd/virt-handler/nsswitch.conf" "$h/etc/nsswitch.conf"
  image virt-handler -layer "$RUNTIME" -exclude .wukong-rootfs -layer "$h:0:0" -entrypoint /usr/bin/virt-handler
}

# ------------------------------------------------------------ containerDisk
# The real guest (make guest-image) as a containerDisk: the qcow2 under
# /disk/ owned by 107:107 (KubeVirt's containerDisk layout). The disk boots
# from KubeVirt's default firmware (BIOS, SeaBIOS) through the GRUB in its
# MBR gap (scripts/guest-image.sh): no kernelBoot.
build_containerdisk() {
  local g=$ROOT/bin/guest
  [ -f "$g/disk.qcow2" ] || die "no $g/disk.qcow2: run 'make guest-image' first"
  mkdir -p "$IMAGES"
  ensure_imagetool
  local d=$STAGE/containerdisk
  rm -rf "$d"
  mkdir -p "$d/disk"
  cp --reflink=auto "$g/disk.qcow2" "$d/disk/disk.qcow2"
  chmod 0644 "$d/disk/disk.qcow2"
  timed "image guest containerDisk" "$IMAGETOOL" -ref "$GUEST_REF" -out "$IMAGES/wukong-guest.tar" -layer "$d:$QEMU_ID:$QEMU_ID"
  report "$(printf '%-26s %s (%s)' "  $GUEST_REF" "$(human "$IMAGES/wukong-guest.tar")" "$IMAGES/wukong-guest.tar")"
  rm -rf "$d"
}

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot, mounts)"
mkdir -p "$KV"
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(all)
report "== $(date -u +%FT%TZ) kubevirt-build ${steps[*]} (KubeVirt $VERSION, images $REGISTRY/*:$TAG)"
for s in "${steps[@]}"; do
  case $s in
  all) build_control_plane && build_manifests && make_rootfs && build_node && build_images && build_containerdisk ;;
  control-plane) build_control_plane ;;
  manifests) build_manifests ;;
  rootfs) make_rootfs ;;
  download) build_download ;;
  node) build_node ;;
  images) build_images ;;
  containerdisk) build_containerdisk ;;
  *) die "unknown step '$s': want all, control-plane, manifests, rootfs, download, node, images or containerdisk" ;;
  esac
done
