// Package network turns a VM's secondary NICs into Multus
// NetworkAttachmentDefinitions (NADs) and the node bridges they need into
// shared kubernetes-nmstate NodeNetworkConfigurationPolicies (NNCPs), and
// reads the NICs' addresses back from a KubeVirt VirtualMachineInstance.
//
// A controller uses it in three calls:
//
//	obs, err := network.Reconcile(ctx, c, owner, attachments) // every reconcile
//	nics := network.Interfaces(vmi)                           // for status
//	err = network.Release(ctx, c, owner)                      // in the finalizer
//
// Reconcile applies one NAD per NIC that does not name one (name
// `<owner>-<nic>`, in the owner's namespace, controller-owned by the owner,
// written with Server-Side Apply through lib/apply so a second call writes
// nothing). A NIC naming a NAD (Attachment.NADName) uses it as is: the lib
// never modifies or deletes it and reports *NADNotFoundError while it is
// missing. A bridge or ovs NIC with both Bridge and PhysicalInterface set also
// gets a cluster-scoped NNCP `wukong-br-<bridge>` that enslaves the uplink to
// the bridge on the nodes. One policy serves every owner using that bridge:
// its holders are recorded in the AnnotationHolders annotation (updated with
// Get/Update and optimistic concurrency) and the policy is deleted when the
// last holder is released. Policies without the managed-by label are never
// touched (*ForeignPolicyError).
//
// KubeVirt cannot bind a macvlan or ipvlan pod interface, so a TypeMacvlan
// NIC gets a NAD of CNI type macvtap (kubevirt/macvtap-cni) requesting the
// device-plugin resource macvtap.network.kubevirt.io/<PhysicalInterface>, to
// be bound with KubeVirt's macvtap binding plugin; a user-named NAD whose
// plugin is macvlan or ipvlan fails its NIC with *UnsupportedCNIError.
// NICObservation.CNIType says which plugin a NIC's NAD uses.
//
// Errors of one NIC do not stop the others; Reconcile returns them joined, so
// callers branch with errors.Is / errors.As (ErrNMStateNotInstalled,
// *NADNotFoundError, *ForeignPolicyError, *BridgeConflictError,
// *InvalidAttachmentError) and find the same facts per NIC in the Observation.
//
// Watching: NADs carry LabelManagedBy and LabelOwner; policies carry
// LabelManagedBy and LabelBridge (select them with PolicySelector) and map back
// to their owners with Holders.
//
// Owners: BuildNAD needs the owner's TypeMeta (apiVersion/kind) set to write
// the owner reference; Reconcile fills it from the client's scheme when empty.
package network
