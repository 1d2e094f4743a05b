#!/usr/bin/env bash
# Builds, on THIS machine, CDI (CDI_VERSION of scripts/versions.env, from
# hack/cdi-components) for the local cluster's real disk imports, as
# docker-archive tars that `ctr -n k8s.io images import` reads, with its
# manifests: no Docker, no registry. The shape follows
# scripts/kubevirt-build.sh. The other add-ons `make cdi-images` builds
# have their own scripts: local-path-build.sh, cni-plugins-build.sh,
# multus-build.sh, image-server-build.sh.
#
#   bin/cdi/bin/          the binaries (static)
#   bin/cdi/images/       one .tar per image (names below)
#   bin/cdi/manifests/    cdi-operator.yaml, cdi-cr.yaml
#   bin/cdi/rootfs/       Debian trixie minbase + qemu-utils + nbdkit: the
#                         base layer of cdi-importer, cdi-cloner and
#                         cdi-uploadserver
#   bin/cdi/build.txt     every run's times and sizes (appended)
#
# Steps (each runnable alone; `all` by default):
#   cdi           CDI's commands: cdi-operator, cdi-controller,
#                 cdi-apiserver, cdi-uploadproxy, cdi-importer (+ the
#                 helpers CDI's importer image carries), cdi-cloner,
#                 cdi-uploadserver, manifest-generator
#   cdi-manifests cdi-operator.yaml and cdi-cr.yaml from CDI's own
#                 manifest-generator and release templates
#   rootfs        the Debian rootfs for the data-moving images
#   images        every image tar
#   check         (not in all) every image imported into a throwaway
#                 containerd and its binaries run with `ctr run`
#
# Images (registry $CDI_REGISTRY, default localhost/cdi, tag CDI_VERSION):
#   cdi-operator, cdi-controller, cdi-apiserver, cdi-uploadproxy
#       static binary in /usr/bin, /etc/passwd with user 1001 (CDI's images)
#   cdi-importer, cdi-cloner, cdi-uploadserver
#       the Debian rootfs + the binaries (CDI's importer/uploadserver bases
#       carry qemu-img and nbdkit, cloner_startup.sh needs bash, du, blockdev)
#
# Needs root (debootstrap, chroot, mounts). Idempotent: a finished rootfs is
# kept (delete bin/cdi/rootfs to remake it); Go's build cache makes rebuilds
# cheap. See docs/notes/real-cdi-multus.md for times, sizes and the install steps.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
REGISTRY=${CDI_REGISTRY:-localhost/cdi}
NAMESPACE=${CDI_NAMESPACE:-cdi}
SUITE=${CDI_ROOTFS_SUITE:-trixie}
NICE=${CDI_NICE:-15}
MOD=$ROOT/hack/cdi-components
# CDI's images run as 1001 (cmd/*/BUILD.bazel: user = "1001").
NONROOT=1001

# What CDI's data-moving images run (pkg/image: qemu-img, nbdkit with the
# curl plugin and the readahead/retry/xz/gzip/tar filters;
# cmd/cdi-cloner/cloner_startup.sh: bash, blockdev, du, cut; the importer's
# file source: /usr/bin/ln).
ROOTFS_PKGS=(qemu-utils nbdkit ca-certificates)

TIMED_WIDTH=34
# shellcheck source=scripts/image-build-lib.sh
source "$ROOT/scripts/image-build-lib.sh"
image_build_layout cdi
TAG=${CDI_TAG:-$CDI_VERSION}

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
  src=$(module_dir "$MOD" "kubevirt.io/containerized-data-importer@$CDI_VERSION")
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

# ------------------------------------------------------------------- images

# passwd_dir DIR: /etc/passwd and /etc/group with root and CDI's user 1001.
passwd_dir() {
  mkdir -p "$1/etc"
  printf 'root:x:0:0:root:/root:/sbin/nologin\ncdi:x:%s:%s:cdi:/home/cdi:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' \
    "$NONROOT" "$NONROOT" >"$1/etc/passwd"
  printf 'root:x:0:\ncdi:x:%s:\nnonroot:x:65532:\n' "$NONROOT" >"$1/etc/group"
  chmod 0644 "$1/etc/passwd" "$1/etc/group"
}

build_images() {
  local c
  for c in "${CDI_CMDS[@]}"; do
    [ "${c##*/}" = manifest-generator ] || [ -x "$OUT/${c##*/}" ] || die "$OUT/${c##*/} is missing: run '$0 cdi' first"
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
      install -D -m 0755 "$(ensure_busybox)" "$d/bin/busybox"
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
  src=$(module_dir "$MOD" "kubevirt.io/containerized-data-importer@$CDI_VERSION")
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
  rm -rf "$STAGE"
}

# -------------------------------------------------------------------- check
# Every image imported into a throwaway containerd (scripts/image-build-lib.sh)
# and its binaries run with `ctr run`.
check_images() {
  local c r=$REGISTRY
  check_start "$IMAGES"/cdi-*.tar
  for c in cdi-operator cdi-controller cdi-apiserver cdi-uploadproxy; do
    crun_usage "$c" "$r/$c:$TAG" "/usr/bin/$c" --help
  done
  crun cat-controller "$r/cdi-controller:$TAG" /bin/cat /etc/passwd
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
  all) build_cdi && build_cdi_manifests && make_rootfs && build_images ;;
  cdi) build_cdi ;;
  cdi-manifests) build_cdi_manifests ;;
  rootfs) make_rootfs ;;
  images) build_images ;;
  check) check_images ;;
  *) die "unknown step '$s': want all, cdi, cdi-manifests, rootfs, images or check" ;;
  esac
done
