#!/usr/bin/env bash
# Generates test/crds/ (see test/crds/README.md for where each CRD comes from):
#   - KubeVirt's (VirtualMachine, VirtualMachineInstance, KubeVirt, the CR
#     whose spec.configuration.network.binding registers network binding
#     plugins, VirtualMachineInstanceMigration, and VirtualMachineInstancePreset,
#     which KubeVirt's VMI mutator reads) as virt-operator generates them, by `kubevirt-admission crds`
#     (kubevirt.io/kubevirt pkg/virt-operator/resource/generate/components);
#     and KubeVirt's snapshot.kubevirt.io kinds (VirtualMachineSnapshot,
#     VirtualMachineSnapshotContent, VirtualMachineRestore), likewise, and
#     the instancetype.kubevirt.io kinds ((Cluster)Instancetype,
#     (Cluster)Preference);
#   - the CSI snapshot kinds (snapshot.storage.k8s.io VolumeSnapshot,
#     VolumeSnapshotContent, VolumeSnapshotClass) as external-snapshotter
#     ships them (client/v8 config/crd, the module served by the Go proxy at
#     scripts/versions.env's CSI_SNAPSHOTTER_VERSION), which KubeVirt's
#     snapshot controller and the CSI snapshotter use;
#   - CDI's (DataVolume, StorageProfile, CDIConfig, DataSource,
#     DataImportCron) as
#     cdi-operator installs them, by `cdi-admission crds`
#     (kubevirt.io/containerized-data-importer pkg/operator/resources/cluster);
#   - Multus (NetworkAttachmentDefinition) and NMState
#     (NodeNetworkConfigurationPolicy, NodeNetworkConfigurationEnactment,
#     NodeNetworkState) with
#     controller-gen from the Go API modules pinned in test/go.mod: neither
#     project generates its CRDs from code that can be called here.
# The two admission binaries are built by scripts/envtest-assets.sh.
#
# controller-gen emits every kind in those packages; only the four above are
# kept.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
controller_gen=${CONTROLLER_GEN:?set CONTROLLER_GEN (make generate does)}
out=$root/test/crds
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

assets=$(KUBEBUILDER_ASSETS='' "$root/scripts/envtest-assets.sh")
for bin in kubevirt-admission cdi-admission; do
  if [ ! -x "$assets/$bin" ]; then
    echo "gen-test-crds: $assets/$bin is missing: $(cat "$assets/$bin.unavailable" 2>/dev/null || echo 'not built')" >&2
    exit 1
  fi
done
mkdir -p "$tmp/own"
"$assets/kubevirt-admission" crds --out-dir "$tmp/own"
"$assets/cdi-admission" crds --out-dir "$tmp/own"

cd "$root/test"
"$controller_gen" crd:allowDangerousTypes=true \
  paths=github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1 \
  paths=github.com/nmstate/kubernetes-nmstate/api/v1 \
  output:crd:dir="$tmp"
# NodeNetworkConfigurationEnactment is served only as v1beta1 (one per node
# and policy, with the policy generation it applied), and so is
# NodeNetworkState (one per node); generated on their own so
# the v1beta1 policy type does not become a second policy version.
mkdir -p "$tmp/v1beta1"
"$controller_gen" crd:allowDangerousTypes=true \
  paths=github.com/nmstate/kubernetes-nmstate/api/v1beta1 \
  output:crd:dir="$tmp/v1beta1"
cp "$tmp/v1beta1/nmstate.io_nodenetworkconfigurationenactments.yaml" \
  "$tmp/v1beta1/nmstate.io_nodenetworkstates.yaml" "$tmp/"

keep=(
  k8s.cni.cncf.io_networkattachmentdefinitions.yaml
  nmstate.io_nodenetworkconfigurationpolicies.yaml
  nmstate.io_nodenetworkconfigurationenactments.yaml
  nmstate.io_nodenetworkstates.yaml
)
rm -f "$out"/*.yaml
install -m 0644 "$tmp"/own/*.yaml "$out/"
# shellcheck source=scripts/versions.sh
. "$root/scripts/versions.sh"
snapshotter_dir=$(cd "$root/test" && go mod download -json "github.com/kubernetes-csi/external-snapshotter/client/v8@$CSI_SNAPSHOTTER_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
for kind in volumesnapshots volumesnapshotcontents volumesnapshotclasses; do
  install -m 0644 "$snapshotter_dir/config/crd/snapshot.storage.k8s.io_$kind.yaml" "$out/"
done
for f in "${keep[@]}"; do
  case "$f" in
    k8s.cni.cncf.io_networkattachmentdefinitions.yaml)
      # Multus serves the kind as network-attachment-definitions (the Go
      # types would give networkattachmentdefinitions); RBAC names the real one.
      sed -e 's/networkattachmentdefinitions\.k8s\.cni\.cncf\.io/network-attachment-definitions.k8s.cni.cncf.io/' \
        -e 's/plural: networkattachmentdefinitions/plural: network-attachment-definitions/' \
        "$tmp/$f" >"$out/$f"
      ;;
    *) cp "$tmp/$f" "$out/$f" ;;
  esac
done
