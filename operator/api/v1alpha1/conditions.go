package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/novasphere/wukong/lib/conditions"
)

// Condition types of a Wukong. Ready, Reconciling and Stalled follow kstatus,
// so kubectl wait, Helm --wait, Argo CD and Flux read a Wukong's health
// without custom code: Reconciling and Stalled are present only while true.
// They are lib/conditions' own (declared there once, as Flux's API types
// reuse fluxcd/pkg apis/meta's ReadyCondition).
const (
	// ReadyCondition: the VM runs and every network and volume is in place
	// (or, for a halted VM, everything is in place to start it).
	ReadyCondition = conditions.ReadyCondition
	// NetworksConfiguredCondition: every NIC's NetworkAttachmentDefinition
	// exists and every node bridge policy is Available.
	NetworksConfiguredCondition = "NetworksConfigured"
	// VolumesBoundCondition: every disk's claim is bound (True), or waiting
	// for the VM as first consumer (False, reason WaitForFirstConsumer).
	VolumesBoundCondition = "VolumesBound"
	// ReconcilingCondition: the operator is making progress toward the spec.
	ReconcilingCondition = conditions.ReconcilingCondition
	// StalledCondition: progress needs a change from the user or the cluster
	// admin; the reason and message say which field or object.
	StalledCondition = conditions.StalledCondition
	// RestartRequiredCondition: a spec change (cpu, memory, NICs) takes effect
	// only after the guest restarts; Wukong does not restart it behind the
	// user's back.
	RestartRequiredCondition = "RestartRequired"
)

