#!/usr/bin/env bash
# Builds, on THIS machine, the reference CNI plugins (CNI_PLUGINS_VERSION of
# scripts/versions.env) a Wukong NIC uses (bridge, vlan, macvlan,
# host-local, static, tuning...), as the plugins' build_linux.sh builds
# them (all of plugins/{main,ipam,meta} but windows), static, with `go
# install <pkg>@<version>` from their released module:
#
#   bin/cni-plugins/bin/    the plugins; Multus's image carries them
#                           (scripts/multus-build.sh) and the local
#                           cluster's nodes start with them in /opt/cni/bin
#   bin/cni-plugins/build.txt  every run's times (appended)
#
# Steps: bin (the default), check (each plugin answers CNI_COMMAND=VERSION).
# Needs no root; idempotent.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NICE=${CNI_PLUGINS_NICE:-15}
# shellcheck source=scripts/image-build-lib.sh
source "$ROOT/scripts/image-build-lib.sh"
image_build_layout cni-plugins

CNI_PLUGINS=(main/bridge main/dummy main/host-device main/ipvlan main/loopback main/macvlan main/ptp main/tap main/vlan
  ipam/dhcp ipam/host-local ipam/static meta/bandwidth meta/firewall meta/portmap meta/sbr meta/tuning meta/vrf)
build_bin() {
  mkdir -p "$OUT"
  local p pkgs=()
  for p in "${CNI_PLUGINS[@]}"; do pkgs+=("github.com/containernetworking/plugins/plugins/$p@$CNI_PLUGINS_VERSION"); done
  timed "go install cni plugins (${#pkgs[@]})" env GOWORK=off GOBIN="$OUT" CGO_ENABLED=0 \
    go install -trimpath -ldflags "-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$CNI_PLUGINS_VERSION" "${pkgs[@]}"
}
build_check() {
  local p
  for p in "${CNI_PLUGINS[@]}"; do
    CNI_COMMAND=VERSION "$OUT/${p#*/}" </dev/null >/dev/null || die "check: ${p#*/} does not answer CNI_COMMAND=VERSION"
  done
  report "check: $(CNI_COMMAND=VERSION "$OUT/bridge" </dev/null); all ${#CNI_PLUGINS[@]} plugins answer VERSION"
}
mkdir -p "$B"
run_steps cni-plugins-build "bin" -- "$@"
