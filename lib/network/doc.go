// Package network turns a VM's secondary NICs into Multus
// NetworkAttachmentDefinitions (NADs), turns a node bridge declared by
// whoever may change nodes into one kubernetes-nmstate
// NodeNetworkConfigurationPolicy (NNCP), and reads the NICs' addresses back
// from a KubeVirt VirtualMachineInstance.
//
// The package has no names of its own: every call takes the caller's
// apply.Identity (field manager, managed-by value, label domain, policy name
// prefix). A VM controller calls, on every reconcile:
//
//	id := apply.Identity{FieldManager: "my-controller", Domain: "vm.example.com"}
//	obs, err := network.Reconcile(ctx, c, id, owner, attachments, network.WithGlobalNamespaces("shared-nets"))
//
// and a controller of node bridges (for example one reconciling a
// cluster-scoped bridge declaration):
//
//	obs, err := network.ReconcilePolicy(ctx, c, id, declaration, bridge)        // while declared
//	done, obs, err := network.RemovePolicy(ctx, c, id, declaration, bridge)     // on deletion, until done
//
// Reconcile applies one NAD per NIC that does not name one (name
// `<owner>-<nic>`, in the owner's namespace, controller-owned by the owner,
// written with Server-Side Apply through lib/apply so a second call writes
// nothing). It never takes over a NAD of that name it did not create (the NIC
// gets an *apply.ConflictError, reason NameConflict, or WaitingForPredecessor
// when the NAD belongs to a deleted owner of the same name). A NIC naming a
// NAD (Attachment.NADName) uses it as is: the lib never modifies or deletes
// it, reports *NADNotFoundError while it is missing, and refuses one in
// another namespace unless WithGlobalNamespaces allows it
// (*NamespaceNotAllowedError, before any read, so the answer does not reveal
// whether it exists). Reconcile never configures nodes: a bridge NIC only
// names its bridge.
//
// ReconcilePolicy applies the NNCP `<id.NamePrefix>br-<bridge>` for a Bridge (uplink
// or bonded uplinks, VLAN trunk of the allowed ranges, node selector),
// controlled by a cluster-scoped owner, never over an NNCP it does not
// control. RemovePolicy first re-applies it with state: absent (deleting an
// NNCP leaves the nodes as they are, kubernetes-nmstate's documented
// behaviour), waits until every NodeNetworkConfigurationEnactment of the
// policy reports that generation Available, then deletes it. Their
// failures are *apply.Failure too (Subject the bridge): NameConflict or
// WaitingForPredecessor for an NNCP of that name owner does not control,
// NMStateNotInstalled (wrapping ErrNMStateNotInstalled), InvalidBridge,
// ApplyFailed for an API error.
//
// KubeVirt cannot bind a macvlan or ipvlan pod interface, so a TypeMacvlan
// NIC gets a NAD of CNI type macvtap (kubevirt/macvtap-cni) requesting the
// device-plugin resource macvtap.network.kubevirt.io/<PhysicalInterface>, to
// be bound with KubeVirt's macvtap binding plugin; a user-named NAD whose
// plugin is macvlan or ipvlan fails its NIC with *UnsupportedCNIError.
// NICObservation.CNIType says which plugin a NIC's NAD uses.
//
// Errors of one NIC do not stop the others; Reconcile returns them joined, so
// callers branch with errors.Is / errors.As (ErrMultusNotInstalled,
// *NADNotFoundError, *NamespaceNotAllowedError, *apply.ConflictError,
// *InvalidAttachmentError) and find the same facts per NIC in the Observation.
// Each NIC's error is an *apply.Failure: its Reason, whether someone must act
// (Stalled) and the event type, with Subject the NIC and Field the
// Attachment field at fault, so a caller classifies every failure in one
// place (apply.AsFailure).
//
// Watching: NADs carry id.OwnerLabels(owner) and id.Key(KeyNIC); policies
// carry id's managed-by label and id.Key(KeyBridge) (select them with
// PolicySelector(id)) and an owner reference to their declaration.
//
// Owners: BuildNAD and BuildPolicy need the owner's TypeMeta (apiVersion/kind)
// set to write the owner reference; Reconcile and ReconcilePolicy fill it from
// the client's scheme when empty.
package network