// Condition reasons.
const (
	ReasonSucceeded            = "Succeeded"
	ReasonRunning              = "Running"
	ReasonStopped              = "Stopped"
	ReasonStarting             = "Starting"
	ReasonNADCreated           = "NetworkAttachmentDefinitionsReady"
	ReasonNADNotFound          = "NetworkAttachmentDefinitionNotFound"
	ReasonBridgePending        = "NodeBridgePending"
	ReasonBridgeDegraded       = "NodeBridgeDegraded"
	ReasonNMStateMissing       = "NMStateNotInstalled"
	ReasonInvalidNetwork       = "InvalidNetwork"
	ReasonVolumesBound         = "Bound"
	ReasonVolumesPending       = "Pending"
	ReasonWaitForFirstConsumer = "WaitForFirstConsumer"
	ReasonImporting            = "Importing"
	ReasonImportFailed         = "ImportFailed"
	// ReasonDiskTooSmall: the image to import is bigger than the disk
	// (CDI: "A larger PVC is required"); grow spec.disks[i].size.
	ReasonDiskTooSmall         = "DiskTooSmall"
	ReasonStorageClassNotFound = "StorageClassNotFound"
	// ReasonCloneSourceNotFound: spec.disks[i].cloneFrom names a Wukong or
	// a WukongSnapshot this namespace does not have, or one without that
	// disk (the message is the same whatever other namespaces hold).
	ReasonCloneSourceNotFound = "CloneSourceNotFound"
	// ReasonStorageProfileIncomplete: CDI cannot make the disk's claim
	// because the StorageClass's CDI StorageProfile gives no access modes
	// (CDI: ErrClaimNotValid); an administrator completes the profile's
	// spec.claimPropertySets, or the user picks another
	// spec.disks[i].storageClassName.
	ReasonStorageProfileIncomplete = "StorageProfileIncomplete"
	ReasonShrinkRefused            = "ShrinkRefused"
	ReasonExpansionNotAllowed      = "ExpansionNotAllowed"
	ReasonCDIMissing               = "CDINotInstalled"
	ReasonKubeVirtMissing          = "KubeVirtNotInstalled"
	ReasonSecretNotFound           = "SecretNotFound"
	// ReasonImageAccessNotFound: the ConfigMap or Secret a disk's
	// imageAccess (or spec.osImageAccess) names is not in the namespace,
	// or the Secret lacks accessKeyId or secretKey; the disk's DataVolume
	// waits for it (see ImageAccess).
	ReasonImageAccessNotFound    = "ImageAccessNotFound"
	ReasonInvalidSpec            = "InvalidSpec"
	ReasonUnschedulable          = "Unschedulable"
	ReasonWaitingForDependencies = "WaitingForDependencies"
	ReasonRestartRequired        = "RestartRequired"
	ReasonTransientError         = "TransientError"
	// ReasonNameConflict: an object Wukong would write (PVC, DataVolume,
	// NetworkAttachmentDefinition, cloud-init Secret, VirtualMachine, or a
	// NodeBridge's policy) exists and is not controlled by it; it is left
	// untouched.
	ReasonNameConflict = "NameConflict"
	// ReasonWaitingForPredecessor: a child with this name still belongs to a
	// deleted object of the same name and is being garbage-collected.
	ReasonWaitingForPredecessor = "WaitingForPredecessor"
	// ReasonBridgeNotAllowed: the NIC needs node-level reach (a node bridge,
	// a macvtap lower device, an SR-IOV resource) that is not declared (no
	// NodeBridge), not declared for this namespace, or does not allow the
	// NIC's VLAN or uplink.
	ReasonBridgeNotAllowed = "NodeBridgeNotAllowed"
	// ReasonNamespaceNotAllowed: a reference into another namespace that the
	// administrator has not allowed.
	ReasonNamespaceNotAllowed = "NamespaceNotAllowed"
	// ReasonDeclared: a NodeBridge of type macvtap or sriov is Ready at once:
	// it grants what exists on the nodes and configures nothing.
	ReasonDeclared = "Declared"
	// ReasonInUse: a NodeBridge being deleted is still used by Wukongs.
	ReasonInUse = "InUse"
	// ReasonRemovingFromNodes: a NodeBridge being deleted waits for NMState to
	// remove the bridge from the nodes.
	ReasonRemovingFromNodes = "RemovingFromNodes"
	// ReasonUnsupportedCNI: a NIC's NetworkAttachmentDefinition (nadName)
	// uses a CNI plugin KubeVirt cannot connect a VM to (macvlan, ipvlan).
	ReasonUnsupportedCNI = "UnsupportedCNI"
	// ReasonBindingNotRegistered: a NIC needs a KubeVirt network binding
	// plugin (macvtap for type macvlan) that the KubeVirt CR does not
	// register.
	ReasonBindingNotRegistered = "NetworkBindingNotRegistered"
	// ReasonImageSourceNotAllowed: a disk's image, or osImage, names a host
	// the administrator's list of image sources does not allow (by default:
	// link-local, loopback, private and cluster-internal hosts); see the
	// manager's --image-sources flag.
	ReasonImageSourceNotAllowed = "ImageSourceNotAllowed"
	// ReasonClaimNotFound: the claim a disk's claimName names does not
	// exist in the Wukong's namespace, or is being deleted.
	ReasonClaimNotFound = "ClaimNotFound"
	// ReasonClaimInUse: the claim a disk's claimName names is controlled by
	// another object (a DataVolume, another Wukong): it is never taken.
	ReasonClaimInUse = "ClaimInUse"
	// ReasonClaimTooSmall: the claim a disk's claimName names requests less
	// than the disk's size; Wukong never resizes it.
	ReasonClaimTooSmall = "ClaimTooSmall"
	// ReasonDiskRetained (a Normal Event, not a condition): a deleted
	// Wukong's disk with deletionPolicy Retain kept its claim.
	ReasonDiskRetained = "DiskRetained"
	// ReasonDiskNotRetained (a Warning Event, not a condition): a deleted
	// Wukong's disk with deletionPolicy Retain could not keep its claim (it
	// was being deleted already, e.g. by a foreground deletion).
	ReasonDiskNotRetained = "DiskNotRetained"
	// ReasonSSHKeyLinesDropped (a Warning Event, not a condition): lines of
	// the sshKeySecret that are not SSH public keys were not copied into
	// the guest.
	ReasonSSHKeyLinesDropped = "SSHKeyLinesDropped"
	// ReasonQuotaExceeded: a ResourceQuota of the namespace has no room for
	// the VM's virt-launcher pod (Ready; spec.memory or spec.cpu) or for a
	// disk's claim (VolumesBound; spec.disks[i].size).
	ReasonQuotaExceeded = "QuotaExceeded"
	// ReasonLimitRangeExceeded: a LimitRange of the namespace refuses the
	// VM's virt-launcher pod (its requests are the guest's plus KubeVirt's
	// overhead).
	ReasonLimitRangeExceeded = "LimitRangeExceeded"
	// ReasonPodSecurityViolated: the namespace's Pod Security level refuses
	// the VM's virt-launcher pod; only the namespace's policy can change.
	ReasonPodSecurityViolated = "PodSecurityViolated"
	// ReasonVMUpdatePending: Reconciling's reason while a change cannot be
	// written to the VirtualMachine (KubeVirt's webhook unreachable, e.g.
	// while virt-api restarts); retried with backoff, what was observed
	// stays in status.
	ReasonVMUpdatePending = "VirtualMachineUpdatePending"
)

