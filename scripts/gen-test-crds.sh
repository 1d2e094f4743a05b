#!/usr/bin/env bash
# Generates test/crds/: the CRDs of KubeVirt (VirtualMachine,
# VirtualMachineInstance, and KubeVirt, the CR whose
# spec.configuration.network.binding registers network binding plugins), CDI (DataVolume), Multus
# (NetworkAttachmentDefinition) and NMState (NodeNetworkConfigurationPolicy)
# from the Go API modules pinned in test/go.mod, with controller-gen.
#
# controller-gen emits every kind in those packages; only the six above are
# kept (e.g. the non-CRD datavolumetemplatespecs is dropped). KubeVirt's Go
# types carry no status-subresource marker, but the CRDs KubeVirt installs have
# one for VirtualMachine, VirtualMachineInstance and KubeVirt, so it is added here: a
# spec write must never clobber the status the cluster reports.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
controller_gen=${CONTROLLER_GEN:?set CONTROLLER_GEN (make generate does)}
out=$root/test/crds
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cd "$root/test"
"$controller_gen" crd:allowDangerousTypes=true \
  paths=kubevirt.io/api/core/v1 \
  paths=kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1 \
  paths=github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1 \
  paths=github.com/nmstate/kubernetes-nmstate/api/v1 \
  output:crd:dir="$tmp"
# NodeNetworkConfigurationEnactment is served only as v1beta1 (one per node
# and policy, with the policy generation it applied); generated on its own so
# the v1beta1 policy type does not become a second policy version.
mkdir -p "$tmp/v1beta1"
"$controller_gen" crd:allowDangerousTypes=true \
  paths=github.com/nmstate/kubernetes-nmstate/api/v1beta1 \
  output:crd:dir="$tmp/v1beta1"
cp "$tmp/v1beta1/nmstate.io_nodenetworkconfigurationenactments.yaml" "$tmp/"

keep=(
  kubevirt.io_virtualmachines.yaml
  kubevirt.io_virtualmachineinstances.yaml
  kubevirt.io_kubevirts.yaml
  cdi.kubevirt.io_datavolumes.yaml
  k8s.cni.cncf.io_networkattachmentdefinitions.yaml
  nmstate.io_nodenetworkconfigurationpolicies.yaml
  nmstate.io_nodenetworkconfigurationenactments.yaml
)
rm -f "$out"/*.yaml
for f in "${keep[@]}"; do
  case "$f" in
    kubevirt.io_virtualmachine*.yaml | kubevirt.io_kubevirts.yaml)
      # add `subresources: {status: {}}` after the storage version's `storage: true`
      awk '{print} /^    storage: true$/ && !done {print "    subresources:"; print "      status: {}"; done=1}' \
        "$tmp/$f" >"$out/$f"
      ;;
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
