#!/usr/bin/env bash
# Builds, on THIS machine, Multus thick (MULTUS_VERSION of
# scripts/versions.env; hack/multus-components: multus-daemon, multus-shim,
# install_multus, passthru) as a docker-archive tar `ctr -n k8s.io images
# import` reads, with its manifest. The image also carries the reference
# CNI plugins scripts/cni-plugins-build.sh builds, which the DaemonSet's
# second init container installs:
#
#   bin/multus/bin/         the static binaries
#   bin/multus/images/multus-thick.tar  localhost/wukong/multus-thick:<version>
#   bin/multus/manifests/multus.yaml    upstream's deployments/multus-daemonset-thick.yml,
#                           local image, CNI bin dir $CNI_BIN_DIR, config dir /etc/cni/net.d
#                           (each local-cluster node's own), plugins installer
#   bin/multus/build.txt    every run's times and sizes (appended)
#
# Steps: bin, images, manifests (all three by default), check (the image's
# commands run in a throwaway containerd; root). Idempotent.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ADDONS=${MULTUS_REGISTRY:-localhost/wukong}
# The directory Multus installs multus-shim and the plugins into: the
# local cluster's containerd bin_dir. The config dir is upstream's
# /etc/cni/net.d, a private bind of each node's own directory there.
CNI_BIN_DIR=${MULTUS_CNI_BIN_DIR:-/opt/cni/bin}
PLUGINS=$ROOT/bin/cni-plugins/bin
NICE=${MULTUS_NICE:-15}
TIMED_WIDTH=34
# shellcheck source=scripts/image-build-lib.sh
source "$ROOT/scripts/image-build-lib.sh"
image_build_layout multus

# From hack/multus-components: `go install <pkg>@<version>` is refused (it
# reads the module's version list, which the proxy does not serve).
# passthru: install_multus -t thick copies it next to multus-shim
# (cmd/install_multus; hack/build-go.sh builds it from cmd/passthru-cni).
build_bin() {
  mkdir -p "$OUT"
  local c mv="-X gopkg.in/k8snetworkplumbingwg/multus-cni.v4/pkg/multus.version=$MULTUS_VERSION -X gopkg.in/k8snetworkplumbingwg/multus-cni.v4/pkg/multus.gitTreeState=clean -X gopkg.in/k8snetworkplumbingwg/multus-cni.v4/pkg/multus.releaseStatus=,released"
  for c in multus-daemon multus-shim install_multus passthru-cni; do
    timed "go build $c" env -C "$ROOT/hack/multus-components" GOWORK=off CGO_ENABLED=0 \
      go build -trimpath -ldflags "-s -w $mv" -o "$OUT/${c%-cni}" "gopkg.in/k8snetworkplumbingwg/multus-cni.v4/cmd/$c"
  done
}