// SSHAuthorizedKeysLabel is the label a Secret carries, with the value
// "true", to be usable as a Wukong's sshKeySecret. Without it, naming a
// Secret is refused: a user who may create Wukongs but not read Secrets
// cannot copy an arbitrary Secret of the namespace into a guest they log
// in to. A label rather than a Secret type, because a Secret's type cannot
// be changed after it is created (Kubernetes "Secrets": type is
// immutable) while a label can be added to an existing key Secret
// (kubectl label secret NAME vm.novasphere.dev/ssh-authorized-keys=true),
// and Kubernetes' own kubernetes.io/ssh-auth type holds a private key
// (ssh-privatekey), not authorized public keys.
const SSHAuthorizedKeysLabel = "vm.novasphere.dev/ssh-authorized-keys"

// CloudInitPasswordLabel is the label a Secret carries, with the value
// "true", to be usable in a Wukong's cloudInitUser.passwordSecretRef. The
// same rule as SSHAuthorizedKeysLabel, for the same reason: the value
// reaches the guest (hashed, in /etc/shadow and cloud-init's user data,
// both readable by root in the guest), so without an opt-in a user who may
// create Wukongs but not read Secrets could take a hash of any Secret
// value of the namespace offline for guessing. A separate label, so a
// Secret meant for one use is not taken for the other.
const CloudInitPasswordLabel = "vm.novasphere.dev/cloud-init-password"

// NodeBridge condition types besides Ready, Reconciling and Stalled.
const (
	// DegradedCondition: NMState failed to configure the bridge on some
	// node, or rolled the policy back.
	DegradedCondition = "Degraded"
)

// GetConditions returns the Wukong's status conditions (lib/conditions
// Getter).
func (w *Wukong) GetConditions() []metav1.Condition { return w.Status.Conditions }

// SetConditions replaces the Wukong's status conditions (lib/conditions
// Setter).
func (w *Wukong) SetConditions(c []metav1.Condition) { w.Status.Conditions = c }

// GetObservedGeneration is the generation the Wukong's status describes.
func (w *Wukong) GetObservedGeneration() int64 { return w.Status.ObservedGeneration }

// GetConditions returns the NodeBridge's status conditions (lib/conditions
// Getter).
func (d *NodeBridge) GetConditions() []metav1.Condition { return d.Status.Conditions }

// SetConditions replaces the NodeBridge's status conditions (lib/conditions
// Setter).
func (d *NodeBridge) SetConditions(c []metav1.Condition) { d.Status.Conditions = c }

// GetObservedGeneration is the generation the NodeBridge's status describes.
func (d *NodeBridge) GetObservedGeneration() int64 { return d.Status.ObservedGeneration }

// Condition types and reasons of live migration, drains and node loss
// (issue #30).
const (
	// MigratableCondition mirrors the VMI's LiveMigratable condition
	// (KubeVirt's virt-controller): True when KubeVirt can live-migrate the
	// running VM, False with KubeVirt's reason (e.g. DisksNotLiveMigratable,
	// InterfaceNotLiveMigratable) and its message, where a claim KubeVirt
	// names is given as the disk's spec.disks[i]. Absent while no instance
	// runs or KubeVirt has not reported it.
	MigratableCondition = "Migratable"
	// NodeLostCondition: the node the VM runs on has been NotReady (its
	// kubelet stopped reporting) for at least the grace of the node-loss
	// policy, or, without a policy, at all; the message says what happened
	// or what an administrator can do. Absent otherwise.
	NodeLostCondition = "NodeLost"

	// ReasonMigratable: KubeVirt reports the VM live-migratable
	// (LiveMigratable True, KubeVirt giving no reason of its own).
	ReasonMigratable = "Migratable"
	// ReasonNodeNotReady: the node is NotReady and no node-loss policy
	// restarts the VM elsewhere: an administrator fences the node, then
	// force-deletes the VM's pod (see the README, "Node loss").
	ReasonNodeNotReady = "NodeNotReady"
	// ReasonNodeLostRestarting: the node-loss policy force-deleted the VM's
	// virt-launcher pod(s) on the lost node, so KubeVirt fails the
	// instance and starts it elsewhere (also an Event of this reason).
	ReasonNodeLostRestarting = "NodeLostRestarting"
	// ReasonNodeLostWaiting: the node is NotReady and the node-loss policy
	// acts once it has been so for its grace.
	ReasonNodeLostWaiting = "NodeLostWaiting"
	// ReasonMigrating: Ready's reason (True) while a live migration runs.
	ReasonMigrating = "Migrating"
)