# images/Dockerfile.thick: /usr/src/multus-cni/bin/, plus the reference
# plugins in /usr/src/cni-plugins/bin/ for the DaemonSet's second init
# container to install, and busybox for that copy.
build_images() {
  local c m=$STAGE/multus
  for c in multus-daemon multus-shim install_multus passthru; do
    [ -x "$OUT/$c" ] || die "$OUT/$c is missing: run '$0 bin' first"
  done
  [ -x "$PLUGINS/bridge" ] || die "no CNI plugins in $PLUGINS: run scripts/cni-plugins-build.sh first"
  mkdir -p "$IMAGES"
  ensure_imagetool
  rm -rf "$STAGE"
  for c in multus-daemon multus-shim install_multus passthru; do install -D -m 0755 "$OUT/$c" "$m/usr/src/multus-cni/bin/$c"; done
  mkdir -p "$m/usr/src/cni-plugins/bin"
  install -m 0755 "$PLUGINS"/* "$m/usr/src/cni-plugins/bin/"
  busybox_dir "$m"
  # multus-daemon checks it runs as root with os/user, which reads
  # /etc/passwd (CGO off); without one it panics on a nil user
  # (cmd/multus-daemon/main.go startMultusDaemon).
  passwd_nonroot "$m"
  # containerd names pod network namespaces /var/run/netns/cni-*, and the
  # daemon opens them by that path (its DaemonSet mounts the host's
  # /run/netns): /var/run is the usual link to /run, as in Multus's own
  # (distribution-based) image.
  mkdir -p "$m/var" "$m/run"
  ln -sfn ../run "$m/var/run"
  image "$ADDONS/multus-thick:$MULTUS_VERSION" multus-thick -layer "$m:0:0" \
    -entrypoint /usr/src/multus-cni/bin/multus-daemon -env PATH=/usr/src/multus-cni/bin:/bin
  rm -rf "$STAGE"
}

# deployments/multus-daemonset-thick.yml: local image, plugins run in the
# host (chrootDir) from $CNI_BIN_DIR, and a second init container
# installing the reference plugins there.
build_manifests() {
  mkdir -p "$MANIFESTS"
  local mu f=$MANIFESTS/multus.yaml
  mu=$(module_dir "$ROOT/hack/multus-components" "gopkg.in/k8snetworkplumbingwg/multus-cni.v4@$MULTUS_VERSION")
  {
    echo "# Multus thick $MULTUS_VERSION (deployments/multus-daemonset-thick.yml), adapted by scripts/multus-build.sh:"
    echo "# CNI config dir /etc/cni/net.d, CNI bin dir $CNI_BIN_DIR (containerd's bin_dir must be this)"
    cat "$mu/deployments/multus-daemonset-thick.yml"
  } >"$f.tmp"
  sub "$f.tmp" 'image: ghcr.io/k8snetworkplumbingwg/multus-cni:snapshot-thick' \
    "$(printf 'image: %s\nimagePullPolicy: IfNotPresent' "$ADDONS/multus-thick:$MULTUS_VERSION")"
  sub "$f.tmp" '"chrootDir": "/hostroot",' "$(printf '"chrootDir": "/hostroot",\n"binDir": "%s",' "$CNI_BIN_DIR")"
  # The daemon's socket one level below /run/multus: on the local cluster
  # each node's /run/multus is a private bind mount (nodes.sh), which
  # multus-daemon's FilesystemPreRequirements cannot RemoveAll (EBUSY on the
  # mount point); the shim finds the socket through daemonSocketDir, which
  # the daemon copies into 00-multus.conf (pkg/server/config ParseMultusConfig).
  sub "$f.tmp" '"socketDir": "/host/run/multus/"' "$(printf '"socketDir": "/host/run/multus/daemon/",\n"daemonSocketDir": "/run/multus/daemon/"')"
  sub "$f.tmp" 'mountPath: /opt/cni/bin' "mountPath: $CNI_BIN_DIR"
  sub "$f.tmp" 'path: /opt/cni/bin' "path: $CNI_BIN_DIR"
  sub "$f.tmp" 'terminationGracePeriodSeconds: 10' "$(cat <<YAML
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
YAML
)"
  grep -q 'path: /etc/cni/net.d' "$f.tmp" || die "$f: upstream's CNI config dir /etc/cni/net.d is gone"
  grep -q 'image: ghcr.io' "$f.tmp" && die "$f: an upstream image is left"
  mv "$f.tmp" "$f"
  report "manifests: multus.yaml $(wc -c <"$f") B"
}

build_check() {
  local a=$ADDONS
  check_start "$IMAGES/multus-thick.tar"
  crun_usage multus-daemon "$a/multus-thick:$MULTUS_VERSION" /usr/src/multus-cni/bin/multus-daemon --help
  crun_usage install_multus "$a/multus-thick:$MULTUS_VERSION" /usr/src/multus-cni/bin/install_multus --help
  crun multus-shim "$a/multus-thick:$MULTUS_VERSION" /usr/src/multus-cni/bin/multus-shim -version
  crun cni-bridge "$a/multus-thick:$MULTUS_VERSION" /usr/src/cni-plugins/bin/bridge
  crun cni-version "$a/multus-thick:$MULTUS_VERSION" sh -c 'CNI_COMMAND=VERSION /usr/src/cni-plugins/bin/vlan </dev/null; echo; ls /usr/src/cni-plugins/bin | xargs'
  report "check: every image ran"
  check_cleanup
}

mkdir -p "$B"
run_steps multus-build "bin images manifests" -- "$@"
